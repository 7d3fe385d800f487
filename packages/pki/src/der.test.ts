import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  decodeOid,
  decodeTime,
  encodeLength,
  encodeOid,
  encodeSmallInteger,
  encodeTime,
  encodeUnsignedInteger,
  readChildren,
  readTlv,
  readWhole,
  Tag,
  tlv,
  tlvBytes,
  tlvValue,
  toArrayBuffer,
} from "./der.js";
import { PkiError, type PkiErrorCode } from "./errors.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => Buffer.from(h.replace(/\s+/g, ""), "hex");

function pkiCode(code: PkiErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, code, `detail: ${err.detail}`);
    return true;
  };
}
const malformed = pkiCode("TESSERA_ERR_PKI_MALFORMED_DER");

test("encodeLength: short form up to 127, then 1..4 length octets at each boundary", () => {
  const cases: [number, string][] = [
    [0, "00"],
    [1, "01"],
    [127, "7f"],
    [128, "8180"],
    [255, "81ff"],
    [256, "820100"],
    [65535, "82ffff"],
    [65536, "83010000"],
    [0xffffff, "83ffffff"],
    [0x1000000, "8401000000"],
    [0x7fffffff, "847fffffff"],
  ];
  for (const [len, want] of cases) assert.equal(hex(encodeLength(len)), want, `length ${len}`);
});

test("tlv + readTlv round-trip at the 127/128/255/256/65535/65536 boundaries", () => {
  for (const n of [0, 1, 127, 128, 255, 256, 65535, 65536, 70000]) {
    const value = Buffer.alloc(n, 0xab);
    if (n > 0) value[n - 1] = 0xcd;
    const der = tlv(Tag.OCTET_STRING, value);
    const lenOctets = n < 128 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 4;
    assert.equal(der.length, 1 + lenOctets + n, `total length for ${n}`);
    assert.equal(der[0], Tag.OCTET_STRING);
    const t = readTlv(der);
    assert.deepEqual(t, { tag: Tag.OCTET_STRING, start: 0, valueStart: 1 + lenOctets, end: der.length });
    assert.ok(Buffer.from(tlvValue(der, t)).equals(value));
    assert.ok(Buffer.from(tlvBytes(der, t)).equals(der));
    // readWhole agrees and the value can be split across several parts
    assert.deepEqual(readWhole(der, Tag.OCTET_STRING), t);
    const half = n >> 1;
    assert.ok(tlv(Tag.OCTET_STRING, value.subarray(0, half), value.subarray(half)).equals(der));
  }
});

test("readTlv honours offset and limit", () => {
  const buf = Buffer.concat([bytes("ffff"), tlv(Tag.INTEGER, Uint8Array.of(5)), bytes("ee")]);
  assert.deepEqual(readTlv(buf, 2), { tag: Tag.INTEGER, start: 2, valueStart: 4, end: 5 });
  // the same TLV cut short by the limit
  assert.throws(() => readTlv(buf, 2, 4), malformed);
});

test("readTlv rejects indefinite, non-minimal, oversized and truncated lengths", () => {
  const bad: [string, string][] = [
    ["indefinite length", "3080 0000"],
    ["long form for a short length", "0481 05 0102030405"],
    ["long form for 127", "0481 7f" + "00".repeat(127)],
    ["leading zero length octet", "0482 0080" + "00".repeat(128)],
    ["leading zero length octet (255)", "0482 00ff" + "00".repeat(255)],
    ["5 length octets", "0485 0000000001 00"],
    ["truncated header", "30"],
    ["empty", ""],
    ["truncated length octets", "0482 01"],
    ["value runs past the buffer", "0405 010203"],
    ["multi-byte tag", "1f81 01 00"],
  ];
  for (const [name, h] of bad) assert.throws(() => readTlv(bytes(h)), malformed, name);
});

test("readWhole rejects the wrong tag and trailing bytes", () => {
  const seq = tlv(Tag.SEQUENCE, tlv(Tag.NULL));
  assert.deepEqual(readWhole(seq, Tag.SEQUENCE), { tag: Tag.SEQUENCE, start: 0, valueStart: 2, end: 4 });
  assert.throws(() => readWhole(seq, Tag.SET), malformed);
  assert.throws(() => readWhole(Buffer.concat([seq, Uint8Array.of(0)]), Tag.SEQUENCE), (e) => malformed(e) && /trailing/.test((e as PkiError).detail!));
});

