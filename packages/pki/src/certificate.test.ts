import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  basicConstraints,
  certificatePublicKey,
  certificateSans,
  colonHex,
  decodeGeneralNames,
  encodeGeneralNames,
  extendedKeyUsages,
  ExtOid,
  formatSan,
  keyIdentifier,
  parseCertificate,
  parseSan,
  sha256Hex,
  subjectKeyIdentifier,
  verifyCertificateSignature,
  verifySignature,
  type ParsedCertificate,
  type SubjectAltName,
} from "./certificate.js";
import { CertificateTemplate, type ExtensionSpec } from "./template.js";
import { makeTestCa, type TestCa } from "./test-helpers.js";
import { exportPrivateKey, generateKeyPair, keysMatch, spkiDer, type KeyType } from "./keys.js";
import { decodeName, encodeName, formatName } from "./name.js";
import { generateSerial, serialToHex } from "./serial.js";
import { pemEncode } from "./pem.js";
import { encodeOid, encodeTime, readChildren, readWhole, Tag, tlv } from "./der.js";
import { PkiError, type PkiErrorCode } from "./errors.js";

function pkiCode(code: PkiErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, code, `detail: ${err.detail}`);
    return true;
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pki-cert-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" }).toString();
const write = (name: string, data: string | Uint8Array) => fs.writeFileSync(path.join(dir, name), data);

