import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildCsr, challengePasswordAttribute, csrChallengePassword, isDerSequence, parseAndVerifyCsr, parseAndVerifyCsrSync, parseCsr, type CsrPolicy, type ParsedCsr } from "./csr.js";
import { exportPrivateKey, generateKeyPair, keysMatch, spkiDer, type KeyType } from "./keys.js";
import { decodeName, encodeName, formatName } from "./name.js";
import { decodeGeneralNames, encodeGeneralNames, ExtOid } from "./certificate.js";
import { pemEncode } from "./pem.js";
import { readChildren, readWhole, Tag, tlv, tlvBytes } from "./der.js";
import { PkiError, type PkiErrorCode } from "./errors.js";

function pkiCode(code: PkiErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, code, `detail: ${err.detail}`);
    return true;
  };
}

/** Both variants must fail with `code`. */
async function rejectsBoth(input: Uint8Array | string, code: PkiErrorCode, policy?: CsrPolicy, what = "") {
  assert.throws(() => parseAndVerifyCsrSync(input, policy), pkiCode(code), `sync ${what}`);
  await assert.rejects(parseAndVerifyCsr(input, policy), pkiCode(code), `async ${what}`);
}

/** Both variants must accept; returns the async result after checking the sync one agrees. */
async function acceptsBoth(input: Uint8Array | string, policy?: CsrPolicy): Promise<ParsedCsr> {
  const a = await parseAndVerifyCsr(input, policy);
  const s = parseAndVerifyCsrSync(input, policy);
  assert.ok(a.der.equals(s.der) && a.subject.equals(s.subject) && a.spki.equals(s.spki));
  assert.deepEqual(a.key, s.key);
  assert.deepEqual(a.extensions, s.extensions);
  return a;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pki-csr-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" }).toString();
const write = (name: string, data: string | Uint8Array) => fs.writeFileSync(path.join(dir, name), data);
const read = (name: string) => fs.readFileSync(path.join(dir, name));

const FAMILIES = [
  { type: "ec-p256", key: { family: "ec", curve: "P-256", bits: 256 }, sigOid: "1.2.840.10045.4.3.2" },
  { type: "ec-p384", key: { family: "ec", curve: "P-384", bits: 384 }, sigOid: "1.2.840.10045.4.3.3" },
  { type: "ed25519", key: { family: "ed25519", bits: 256 }, sigOid: "1.3.101.112" },
  { type: "rsa-2048", key: { family: "rsa", bits: 2048 }, sigOid: "1.2.840.113549.1.1.11" },
] as const;

const keyPairs = new Map<string, { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject }>();
function pair(type: KeyType) {
  if (!keyPairs.has(type)) keyPairs.set(type, generateKeyPair(type));
  return keyPairs.get(type)!;
}
const subject = [{ type: "O", value: "Acme" }, { type: "CN", value: "device-é1" }];
const sans = [
  { type: "dns", value: "device-1.example" },
  { type: "ip", value: "10.1.2.3" },
  { type: "ip", value: "2001:db8::7" },
  { type: "uri", value: "urn:tessera:device:1" },
  { type: "email", value: "ops@example.com" },
] as const;

function ourCsr(type: KeyType, extra: Partial<Parameters<typeof buildCsr>[0]> = {}): Buffer {
  return buildCsr({
    subject,
    privateKey: pair(type).privateKey,
    extensions: [{ oid: ExtOid.subjectAltName, critical: false, value: encodeGeneralNames(sans) }],
    ...extra,
  });
}

/** A CSR from `openssl req -new` for our key of `type`; returns PEM text. */
function opensslCsr(type: KeyType, ...extra: string[]): string {
  const keyFile = `${type}.key`;
  write(keyFile, exportPrivateKey(pair(type).privateKey));
  const out = `${type}-${crypto.randomBytes(4).toString("hex")}.csr`;
  openssl("req", "-new", "-key", keyFile, "-subj", "/O=Acme/CN=ossl-device", "-addext", "subjectAltName=DNS:ossl.example,IP:192.0.2.1,URI:urn:x:y", ...extra, "-out", out);
  return read(out).toString("latin1");
}

/** Flips one bit of byte `index` (negative counts from the end). */
function flip(der: Buffer, index: number): Buffer {
  const copy = Buffer.from(der);
  const i = index < 0 ? copy.length + index : index;
  copy[i] = copy[i]! ^ 0x01;
  return copy;
}

for (const f of FAMILIES) {
  test(`buildCsr ${f.type}: both variants accept; fields, SANs, key and OpenSSL agree`, async () => {
    const csr = ourCsr(f.type);
    const p = await acceptsBoth(csr);
    assert.ok(p.der.equals(csr));
    assert.deepEqual(p.key, f.key);
    assert.equal(p.signatureOid, f.sigOid);
    assert.ok(p.subject.equals(encodeName(subject)));
    assert.deepEqual(decodeName(p.subject), subject);
    assert.ok(p.spki.equals(spkiDer(pair(f.type).publicKey)));
    assert.equal(keysMatch(pair(f.type).privateKey, p.publicKey), true);
    assert.deepEqual(p.attributes, []);
    assert.equal(p.extensions.length, 1);
    assert.equal(p.extensions[0]!.oid, ExtOid.subjectAltName);
    assert.equal(p.extensions[0]!.critical, false);
    assert.deepEqual(decodeGeneralNames(p.extensions[0]!.value), sans);

    // PEM text and PEM bytes are read too
    const pem = pemEncode("CERTIFICATE REQUEST", csr);
    assert.ok((await acceptsBoth(pem)).der.equals(csr));
    assert.ok((await acceptsBoth(Buffer.from(pem))).der.equals(csr));
    assert.ok((await acceptsBoth(pemEncode("NEW CERTIFICATE REQUEST", csr))).der.equals(csr));

    // OpenSSL verifies our self-signature and reads our SANs
    write(`ours-${f.type}.csr`, pem);
    const out = execFileSync("openssl", ["req", "-in", `ours-${f.type}.csr`, "-verify", "-noout", "-text"], { cwd: dir, stdio: "pipe", encoding: "utf8" });
    assert.match(out, /DNS:device-1\.example, IP Address:10\.1\.2\.3, IP Address:2001:DB8:0:0:0:0:0:7, URI:urn:tessera:device:1, email:ops@example\.com/);
    const verify = spawnSync("openssl", ["req", "-in", `ours-${f.type}.csr`, "-verify", "-noout"], { cwd: dir, encoding: "utf8" });
    assert.equal(verify.status, 0);
    assert.match(verify.stdout + verify.stderr, /verify OK/);
  });

  test(`openssl req -new ${f.type}: both variants accept (PEM and DER); SANs from extensionRequest`, async () => {
    const pem = opensslCsr(f.type);
    const p = await acceptsBoth(pem);
    assert.deepEqual(p.key, f.key);
    assert.deepEqual(decodeName(p.subject), [{ type: "O", value: "Acme" }, { type: "CN", value: "ossl-device" }]);
    assert.ok(p.spki.equals(spkiDer(pair(f.type).publicKey)));
    const san = p.extensions.find((e) => e.oid === ExtOid.subjectAltName);
    assert.ok(san, "subjectAltName requested");
    assert.deepEqual(decodeGeneralNames(san.value), [
      { type: "dns", value: "ossl.example" },
      { type: "ip", value: "192.0.2.1" },
      { type: "uri", value: "urn:x:y" },
    ]);
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    assert.ok((await acceptsBoth(der)).der.equals(der));
    if (f.type.startsWith("ec-")) assert.equal(p.signatureOid, "1.2.840.10045.4.3.2", "openssl's default digest is SHA-256 for every curve");
    else assert.equal(p.signatureOid, f.sigOid);
  });

  test(`flipped signature or body byte ${f.type} → TESSERA_ERR_PKI_CSR_SIGNATURE`, async () => {
    const csr = ourCsr(f.type);
    await rejectsBoth(flip(csr, -1), "TESSERA_ERR_PKI_CSR_SIGNATURE", undefined, "last signature byte");
    await rejectsBoth(flip(csr, -20), "TESSERA_ERR_PKI_CSR_SIGNATURE", undefined, "inside the signature");
    // a byte of the CN value inside CertificationRequestInfo
    const cn = csr.indexOf(Buffer.from("device-"));
    assert.ok(cn > 0);
    await rejectsBoth(flip(csr, cn), "TESSERA_ERR_PKI_CSR_SIGNATURE", undefined, "subject byte");
    const der = Buffer.from(opensslCsr(f.type).replace(/-----[^-]+-----|\s/g, ""), "base64");
    await rejectsBoth(flip(der, -1), "TESSERA_ERR_PKI_CSR_SIGNATURE", undefined, "openssl CSR");
  });
}

test("buildCsr with P-521: accepted with ecdsa-with-SHA512", async () => {
  const p = await acceptsBoth(ourCsr("ec-p521"));
  assert.deepEqual(p.key, { family: "ec", curve: "P-521", bits: 521 });
  assert.equal(p.signatureOid, "1.2.840.10045.4.3.4");
});

test("RSA 1024 → TESSERA_ERR_PKI_WEAK_KEY (OpenSSL's and ours)", async () => {
  const weak = crypto.generateKeyPairSync("rsa", { modulusLength: 1024 });
  write("rsa1024.key", weak.privateKey.export({ format: "pem", type: "pkcs8" }));
  openssl("req", "-new", "-key", "rsa1024.key", "-subj", "/CN=weak", "-out", "rsa1024.csr");
  await rejectsBoth(read("rsa1024.csr"), "TESSERA_ERR_PKI_WEAK_KEY");
  const ours = buildCsr({ subject: [{ type: "CN", value: "weak" }], privateKey: weak.privateKey });
  await rejectsBoth(ours, "TESSERA_ERR_PKI_WEAK_KEY");
  // the policy can lower the bar
  const p = await acceptsBoth(ours, { minRsaBits: 1024 });
  assert.deepEqual(p.key, { family: "rsa", bits: 1024 });
});

test("SHA-1 signed CSRs from `openssl req -sha1` → TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM", async () => {
  for (const type of ["rsa-2048", "ec-p256"] as const) {
    const pem = opensslCsr(type, "-sha1");
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    assert.ok(der.includes(Buffer.from(type === "rsa-2048" ? "2a864886f70d010105" : "2a8648ce3d0401", "hex")), "SHA-1 OID present");
    await rejectsBoth(pem, "TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM", undefined, type);
  }
});

test("a signature algorithm that does not match the key → TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM", async () => {
  const csr = ourCsr("rsa-2048");
  const [info, , sig] = readChildren(csr, readWhole(csr, Tag.SEQUENCE));
  const ecdsaAlg = Buffer.from("300a06082a8648ce3d040302", "hex");
  const forged = tlv(Tag.SEQUENCE, tlvBytes(csr, info!), ecdsaAlg, tlvBytes(csr, sig!));
  await rejectsBoth(forged, "TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM");
  // RSA-PSS (1.2.840.113549.1.1.10) is not supported
  const pss = tlv(Tag.SEQUENCE, tlvBytes(csr, info!), Buffer.from("300b06092a864886f70d01010a", "hex"), tlvBytes(csr, sig!));
  await rejectsBoth(pss, "TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM");
});

test("garbage, truncated, trailing bytes and non-CSR DER → TESSERA_ERR_PKI_MALFORMED_DER", async () => {
  const csr = ourCsr("ec-p256");
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["one byte", Uint8Array.of(0x30)],
    ["noise in a SEQUENCE", Buffer.concat([Buffer.of(0x30, 0x82, 0x01, 0x00), Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 37 + 11) & 0xff))])],
    ["not a sequence", Buffer.from("020101", "hex")],
    ["empty sequence", Buffer.from("3000", "hex")],
    ["truncated by 1", csr.subarray(0, csr.length - 1)],
    ["truncated by half", csr.subarray(0, csr.length >> 1)],
    ["trailing zero byte", Buffer.concat([csr, Buffer.of(0)])],
    ["trailing TLV", Buffer.concat([csr, Buffer.from("0500", "hex")])],
    ["indefinite length", Buffer.concat([Buffer.of(0x30, 0x80), csr.subarray(2), Buffer.of(0, 0)])],
  ];
  for (const [what, der] of cases) await rejectsBoth(der, "TESSERA_ERR_PKI_MALFORMED_DER", undefined, what);

  // structurally wrong CSRs (rebuilt around the real parts)
  const [info, alg, sig] = readChildren(csr, readWhole(csr, Tag.SEQUENCE));
  const [ver, subj, spki, attrs] = readChildren(csr, info!);
  const b = (t: typeof info) => tlvBytes(csr, t!);
  const rebuild = (...infoParts: Uint8Array[]) => tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, ...infoParts), b(alg), b(sig));
  await rejectsBoth(rebuild(Buffer.from("020101", "hex"), b(subj), b(spki), b(attrs)), "TESSERA_ERR_PKI_MALFORMED_DER", undefined, "version 2");
  await rejectsBoth(rebuild(b(subj), b(spki), b(attrs)), "TESSERA_ERR_PKI_MALFORMED_DER", undefined, "no version");
  await rejectsBoth(rebuild(b(ver), b(subj), b(spki), tlv(0xa1)), "TESSERA_ERR_PKI_MALFORMED_DER", undefined, "attributes tag");
  await rejectsBoth(tlv(Tag.SEQUENCE, b(info), b(alg), tlv(Tag.BIT_STRING, Buffer.of(3), tlvBytes(csr, sig!).subarray(3))), "TESSERA_ERR_PKI_MALFORMED_DER", undefined, "unused bits");
  await rejectsBoth(tlv(Tag.SEQUENCE, b(info), b(alg)), "TESSERA_ERR_PKI_MALFORMED_DER", undefined, "no signature");
  // a certificate is not a CSR
  write("self.key", exportPrivateKey(pair("ec-p256").privateKey));
  openssl("req", "-x509", "-new", "-key", "self.key", "-subj", "/CN=x", "-days", "1", "-outform", "DER", "-out", "self.der");
  await rejectsBoth(read("self.der"), "TESSERA_ERR_PKI_MALFORMED_DER", undefined, "certificate");
});