test("readChildren walks a SEQUENCE and refuses a child that overruns its parent", () => {
  const der = tlv(Tag.SEQUENCE, tlv(Tag.INTEGER, Uint8Array.of(1)), tlv(Tag.NULL), tlv(Tag.OCTET_STRING, bytes("aabb")));
  const kids = readChildren(der, readWhole(der, Tag.SEQUENCE));
  assert.deepEqual(kids.map((k) => k.tag), [Tag.INTEGER, Tag.NULL, Tag.OCTET_STRING]);
  assert.equal(hex(tlvValue(der, kids[2]!)), "aabb");
  assert.deepEqual(readChildren(tlv(Tag.SEQUENCE), readTlv(tlv(Tag.SEQUENCE))), []);
  // SEQUENCE of length 3 whose only child claims 4 content bytes (the outer buffer has them)
  const overrun = bytes("3003 0404 01020304");
  assert.throws(() => readChildren(overrun, readTlv(overrun)), malformed);
});

test("tlvBytes and tlvValue are views, not copies", () => {
  const der = tlv(Tag.SEQUENCE, tlv(Tag.OCTET_STRING, bytes("0102")));
  const [child] = readChildren(der, readTlv(der));
  const view = tlvValue(der, child!);
  assert.equal(view.buffer, der.buffer);
  der[der.length - 1] = 0x99;
  assert.equal(hex(view), "0199");
});

test("encodeUnsignedInteger adds a pad byte for the high bit and strips leading zeros", () => {
  const cases: [string, string][] = [
    ["", "020100"],
    ["00", "020100"],
    ["0000", "020100"],
    ["01", "020101"],
    ["7f", "02017f"],
    ["80", "02020080"],
    ["ff", "020200ff"],
    ["000001", "020101"],
    ["0080", "02020080"],
    ["7fffffffffffffff", "02087fffffffffffffff"],
    ["8000000000000000", "0209008000000000000000"],
  ];
  for (const [mag, want] of cases) assert.equal(hex(encodeUnsignedInteger(bytes(mag))), want, `magnitude ${mag}`);
});

test("encodeSmallInteger", () => {
  const cases: [number, string][] = [
    [0, "020100"],
    [1, "020101"],
    [127, "02017f"],
    [128, "02020080"],
    [255, "020200ff"],
    [256, "02020100"],
    [65535, "020300ffff"],
    [2 ** 32, "02050100000000"],
    [2 ** 40 + 5, "0206010000000005"],
  ];
  for (const [n, want] of cases) assert.equal(hex(encodeSmallInteger(n)), want, `value ${n}`);
});

test("encodeTime: UTCTime 1950..2049, GeneralizedTime outside, whole seconds, Z", () => {
  const cases: [string, number, string][] = [
    ["2049-12-31T23:59:59.999Z", Tag.UTC_TIME, "491231235959Z"],
    ["2050-01-01T00:00:00.000Z", Tag.GENERALIZED_TIME, "20500101000000Z"],
    ["1950-01-01T00:00:00Z", Tag.UTC_TIME, "500101000000Z"],
    ["1949-12-31T23:59:59Z", Tag.GENERALIZED_TIME, "19491231235959Z"],
    ["2026-01-02T03:04:05.678Z", Tag.UTC_TIME, "260102030405Z"],
    ["2000-02-29T12:00:00Z", Tag.UTC_TIME, "000229120000Z"],
    ["9999-12-31T23:59:59Z", Tag.GENERALIZED_TIME, "99991231235959Z"],
  ];
  for (const [iso, tag, text] of cases) {
    const der = encodeTime(new Date(iso));
    assert.equal(der[0], tag, iso);
    assert.equal(Buffer.from(tlvValue(der, readTlv(der))).toString("latin1"), text, iso);
    const back = decodeTime(der, readWhole(der, tag));
    assert.equal(back.getTime(), Math.floor(new Date(iso).getTime() / 1000) * 1000, iso);
  }
});

