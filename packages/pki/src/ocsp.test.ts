import "reflect-metadata";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AsnConvert } from "@peculiar/asn1-schema";
import { BasicOCSPResponse, OCSPRequest, OCSPResponse, OCSPResponseStatus } from "@peculiar/asn1-ocsp";
import {
  buildOcspResponse, createOcspSignerCertificate, decodeOcspGetPath, isOcspSigner, ocspErrorResponse, ocspIssuerMatcher, OcspOid, parseOcspRequest,
  type OcspHash,
} from "./ocsp.js";
import { buildOcspRequest, ocspGetUrl, ocspNonce, parseOcspResponse, verifyOcspResponse } from "./ocsp-client.js";
import { makeTestCa, issueTestLeaf, type TestCa } from "./test-helpers.js";
import { generateKeyPair, type KeyType } from "./keys.js";
import { pemEncode } from "./pem.js";
import { PkiError } from "./errors.js";
import { encodeOid, Tag, tlv } from "./der.js";
import type { ParsedCertificate } from "./certificate.js";
import type * as crypto from "node:crypto";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pki-ocsp-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const write = (name: string, data: string | Uint8Array) => fs.writeFileSync(path.join(dir, name), data);
const read = (name: string) => fs.readFileSync(path.join(dir, name));
function openssl(...args: string[]): string {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  assert.equal(r.status, 0, `openssl ${args.join(" ")}\n${r.stdout}${r.stderr}`);
  return r.stdout + r.stderr;
}
const whole = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);

interface Fixture {
  ca: TestCa;
  signer: { certificate: ParsedCertificate; privateKey: crypto.KeyObject };
  leaf: ParsedCertificate;
  revoked: ParsedCertificate;
}

async function fixture(type: KeyType, prefix: string): Promise<Fixture> {
  const ca = await makeTestCa(type);
  const keys = generateKeyPair(type);
  const now = Date.now();
  const certificate = await createOcspSignerCertificate({
    issuer: { certificate: ca.intermediate, privateKey: ca.intermediateKey },
    publicKey: keys.publicKey,
    subject: [{ type: "O", value: "Tessera Test" }, { type: "CN", value: "Test OCSP Responder" }],
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 7 * 86400_000),
  });
  const leaf = await issueTestLeaf(ca, "good-device", generateKeyPair().privateKey);
  const revoked = await issueTestLeaf(ca, "revoked-device", generateKeyPair().privateKey);
  write(`${prefix}-issuer.pem`, pemEncode("CERTIFICATE", ca.intermediate.der));
  write(`${prefix}-chain.pem`, pemEncode("CERTIFICATE", ca.root.der) + pemEncode("CERTIFICATE", ca.intermediate.der));
  write(`${prefix}-leaf.pem`, pemEncode("CERTIFICATE", leaf.der));
  write(`${prefix}-revoked.pem`, pemEncode("CERTIFICATE", revoked.der));
  write(`${prefix}-signer.pem`, pemEncode("CERTIFICATE", certificate.der));
  return { ca, signer: { certificate, privateKey: keys.privateKey }, leaf, revoked };
}

let ec: Fixture;
before(async () => {
  ec = await fixture("ec-p256", "ec");
});

/** Answers a request the way a responder would: good, revoked (keyCompromise) or unknown by serial. */
async function answer(f: Fixture, reqDer: Buffer, now = Date.now()) {
  const req = parseOcspRequest(reqDer);
  const matches = ocspIssuerMatcher(f.ca.intermediate);
  // A delegated signer is authoritative only for its CA's CertIDs (RFC 6960 §4.2.2.2, §2.3).
  if (!req.certIds.every(matches)) return ocspErrorResponse("unauthorized");
  const thisUpdate = whole(now);
  return buildOcspResponse({
    signer: f.signer,
    producedAt: thisUpdate,
    nonce: req.nonce,
    responses: req.certIds.map((certId) => ({
      certId,
      thisUpdate,
      nextUpdate: new Date(thisUpdate.getTime() + 3600_000),
      status: certId.serialHex === f.leaf.serialHex
          ? { status: "good" as const }
          : certId.serialHex === f.revoked.serialHex
            ? { status: "revoked" as const, revokedAt: new Date(thisUpdate.getTime() - 60_000), reason: "keyCompromise" as const }
            : { status: "unknown" as const },
    })),
  });
}

