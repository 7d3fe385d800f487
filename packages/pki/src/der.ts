/**
 * Minimal DER TLV reader and writer.
 *
 * The issuance hot path splices certificates from templates and walks CSRs
 * without building an object tree; the ASN.1 library stays in charge of
 * everything that is not on that path (see docs/decisions/0002-der-templates.md).
 */

import { PkiError } from "./errors.js";

/** One decoded TLV: tag byte, where its value starts and ends, and where the whole TLV ends. */
export interface Tlv {
  /** The identifier octet (single-byte tags only; X.509 needs no other). */
  tag: number;
  /** Offset of the first byte of the TLV (its tag). */
  start: number;
  /** Offset of the first content byte. */
  valueStart: number;
  /** Offset just past the last content byte (= end of the TLV). */
  end: number;
}

/** Common DER tags used by X.509. */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/**
 * Reads the TLV starting at `offset` of `buf`, bounded by `limit`.
 * Throws TESSERA_ERR_PKI_MALFORMED_DER on truncation, indefinite or non-minimal lengths.
 */
export function readTlv(buf: Uint8Array, offset = 0, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw malformed("truncated TLV header");
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw malformed("multi-byte tags are not supported");
  let pos = offset + 1;
  const first = buf[pos++]!;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw malformed("indefinite length is not DER");
    if (n > 4) throw malformed("length too large");
    if (pos + n > limit) throw malformed("truncated length");
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[pos++]!;
    if (length < 0x80 || (n > 1 && buf[pos - n] === 0)) throw malformed("non-minimal length");
  }
  const end = pos + length;
  if (end > limit) throw malformed("value runs past its container");
  return { tag, start: offset, valueStart: pos, end };
}

/** Reads every TLV inside the value of `parent`. */
export function readChildren(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.valueStart;
  while (pos < parent.end) {
    const child = readTlv(buf, pos, parent.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

/** Reads a TLV that must span exactly the whole buffer, with the given tag. */
export function readWhole(buf: Uint8Array, tag: number): Tlv {
  const tlv = readTlv(buf, 0, buf.length);
  if (tlv.tag !== tag) throw malformed(`expected tag 0x${tag.toString(16)}, got 0x${tlv.tag.toString(16)}`);
  if (tlv.end !== buf.length) throw malformed("trailing bytes after DER value");
  return tlv;
}

/** The bytes of a whole TLV (tag, length and value), without copying. */
export function tlvBytes(buf: Uint8Array, tlv: Tlv): Uint8Array {
  return buf.subarray(tlv.start, tlv.end);
}

/** The content bytes of a TLV, without copying. */
export function tlvValue(buf: Uint8Array, tlv: Tlv): Uint8Array {
  return buf.subarray(tlv.valueStart, tlv.end);
}

/** Encodes a DER length. */
export function encodeLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  if (length < 0x100) return Uint8Array.of(0x81, length);
  if (length < 0x10000) return Uint8Array.of(0x82, length >> 8, length & 0xff);
  if (length < 0x1000000) return Uint8Array.of(0x83, length >> 16, (length >> 8) & 0xff, length & 0xff);
  return Uint8Array.of(0x84, (length >>> 24) & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff);
}

/** Builds a TLV from a tag and the concatenation of `parts`. */
export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const len = encodeLength(length);
  const out = Buffer.allocUnsafe(1 + len.length + length);
  out[0] = tag;
  out.set(len, 1);
  let pos = 1 + len.length;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** DER INTEGER from unsigned big-endian magnitude bytes (adds or strips leading zeros as DER requires). */
export function encodeUnsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const trimmed = magnitude.subarray(i);
  if (trimmed.length === 0) return tlv(Tag.INTEGER, Uint8Array.of(0));
  return trimmed[0]! & 0x80 ? tlv(Tag.INTEGER, Uint8Array.of(0), trimmed) : tlv(Tag.INTEGER, trimmed);
}

/** DER INTEGER for a small non-negative number. */
export function encodeSmallInteger(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  return encodeUnsignedInteger(Uint8Array.from(bytes));
}

/**
 * RFC 5280 §4.1.2.5 time: UTCTime through 2049, GeneralizedTime from 2050,
 * always UTC with whole seconds ("Z", no fraction).
 */
export function encodeTime(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const year = date.getUTCFullYear();
  const digits = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19);
  if (year >= 1950 && year < 2050) return tlv(Tag.UTC_TIME, Buffer.from(digits.slice(2) + "Z", "latin1"));
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(digits + "Z", "latin1"));
}

/** Decodes a DER UTCTime or GeneralizedTime TLV to a Date. */
export function decodeTime(buf: Uint8Array, t: Tlv): Date {
  const s = Buffer.from(tlvValue(buf, t)).toString("latin1");
  let m: RegExpMatchArray | null;
  if (t.tag === Tag.UTC_TIME && (m = s.match(/^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    const yy = Number(m[1]);
    return new Date(Date.UTC(yy < 50 ? 2000 + yy : 1900 + yy, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  }
  if (t.tag === Tag.GENERALIZED_TIME && (m = s.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/))) {
    return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  }
  throw malformed("bad time value");
}

/** Encodes a dotted OID string as a DER OBJECT IDENTIFIER TLV. */
export function encodeOid(oid: string): Buffer {
  const arcs = oid.split(".").map((a) => BigInt(a));
  if (arcs.length < 2) throw malformed(`bad OID ${oid}`);
  const bytes: number[] = [];
  const pushArc = (arc: bigint) => {
    const chunk: number[] = [Number(arc & 0x7fn)];
    arc >>= 7n;
    while (arc > 0n) {
      chunk.unshift(Number(arc & 0x7fn) | 0x80);
      arc >>= 7n;
    }
    bytes.push(...chunk);
  };
  pushArc(arcs[0]! * 40n + arcs[1]!);
  for (const arc of arcs.slice(2)) pushArc(arc);
  return tlv(Tag.OID, Uint8Array.from(bytes));
}

/** Decodes the content bytes of an OBJECT IDENTIFIER to dotted form. */
export function decodeOid(value: Uint8Array): string {
  const arcs: bigint[] = [];
  let acc = 0n;
  for (const b of value) {
    acc = (acc << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(acc);
      acc = 0n;
    }
  }
  if (arcs.length === 0) throw malformed("empty OID");
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join(".");
}

function malformed(detail: string): PkiError {
  return new PkiError("TESSERA_ERR_PKI_MALFORMED_DER", "malformed DER", detail);
}

/** A standalone ArrayBuffer copy of `bytes` (WebCrypto and the ASN.1 library want ArrayBuffer, not Buffer views). */
export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return new Uint8Array(bytes).buffer as ArrayBuffer;
}
