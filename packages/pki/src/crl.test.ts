import "reflect-metadata";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as x509 from "@peculiar/x509";
import { buildCrl, CRL_REASONS, CrlEntryList, parseCrlReason, type CrlEntry, type CrlInput } from "./crl.js";
import { makeTestCa, type TestCa } from "./test-helpers.js";
import { issuerSkiOf } from "./template.js";
import { certificatePublicKey, ExtOid, verifySignature } from "./certificate.js";
import { decodeOid, decodeTime, encodeOid, encodeTime, encodeUnsignedInteger, readChildren, readWhole, Tag, tlv, tlvValue, toArrayBuffer } from "./der.js";
import { generateSerial, serialToHex } from "./serial.js";
import { pemEncode } from "./pem.js";
import { PkiError, type PkiErrorCode } from "./errors.js";
import type { KeyType } from "./keys.js";

function pkiCode(code: PkiErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, code, `detail: ${err.detail}`);
    return true;
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pki-crl-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe", maxBuffer: 64 << 20 }).toString();
const write = (name: string, data: string | Uint8Array) => fs.writeFileSync(path.join(dir, name), data);

/** `openssl crl -CAfile` verification: "verify OK" goes to stderr (or stdout, by version). */
function opensslCrlVerify(crlFile: string, chainFile: string): string {
  const r = spawnSync("openssl", ["crl", "-inform", "DER", "-in", crlFile, "-CAfile", chainFile, "-noout"], { cwd: dir, encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  return r.stdout + r.stderr;
}

const whole = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);

let ca: TestCa;
let input: Omit<CrlInput, "entries">;
let entries: CrlEntry[];
let crl: Buffer;

before(async () => {
  ca = await makeTestCa("ec-p256");
  write("chain.pem", pemEncode("CERTIFICATE", ca.root.der) + pemEncode("CERTIFICATE", ca.intermediate.der));
  const now = Date.now();
  input = {
    issuer: ca.intermediate.subject,
    issuerKeyId: issuerSkiOf(ca.intermediate),
    privateKey: ca.intermediateKey,
    thisUpdate: new Date(now - 1000 + 250),
    nextUpdate: new Date(now + 7 * 86400_000),
    crlNumber: 42n,
  };
  entries = [
    { serialHex: serialToHex(generateSerial()), revokedAt: new Date(now - 3 * 86400_000 + 999), reason: "keyCompromise" },
    { serialHex: serialToHex(generateSerial()), revokedAt: new Date(now - 2 * 86400_000), reason: "unspecified" },
    { serialHex: serialToHex(generateSerial()), revokedAt: new Date(now - 86400_000), reason: "superseded" },
  ];
  crl = await buildCrl({ ...input, entries });
  write("crl.der", crl);
});

test("OpenSSL verifies the CRL against the chain: verify OK", () => {
  assert.match(opensslCrlVerify("crl.der", "chain.pem"), /verify OK/);
  // signed by the intermediate: the root alone does not verify it
  write("root-only.pem", pemEncode("CERTIFICATE", ca.root.der));
  const r = spawnSync("openssl", ["crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "root-only.pem", "-noout"], { cwd: dir, encoding: "utf8" });
  assert.doesNotMatch(r.stdout + r.stderr, /verify OK/);
});

test("openssl crl -text lists version, issuer, serials (uppercase hex), reasons, CRL number, AKI", () => {
  const text = openssl("crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text");
  assert.match(text, /Version 2 \(0x1\)/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(text, /Issuer: O = Tessera Test, CN = Test Issuing CA/);
  assert.match(text, /X509v3 CRL Number: \n\s+42\n/);
  const keyId = issuerSkiOf(ca.intermediate).toString("hex").toUpperCase().match(/../g)!.join(":");
  assert.match(text, new RegExp(`X509v3 Authority Key Identifier: \\n\\s+(keyid:)?${keyId}\\n`));
  // each entry block: serial, then (for the 1st and 3rd) the reason
  const blocks = text.split("Serial Number: ").slice(1);
  assert.equal(blocks.length, 3);
  assert.ok(blocks[0]!.startsWith(entries[0]!.serialHex.toUpperCase() + "\n"));
  assert.ok(blocks[1]!.startsWith(entries[1]!.serialHex.toUpperCase() + "\n"));
  assert.ok(blocks[2]!.startsWith(entries[2]!.serialHex.toUpperCase() + "\n"));
  assert.match(blocks[0]!, /X509v3 CRL Reason Code: \n\s+Key Compromise/);
  assert.doesNotMatch(blocks[1]!, /Reason Code/, "unspecified is written as no reason (RFC 5280 §5.3.1)");
  assert.match(blocks[2]!, /X509v3 CRL Reason Code: \n\s+Superseded/);
  assert.equal(openssl("crl", "-inform", "DER", "-in", "crl.der", "-noout", "-crlnumber").trim(), "crlNumber=0x2A");
});

test("@peculiar/x509 X509Crl reads entries, dates, reasons, extensions and verifies the signature", async () => {
  const parsed = new x509.X509Crl(toArrayBuffer(crl));
  assert.equal(parsed.issuer, "O=Tessera Test, CN=Test Issuing CA");
  assert.equal(parsed.thisUpdate.getTime(), whole(input.thisUpdate).getTime());
  assert.equal(parsed.nextUpdate?.getTime(), whole(input.nextUpdate).getTime());
  assert.equal(parsed.entries.length, 3);
  parsed.entries.forEach((e, i) => {
    assert.equal(e.serialNumber, entries[i]!.serialHex);
    assert.equal(e.revocationDate.getTime(), whole(entries[i]!.revokedAt).getTime());
  });
  assert.equal(parsed.entries[0]!.reason, x509.X509CrlReason.keyCompromise);
  assert.equal(parsed.entries[1]!.reason, undefined);
  assert.equal(parsed.entries[2]!.reason, x509.X509CrlReason.superseded);
  assert.equal(parsed.findRevoked(entries[2]!.serialHex)?.reason, x509.X509CrlReason.superseded);
  assert.equal(parsed.findRevoked("01"), null);

  const num = parsed.getExtension(ExtOid.crlNumber);
  assert.ok(num, "cRLNumber extension present");
  assert.equal(num.critical, false);
  const numDer = Buffer.from(num.value);
  assert.equal(numDer.toString("hex"), "02012a");
  const aki = parsed.getExtension(x509.AuthorityKeyIdentifierExtension);
  assert.equal(aki?.keyId, issuerSkiOf(ca.intermediate).toString("hex"));
  assert.deepEqual(parsed.extensions.map((e) => e.type), [ExtOid.authorityKeyIdentifier, ExtOid.crlNumber]);

  assert.equal(await parsed.verify({ publicKey: new x509.X509Certificate(toArrayBuffer(ca.intermediate.der)) }), true);
  assert.equal(await parsed.verify({ publicKey: new x509.X509Certificate(toArrayBuffer(ca.root.der)) }), false);
});

test("DER layout: v2, signature algorithm in both places, verifySignature with the CA key", () => {
  const outer = readWhole(crl, Tag.SEQUENCE);
  const [tbsT, algT, sigT] = readChildren(crl, outer);
  const f = readChildren(crl, tbsT!);
  assert.deepEqual(f.map((t) => t.tag), [Tag.INTEGER, Tag.SEQUENCE, Tag.SEQUENCE, Tag.UTC_TIME, Tag.UTC_TIME, Tag.SEQUENCE, 0xa0]);
  assert.equal(crl.subarray(f[0]!.start, f[0]!.end).toString("hex"), "020101");
  assert.ok(crl.subarray(f[1]!.start, f[1]!.end).equals(crl.subarray(algT!.start, algT!.end)));
  assert.ok(crl.subarray(f[2]!.start, f[2]!.end).equals(ca.intermediate.subject));
  assert.equal(decodeTime(crl, f[3]!).getTime(), whole(input.thisUpdate).getTime());
  const sigOid = decodeOid(tlvValue(crl, readChildren(crl, algT!)[0]!));
  const signature = tlvValue(crl, sigT!).subarray(1);
  const tbs = crl.subarray(tbsT!.start, tbsT!.end);
  assert.equal(verifySignature(tbs, sigOid, signature, certificatePublicKey(ca.intermediate)), true);
  assert.equal(verifySignature(tbs, sigOid, signature, certificatePublicKey(ca.root)), false);
});

test("an empty CRL has no revokedCertificates field and is valid", async () => {
  const empty = await buildCrl({ ...input, crlNumber: 1n, entries: [] });
  write("empty.der", empty);
  assert.match(opensslCrlVerify("empty.der", "chain.pem"), /verify OK/);
  assert.match(openssl("crl", "-inform", "DER", "-in", "empty.der", "-noout", "-text"), /No Revoked Certificates\./);
  const [tbsT] = readChildren(empty, readWhole(empty, Tag.SEQUENCE));
  assert.deepEqual(readChildren(empty, tbsT!).map((t) => t.tag), [Tag.INTEGER, Tag.SEQUENCE, Tag.SEQUENCE, Tag.UTC_TIME, Tag.UTC_TIME, 0xa0]);
  const parsed = new x509.X509Crl(toArrayBuffer(empty));
  assert.equal(parsed.entries.length, 0);
  assert.equal(await parsed.verify({ publicKey: new x509.X509Certificate(toArrayBuffer(ca.intermediate.der)) }), true);
  // entries may be any iterable, e.g. a generator
  const fromGenerator = await buildCrl({ ...input, entries: (function* () { yield* entries; })() });
  assert.equal(new x509.X509Crl(toArrayBuffer(fromGenerator)).entries.length, 3);
});

test("serial encodings, every reason code, large CRL numbers and GeneralizedTime from 2050", async () => {
  const reasons = Object.keys(CRL_REASONS) as (keyof typeof CRL_REASONS)[];
  const list: CrlEntry[] = [
    { serialHex: "abc", revokedAt: new Date("2049-12-31T23:59:59Z") }, // odd digit count, no reason
    { serialHex: "80", revokedAt: new Date("2050-01-01T00:00:00Z"), reason: "cACompromise" }, // needs a 0x00 pad
    { serialHex: "1", revokedAt: new Date("2026-01-01T00:00:00Z"), reason: "aACompromise" },
    ...reasons.map((reason, i) => ({ serialHex: (0x1000 + i).toString(16), revokedAt: new Date("2026-02-01T00:00:00Z"), reason })),
  ];
  const big = await buildCrl({ ...input, nextUpdate: new Date("2051-06-07T08:09:10Z"), crlNumber: 0x1234567890abcdef1234n, entries: list });
  write("big-number.der", big);
  assert.match(opensslCrlVerify("big-number.der", "chain.pem"), /verify OK/);
  const text = openssl("crl", "-inform", "DER", "-in", "big-number.der", "-noout", "-text");
  assert.match(text, /Next Update: Jun {2}7 08:09:10 2051 GMT/);
  assert.match(text, /X509v3 CRL Number: \n\s+85968058272638546416180\n/);
  assert.match(text, /Serial Number: 0ABC\n\s+Revocation Date: Dec 31 23:59:59 2049 GMT\n\s+Serial Number: 80\n\s+Revocation Date: Jan {2}1 00:00:00 2050 GMT/);
  assert.match(text, /CA Compromise/);
  assert.match(text, /AA Compromise/);

  const parsed = new x509.X509Crl(toArrayBuffer(big));
  assert.equal(parsed.nextUpdate?.toISOString(), "2051-06-07T08:09:10.000Z");
  assert.equal(parsed.entries[1]!.revocationDate.toISOString(), "2050-01-01T00:00:00.000Z");
  const [tbsT] = readChildren(big, readWhole(big, Tag.SEQUENCE));
  const f = readChildren(big, tbsT!);
  assert.equal(f[4]!.tag, Tag.GENERALIZED_TIME);
  const revoked = readChildren(big, f[5]!);
  assert.equal(big.subarray(revoked[0]!.valueStart, revoked[0]!.valueStart + 4).toString("hex"), "02020abc");
  assert.equal(big.subarray(revoked[1]!.valueStart, revoked[1]!.valueStart + 4).toString("hex"), "02020080");
  const [, revokedAt2050] = readChildren(big, revoked[1]!);
  assert.equal(revokedAt2050!.tag, Tag.GENERALIZED_TIME);
  // every named reason other than unspecified is written with its code
  reasons.forEach((reason, i) => {
    const e = parsed.entries[3 + i]!;
    assert.equal(e.reason, reason === "unspecified" ? undefined : CRL_REASONS[reason], reason);
  });
});

test("entries are encoded byte for byte as composing encodeUnsignedInteger, encodeTime and tlv would", async () => {
  // The reference: the straightforward composition of the generic DER helpers.
  const oidReason = encodeOid(ExtOid.crlReason);
  const reference = (e: CrlEntry) => {
    const serial = Buffer.from(e.serialHex.length % 2 ? "0" + e.serialHex : e.serialHex, "hex");
    const parts: Uint8Array[] = [encodeUnsignedInteger(serial), encodeTime(e.revokedAt)];
    if (e.reason && e.reason !== "unspecified") {
      parts.push(tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, oidReason, tlv(Tag.OCTET_STRING, tlv(Tag.ENUMERATED, Uint8Array.of(CRL_REASONS[e.reason]))))));
    }
    return tlv(Tag.SEQUENCE, ...parts);
  };
  const reasons = [undefined, ...Object.keys(CRL_REASONS)] as (CrlEntry["reason"] | undefined)[];
  const list: CrlEntry[] = [
    { serialHex: "0", revokedAt: new Date("1950-01-01T00:00:00Z") },
    { serialHex: "00", revokedAt: new Date("1949-12-31T23:59:59Z") }, // GeneralizedTime before 1950
    { serialHex: "000000ff", revokedAt: new Date("9999-12-31T23:59:59.999Z") }, // leading zeros stripped, then a pad
    { serialHex: "7f", revokedAt: new Date("0001-02-03T04:05:06Z") },
    { serialHex: "f".repeat(300), revokedAt: new Date("2026-06-30T12:00:00.500Z"), reason: "keyCompromise" }, // long: multi-byte lengths
    { serialHex: "", revokedAt: new Date("2026-01-01T00:00:00Z") },
    { serialHex: "12zz", revokedAt: new Date("2026-01-01T00:00:00Z") }, // stops at the first bad digit, as Buffer.from does
  ];
  // Calendar edges: leap days, century years, the ends of the UTCTime range, times before 1970.
  for (const iso of ["2000-02-29T23:59:59Z", "1900-03-01T00:00:00Z", "2100-02-28T12:00:00Z", "2400-02-29T00:00:00Z", "1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z", "2049-12-31T23:59:59.999Z", "0000-01-01T00:00:00Z"]) {
    list.push({ serialHex: "2a", revokedAt: new Date(iso) });
  }
  for (let i = 0; i < 2000; i++) {
    list.push({
      serialHex: i % 7 === 0 ? i.toString(16) : serialToHex(generateSerial({ kind: "random", bytes: 8 + (i % 13) })),
      revokedAt: new Date(Date.UTC(1940 + (i % 130), i % 12, 1 + (i % 28), i % 24, i % 60, (i * 7) % 60, i % 1000)),
      reason: reasons[i % reasons.length],
    });
  }
  // And every day of four centuries, at a time of day that moves with it.
  for (let day = -200_000; day < 150_000; day += 1) list.push({ serialHex: "1", revokedAt: new Date(day * 86_400_000 + ((day * 7919) % 86_400) * 1000) });
  const der = await buildCrl({ ...input, entries: list });
  const [tbsT] = readChildren(der, readWhole(der, Tag.SEQUENCE));
  const revoked = readChildren(der, tbsT!)[5]!;
  assert.ok(Buffer.from(tlvValue(der, revoked)).equals(Buffer.concat(list.map(reference))));
  // Filled a page at a time into a CrlEntryList that starts tiny (so it grows many times): the same bytes.
  const paged = new CrlEntryList(1);
  for (let i = 0; i < list.length; i += 1000) for (const e of list.slice(i, i + 1000)) paged.add(e);
  assert.equal(paged.count, list.length);
  const fromList = await buildCrl({ ...input, entries: paged });
  const [tbsL] = readChildren(fromList, readWhole(fromList, Tag.SEQUENCE));
  assert.ok(Buffer.from(tlvValue(fromList, readChildren(fromList, tbsL!)[5]!)).equals(Buffer.from(tlvValue(der, revoked))));
  // Dates encodeTime refuses are refused the same way.
  await assert.rejects(buildCrl({ ...input, entries: [{ serialHex: "01", revokedAt: new Date(NaN) }] }), RangeError);
});

for (const type of ["ed25519", "rsa-2048"] as const satisfies readonly KeyType[]) {
  test(`${type} CA: OpenSSL verifies the CRL`, async () => {
    const other = await makeTestCa(type);
    write(`${type}-chain.pem`, pemEncode("CERTIFICATE", other.root.der) + pemEncode("CERTIFICATE", other.intermediate.der));
    const der = await buildCrl({
      issuer: other.intermediate.subject,
      issuerKeyId: issuerSkiOf(other.intermediate),
      privateKey: other.intermediateKey,
      thisUpdate: new Date(),
      nextUpdate: new Date(Date.now() + 86400_000),
      crlNumber: 7n,
      entries: entries.slice(0, 2),
    });
    write(`${type}.der`, der);
    assert.match(opensslCrlVerify(`${type}.der`, `${type}-chain.pem`), /verify OK/);
    assert.equal(await new x509.X509Crl(toArrayBuffer(der)).verify({ publicKey: new x509.X509Certificate(toArrayBuffer(other.intermediate.der)) }), true);
  });
}

test("a 100,000-entry CRL builds in under 2 s, and OpenSSL verifies it", async () => {
  const revokedAt = new Date();
  const many: CrlEntry[] = new Array(100_000);
  for (let i = 0; i < many.length; i++) many[i] = { serialHex: serialToHex(generateSerial()), revokedAt, reason: i % 3 === 0 ? "keyCompromise" : undefined };
  const t0 = performance.now();
  const der = await buildCrl({ ...input, crlNumber: 100_000n, entries: many });
  const ms = performance.now() - t0;
  console.log(`# buildCrl: 100,000 entries, ${der.length} bytes, ${ms.toFixed(0)} ms`);
  assert.ok(ms < 2000, `took ${ms} ms`);
  const [tbsT] = readChildren(der, readWhole(der, Tag.SEQUENCE));
  assert.equal(readChildren(der, readChildren(der, tbsT!)[5]!).length, 100_000);
  write("many.der", der);
  assert.match(opensslCrlVerify("many.der", "chain.pem"), /verify OK/);
});

test("a 300,000-entry CRL builds (entries are not spread as call arguments)", async () => {
  const revokedAt = new Date();
  const t0 = performance.now();
  const der = await buildCrl({
    ...input,
    entries: (function* () {
      for (let i = 1; i <= 300_000; i++) yield { serialHex: i.toString(16), revokedAt };
    })(),
  });
  console.log(`# buildCrl: 300,000 entries, ${der.length} bytes, ${(performance.now() - t0).toFixed(0)} ms`);
  const [tbsT] = readChildren(der, readWhole(der, Tag.SEQUENCE));
  assert.equal(readChildren(der, readChildren(der, tbsT!)[5]!).length, 300_000);
});

test("parseCrlReason", () => {
  assert.equal(parseCrlReason("keyCompromise"), "keyCompromise");
  assert.equal(parseCrlReason("KEY_COMPROMISE"), "keyCompromise");
  assert.equal(parseCrlReason("key-compromise"), "keyCompromise");
  assert.equal(parseCrlReason(" Key Compromise "), "keyCompromise");
  assert.equal(parseCrlReason("1"), "keyCompromise");
  assert.equal(parseCrlReason("superseded"), "superseded");
  assert.equal(parseCrlReason("0"), "unspecified");
  assert.equal(parseCrlReason("remove-from-crl"), "removeFromCRL");
  assert.equal(parseCrlReason("8"), "removeFromCRL");
  assert.equal(parseCrlReason("10"), "aACompromise");
  assert.equal(parseCrlReason("cessation_of_operation"), "cessationOfOperation");
  for (const bad of ["7", "11", "", "compromised", "key compromised"]) {
    assert.throws(() => parseCrlReason(bad), pkiCode("TESSERA_ERR_PKI_INVALID_ARGUMENT"), bad);
  }
  assert.equal(CRL_REASONS.keyCompromise, 1);
  assert.equal(CRL_REASONS.superseded, 4);
  assert.equal(CRL_REASONS.removeFromCRL, 8);
});
