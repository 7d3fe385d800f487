/**
 * protomfx.Command encoding against bytes worked out by hand from the
 * protobuf wire format: key = field << 3 | wire type (1 → 0x0a, 3 → 0x1a,
 * 5 → 0x2a as length-delimited, 6 → 0x30 as varint), lengths and int64 as
 * base-128 varints, least significant group first.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeCommand, encodeCommand } from "./command.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

describe("encodeCommand", () => {
  test("small command: exact bytes, and they decode back", () => {
    const c = { publisher: "t1", payload: Buffer.from("{}"), protocol: "certs", created: 1n };
    const bytes = encodeCommand(c);
    // 0a 02 "t1" | 1a 02 "{}" | 2a 05 "certs" | 30 01
    assert.equal(hex(bytes), "0a027431" + "1a027b7d" + "2a056365727473" + "3001");
    const back = decodeCommand(bytes);
    assert.deepEqual({ ...back, payload: Buffer.from(back.payload).toString() }, { ...c, payload: "{}" });
  });

  test("a realistic UnixNano and a payload over 127 bytes", () => {
    const publisher = "5e2a7b0c-1d3f-4e5a-8b6c-7d8e9f0a1b2c";
    const payload = Buffer.from(JSON.stringify({ thing_id: publisher, pad: "x".repeat(140) }));
    assert.equal(payload.length, 200);
    const created = 1_700_000_000_123_456_789n;
    const bytes = encodeCommand({ publisher, payload, protocol: "certs", created });
    // 200 = 0b1_1001000 → c8 01. 1700000000123456789 → 95 9a 97 ec e3 9f e7 cb 17
    // (low 7 bits: 1700000000123456789 mod 128 = 21 → 0x15 | 0x80 = 0x95, …).
    const expected =
      "0a24" + Buffer.from(publisher).toString("hex") + "1ac801" + payload.toString("hex") + "2a05" + Buffer.from("certs").toString("hex") + "30959a97ece39fe7cb17";
    assert.equal(hex(bytes), expected);
    const back = decodeCommand(bytes);
    assert.equal(back.publisher, publisher);
    assert.equal(back.protocol, "certs");
    assert.equal(back.created, created);
    assert.deepEqual(Buffer.from(back.payload), payload);
  });

  test("int64 edge values: negative is ten bytes of two's complement; zero and empty fields are omitted", () => {
    assert.equal(hex(encodeCommand({ publisher: "", payload: new Uint8Array(0), protocol: "", created: -1n })), "30ffffffffffffffffff01");
    assert.equal(hex(encodeCommand({ publisher: "", payload: new Uint8Array(0), protocol: "", created: 300n })), "30ac02");
    assert.equal(hex(encodeCommand({ publisher: "", payload: new Uint8Array(0), protocol: "", created: 0n })), "");
    assert.equal(decodeCommand(Buffer.from("30ffffffffffffffffff01", "hex")).created, -1n);
    const max = 2n ** 63n - 1n;
    assert.equal(decodeCommand(encodeCommand({ publisher: "p", payload: new Uint8Array(0), protocol: "", created: max })).created, max);
    assert.throws(() => encodeCommand({ publisher: "p", payload: new Uint8Array(0), protocol: "", created: 2n ** 63n }), { code: "TESSERA_ERR_INPUT_MALFORMED" });
  });

  test("decode skips unknown fields (subtopic 2, contentType 4, subject 7) and rejects truncated input", () => {
    // 12 01 "s" (field 2) | 0a 01 "p" | 22 04 "json" (field 4) | 3a 00 (field 7, empty) | 30 05
    const withExtras = Buffer.from("120173" + "0a0170" + "22046a736f6e" + "3a00" + "3005", "hex");
    const c = decodeCommand(withExtras);
    assert.equal(c.publisher, "p");
    assert.equal(c.created, 5n);
    assert.throws(() => decodeCommand(Buffer.from("0a0574", "hex")), { code: "TESSERA_ERR_INPUT_MALFORMED" });
    assert.throws(() => decodeCommand(Buffer.from("30ff", "hex")), { code: "TESSERA_ERR_INPUT_MALFORMED" });
    assert.throws(() => decodeCommand(Buffer.from("0801", "hex")), { code: "TESSERA_ERR_INPUT_MALFORMED" }, "publisher as a varint");
  });
});
