/**
 * Single files written so that a reader or a crash never sees half of one:
 * replace through a synced temporary file renamed over the target, or create
 * a file that must not exist yet (O_EXCL), as the Caramel clients do.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";

/** How a file is written: permission bits (umask does not apply), owner, modification time. */
export interface FileAttributes {
  /** Permission bits, e.g. 0o600. */
  mode: number;
  /** Owner and group (chown needs the privilege to give files away; omitted: the writer's). */
  uid?: number;
  gid?: number;
  /** Modification (and access) time to set, e.g. the server's Last-Modified. */
  mtime?: Date;
}

async function writeAndSync(handle: fs.FileHandle, data: string | Uint8Array, attrs: FileAttributes): Promise<void> {
  await handle.writeFile(data);
  await handle.chmod(attrs.mode);
  if (attrs.uid !== undefined || attrs.gid !== undefined) await handle.chown(attrs.uid ?? -1, attrs.gid ?? -1);
  await handle.sync();
}

/**
 * Replaces `file` atomically: writes `<file>.tmp-<random>` in the same
 * directory with the attributes, syncs it, and renames it over `file`, so a
 * reader sees the old content or the new, never a mix. Creates missing
 * parent directories (0755).
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, attrs: FileAttributes): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.tmp-${crypto.randomBytes(6).toString("hex")}`;
  const handle = await fs.open(tmp, "wx", attrs.mode);
  try {
    await writeAndSync(handle, data, attrs);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    if (attrs.mtime) await fs.utimes(tmp, attrs.mtime, attrs.mtime);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Creates `file`, which must not exist (O_CREAT|O_EXCL; EEXIST otherwise),
 * with the attributes. Creates missing parent directories (0755).
 */
export async function createNewFile(file: string, data: string | Uint8Array, attrs: FileAttributes): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  const handle = await fs.open(file, "wx", attrs.mode);
  try {
    await writeAndSync(handle, data, attrs);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(file, { force: true });
    throw err;
  }
  await handle.close();
}

/** The file's content, or undefined when it does not exist. */
export async function readOptional(file: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
