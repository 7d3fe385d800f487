/**
 * The one Store implementation, written against SqlExecutor and shared by
 * SQLite and PostgreSQL. Races are settled inside the database: each
 * compare-and-set is a single UPDATE … WHERE <expected state> … RETURNING,
 * which PostgreSQL re-checks after waiting for a row lock and SQLite runs
 * under its single writer.
 */
import { TesseraError } from "../errors.js";
import type {
  AuditEvent,
  AuditRecord,
  CertificateQuery,
  CertificateRecord,
  CredentialKind,
  CredentialRecord,
  DeviceRecord,
  DeviceStatus,
  EnrollmentRequestRecord,
  IssuedKeyRecord,
  IssuedWrite,
  OutboxChannel,
  OutboxMessage,
  OutboxRecord,
  OutboxState,
  RequestStatus,
  RevokedEntry,
  Store,
} from "../authority/ports.js";
import { applyIssued } from "./issued-write.js";
import * as outbox from "./outbox-sql.js";
import * as credentials from "./credentials-sql.js";
import * as mainflux from "./mainflux-sql.js";
import * as admin from "./admin-sql.js";
import * as health from "./admin-health-sql.js";
import * as state from "./admin-state-sql.js";
import { readSchemaVersion, runMigrations } from "./migrations.js";
import {
  auditInsert,
  iso,
  isoOrNull,
  json,
  paging,
  toAudit,
  toCertificate,
  toDevice,
  toRequest,
} from "./rows.js";
import { Conditions, placeholders, type SqlExecutor, type SqlValue } from "./sql.js";

function certificateWhere(q: Omit<CertificateQuery, "limit" | "offset">, params: SqlValue[]): string {
  return String(
    new Conditions(params)
      .add("device_id = ?", q.deviceId)
      .add("status = ?", q.status)
      .add("not_after < ?", q.expiresBefore && iso(q.expiresBefore))
      .add("not_after >= ?", q.expiresAfter && iso(q.expiresAfter)),
  );
}

/** Store over any SqlExecutor; `kind` follows the executor's dialect. */
export class SqlStore implements Store {
  readonly kind: "sqlite" | "postgres";

  /** Wraps an executor; the caller runs migrate() before use. */
  constructor(private readonly db: SqlExecutor) {
    this.kind = db.dialect;
  }

  migrate(): Promise<number> {
    return runMigrations(this.db);
  }
  schemaVersion(): Promise<number> {
    return readSchemaVersion(this.db);
  }
  async ping(): Promise<void> {
    await this.db.get("SELECT 1 AS ok");
  }
  close(): Promise<void> {
    return this.db.close();
  }

  async commitIssued(writes: readonly IssuedWrite[]): Promise<void> {
    if (writes.length === 0) return;
    await this.db.transaction(async (tx) => {
      for (const w of writes) await applyIssued(tx, w);
    });
  }

