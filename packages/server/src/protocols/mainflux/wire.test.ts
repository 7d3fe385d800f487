/**
 * The Go wire forms: time.ParseDuration and the ttl fallback to hours,
 * RFC3339Nano output, decimal serials, encoding/json input and output,
 * url.Values, strconv.ParseUint and time.Parse(RFC3339).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { KeySealer } from "./sealer.js";
import { decodeGoObject, goJson, goTime, parseGoDuration, parseQuery, parseRfc3339, parseTtl, parseUint, serialFromDecimal, serialToDecimal } from "./wire.js";

test("parseGoDuration follows time.ParseDuration", () => {
  const ok: Array<[string, bigint]> = [
    ["8760h", 8760n * 3_600_000_000_000n], ["1h30m", 5_400_000_000_000n], ["-1h", -3_600_000_000_000n], ["0", 0n], ["+0", 0n], ["-0", 0n],
    ["1.5h", 5_400_000_000_000n], [".5s", 500_000_000n], ["5.s", 5_000_000_000n], ["300ms", 300_000_000n], ["1us", 1000n], ["1\u00b5s", 1000n],
    ["1\u03bcs", 1000n], ["2ns", 2n], ["1m0.5s", 60_500_000_000n], ["2562047h47m16.854775807s", (1n << 63n) - 1n],
  ];
  for (const [text, ns] of ok) assert.equal(parseGoDuration(text), ns, text);
  for (const text of ["", "720", "abc", "1", "h", ".s", "1hour", "1h-5m", "1.h.", "--1h", "2562048h", "1d", " 1h", "1H"]) assert.equal(parseGoDuration(text), undefined, text);
});

test("parseTtl: a Go duration, else whole hours (strconv.Atoi); seconds", () => {
  assert.equal(parseTtl("8760h"), 8760 * 3600);
  assert.equal(parseTtl("720"), 720 * 3600);
  assert.equal(parseTtl("+2"), 7200);
  assert.equal(parseTtl("-5"), -5 * 3600);
  assert.equal(parseTtl("1500ms"), 1);
  assert.equal(parseTtl("0"), 0);
  for (const text of ["abc", "1.5", "1e3", "", " 720"]) assert.equal(parseTtl(text), undefined, text);
});

test("goTime is RFC3339Nano with trailing zeros trimmed", () => {
  assert.equal(goTime(new Date("2027-08-21T14:03:11.000Z")), "2027-08-21T14:03:11Z");
  assert.equal(goTime(new Date("2027-08-21T14:03:11.120Z")), "2027-08-21T14:03:11.12Z");
  assert.equal(goTime(new Date("2027-08-21T14:03:11.001Z")), "2027-08-21T14:03:11.001Z");
});

test("decimal serials: canonical only, both ways", () => {
  assert.equal(serialFromDecimal("255"), "ff");
  assert.equal(serialToDecimal("ff"), "255");
  const big = (1n << 127n) + 12345n;
  assert.equal(serialFromDecimal(big.toString()), big.toString(16));
  for (const text of ["", "0255", "-1", "+1", "1e3", "ff", "1".repeat(50), (1n << 160n).toString()]) assert.equal(serialFromDecimal(text), undefined, text);
});

test("goJson escapes as Go's encoder and ends with a newline", () => {
  assert.equal(goJson({ error: "a<b>&c\u2028" }), '{"error":"a\\u003cb\\u003e\\u0026c\\u2028"}\n');
});

test("decodeGoObject: case-insensitive names, last wins, unknown ignored, null is zero, wrong types refused", () => {
  const fields = { thing_id: "string", ttl: "string", key_bits: "int" } as const;
  const d = (s: string) => decodeGoObject(Buffer.from(s), fields);
  assert.deepEqual(d('{"THING_ID":"a","thing_id":"b","x":1,"ttl":null,"key_bits":2048}'), { thing_id: "b", ttl: "", key_bits: 2048 });
  assert.deepEqual(d("null"), { thing_id: "", ttl: "", key_bits: 0 });
  assert.deepEqual(d('{"key_bits":2048.0}'), { thing_id: "", ttl: "", key_bits: 2048 });
  for (const bad of ["", "{", "[]", "1", '"x"', '{"key_bits":"2048"}', '{"key_bits":1.5}', '{"thing_id":1}', '{"ttl":true}', "{} x"]) assert.equal(d(bad), undefined, bad);
});

test("parseQuery, parseUint, parseRfc3339", () => {
  assert.deepEqual([...parseQuery("a=1&b=x+y&a=2&c&d=%41")!], [["a", ["1", "2"]], ["b", ["x y"]], ["c", [""]], ["d", ["A"]]]);
  assert.deepEqual([...parseQuery("a=%zz&b=1")!], [["b", ["1"]]], "unparsable pairs are dropped");
  assert.equal(parseUint("18446744073709551615"), (1n << 64n) - 1n);
  for (const t of ["18446744073709551616", "-1", "+1", "", "1.0", " 1"]) assert.equal(parseUint(t), undefined, t);
  assert.equal(parseRfc3339("2026-01-01T00:00:00Z"), Date.UTC(2026, 0, 1));
  assert.equal(parseRfc3339("2026-01-01T02:00:00+02:00"), Date.UTC(2026, 0, 1));
  assert.equal(parseRfc3339("2026-01-01T00:00:00.0000001Z"), Date.UTC(2026, 0, 1) + 1, "nanoseconds round up to the next millisecond");
  assert.equal(parseRfc3339("2026-01-01T00:00:00.123Z"), Date.UTC(2026, 0, 1) + 123);
  for (const t of ["2026-01-01", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01 00:00:00Z", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z"]) assert.equal(parseRfc3339(t), undefined, t);
});

test("KeySealer: round trip, context and passphrase bound, HMAC lookups stable", async () => {
  const a = await KeySealer.fromPassphrase("correct horse");
  const b = await KeySealer.fromPassphrase("correct horse");
  const other = await KeySealer.fromPassphrase("another");
  const sealed = a.seal(Buffer.from("secret key"), "ctx");
  assert.equal(b.open(sealed, "ctx").toString(), "secret key");
  assert.throws(() => b.open(sealed, "ctx2"));
  assert.throws(() => other.open(sealed, "ctx"), /another key/);
  const tampered = Buffer.from(sealed);
  tampered[tampered.length - 1]! ^= 1;
  assert.throws(() => a.open(tampered, "ctx"));
  assert.notDeepEqual(a.seal(Buffer.from("x"), "c"), a.seal(Buffer.from("x"), "c"), "random nonce");
  assert.equal(a.lookupHash("k"), b.lookupHash("k"));
  assert.notEqual(a.lookupHash("k"), other.lookupHash("k"));
  assert.match(a.lookupHash("k"), /^hmac-sha256:[0-9a-f]{64}$/);
});
