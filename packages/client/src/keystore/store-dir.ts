/**
 * The device's identity directory, byte-compatible with imprint's Go client
 * (spec §8): client.key, client.crt, ca.crt and enrollment.json.
 *
 * Why directories are swapped: imprint renames each file into place on its
 * own, so a crash or a concurrent reader can pair a new certificate with the
 * old key (W17). Here the four files are written into a sibling directory
 * `<dir>.staging`, fsynced, renamed to `<dir>.new` (which therefore always
 * holds a complete set), and then swapped in with two renames: `<dir>` →
 * `<dir>.old`, `<dir>.new` → `<dir>`. A reader sees the old set, the new set,
 * or — for the instant between the renames — no directory (ENOENT), never a
 * mix. Node has no renameat2(RENAME_EXCHANGE), so that instant cannot be
 * closed. A crash in it leaves `<dir>` missing with `<dir>.new` present; every
 * load and save first promotes `<dir>.new` (or restores `<dir>.old`).
 * Files other than the four (e.g. imprint-identity) are copied across.
 *
 * When a directory cannot be renamed (EBUSY/EXDEV/EPERM/EACCES: `<dir>` is a
 * mount point, the parent is not writable, Windows holds a handle), the set is
 * written imprint's way instead: all four `<name>.tmp` files first, then four
 * renames in quick succession — atomic per file only.
 *
 * Concurrent saves within one process are serialised; saves from several
 * processes at once are not supported (nor are they by imprint).
 */
import type * as crypto from "node:crypto";
import { createPrivateKey } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { certificatePublicKey, keysMatch, parseCertificate, pemDecodeAll, type ParsedCertificate } from "@tessera/pki";

/** File names inside the store directory, as imprint names them. */
export const STORE_FILES = { key: "client.key", certificate: "client.crt", ca: "ca.crt", enrollment: "enrollment.json" } as const;

// Written in imprint's order (key, crt, ca, json) by the per-file fallback.
const SET = [STORE_FILES.key, STORE_FILES.certificate, STORE_FILES.ca, STORE_FILES.enrollment] as const;
const DIR_RENAME_IMPOSSIBLE = new Set(["EBUSY", "EXDEV", "EPERM", "EACCES", "EROFS"]);

/** What saveIdentity writes. */
export interface IdentityToSave {
  /** The key the certificate was issued for (EC keys are stored as SEC1, others as PKCS#8). */
  privateKey: crypto.KeyObject;
  /** `certificate` from the server, stored verbatim. */
  certificatePem: string;
  /** `ca_certificate` from the server, stored verbatim. */
  caPem: string;
  serverId: string;
  fingerprint: string;
}

/** What loadIdentity reads back. */
export interface StoredIdentity {
  privateKey: crypto.KeyObject;
  /** client.crt, verbatim. */
  certificatePem: string;
  /** The first PEM block of client.crt. */
  certificate: ParsedCertificate;
  /** ca.crt, verbatim. */
  caPem: string;
  /** Every CERTIFICATE block of ca.crt. */
  caCertificates: ParsedCertificate[];
  /** From enrollment.json; undefined when that file is missing or unreadable (it is optional, as in imprint). */
  serverId?: string;
  fingerprint?: string;
}

/** Options of saveIdentity (for tests). */
export interface SaveOptions {
  /** Directory rename used for the swap (default fs.rename); tests fail it to exercise the fallback. */
  renameDir?: (from: string, to: string) => Promise<void>;
}

/** The store cannot be used: `reason` says whether it is absent or damaged. */
export class StoreDirError extends Error {
  readonly reason: "not-enrolled" | "unreadable";
  constructor(reason: "not-enrolled" | "unreadable", message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreDirError";
    this.reason = reason;
  }
}

/** PEM of a private key as the store holds it: "EC PRIVATE KEY" (SEC1) for EC keys, PKCS#8 "PRIVATE KEY" otherwise. */
export function encodeStoredKey(key: crypto.KeyObject): string {
  if (key.asymmetricKeyType === "ec") return key.export({ type: "sec1", format: "pem" }) as string;
  return key.export({ type: "pkcs8", format: "pem" }) as string;
}

