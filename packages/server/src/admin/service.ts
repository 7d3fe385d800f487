/**
 * What the admin API does, apart from HTTP: the approval queue across
 * protocols, device and certificate actions, bootstrap credentials, fleet
 * health from the store and the audit log. Every change goes through the
 * authority or the store's compare-and-set methods and is audited with the
 * operator as actor. Routes (routes.ts) decode, call one method, encode.
 */
import { colonHex, formatName, sha256Hex } from "@tessera/pki";
import type { Authority } from "../authority/authority.js";
import type {
  ActivityDay, AuditRecord, AuditSearch, CertificateRecord, CertificateSearch, CertificateSummary, DayCount, DeviceSearch, DeviceSummary,
  EnrollmentRequestRecord, FailureCount, Page, RequestStatus, Store,
} from "../authority/ports.js";
import { TesseraError } from "../errors.js";

/** Signs an approved request at once, for protocols whose devices poll for a signed certificate (Caramel). */
export type RequestSigner = (request: EnrollmentRequestRecord, actor: string) => Promise<CertificateRecord>;

/** The store methods the admin service reads and writes directly. */
export type AdminStore = Pick<
  Store,
  | "searchDevices" | "searchCertificates" | "searchRequests" | "searchAudit" | "expiryPerDay" | "activityPerDay" | "listFailures"
  | "getDevice" | "getRequest" | "listRequests" | "listCertificates" | "getCertificate" | "setDeviceStatus" | "appendAudit" | "countCertificates"
>;

const DAY = 86_400_000;

/** "YYYY-MM-DD" of a time in UTC. */
export function utcDay(t: Date): string {
  return t.toISOString().slice(0, 10);
}

/** A certificate without its DER. */
export function summary(c: CertificateRecord | CertificateSummary): CertificateSummary {
  const { der: _der, ...rest } = c as CertificateRecord;
  return rest;
}

/** Fleet health: expiry per day, activity, failures. */
export interface Health {
  expiry: DayCount[];
  activity: ActivityDay[];
  failures: FailureCount[];
  failuresByCode: { code: string; count: number }[];
}

/** The admin API's operations. */
export class AdminService {
  constructor(
    private readonly deps: {
      authority: Pick<Authority, "revoke" | "revokeDevice" | "devices" | "ca">;
      store: AdminStore;
      now: () => Date;
      /** Per protocol, how an approval is carried out at once (else the device picks it up on its next attempt). */
      signers?: Record<string, RequestSigner>;
      /** Run before the health figures are read (writes the failure counts still in memory). */
      beforeHealth?: () => Promise<void>;
    },
  ) {}

  /** Counts for the overview page. */
  async overview(): Promise<Record<string, unknown>> {
    const { store, now } = this.deps;
    const t = now();
    const count = async (status?: DeviceSearch["status"]) => (await store.searchDevices({ status, limit: 1 })).total;
    const [total, active, pending, disabled, revoked, valid, expiring, pendingRequests] = await Promise.all([
      count(), count("active"), count("pending"), count("disabled"), count("revoked"),
      store.countCertificates({ status: "valid", expiresAfter: t }),
      store.countCertificates({ status: "valid", expiresAfter: t, expiresBefore: new Date(t.getTime() + 7 * DAY) }),
      store.searchRequests({ status: "pending", limit: 1 }).then((p) => p.total),
    ]);
    const root = this.deps.authority.ca.root;
    const issuer = this.deps.authority.ca.issuer.certificate;
    return {
      devices: { total, active, pending, disabled, revoked },
      certificates: { valid, expiringIn7Days: expiring },
      pendingRequests,
      ca: { subject: formatName(issuer.subject), notAfter: issuer.notAfter.toISOString(), root: formatName(root.subject), fingerprint: colonHex(sha256Hex(root.der)) },
    };
  }

  /** One page of the request queue. */
  requests(q: { status?: RequestStatus; protocol?: string; limit: number; offset: number }): Promise<Page<EnrollmentRequestRecord>> {
    return this.deps.store.searchRequests(q);
  }

  /**
   * Approves a pending request. A protocol with a signer (Caramel) gets its
   * certificate now; imprint and EST devices collect theirs on their next
   * attempt, which the approval allows.
   */
  async approve(id: string, actor: string): Promise<{ request: EnrollmentRequestRecord; certificate: CertificateSummary | null }> {
    const request = await this.deps.store.getRequest(id);
    if (!request) throw new TesseraError("TESSERA_ERR_REQUEST_NOT_FOUND", { detail: id });
    if (request.status !== "pending") throw new TesseraError("TESSERA_ERR_REQUEST_ALREADY_DECIDED", { detail: `${id} is ${request.status}` });
    const signer = this.deps.signers?.[request.protocol];
    if (signer) {
      const cert = await signer(request, actor);
      return { request: (await this.deps.store.getRequest(id)) ?? request, certificate: summary(cert) };
    }
    return { request: await this.deps.authority.devices.decide(id, "approved", actor), certificate: null };
  }

  /** Rejects a pending request with an optional reason. */
  async reject(id: string, reason: string | null, actor: string): Promise<EnrollmentRequestRecord> {
    return this.deps.authority.devices.decide(id, "rejected", actor, reason);
  }

