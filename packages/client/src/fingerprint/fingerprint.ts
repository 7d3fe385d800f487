/**
 * Device fingerprint compatible with imprint (spec §7): a SHA-256 over the
 * sorted hardware attributes, falling back to a persisted identity file and
 * then to a random UUID.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { collectAttributes, compareBytes, type CollectorOptions } from "./collectors.js";

/** How a fingerprint was derived. */
export type FingerprintTier = "hardware" | "persisted" | "generated";

/** A fingerprint and where it came from. */
export interface FingerprintResult {
  /** `sha256:` + 64 lowercase hex (71 characters); a persisted value is returned as stored. */
  fingerprint: string;
  tier: FingerprintTier;
  /** The attributes hashed (empty unless tier is "hardware"). */
  attributes: Record<string, string>;
}

/** Options for generateFingerprint; the collector fields exist so tests can fake every source. */
export interface FingerprintOptions extends CollectorOptions {
  /** Directory of the identity file; without it tiers "persisted" and "generated" are disabled. */
  persistDir?: string;
  /**
   * Use an existing identity file before looking at hardware, and never
   * overwrite it (fixes imprint's W22: a new container MAC no longer changes
   * the identity). Default false, which behaves exactly as imprint.
   */
  preferPersisted?: boolean;
  /** UUID source for the generated tier (default crypto.randomUUID). */
  randomUUID?: () => string;
}

/** Name of the identity file inside persistDir. */
export const IDENTITY_FILE = "imprint-identity";

/** A fingerprint could not be produced; the message is imprint's. */
export class FingerprintError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FingerprintError";
  }
}

/**
 * Hashes attributes as imprint does: empty values skipped, keys sorted by
 * byte order, SHA-256 over the UTF-8 of each `key=value\n`; returns
 * `sha256:` + 64 lowercase hex.
 */
export function hashAttributes(pairs: Record<string, string>): string {
  const keys = Object.keys(pairs).filter((k) => pairs[k] !== "").sort(compareBytes);
  const h = crypto.createHash("sha256");
  for (const k of keys) h.update(`${k}=${pairs[k]}\n`, "utf8");
  return "sha256:" + h.digest("hex");
}

/** SHA-256 of a generated UUID string (no newline), as the generated tier stores it. */
export function hashGeneratedId(uuid: string): string {
  return "sha256:" + crypto.createHash("sha256").update(uuid, "utf8").digest("hex");
}

/** Reads `<dir>/imprint-identity`: trimmed content, or undefined if missing, unreadable or blank. */
export async function readPersistedIdentity(dir: string): Promise<string | undefined> {
  try {
    const text = (await fs.readFile(path.join(dir, IDENTITY_FILE), "utf8")).trim();
    return text === "" ? undefined : text;
  } catch {
    return undefined;
  }
}

/**
 * Writes `<dir>/imprint-identity` (content + "\n", mode 0600; dir created
 * 0700) through `imprint-identity.tmp` and a rename, so a reader sees the old
 * or the new identity, never half of one.
 */
export async function writePersistedIdentity(dir: string, fingerprint: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, IDENTITY_FILE + ".tmp");
  await fs.writeFile(tmp, fingerprint + "\n", { mode: 0o600 });
  await fs.rename(tmp, path.join(dir, IDENTITY_FILE));
}

/**
 * Produces the device fingerprint (spec §7): tier "hardware" from collected
 * attributes (also written to the identity file when persistDir is set,
 * errors ignored), else "persisted" from the identity file, else "generated"
 * from a random UUID that is persisted. Throws FingerprintError when nothing
 * is available and no persistDir is set, or when a generated identity cannot
 * be saved (a fingerprint that changes on every start would be worse).
 */
export async function generateFingerprint(opts: FingerprintOptions = {}): Promise<FingerprintResult> {
  const dir = opts.persistDir !== undefined && opts.persistDir !== "" ? opts.persistDir : undefined;
  if (dir && opts.preferPersisted) {
    // Checked before collecting so a persisted identity wins even when hardware changed.
    const persisted = await readPersistedIdentity(dir);
    if (persisted) return { fingerprint: persisted, tier: "persisted", attributes: {} };
  }
  const attributes = await collectAttributes(opts);
  if (Object.keys(attributes).length > 0) {
    const fingerprint = hashAttributes(attributes);
    if (dir) await writePersistedIdentity(dir, fingerprint).catch(() => undefined);
    return { fingerprint, tier: "hardware", attributes };
  }
  if (!dir) throw new FingerprintError("fingerprint: no hardware attributes available and no PersistDir configured");
  const persisted = await readPersistedIdentity(dir);
  if (persisted) return { fingerprint: persisted, tier: "persisted", attributes: {} };
  const fingerprint = hashGeneratedId((opts.randomUUID ?? crypto.randomUUID)());
  try {
    await writePersistedIdentity(dir, fingerprint);
  } catch (err) {
    throw new FingerprintError(`fingerprint: failed to generate identity: ${(err as Error).message}`, { cause: err });
  }
  return { fingerprint, tier: "generated", attributes: {} };
}