test("decodeTime: UTCTime pivot at 50, GeneralizedTime fractions, and bad values", () => {
  const utc = (s: string) => tlv(Tag.UTC_TIME, Buffer.from(s, "latin1"));
  const gen = (s: string) => tlv(Tag.GENERALIZED_TIME, Buffer.from(s, "latin1"));
  const dec = (b: Buffer) => decodeTime(b, readTlv(b)).toISOString();
  assert.equal(dec(utc("491231235959Z")), "2049-12-31T23:59:59.000Z");
  assert.equal(dec(utc("500101000000Z")), "1950-01-01T00:00:00.000Z");
  assert.equal(dec(utc("991231235959Z")), "1999-12-31T23:59:59.000Z");
  assert.equal(dec(gen("20510607080910Z")), "2051-06-07T08:09:10.000Z");
  assert.equal(dec(gen("20510607080910.5Z")), "2051-06-07T08:09:10.000Z");
  for (const b of [utc("4912312359Z"), utc("491231235959"), utc("491231235959+0100"), gen("205106070809Z"), gen("20510607080910"), tlv(Tag.OCTET_STRING, Buffer.from("491231235959Z"))]) {
    assert.throws(() => decodeTime(b, readTlv(b)), malformed, hex(b));
  }
  // a GeneralizedTime body under a UTCTime tag is refused too
  assert.throws(() => dec(utc("20510607080910Z")), malformed);
});

const OID_VECTORS: [string, string][] = [
  ["2.999", "06028837"],
  ["1.2.840.113549.1.1.11", "06092a864886f70d01010b"],
  ["0.9.2342.19200300.100.1.25", "060a0992268993f22c640119"],
  ["1.3.101.112", "06032b6570"],
  ["2.5.29.17", "0603551d11"],
  ["1.2.840.10045.4.3.2", "06082a8648ce3d040302"],
  ["2.25.329800735698586629295641978511506172918", "06146983f09da7ebcfdee0c7a1a7b2c0948cc8f9d776"],
  ["0.0", "060100"],
  ["1.39", "06014f"],
  ["2.0", "060150"],
  ["2.47", "06017f"],
  ["2.48", "06028100"],
];

test("encodeOid/decodeOid: known vectors incl. 2.999 and arcs beyond 2^64", () => {
  for (const [oid, der] of OID_VECTORS) {
    assert.equal(hex(encodeOid(oid)), der, oid);
    const b = bytes(der);
    assert.equal(decodeOid(tlvValue(b, readWhole(b, Tag.OID))), oid, oid);
  }
  for (const oid of ["1.2.3.4.5.6.7.8.9.10", "2.5.4.3", "1.3.6.1.4.1.311.60.2.1.3", "2.1000000.18446744073709551616.1"]) {
    const b = encodeOid(oid);
    assert.equal(decodeOid(tlvValue(b, readTlv(b))), oid);
  }
});

test("encodeOid matches `openssl asn1parse -genstr OID:…`", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pki-der-"));
  try {
    for (const [oid] of OID_VECTORS.slice(0, 7)) {
      const out = path.join(dir, "oid.der");
      execFileSync("openssl", ["asn1parse", "-genstr", `OID:${oid}`, "-out", out], { stdio: "pipe" });
      assert.equal(hex(encodeOid(oid)), hex(fs.readFileSync(out)), oid);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("encodeOid/decodeOid reject what they cannot represent", () => {
  assert.throws(() => encodeOid("1"), malformed);
  assert.throws(() => encodeOid("1.2.x"));
  assert.throws(() => decodeOid(new Uint8Array(0)), malformed);
});

test("toArrayBuffer copies exactly the view's bytes", () => {
  const backing = bytes("00112233445566");
  const view = backing.subarray(2, 5);
  const ab = toArrayBuffer(view);
  assert.ok(ab instanceof ArrayBuffer);
  assert.equal(ab.byteLength, 3);
  assert.equal(hex(new Uint8Array(ab)), "223344");
  backing[2] = 0xff;
  assert.equal(new Uint8Array(ab)[0], 0x22);
});
