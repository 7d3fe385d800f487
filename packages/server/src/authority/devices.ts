/**
 * Devices and their certificate lineage, protocol-neutral. A device is one
 * identity (id ↔ fingerprint) holding one current certificate; a renewal
 * continues its lineage (the presented certificate must be the current one,
 * and is superseded), a re-enrollment starts a new lineage (the previous
 * current certificate is superseded or revoked, by policy). Both are decided
 * here and enforced by the store's compare-and-set on the device's current
 * serial, so concurrent requests for one device yield exactly one winner.
 * Manual approval keeps an enrollment request per device: pending until an
 * operator decides; an approval is used by the device's next enrollment.
 */
import { createHash, randomUUID } from "node:crypto";
import { TesseraError } from "../errors.js";
import type { Clock } from "./runtime.js";
import type { AuditEvent, DeviceRecord, DeviceStatus, EnrollmentRequestRecord, Store } from "./ports.js";

/** How enrollments are admitted. */
export interface EnrollmentPolicy {
  /** "auto" issues at once; "manual" holds each enrollment for an operator's approval. */
  approval: "auto" | "manual";
  /** Whether a revoked or disabled device may enroll again (default false: revocation sticks). */
  allowRevoked: boolean;
  /** Whether re-enrollment revokes the previous lineage's current certificate (else it is only superseded). */
  revokePrevious: boolean;
}

/** The device part of an issuance, ready for IssueRequest.device. */
export interface LineageWrite {
  device: {
    id: string;
    fingerprint: string | null;
    attributes: Record<string, string>;
    status: DeviceStatus;
    setStatus?: boolean;
    expectCurrentSerial: string | null;
  };
  supersedes: string[];
  revokeSuperseded: boolean;
  requestId?: string;
}

/** What to do with an enrollment: issue now, or tell the device it waits for approval. */
export type EnrollmentPlan =
  | ({ action: "issue"; deviceId: string; created: boolean } & LineageWrite)
  | { action: "pending"; deviceId: string; requestId: string; created: boolean };

/** An enrollment as a protocol decoded it. */
export interface EnrollmentInput {
  /** Stable device identifier (hardware fingerprint). */
  fingerprint: string;
  protocol: string;
  /** Id for a device seen for the first time (e.g. imprint's srv_… server id). */
  newId: () => string;
  attributes: Record<string, string>;
  /** The CSR as received (kept with a pending request). */
  csr: Buffer;
  /** Subject of the CSR, RFC 4514 (for operators listing requests). */
  subject: string;
  profile: string;
  policy: EnrollmentPolicy;
}

/** Device registry and lineage rules over the store. */
export class DeviceRegistry {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** A device by id. */
  get(id: string): Promise<DeviceRecord | undefined> {
    return this.store.getDevice(id);
  }

  /** A device by fingerprint. */
  findByFingerprint(fingerprint: string): Promise<DeviceRecord | undefined> {
    return this.store.findDeviceByFingerprint(fingerprint);
  }

  /** Devices, oldest first. */
  list(query?: { status?: DeviceStatus; limit?: number; offset?: number }): Promise<DeviceRecord[]> {
    return this.store.listDevices(query);
  }

  /** Records a contact (address without port: behind a proxy the port says nothing). */
  touch(id: string, ip: string | null): Promise<void> {
    return this.store.touchDevice(id, ip, this.clock.now());
  }

  /**
   * Decides an enrollment (see the file comment). Throws
   * TESSERA_ERR_DEVICE_REVOKED for a revoked device unless the policy allows
   * it, and TESSERA_ERR_REQUEST_REJECTED when an operator rejected it.
   */
  async planEnrollment(input: EnrollmentInput): Promise<EnrollmentPlan> {
    const existing = await this.store.findDeviceByFingerprint(input.fingerprint);
    if (!existing) {
      if (input.policy.approval === "auto") {
        // Nothing is written before the certificate: the issuance creates the device, and
        // expectCurrentSerial null makes a concurrent first enrollment of this fingerprint lose.
        const id = input.newId();
        return { action: "issue", deviceId: id, created: true, ...this.lineage(id, input, null, "active", false, []) };
      }
      const { device, created } = await this.store.createDeviceIfAbsent(
        { id: input.newId(), fingerprint: input.fingerprint, status: "pending", protocol: input.protocol, attributes: input.attributes },
        this.clock.now(),
      );
      return this.planKnown(device, input, created);
    }
    return this.planKnown(existing, input, false);
  }

