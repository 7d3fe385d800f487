import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { looksLikePem, pemDecodeAll, pemDecodeFirst, pemEncode, toDer } from "./pem.js";
import { PkiError, type PkiErrorCode } from "./errors.js";

function pkiCode(code: PkiErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, code, `detail: ${err.detail}`);
    return true;
  };
}
const badPem = pkiCode("TESSERA_ERR_PKI_MALFORMED_PEM");

test("pemEncode: 64-column lines, a trailing newline, header and footer", () => {
  for (const n of [0, 1, 2, 3, 47, 48, 49, 96, 1000, 4096]) {
    const der = crypto.randomBytes(n);
    const pem = pemEncode("CERTIFICATE", der);
    assert.ok(pem.startsWith("-----BEGIN CERTIFICATE-----\n"), `n=${n}`);
    assert.ok(pem.endsWith("-----END CERTIFICATE-----\n"), `n=${n}`);
    const lines = pem.split("\n");
    assert.equal(lines.pop(), "", "ends with exactly one newline");
    const body = lines.slice(1, -1);
    const b64 = der.toString("base64");
    assert.equal(body.join(""), b64);
    assert.equal(body.length, Math.ceil(b64.length / 64));
    body.forEach((l, i) => {
      if (i < body.length - 1) assert.equal(l.length, 64, `line ${i} of n=${n}`);
      else assert.ok(l.length > 0 && l.length <= 64);
    });
    assert.ok(pemDecodeFirst(pem, "CERTIFICATE").der.equals(der));
  }
});

test("pemEncode body is what `openssl base64` writes, and OpenSSL reads it back", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pki-pem-"));
  try {
    const der = crypto.randomBytes(1000);
    const file = path.join(dir, "blob.bin");
    fs.writeFileSync(file, der);
    const ours = pemEncode("X", der);
    const body = ours.split("\n").slice(1, -2).join("\n") + "\n";
    assert.equal(execFileSync("openssl", ["base64", "-e", "-in", file]).toString(), body);
    // and a real key: openssl pkey reads our PEM and writes the same bytes back
    const key = crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey;
    const keyPem = pemEncode("PRIVATE KEY", key.export({ format: "der", type: "pkcs8" }));
    assert.equal(keyPem, key.export({ format: "pem", type: "pkcs8" }));
    fs.writeFileSync(path.join(dir, "k.pem"), keyPem);
    assert.equal(execFileSync("openssl", ["pkey", "-in", path.join(dir, "k.pem")]).toString(), keyPem);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("pemEncode encodes only the bytes of a subarray view", () => {
  const backing = Buffer.from("00112233445566778899", "hex");
  const view = new Uint8Array(backing.buffer, backing.byteOffset + 3, 4);
  assert.equal(pemDecodeFirst(pemEncode("T", view)).der.toString("hex"), "33445566");
});

test("pemDecodeAll: several blocks in order, text around and between them, CRLF", () => {
  const a = crypto.randomBytes(70);
  const b = crypto.randomBytes(5);
  const c = crypto.randomBytes(200);
  const text =
    "Bag Attributes: ignored\n" +
    pemEncode("CERTIFICATE", a) +
    "subject=CN = something\n\n" +
    pemEncode("X509 CRL", b).replace(/\n/g, "\r\n") +
    pemEncode("ENCRYPTED PRIVATE KEY", c) +
    "trailing junk";
  const blocks = pemDecodeAll(text);
  assert.deepEqual(blocks.map((x) => x.label), ["CERTIFICATE", "X509 CRL", "ENCRYPTED PRIVATE KEY"]);
  assert.ok(blocks[0]!.der.equals(a));
  assert.ok(blocks[1]!.der.equals(b));
  assert.ok(blocks[2]!.der.equals(c));
  assert.deepEqual(pemDecodeAll("no pem here"), []);
  assert.deepEqual(pemDecodeAll(""), []);
});

test("pemDecodeAll: a block whose END label differs is not a block", () => {
  const pem = pemEncode("CERTIFICATE", Buffer.from("abc")).replace("END CERTIFICATE", "END PRIVATE KEY");
  assert.deepEqual(pemDecodeAll(pem), []);
});

test("pemDecodeAll rejects bad base64 with TESSERA_ERR_PKI_MALFORMED_PEM", () => {
  assert.throws(() => pemDecodeAll("-----BEGIN CERTIFICATE-----\nMIIB!!!!\n-----END CERTIFICATE-----\n"), badPem);
  assert.throws(() => pemDecodeAll("-----BEGIN CERTIFICATE-----\nAAAA=A\n-----END CERTIFICATE-----\n"), badPem);
  assert.throws(() => pemDecodeAll("-----BEGIN CERTIFICATE-----\nAA===\n-----END CERTIFICATE-----\n"), badPem);
  // RFC 1421 headers are not supported
  assert.throws(() => pemDecodeAll("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"), badPem);
});

test("pemDecodeFirst filters by label and fails without a match", () => {
  const text = pemEncode("PRIVATE KEY", Buffer.from([1])) + pemEncode("CERTIFICATE", Buffer.from([2])) + pemEncode("CERTIFICATE", Buffer.from([3]));
  assert.deepEqual([...pemDecodeFirst(text).der], [1]);
  assert.deepEqual([...pemDecodeFirst(text, "CERTIFICATE").der], [2]);
  assert.equal(pemDecodeFirst(text, "X509 CRL", "CERTIFICATE").label, "CERTIFICATE");
  assert.throws(() => pemDecodeFirst(text, "X509 CRL"), (e) => badPem(e) && /X509 CRL/.test((e as PkiError).detail!));
  assert.throws(() => pemDecodeFirst("nothing"), badPem);
});

test("looksLikePem and toDer accept PEM text, PEM bytes and DER", () => {
  const der = Buffer.from("3003020101", "hex");
  const pem = pemEncode("CERTIFICATE REQUEST", der);
  assert.equal(looksLikePem(Buffer.from(pem)), true);
  assert.equal(looksLikePem(Buffer.from("\n\n" + pem)), true);
  assert.equal(looksLikePem(der), false);
  assert.ok(toDer(pem).equals(der));
  assert.ok(toDer(Buffer.from(pem)).equals(der));
  assert.ok(toDer(new Uint8Array(Buffer.from(pem)), "CERTIFICATE REQUEST").equals(der));
  assert.ok(toDer(der).equals(der));
  assert.ok(toDer(der, "CERTIFICATE").equals(der), "labels do not apply to DER");
  assert.throws(() => toDer(pem, "CERTIFICATE"), badPem);
  assert.throws(() => toDer(Buffer.from(pem), "CERTIFICATE"), badPem);
  assert.throws(() => toDer("not pem"), badPem);
});