/**
 * enrollment.json bytes as Go's json.MarshalIndent(…, "", "  ") writes them:
 * two-space indent, no trailing newline, and <, >, &, U+2028, U+2029 escaped.
 */
export function encodeEnrollmentJson(serverId: string, fingerprint: string): string {
  return JSON.stringify({ server_id: serverId, fingerprint }, null, 2).replace(
    /[<>&\u2028\u2029]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
  );
}

/** Parses a stored private key as imprint does: the first PEM block, tried as SEC1, then as PKCS#8. */
export function parseStoredKey(pem: string): crypto.KeyObject {
  const block = pemDecodeAll(pem)[0];
  if (!block) throw new StoreDirError("unreadable", "client.key: not valid PEM");
  for (const type of ["sec1", "pkcs8"] as const) {
    try {
      return createPrivateKey({ key: block.der, format: "der", type });
    } catch {
      // try the next encoding
    }
  }
  throw new StoreDirError("unreadable", "client.key: unsupported private key format");
}

type FileSet = { name: string; data: string; mode: number }[];

function render(id: IdentityToSave): FileSet {
  return [
    { name: STORE_FILES.key, data: encodeStoredKey(id.privateKey), mode: 0o600 },
    { name: STORE_FILES.certificate, data: id.certificatePem, mode: 0o644 },
    { name: STORE_FILES.ca, data: id.caPem, mode: 0o644 },
    { name: STORE_FILES.enrollment, data: encodeEnrollmentJson(id.serverId, id.fingerprint), mode: 0o644 },
  ];
}

const locks = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier locked call for the same directory has settled. */
function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(dir) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => undefined);
  locks.set(dir, tail);
  void tail.then(() => {
    if (locks.get(dir) === tail) locks.delete(dir);
  });
  return run;
}

const exists = (p: string) => fs.lstat(p).then(() => true, () => false);
const codeOf = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code ?? "";
const staging = (dir: string) => dir + ".staging";
const fresh = (dir: string) => dir + ".new";
const previous = (dir: string) => dir + ".old";

