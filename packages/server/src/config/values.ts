/**
 * Value parsers for configuration: each reads one raw value (TOML, env or
 * flag text), reports what is wrong through `report`, and returns the typed
 * value or undefined. Used by load.ts.
 */
import { isIP, isIPv6 } from "node:net";
import path from "node:path";
import { EKU_OIDS } from "@tessera/pki";
import { parseDuration } from "./duration.js";
export const HOST_RE = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
export type Parser<T> = (raw: unknown, report: (message: string) => void, base: string) => T | undefined;
export type Address = { host: string; port: number };
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
export type Table = Record<string, unknown>;

export const text: Parser<string> = (raw, report) => {
  if (typeof raw === "string" && raw.trim() !== "") return raw.trim();
  return void report(`expected a non-empty string, got ${show(raw)}`);
};

export const filePath: Parser<string> = (raw, report, base) => {
  const s = text(raw, report, base);
  return s === undefined ? undefined : path.resolve(base, s);
};

export const bool: Parser<boolean> = (raw, report) => (typeof raw === "boolean" ? raw : void report(`expected true or false, got ${show(raw)}`));

export function oneOf<T extends string>(values: readonly T[]): Parser<T> {
  return (raw, report) => {
    if (typeof raw === "string" && (values as readonly string[]).includes(raw)) return raw as T;
    return void report(`expected one of ${values.map((v) => JSON.stringify(v)).join(", ")}, got ${show(raw)}${hint(raw, values)}`);
  };
}

export function int(min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> {
  return (raw, report) => {
    if (typeof raw === "number" && Number.isSafeInteger(raw) && raw >= min && raw <= max) return raw;
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `${min} to ${max}`;
    return void report(`expected a whole number ${range}, got ${show(raw)}`);
  };
}

export function duration(min: number): Parser<number> {
  return (raw, report) => {
    const s = parseDuration(raw);
    if (s === undefined) return void report(`expected a duration such as "90d", "24h", "1h30m" or a number of seconds, got ${show(raw)}`);
    if (s < min) return void report(`must be at least ${min} second${min === 1 ? "" : "s"}`);
    return s;
  };
}

/** An array whose items all pass `item`; `nonEmpty` (the message to give) rejects []. */
export function list<T>(item: Parser<T>, nonEmpty?: string): Parser<T[]> {
  return (raw, report, base) => {
    if (!Array.isArray(raw)) return void report(`expected an array, got ${show(raw)}`);
    if (nonEmpty && raw.length === 0) return void report(nonEmpty);
    const out = raw.map((x) => item(x, report, base));
    return out.every((x) => x !== undefined) ? (out as T[]) : undefined;
  };
}

export const listenerName: Parser<string> = (raw, report) =>
  typeof raw === "string" && NAME_RE.test(raw) ? raw : void report(`expected a name of letters, digits, '-' and '_', got ${show(raw)}`);

export const extKeyUsage: Parser<string> = (raw, report) => {
  if (typeof raw === "string" && (Object.hasOwn(EKU_OIDS, raw) || /^\d+(\.\d+)+$/.test(raw))) return raw;
  const names = Object.keys(EKU_OIDS);
  return void report(`expected an extended key usage (${names.join(", ")}) or a dotted OID, got ${show(raw)}${hint(raw, names)}`);
};

export const hostname: Parser<string> = (raw, report, base) => {
  const s = text(raw, report, base)?.toLowerCase();
  if (s === undefined) return undefined;
  return validHost(s) ? s : void report(`not a valid host name or IP address: ${show(s)}`);
};

/** "host:port", "[v6]:port" or ":port" (all interfaces, 0.0.0.0); port 0 picks a free port. */
export const address: Parser<Address> = (raw, report) => {
  const m = typeof raw === "string" ? /^(?:\[([^\]]*)\]|([^[\]]*)):(\d{1,5})$/.exec(raw.trim()) : null;
  if (!m) return void report(`expected "host:port" such as "0.0.0.0:8443", "[::1]:8443" or ":8443", got ${show(raw)}`);
  const host = m[1] ?? (m[2] || "0.0.0.0");
  const port = Number(m[3]);
  if (m[1] !== undefined && !isIPv6(host)) return void report(`only IPv6 addresses go in brackets, got ${show(raw)}`);
  if (m[1] === undefined && host.includes(":")) return void report(`write IPv6 addresses in brackets, e.g. "[::1]:8443", got ${show(raw)}`);
  if (!validHost(host)) return void report(`not a valid host name or IP address: ${show(host)}`);
  if (port > 65535) return void report(`port must be 0 to 65535, got ${port}`);
  return { host, port };
};

/** An address, or "off" / false for no plain-HTTP listener (null). */
export const httpListen: Parser<Address | null> = (raw, report, base) =>
  raw === false || (typeof raw === "string" && raw.trim().toLowerCase() === "off") ? null : address(raw, report, base);

/** Bytes: a positive whole number, or with a k/m/g suffix (powers of 1024; "64k", "1m", "512KiB"). */
export const byteSize: Parser<number> = (raw, report) => {
  const m = typeof raw === "string" ? /^(\d+)\s*(?:([kmg])(?:i?b)?|b)?$/i.exec(raw.trim()) : null;
  const n = typeof raw === "number" ? raw : m ? Number(m[1]) * 1024 ** " kmg".indexOf((m[2] ?? " ").toLowerCase()) : NaN;
  if (Number.isSafeInteger(n) && n > 0) return n;
  return void report(`expected a positive number of bytes such as 65536, "64k" or "1m", got ${show(raw)}`);
};

/**
 * "postgres://…" / "postgresql://…" pass through; "sqlite:<path>" or a plain
 * path means SQLite at that path (relative to `base`); "sqlite::memory:" is
 * an in-memory database. Credentials in a URL are never echoed in messages.
 */
export const databaseUrl: Parser<string> = (raw, report, base) => {
  const s = text(raw, report, base);
  if (s === undefined) return undefined;
  if (/^postgres(ql)?:\/\//i.test(s)) return URL.canParse(s) ? s : void report("not a valid PostgreSQL URL");
  if (/^sqlite:/i.test(s)) {
    const p = s.slice("sqlite:".length).replace(/^\/\//, "");
    if (p === ":memory:") return "sqlite::memory:";
    return p ? `sqlite:${path.resolve(base, p)}` : void report('"sqlite:" needs a file path, e.g. "sqlite:./data/tessera.db"');
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s)?.[1];
  if (scheme) return void report(`unsupported database scheme "${scheme}:": use "postgres://…", "sqlite:<path>" or a file path`);
  return `sqlite:${path.resolve(base, s)}`;
};

// ---- helpers ---------------------------------------------------------------

export const isTable = (v: unknown): v is Table => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
export const validHost = (h: string): boolean => isIP(h) !== 0 || HOST_RE.test(h);
export const formatAddress = (a: Address): string => (a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);

/** A value as it reads in a message. */
export function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  return Array.isArray(v) ? "an array" : v instanceof Date ? "a date" : isTable(v) ? "a table" : String(v);
}

/** `; did you mean "x"?` when a candidate is close to `word` (ignoring case, '-' and '_'), else "". */
export function hint(word: unknown, candidates: readonly string[]): string {
  if (typeof word !== "string") return "";
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = norm(c) === norm(word) ? 0 : editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? `; did you mean ${JSON.stringify(best)}?` : "";
}

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