/** `openssl verify` in `dir`: returns stdout, asserts exit 0. */
function opensslVerify(prefix: string, leaf: string): string {
  const r = spawnSync("openssl", ["verify", "-CAfile", `${prefix}root.pem`, "-untrusted", `${prefix}intermediate.pem`, leaf], { cwd: dir, encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  return r.stdout;
}

/** OpenSSL's -dates form, e.g. "Jun  7 08:09:10 2051 GMT". */
function opensslDate(d: Date): string {
  const mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][d.getUTCMonth()]!;
  const hms = d.toISOString().slice(11, 19);
  return `${mon} ${String(d.getUTCDate()).padStart(2, " ")} ${hms} ${d.getUTCFullYear()} GMT`;
}

const deviceSpec: ExtensionSpec = {
  basicConstraints: { ca: false },
  keyUsage: ["digitalSignature"],
  extKeyUsage: ["clientAuth"],
};
const leafSubject = [{ type: "O", value: "Acme Devices" }, { type: "CN", value: "device-0001" }];
const leafSans: SubjectAltName[] = [
  { type: "dns", value: "device-0001.example" },
  { type: "ip", value: "10.1.2.3" },
  { type: "ip", value: "2001:db8::42" },
  { type: "uri", value: "urn:tessera:device:0001" },
  { type: "email", value: "device@example.com" },
];

let ca: TestCa;
let tpl: CertificateTemplate;
let leafKey: { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject };
let serial: Buffer;
let notBefore: Date;
let notAfter: Date;
let leaf: Buffer;
let leaf2051: Buffer;

before(async () => {
  ca = await makeTestCa("ec-p256");
  tpl = await CertificateTemplate.create(deviceSpec, { certificate: ca.intermediate, privateKey: ca.intermediateKey });
  leafKey = generateKeyPair("ec-p256");
  serial = generateSerial();
  notBefore = new Date(Date.now() - 60_000 + 123); // milliseconds on purpose
  notAfter = new Date(Date.now() + 365 * 86400_000 + 456);
  const input = { serial, notBefore, notAfter, subject: encodeName(leafSubject), spki: spkiDer(leafKey.publicKey), subjectAltNames: encodeGeneralNames(leafSans) };
  leaf = await tpl.issue(input);
  leaf2051 = tpl.issueSync({ ...input, serial: generateSerial(), notAfter: new Date("2051-06-07T08:09:10.999Z") });
  write("root.pem", pemEncode("CERTIFICATE", ca.root.der));
  write("intermediate.pem", pemEncode("CERTIFICATE", ca.intermediate.der));
  write("leaf.pem", pemEncode("CERTIFICATE", leaf));
  write("leaf2051.pem", pemEncode("CERTIFICATE", leaf2051));
});

test("a template-issued device certificate chains: openssl verify → leaf.pem: OK", () => {
  assert.equal(opensslVerify("", "leaf.pem").trim(), "leaf.pem: OK");
  assert.equal(opensslVerify("", "leaf2051.pem").trim(), "leaf2051.pem: OK");
  // and not against another root
  const r = spawnSync("openssl", ["verify", "-CAfile", "intermediate.pem", "leaf.pem"], { cwd: dir, encoding: "utf8" });
  assert.notEqual(r.status, 0, "the intermediate alone is not a trust anchor");
  // clientAuth purpose holds, serverAuth does not
  const client = spawnSync("openssl", ["verify", "-purpose", "sslclient", "-CAfile", "root.pem", "-untrusted", "intermediate.pem", "leaf.pem"], { cwd: dir, encoding: "utf8" });
  assert.equal(client.status, 0, client.stdout + client.stderr);
  const server = spawnSync("openssl", ["verify", "-purpose", "sslserver", "-CAfile", "root.pem", "-untrusted", "intermediate.pem", "leaf.pem"], { cwd: dir, encoding: "utf8" });
  assert.notEqual(server.status, 0);
});

test("openssl x509 -text shows the device profile, SANs, key identifiers and the exact serial", () => {
  const text = openssl("x509", "-in", "leaf.pem", "-noout", "-text");
  assert.match(text, /Version: 3 \(0x2\)/);
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
  assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Client Authentication\n/);
  assert.match(text, /X509v3 Subject Alternative Name:\s+DNS:device-0001\.example, IP Address:10\.1\.2\.3, IP Address:2001:DB8:0:0:0:0:0:42, URI:urn:tessera:device:0001, email:device@example\.com\n/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(text, /Subject: O = Acme Devices, CN = device-0001/);
  assert.match(text, /Issuer: O = Tessera Test, CN = Test Issuing CA/);

  const ski = colonHex(keyIdentifier(spkiDer(leafKey.publicKey)).toString("hex"));
  const caSki = colonHex(subjectKeyIdentifier(ca.intermediate)!.toString("hex"));
  assert.ok(text.includes("X509v3 Subject Key Identifier: \n                " + ski), "SKI is SHA-1 of the key bits");
  assert.match(text, new RegExp(`X509v3 Authority Key Identifier: \\n\\s+(keyid:)?${caSki}\\n`));

  // exact serial: colon hex in -text, uppercase hex in -serial
  const hex = serial.toString("hex");
  assert.ok(text.includes((hex.match(/../g) ?? []).join(":")), "colon-hex serial in -text");
  assert.equal(openssl("x509", "-in", "leaf.pem", "-noout", "-serial").trim(), `serial=${hex.toUpperCase()}`);

  // dates, whole seconds
  assert.equal(openssl("x509", "-in", "leaf.pem", "-noout", "-startdate").trim(), `notBefore=${opensslDate(notBefore)}`);
  assert.equal(openssl("x509", "-in", "leaf.pem", "-noout", "-enddate").trim(), `notAfter=${opensslDate(notAfter)}`);
  // subject in RFC 2253 form is what formatName prints
  assert.equal(openssl("x509", "-in", "leaf.pem", "-noout", "-subject", "-nameopt", "RFC2253").trim(), `subject=${formatName(encodeName(leafSubject))}`);
  // fingerprint
  assert.equal(openssl("x509", "-in", "leaf.pem", "-noout", "-fingerprint", "-sha256").trim(), `sha256 Fingerprint=${colonHex(sha256Hex(leaf))}`);
});

test("parseCertificate reads back serial, dates, names, key, SANs, EKU, basicConstraints", () => {
  const c = parseCertificate(leaf);
  assert.equal(c.version, 3);
  assert.ok(c.der.equals(leaf));
  assert.equal(c.serialHex, serialToHex(serial));
  assert.equal(c.serialHex, serial.toString("hex").replace(/^0+/, ""));
  assert.ok(c.serial.equals(serial), "16 octets with 01 top bits need no pad byte");
  assert.equal(c.notBefore.getTime(), Math.floor(notBefore.getTime() / 1000) * 1000);
  assert.equal(c.notAfter.getTime(), Math.floor(notAfter.getTime() / 1000) * 1000);
  assert.ok(c.subject.equals(encodeName(leafSubject)));
  assert.deepEqual(decodeName(c.subject), leafSubject);
  assert.ok(c.issuer.equals(ca.intermediate.subject));
  assert.ok(c.spki.equals(spkiDer(leafKey.publicKey)));
  assert.equal(keysMatch(leafKey.privateKey, certificatePublicKey(c)), true);
  assert.deepEqual(certificateSans(c), leafSans);
  assert.deepEqual(extendedKeyUsages(c), ["1.3.6.1.5.5.7.3.2"]);
  assert.deepEqual(basicConstraints(c), { ca: false, pathLen: undefined });
  assert.ok(subjectKeyIdentifier(c)!.equals(keyIdentifier(c.spki)));
  assert.equal(c.signatureOid, "1.2.840.10045.4.3.2");
  assert.deepEqual(
    c.extensions.map((e) => [e.oid, e.critical]),
    [
      [ExtOid.basicConstraints, true],
      [ExtOid.keyUsage, true],
      [ExtOid.extKeyUsage, false],
      [ExtOid.subjectKeyIdentifier, false],
      [ExtOid.authorityKeyIdentifier, false],
      [ExtOid.subjectAltName, false],
    ],
  );
  // views into der
  assert.equal(c.tbs.buffer, c.der.buffer);
  // PEM text and bytes parse to the same thing
  const pem = pemEncode("CERTIFICATE", leaf);
  assert.ok(parseCertificate(pem).tbs.equals(c.tbs));
  assert.ok(parseCertificate(Buffer.from("junk before\n" + pem)).tbs.equals(c.tbs));
});

test("CA certificates: basicConstraints and key identifiers", () => {
  assert.deepEqual(basicConstraints(ca.root), { ca: true, pathLen: undefined });
  assert.deepEqual(basicConstraints(ca.intermediate), { ca: true, pathLen: 0 });
  assert.equal(extendedKeyUsages(ca.root), undefined);
  assert.ok(subjectKeyIdentifier(ca.root)!.equals(keyIdentifier(ca.root.spki)));
  assert.ok(ca.root.issuer.equals(ca.root.subject));
  assert.ok(ca.intermediate.issuer.equals(ca.root.subject));
  const text = openssl("x509", "-in", "intermediate.pem", "-noout", "-text");
  assert.match(text, /CA:TRUE, pathlen:0/);
  assert.match(text, /Certificate Sign, CRL Sign/);
});

test("notAfter in 2051 is a GeneralizedTime that OpenSSL reads; 2049 stays UTCTime", () => {
  const c = parseCertificate(leaf2051);
  assert.equal(c.notAfter.toISOString(), "2051-06-07T08:09:10.000Z");
  const [tbsT] = readChildren(c.der, readWhole(c.der, Tag.SEQUENCE));
  const validity = readChildren(c.der, tbsT!)[4]!;
  const [nb, na] = readChildren(c.der, validity);
  assert.equal(nb!.tag, Tag.UTC_TIME);
  assert.equal(na!.tag, Tag.GENERALIZED_TIME);
  assert.equal(c.der.subarray(na!.valueStart, na!.end).toString("latin1"), "20510607080910Z");
  assert.equal(openssl("x509", "-in", "leaf2051.pem", "-noout", "-enddate").trim(), "notAfter=Jun  7 08:09:10 2051 GMT");
  assert.match(openssl("asn1parse", "-in", "leaf2051.pem"), /GENERALIZEDTIME\s+:20510607080910Z/);

  const c2049 = parseCertificate(tpl.issueSync({ serial: generateSerial(), notBefore, notAfter: new Date("2049-12-31T23:59:59Z"), subject: encodeName(leafSubject), spki: spkiDer(leafKey.publicKey) }));
  const [t2] = readChildren(c2049.der, readWhole(c2049.der, Tag.SEQUENCE));
  const [, na2] = readChildren(c2049.der, readChildren(c2049.der, t2!)[4]!);
  assert.equal(na2!.tag, Tag.UTC_TIME);
  assert.equal(c2049.notAfter.toISOString(), "2049-12-31T23:59:59.000Z");
});

test("verifyCertificateSignature / verifySignature", () => {
  const c = parseCertificate(leaf);
  assert.equal(verifyCertificateSignature(c, certificatePublicKey(ca.intermediate)), true);
  assert.equal(verifyCertificateSignature(c, certificatePublicKey(ca.root)), false);
  assert.equal(verifyCertificateSignature(ca.intermediate, certificatePublicKey(ca.root)), true);
  assert.equal(verifyCertificateSignature(ca.root, certificatePublicKey(ca.root)), true);
  const tampered = Buffer.from(c.tbs);
  tampered[tampered.length - 1]! ^= 1;
  assert.equal(verifySignature(tampered, c.signatureOid, c.signature, certificatePublicKey(ca.intermediate)), false);
  assert.equal(verifySignature(c.tbs, "1.2.3.4", c.signature, certificatePublicKey(ca.intermediate)), false, "unknown algorithm");
  assert.equal(verifySignature(c.tbs, c.signatureOid, Buffer.from("garbage"), certificatePublicKey(ca.intermediate)), false);
  assert.equal(verifySignature(c.tbs, "1.2.840.113549.1.1.11", c.signature, certificatePublicKey(ca.intermediate)), false, "wrong family");
});

for (const type of ["ec-p384", "ed25519", "rsa-2048"] as const satisfies readonly KeyType[]) {
  test(`${type} CA: issued leaf (Ed25519 subject key) verifies with OpenSSL and with verifyCertificateSignature`, async () => {
    const other = await makeTestCa(type);
    const t = await CertificateTemplate.create(deviceSpec, { certificate: other.intermediate, privateKey: other.intermediateKey });
    const key = generateKeyPair("ed25519");
    const der = await t.issue({
      serial: generateSerial({ kind: "int64" }),
      notBefore: new Date(Date.now() - 1000),
      notAfter: new Date(Date.now() + 86400_000),
      subject: encodeName([{ type: "CN", value: `leaf-${type}` }]),
      spki: spkiDer(key.publicKey),
      subjectAltNames: encodeGeneralNames([{ type: "dns", value: "x.example" }]),
    });
    write(`${type}-root.pem`, pemEncode("CERTIFICATE", other.root.der));
    write(`${type}-intermediate.pem`, pemEncode("CERTIFICATE", other.intermediate.der));
    write(`${type}-leaf.pem`, pemEncode("CERTIFICATE", der));
    assert.equal(opensslVerify(`${type}-`, `${type}-leaf.pem`).trim(), `${type}-leaf.pem: OK`);
    const c = parseCertificate(der);
    assert.equal(verifyCertificateSignature(c, certificatePublicKey(other.intermediate)), true);
    assert.equal(c.signatureOid, { "ec-p384": "1.2.840.10045.4.3.3", ed25519: "1.3.101.112", "rsa-2048": "1.2.840.113549.1.1.11" }[type]);
    assert.equal(c.serial.length, 8);
  });
}

test("parseCertificate reads OpenSSL-made certificates, including v1", () => {
  const key = generateKeyPair("rsa-2048");
  write("o.key", exportPrivateKey(key.privateKey));
  openssl("req", "-x509", "-new", "-key", "o.key", "-subj", "/C=US/CN=openssl", "-days", "30", "-set_serial", "0x00ff01", "-addext", "subjectAltName=IP:::1,DNS:o.example", "-out", "o.pem");
  const c = parseCertificate(fs.readFileSync(path.join(dir, "o.pem"), "utf8"));
  assert.equal(c.version, 3);
  assert.equal(c.serialHex, "ff01");
  assert.deepEqual(certificateSans(c), [{ type: "ip", value: "::1" }, { type: "dns", value: "o.example" }]);
  assert.deepEqual(basicConstraints(c), { ca: true, pathLen: undefined });
  assert.equal(verifyCertificateSignature(c, key.publicKey), true);

  // v1 (no version field, no extensions) built by hand and signed
  const tbs = tlv(
    Tag.SEQUENCE,
    Buffer.from("020200ff", "hex"),
    Buffer.from("300a06082a8648ce3d040302", "hex"),
    encodeName([{ type: "CN", value: "v1" }]),
    tlv(Tag.SEQUENCE, encodeTime(new Date("2024-01-01T00:00:00Z")), encodeTime(new Date("2054-01-01T00:00:00Z"))),
    encodeName([{ type: "CN", value: "v1" }]),
    spkiDer(leafKey.publicKey),
  );
  const v1 = tlv(Tag.SEQUENCE, tbs, Buffer.from("300a06082a8648ce3d040302", "hex"), tlv(Tag.BIT_STRING, Buffer.of(0), crypto.sign("sha256", tbs, leafKey.privateKey)));
  const p = parseCertificate(v1);
  assert.equal(p.version, 1);
  assert.equal(p.serialHex, "ff");
  assert.ok(p.serial.equals(Buffer.from("00ff", "hex")), "raw serial keeps the DER pad byte");
  assert.deepEqual(p.extensions, []);
  assert.equal(basicConstraints(p), undefined);
  assert.equal(extendedKeyUsages(p), undefined);
  assert.equal(subjectKeyIdentifier(p), undefined);
  assert.deepEqual(certificateSans(p), []);
  assert.equal(p.notAfter.toISOString(), "2054-01-01T00:00:00.000Z");
  assert.equal(verifyCertificateSignature(p, leafKey.publicKey), true);
  write("v1.pem", pemEncode("CERTIFICATE", v1));
  assert.match(openssl("x509", "-in", "v1.pem", "-noout", "-text"), /Version: 1 \(0x0\)/);
});

test("parseCertificate rejects malformed input", async () => {
  const malformed = pkiCode("TESSERA_ERR_PKI_MALFORMED_DER");
  assert.throws(() => parseCertificate(Buffer.from("3000", "hex")), malformed);
  assert.throws(() => parseCertificate(Buffer.concat([Buffer.of(0x30, 0x62), Buffer.from(Array.from({ length: 98 }, (_, i) => (i * 37 + 11) & 0xff))])), malformed);
  assert.throws(() => parseCertificate(leaf.subarray(0, leaf.length - 5)), malformed);
  assert.throws(() => parseCertificate(Buffer.concat([leaf, Buffer.of(0)])), malformed);
  assert.throws(() => parseCertificate(tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, Buffer.from("020101", "hex")), Buffer.from("3000", "hex"), tlv(Tag.BIT_STRING, Buffer.of(0)))), malformed);
  assert.throws(() => parseCertificate("no pem here"), pkiCode("TESSERA_ERR_PKI_MALFORMED_PEM"));
  assert.throws(() => parseCertificate(pemEncode("X509 CRL", leaf)), pkiCode("TESSERA_ERR_PKI_MALFORMED_PEM"));
});