async function writeDurably(file: string, data: string, mode: number): Promise<void> {
  await fs.rm(file, { force: true });
  const fh = await fs.open(file, "w", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  // Makes renames durable on Linux; Windows cannot open directories, which is fine to skip.
  try {
    const fh = await fs.open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // best effort
  }
}

/** Writes the new set plus copies of any other files into `<dir>.staging`, then renames it to `<dir>.new`. */
async function stage(dir: string, files: FileSet): Promise<void> {
  const tmp = staging(dir);
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp, { mode: 0o700 });
  const current = await fs.stat(dir).catch(() => undefined);
  if (current) {
    // Keep the directory's own mode (imprint never changes an existing directory's mode).
    await fs.chmod(tmp, current.mode & 0o7777);
    const ours = new Set<string>(SET.flatMap((n) => [n, n + ".tmp"]));
    for (const entry of await fs.readdir(dir)) {
      if (!ours.has(entry)) await fs.cp(path.join(dir, entry), path.join(tmp, entry), { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    }
  }
  for (const f of files) await writeDurably(path.join(tmp, f.name), f.data, f.mode);
  await syncDir(tmp);
  await fs.rm(fresh(dir), { recursive: true, force: true });
  await fs.rename(tmp, fresh(dir));
}

/** Imprint's way: every `<name>.tmp` written first, then renamed over the old file. */
async function writePerFile(dir: string, files: FileSet): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  for (const f of files) await writeDurably(path.join(dir, f.name + ".tmp"), f.data, f.mode);
  for (const f of files) await fs.rename(path.join(dir, f.name + ".tmp"), path.join(dir, f.name));
  await syncDir(dir);
}

async function readSet(from: string): Promise<FileSet> {
  return Promise.all(
    SET.map(async (name) => {
      const p = path.join(from, name);
      return { name, data: await fs.readFile(p, "utf8"), mode: (await fs.stat(p)).mode & 0o777 };
    }),
  );
}

/** Puts the complete set in `<dir>.new` in place of `<dir>`: a directory swap, or per-file when directories cannot be renamed. */
async function installNew(dir: string, renameDir: (a: string, b: string) => Promise<void>): Promise<"swap" | "per-file"> {
  const next = fresh(dir);
  try {
    if (await exists(dir)) {
      await fs.rm(previous(dir), { recursive: true, force: true });
      await renameDir(dir, previous(dir));
      try {
        await renameDir(next, dir);
      } catch (err) {
        await renameDir(previous(dir), dir);
        throw err;
      }
      await syncDir(path.dirname(dir));
      await fs.rm(previous(dir), { recursive: true, force: true });
    } else {
      await renameDir(next, dir);
      await syncDir(path.dirname(dir));
    }
    return "swap";
  } catch (err) {
    if (!DIR_RENAME_IMPOSSIBLE.has(codeOf(err))) throw err;
    await writePerFile(dir, await readSet(next));
    await fs.rm(next, { recursive: true, force: true });
    return "per-file";
  }
}

/** Finishes a swap a crash interrupted: promotes a complete `<dir>.new`, or restores `<dir>.old`; clears leftovers. */
async function recover(dir: string, renameDir: (a: string, b: string) => Promise<void>): Promise<void> {
  if (!(await exists(dir)) && !(await exists(fresh(dir))) && (await exists(previous(dir)))) {
    await renameDir(previous(dir), dir);
  }
  if (await exists(fresh(dir))) await installNew(dir, renameDir);
  await fs.rm(previous(dir), { recursive: true, force: true });
  await fs.rm(staging(dir), { recursive: true, force: true });
}

/**
 * The directory the swap works on: a symlinked store directory is followed,
 * so the link itself stays in place and its target is swapped beside it.
 */
async function resolveDir(dir: string): Promise<string> {
  const abs = path.resolve(dir);
  try {
    return await fs.realpath(abs);
  } catch {
    // Missing (first save, or a crash mid-swap); a dangling link still names the target.
  }
  try {
    if ((await fs.lstat(abs)).isSymbolicLink()) return path.resolve(path.dirname(abs), await fs.readlink(abs));
  } catch {
    // not there at all
  }
  return abs;
}

/** Recovery before a read; best effort, since a reader may lack write access to the parent directory. */
async function recoverForRead(dir: string): Promise<void> {
  await withLock(dir, () => recover(dir, fs.rename)).catch(() => undefined);
}

/**
 * Replaces the identity (client.key 0600, client.crt/ca.crt/enrollment.json
 * 0644, directory 0700 when created) as one set; see the module comment for
 * how. Returns which method was used.
 */
export async function saveIdentity(dir: string, identity: IdentityToSave, options: SaveOptions = {}): Promise<"swap" | "per-file"> {
  const target = await resolveDir(dir);
  const renameDir = options.renameDir ?? fs.rename;
  const files = render(identity);
  return withLock(target, async () => {
    await recover(target, renameDir);
    // MkdirAll(dir, 0700) in imprint: missing parents are created 0700 as well.
    await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    try {
      await stage(target, files);
    } catch (err) {
      // The parent may be read-only while the directory itself is writable.
      if (!DIR_RENAME_IMPOSSIBLE.has(codeOf(err))) throw err;
      await fs.rm(staging(target), { recursive: true, force: true }).catch(() => undefined);
      await writePerFile(target, files);
      return "per-file";
    }
    try {
      return await installNew(target, renameDir);
    } catch (err) {
      // A save that reports failure leaves the old set: drop the staged one so
      // recovery cannot promote it later.
      await fs.rm(fresh(target), { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  });
}

async function readText(dir: string, name: string): Promise<string> {
  try {
    return await fs.readFile(path.join(dir, name), "utf8");
  } catch (err) {
    if (codeOf(err) === "ENOENT") throw new StoreDirError("not-enrolled", `not enrolled: no certificates in ${dir}`, { cause: err });
    throw new StoreDirError("unreadable", `${name}: ${(err as Error).message}`, { cause: err });
  }
}

function parseFirstCertificate(pem: string, name: string): ParsedCertificate {
  try {
    const block = pemDecodeAll(pem)[0];
    if (!block) throw new Error("no PEM block");
    return parseCertificate(block.der);
  } catch (err) {
    throw new StoreDirError("unreadable", `${name}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads client.crt's first PEM block as a certificate (imprint's LoadCert). */
export async function loadCertificate(dir: string): Promise<ParsedCertificate> {
  const target = await resolveDir(dir);
  await recoverForRead(target);
  return parseFirstCertificate(await readText(target, STORE_FILES.certificate), STORE_FILES.certificate);
}

/**
 * Loads the stored identity. Throws StoreDirError "not-enrolled" when one of
 * client.key, client.crt, ca.crt is missing, "unreadable" when one cannot be
 * parsed or the key does not belong to the certificate.
 */
export async function loadIdentity(dir: string): Promise<StoredIdentity> {
  const target = await resolveDir(dir);
  await recoverForRead(target);
  const [keyPem, certificatePem, caPem] = await Promise.all([
    readText(target, STORE_FILES.key),
    readText(target, STORE_FILES.certificate),
    readText(target, STORE_FILES.ca),
  ]);
  const privateKey = parseStoredKey(keyPem);
  const certificate = parseFirstCertificate(certificatePem, STORE_FILES.certificate);
  let caCertificates: ParsedCertificate[];
  try {
    // Like Go's AppendCertsFromPEM: other block types are skipped.
    caCertificates = pemDecodeAll(caPem).filter((b) => b.label === "CERTIFICATE").map((b) => parseCertificate(b.der));
  } catch (err) {
    throw new StoreDirError("unreadable", `${STORE_FILES.ca}: ${(err as Error).message}`, { cause: err });
  }
  if (caCertificates.length === 0) throw new StoreDirError("unreadable", `${STORE_FILES.ca}: no certificates`);
  let matches = false;
  try {
    matches = keysMatch(privateKey, certificatePublicKey(certificate));
  } catch {
    // an unsupported certificate key counts as a mismatch
  }
  if (!matches) {
    throw new StoreDirError("unreadable", `${STORE_FILES.key} does not match ${STORE_FILES.certificate}`);
  }
  const meta = await readEnrollmentMeta(target);
  return { privateKey, certificatePem, certificate, caPem, caCertificates, ...meta };
}

async function readEnrollmentMeta(dir: string): Promise<{ serverId?: string; fingerprint?: string }> {
  try {
    const obj = JSON.parse(await fs.readFile(path.join(dir, STORE_FILES.enrollment), "utf8")) as Record<string, unknown>;
    const out: { serverId?: string; fingerprint?: string } = {};
    if (typeof obj.server_id === "string") out.serverId = obj.server_id;
    if (typeof obj.fingerprint === "string") out.fingerprint = obj.fingerprint;
    return out;
  } catch {
    return {};
  }
}

/** True if client.key, client.crt and ca.crt all exist (imprint's IsEnrolled; enrollment.json is not needed). */
export async function isEnrolled(dir: string): Promise<boolean> {
  const target = await resolveDir(dir);
  await recoverForRead(target);
  const found = await Promise.all([STORE_FILES.key, STORE_FILES.certificate, STORE_FILES.ca].map((n) => exists(path.join(target, n))));
  return found.every(Boolean);
}

/** NotAfter of the stored certificate. */
export async function certificateExpiry(dir: string): Promise<Date> {
  return (await loadCertificate(dir)).notAfter;
}

/**
 * True if the stored certificate is still valid but expires in less than
 * `thresholdMs` milliseconds (strict <); false once it has expired (now > NotAfter),
 * as imprint's NeedsRenewal.
 */
export async function needsRenewal(dir: string, thresholdMs: number, now: Date = new Date()): Promise<boolean> {
  const notAfter = (await certificateExpiry(dir)).getTime();
  if (now.getTime() > notAfter) return false;
  return notAfter - now.getTime() < thresholdMs;
}