test("openssl's request parses; its CertIDs match the issuer for SHA-1 and SHA-256; the nonce is kept", () => {
  for (const digest of ["sha1", "sha256"] as OcspHash[]) {
    openssl("ocsp", "-issuer", "ec-issuer.pem", `-${digest}`, "-cert", "ec-leaf.pem", "-cert", "ec-revoked.pem", "-reqout", `req-${digest}.der`);
    const req = parseOcspRequest(read(`req-${digest}.der`));
    assert.equal(req.certIds.length, 2);
    assert.equal(req.certIds[0]!.hash, digest);
    assert.equal(req.certIds[0]!.serialHex, ec.leaf.serialHex);
    assert.equal(req.certIds[1]!.serialHex, ec.revoked.serialHex);
    assert.ok(req.certIds.every(ocspIssuerMatcher(ec.ca.intermediate)));
    assert.ok(!req.certIds.some(ocspIssuerMatcher(ec.ca.root)), "another CA's hashes do not match");
    assert.equal(req.nonce?.length, 18, "OpenSSL sends a 16-octet nonce inside an OCTET STRING");
    assert.equal(req.signed, false);
  }
  openssl("ocsp", "-issuer", "ec-issuer.pem", "-cert", "ec-leaf.pem", "-no_nonce", "-reqout", "req-nononce.der");
  assert.equal(parseOcspRequest(read("req-nononce.der")).nonce, undefined);
});

test("openssl verifies the signed response: good, revoked with time and reason, unknown; nonce echoed", async () => {
  const foreign = await makeTestCa("ec-p256");
  const foreignLeaf = await issueTestLeaf(foreign, "foreign", generateKeyPair().privateKey);
  write("foreign-issuer.pem", pemEncode("CERTIFICATE", foreign.intermediate.der));
  write("foreign-leaf.pem", pemEncode("CERTIFICATE", foreignLeaf.der));
  openssl("ocsp", "-issuer", "ec-issuer.pem", "-cert", "ec-leaf.pem", "-cert", "ec-revoked.pem", "-serial", "0x1234abcd", "-reqout", "req3.der");
  write("resp3.der", await answer(ec, read("req3.der")));
  // -reqin checks the nonce against the request; -resp_text shows the statuses in request order.
  const out = openssl("ocsp", "-reqin", "req3.der", "-respin", "resp3.der", "-issuer", "ec-issuer.pem", "-CAfile", "ec-chain.pem", "-resp_text");
  assert.match(out, /Response verify OK/);
  assert.doesNotMatch(out, /WARNING/);
  assert.deepEqual([...out.matchAll(/Cert Status: (\w+)/g)].map((m) => m[1]), ["good", "revoked", "unknown"]);
  assert.match(out, /Cert Status: revoked\s+Revocation Time: [^\n]+\n\s+Revocation Reason: keyCompromise \(0x1\)/);
  assert.match(out, /Responder Id: [0-9A-F]{40}/, "responderID byKey");
  assert.match(out, /OCSP Nonce:/);
  // Given the certificates, openssl names each status (it makes its own request, so no nonce here).
  write("resp3b.der", await answer(ec, (openssl("ocsp", "-issuer", "ec-issuer.pem", "-cert", "ec-leaf.pem", "-cert", "ec-revoked.pem", "-no_nonce", "-reqout", "req3b.der"), read("req3b.der"))));
  const named = openssl("ocsp", "-respin", "resp3b.der", "-issuer", "ec-issuer.pem", "-cert", "ec-leaf.pem", "-cert", "ec-revoked.pem", "-CAfile", "ec-chain.pem", "-no_nonce");
  assert.match(named, /ec-leaf\.pem: good/);
  assert.match(named, /ec-revoked\.pem: revoked[\s\S]*Reason: keyCompromise/);
  // A foreign certificate's serial under our issuer: "unknown". Under its own issuer the CertID does not match ours.
  openssl("ocsp", "-issuer", "ec-issuer.pem", "-serial", `0x${foreignLeaf.serialHex}`, "-reqout", "req-fs.der");
  write("resp-fs.der", await answer(ec, read("req-fs.der")));
  const fs1 = openssl("ocsp", "-reqin", "req-fs.der", "-respin", "resp-fs.der", "-CAfile", "ec-chain.pem", "-resp_text");
  assert.match(fs1, /Response verify OK/);
  assert.match(fs1, /Cert Status: unknown/);
  openssl("ocsp", "-issuer", "foreign-issuer.pem", "-cert", "foreign-leaf.pem", "-reqout", "req-foreign.der");
  assert.ok(!parseOcspRequest(read("req-foreign.der")).certIds.some(ocspIssuerMatcher(ec.ca.intermediate)));
});