test("keyIdentifier is SHA-1 of the subjectPublicKey bits; sha256Hex; colonHex", () => {
  const spki = spkiDer(leafKey.publicKey);
  const raw = spki.subarray(spki.length - 65); // uncompressed P-256 point
  assert.equal(raw[0], 0x04);
  assert.ok(keyIdentifier(spki).equals(crypto.createHash("sha1").update(raw).digest()));
  assert.throws(() => keyIdentifier(Buffer.from("3003020101", "hex")), pkiCode("TESSERA_ERR_PKI_MALFORMED_DER"));
  assert.equal(sha256Hex(Buffer.from("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(colonHex("0a1bff"), "0A:1B:FF");
  assert.equal(colonHex(""), "");
});

test("encodeGeneralNames/decodeGeneralNames round-trip, incl. IPv6 forms", () => {
  const names: SubjectAltName[] = [
    { type: "dns", value: "a.example" },
    { type: "dns", value: "*.wild.example" },
    { type: "email", value: "x@y.example" },
    { type: "uri", value: "spiffe://trust/ns/a" },
    { type: "ip", value: "0.0.0.0" },
    { type: "ip", value: "255.255.255.255" },
    { type: "ip", value: "::1" },
    { type: "ip", value: "::" },
    { type: "ip", value: "fe80::" },
    { type: "ip", value: "2001:db8::1" },
    { type: "ip", value: "2001:db8:1:2:3:4:5:6" },
  ];
  const der = encodeGeneralNames(names);
  assert.deepEqual(decodeGeneralNames(der), names);
  assert.equal(encodeGeneralNames([{ type: "ip", value: "192.0.2.1" }]).toString("hex"), "30068704c0000201");
  assert.equal(encodeGeneralNames([{ type: "dns", value: "a" }]).toString("hex"), "3003820161");
  assert.equal(encodeGeneralNames([]).toString("hex"), "3000");
  // IPv6 parsing variants
  const ip = (v: string) => decodeGeneralNames(encodeGeneralNames([{ type: "ip", value: v }]))[0]!.value;
  assert.equal(ip("[2001:DB8::1]"), "2001:db8::1");
  assert.equal(ip("::ffff:192.0.2.1"), "::ffff:c000:201");
  assert.equal(ip("2001:0db8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
  assert.equal(ip("1::"), "1::");
  for (const bad of ["1.2.3.256", "1::2::3", "12345::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "g::1"]) {
    assert.throws(() => encodeGeneralNames([{ type: "ip", value: bad }]), pkiCode("TESSERA_ERR_PKI_INVALID_ARGUMENT"), bad);
  }
});

test("decodeGeneralNames skips names of other types", () => {
  const dirName = tlv(0xa4, encodeName([{ type: "CN", value: "x" }]));
  const otherName = tlv(0xa0, encodeOid("1.3.6.1.4.1.311.20.2.3"), tlv(0xa0, tlv(Tag.UTF8_STRING, Buffer.from("upn"))));
  const der = tlv(Tag.SEQUENCE, dirName, tlv(0x82, Buffer.from("kept.example")), otherName, tlv(0x87, Buffer.from([1, 2, 3])));
  assert.deepEqual(decodeGeneralNames(der), [{ type: "dns", value: "kept.example" }]);
});

test("formatSan / parseSan", () => {
  assert.equal(formatSan({ type: "dns", value: "a" }), "DNS:a");
  assert.equal(formatSan({ type: "ip", value: "::1" }), "IP Address:::1");
  assert.equal(formatSan({ type: "uri", value: "urn:x" }), "URI:urn:x");
  assert.equal(formatSan({ type: "email", value: "a@b" }), "email:a@b");
  assert.deepEqual(parseSan("dns:a.example"), { type: "dns", value: "a.example" });
  assert.deepEqual(parseSan("DNS:a.example"), { type: "dns", value: "a.example" });
  assert.deepEqual(parseSan("ip:10.0.0.1"), { type: "ip", value: "10.0.0.1" });
  assert.deepEqual(parseSan("URI:https://x.example/a"), { type: "uri", value: "https://x.example/a" });
  assert.deepEqual(parseSan("email:a@b.example"), { type: "email", value: "a@b.example" });
  assert.deepEqual(parseSan(" host.example "), { type: "dns", value: "host.example" });
  assert.deepEqual(parseSan("192.0.2.7"), { type: "ip", value: "192.0.2.7" });
  assert.deepEqual(parseSan("2001:db8::1"), { type: "ip", value: "2001:db8::1" });
});

test("a leaf's authorityKeyIdentifier is its issuer's subjectKeyIdentifier", () => {
  const c: ParsedCertificate = parseCertificate(leaf);
  const aki = c.extensions.find((e) => e.oid === ExtOid.authorityKeyIdentifier)!;
  // AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier }
  const seq = readWhole(aki.value, Tag.SEQUENCE);
  const [kid] = readChildren(aki.value, seq);
  assert.equal(kid!.tag, 0x80);
  assert.ok(aki.value.subarray(kid!.valueStart, kid!.end).equals(subjectKeyIdentifier(ca.intermediate)!));
});

test("verifySignature refuses a signature whose algorithm names another key type", () => {
  const c = parseCertificate(leaf);
  const key = certificatePublicKey(ca.intermediate);
  for (const oid of ["1.2.840.113549.1.1.11", "1.3.101.112", "1.2.840.113549.1.1.5"]) {
    assert.equal(verifySignature(c.tbs, oid, c.signature, key), false, oid);
  }
  // and the right label still verifies, as does another ECDSA digest label with a matching digest
  assert.equal(verifySignature(c.tbs, "1.2.840.10045.4.3.2", c.signature, key), true);
  assert.equal(verifySignature(c.tbs, "1.2.840.10045.4.3.3", c.signature, key), false, "SHA-384 label, SHA-256 signature");
});