test("bad PEM → TESSERA_ERR_PKI_MALFORMED_PEM", async () => {
  const csr = ourCsr("ec-p256");
  await rejectsBoth("this is not a CSR", "TESSERA_ERR_PKI_MALFORMED_PEM", undefined, "no block");
  await rejectsBoth("-----BEGIN CERTIFICATE REQUEST-----\nMIIB!!!!\n-----END CERTIFICATE REQUEST-----\n", "TESSERA_ERR_PKI_MALFORMED_PEM", undefined, "bad base64");
  await rejectsBoth(pemEncode("CERTIFICATE", csr), "TESSERA_ERR_PKI_MALFORMED_PEM", undefined, "wrong label");
  await rejectsBoth(Buffer.from(pemEncode("X509 CRL", csr)), "TESSERA_ERR_PKI_MALFORMED_PEM", undefined, "wrong label (bytes)");
  // a well-formed PEM block around garbage is a DER problem
  await rejectsBoth(pemEncode("CERTIFICATE REQUEST", Buffer.from("hello")), "TESSERA_ERR_PKI_MALFORMED_DER", undefined, "garbage in PEM");
});

test("policy: ecCurves, allowRsa, allowEd25519, minRsaBits", async () => {
  const p256 = ourCsr("ec-p256");
  const p384 = ourCsr("ec-p384");
  const ed = ourCsr("ed25519");
  const rsa = ourCsr("rsa-2048");
  const p224 = ourCsr("ec-p224");
  const weak = "TESSERA_ERR_PKI_WEAK_KEY";

  // defaults: P-224 is not allowed, the rest are
  await rejectsBoth(p224, weak, {}, "P-224 by default");
  for (const csr of [p256, p384, ed, rsa]) await acceptsBoth(csr, {});
  assert.deepEqual((await acceptsBoth(p224, { ecCurves: ["P-224"] })).key, { family: "ec", curve: "P-224", bits: 224 });

  await acceptsBoth(p256, { ecCurves: ["P-256"] });
  await rejectsBoth(p384, weak, { ecCurves: ["P-256"] }, "P-384 outside ecCurves");
  await rejectsBoth(p256, weak, { ecCurves: [] }, "no curves");
  await acceptsBoth(rsa, { ecCurves: ["P-256"] });

  await rejectsBoth(rsa, weak, { allowRsa: false }, "allowRsa false");
  await acceptsBoth(p256, { allowRsa: false });
  await acceptsBoth(ed, { allowRsa: false });

  await rejectsBoth(ed, weak, { allowEd25519: false }, "allowEd25519 false");
  await acceptsBoth(p256, { allowEd25519: false });
  await acceptsBoth(rsa, { allowEd25519: false });

  await rejectsBoth(rsa, weak, { minRsaBits: 3072 }, "RSA 2048 < 3072");
  await acceptsBoth(rsa, { minRsaBits: 2048 });
  await acceptsBoth(p256, { minRsaBits: 3072 });
});

