/**
 * The store ports behind the admin API and the web console (issue 10,
 * docs/admin-api.md): searches that page and sort on the server,
 * fleet-health aggregates, console sessions and jobs. store/admin-sql.ts
 * (searches), admin-health-sql.ts (aggregates) and admin-state-sql.ts
 * (sessions, jobs) hold their SQL (migration 5). `Store` extends
 * `AdminQueries`; ports.ts re-exports everything here.
 */
import type { AuditRecord, CertificateRecord, CertificateStatus, DeviceRecord, DeviceStatus, EnrollmentRequestRecord, RequestStatus } from "./ports.js";

/** Columns the device table sorts on. */
export type DeviceSort = "id" | "status" | "protocol" | "createdAt" | "lastSeenAt" | "notAfter";

/** A device search for the console; every field optional. */
export interface DeviceSearch {
  /**
   * Free text: matches a device id or fingerprint exactly, a serial (hex) of
   * any of its certificates exactly, a certificate or key SHA-256 exactly, or a
   * substring of its current certificate's subject (case-insensitive).
   * Exact matches take precedence: only when `q` (trimmed) names nothing
   * exactly, whatever the other filters, is it a subject substring (`%` and
   * `_` literal; case folding is ASCII only, as in both databases). Serials
   * and SHA-256s may be typed with colons, upper case, and (serials) "0x" or
   * leading zeros.
   */
  q?: string;
  status?: DeviceStatus;
  protocol?: string;
  /** Only devices whose current certificate's notAfter is before this. */
  expiresBefore?: Date;
  /**
   * Default "createdAt"; ties broken by id, in the same order. "status"
   * continues by createdAt. Devices without the value (never seen, no
   * certificate) come last in both orders.
   */
  sort?: DeviceSort;
  /** Default "asc". */
  order?: "asc" | "desc";
  limit?: number;
  offset?: number;
}

/** A device row with its current certificate's summary (null when it has none). */
export interface DeviceSummary extends DeviceRecord {
  subject: string | null;
  notAfter: Date | null;
  certificateStatus: CertificateStatus | null;
}

/** Columns the certificate table sorts on. */
export type CertificateSort = "issuedAt" | "notAfter" | "serial" | "subject" | "status";

/** A certificate search for the console. */
export interface CertificateSearch {
  /**
   * Exact serial, certificate SHA-256, key SHA-256 or device id; else (when
   * none matches, whatever the other filters) a case-insensitive subject
   * substring, as DeviceSearch.q.
   */
  q?: string;
  status?: CertificateStatus;
  deviceId?: string;
  protocol?: string;
  expiresAfter?: Date;
  expiresBefore?: Date;
  /** Default "issuedAt"; ties broken by serial, in the same order. "status" continues by notAfter. */
  sort?: CertificateSort;
  /** Default "asc". */
  order?: "asc" | "desc";
  limit?: number;
  offset?: number;
}

/** A certificate without its DER (list views). */
export type CertificateSummary = Omit<CertificateRecord, "der">;

/** A page of results and the total count matching the filter. */
export interface Page<T> {
  items: T[];
  total: number;
}

/** Filters for audit search; results newest first (id descending). */
export interface AuditSearch {
  action?: string;
  /** Exact actor, or a prefix when it ends with "*" (e.g. "token:*"). */
  actor?: string;
  target?: string;
  /** Only events at or after this. */
  since?: Date;
  /** Only events before this (exclusive). */
  until?: Date;
  /** Only events with id < beforeId (keyset paging for exports). */
  beforeId?: number;
  /** Every match when omitted. */
  limit?: number;
}

/** One UTC day's count ("YYYY-MM-DD"). */
export interface DayCount {
  day: string;
  count: number;
}

/** Issuance activity per UTC day. */
export interface ActivityDay {
  day: string;
  /** Certificates issued to a device with no earlier certificate (or to no device). */
  issued: number;
  /** Certificates issued to a device that already had one. */
  renewed: number;
  revoked: number;
}

