import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseCrl, verifyCrlSignature } from "./crl-parse.js";
import { buildCrl, type CrlEntry, type CrlInput } from "./crl.js";
import { makeTestCa, type TestCa } from "./test-helpers.js";
import { issuerSkiOf } from "./template.js";
import { certificatePublicKey, parseCertificate } from "./certificate.js";
import { encodeOid, encodeSmallInteger, encodeTime, encodeUnsignedInteger, Tag, tlv } from "./der.js";
import { encodeName } from "./name.js";
import { pemEncode } from "./pem.js";
import { generateSerial, serialToHex } from "./serial.js";
import { PkiError, type PkiErrorCode } from "./errors.js";
import { signatureAlgorithmFor } from "./keys.js";

function pkiCode(code: PkiErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, code, `detail: ${err.detail}`);
    return true;
  };
}

const whole = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pki-crl-parse-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

let ca: TestCa;
let input: Omit<CrlInput, "entries">;

before(async () => {
  ca = await makeTestCa("ec-p256");
  const now = Date.now();
  input = {
    issuer: ca.intermediate.subject,
    issuerKeyId: issuerSkiOf(ca.intermediate),
    privateKey: ca.intermediateKey,
    thisUpdate: new Date(now - 1500),
    nextUpdate: new Date(now + 7 * 86400_000),
    crlNumber: 0x1234567890abcdef12n,
  };
});

test("round trip with buildCrl: issuer, times, number, AKI, serials, dates, reasons; signature verifies with the issuer only", async () => {
  const entries: CrlEntry[] = [
    { serialHex: serialToHex(generateSerial()), revokedAt: new Date(Date.now() - 86400_000 + 123), reason: "keyCompromise" },
    { serialHex: "abc", revokedAt: new Date("2050-03-04T05:06:07Z") }, // GeneralizedTime, odd digit count
    { serialHex: "80", revokedAt: new Date("2026-01-01T00:00:00Z"), reason: "superseded" }, // 0x00 pad in DER
    { serialHex: "1", revokedAt: new Date("2026-01-01T00:00:00Z"), reason: "unspecified" }, // written without reason
    { serialHex: "2", revokedAt: new Date("2026-01-01T00:00:00Z"), reason: "removeFromCRL" },
  ];
  const der = await buildCrl({ ...input, entries });
  const crl = parseCrl(der);
  assert.equal(crl.version, 2);
  assert.ok(crl.issuer.equals(ca.intermediate.subject));
  assert.equal(crl.thisUpdate.getTime(), whole(input.thisUpdate).getTime());
  assert.equal(crl.nextUpdate?.getTime(), whole(input.nextUpdate).getTime());
  assert.equal(crl.crlNumber, 0x1234567890abcdef12n);
  assert.ok(crl.authorityKeyId?.equals(issuerSkiOf(ca.intermediate)));
  assert.deepEqual(crl.unhandledCritical, []);
  assert.equal(crl.signatureOid, "1.2.840.10045.4.3.2");
  assert.deepEqual([...crl.revoked.keys()], entries.map((e) => e.serialHex));
  assert.deepEqual(crl.revoked.get(entries[0]!.serialHex), { revokedAt: whole(entries[0]!.revokedAt), reason: "keyCompromise" });
  assert.deepEqual(crl.revoked.get("abc"), { revokedAt: new Date("2050-03-04T05:06:07Z") });
  assert.equal(crl.revoked.get("80")?.reason, "superseded");
  assert.equal(crl.revoked.get("1")?.reason, undefined);
  assert.equal(crl.revoked.get("2")?.reason, "removeFromCRL");
  assert.equal(verifyCrlSignature(crl, certificatePublicKey(ca.intermediate)), true);
  assert.equal(verifyCrlSignature(crl, certificatePublicKey(ca.root)), false);
  // PEM text and PEM bytes read the same
  const pem = pemEncode("X509 CRL", der);
  assert.equal(parseCrl(pem).revoked.size, 5);
  assert.equal(parseCrl(Buffer.from(pem)).crlNumber, crl.crlNumber);
});

test("an empty CRL parses to an empty map", async () => {
  const crl = parseCrl(await buildCrl({ ...input, crlNumber: 0n, entries: [] }));
  assert.equal(crl.revoked.size, 0);
  assert.equal(crl.crlNumber, 0n);
  assert.equal(verifyCrlSignature(crl, certificatePublicKey(ca.intermediate)), true);
});

test("50,000 entries parse, each serial findable", async () => {
  const revokedAt = new Date("2026-05-01T00:00:00Z");
  const serials = Array.from({ length: 50_000 }, () => serialToHex(generateSerial()));
  const der = await buildCrl({ ...input, entries: serials.map((serialHex, i) => ({ serialHex, revokedAt, reason: i % 2 ? "keyCompromise" : undefined })) });
  const t0 = performance.now();
  const crl = parseCrl(der);
  console.log(`# parseCrl: 50,000 entries in ${(performance.now() - t0).toFixed(0)} ms`);
  assert.equal(crl.revoked.size, 50_000);
  assert.equal(crl.revoked.get(serials[49_999]!)?.reason, "keyCompromise");
  assert.equal(crl.revoked.get(serials[12_344]!)?.reason, undefined);
  assert.equal(crl.revoked.get(serials[12_344]!)?.revokedAt.getTime(), revokedAt.getTime());
  assert.equal(verifyCrlSignature(crl, certificatePublicKey(ca.intermediate)), true);
});