  async getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    const row = await this.db.get("SELECT * FROM certificates WHERE serial = ?", [serial]);
    return row && toCertificate(row);
  }

  async listCertificates(query: CertificateQuery = {}): Promise<CertificateRecord[]> {
    const params: SqlValue[] = [];
    const where = certificateWhere(query, params);
    const rows = await this.db.all(`SELECT * FROM certificates${where} ORDER BY issued_at, serial${paging(query, params)}`, params);
    return rows.map(toCertificate);
  }

  async countCertificates(query: Omit<CertificateQuery, "limit" | "offset"> = {}): Promise<number> {
    const params: SqlValue[] = [];
    const row = await this.db.get(`SELECT COUNT(*) AS n FROM certificates${certificateWhere(query, params)}`, params);
    return Number(row?.n ?? 0);
  }

  revokeCertificate(serial: string, reason: string, at: Date, audit: AuditEvent): Promise<CertificateRecord | undefined> {
    return this.db.transaction(async (tx) => {
      const row = await tx.get(
        "UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ? WHERE serial = ? AND status <> 'revoked' RETURNING *",
        [iso(at), reason, serial],
      );
      if (!row) {
        const exists = await tx.get("SELECT serial FROM certificates WHERE serial = ?", [serial]);
        if (exists) throw new TesseraError("TESSERA_ERR_CERT_ALREADY_REVOKED", { detail: `serial ${serial}` });
        return undefined;
      }
      await tx.run(...auditInsert(audit));
      return toCertificate(row);
    });
  }

  async listRevokedPage(notAfterSince: Date, afterSerial: string | undefined, limit: number): Promise<RevokedEntry[]> {
    // SQLite's planner, without statistics, prefers certificates_status_not_after
    // and then sorts every revoked row for each page; the partial covering index
    // (migration 6) is what makes a page one index range, so it is named.
    // PostgreSQL picks it by itself (an index-only scan once vacuumed).
    const from = this.db.dialect === "sqlite" ? "certificates INDEXED BY certificates_crl" : "certificates";
    const rows = await this.db.all(
      `SELECT serial, COALESCE(revoked_at, issued_at) AS revoked_at, revocation_reason FROM ${from}
       WHERE status = 'revoked' AND not_after >= ? AND serial > ? ORDER BY serial LIMIT ?`,
      [iso(notAfterSince), afterSerial ?? "", limit],
    );
    return rows.map((r) => ({
      serial: String(r.serial),
      revokedAt: new Date(String(r.revoked_at)),
      reason: r.revocation_reason == null ? null : String(r.revocation_reason),
    }));
  }

  async listRevokedSince(since: Date, limit = 1000): Promise<RevokedEntry[]> {
    const rows = await this.db.all(
      "SELECT serial, revoked_at, revocation_reason FROM certificates WHERE status = 'revoked' AND revoked_at >= ? ORDER BY revoked_at, serial LIMIT ?",
      [iso(since), limit],
    );
    return rows.map((r) => ({
      serial: String(r.serial),
      revokedAt: new Date(String(r.revoked_at)),
      reason: r.revocation_reason == null ? null : String(r.revocation_reason),
    }));
  }

  async getDevice(id: string): Promise<DeviceRecord | undefined> {
    const row = await this.db.get("SELECT * FROM devices WHERE id = ?", [id]);
    return row && toDevice(row);
  }

  async findDeviceByFingerprint(fingerprint: string): Promise<DeviceRecord | undefined> {
    const row = await this.db.get("SELECT * FROM devices WHERE fingerprint = ?", [fingerprint]);
    return row && toDevice(row);
  }

  async createDeviceIfAbsent(
    device: Omit<DeviceRecord, "createdAt" | "updatedAt" | "lastSeenAt" | "lastIp" | "currentSerial">,
    at: Date,
  ): Promise<{ device: DeviceRecord; created: boolean }> {
    const when = iso(at);
    // No conflict target: a clash on the id or on the fingerprint both mean "already there".
    const { changes } = await this.db.run(
      `INSERT INTO devices (id, fingerprint, status, protocol, attributes, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      [device.id, device.fingerprint, device.status, device.protocol, json(device.attributes), when, when],
    );
    const stored = (await this.getDevice(device.id)) ?? (device.fingerprint !== null ? await this.findDeviceByFingerprint(device.fingerprint) : undefined);
    if (!stored) throw new TesseraError("TESSERA_ERR_STORE_CONFLICT", { detail: `device ${device.id} vanished while being created` });
    return { device: stored, created: changes === 1 };
  }

  async setDeviceStatus(id: string, from: readonly DeviceStatus[], to: DeviceStatus, at: Date): Promise<boolean> {
    if (from.length === 0) return false;
    const { changes } = await this.db.run(`UPDATE devices SET status = ?, updated_at = ? WHERE id = ? AND status IN (${placeholders(from.length)})`, [
      to,
      iso(at),
      id,
      ...from,
    ]);
    return changes === 1;
  }

  async touchDevice(id: string, ip: string | null, at: Date): Promise<void> {
    await this.db.run("UPDATE devices SET last_seen_at = ?, last_ip = ? WHERE id = ?", [iso(at), ip, id]);
  }

  async listDevices(query: { status?: DeviceStatus; limit?: number; offset?: number } = {}): Promise<DeviceRecord[]> {
    const params: SqlValue[] = [];
    let sql = "SELECT * FROM devices";
    if (query.status !== undefined) {
      sql += " WHERE status = ?";
      params.push(query.status);
    }
    const rows = await this.db.all(`${sql} ORDER BY created_at, id${paging(query, params)}`, params);
    return rows.map(toDevice);
  }

  async createRequest(r: EnrollmentRequestRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO enrollment_requests (id, protocol, device_id, csr_sha256, csr, subject, profile, status, created_at,
         decided_at, decided_by, reason, certificate_serial, attributes)
       VALUES (${placeholders(14)})`,
      [
        r.id,
        r.protocol,
        r.deviceId,
        r.csrSha256,
        r.csr,
        r.subject,
        r.profile,
        r.status,
        iso(r.createdAt),
        isoOrNull(r.decidedAt),
        r.decidedBy,
        r.reason,
        r.certificateSerial,
        json(r.attributes),
      ],
    );
  }

  async getRequest(id: string): Promise<EnrollmentRequestRecord | undefined> {
    const row = await this.db.get("SELECT * FROM enrollment_requests WHERE id = ?", [id]);
    return row && toRequest(row);
  }

  async getRequestByCsrHash(sha256: string): Promise<EnrollmentRequestRecord | undefined> {
    const row = await this.db.get("SELECT * FROM enrollment_requests WHERE csr_sha256 = ?", [sha256]);
    return row && toRequest(row);
  }

  async listRequests(query: { status?: RequestStatus; protocol?: string; deviceId?: string; limit?: number; offset?: number } = {}): Promise<EnrollmentRequestRecord[]> {
    const params: SqlValue[] = [];
    const where: string[] = [];
    if (query.deviceId !== undefined) {
      where.push("device_id = ?");
      params.push(query.deviceId);
    }
    if (query.status !== undefined) {
      where.push("status = ?");
      params.push(query.status);
    }
    if (query.protocol !== undefined) {
      where.push("protocol = ?");
      params.push(query.protocol);
    }
    const filter = where.length ? ` WHERE ${where.join(" AND ")}` : "";
    const rows = await this.db.all(`SELECT * FROM enrollment_requests${filter} ORDER BY created_at, id${paging(query, params)}`, params);
    return rows.map(toRequest);
  }

  decideRequest(
    id: string,
    decision: "approved" | "rejected",
    by: string,
    at: Date,
    reason: string | null,
    audit: AuditEvent,
  ): Promise<EnrollmentRequestRecord | undefined> {
    return this.db.transaction(async (tx) => {
      const row = await tx.get(
        "UPDATE enrollment_requests SET status = ?, decided_at = ?, decided_by = ?, reason = ? WHERE id = ? AND status = 'pending' RETURNING *",
        [decision, iso(at), by, reason, id],
      );
      if (!row) return undefined;
      await tx.run(...auditInsert(audit));
      return toRequest(row);
    });
  }

  createCredential(c: CredentialRecord): Promise<void> {
    return credentials.createCredential(this.db, c);
  }
  getCredential(id: string): Promise<CredentialRecord | undefined> {
    return credentials.getCredential(this.db, id);
  }
  findCredentialByName(kind: CredentialKind, name: string): Promise<CredentialRecord | undefined> {
    return credentials.findCredentialByName(this.db, kind, name);
  }
  findCredentialByHash(kind: CredentialKind, hash: string): Promise<CredentialRecord | undefined> {
    return credentials.findCredentialByHash(this.db, kind, hash);
  }
  listCredentials(kind?: CredentialKind): Promise<CredentialRecord[]> {
    return credentials.listCredentials(this.db, kind);
  }
  consumeCredential(id: string, at: Date): Promise<CredentialRecord | undefined> {
    return credentials.consumeCredential(this.db, id, at);
  }
  revokeCredential(id: string, at: Date): Promise<boolean> {
    return credentials.revokeCredential(this.db, id, at);
  }
  deleteCredential(id: string): Promise<boolean> {
    return credentials.deleteCredential(this.db, id);
  }

  async appendAudit(event: AuditEvent): Promise<void> {
    await this.db.run(...auditInsert(event));
  }

  async listAudit(query: { action?: string; target?: string; since?: Date; limit?: number } = {}): Promise<AuditRecord[]> {
    const params: SqlValue[] = [];
    const filter = new Conditions(params).add("action = ?", query.action).add("target = ?", query.target).add("at >= ?", query.since && iso(query.since));
    const rows = await this.db.all(`SELECT * FROM audit_events${filter} ORDER BY id${paging({ limit: query.limit }, params)}`, params);
    return rows.map(toAudit);
  }

  async nextCrlNumber(): Promise<bigint> {
    // One upsert statement: atomic on both databases, no read-modify-write window.
    const row = await this.db.get(
      `INSERT INTO settings (key, value) VALUES ('crl_number', '1')
       ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(settings.value AS BIGINT) + 1 AS TEXT)
       RETURNING value`,
    );
    if (!row) throw new TesseraError("TESSERA_ERR_INTERNAL", { detail: "crl_number upsert returned no row" });
    return BigInt(String(row.value));
  }

  enqueueOutbox(messages: readonly OutboxMessage[], at: Date): Promise<OutboxRecord[]> {
    return outbox.enqueue(this.db, messages, at);
  }

  claimOutbox(now: Date, leaseUntil: Date, limit: number, channel: OutboxChannel): Promise<OutboxRecord[]> {
    return outbox.claim(this.db, this.kind, now, leaseUntil, limit, channel);
  }

  completeOutbox(id: string, at: Date): Promise<boolean> {
    return outbox.complete(this.db, id, at);
  }

  failOutbox(id: string, error: string, nextAttemptAt: Date | null): Promise<boolean> {
    return outbox.fail(this.db, id, error, nextAttemptAt);
  }

  listOutbox(query: { state?: OutboxState; channel?: OutboxChannel; limit?: number } = {}): Promise<OutboxRecord[]> {
    return outbox.list(this.db, query);
  }

  getIssuedKey(serial: string): Promise<IssuedKeyRecord | undefined> {
    return mainflux.getIssuedKey(this.db, serial);
  }

  listIssuedKeys(thingId: string): Promise<IssuedKeyRecord[]> {
    return mainflux.listIssuedKeys(this.db, thingId);
  }

  markIssuedKeyDownloaded(serial: string, thingId: string, at: Date): Promise<boolean> {
    return mainflux.markIssuedKeyDownloaded(this.db, serial, thingId, at);
  }

  eraseIssuedKeys(serials: readonly string[]): Promise<number> {
    return mainflux.eraseIssuedKeys(this.db, serials);
  }

  putThingKey(thingId: string, ciphertext: Buffer, at: Date): Promise<void> {
    return mainflux.putThingKey(this.db, thingId, ciphertext, at);
  }

  getThingKey(thingId: string): Promise<Buffer | undefined> {
    return mainflux.getThingKey(this.db, thingId);
  }

  deleteThingKey(thingId: string): Promise<boolean> {
    return mainflux.deleteThingKey(this.db, thingId);
  }

  // AdminQueries (the admin console). Arrow properties read this.db when called, after construction.
  readonly searchDevices: Store["searchDevices"] = (q) => admin.searchDevices(this.db, q);
  readonly searchCertificates: Store["searchCertificates"] = (q) => admin.searchCertificates(this.db, q);
  readonly searchRequests: Store["searchRequests"] = (q) => admin.searchRequests(this.db, q);
  readonly searchAudit: Store["searchAudit"] = (q) => admin.searchAudit(this.db, q);
  readonly expiryPerDay: Store["expiryPerDay"] = (from, days) => health.expiryPerDay(this.db, from, days);
  readonly activityPerDay: Store["activityPerDay"] = (since) => health.activityPerDay(this.db, since);
  readonly recordFailure: Store["recordFailure"] = (protocol, code, at, count) => health.recordFailure(this.db, protocol, code, at, count);
  readonly listFailures: Store["listFailures"] = (since) => health.listFailures(this.db, since);
  readonly devicesIssuedBy: Store["devicesIssuedBy"] = (actor) => health.devicesIssuedBy(this.db, actor);
  readonly createAdminSession: Store["createAdminSession"] = (session) => state.createAdminSession(this.db, session);
  readonly getAdminSession: Store["getAdminSession"] = (idHash, at) => state.getAdminSession(this.db, idHash, at);
  readonly deleteAdminSession: Store["deleteAdminSession"] = (idHash) => state.deleteAdminSession(this.db, idHash);
  readonly pruneAdminSessions: Store["pruneAdminSessions"] = (at) => state.pruneAdminSessions(this.db, at);
  readonly createJob: Store["createJob"] = (job) => state.createJob(this.db, job);
  readonly getJob: Store["getJob"] = (id) => state.getJob(this.db, id);
  readonly listJobs: Store["listJobs"] = (limit) => state.listJobs(this.db, limit);
  readonly updateJobProgress: Store["updateJobProgress"] = (id, done, total, at) => state.updateJobProgress(this.db, id, done, total, at);
  readonly finishJob: Store["finishJob"] = (id, status, at, result, error) => state.finishJob(this.db, id, status, at, result, error);
}
