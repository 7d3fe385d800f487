import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { signWebhook, verifyWebhookSignature } from "./signature.js";

const secret = "s3cret-ключ";
const body = '{"id":"d1","event":"device.created","created_at":"2025-03-04T05:06:07.089Z","data":{"deviceId":"dev-ü"}}';
const ts = "1741064767";

test("signWebhook is sha256= and the hex HMAC-SHA256 of '<timestamp>.<body>'", () => {
  const expected = createHmac("sha256", Buffer.from(secret, "utf8")).update(`${ts}.${body}`, "utf8").digest("hex");
  assert.equal(signWebhook(secret, ts, body), `sha256=${expected}`);
  assert.equal(signWebhook(Buffer.from(secret), Number(ts), Buffer.from(body)), `sha256=${expected}`);
});

test("verifyWebhookSignature accepts the right signature, string or bytes, any hex case", () => {
  const header = signWebhook(secret, ts, body);
  assert.equal(verifyWebhookSignature(secret, ts, body, header), true);
  assert.equal(verifyWebhookSignature(Buffer.from(secret), Number(ts), Buffer.from(body), header), true);
  assert.equal(verifyWebhookSignature(secret, ts, body, `sha256=${header.slice(7).toUpperCase()}`), true);
});

test("verifyWebhookSignature rejects a wrong secret, timestamp, body or a malformed header", () => {
  const header = signWebhook(secret, ts, body);
  assert.equal(verifyWebhookSignature("other", ts, body, header), false);
  assert.equal(verifyWebhookSignature(secret, "1741064768", body, header), false);
  assert.equal(verifyWebhookSignature(secret, ts, body.replace("dev-ü", "dev-u"), header), false);
  assert.equal(verifyWebhookSignature(secret, ts, `${body} `, header), false, "re-serialised or padded bodies do not match");
  assert.equal(verifyWebhookSignature(secret, "", body, header), false);
  for (const bad of [undefined, null, "", header.slice(7), `sha1=${header.slice(7)}`, header.slice(0, -2), `${header}00`, "sha256=zz"]) {
    assert.equal(verifyWebhookSignature(secret, ts, body, bad), false, String(bad));
  }
});
