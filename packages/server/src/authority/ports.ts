/**
 * The ports the authority core needs from storage. Store adapters
 * (store/sqlite.ts, store/postgres.ts) implement `Store`; protocols never see
 * it — they call the authority. Times are Date; serials are lowercase hex
 * (no leading zeros, as serialToHex); DER is Buffer.
 */
import type { AdminQueries } from "./admin-ports.js";

/** Lifecycle of a certificate. "expired" is not stored: it is derived from notAfter. */
export type CertificateStatus = "valid" | "revoked" | "superseded";

/** A stored certificate. */
export interface CertificateRecord {
  /** Lowercase hex serial, unique. */
  serial: string;
  /** Device this certificate was issued to, if any. */
  deviceId: string | null;
  /** Profile name it was issued under ("ca" for imported or CA certificates). */
  profile: string;
  /** Subject as an RFC 4514 string. */
  subject: string;
  /** Subject alternative names, OpenSSL style ("DNS:x", "IP Address:1.2.3.4", "URI:…"). */
  sans: string[];
  /** SHA-256 hex of the SubjectPublicKeyInfo DER. */
  keyFingerprint: string;
  /** e.g. "ec-p256", "rsa-2048", "ed25519". */
  keyType: string;
  notBefore: Date;
  notAfter: Date;
  status: CertificateStatus;
  revokedAt: Date | null;
  /** CRL reason name (see CRL_REASONS) when revoked. */
  revocationReason: string | null;
  issuedAt: Date;
  /** Front-end that requested it ("cli", "est", "imprint", …). */
  protocol: string;
  /** Enrollment request it answers, if any. */
  requestId: string | null;
  /** SHA-256 hex of the certificate DER. */
  fingerprint: string;
  der: Buffer;
}

/** Device lifecycle. */
export type DeviceStatus = "active" | "pending" | "revoked" | "disabled";

/** A device (one identity, many certificates over time). */
export interface DeviceRecord {
  id: string;
  /** Hardware fingerprint or other stable identifier the protocol uses, unique when set. */
  fingerprint: string | null;
  status: DeviceStatus;
  protocol: string;
  /** Free-form protocol attributes (hostname, os, arch…). */
  attributes: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
  lastSeenAt: Date | null;
  lastIp: string | null;
  /** Serial of the newest certificate issued to it. */
  currentSerial: string | null;
}

/** Enrollment request lifecycle. */
export type RequestStatus = "pending" | "approved" | "rejected";

/** An enrollment request (kept for manual approval flows and polling protocols). */
export interface EnrollmentRequestRecord {
  id: string;
  protocol: string;
  deviceId: string | null;
  /** Lowercase hex SHA-256 of the CSR as received (Caramel polls by it). */
  csrSha256: string;
  csr: Buffer;
  /** Subject as an RFC 4514 string. */
  subject: string;
  profile: string;
  status: RequestStatus;
  createdAt: Date;
  decidedAt: Date | null;
  decidedBy: string | null;
  reason: string | null;
  /** Serial issued for it, once approved and issued. */
  certificateSerial: string | null;
  attributes: Record<string, string>;
}

/**
 * Kinds of credential: bootstrap "secret" and "certificate", EST "password"
 * users, Mainflux API bearer "token"s (scope = role) and Mainflux "thing"
 * keys (name = thing id; "thing-external" for a thing's external key).
 */
export type CredentialKind = "secret" | "certificate" | "password" | "token" | "thing" | "thing-external";

/** A bootstrap credential: a hashed secret/password or a bootstrap certificate's fingerprint. */
export interface CredentialRecord {
  id: string;
  kind: CredentialKind;
  /** Operator-chosen name, unique per kind. */
  name: string;
  /** What it may be used for (protocol or label), "*" for any. */
  scope: string;
  /** Secret/token hash ("sha256:…"), password hash (scrypt, encoded), SHA-256 hex of a bootstrap certificate, or a thing key's "hmac-sha256:…". Never plain text. */
  hash: string;
  expiresAt: Date | null;
  maxUses: number | null;
  useCount: number;
  revokedAt: Date | null;
  createdAt: Date;
}