  private async planKnown(device: DeviceRecord, input: EnrollmentInput, created: boolean): Promise<EnrollmentPlan> {
    const blocked = device.status === "revoked" || device.status === "disabled";
    if (blocked && !input.policy.allowRevoked) throw new TesseraError("TESSERA_ERR_DEVICE_REVOKED", { detail: `device ${device.id}` });
    const previous = device.currentSerial ? [device.currentSerial] : [];
    if (input.policy.approval === "auto") {
      return { action: "issue", deviceId: device.id, created, ...this.lineage(device.id, input, device.currentSerial, "active", device.status !== "active", previous) };
    }
    const requests = await this.store.listRequests({ deviceId: device.id, protocol: input.protocol });
    const open = requests.filter((r) => r.certificateSerial === null);
    const approved = open.find((r) => r.status === "approved");
    if (approved) {
      return {
        action: "issue",
        deviceId: device.id,
        created,
        ...this.lineage(device.id, input, device.currentSerial, "active", device.status !== "active", previous),
        requestId: approved.id,
      };
    }
    const pending = open.find((r) => r.status === "pending");
    if (pending) return { action: "pending", deviceId: device.id, requestId: pending.id, created };
    const last = requests.at(-1);
    if (last?.status === "rejected" && last.certificateSerial === null) {
      throw new TesseraError("TESSERA_ERR_REQUEST_REJECTED", { detail: `request ${last.id}${last.reason ? `: ${last.reason}` : ""}` });
    }
    const request = await this.createRequest(device.id, input);
    return { action: "pending", deviceId: device.id, requestId: request.id, created };
  }

  private lineage(
    id: string,
    input: EnrollmentInput,
    currentSerial: string | null,
    status: DeviceStatus,
    setStatus: boolean,
    previous: string[],
  ): LineageWrite {
    return {
      device: { id, fingerprint: input.fingerprint, attributes: input.attributes, status, setStatus, expectCurrentSerial: currentSerial },
      supersedes: previous,
      revokeSuperseded: input.policy.revokePrevious,
    };
  }

  private async createRequest(deviceId: string, input: EnrollmentInput): Promise<EnrollmentRequestRecord> {
    const request: EnrollmentRequestRecord = {
      id: randomUUID(),
      protocol: input.protocol,
      deviceId,
      // Unique per request even if a device sends the same CSR twice.
      csrSha256: createHash("sha256").update(input.csr).update(randomUUID()).digest("hex"),
      csr: input.csr,
      subject: input.subject,
      profile: input.profile,
      status: "pending",
      createdAt: this.clock.now(),
      decidedAt: null,
      decidedBy: null,
      reason: null,
      certificateSerial: null,
      attributes: { ...input.attributes, fingerprint: input.fingerprint },
    };
    await this.store.createRequest(request);
    await this.store.appendAudit({ at: request.createdAt, actor: `device:${deviceId}`, action: "request.created", target: request.id, detail: { protocol: input.protocol } });
    return request;
  }

  /**
   * Decides a renewal of `deviceId` with the certificate `presentedSerial`:
   * allowed only for an active device presenting its current (newest, not
   * revoked) certificate. Throws TESSERA_ERR_RENEWAL_DENIED otherwise.
   */
  async planRenewal(deviceId: string, presentedSerial: string, opts: { revokeSuperseded: boolean }): Promise<LineageWrite & { record: DeviceRecord }> {
    const device = await this.store.getDevice(deviceId);
    const deny = (why: string) => new TesseraError("TESSERA_ERR_RENEWAL_DENIED", { detail: `device ${deviceId}: ${why}` });
    if (!device) throw deny("unknown device");
    if (device.status !== "active") throw deny(`device is ${device.status}`);
    if (device.currentSerial !== presentedSerial) throw deny(`certificate ${presentedSerial} is not the newest of its lineage`);
    const cert = await this.store.getCertificate(presentedSerial);
    if (!cert || cert.deviceId !== deviceId || cert.status !== "valid") throw deny(`certificate ${presentedSerial} is ${cert ? cert.status : "unknown"}`);
    return {
      record: device,
      device: { id: device.id, fingerprint: device.fingerprint, attributes: {}, status: device.status, expectCurrentSerial: presentedSerial },
      supersedes: [presentedSerial],
      revokeSuperseded: opts.revokeSuperseded,
    };
  }

