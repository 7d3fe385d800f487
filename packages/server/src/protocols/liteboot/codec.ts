/**
 * liteboot's wire format (docs/protocols/liteboot.md, spec liteboot.md §2–§3):
 * the encoding is chosen by the request's exact Content-Type; JSON is what
 * Go's encoding/json writes (struct field names as keys, no spaces, one
 * trailing newline); CBOR is one definite-length map with integer keys 1, 2…
 * in shortest form (fxamacker/cbor's defaults). Serials are int64 beyond
 * 2^53, so they stay BigInt from the path to the bytes.
 */
import type { FastifyReply } from "fastify";
import { Decoder, Encoder } from "cbor-x";
import { sendRaw } from "../../http/raw-reply.js";

/** The two encodings, or why the Content-Type selects neither. */
export type Encoding = "cbor" | "json";

/** The original's error strings (spec §3), byte for byte. */
export const LITEBOOT_ERRORS = {
  crContentType: '{"error": "Bad request: Content-Type must be application/cbor or application/json"}',
  getContentType: '{"error": "bad request: Content-Type must be application/cbor or application/json"}',
  undecodable: '{"error": "Bad request: POST data did not match specified Content-Type"}',
  needUuid: '{"error": "need a valid UUID"}',
  dbUuid: '{"error": "unable to query db for UUID"}',
  invalidRequest: '{"error": "invalid request"}',
  invalidSerial: '{"error": "invalid serial number"}',
  endpointNotFound: '{"message": "endpoint not found"}',
  notFound: "404 page not found\n",
  root: "Linaro CA HTTP server\n",
  noMultipart: '{"error": "Bad request (no multipart form)"}',
  missingFile: '{"error": "Missing csrfile file"}',
  fileTooLarge: '{"error": "File too large"}',
  fileUnreadable: '{"error": "File unreadable"}',
  fileType: `{"error": "Invalid file type (require 'text/plain; charset=utf-8')"}`,
  pemBlocks: '{"error": "Invalid PEM input. Expecting one block"}',
  pemType: '{"error": "Expecting BEGIN CERTIFICATE REQUEST"}',
  invalidCsr: '{"error": "Invalid CSR"}',
} as const;

/** Content types as Go writes them. */
export const TYPES = {
  cbor: "application/cbor",
  json: "application/json",
  text: "text/plain; charset=utf-8",
  pem: "application/x-pem-file",
} as const;

/** Encoding selected by a Content-Type header: exact, case-sensitive; absent or empty means JSON (spec §2). */
export function selectEncoding(contentType: string | undefined): Encoding | undefined {
  if (contentType === undefined || contentType === "" || contentType === TYPES.json) return "json";
  if (contentType === TYPES.cbor) return "cbor";
  return undefined;
}

const encoder = new Encoder({ useRecords: false, mapsAsObjects: false, variableMapSize: true, tagUint8Array: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: false });

/** A CBOR value Tessera writes: integers (BigInt allowed), text, bytes, null, arrays, integer-keyed maps in the given order. */
export type CborValue = number | bigint | string | Buffer | null | CborValue[];

/** Encodes an integer-keyed map in key order; BigInts that fit a JS number are written in shortest form like Go's. */
export function encodeCborMap(entries: ReadonlyArray<readonly [number, CborValue]>): Buffer {
  const norm = (v: CborValue): unknown =>
    typeof v === "bigint" ? (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n ? Number(v) : v) : Array.isArray(v) ? v.map(norm) : v;
  return Buffer.from(encoder.encode(new Map(entries.map(([k, v]) => [k, norm(v)]))));
}

/** Decodes the first CBOR item of a body; trailing bytes are ignored, as fxamacker/cbor's Unmarshal does. Throws when there is none. */
export function decodeFirstCbor(body: Buffer): unknown {
  let first: unknown;
  let found = false;
  decoder.decodeMultiple(body, (v: unknown) => {
    first = v;
    found = true;
    return false;
  });
  if (!found) throw new Error("no CBOR item");
  return first;
}

