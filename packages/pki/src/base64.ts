/**
 * Base64 (RFC 4648 §4) as EST carries DER (RFC 7030 §4, RFC 8951 §3):
 * senders write standard base64 in 64-character LF lines; receivers accept
 * any line breaks and white space, and no other stray characters.
 */
import { PkiError } from "./errors.js";

/** Encodes bytes as padded standard base64 in 64-character lines, each ending in LF (the last too). */
export function encodeBase64Lines(data: Uint8Array): string {
  const b64 = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
  let out = "";
  for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + "\n";
  return out;
}

/**
 * Decodes base64 that may be broken into lines by LF or CRLF and contain
 * spaces or tabs (RFC 8951 §3.1). Padding is optional. Anything else (URL-safe
 * characters, stray text, a misplaced `=`) throws
 * TESSERA_ERR_PKI_MALFORMED_DER, as does an empty input.
 */
export function decodeBase64Lenient(text: string | Uint8Array): Buffer {
  const s = (typeof text === "string" ? text : Buffer.from(text).toString("latin1")).replace(/[\r\n\t ]+/g, "");
  if (s.length === 0) throw new PkiError("TESSERA_ERR_PKI_MALFORMED_DER", "malformed base64", "empty body");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s) || s.length % 4 === 1) {
    throw new PkiError("TESSERA_ERR_PKI_MALFORMED_DER", "malformed base64", "characters outside the base64 alphabet, or a truncated quantum");
  }
  return Buffer.from(s, "base64");
}