  /**
   * Stores a request that is identified by its CSR's hash (Caramel: the
   * client polls by the SHA-256 of the exact bytes it posted), pending.
   * Throws TESSERA_ERR_REQUEST_DUPLICATE if that hash is already stored, in
   * any state (also when two posts race: the store's unique index decides).
   */
  async submitByHash(input: { protocol: string; csr: Buffer; csrSha256: string; subject: string; profile: string; attributes: Record<string, string> }): Promise<EnrollmentRequestRecord> {
    const duplicate = () => new TesseraError("TESSERA_ERR_REQUEST_DUPLICATE", { detail: input.csrSha256 });
    if (await this.store.getRequestByCsrHash(input.csrSha256)) throw duplicate();
    const request: EnrollmentRequestRecord = {
      id: randomUUID(), protocol: input.protocol, deviceId: null, csrSha256: input.csrSha256, csr: input.csr, subject: input.subject, profile: input.profile,
      status: "pending", createdAt: this.clock.now(), decidedAt: null, decidedBy: null, reason: null, certificateSerial: null, attributes: input.attributes,
    };
    try {
      await this.store.createRequest(request);
    } catch (err) {
      if (await this.store.getRequestByCsrHash(input.csrSha256)) throw duplicate();
      throw err;
    }
    await this.store.appendAudit({ at: request.createdAt, actor: "anonymous", action: "request.created", target: request.id, detail: { protocol: input.protocol, sha256: input.csrSha256 } });
    return request;
  }

  /** A request by the SHA-256 of its CSR bytes, or by id. */
  async findRequest(idOrHash: string): Promise<EnrollmentRequestRecord | undefined> {
    return /^[0-9a-f]{64}$/.test(idOrHash) ? this.store.getRequestByCsrHash(idOrHash) : this.store.getRequest(idOrHash);
  }

  /** Pending and decided enrollment requests, oldest first. */
  listRequests(query?: { status?: EnrollmentRequestRecord["status"]; protocol?: string; deviceId?: string; limit?: number }): Promise<EnrollmentRequestRecord[]> {
    return this.store.listRequests(query);
  }

  /** Approves or rejects a pending request (compare-and-set); the device's next enrollment uses an approval. */
  async decide(requestId: string, decision: "approved" | "rejected", actor: string, reason: string | null = null): Promise<EnrollmentRequestRecord> {
    const at = this.clock.now();
    const audit: AuditEvent = { at, actor, action: `request.${decision}`, target: requestId, detail: reason ? { reason } : {} };
    const updated = await this.store.decideRequest(requestId, decision, actor, at, reason, audit);
    if (updated) return updated;
    const found = await this.store.getRequest(requestId);
    throw found ? new TesseraError("TESSERA_ERR_REQUEST_ALREADY_DECIDED", { detail: `${requestId} is ${found.status}` }) : new TesseraError("TESSERA_ERR_REQUEST_NOT_FOUND", { detail: requestId });
  }

  /**
   * Marks a device revoked (its certificates are revoked by the caller, which
   * owns the CRL). Returns the device's certificates that are still valid or
   * superseded and not yet expired.
   */
  async markRevoked(id: string, actor: string): Promise<{ device: DeviceRecord; serials: string[] }> {
    const device = await this.store.getDevice(id);
    if (!device) throw new TesseraError("TESSERA_ERR_DEVICE_NOT_FOUND", { detail: id });
    const at = this.clock.now();
    if (device.status !== "revoked") {
      await this.store.setDeviceStatus(id, ["active", "pending", "disabled"], "revoked", at);
      await this.store.appendAudit({ at, actor, action: "device.revoked", target: id, detail: {} });
    }
    const certs = await this.store.listCertificates({ deviceId: id, expiresAfter: at });
    return { device: { ...device, status: "revoked" }, serials: certs.filter((c) => c.status !== "revoked").map((c) => c.serial) };
  }
}