test("the library (@peculiar/asn1-ocsp) reads the response and our request; our reader agrees; the signature verifies", async () => {
  const nonce = ocspNonce();
  const reqDer = buildOcspRequest({ issuer: ec.ca.intermediate, serials: [ec.leaf.serial, ec.revoked.serialHex, "0badc0de"], hash: "sha256", nonce });
  const libReq = AsnConvert.parse(reqDer, OCSPRequest);
  assert.equal(libReq.tbsRequest.requestList.length, 3);
  const der = await answer(ec, reqDer);
  const lib = AsnConvert.parse(der, OCSPResponse);
  assert.equal(lib.responseStatus, OCSPResponseStatus.successful);
  assert.equal(lib.responseBytes?.responseType, OcspOid.basic);
  const basic = AsnConvert.parse(lib.responseBytes!.response.buffer, BasicOCSPResponse);
  assert.equal(basic.tbsResponseData.responses.length, 3);
  assert.equal(basic.certs?.length, 1);
  const r1 = basic.tbsResponseData.responses[1]!;
  assert.equal(r1.certStatus.revoked?.revocationReason?.reason, 1);

  const parsed = parseOcspResponse(der);
  assert.equal(parsed.status, "successful");
  assert.deepEqual(parsed.responses.map((r) => r.status), ["good", "revoked", "unknown"]);
  assert.equal(parsed.responses[1]!.reason, "keyCompromise");
  assert.ok(parsed.responses[1]!.revokedAt);
  assert.equal(parsed.responses[0]!.certId.hash, "sha256", "the request's CertID is echoed");
  assert.equal(parsed.responses[2]!.certId.serialHex, "badc0de");
  assert.deepEqual(parsed.nonce, tlv(Tag.OCTET_STRING, nonce));
  assert.equal(parsed.responses[0]!.nextUpdate!.getTime() - parsed.responses[0]!.thisUpdate.getTime(), 3600_000);
  const signer = verifyOcspResponse(parsed, ec.ca.intermediate);
  assert.ok(signer?.der.equals(ec.signer.certificate.der));
  assert.throws(() => verifyOcspResponse(parsed, ec.ca.root), PkiError, "another CA did not delegate this signer");
  const tampered = Buffer.from(der);
  tampered[tampered.indexOf(Buffer.from([0x80, 0x00]))] = 0x82; // good → unknown
  assert.throws(() => verifyOcspResponse(parseOcspResponse(tampered), ec.ca.intermediate), /does not verify/);
});

test("the delegated signer certificate: OCSPSigning, nocheck, digitalSignature, chains to the CA", () => {
  assert.ok(isOcspSigner(ec.signer.certificate));
  assert.ok(!isOcspSigner(ec.leaf));
  const text = openssl("x509", "-in", "ec-signer.pem", "-noout", "-text");
  assert.match(text, /OCSP Signing/);
  assert.match(text, /OCSP No Check/);
  assert.match(text, /Key Usage: critical\s+Digital Signature/);
  assert.match(text, /CA:FALSE/);
  assert.match(openssl("verify", "-CAfile", "ec-chain.pem", "-purpose", "ocsphelper", "ec-signer.pem"), /OK/);
});

test("RSA and Ed25519 CAs: openssl verifies the response", async () => {
  for (const type of ["rsa-2048", "ed25519"] as KeyType[]) {
    const f = await fixture(type, type);
    openssl("ocsp", "-issuer", `${type}-issuer.pem`, "-cert", `${type}-leaf.pem`, "-reqout", `${type}-req.der`);
    write(`${type}-resp.der`, await answer(f, read(`${type}-req.der`)));
    const out = openssl("ocsp", "-reqin", `${type}-req.der`, "-respin", `${type}-resp.der`, "-issuer", `${type}-issuer.pem`, "-CAfile", `${type}-chain.pem`, "-resp_text");
    assert.match(out, /Response verify OK/, type);
    assert.match(out, /Cert Status: good/, type);
  }
});

