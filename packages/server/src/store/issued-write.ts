/**
 * The issuance write (Store.commitIssued for one certificate): the device
 * created or moved to its new certificate under the lineage compare-and-set,
 * the certificate row, superseded or revoked predecessors, the request it
 * answers, the audit event and the outbox messages reporting it, all inside
 * the caller's transaction, and the certificate's server-generated key
 * (encrypted) when there is one.
 */
import { TesseraError } from "../errors.js";
import type { IssuedWrite } from "../authority/ports.js";
import { auditInsert, CERTIFICATE_COLUMNS, certificateValues, iso, json, outboxInsert } from "./rows.js";
import { insertIssuedKey } from "./mainflux-sql.js";
import { placeholders, type SqlQueryable, type SqlValue } from "./sql.js";

const CERT_INSERT = `INSERT INTO certificates (${CERTIFICATE_COLUMNS}) VALUES (${placeholders(17)})`;

/** Creates or updates the write's device, merging the given attributes into the stored ones. */
async function upsertIssuedDevice(tx: SqlQueryable, w: IssuedWrite, at: string): Promise<void> {
  const d = w.device;
  if (!d) return;
  const sets = d.setStatus ? "current_serial = ?, updated_at = ?, status = ?" : "current_serial = ?, updated_at = ?";
  const setParams: SqlValue[] = d.setStatus ? [w.certificate.serial, at, d.status] : [w.certificate.serial, at];
  // The lineage compare-and-set rides on the same UPDATE, so it holds the row lock it checks.
  const cas = d.expectCurrentSerial === undefined ? "" : d.expectCurrentSerial === null ? " AND current_serial IS NULL" : " AND current_serial = ?";
  const casParams: SqlValue[] = typeof d.expectCurrentSerial === "string" ? [d.expectCurrentSerial] : [];
  const touch = `UPDATE devices SET ${sets} WHERE id = ?${cas} RETURNING attributes`;
  const touchParams = [...setParams, d.id, ...casParams];
  const lineageConflict = () => new TesseraError("TESSERA_ERR_LINEAGE_CONFLICT", { detail: `device ${d.id}: expected current serial ${d.expectCurrentSerial}` });
  // Updating first takes the row lock on PostgreSQL, so the attribute merge below cannot lose a concurrent one.
  let existing = await tx.get(touch, touchParams);
  if (!existing) {
    if (typeof d.expectCurrentSerial === "string") throw lineageConflict();
    const inserted = await tx.run(
      `INSERT INTO devices (id, fingerprint, status, protocol, attributes, created_at, updated_at, current_serial)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      [d.id, d.fingerprint, d.status, d.protocol, json(d.attributes), at, at, w.certificate.serial],
    );
    if (inserted.changes === 1) return;
    // Another transaction created it between our UPDATE and INSERT.
    existing = await tx.get(touch, touchParams);
    if (!existing) {
      if (d.expectCurrentSerial !== undefined) throw lineageConflict();
      throw new TesseraError("TESSERA_ERR_STORE_CONFLICT", { detail: `device ${d.id} could not be created or updated` });
    }
  }
  if (Object.keys(d.attributes).length === 0) return;
  const merged = { ...(JSON.parse(String(existing.attributes)) as Record<string, string>), ...d.attributes };
  await tx.run("UPDATE devices SET attributes = ? WHERE id = ?", [json(merged), d.id]);
}

/** Applies one issuance inside transaction `tx`. */
export async function applyIssued(tx: SqlQueryable, w: IssuedWrite): Promise<void> {
  const cert = w.certificate;
  const at = iso(cert.issuedAt);
  await upsertIssuedDevice(tx, w, at);
  await tx.run(CERT_INSERT, certificateValues(cert));
  if (w.sealedKey) await insertIssuedKey(tx, cert.serial, w.sealedKey.ownerId, w.sealedKey.ciphertext, cert.issuedAt);
  const supersedes = (w.supersedes ?? []).filter((s) => s !== cert.serial);
  if (supersedes.length > 0) {
    if (w.revokeSuperseded) {
      await tx.run(
        `UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = 'superseded'
         WHERE status IN ('valid', 'superseded') AND serial IN (${placeholders(supersedes.length)})`,
        [at, ...supersedes],
      );
    } else {
      await tx.run(`UPDATE certificates SET status = 'superseded' WHERE status = 'valid' AND serial IN (${placeholders(supersedes.length)})`, supersedes);
    }
  }
  if (w.requestId !== undefined) {
    // Auto-approved flows issue straight from "pending"; record the approval with the issuance.
    await tx.run(
      `UPDATE enrollment_requests SET certificate_serial = ?,
         status = CASE WHEN status = 'pending' THEN 'approved' ELSE status END,
         decided_at = COALESCE(decided_at, ?)
       WHERE id = ?`,
      [cert.serial, at, w.requestId],
    );
  }
  await tx.run(...auditInsert(w.audit));
  // Same transaction: a rolled-back issuance never announces itself.
  for (const m of w.outbox ?? []) {
    const [sql, params] = outboxInsert(m, cert.issuedAt);
    await tx.run(sql, params);
  }
}

