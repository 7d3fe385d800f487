import "reflect-metadata";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AsnConvert } from "@peculiar/asn1-schema";
import { ContentInfo, SignedData, id_data, id_signedData } from "@peculiar/asn1-cms";
import { buildCertsOnly, readCmsCertificates } from "./cms.js";
import { makeTestCa, type TestCa } from "./test-helpers.js";
import { CertificateTemplate } from "./template.js";
import { encodeGeneralNames, parseCertificate } from "./certificate.js";
import { generateKeyPair, spkiDer } from "./keys.js";
import { encodeName } from "./name.js";
import { generateSerial } from "./serial.js";
import { pemDecodeAll, pemEncode } from "./pem.js";
import { readWhole, Tag, tlv, encodeOid } from "./der.js";
import { PkiError, type PkiErrorCode } from "./errors.js";

function pkiCode(code: PkiErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, code, `detail: ${err.detail}`);
    return true;
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pki-cms-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" }).toString();
const write = (name: string, data: string | Uint8Array) => fs.writeFileSync(path.join(dir, name), data);

let ca: TestCa;
let rsaCa: TestCa;
let leaf: Buffer;

before(async () => {
  ca = await makeTestCa("ec-p256");
  rsaCa = await makeTestCa("rsa-2048");
  const tpl = await CertificateTemplate.create(
    { basicConstraints: { ca: false }, keyUsage: ["digitalSignature"], extKeyUsage: ["clientAuth"] },
    { certificate: ca.intermediate, privateKey: ca.intermediateKey },
  );
  leaf = await tpl.issue({
    serial: generateSerial(),
    notBefore: new Date(Date.now() - 1000),
    notAfter: new Date("2052-01-01T00:00:00Z"),
    subject: encodeName([{ type: "O", value: "Acme" }, { type: "CN", value: "device-é1" }]),
    spki: spkiDer(generateKeyPair("ed25519").publicKey),
    subjectAltNames: encodeGeneralNames([{ type: "dns", value: "d.example" }, { type: "ip", value: "::1" }]),
  });
});

/** Structure of a certs-only SignedData, via the ASN.1 library. */
function structure(der: Uint8Array) {
  const info = AsnConvert.parse(der, ContentInfo);
  assert.equal(info.contentType, id_signedData);
  const signed = AsnConvert.parse(info.content, SignedData);
  return { info, signed };
}

test("buildCertsOnly([leaf]): OpenSSL prints the subject; readCmsCertificates round-trips the bytes", () => {
  const cms = buildCertsOnly([leaf]);
  write("leaf.p7b", cms);
  const out = openssl("pkcs7", "-inform", "DER", "-in", "leaf.p7b", "-print_certs");
  assert.match(out, /^subject=O = Acme, CN = device-\\C3\\A91$/m, "OpenSSL escapes the UTF-8 bytes of é");
  assert.match(out, /issuer=O = Tessera Test, CN = Test Issuing CA/);
  const pems = pemDecodeAll(out);
  assert.equal(pems.length, 1);
  assert.ok(pems[0]!.der.equals(leaf), "OpenSSL extracts the exact certificate");
  const back = readCmsCertificates(cms);
  assert.equal(back.length, 1);
  assert.ok(back[0]!.equals(leaf));
  assert.equal(Object.getPrototypeOf(back), Array.prototype, "a plain Buffer[]");
  assert.ok(Buffer.isBuffer(back[0]));
});

test("buildCertsOnly([root, intermediate]): both subjects, in order; exact round-trip", () => {
  const cms = buildCertsOnly([ca.root.der, ca.intermediate.der]);
  write("chain.p7b", cms);
  const out = openssl("pkcs7", "-inform", "DER", "-in", "chain.p7b", "-print_certs");
  const subjects = [...out.matchAll(/^subject=(.*)$/gm)].map((m) => m[1]);
  assert.deepEqual(subjects, ["O = Tessera Test, CN = Test Root", "O = Tessera Test, CN = Test Issuing CA"]);
  const pems = pemDecodeAll(out);
  assert.ok(pems[0]!.der.equals(ca.root.der));
  assert.ok(pems[1]!.der.equals(ca.intermediate.der));
  const back = readCmsCertificates(cms);
  assert.equal(back.length, 2);
  assert.ok(back[0]!.equals(ca.root.der));
  assert.ok(back[1]!.equals(ca.intermediate.der));
});

