/**
 * The Mainflux certs service's wire forms, as Go writes and reads them (spec
 * mainflux.md §1): encoding/json output, RFC3339Nano times, decimal serials,
 * time.ParseDuration, encoding/json's lenient field matching, url.Values
 * queries, strconv.ParseUint and time.Parse(RFC3339).
 */
import { serialHexToDecimal } from "@tessera/pki";

/** Go's json.Encoder output: HTML-safe escapes for <, >, &, U+2028/9, and a trailing newline. */
export function goJson(value: unknown): string {
  return (
    JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`) + "\n"
  );
}

/** Go's RFC3339Nano in UTC: fractional seconds with trailing zeros trimmed (none when zero). */
export function goTime(d: Date): string {
  return d.toISOString().replace(/\.(\d*?)0*Z$/, (_m, frac: string) => (frac ? `.${frac}Z` : "Z"));
}

/** Decimal serial → Tessera's hex form; undefined unless canonical decimal (no sign, no leading zeros, ≤ 20 octets). */
export function serialFromDecimal(text: string): string | undefined {
  if (!/^(0|[1-9][0-9]{0,48})$/.test(text)) return undefined;
  const v = BigInt(text);
  if (v >= 1n << 160n) return undefined;
  return v.toString(16);
}

/** Tessera's hex serial → Mainflux's decimal form. */
export function serialToDecimal(hex: string): string {
  return serialHexToDecimal(hex);
}

const UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  "\u00b5s": 1000n,
  "\u03bcs": 1000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const MAX_DURATION = (1n << 63n) - 1n;

/** Go's time.ParseDuration: nanoseconds, or undefined where Go returns an error (overflow included). */
export function parseGoDuration(input: string): bigint | undefined {
  let s = input;
  let neg = false;
  if (s !== "" && (s[0] === "-" || s[0] === "+")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0n;
  if (s === "") return undefined;
  let total = 0n;
  while (s !== "") {
    if (!/^[0-9.]/.test(s)) return undefined;
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s)!;
    const intPart = m[1]!;
    const fracPart = m[2];
    if (intPart === "" && (fracPart === undefined || fracPart === "")) return undefined;
    s = s.slice(m[0].length);
    let unitEnd = 0;
    while (unitEnd < s.length && !/[0-9.]/.test(s[unitEnd]!)) unitEnd++;
    if (unitEnd === 0) return undefined;
    const unit = UNITS[s.slice(0, unitEnd)];
    if (unit === undefined) return undefined;
    s = s.slice(unitEnd);
    const v = intPart === "" ? 0n : BigInt(intPart);
    if (v > (1n << 63n) / unit) return undefined;
    let part = v * unit;
    if (fracPart) {
      // As Go: the fraction's digits (as many as fit) times unit/scale, truncated.
      let f = 0;
      let scale = 1;
      for (const c of fracPart) {
        if (f > Number.MAX_SAFE_INTEGER / 10) break;
        f = f * 10 + Number(c);
        scale *= 10;
      }
      part += BigInt(Math.floor(f * (Number(unit) / scale)));
      if (part > 1n << 63n) return undefined;
    }
    total += part;
    if (total > 1n << 63n) return undefined;
  }
  if (neg) return -total;
  if (total > MAX_DURATION) return undefined;
  return total;
}

/**
 * The certs service's ttl (spec §1.2, pki parseTTL): a Go duration, else an
 * integer number of hours. Returns whole seconds (may be ≤ 0), or undefined
 * when unparsable.
 */
export function parseTtl(ttl: string): number | undefined {
  const ns = parseGoDuration(ttl);
  if (ns !== undefined) return Number(ns / 1_000_000_000n);
  // strconv.Atoi: optional sign, decimal digits, int64 range.
  if (!/^[+-]?[0-9]+$/.test(ttl)) return undefined;
  const hours = BigInt(ttl);
  if (hours > MAX_DURATION || hours < -MAX_DURATION - 1n) return undefined;
  return Number(hours) * 3600;
}

/** Field types of a request struct, by JSON name. */
export type FieldSpec = Record<string, "string" | "int">;

/**
 * Decodes a JSON object as encoding/json does into a struct with `fields`:
 * keys match case-insensitively (the last one wins), unknown keys are
 * ignored, null leaves the zero value, a wrong type or malformed JSON is an
 * error (undefined). A top-level null gives all zero values. Differences:
 * integral floats (2048.0) pass as ints, and trailing data after the value is
 * refused (Go's Decoder would ignore it).
 */
export function decodeGoObject(body: Buffer, fields: FieldSpec): Record<string, string | number> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
  const out: Record<string, string | number> = {};
  for (const [name, type] of Object.entries(fields)) out[name] = type === "string" ? "" : 0;
  if (value === null) return out;
  if (typeof value !== "object" || Array.isArray(value)) return undefined;
  const byFold = new Map(Object.keys(fields).map((k) => [k.toLowerCase(), k]));
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const name = Object.hasOwn(fields, key) ? key : byFold.get(key.toLowerCase());
    if (name === undefined || v === null) continue;
    const type = fields[name];
    if (type === "string") {
      if (typeof v !== "string") return undefined;
      out[name] = v;
    } else {
      if (typeof v !== "number" || !Number.isSafeInteger(v)) return undefined;
      out[name] = v;
    }
  }
  return out;
}

/** A query string as Go's url.Values: every value of every key, in order; undefined when it cannot be parsed. */
export function parseQuery(raw: string): Map<string, string[]> | undefined {
  const out = new Map<string, string[]>();
  if (raw === "") return out;
  for (const pair of raw.split("&")) {
    if (pair === "") continue;
    // Go 1.17+ refuses semicolons as separators (and r.URL.Query() drops such pairs).
    if (pair.includes(";")) continue;
    const eq = pair.indexOf("=");
    const [k, v] = eq < 0 ? [pair, ""] : [pair.slice(0, eq), pair.slice(eq + 1)];
    let key: string, value: string;
    try {
      key = decodeURIComponent(k.replace(/\+/g, " "));
      value = decodeURIComponent(v.replace(/\+/g, " "));
    } catch {
      continue; // url.ParseQuery skips pairs it cannot unescape
    }
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

/** strconv.ParseUint(s, 10, 64); undefined on any error. */
export function parseUint(text: string): bigint | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  const v = BigInt(text);
  return v < 1n << 64n ? v : undefined;
}

/**
 * time.Parse(time.RFC3339, s) as milliseconds since the epoch, rounded UP to
 * the millisecond (so comparisons against millisecond times keep Go's
 * nanosecond meaning for `>=` and `<`). Undefined when Go would refuse it.
 */
export function parseRfc3339(text: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-](\d{2}):(\d{2}))$/.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return undefined;
  const base = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(base);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return undefined;
  let offset = 0;
  if (m[8] !== "Z") {
    const oh = Number(m[9]);
    const om = Number(m[10]);
    if (oh > 23 || om > 59) return undefined;
    offset = (oh * 60 + om) * 60_000 * (m[8]!.startsWith("-") ? -1 : 1);
  }
  const frac = (m[7] ?? "").padEnd(9, "0");
  const ns = Number(frac);
  return base - offset + Math.ceil(ns / 1_000_000);
}
