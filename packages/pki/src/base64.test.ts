import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { decodeBase64Lenient, encodeBase64Lines } from "./base64.js";

test("encodeBase64Lines writes 64-character LF lines, the last one terminated too", () => {
  const data = randomBytes(100);
  const text = encodeBase64Lines(data);
  const lines = text.split("\n");
  assert.equal(lines.pop(), "");
  // 100 bytes are 136 base64 characters: 64 + 64 + 8.
  assert.deepEqual(lines.map((l) => l.length), [64, 64, 8]);
  assert.ok(lines.every((l) => /^[A-Za-z0-9+/=]+$/.test(l)));
  assert.deepEqual(Buffer.from(lines.join(""), "base64"), data);
});

test("decodeBase64Lenient accepts unbroken, LF, CRLF, spaces and tabs, with or without padding", () => {
  const data = randomBytes(49);
  const plain = data.toString("base64");
  for (const form of [plain, encodeBase64Lines(data), encodeBase64Lines(data).replace(/\n/g, "\r\n"), plain.replace(/(.{10})/g, "$1 \t"), plain.replace(/=+$/, "")]) {
    assert.deepEqual(decodeBase64Lenient(form), data, JSON.stringify(form));
  }
  assert.deepEqual(decodeBase64Lenient(Buffer.from(plain)), data);
});

test("decodeBase64Lenient refuses stray characters, URL-safe alphabet, a lone quantum and empty input", () => {
  for (const bad of ["", "  \n", "abc$def", "ab-_", "QUJD=RA==", "QUJDR"]) {
    assert.throws(() => decodeBase64Lenient(bad), { code: "TESSERA_ERR_PKI_MALFORMED_DER" }, JSON.stringify(bad));
  }
});