test("certs-only structure: SignedData v1, no signers, empty digestAlgorithms, id-data without content", () => {
  for (const certs of [[leaf], [ca.root.der, ca.intermediate.der], [rsaCa.intermediate.der, leaf, rsaCa.root.der]]) {
    const cms = buildCertsOnly(certs);
    readWhole(cms, Tag.SEQUENCE);
    const { signed } = structure(cms);
    assert.equal(signed.version, 1);
    assert.equal(signed.digestAlgorithms.length, 0);
    assert.equal(signed.signerInfos.length, 0);
    assert.equal(signed.encapContentInfo.eContentType, id_data);
    assert.equal(signed.encapContentInfo.eContent, undefined);
    assert.equal(signed.crls, undefined);
    assert.equal(signed.certificates?.length, certs.length);
    assert.ok(Buffer.from(AsnConvert.serialize(structure(cms).info)).equals(cms), "DER: re-encoding gives the same bytes");
  }
  // the bytes OpenSSL writes back for the same structure are ours
  write("s.p7b", buildCertsOnly([ca.root.der, ca.intermediate.der]));
  openssl("pkcs7", "-inform", "DER", "-in", "s.p7b", "-outform", "DER", "-out", "s2.p7b");
  assert.ok(fs.readFileSync(path.join(dir, "s2.p7b")).equals(buildCertsOnly([ca.root.der, ca.intermediate.der])));
  const printed = openssl("cms", "-cmsout", "-inform", "DER", "-in", "s.p7b", "-print", "-noout");
  assert.match(printed, /version: 1\n\s+digestAlgorithms:\n\s+<EMPTY>/);
  assert.match(printed, /eContent: <ABSENT>/);
  assert.match(printed, /signerInfos:\n\s+<EMPTY>/);
});

test("mixed key types and UTF-8 names round-trip byte for byte", () => {
  const certs = [leaf, rsaCa.root.der, rsaCa.intermediate.der, ca.root.der];
  const back = readCmsCertificates(buildCertsOnly(certs));
  assert.equal(back.length, certs.length);
  back.forEach((b, i) => assert.ok(b.equals(certs[i]!), `certificate ${i}`));
  assert.equal(parseCertificate(back[0]!).serialHex, parseCertificate(leaf).serialHex);
});

test("readCmsCertificates reads OpenSSL's crl2pkcs7 output (PEM chain → DER p7b)", () => {
  write("bundle.pem", pemEncode("CERTIFICATE", rsaCa.root.der) + pemEncode("CERTIFICATE", rsaCa.intermediate.der) + pemEncode("CERTIFICATE", leaf));
  openssl("crl2pkcs7", "-nocrl", "-certfile", "bundle.pem", "-outform", "DER", "-out", "bundle.p7b");
  const back = readCmsCertificates(fs.readFileSync(path.join(dir, "bundle.p7b")));
  assert.equal(back.length, 3);
  assert.ok(back[0]!.equals(rsaCa.root.der));
  assert.ok(back[1]!.equals(rsaCa.intermediate.der));
  assert.ok(back[2]!.equals(leaf));
});

test("an empty certs-only message", () => {
  const cms = buildCertsOnly([]);
  assert.deepEqual(readCmsCertificates(cms), []);
  const { signed } = structure(cms);
  assert.equal(signed.signerInfos.length, 0);
  write("empty.p7b", cms);
  openssl("pkcs7", "-inform", "DER", "-in", "empty.p7b", "-print_certs", "-noout");
});

test("readCmsCertificates rejects what is not a SignedData with TESSERA_ERR_PKI_MALFORMED_DER", () => {
  const bad = pkiCode("TESSERA_ERR_PKI_MALFORMED_DER");
  assert.throws(() => readCmsCertificates(Buffer.from("hello")), bad);
  assert.throws(() => readCmsCertificates(new Uint8Array(0)), bad);
  assert.throws(() => readCmsCertificates(leaf), bad, "a certificate is not a ContentInfo");
  const cms = buildCertsOnly([leaf]);
  assert.throws(() => readCmsCertificates(cms.subarray(0, cms.length - 10)), bad, "truncated");
  // a ContentInfo of type id-data
  const dataInfo = tlv(Tag.SEQUENCE, encodeOid("1.2.840.113549.1.7.1"), tlv(0xa0, tlv(Tag.OCTET_STRING, Buffer.from("x"))));
  assert.throws(() => readCmsCertificates(dataInfo), (e) => bad(e) && /content type/.test((e as PkiError).detail!));
});

test("buildCertsOnly refuses bytes that are not a certificate", () => {
  assert.throws(() => buildCertsOnly([Buffer.from("3000", "hex")]));
});
