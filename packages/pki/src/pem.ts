/**
 * PEM (RFC 7468) encoding and decoding.
 */
import { PkiError } from "./errors.js";

/** One PEM block: its label (e.g. "CERTIFICATE") and DER content. */
export interface PemBlock {
  label: string;
  der: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** Encodes DER as PEM with 64-character lines and a trailing newline (OpenSSL's form). */
export function pemEncode(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  let body = "";
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + "\n";
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/** Decodes every PEM block in `text`, in order; text between blocks is ignored. */
export function pemDecodeAll(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = m[2]!.replace(/\s+/g, "");
    // Headers (RFC 1421 "Proc-Type:" etc.) are not supported: encrypted keys use PKCS#8.
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) {
      throw new PkiError("TESSERA_ERR_PKI_MALFORMED_PEM", "malformed PEM", `bad base64 in ${m[1]} block`);
    }
    out.push({ label: m[1]!, der: Buffer.from(body, "base64") });
  }
  return out;
}

/**
 * Decodes the first PEM block with one of `labels` (any label if none given).
 * Throws TESSERA_ERR_PKI_MALFORMED_PEM if there is none.
 */
export function pemDecodeFirst(text: string, ...labels: string[]): PemBlock {
  const block = pemDecodeAll(text).find((b) => labels.length === 0 || labels.includes(b.label));
  if (!block) {
    throw new PkiError("TESSERA_ERR_PKI_MALFORMED_PEM", "malformed PEM", `no ${labels.join(" or ") || "PEM"} block found`);
  }
  return block;
}

/** True if the bytes look like PEM text rather than DER (DER starts with a SEQUENCE tag). */
export function looksLikePem(data: Uint8Array): boolean {
  const head = Buffer.from(data.subarray(0, 64)).toString("latin1");
  return head.includes("-----BEGIN ");
}

/**
 * Accepts DER or PEM bytes and returns DER: the first block with one of `labels` when PEM.
 */
export function toDer(data: Uint8Array | string, ...labels: string[]): Buffer {
  if (typeof data === "string") return pemDecodeFirst(data, ...labels).der;
  if (looksLikePem(data)) return pemDecodeFirst(Buffer.from(data).toString("latin1"), ...labels).der;
  return Buffer.from(data);
}
