/**
 * Record factories and assertion helpers for the store conformance suite.
 * Every factory makes unique ids, so tests can share one database.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { AuditEvent, CertificateRecord, CredentialRecord, EnrollmentRequestRecord, IssuedWrite, Store } from "../authority/ports.js";
import { TesseraError, type ErrorCode } from "../errors.js";

/** Registers one test (node:test's `test`, or a variant that marks it skipped). */
export type Register = (name: string, fn: () => Promise<void>) => void;

let counter = 0;

/** Makes a unique id with a readable prefix. */
export function uid(prefix: string): string {
  return `${prefix}-${++counter}-${randomBytes(4).toString("hex")}`;
}

/** Makes a unique serial in the port's form: lowercase hex without leading zeros. */
export function newSerial(): string {
  return `${(1 + (++counter % 15)).toString(16)}${randomBytes(9).toString("hex")}`;
}

/** A fixed base time with non-zero milliseconds, so precision loss would show. */
export const T0 = new Date("2025-03-04T05:06:07.089Z");

/** T0 plus `minutes`. */
export function at(minutes: number): Date {
  return new Date(T0.getTime() + minutes * 60_000);
}

/** Returns the certificate record with everything set to something non-trivial. */
export function makeCert(overrides: Partial<CertificateRecord> = {}): CertificateRecord {
  const der = randomBytes(300);
  der[0] = 0x30;
  der[5] = 0; // Zero bytes must survive the round trip too.
  return {
    serial: newSerial(),
    deviceId: null,
    profile: "device",
    subject: "CN=device \\, ünïcødé,O=Tessera",
    sans: ["DNS:device.example", "IP Address:192.0.2.7", "URI:urn:uuid:1234"],
    keyFingerprint: randomBytes(32).toString("hex"),
    keyType: "ec-p256",
    notBefore: at(0),
    notAfter: at(60 * 24 * 365),
    status: "valid",
    revokedAt: null,
    revocationReason: null,
    issuedAt: at(0),
    protocol: "cli",
    requestId: null,
    fingerprint: randomBytes(32).toString("hex"),
    der,
    ...overrides,
  };
}

/** An audit event for `target`. */
export function event(action: string, target: string, detail: Record<string, unknown> = {}): AuditEvent {
  return { at: T0, actor: "cli", action, target, detail };
}

/** An issuance of `cert` with its "certificate.issued" audit event. */
export function issued(cert: CertificateRecord, extra: Omit<IssuedWrite, "certificate" | "audit"> = {}): IssuedWrite {
  return { certificate: cert, audit: event("certificate.issued", cert.serial), ...extra };
}

/** The `device` part of an IssuedWrite for a new device id. */
export function newDevice(id = uid("dev"), attributes: Record<string, string> = { hostname: "h1" }): NonNullable<IssuedWrite["device"]> {
  return { id, fingerprint: uid("hw"), protocol: "imprint", attributes, status: "active" };
}

/** Commits one certificate for a freshly created device and returns the device id. */
export async function deviceWithCert(store: Store): Promise<string> {
  const device = newDevice();
  await store.commitIssued([issued(makeCert({ deviceId: device.id }), { device })]);
  return device.id;
}

/** A pending enrollment request. */
export function makeRequest(overrides: Partial<EnrollmentRequestRecord> = {}): EnrollmentRequestRecord {
  return {
    id: uid("req"),
    protocol: "caramel",
    deviceId: null,
    csrSha256: randomBytes(32).toString("hex"),
    csr: randomBytes(200),
    subject: "CN=req",
    profile: "device",
    status: "pending",
    createdAt: at(1),
    decidedAt: null,
    decidedBy: null,
    reason: null,
    certificateSerial: null,
    attributes: { hostname: "r" },
    ...overrides,
  };
}

/** An unused, unlimited secret credential. */
export function makeCredential(overrides: Partial<CredentialRecord> = {}): CredentialRecord {
  return {
    id: uid("cred"),
    kind: "secret",
    name: uid("name"),
    scope: "*",
    hash: `scrypt$${randomBytes(16).toString("hex")}`,
    expiresAt: null,
    maxUses: null,
    useCount: 0,
    revokedAt: null,
    createdAt: T0,
    ...overrides,
  };
}

/** Asserts the promise rejects with a TesseraError carrying `code`. */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof TesseraError, `expected TesseraError ${code}, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** Runs `n` calls of `fn` concurrently and splits the outcomes. */
export async function concurrently<T>(n: number, fn: (i: number) => Promise<T>): Promise<{ ok: T[]; errors: unknown[] }> {
  const settled = await Promise.allSettled(Array.from({ length: n }, (_, i) => fn(i)));
  const ok: T[] = [];
  const errors: unknown[] = [];
  for (const s of settled) {
    if (s.status === "fulfilled") ok.push(s.value);
    else errors.push(s.reason);
  }
  return { ok, errors };
}

/** Compare key giving the store's certificate order (issuedAt, then serial). */
export function certOrder(c: CertificateRecord): string {
  return `${c.issuedAt.toISOString()} ${c.serial}`;
}