test("error responses are the status alone; openssl reads them", () => {
  for (const [status, text] of [["malformedRequest", /malformedrequest \(1\)/], ["internalError", /internalerror \(2\)/], ["unauthorized", /unauthorized \(6\)/]] as const) {
    const der = ocspErrorResponse(status);
    assert.equal(parseOcspResponse(der).status, status);
    assert.equal(AsnConvert.parse(der, OCSPResponse).responseBytes, undefined);
    write("err.der", der);
    const r = spawnSync("openssl", ["ocsp", "-respin", "err.der", "-resp_text"], { cwd: dir, encoding: "utf8" });
    assert.match(r.stdout + r.stderr, text);
  }
});

test("malformed requests throw TESSERA_ERR_PKI_MALFORMED_DER", () => {
  const good = buildOcspRequest({ issuer: ec.ca.intermediate, serials: ["01"] });
  const isMalformed = (err: unknown) => err instanceof PkiError && err.code === "TESSERA_ERR_PKI_MALFORMED_DER";
  assert.throws(() => parseOcspRequest(Buffer.from("not der")), isMalformed);
  assert.throws(() => parseOcspRequest(good.subarray(0, good.length - 1)), isMalformed);
  assert.throws(() => parseOcspRequest(Buffer.concat([good, Buffer.of(0)])), isMalformed);
  assert.throws(() => parseOcspRequest(tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE)))), isMalformed, "empty requestList");
  const v2 = tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, tlv(0xa0, tlv(Tag.INTEGER, Uint8Array.of(1))), tlv(Tag.SEQUENCE)));
  assert.throws(() => parseOcspRequest(v2), isMalformed, "version 2");
  // A critical request extension we do not understand.
  const certIdList = parseOcspRequest(good).certIds[0]!.der;
  const critical = tlv(Tag.SEQUENCE, encodeOid("1.2.3.4"), Uint8Array.of(Tag.BOOLEAN, 1, 0xff), tlv(Tag.OCTET_STRING, Uint8Array.of(5, 0)));
  const withCritical = tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, certIdList)), tlv(0xa2, tlv(Tag.SEQUENCE, critical))));
  assert.throws(() => parseOcspRequest(withCritical), isMalformed);
  // A nonce longer than 32 octets is not echoed (RFC 8954 §2.1), the request still answers.
  const long = parseOcspRequest(buildOcspRequest({ issuer: ec.ca.intermediate, serials: ["01"], nonce: Buffer.alloc(33, 7) }));
  assert.equal(long.nonce, undefined);
  assert.equal(long.nonceIgnored, true);
  // A negative serial never matches one of ours.
  const negCertId = tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, encodeOid("1.3.14.3.2.26")), tlv(Tag.OCTET_STRING, Buffer.alloc(20)), tlv(Tag.OCTET_STRING, Buffer.alloc(20)), tlv(Tag.INTEGER, Uint8Array.of(0x80, 1)));
  const neg = tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, negCertId))));
  assert.equal(parseOcspRequest(neg).certIds[0]!.serialHex, "-8001");
});

test("GET form: percent-encoded or bare base64, and base64url, all decode", () => {
  const der = buildOcspRequest({ issuer: ec.ca.intermediate, serials: [ec.leaf.serial], nonce: ocspNonce() });
  const url = ocspGetUrl("http://ca.example/ocsp/", der);
  assert.match(url, /^http:\/\/ca\.example\/ocsp\/[A-Za-z0-9%]+$/);
  const segment = url.slice("http://ca.example/ocsp/".length);
  assert.deepEqual(decodeOcspGetPath(segment), der);
  assert.deepEqual(decodeOcspGetPath(der.toString("base64")), der);
  assert.deepEqual(decodeOcspGetPath(der.toString("base64url")), der);
  assert.throws(() => decodeOcspGetPath("%zz"), PkiError);
  assert.throws(() => decodeOcspGetPath("a!b"), PkiError);
  assert.throws(() => decodeOcspGetPath(""), PkiError);
});