test("requested extensions: several, critical flag, other attributes kept apart", async () => {
  const challenge = tlv(Tag.UTF8_STRING, Buffer.from("s3cret"));
  const csr = buildCsr({
    subject: [{ type: "CN", value: "x" }],
    privateKey: pair("ec-p256").privateKey,
    extensions: [
      { oid: ExtOid.subjectAltName, critical: true, value: encodeGeneralNames([{ type: "dns", value: "a.example" }]) },
      { oid: ExtOid.basicConstraints, critical: false, value: Buffer.from("3000", "hex") },
    ],
    attributes: [{ oid: "1.2.840.113549.1.9.7", values: [challenge] }],
  });
  const p = await acceptsBoth(csr);
  assert.deepEqual(
    p.extensions.map((e) => [e.oid, e.critical, e.value.toString("hex")]),
    [
      [ExtOid.subjectAltName, true, encodeGeneralNames([{ type: "dns", value: "a.example" }]).toString("hex")],
      [ExtOid.basicConstraints, false, "3000"],
    ],
  );
  assert.equal(p.attributes.length, 1);
  assert.equal(p.attributes[0]!.oid, "1.2.840.113549.1.9.7");
  assert.ok(p.attributes[0]!.values[0]!.equals(challenge));

  // OpenSSL sees the same request
  write("attrs.csr", pemEncode("CERTIFICATE REQUEST", csr));
  const text = openssl("req", "-in", "attrs.csr", "-noout", "-text");
  assert.match(text, /X509v3 Subject Alternative Name: critical\s+DNS:a\.example/);
  assert.match(text, /challengePassword\s+:s3cret/);
});

