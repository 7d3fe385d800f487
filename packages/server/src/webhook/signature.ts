/**
 * Webhook signatures: `X-Tessera-Signature: sha256=<hex>`, the HMAC-SHA256
 * of `<timestamp>.<body>` (timestamp as sent in X-Tessera-Timestamp, body as
 * the exact bytes sent) under the shared secret. See docs/webhooks.md.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** Prefix of the X-Tessera-Signature header value. */
export const SIGNATURE_PREFIX = "sha256=";

function mac(secret: string | Buffer, timestamp: string | number, body: string | Buffer): Buffer {
  return createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest();
}

/**
 * Signs one delivery: returns the X-Tessera-Signature header value,
 * `sha256=` followed by the lowercase hex HMAC-SHA256 of `<timestamp>.<body>`.
 * A string secret or body is used as its UTF-8 bytes.
 */
export function signWebhook(secret: string | Buffer, timestamp: string | number, body: string | Buffer): string {
  return SIGNATURE_PREFIX + mac(secret, timestamp, body).toString("hex");
}

/**
 * Checks a delivery's X-Tessera-Signature on the receiver's side, in constant
 * time. `timestamp` is the X-Tessera-Timestamp header (unix seconds) and
 * `body` the raw request body exactly as received: re-serialised JSON would
 * not match. Returns false for a missing or malformed header. It does not
 * judge the timestamp's age: receivers should also reject timestamps far
 * from their own clock (say, more than 5 minutes) to stop replays.
 */
export function verifyWebhookSignature(secret: string | Buffer, timestamp: string | number, body: string | Buffer, header: string | null | undefined): boolean {
  if (typeof header !== "string") return false;
  const match = /^sha256=([0-9a-f]{64})$/i.exec(header.trim());
  if (!match?.[1]) return false;
  if (String(timestamp).length === 0) return false;
  return timingSafeEqual(Buffer.from(match[1], "hex"), mac(secret, timestamp, body));
}