/** One audit event. */
export interface AuditEvent {
  at: Date;
  /** Who: "cli", "device:<id>", "token:<name>", "system". */
  actor: string;
  /** What, dotted: "certificate.issued", "certificate.revoked", "request.approved", … */
  action: string;
  /** The object: a serial, device id, request id or credential id. */
  target: string;
  detail: Record<string, unknown>;
}

/** A stored audit event. */
export interface AuditRecord extends AuditEvent {
  id: number;
}

/**
 * Which consumer of the shared outbox a message is for: "webhook" (the
 * webhook worker, docs/webhooks.md) or "bus" (the NATS/MQTT publisher,
 * docs/events.md). Each consumer claims only its own channel.
 */
export type OutboxChannel = "webhook" | "bus";

/** A message for the outbox (webhook deliveries, bus events), written in the same transaction as what it reports. */
export interface OutboxMessage {
  /** Event name, e.g. "device.created". */
  topic: string;
  /** JSON-serialisable body. */
  payload: Record<string, unknown>;
  /** Consumer (default "webhook"). */
  channel?: OutboxChannel;
  /**
   * Messages of one channel sharing an ordering key (e.g. a thing id) are
   * delivered one at a time in creation order: only the oldest pending one is
   * claimable, so a failing one holds back the later ones. None: no ordering.
   */
  orderingKey?: string;
}

/** Delivery state of an outbox message. */
export type OutboxState = "pending" | "delivered" | "dead";

/** A stored outbox message and its delivery bookkeeping. */
export interface OutboxRecord {
  /** Random UUID, stable across retries (receivers deduplicate on it). */
  id: string;
  topic: string;
  payload: Record<string, unknown>;
  channel: OutboxChannel;
  orderingKey: string | null;
  createdAt: Date;
  /** "pending" until delivered (or skipped), "dead" once given up; rows are never deleted by the store. */
  state: OutboxState;
  /** How many times it was claimed for delivery (counted at claim time, so a crash mid-send counts too). */
  attempts: number;
  /** Earliest time of the next attempt (pending), or of the last one scheduled. */
  nextAttemptAt: Date;
  /** End of the current claim's lease; another claim may take it once this has passed. */
  lockedUntil: Date | null;
  deliveredAt: Date | null;
  /** Why the last attempt failed, if it did. */
  lastError: string | null;
}

/** One issuance to persist: device (created or updated), certificate, audit event — all or nothing. */
export interface IssuedWrite {
  certificate: CertificateRecord;
  audit: AuditEvent;
  /** Create the device if absent (by id), else set its currentSerial, updatedAt and given attributes. */
  device?: {
    id: string;
    fingerprint: string | null;
    protocol: string;
    attributes: Record<string, string>;
    /** Status of a created device; also applied to an existing one when `setStatus` is true. */
    status: DeviceStatus;
    setStatus?: boolean;
    /**
     * Lineage compare-and-set: when defined, the write succeeds only if the
     * stored device's currentSerial is exactly this (null: no certificate yet,
     * or the device is absent); otherwise the whole write fails with
     * TESSERA_ERR_LINEAGE_CONFLICT and nothing of it is stored.
     */
    expectCurrentSerial?: string | null;
  };
  /** Mark these serials "superseded" (only those currently "valid"). */
  supersedes?: string[];
  /** Revoke the superseded serials instead (reason "superseded") — a policy choice. */
  revokeSuperseded?: boolean;
  /** Mark this request approved-and-issued: sets its certificateSerial. */
  requestId?: string;
  /** Outbox messages to enqueue in the same transaction ("device.created" only when the device row was created by this write). */
  outbox?: OutboxMessage[];
  /**
   * A server-generated private key for this certificate, already encrypted by
   * the caller: stored in issued_keys (thing id = `ownerId`) in the same
   * transaction, so the certificate never exists without its key.
   */
  sealedKey?: { ownerId: string; ciphertext: Buffer };
}

/** A server-generated private key waiting for (or past) its device's one download (Mainflux API). */
export interface IssuedKeyRecord {
  /** Serial of its certificate (lowercase hex). */
  serial: string;
  thingId: string;
  /** The encrypted key; null once downloaded or erased (certificate revoked). */
  ciphertext: Buffer | null;
  createdAt: Date;
  downloadedAt: Date | null;
}