test("a CRL made by `openssl ca -gencrl` (RSA, v2, reasons, CRL number, AKI)", () => {
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" }).toString();
  run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/O=OpenSSL Test/CN=OpenSSL CA", "-days", "30");
  fs.writeFileSync(path.join(dir, "index.txt"), [
    "R\t351231235959Z\t250102030405Z,keyCompromise\t1A2B\tunknown\t/CN=dev1",
    "R\t351231235959Z\t250203040506Z\t0F\tunknown\t/CN=dev2",
    "R\t351231235959Z\t250304050607Z,cessationOfOperation\t00FF\tunknown\t/CN=dev3",
    "V\t351231235959Z\t\t10\tunknown\t/CN=dev4",
    "",
  ].join("\n"));
  fs.writeFileSync(path.join(dir, "crlnumber"), "1000\n");
  fs.writeFileSync(path.join(dir, "ca.cnf"), [
    "[ca]", "default_ca = testca", "[testca]", "dir = .", "database = ./index.txt", "crlnumber = ./crlnumber",
    "certificate = ./ca.pem", "private_key = ./ca.key", "default_md = sha256", "default_crl_days = 7", "crl_extensions = crl_ext",
    "[crl_ext]", "authorityKeyIdentifier = keyid:always", "",
  ].join("\n"));
  run("ca", "-gencrl", "-config", "ca.cnf", "-out", "crl.pem");
  const caCert = parseCertificate(fs.readFileSync(path.join(dir, "ca.pem"), "utf8"));
  const crl = parseCrl(fs.readFileSync(path.join(dir, "crl.pem"), "utf8"));
  assert.equal(crl.version, 2);
  assert.ok(crl.issuer.equals(caCert.subject));
  assert.equal(crl.crlNumber, 0x1000n);
  assert.equal(crl.signatureOid, "1.2.840.113549.1.1.11");
  assert.ok(crl.nextUpdate && crl.nextUpdate.getTime() - crl.thisUpdate.getTime() === 7 * 86400_000);
  assert.deepEqual([...crl.revoked.keys()].sort(), ["1a2b", "f", "ff"]);
  assert.deepEqual(crl.revoked.get("1a2b"), { revokedAt: new Date("2025-01-02T03:04:05Z"), reason: "keyCompromise" });
  assert.deepEqual(crl.revoked.get("f"), { revokedAt: new Date("2025-02-03T04:05:06Z") });
  assert.equal(crl.revoked.get("ff")?.reason, "cessationOfOperation");
  assert.equal(verifyCrlSignature(crl, certificatePublicKey(caCert)), true);
  assert.equal(verifyCrlSignature(crl, certificatePublicKey(ca.root)), false);
});

/** Signs a hand-made tbsCertList with the intermediate key. */
function signTbs(tbs: Buffer, key = ca.intermediateKey): Buffer {
  const alg = signatureAlgorithmFor(key);
  const sig = crypto.sign(alg.hash ?? null, tbs, key);
  return tlv(Tag.SEQUENCE, tbs, alg.algorithmIdentifier, tlv(Tag.BIT_STRING, Uint8Array.of(0), sig));
}

test("a v1 CRL (no version, no nextUpdate, GeneralizedTime entry date) parses and verifies", () => {
  const alg = signatureAlgorithmFor(ca.intermediateKey);
  const entry = tlv(Tag.SEQUENCE, encodeUnsignedInteger(Buffer.from("0badcafe", "hex")), tlv(Tag.GENERALIZED_TIME, Buffer.from("20240229120000Z")));
  const tbs = tlv(Tag.SEQUENCE, alg.algorithmIdentifier, ca.intermediate.subject, encodeTime(new Date("2026-01-01T00:00:00Z")), tlv(Tag.SEQUENCE, entry));
  const crl = parseCrl(signTbs(tbs));
  assert.equal(crl.version, 1);
  assert.equal(crl.nextUpdate, undefined);
  assert.equal(crl.crlNumber, undefined);
  assert.deepEqual([...crl.revoked], [["badcafe", { revokedAt: new Date("2024-02-29T12:00:00Z") }]]);
  assert.equal(verifyCrlSignature(crl, certificatePublicKey(ca.intermediate)), true);
});

