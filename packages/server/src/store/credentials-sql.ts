/**
 * The SQL of the credentials table (bootstrap secrets and certificates, EST
 * users, operator tokens, Mainflux thing keys), shared by SQLite and
 * PostgreSQL; store-sql.ts delegates here. Using one up (consume) and
 * revoking are single compare-and-set statements.
 */
import type { CredentialKind, CredentialRecord } from "../authority/ports.js";
import { iso, isoOrNull, toCredential } from "./rows.js";
import { placeholders, type SqlExecutor } from "./sql.js";

/** Store.createCredential. */
export async function createCredential(db: SqlExecutor, c: CredentialRecord): Promise<void> {
  await db.run(
    `INSERT INTO credentials (id, kind, name, scope, hash, expires_at, max_uses, use_count, revoked_at, created_at)
     VALUES (${placeholders(10)})`,
    [c.id, c.kind, c.name, c.scope, c.hash, isoOrNull(c.expiresAt), c.maxUses, c.useCount, isoOrNull(c.revokedAt), iso(c.createdAt)],
  );
}

/** Store.getCredential. */
export async function getCredential(db: SqlExecutor, id: string): Promise<CredentialRecord | undefined> {
  const row = await db.get("SELECT * FROM credentials WHERE id = ?", [id]);
  return row && toCredential(row);
}

/** Store.findCredentialByName. */
export async function findCredentialByName(db: SqlExecutor, kind: CredentialKind, name: string): Promise<CredentialRecord | undefined> {
  const row = await db.get("SELECT * FROM credentials WHERE kind = ? AND name = ?", [kind, name]);
  return row && toCredential(row);
}

/** Store.findCredentialByHash. */
export async function findCredentialByHash(db: SqlExecutor, kind: CredentialKind, hash: string): Promise<CredentialRecord | undefined> {
  // Several credentials may share a hash (re-registered certificate); prefer the newest.
  const row = await db.get("SELECT * FROM credentials WHERE kind = ? AND hash = ? ORDER BY created_at DESC, id LIMIT 1", [kind, hash]);
  return row && toCredential(row);
}

/** Store.listCredentials. */
export async function listCredentials(db: SqlExecutor, kind?: CredentialKind): Promise<CredentialRecord[]> {
  const rows =
    kind === undefined
      ? await db.all("SELECT * FROM credentials ORDER BY kind, name")
      : await db.all("SELECT * FROM credentials WHERE kind = ? ORDER BY name", [kind]);
  return rows.map(toCredential);
}

/** Store.consumeCredential. */
export async function consumeCredential(db: SqlExecutor, id: string, at: Date): Promise<CredentialRecord | undefined> {
  const row = await db.get(
    `UPDATE credentials SET use_count = use_count + 1
     WHERE id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) AND (max_uses IS NULL OR use_count < max_uses)
     RETURNING *`,
    [id, iso(at)],
  );
  return row && toCredential(row);
}

/** Store.revokeCredential. */
export async function revokeCredential(db: SqlExecutor, id: string, at: Date): Promise<boolean> {
  const { changes } = await db.run("UPDATE credentials SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [iso(at), id]);
  return changes === 1;
}

/** Store.deleteCredential. */
export async function deleteCredential(db: SqlExecutor, id: string): Promise<boolean> {
  const { changes } = await db.run("DELETE FROM credentials WHERE id = ?", [id]);
  return changes === 1;
}
