/**
 * The SQL behind the Mainflux-compatible API's own tables (migration 4,
 * docs/protocols/mainflux.md), shared by SQLite and PostgreSQL: the
 * server-generated private keys waiting for their device's one download
 * (`issued_keys`) and the things' encrypted keys (`thing_keys`). The
 * ciphertexts are opaque here; the front-end encrypts and decrypts them.
 * store-sql.ts delegates here; the issuance write inserts `issued_keys` rows
 * (issued-write.ts) so a certificate is never stored without its key.
 */
import type { IssuedKeyRecord } from "../authority/ports.js";
import { iso, isoOrNull } from "./rows.js";
import { placeholders, type Row, type SqlExecutor, type SqlQueryable } from "./sql.js";

function toIssuedKey(row: Row): IssuedKeyRecord {
  const key = row.encrypted_key;
  return {
    serial: String(row.serial),
    thingId: String(row.thing_id),
    ciphertext: key == null ? null : Buffer.isBuffer(key) ? key : Buffer.from(key as Uint8Array),
    createdAt: new Date(String(row.created_at)),
    downloadedAt: row.downloaded_at == null ? null : new Date(String(row.downloaded_at)),
  };
}

/** Inserts an issued key row inside the issuance's transaction. */
export async function insertIssuedKey(tx: SqlQueryable, serial: string, thingId: string, ciphertext: Buffer, at: Date): Promise<void> {
  await tx.run("INSERT INTO issued_keys (serial, thing_id, encrypted_key, created_at, downloaded_at) VALUES (?, ?, ?, ?, NULL)", [
    serial,
    thingId,
    ciphertext,
    iso(at),
  ]);
}

/** Store.getIssuedKey. */
export async function getIssuedKey(db: SqlExecutor, serial: string): Promise<IssuedKeyRecord | undefined> {
  const row = await db.get("SELECT * FROM issued_keys WHERE serial = ?", [serial]);
  return row && toIssuedKey(row);
}

/** Store.listIssuedKeys: a thing's rows, oldest first. */
export async function listIssuedKeys(db: SqlExecutor, thingId: string): Promise<IssuedKeyRecord[]> {
  const rows = await db.all("SELECT * FROM issued_keys WHERE thing_id = ? ORDER BY created_at, serial", [thingId]);
  return rows.map(toIssuedKey);
}

/**
 * Store.markIssuedKeyDownloaded: the download-once compare-and-set. One
 * UPDATE both records the download and erases the ciphertext, and only while
 * it is not yet downloaded and still there, so of concurrent callers exactly
 * one sees true.
 */
export async function markIssuedKeyDownloaded(db: SqlExecutor, serial: string, thingId: string, at: Date): Promise<boolean> {
  const { changes } = await db.run(
    "UPDATE issued_keys SET downloaded_at = ?, encrypted_key = NULL WHERE serial = ? AND thing_id = ? AND downloaded_at IS NULL AND encrypted_key IS NOT NULL",
    [iso(at), serial, thingId],
  );
  return changes === 1;
}

/** Store.eraseIssuedKeys: drops the ciphertexts (revoked certificates), leaving downloadedAt as it is. */
export async function eraseIssuedKeys(db: SqlExecutor, serials: readonly string[]): Promise<number> {
  if (serials.length === 0) return 0;
  const { changes } = await db.run(`UPDATE issued_keys SET encrypted_key = NULL WHERE encrypted_key IS NOT NULL AND serial IN (${placeholders(serials.length)})`, serials);
  return changes;
}

/** Store.putThingKey: inserts or replaces a thing's encrypted key. */
export async function putThingKey(db: SqlExecutor, thingId: string, ciphertext: Buffer, at: Date): Promise<void> {
  await db.run(
    `INSERT INTO thing_keys (thing_id, encrypted_key, created_at) VALUES (?, ?, ?)
     ON CONFLICT (thing_id) DO UPDATE SET encrypted_key = excluded.encrypted_key, created_at = excluded.created_at`,
    [thingId, ciphertext, isoOrNull(at)],
  );
}

/** Store.getThingKey. */
export async function getThingKey(db: SqlExecutor, thingId: string): Promise<Buffer | undefined> {
  const row = await db.get("SELECT encrypted_key FROM thing_keys WHERE thing_id = ?", [thingId]);
  if (!row) return undefined;
  const v = row.encrypted_key;
  return Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array);
}

/** Store.deleteThingKey. */
export async function deleteThingKey(db: SqlExecutor, thingId: string): Promise<boolean> {
  const { changes } = await db.run("DELETE FROM thing_keys WHERE thing_id = ?", [thingId]);
  return changes === 1;
}