test("critical extensions it does not process are reported; unknown reason codes are named by number", () => {
  const alg = signatureAlgorithmFor(ca.intermediateKey);
  const critical = tlv(Tag.BOOLEAN, Uint8Array.of(0xff));
  const reason7 = tlv(Tag.SEQUENCE, encodeOid("2.5.29.21"), tlv(Tag.OCTET_STRING, tlv(Tag.ENUMERATED, Uint8Array.of(7))));
  const certIssuer = tlv(Tag.SEQUENCE, encodeOid("2.5.29.29"), critical, tlv(Tag.OCTET_STRING, tlv(Tag.SEQUENCE)));
  const entry = tlv(Tag.SEQUENCE, encodeUnsignedInteger(Uint8Array.of(5)), encodeTime(new Date("2026-01-01T00:00:00Z")), tlv(Tag.SEQUENCE, reason7, certIssuer));
  const deltaIndicator = tlv(Tag.SEQUENCE, encodeOid("2.5.29.27"), critical, tlv(Tag.OCTET_STRING, encodeSmallInteger(3)));
  const tbs = tlv(
    Tag.SEQUENCE, encodeSmallInteger(1), alg.algorithmIdentifier, encodeName([{ type: "CN", value: "x" }]),
    encodeTime(new Date("2026-01-01T00:00:00Z")), encodeTime(new Date("2026-01-08T00:00:00Z")), tlv(Tag.SEQUENCE, entry), tlv(0xa0, tlv(Tag.SEQUENCE, deltaIndicator)),
  );
  const crl = parseCrl(signTbs(tbs));
  assert.deepEqual(crl.unhandledCritical.sort(), ["2.5.29.27", "2.5.29.29"]);
  assert.equal(crl.revoked.get("5")?.reason, "reasonCode(7)");
});

test("a tampered CRL or a re-labelled signature algorithm does not verify", async () => {
  const der = await buildCrl({ ...input, entries: [{ serialHex: "1234", revokedAt: new Date() }] });
  const key = certificatePublicKey(ca.intermediate);
  // flip a byte of the serial: still parses, no longer verifies
  const tampered = Buffer.from(der);
  tampered[tampered.indexOf(Buffer.from([0x02, 0x02, 0x12, 0x34])) + 3] = 0x35;
  const t = parseCrl(tampered);
  assert.ok(t.revoked.has("1235"));
  assert.equal(verifyCrlSignature(t, key), false);
  // a signature by another key
  const other = parseCrl(await buildCrl({ ...input, privateKey: ca.rootKey, entries: [] }));
  assert.equal(verifyCrlSignature(other, key), false);
  assert.equal(verifyCrlSignature({ ...parseCrl(der), signatureOid: "1.2.840.113549.1.1.11" }, key), false);
});

test("garbage, truncation, a certificate, mismatched algorithms and bad PEM throw pki errors", async () => {
  const der = await buildCrl({ ...input, entries: [{ serialHex: "1", revokedAt: new Date() }] });
  assert.throws(() => parseCrl(Buffer.from("hello world, not a CRL")), pkiCode("TESSERA_ERR_PKI_MALFORMED_DER"));
  assert.throws(() => parseCrl(new Uint8Array(0)), pkiCode("TESSERA_ERR_PKI_MALFORMED_DER"));
  assert.throws(() => parseCrl(der.subarray(0, der.length - 5)), pkiCode("TESSERA_ERR_PKI_MALFORMED_DER"));
  assert.throws(() => parseCrl(Buffer.concat([der, Buffer.from([0])])), pkiCode("TESSERA_ERR_PKI_MALFORMED_DER"));
  assert.throws(() => parseCrl(ca.root.der), pkiCode("TESSERA_ERR_PKI_MALFORMED_DER"));
  assert.throws(() => parseCrl("not pem at all"), pkiCode("TESSERA_ERR_PKI_MALFORMED_PEM"));
  assert.throws(() => parseCrl(pemEncode("CERTIFICATE", ca.root.der)), pkiCode("TESSERA_ERR_PKI_MALFORMED_PEM"));
  // inner algorithm differs from the outer one
  const rsaAlg = tlv(Tag.SEQUENCE, encodeOid("1.2.840.113549.1.1.11"), tlv(Tag.NULL));
  const ecAlg = signatureAlgorithmFor(ca.intermediateKey).algorithmIdentifier;
  const tbs = tlv(Tag.SEQUENCE, encodeSmallInteger(1), rsaAlg, ca.intermediate.subject, encodeTime(new Date()));
  assert.throws(() => parseCrl(signTbs(tbs)), (e) => pkiCode("TESSERA_ERR_PKI_MALFORMED_DER")(e) && /mismatch/.test((e as PkiError).detail ?? ""));
  assert.ok(!ecAlg.equals(rsaAlg));
  // version 3 is not a CRL version
  const v3 = tlv(Tag.SEQUENCE, encodeSmallInteger(2), ecAlg, ca.intermediate.subject, encodeTime(new Date()));
  assert.throws(() => parseCrl(signTbs(v3)), pkiCode("TESSERA_ERR_PKI_MALFORMED_DER"));
  // a bad time
  const badTime = tlv(Tag.SEQUENCE, encodeSmallInteger(1), ecAlg, ca.intermediate.subject, tlv(Tag.UTC_TIME, Buffer.from("2601010000Z")));
  assert.throws(() => parseCrl(signTbs(badTime)), pkiCode("TESSERA_ERR_PKI_MALFORMED_DER"));
});
