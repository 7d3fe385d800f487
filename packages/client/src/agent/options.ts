/**
 * The agent's option table and the readers that turn flags and environment
 * variables into validated settings. Every problem is a UsageError (exit 2),
 * raised before anything touches the network or the store.
 */
import * as fs from "node:fs";
import { generateFingerprint, type FingerprintTier } from "../fingerprint/fingerprint.js";
import { ImprintClient } from "../protocols/imprint/client.js";
import { UsageError, type AgentIo } from "./output.js";

/** Every option any command takes (node:util parseArgs format); each command says which of them apply. */
export const OPTIONS = {
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  server: { type: "string" },
  secret: { type: "string" },
  "secret-file": { type: "string" },
  dir: { type: "string" },
  ca: { type: "string" },
  fingerprint: { type: "string" },
  "persist-dir": { type: "string" },
  "prefer-persisted": { type: "boolean" },
  hostname: { type: "string" },
  timeout: { type: "string" },
  threshold: { type: "string" },
  "challenge-window": { type: "string" },
  force: { type: "boolean" },
  interval: { type: "string" },
  jitter: { type: "string" },
  exec: { type: "string" },
  // est …
  label: { type: "string" },
  "ca-fingerprint": { type: "string" },
  out: { type: "string" },
  user: { type: "string" },
  password: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  subject: { type: "string" },
  san: { type: "string", multiple: true },
  "key-type": { type: "string" },
  rekey: { type: "boolean" },
  wait: { type: "string" },
  // caramel
  id: { type: "string" },
  embedded: { type: "boolean" },
  pem: { type: "string" },
  owner: { type: "string" },
  mode: { type: "string" },
} as const;

/** Name of an option in OPTIONS. */
export type OptionName = keyof typeof OPTIONS;

/** Parsed command line handed to a command. */
export interface Invocation {
  /** Positionals after the command name (no command takes any today). */
  args: string[];
  flags: Partial<Record<OptionName, string | boolean | string[]>>;
  io: AgentIo;
  env: NodeJS.ProcessEnv;
}

/** Store directory when neither --dir nor TESSERA_AGENT_DIR is set. */
export const DEFAULT_DIR = "./tessera-identity";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration such as "30d", "12h", "90m", "45s", "500ms" or "1.5h"
 * into milliseconds. A bare number is refused: "30" could mean seconds or days.
 */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  const ms = m ? Math.round(Number(m[1]) * UNITS[m[2]!]!) : NaN;
  if (!(ms > 0)) throw new UsageError(`--${option}: '${text}' is not a positive duration (use e.g. 30d, 12h, 90m, 45s, 500ms)`);
  return ms;
}

/** Formats milliseconds the way parseDuration reads them, using the largest whole unit. */
export function formatDuration(ms: number): string {
  for (const unit of ["d", "h", "m", "s"] as const) if (ms >= UNITS[unit]! && ms % UNITS[unit]! === 0) return `${ms / UNITS[unit]!}${unit}`;
  return `${ms}ms`;
}

/** A string flag, or undefined. */
export function str(inv: Invocation, name: OptionName): string | undefined {
  const v = inv.flags[name];
  return typeof v === "string" ? v : undefined;
}

/** A duration flag in milliseconds, or `fallback` when absent. */
export function duration(inv: Invocation, name: OptionName, fallback: number): number {
  const v = str(inv, name);
  return v === undefined ? fallback : parseDuration(v, name);
}

/** The store directory: --dir, else TESSERA_AGENT_DIR, else ./tessera-identity. */
export function storeDir(inv: Invocation): string {
  const dir = str(inv, "dir") ?? (inv.env.TESSERA_AGENT_DIR || DEFAULT_DIR);
  if (dir === "") throw new UsageError("--dir must not be empty");
  return dir;
}

/** The server URL: --server, else TESSERA_SERVER; required by enroll, renew and run. */
export function serverUrl(inv: Invocation): string {
  const url = str(inv, "server") ?? inv.env.TESSERA_SERVER;
  if (!url) throw new UsageError("no server: give --server URL or set TESSERA_SERVER");
  // ImprintClient appends "/api/v1/…" verbatim, so a trailing slash would double it.
  const trimmed = url.replace(/\/+$/, "");
  let parsed: URL | undefined;
  try {
    parsed = new URL(trimmed);
  } catch {
    // reported below
  }
  if (!parsed || !/^https?:$/.test(parsed.protocol) || !parsed.host) throw new UsageError(`--server: '${url}' is not an http(s) URL`);
  return trimmed;
}

/**
 * The build secret: --secret, else the first line of --secret-file, else
 * TESSERA_BUILD_SECRET; undefined when none is given. --secret shows up in
 * `ps`, which is why the file and the variable exist.
 */
export function buildSecret(inv: Invocation): string | undefined {
  const direct = str(inv, "secret");
  const file = str(inv, "secret-file");
  if (direct !== undefined && file !== undefined) throw new UsageError("give --secret or --secret-file, not both");
  if (file !== undefined) {
    const text = readText(file, "--secret-file");
    // Only the line ending is dropped: a secret may legitimately contain spaces.
    const secret = text.split(/\r?\n/)[0] ?? "";
    if (secret === "") throw new UsageError(`--secret-file: ${file} is empty`);
    return secret;
  }
  if (direct !== undefined) {
    if (direct === "") throw new UsageError("--secret must not be empty");
    return direct;
  }
  return inv.env.TESSERA_BUILD_SECRET || undefined;
}

/** Reads a file named on the command line; a missing or unreadable file is a usage error. */
export function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** An imprint client for the store directory, built from --server, --ca, --hostname and --timeout. */
export function imprintClient(inv: Invocation, dir: string): ImprintClient {
  const ca = str(inv, "ca");
  const trust = ca === undefined ? undefined : readText(ca, "--ca");
  if (trust !== undefined && !trust.includes("-----BEGIN CERTIFICATE-----")) throw new UsageError(`--ca: ${ca} holds no PEM certificate`);
  const hostname = str(inv, "hostname");
  return new ImprintClient({
    serviceUrl: serverUrl(inv),
    storeDir: dir,
    timeoutMs: duration(inv, "timeout", 30_000),
    ...(trust !== undefined ? { trust } : {}),
    ...(hostname !== undefined ? { hostname } : {}),
  });
}

/** The fingerprint a command uses and where it came from ("option": --fingerprint). */
export interface DeviceFingerprint {
  fingerprint: string;
  tier: FingerprintTier | "option";
}

/**
 * The device fingerprint for enroll, renew and run: --fingerprint verbatim,
 * else generated with the store directory as the persist directory (so a
 * device without hardware attributes keeps its generated identity there).
 */
export async function deviceFingerprint(inv: Invocation, dir: string): Promise<DeviceFingerprint> {
  const given = str(inv, "fingerprint");
  if (given !== undefined) {
    if (given.trim() === "") throw new UsageError("--fingerprint must not be empty");
    return { fingerprint: given, tier: "option" };
  }
  const { fingerprint, tier } = await generateFingerprint({ persistDir: dir, preferPersisted: inv.flags["prefer-persisted"] === true });
  return { fingerprint, tier };
}