/** Failed enrollments counted per UTC day, protocol and error code. */
export interface FailureCount {
  day: string;
  protocol: string;
  /** A TESSERA_ERR_* code, or "http_<status>" when the failure had no typed error. */
  code: string;
  count: number;
}

/** A signed-in console session (the cookie carries the id; only its SHA-256 is stored). */
export interface AdminSessionRecord {
  /** SHA-256 hex of the session id. */
  idHash: string;
  /** Credential id of the bearer token it was opened with (revoking the token ends it). */
  tokenId: string;
  tokenName: string;
  role: string;
  /** Anti-CSRF token the page echoes in X-CSRF-Token on state-changing requests. */
  csrfToken: string;
  createdAt: Date;
  expiresAt: Date;
}

/** Job lifecycle. */
export type JobStatus = "running" | "succeeded" | "failed";

/** A long operation (bulk revoke, CRL rebuild) with progress the console shows. */
export interface JobRecord {
  /** Random UUID. */
  id: string;
  /** e.g. "revoke-bootstrap-batch", "crl-rebuild". */
  kind: string;
  params: Record<string, unknown>;
  status: JobStatus;
  /** Units done and in all (0/0 until known). */
  done: number;
  total: number;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  result: Record<string, unknown> | null;
  error: string | null;
}

/** Store methods behind the admin API (migration 5). */
export interface AdminQueries {
  /** Devices matching `query`, one page, sorted on the server, with the total count. */
  searchDevices(query: DeviceSearch): Promise<Page<DeviceSummary>>;
  /** Certificates matching `query`, one page, without DER, with the total count. */
  searchCertificates(query: CertificateSearch): Promise<Page<CertificateSummary>>;
  /** Enrollment requests, one page, oldest first, with the total count. */
  searchRequests(query: { status?: RequestStatus; protocol?: string; limit?: number; offset?: number }): Promise<Page<EnrollmentRequestRecord>>;
  /** Audit events newest first (id descending). */
  searchAudit(query: AuditSearch): Promise<AuditRecord[]>;
  /**
   * Valid (not revoked or superseded) certificates whose notAfter falls on
   * each UTC day of [from's day, from's day + days); days with none are
   * omitted, the rest oldest first.
   */
  expiryPerDay(from: Date, days: number): Promise<DayCount[]>;
  /** Issued / renewed / revoked per UTC day from `since`'s day on, oldest first (days with nothing omitted). */
  activityPerDay(since: Date): Promise<ActivityDay[]>;
  /** Adds `count` (default 1) failed enrollments to the (UTC day of `at`, protocol, code) counter (an upsert). */
  recordFailure(protocol: string, code: string, at: Date, count?: number): Promise<void>;
  /** Failure counters from `since`'s day on, ordered by day, protocol, code. */
  listFailures(since: Date): Promise<FailureCount[]>;
  /** Device ids whose certificates were issued under `actor` (audit "certificate.issued"), e.g. "bootstrap:line-7"; sorted, each once. */
  devicesIssuedBy(actor: string): Promise<string[]>;

  createAdminSession(session: AdminSessionRecord): Promise<void>;
  /** The session if it exists and has not expired at `at`. */
  getAdminSession(idHash: string, at: Date): Promise<AdminSessionRecord | undefined>;
  deleteAdminSession(idHash: string): Promise<boolean>;
  /** Deletes sessions expired at `at`; returns how many. */
  pruneAdminSessions(at: Date): Promise<number>;

  createJob(job: JobRecord): Promise<void>;
  getJob(id: string): Promise<JobRecord | undefined>;
  /** Newest first (createdAt, then id); all when `limit` is omitted. */
  listJobs(limit?: number): Promise<JobRecord[]>;
  /** Sets progress of a running job (a finished one is left as it is). */
  updateJobProgress(id: string, done: number, total: number, at: Date): Promise<void>;
  /** running → succeeded|failed with its result or error (compare-and-set); false if it was not running. */
  finishJob(id: string, status: "succeeded" | "failed", at: Date, result: Record<string, unknown> | null, error: string | null): Promise<boolean>;
}
