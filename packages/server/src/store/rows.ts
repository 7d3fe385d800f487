/**
 * Conversions between port records and SQL rows: Dates as fixed-width ISO-8601
 * UTC text, JSON as text, DER as bytes. Shared by both dialects, which return
 * the same shapes (TEXT → string, INTEGER → number, BLOB/BYTEA → Buffer).
 */
import { randomUUID } from "node:crypto";
import { TesseraError } from "../errors.js";
import type {
  AuditEvent,
  AuditRecord,
  CertificateRecord,
  CertificateStatus,
  CertificateSummary,
  CredentialKind,
  CredentialRecord,
  DeviceRecord,
  DeviceStatus,
  EnrollmentRequestRecord,
  OutboxChannel,
  OutboxMessage,
  OutboxRecord,
  OutboxState,
  RequestStatus,
} from "../authority/ports.js";
import type { Row, SqlValue } from "./sql.js";

/**
 * Encodes a Date for storage. Only years 0000–9999 keep toISOString() at a
 * fixed width, which the text comparisons in SQL rely on.
 */
export function iso(d: Date): string {
  const t = d.getTime();
  if (!Number.isFinite(t)) throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail: "invalid date" });
  const year = d.getUTCFullYear();
  if (year < 0 || year > 9999) throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail: `date out of storable range: year ${year}` });
  return d.toISOString();
}

/** Encodes a nullable Date. */
export function isoOrNull(d: Date | null | undefined): string | null {
  return d == null ? null : iso(d);
}

/** JSON text; bigints become decimal strings instead of making stringify throw. */
export function json(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

function column(row: Row, name: string): unknown {
  if (!(name in row)) throw new Error(`store: column ${name} missing from result`);
  return row[name];
}
function str(row: Row, name: string): string {
  return String(column(row, name));
}
function strOrNull(row: Row, name: string): string | null {
  const v = column(row, name);
  return v == null ? null : String(v);
}
function date(row: Row, name: string): Date {
  return new Date(str(row, name));
}
function dateOrNull(row: Row, name: string): Date | null {
  const v = strOrNull(row, name);
  return v === null ? null : new Date(v);
}
function num(row: Row, name: string): number {
  return Number(column(row, name));
}
function numOrNull(row: Row, name: string): number | null {
  const v = column(row, name);
  return v == null ? null : Number(v);
}
function bytes(row: Row, name: string): Buffer {
  const v = column(row, name);
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v);
  throw new Error(`store: column ${name} is not binary`);
}
function parsed<T>(row: Row, name: string): T {
  return JSON.parse(str(row, name)) as T;
}

/** Column list and values for inserting a certificate (same order). */
export const CERTIFICATE_COLUMNS =
  "serial, device_id, profile, subject, sans, key_fingerprint, key_type, not_before, not_after, status, revoked_at, revocation_reason, issued_at, protocol, request_id, fingerprint, der";

/** Values for CERTIFICATE_COLUMNS. */
export function certificateValues(c: CertificateRecord): SqlValue[] {
  return [
    c.serial,
    c.deviceId,
    c.profile,
    c.subject,
    json(c.sans),
    c.keyFingerprint,
    c.keyType,
    iso(c.notBefore),
    iso(c.notAfter),
    c.status,
    isoOrNull(c.revokedAt),
    c.revocationReason,
    iso(c.issuedAt),
    c.protocol,
    c.requestId,
    c.fingerprint,
    c.der,
  ];
}

/** Certificate columns without the DER (list views never need the bytes). */
export const CERTIFICATE_SUMMARY_COLUMNS = CERTIFICATE_COLUMNS.replace(/, der$/, "");

/** Reads a certificates row selected without its DER. */
export function toCertificateSummary(row: Row): CertificateSummary {
  return {
    serial: str(row, "serial"),
    deviceId: strOrNull(row, "device_id"),
    profile: str(row, "profile"),
    subject: str(row, "subject"),
    sans: parsed<string[]>(row, "sans"),
    keyFingerprint: str(row, "key_fingerprint"),
    keyType: str(row, "key_type"),
    notBefore: date(row, "not_before"),
    notAfter: date(row, "not_after"),
    status: str(row, "status") as CertificateStatus,
    revokedAt: dateOrNull(row, "revoked_at"),
    revocationReason: strOrNull(row, "revocation_reason"),
    issuedAt: date(row, "issued_at"),
    protocol: str(row, "protocol"),
    requestId: strOrNull(row, "request_id"),
    fingerprint: str(row, "fingerprint"),
  };
}

