/**
 * Certificate serial numbers (RFC 5280 §4.1.2.2): generation and the textual
 * forms operators and protocols use (hex, colon hex, decimal).
 */
import { randomBytes } from "node:crypto";
import { PkiError } from "./errors.js";

/** Serial forms a profile can ask for. */
export type SerialForm =
  /** Random positive integer of `bytes` octets (default 16 → 126 bits of CSPRNG output). */
  | { kind: "random"; bytes?: number }
  /** Random positive int64 (19 decimal digits, 62 random bits), for protocols that carry serials as int64. */
  | { kind: "int64" };

/**
 * Draws a serial as unsigned big-endian bytes. The top bit is cleared (so the
 * DER INTEGER stays positive without a pad byte) and the next bit set (so the
 * length and digit count never vary); that leaves 8·n − 2 random bits.
 */
export function generateSerial(form: SerialForm = { kind: "random" }, random: (n: number) => Buffer = randomBytes): Buffer {
  const n = form.kind === "int64" ? 8 : (form.bytes ?? 16);
  if (n < 8 || n > 20) throw new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "serial length must be 8 to 20 octets", String(n));
  const b = Buffer.from(random(n));
  b[0] = (b[0]! & 0x7f) | 0x40;
  return b;
}

/** Canonical text form of a serial: lowercase hex of its value, no leading zeros (as Go's big.Int.Text(16)). */
export function serialToHex(serial: Uint8Array | bigint): string {
  const v = typeof serial === "bigint" ? serial : serialToBigInt(serial);
  return v.toString(16);
}

/** Value of an unsigned big-endian serial. */
export function serialToBigInt(serial: Uint8Array): bigint {
  return serial.length === 0 ? 0n : BigInt("0x" + Buffer.from(serial).toString("hex"));
}

/** Unsigned big-endian bytes of a serial value. */
export function serialFromBigInt(value: bigint): Buffer {
  if (value < 0n) throw new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "serial must be positive", value.toString());
  let hex = value.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  return Buffer.from(hex, "hex");
}

/** Decimal form of a hex serial (liteboot and Mainflux carry serials in decimal). */
export function serialHexToDecimal(hex: string): string {
  return BigInt("0x" + hex).toString(10);
}

/**
 * Reads a serial typed by a person: `0x…`, hex with colons (`3a:0f:…`), hex
 * with letters, or decimal digits. Digits-only input is ambiguous, so this
 * returns every reading, decimal first; callers look each up.
 */
export function parseSerialInput(text: string): bigint[] {
  const s = text.trim().toLowerCase();
  const bad = () => new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "not a serial number", text);
  if (s.length === 0 || s.length > 64) throw bad();
  if (/^0x[0-9a-f]+$/.test(s)) return [BigInt(s)];
  if (/^[0-9a-f]{1,2}(:[0-9a-f]{1,2})+$/.test(s)) return [BigInt("0x" + s.split(":").map((p) => p.padStart(2, "0")).join(""))];
  if (/^[0-9]+$/.test(s)) {
    const dec = BigInt(s);
    const hex = BigInt("0x" + s);
    return dec === hex ? [dec] : [dec, hex];
  }
  if (/^[0-9a-f]+$/.test(s)) return [BigInt("0x" + s)];
  throw bad();
}
