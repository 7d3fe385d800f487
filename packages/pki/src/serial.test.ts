import { test } from "node:test";
import assert from "node:assert/strict";
import { generateSerial, parseSerialInput, serialFromBigInt, serialHexToDecimal, serialToBigInt, serialToHex } from "./serial.js";
import { encodeUnsignedInteger, readWhole, Tag } from "./der.js";
import { PkiError, type PkiErrorCode } from "./errors.js";

function pkiCode(code: PkiErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, code, `detail: ${err.detail}`);
    return true;
  };
}
const invalid = pkiCode("TESSERA_ERR_PKI_INVALID_ARGUMENT");

test("generateSerial default: 16 octets, positive, top bits 01, DER INTEGER without a pad byte", () => {
  for (let i = 0; i < 200; i++) {
    const s = generateSerial();
    assert.equal(s.length, 16);
    assert.equal(s[0]! >> 6, 0b01, `first byte ${s[0]!.toString(2)}`);
    const v = serialToBigInt(s);
    assert.ok(v >= 1n << 126n && v < 1n << 127n);
    const der = encodeUnsignedInteger(s);
    assert.equal(der.length, 18, "tag + length + 16 octets, no 0x00 pad");
    readWhole(der, Tag.INTEGER);
    assert.equal(serialToHex(s).length, 32, "hex form never loses a digit");
  }
  assert.equal(generateSerial({ kind: "random" }).length, 16);
});

test("generateSerial sets 01 whatever the random source returns", () => {
  assert.equal(generateSerial({ kind: "random" }, (n) => Buffer.alloc(n, 0xff)).toString("hex"), "7f" + "ff".repeat(15));
  assert.equal(generateSerial({ kind: "random" }, (n) => Buffer.alloc(n, 0x00)).toString("hex"), "40" + "00".repeat(15));
  assert.equal(generateSerial({ kind: "int64" }, (n) => Buffer.alloc(n, 0xaa)).toString("hex"), "6a" + "aa".repeat(7));
  const asked: number[] = [];
  generateSerial({ kind: "random", bytes: 20 }, (n) => (asked.push(n), Buffer.alloc(n)));
  generateSerial({ kind: "int64" }, (n) => (asked.push(n), Buffer.alloc(n)));
  assert.deepEqual(asked, [20, 8]);
});

test("generateSerial: other lengths 8..20, outside is refused", () => {
  for (const bytes of [8, 12, 20]) {
    const s = generateSerial({ kind: "random", bytes });
    assert.equal(s.length, bytes);
    assert.equal(s[0]! >> 6, 1);
  }
  assert.throws(() => generateSerial({ kind: "random", bytes: 7 }), invalid);
  assert.throws(() => generateSerial({ kind: "random", bytes: 21 }), invalid);
});

test("generateSerial int64: 8 octets, 19 decimal digits, fits a signed int64", () => {
  for (let i = 0; i < 500; i++) {
    const s = generateSerial({ kind: "int64" });
    assert.equal(s.length, 8);
    const v = serialToBigInt(s);
    assert.ok(v > 0n && v <= 2n ** 63n - 1n, v.toString());
    assert.equal(s.readBigInt64BE(0), v, "reads back identically as a signed int64");
    assert.equal(v.toString().length, 19, v.toString());
    assert.equal(serialHexToDecimal(serialToHex(s)), v.toString());
  }
});

test("1000 draws are distinct (random and int64)", () => {
  for (const form of [{ kind: "random" } as const, { kind: "int64" } as const]) {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) seen.add(generateSerial(form).toString("hex"));
    assert.equal(seen.size, 1000, form.kind);
  }
});

test("serialToHex / serialToBigInt / serialFromBigInt", () => {
  assert.equal(serialToHex(Buffer.from("000102ab", "hex")), "102ab", "no leading zeros, lowercase");
  assert.equal(serialToHex(Buffer.from("00ff", "hex")), "ff", "DER pad byte dropped");
  assert.equal(serialToHex(new Uint8Array(0)), "0");
  assert.equal(serialToHex(255n), "ff");
  assert.equal(serialToBigInt(Buffer.from("0100", "hex")), 256n);
  assert.equal(serialToBigInt(new Uint8Array(0)), 0n);
  assert.equal(serialFromBigInt(0x1abcn).toString("hex"), "1abc");
  assert.equal(serialFromBigInt(0xabcn).toString("hex"), "0abc", "odd digit count padded");
  assert.equal(serialFromBigInt(0n).toString("hex"), "00");
  assert.throws(() => serialFromBigInt(-1n), invalid);
  for (let i = 0; i < 50; i++) {
    const s = generateSerial();
    assert.ok(serialFromBigInt(serialToBigInt(s)).equals(s));
    assert.equal(BigInt("0x" + serialToHex(s)), serialToBigInt(s));
  }
});

test("serialHexToDecimal", () => {
  assert.equal(serialHexToDecimal("0"), "0");
  assert.equal(serialHexToDecimal("ff"), "255");
  assert.equal(serialHexToDecimal("FF"), "255");
  assert.equal(serialHexToDecimal("7fffffffffffffff"), "9223372036854775807");
  assert.equal(serialHexToDecimal("4000000000000000"), "4611686018427387904");
  assert.equal(serialHexToDecimal("0123456789abcdef0123456789abcdef"), "1512366075204170929049582354406559215");
});

test("parseSerialInput: 0x, colon hex, hex with letters, digits (two readings, decimal first)", () => {
  assert.deepEqual(parseSerialInput("0x1f"), [31n]);
  assert.deepEqual(parseSerialInput("0X1F"), [31n]);
  assert.deepEqual(parseSerialInput("1F:2a"), [0x1f2an]);
  assert.deepEqual(parseSerialInput("1:2:3"), [0x010203n], "single-digit colon groups are padded");
  assert.deepEqual(parseSerialInput("4a:3f:00:01"), [0x4a3f0001n]);
  assert.deepEqual(parseSerialInput("abc"), [0xabcn]);
  assert.deepEqual(parseSerialInput("  ABCdef  "), [0xabcdefn]);
  assert.deepEqual(parseSerialInput("1234"), [1234n, 0x1234n]);
  assert.deepEqual(parseSerialInput("0"), [0n], "one reading when both agree");
  assert.deepEqual(parseSerialInput("9"), [9n]);
  assert.deepEqual(parseSerialInput("10"), [10n, 16n]);
  const big = generateSerial();
  // a real serial in uppercase hex: its hex reading is the last one (digits-only hex also reads as decimal first)
  const readings = parseSerialInput(serialToHex(big).toUpperCase());
  assert.equal(readings[readings.length - 1], serialToBigInt(big));
  assert.deepEqual(parseSerialInput("0x" + serialToHex(big)), [serialToBigInt(big)]);
  const colon = (serialToHex(big).match(/../g) ?? []).join(":");
  assert.deepEqual(parseSerialInput(colon), [serialToBigInt(big)]);
});

test("parseSerialInput rejects non-serials", () => {
  for (const bad of ["xyz", "", "   ", "0x", "0xg1", "1f:", ":1f", "1f::2a", "123:4567", "-5", "12 34", "1".repeat(65)]) {
    assert.throws(() => parseSerialInput(bad), invalid, JSON.stringify(bad));
  }
  assert.deepEqual(parseSerialInput("f".repeat(64)), [2n ** 256n - 1n], "64 characters is the limit");
});