/** Reads a certificates row. */
export function toCertificate(row: Row): CertificateRecord {
  return { ...toCertificateSummary(row), der: bytes(row, "der") };
}

/** Reads a devices row. */
export function toDevice(row: Row): DeviceRecord {
  return {
    id: str(row, "id"),
    fingerprint: strOrNull(row, "fingerprint"),
    status: str(row, "status") as DeviceStatus,
    protocol: str(row, "protocol"),
    attributes: parsed<Record<string, string>>(row, "attributes"),
    createdAt: date(row, "created_at"),
    updatedAt: date(row, "updated_at"),
    lastSeenAt: dateOrNull(row, "last_seen_at"),
    lastIp: strOrNull(row, "last_ip"),
    currentSerial: strOrNull(row, "current_serial"),
  };
}

/** Reads an enrollment_requests row. */
export function toRequest(row: Row): EnrollmentRequestRecord {
  return {
    id: str(row, "id"),
    protocol: str(row, "protocol"),
    deviceId: strOrNull(row, "device_id"),
    csrSha256: str(row, "csr_sha256"),
    csr: bytes(row, "csr"),
    subject: str(row, "subject"),
    profile: str(row, "profile"),
    status: str(row, "status") as RequestStatus,
    createdAt: date(row, "created_at"),
    decidedAt: dateOrNull(row, "decided_at"),
    decidedBy: strOrNull(row, "decided_by"),
    reason: strOrNull(row, "reason"),
    certificateSerial: strOrNull(row, "certificate_serial"),
    attributes: parsed<Record<string, string>>(row, "attributes"),
  };
}

/** Reads a credentials row. */
export function toCredential(row: Row): CredentialRecord {
  return {
    id: str(row, "id"),
    kind: str(row, "kind") as CredentialKind,
    name: str(row, "name"),
    scope: str(row, "scope"),
    hash: str(row, "hash"),
    expiresAt: dateOrNull(row, "expires_at"),
    maxUses: numOrNull(row, "max_uses"),
    useCount: num(row, "use_count"),
    revokedAt: dateOrNull(row, "revoked_at"),
    createdAt: date(row, "created_at"),
  };
}

/** Reads an audit_events row. */
export function toAudit(row: Row): AuditRecord {
  return {
    id: num(row, "id"),
    at: date(row, "at"),
    actor: str(row, "actor"),
    action: str(row, "action"),
    target: str(row, "target"),
    detail: parsed<Record<string, unknown>>(row, "detail"),
  };
}

/** Statement and values that append one audit event. */
export function auditInsert(e: AuditEvent): [string, SqlValue[]] {
  return ["INSERT INTO audit_events (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)", [iso(e.at), e.actor, e.action, e.target, json(e.detail)]];
}

/** Reads an outbox row. */
export function toOutbox(row: Row): OutboxRecord {
  return {
    id: str(row, "id"),
    topic: str(row, "topic"),
    payload: parsed<Record<string, unknown>>(row, "payload"),
    channel: str(row, "channel") as OutboxChannel,
    orderingKey: strOrNull(row, "ordering_key"),
    createdAt: date(row, "created_at"),
    state: str(row, "state") as OutboxState,
    attempts: num(row, "attempts"),
    nextAttemptAt: date(row, "next_attempt_at"),
    lockedUntil: dateOrNull(row, "locked_until"),
    deliveredAt: dateOrNull(row, "delivered_at"),
    lastError: strOrNull(row, "last_error"),
  };
}

/** Statement, values and new id that enqueue one outbox message, due at `at`. */
export function outboxInsert(m: OutboxMessage, at: Date): [string, SqlValue[], string] {
  const id = randomUUID();
  const when = iso(at);
  return [
    // seq (insertion order, migration 3) is filled by the database.
    "INSERT INTO outbox (id, topic, payload, channel, ordering_key, created_at, state, attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?)",
    [id, m.topic, json(m.payload), m.channel ?? "webhook", m.orderingKey ?? null, when, when],
    id,
  ];
}

/** Appends LIMIT/OFFSET; OFFSET alone still needs a LIMIT on SQLite, so a huge one stands in. */
export function paging(q: { limit?: number; offset?: number }, params: SqlValue[]): string {
  if (q.limit === undefined && q.offset === undefined) return "";
  params.push(nonNegative(q.limit ?? Number.MAX_SAFE_INTEGER, "limit"), nonNegative(q.offset ?? 0, "offset"));
  return " LIMIT ? OFFSET ?";
}

function nonNegative(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail: `${what} must be a non-negative integer` });
  return n;
}
