/**
 * An exclusive lock between processes that works wherever Node runs (Node
 * has no flock): a lock file created with O_CREAT|O_EXCL (`fs.open(path,
 * "wx")`), which exactly one process can create, holding the owner's pid,
 * host and start time. A lock whose owner is gone is stale and taken over:
 * its process no longer exists on this host, or it is older than maxAgeMs
 * (a crash, a power cut, a pid reused after a reboot).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";

/** Default age after which a lock counts as stale whoever holds it, in milliseconds (10 min). */
export const DEFAULT_LOCK_MAX_AGE_MS = 600_000;

/** What a lock file holds (one JSON line). */
export interface LockOwner {
  pid: number;
  host: string;
  /** When the lock was taken (ISO 8601). */
  since: string;
  /** Random token: tells this taking of the lock from any other. */
  token: string;
}

/** A lock that is held; release() gives it back. */
export interface HeldLock {
  readonly path: string;
  readonly owner: LockOwner;
  /** Removes the lock file if it is still this lock's (a taken-over stale lock is left alone). */
  release(): Promise<void>;
}

/** Options of acquireFileLock. */
export interface FileLockOptions {
  /** Age after which any lock is stale (default 10 min). Must exceed the longest time the lock is held. */
  maxAgeMs?: number;
  /** Clock (default Date.now). */
  now?: () => number;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid === "number" && typeof o.host === "string" && typeof o.since === "string" && typeof o.token === "string") return o as LockOwner;
  } catch {
    // empty (its creator is between open and write) or damaged
  }
  return undefined;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Why a lock file is stale, or undefined when its owner may still hold it. */
function staleReason(text: string, mtimeMs: number, maxAgeMs: number, now: number): string | undefined {
  const owner = parseOwner(text);
  const since = owner ? Date.parse(owner.since) : NaN;
  const age = now - (Number.isNaN(since) ? mtimeMs : Math.min(since, mtimeMs));
  if (age > maxAgeMs) return `older than ${Math.round(maxAgeMs / 1000)}s`;
  if (owner && owner.host === os.hostname() && owner.pid !== process.pid && !processExists(owner.pid)) return `process ${owner.pid} is gone`;
  return undefined;
}

async function tryCreate(path: string, owner: LockOwner): Promise<boolean> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(path, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    await handle.writeFile(JSON.stringify(owner) + "\n");
    await handle.sync();
  } finally {
    await handle.close();
  }
  return true;
}

/**
 * Takes the lock at `path`, or returns undefined when another process holds
 * it. A stale lock is moved aside with rename (atomic: of several processes
 * breaking the same stale lock, one moves it) and checked to be the file
 * judged stale before it is deleted; if a live lock was moved instead, it is
 * put back. Throws only for file-system errors.
 */
export async function acquireFileLock(path: string, opts: FileLockOptions = {}): Promise<HeldLock | undefined> {
  const maxAgeMs = opts.maxAgeMs ?? DEFAULT_LOCK_MAX_AGE_MS;
  const now = opts.now ?? Date.now;
  const owner: LockOwner = { pid: process.pid, host: os.hostname(), since: new Date(now()).toISOString(), token: crypto.randomBytes(12).toString("hex") };
  const held: HeldLock = {
    path,
    owner,
    release: async () => {
      const text = await fs.promises.readFile(path, "utf8").catch(() => "");
      if (parseOwner(text)?.token === owner.token) await fs.promises.rm(path, { force: true });
    },
  };
  for (let round = 0; round < 2; round++) {
    if (await tryCreate(path, owner)) return held;
    let text: string;
    let stat: fs.Stats;
    try {
      text = await fs.promises.readFile(path, "utf8");
      stat = await fs.promises.stat(path);
    } catch (err) {
      // Released between our open and read: try again.
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    if (staleReason(text, stat.mtimeMs, maxAgeMs, now()) === undefined) return undefined;
    const aside = `${path}.stale-${process.pid}-${owner.token}`;
    try {
      await fs.promises.rename(path, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    const moved = await fs.promises.readFile(aside, "utf8").catch(() => "");
    if (moved !== text) {
      // Another process broke the stale lock and took a new one in between: put it back (unless yet another exists now).
      await fs.promises.link(aside, path).catch(() => undefined);
      await fs.promises.rm(aside, { force: true });
      return undefined;
    }
    await fs.promises.rm(aside, { force: true });
  }
  return undefined;
}
