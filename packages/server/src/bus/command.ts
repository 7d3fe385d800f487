/**
 * Hand-written protobuf (proto3) encoding of Mainflux's `protomfx.Command`,
 * the message a rotation event travels in (docs/events.md, spec
 * mainflux.md §3). Only the fields Tessera sets are written:
 *
 *   string publisher = 1;   // the thing id
 *   bytes  payload   = 3;   // the CertEvent JSON
 *   string protocol  = 5;   // "certs"
 *   int64  created   = 6;   // Unix time in nanoseconds
 *
 * (2 subtopic, 4 contentType and 7 subject exist in protomfx.Message and are
 * left unset.) As proto3 does, fields holding their default value (empty
 * string or bytes, 0) are omitted. The decoder reads any message, skipping
 * unknown fields, and is used by tests and by tools that inspect events.
 */
import { TesseraError } from "../errors.js";

/** The fields of a protomfx.Command that Tessera writes. */
export interface Command {
  /** Field 1: the thing id. */
  publisher: string;
  /** Field 3: the payload bytes (the CertEvent JSON). */
  payload: Uint8Array;
  /** Field 5: "certs" for rotation events. */
  protocol: string;
  /** Field 6: creation time in nanoseconds since the Unix epoch (int64). */
  created: bigint;
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Appends `v` (0 ≤ v < 2^64) as a base-128 varint, least significant group first. */
function pushVarint(out: number[], v: bigint): void {
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

function pushBytes(out: number[], field: number, bytes: Uint8Array): void {
  if (bytes.length === 0) return;
  pushVarint(out, BigInt((field << 3) | WIRE_LEN));
  pushVarint(out, BigInt(bytes.length));
  for (const b of bytes) out.push(b);
}

/**
 * Encodes a protomfx.Command. `created` must fit int64; a negative value is
 * written as its 64-bit two's complement (ten bytes), as protobuf does.
 */
export function encodeCommand(c: Command): Buffer {
  if (typeof c.created !== "bigint" || c.created < INT64_MIN || c.created > INT64_MAX) {
    throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail: "Command.created must be an int64 bigint" });
  }
  const out: number[] = [];
  pushBytes(out, 1, Buffer.from(c.publisher, "utf8"));
  pushBytes(out, 3, c.payload);
  pushBytes(out, 5, Buffer.from(c.protocol, "utf8"));
  if (c.created !== 0n) {
    pushVarint(out, BigInt((6 << 3) | WIRE_VARINT));
    pushVarint(out, BigInt.asUintN(64, c.created));
  }
  return Buffer.from(out);
}

/** Reads a varint at `pos`; returns its value and the position after it. */
function readVarint(buf: Uint8Array, pos: number): [bigint, number] {
  let v = 0n;
  for (let shift = 0n; shift < 70n; shift += 7n) {
    if (pos >= buf.length) throw malformed("truncated varint");
    const b = buf[pos++] as number;
    v |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [BigInt.asUintN(64, v), pos];
  }
  throw malformed("varint longer than 10 bytes");
}

function malformed(why: string): TesseraError {
  return new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail: `protomfx.Command: ${why}` });
}

/**
 * Decodes a protomfx.Command (absent fields take their proto3 defaults;
 * unknown fields are skipped; a repeated field keeps its last value).
 * Throws TESSERA_ERR_INPUT_MALFORMED on truncated or ill-typed input.
 */
export function decodeCommand(bytes: Uint8Array): Command {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const c: Command = { publisher: "", payload: new Uint8Array(0), protocol: "", created: 0n };
  let pos = 0;
  while (pos < buf.length) {
    const [key, afterKey] = readVarint(buf, pos);
    pos = afterKey;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) throw malformed("field number 0");
    if (wire === WIRE_VARINT) {
      const [v, next] = readVarint(buf, pos);
      pos = next;
      if (field === 6) c.created = BigInt.asIntN(64, v);
      else if (field === 1 || field === 3 || field === 5) throw malformed(`field ${field} is not a varint`);
    } else if (wire === WIRE_LEN) {
      const [len, next] = readVarint(buf, pos);
      const end = next + Number(len);
      if (len > BigInt(buf.length) || end > buf.length) throw malformed("truncated length-delimited field");
      const value = buf.subarray(next, end);
      pos = end;
      if (field === 1) c.publisher = value.toString("utf8");
      else if (field === 3) c.payload = new Uint8Array(value);
      else if (field === 5) c.protocol = value.toString("utf8");
      else if (field === 6) throw malformed("field 6 is not length-delimited");
    } else if (wire === WIRE_I64 || wire === WIRE_I32) {
      if (field === 1 || field === 3 || field === 5 || field === 6) throw malformed(`field ${field} has wire type ${wire}`);
      pos += wire === WIRE_I64 ? 8 : 4;
      if (pos > buf.length) throw malformed("truncated fixed-width field");
    } else {
      throw malformed(`unsupported wire type ${wire}`);
    }
  }
  return c;
}