test("an OpenSSL CSR with a challengePassword and no extensions; an empty subject", async () => {
  write("cp.cnf", "[req]\ndistinguished_name = dn\nattributes = attrs\nprompt = no\n[dn]\nCN = cp\n[attrs]\nchallengePassword = pass1234\n");
  write("cp.key", exportPrivateKey(pair("ec-p256").privateKey));
  openssl("req", "-new", "-config", "cp.cnf", "-key", "cp.key", "-out", "cp.csr");
  const p = await acceptsBoth(read("cp.csr"));
  assert.deepEqual(p.extensions, []);
  assert.deepEqual(p.attributes.map((a) => a.oid), ["1.2.840.113549.1.9.7"]);
  assert.equal(p.attributes[0]!.values[0]!.subarray(2).toString(), "pass1234");

  const empty = await acceptsBoth(buildCsr({ subject: [], privateKey: pair("ed25519").privateKey }));
  assert.equal(empty.subject.toString("hex"), "3000");
  assert.deepEqual(empty.extensions, []);
});

test("a CSR without the attributes field at all is accepted", async () => {
  const { privateKey } = pair("ec-p256");
  const info = tlv(Tag.SEQUENCE, Buffer.from("020100", "hex"), encodeName([{ type: "CN", value: "bare" }]), spkiDer(privateKey));
  const sig = crypto.sign("sha256", info, privateKey);
  const csr = tlv(Tag.SEQUENCE, info, Buffer.from("300a06082a8648ce3d040302", "hex"), tlv(Tag.BIT_STRING, Buffer.of(0), sig));
  const p = await acceptsBoth(csr);
  assert.deepEqual(p.extensions, []);
  assert.deepEqual(p.attributes, []);
});