/** Go encoding/json string: HTML-sensitive characters and U+2028/2029 escaped as Go does. */
export function goString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Writes a 200 answer in the selected encoding. `json` is the exact Go JSON text without the trailing newline. */
export function sendOk(reply: FastifyReply, encoding: Encoding, json: string, cbor: () => Buffer): FastifyReply {
  return encoding === "cbor" ? sendRaw(reply, 200, { "Content-Type": TYPES.cbor }, cbor()) : sendRaw(reply, 200, { "Content-Type": TYPES.json }, json + "\n");
}

/** Writes an error body as the original does: `status`, the literal body, the given Content-Type. */
export function sendError(reply: FastifyReply, status: number, contentType: string, body: string): FastifyReply {
  return sendRaw(reply, status, { "Content-Type": contentType }, body);
}

/** Serial from a path segment: base-10, optional sign, leading zeros allowed (Go big.Int SetString base 10). */
export function parseSerialPath(text: string): bigint | undefined {
  return /^[+-]?\d+$/.test(text) ? BigInt(text) : undefined;
}

/**
 * UUID from a path segment in any form Go's uuid.Parse accepts (36-char,
 * `{…}`, `urn:uuid:…`, 32 hex), any case; returns the lower-case canonical form.
 */
export function parseUuidPath(text: string): string | undefined {
  let s = text;
  if (s.length === 45 && s.toLowerCase().startsWith("urn:uuid:")) s = s.slice(9);
  else if (s.length === 38 && s.startsWith("{") && s.endsWith("}")) s = s.slice(1, -1);
  if (s.length === 32 && /^[0-9a-fA-F]{32}$/.test(s)) s = `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
  return /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s) ? s.toLowerCase() : undefined;
}

/**
 * The CSR of a cr/kur body: CBOR `[bstr]` (exactly one byte string), or JSON
 * `{"CSR": "<base64 DER>"}` with the key matched case-insensitively (Go).
 * Undefined when the body does not decode in the selected encoding.
 */
export function decodeCsrBody(encoding: Encoding, body: Buffer | undefined): Buffer | undefined {
  const bytes = body ?? Buffer.alloc(0);
  if (encoding === "cbor") {
    let v: unknown;
    try {
      v = decodeFirstCbor(bytes);
    } catch {
      return undefined;
    }
    return Array.isArray(v) && v.length === 1 && v[0] instanceof Uint8Array ? Buffer.from(v[0]) : undefined;
  }
  const obj = goJsonObject(bytes);
  if (!obj) return undefined;
  const key = Object.keys(obj).findLast((k) => k.toLowerCase() === "csr");
  const value = key === undefined ? undefined : obj[key];
  if (value === undefined || value === null) return Buffer.alloc(0);
  // Go decodes a []byte field from padded standard base64 and refuses anything else.
  if (typeof value !== "string" || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(value.replace(/\r|\n/g, ""))) return undefined;
  return Buffer.from(value, "base64");
}

/** The first JSON value of a body when it is an object (json.Decoder reads one value), else undefined. */
export function goJsonObject(body: Buffer): Record<string, unknown> | undefined {
  const text = body.toString("utf8").trim();
  if (!text.startsWith("{")) return undefined;
  // Find the end of the first value by parsing growing prefixes at each closing brace.
  for (let i = text.indexOf("}"); i >= 0; i = text.indexOf("}", i + 1)) {
    try {
      const v = JSON.parse(text.slice(0, i + 1)) as unknown;
      return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
    } catch {
      // not the end of the first value yet
    }
  }
  return undefined;
}

/** The cr request body as make_csr_cbor.go writes it: an array of one byte string (the CSR DER), shortest heads. */
export function crRequestCbor(csr: Buffer): Buffer {
  const n = csr.length;
  const head = n < 24 ? [0x40 | n] : n < 0x100 ? [0x58, n] : n < 0x10000 ? [0x59, n >> 8, n & 0xff] : [0x5a, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([0x81, ...head]), csr]);
}