  /** One page of devices. */
  devices(q: DeviceSearch): Promise<Page<DeviceSummary>> {
    return this.deps.store.searchDevices(q);
  }

  /** A device, its certificate lineage (newest first) and its requests. */
  async device(id: string): Promise<{ device: DeviceSummary; certificates: CertificateSummary[]; requests: EnrollmentRequestRecord[] }> {
    const { store } = this.deps;
    const found = (await store.searchDevices({ q: id, limit: 50 })).items.find((d) => d.id === id);
    if (!found) throw new TesseraError("TESSERA_ERR_DEVICE_NOT_FOUND", { detail: id });
    const [certs, requests] = await Promise.all([store.listCertificates({ deviceId: id, limit: 500 }), store.listRequests({ deviceId: id, limit: 100 })]);
    return { device: found, certificates: certs.map(summary).reverse(), requests };
  }

  /** Disables (or enables) a device: a disabled device can neither renew nor enroll. */
  async setEnabled(id: string, enabled: boolean, actor: string): Promise<DeviceSummary> {
    const { store, now } = this.deps;
    const device = await store.getDevice(id);
    if (!device) throw new TesseraError("TESSERA_ERR_DEVICE_NOT_FOUND", { detail: id });
    const at = now();
    const changed = enabled ? await store.setDeviceStatus(id, ["disabled"], "active", at) : await store.setDeviceStatus(id, ["active", "pending"], "disabled", at);
    if (!changed) {
      throw new TesseraError("TESSERA_ERR_STORE_CONFLICT", { message: `the device is ${device.status}: it cannot be ${enabled ? "enabled" : "disabled"}`, detail: id });
    }
    await store.appendAudit({ at, actor, action: enabled ? "device.enabled" : "device.disabled", target: id, detail: { from: device.status } });
    return (await this.device(id)).device;
  }

  /** Revokes a device and its unexpired certificates. */
  async revokeDevice(id: string, reason: string, actor: string): Promise<{ device: DeviceSummary; revoked: string[] }> {
    const { revoked } = await this.deps.authority.revokeDevice(id, reason, actor);
    return { device: (await this.device(id)).device, revoked };
  }

  /** One page of certificates. */
  certificates(q: CertificateSearch): Promise<Page<CertificateSummary>> {
    return this.deps.store.searchCertificates(q);
  }

  /** A certificate by serial (hex, any case, colons allowed). */
  async certificate(serial: string): Promise<CertificateRecord> {
    const c = await this.deps.store.getCertificate(normalizeSerial(serial));
    if (!c) throw new TesseraError("TESSERA_ERR_CERT_NOT_FOUND", { detail: serial });
    return c;
  }

  /** Revokes one certificate. */
  async revokeCertificate(serial: string, reason: string, actor: string): Promise<CertificateSummary> {
    return summary(await this.deps.authority.revoke(normalizeSerial(serial), reason, actor));
  }

  /**
   * Fleet health from the store: valid certificates expiring on each of the
   * next `days` days (zeros included, so the chart has every day), and the
   * last 30 days of issuance, renewal, revocation and failed enrollments.
   */
  async health(days: number): Promise<Health> {
    const { store, now } = this.deps;
    await this.deps.beforeHealth?.();
    const t = now();
    const since = new Date(t.getTime() - 29 * DAY);
    const [expiry, activity, failures] = await Promise.all([store.expiryPerDay(t, days), store.activityPerDay(since), store.listFailures(since)]);
    const byDay = new Map(expiry.map((d) => [d.day, d.count]));
    const start = Date.parse(utcDay(t) + "T00:00:00Z");
    const filled = Array.from({ length: days }, (_, i) => {
      const day = utcDay(new Date(start + i * DAY));
      return { day, count: byDay.get(day) ?? 0 };
    });
    const codes = new Map<string, number>();
    for (const f of failures) codes.set(f.code, (codes.get(f.code) ?? 0) + f.count);
    const failuresByCode = [...codes].map(([code, count]) => ({ code, count })).sort((a, b) => b.count - a.count || a.code.localeCompare(b.code));
    return { expiry: filled, activity, failures, failuresByCode };
  }

  /** Audit events newest first, with the cursor of the next page. */
  async audit(q: AuditSearch & { limit: number }): Promise<{ items: AuditRecord[]; next: number | null }> {
    const items = await this.deps.store.searchAudit(q);
    return { items, next: items.length === q.limit && items.length > 0 ? items[items.length - 1]!.id : null };
  }

  /** Every audit event matching `q`, newest first, in pages of 1000 (for the JSON-lines export). */
  async *auditAll(q: Omit<AuditSearch, "limit" | "beforeId">): AsyncGenerator<AuditRecord> {
    let beforeId: number | undefined;
    for (;;) {
      const page = await this.deps.store.searchAudit({ ...q, beforeId, limit: 1000 });
      yield* page;
      if (page.length < 1000) return;
      beforeId = page[page.length - 1]!.id;
    }
  }
}

/** A serial as the store keys it: lower-case hex without colons or leading zeros. */
export function normalizeSerial(serial: string): string {
  const hex = serial.replace(/:/g, "").toLowerCase();
  if (!/^[0-9a-f]{1,64}$/.test(hex)) throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { message: "a serial is hexadecimal (colons allowed)", detail: serial });
  return hex.replace(/^0+(?=.)/, "");
}