test("isDerSequence", () => {
  assert.equal(isDerSequence(ourCsr("ec-p256")), true);
  assert.equal(isDerSequence(Buffer.from("-----BEGIN")), false);
  assert.equal(isDerSequence(Buffer.from("0201", "hex")), false);
  assert.equal(isDerSequence(new Uint8Array(0)), false);
  assert.equal(isDerSequence(Buffer.from("3080", "hex")), false);
});

test("challengePassword: built as PrintableString or UTF8String, read back; parseCsr skips the signature check", async () => {
  const { privateKey } = generateKeyPair("ec-p256");
  for (const pw of ["AbC+/9==", "päss wörd"]) {
    const der = buildCsr({ subject: [{ type: "CN", value: "x" }], privateKey, attributes: [challengePasswordAttribute(pw)] });
    assert.equal(csrChallengePassword(parseCsr(der)), pw);
  }
  const plain = buildCsr({ subject: [{ type: "CN", value: "x" }], privateKey });
  assert.equal(csrChallengePassword(parseCsr(plain)), undefined);
  // A corrupted signature still parses (serverkeygen ignores it) but fails verification.
  const broken = Buffer.from(plain);
  broken[broken.length - 1] = broken[broken.length - 1]! ^ 0xff;
  assert.equal(formatName(parseCsr(broken).subject), "CN=x");
  await assert.rejects(parseAndVerifyCsr(broken), { code: "TESSERA_ERR_PKI_CSR_SIGNATURE" });
});