/** Filters for listing certificates; results are ordered by issuedAt, then serial. */
export interface CertificateQuery {
  deviceId?: string;
  status?: CertificateStatus;
  /** Only certificates with notAfter < this. */
  expiresBefore?: Date;
  /** Only certificates with notAfter >= this. */
  expiresAfter?: Date;
  limit?: number;
  offset?: number;
}

/** A revoked certificate as the CRL needs it. */
export interface RevokedEntry {
  serial: string;
  revokedAt: Date;
  reason: string | null;
}

/**
 * The persistence port. Every mutation that can race is a single
 * compare-and-set statement or a row-locked transaction.
 */
export interface Store extends AdminQueries {
  /** "sqlite" or "postgres". */
  readonly kind: "sqlite" | "postgres";
  /** Applies pending numbered migrations; returns how many ran. */
  migrate(): Promise<number>;
  /** Highest applied migration number. */
  schemaVersion(): Promise<number>;
  /** Cheap liveness check (SELECT 1). */
  ping(): Promise<void>;
  close(): Promise<void>;

  /** Persists a batch of issuances in ONE transaction (group commit); resolves only once it is durable. */
  commitIssued(writes: readonly IssuedWrite[]): Promise<void>;
  getCertificate(serial: string): Promise<CertificateRecord | undefined>;
  listCertificates(query?: CertificateQuery): Promise<CertificateRecord[]>;
  countCertificates(query?: Omit<CertificateQuery, "limit" | "offset">): Promise<number>;
  /**
   * Revokes a certificate that is not yet revoked (compare-and-set), writing the
   * audit event in the same transaction. Returns the updated record, or
   * undefined if no such serial; throws TESSERA_ERR_CERT_ALREADY_REVOKED if it was.
   */
  revokeCertificate(serial: string, reason: string, at: Date, audit: AuditEvent): Promise<CertificateRecord | undefined>;
  /**
   * One page of the CRL's entries: revoked certificates that have not expired
   * before `notAfterSince`, ordered by serial, after `afterSerial` (from the
   * first when undefined), at most `limit`. Callers read page after page
   * (keyset paging), so a million entries never sit in memory as objects and
   * the event loop runs between pages.
   */
  listRevokedPage(notAfterSince: Date, afterSerial: string | undefined, limit: number): Promise<RevokedEntry[]>;
  /** Certificates revoked at or after `since` (by revokedAt), oldest first: how replicas learn of each other's revocations. */
  listRevokedSince(since: Date, limit?: number): Promise<RevokedEntry[]>;

  getDevice(id: string): Promise<DeviceRecord | undefined>;
  findDeviceByFingerprint(fingerprint: string): Promise<DeviceRecord | undefined>;
  /** Inserts the device unless one with its id or fingerprint exists; returns the stored one and whether it was created (atomic). */
  createDeviceIfAbsent(device: Omit<DeviceRecord, "createdAt" | "updatedAt" | "lastSeenAt" | "lastIp" | "currentSerial">, at: Date): Promise<{ device: DeviceRecord; created: boolean }>;
  /** Sets status only if the current status is one of `from` (compare-and-set); returns true if changed. */
  setDeviceStatus(id: string, from: readonly DeviceStatus[], to: DeviceStatus, at: Date): Promise<boolean>;
  /** Records last contact. */
  touchDevice(id: string, ip: string | null, at: Date): Promise<void>;
  listDevices(query?: { status?: DeviceStatus; limit?: number; offset?: number }): Promise<DeviceRecord[]>;

  createRequest(request: EnrollmentRequestRecord): Promise<void>;
  getRequest(id: string): Promise<EnrollmentRequestRecord | undefined>;
  getRequestByCsrHash(sha256: string): Promise<EnrollmentRequestRecord | undefined>;
  listRequests(query?: { status?: RequestStatus; protocol?: string; deviceId?: string; limit?: number; offset?: number }): Promise<EnrollmentRequestRecord[]>;
  /** pending → approved|rejected, compare-and-set, with its audit event; returns the updated record or undefined if it was not pending. */
  decideRequest(id: string, decision: "approved" | "rejected", by: string, at: Date, reason: string | null, audit: AuditEvent): Promise<EnrollmentRequestRecord | undefined>;

  createCredential(credential: CredentialRecord): Promise<void>;
  getCredential(id: string): Promise<CredentialRecord | undefined>;
  findCredentialByName(kind: CredentialKind, name: string): Promise<CredentialRecord | undefined>;
  /** For certificate credentials: look up by the certificate's SHA-256. */
  findCredentialByHash(kind: CredentialKind, hash: string): Promise<CredentialRecord | undefined>;
  listCredentials(kind?: CredentialKind): Promise<CredentialRecord[]>;
  /**
   * Consumes one use atomically: succeeds only if not revoked, not expired at
   * `at`, and useCount < maxUses (when set). Returns the updated record or undefined.
   */
  consumeCredential(id: string, at: Date): Promise<CredentialRecord | undefined>;
  /** Revokes (compare-and-set on revokedAt IS NULL); returns true if it changed. */
  revokeCredential(id: string, at: Date): Promise<boolean>;
  /** Deletes a credential (e.g. an EST user removed by an operator); returns true if it existed. */
  deleteCredential(id: string): Promise<boolean>;

  appendAudit(event: AuditEvent): Promise<void>;
  listAudit(query?: { action?: string; target?: string; since?: Date; limit?: number }): Promise<AuditRecord[]>;

  /** Atomically increments and returns the next CRL number (starts at 1). */
  nextCrlNumber(): Promise<bigint>;

  /**
   * Enqueues outbox messages outside an issuance (issuances use
   * IssuedWrite.outbox), all in one transaction, due at `at`. Returns the
   * stored records in the given order.
   */
  enqueueOutbox(messages: readonly OutboxMessage[], at: Date): Promise<OutboxRecord[]>;
  /**
   * Claims up to `limit` pending messages of `channel` due at `now`
   * (nextAttemptAt <= now) that are unclaimed or whose lease has expired
   * (lockedUntil <= now), oldest due first: sets lockedUntil = `leaseUntil`
   * and counts an attempt. A message with an ordering key is claimable only
   * while no older (createdAt, then insertion order) pending message of the
   * same channel and key exists, whatever that one's due time or lease; dead
   * ones do not hold it back. So per key at most one message is in flight.
   * The claim is a compare-and-set, so concurrent claims (other replicas)
   * get disjoint rows. Returns the claimed records (attempts already counted).
   */
  claimOutbox(now: Date, leaseUntil: Date, limit: number, channel: OutboxChannel): Promise<OutboxRecord[]>;
  /** Marks a pending message delivered at `at` and releases its lease; returns false if it was not pending. */
  completeOutbox(id: string, at: Date): Promise<boolean>;
  /**
   * Records a failed attempt of a pending message and releases its lease:
   * retry at `nextAttemptAt`, or with null give up (state "dead", row kept
   * for operators). Returns false if it was not pending (e.g. already delivered).
   */
  failOutbox(id: string, error: string, nextAttemptAt: Date | null): Promise<boolean>;
  /** Lists outbox messages for operators, oldest first (createdAt, then id); all states (channels) when `state` (`channel`) is omitted. */
  listOutbox(query?: { state?: OutboxState; channel?: OutboxChannel; limit?: number }): Promise<OutboxRecord[]>;
  /** A server-generated key's row by certificate serial (Mainflux API). */
  getIssuedKey(serial: string): Promise<IssuedKeyRecord | undefined>;
  /** A thing's issued key rows, oldest first. */
  listIssuedKeys(thingId: string): Promise<IssuedKeyRecord[]>;
  /**
   * The download-once compare-and-set: marks the key downloaded at `at` and
   * erases its ciphertext, only if it belongs to `thingId`, is not yet
   * downloaded and still holds its key. Exactly one of concurrent callers
   * gets true.
   */
  markIssuedKeyDownloaded(serial: string, thingId: string, at: Date): Promise<boolean>;
  /** Erases the ciphertexts of these serials (their certificates were revoked); returns how many rows changed. */
  eraseIssuedKeys(serials: readonly string[]): Promise<number>;
  /** Stores (or replaces) a thing's encrypted key. */
  putThingKey(thingId: string, ciphertext: Buffer, at: Date): Promise<void>;
  /** A thing's encrypted key. */
  getThingKey(thingId: string): Promise<Buffer | undefined>;
  /** Deletes a thing's encrypted key; returns true if it existed. */
  deleteThingKey(thingId: string): Promise<boolean>;
}

export * from "./admin-ports.js";
