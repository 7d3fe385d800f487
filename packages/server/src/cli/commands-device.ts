/**
 * Device and enrollment-request commands: list and inspect devices, revoke
 * one (its certificates too), and decide the enrollments that manual
 * approval holds. Decisions are compare-and-set in the store, so two
 * operators cannot both decide one request.
 */
import type { DeviceRecord, EnrollmentRequestRecord, DeviceStatus, RequestStatus } from "../authority/ports.js";
import { TesseraError } from "../errors.js";
import { EXIT, UsageError } from "./output.js";
import { flag, withAuthority } from "./commands-cert.js";
import type { Invocation } from "./main.js";
import type { Command } from "./commands.js";

const DEVICE_STATUSES: readonly DeviceStatus[] = ["active", "pending", "revoked", "disabled"];
const REQUEST_STATUSES: readonly RequestStatus[] = ["pending", "approved", "rejected"];

function limitOf(inv: Invocation): number {
  const limit = Number(flag(inv, "limit") ?? 100);
  if (!Number.isInteger(limit) || limit <= 0) throw new UsageError("--limit must be a positive integer");
  return limit;
}

function statusOf<T extends string>(inv: Invocation, allowed: readonly T[]): T | undefined {
  const s = flag(inv, "status");
  if (s !== undefined && !allowed.includes(s as T)) throw new UsageError(`--status must be one of ${allowed.join(", ")}`);
  return s as T | undefined;
}

function deviceView(d: DeviceRecord) {
  return {
    id: d.id, fingerprint: d.fingerprint, status: d.status, protocol: d.protocol, attributes: d.attributes, currentSerial: d.currentSerial,
    createdAt: d.createdAt.toISOString(), updatedAt: d.updatedAt.toISOString(), lastSeenAt: d.lastSeenAt?.toISOString() ?? null, lastIp: d.lastIp,
  };
}

function requestView(r: EnrollmentRequestRecord) {
  return {
    id: r.id, protocol: r.protocol, deviceId: r.deviceId, status: r.status, subject: r.subject, profile: r.profile, attributes: r.attributes,
    createdAt: r.createdAt.toISOString(), decidedAt: r.decidedAt?.toISOString() ?? null, decidedBy: r.decidedBy, reason: r.reason,
    certificateSerial: r.certificateSerial,
  };
}

const deviceList: Command = (inv) =>
  withAuthority(inv, async (authority) => {
    const rows = (await authority.devices.list({ status: statusOf(inv, DEVICE_STATUSES), limit: limitOf(inv) })).map(deviceView);
    if (inv.io.json) inv.io.out(JSON.stringify(rows));
    else for (const d of rows) inv.io.out(`${d.id}  ${d.status.padEnd(8)}  ${d.protocol.padEnd(8)}  ${d.currentSerial ?? "-"}  ${d.attributes.hostname ?? ""}`);
    return EXIT.ok;
  });

const deviceShow: Command = (inv) =>
  withAuthority(inv, async (authority) => {
    const id = inv.args[0];
    if (!id) throw new UsageError("a DEVICE-ID argument is needed");
    const d = await authority.devices.get(id);
    if (!d) throw new TesseraError("TESSERA_ERR_DEVICE_NOT_FOUND", { detail: id });
    const certs = (await authority.listCertificates({ deviceId: id })).map((c) => ({ serial: c.serial, status: c.status, issuedAt: c.issuedAt.toISOString(), notAfter: c.notAfter.toISOString() }));
    if (inv.io.json) inv.io.out(JSON.stringify({ ...deviceView(d), certificates: certs }));
    else {
      for (const [k, v] of Object.entries(deviceView(d))) inv.io.out(`${k.padEnd(13)} ${typeof v === "object" && v !== null ? JSON.stringify(v) : v ?? "-"}`);
      inv.io.out("certificates (oldest first):");
      for (const c of certs) inv.io.out(`  ${c.serial}  ${c.status.padEnd(10)}  issued ${c.issuedAt}  expires ${c.notAfter}`);
    }
    return EXIT.ok;
  });

const deviceRevoke: Command = (inv) =>
  withAuthority(inv, async (authority) => {
    const id = inv.args[0];
    if (!id) throw new UsageError("a DEVICE-ID argument is needed");
    const { revoked } = await authority.revokeDevice(id, flag(inv, "reason") ?? "cessationOfOperation", "cli");
    if (inv.io.json) inv.io.out(JSON.stringify({ id, status: "revoked", revokedCertificates: revoked }));
    else inv.io.out(`device ${id} revoked${revoked.length ? `; certificates revoked: ${revoked.join(", ")}` : ""}`);
    return EXIT.ok;
  });

const enrollList: Command = (inv) =>
  withAuthority(inv, async (authority) => {
    const status = statusOf(inv, REQUEST_STATUSES) ?? "pending";
    const rows = (await authority.devices.listRequests({ status, limit: limitOf(inv) })).map(requestView);
    if (inv.io.json) inv.io.out(JSON.stringify(rows));
    else for (const r of rows) inv.io.out(`${r.id}  ${r.status.padEnd(8)}  ${r.protocol.padEnd(8)}  device ${r.deviceId ?? "-"}  ${r.attributes.hostname ?? ""}  ${r.createdAt}`);
    return EXIT.ok;
  });

function decide(decision: "approved" | "rejected"): Command {
  return (inv) =>
    withAuthority(inv, async (authority) => {
      const id = inv.args[0];
      if (!id) throw new UsageError("a REQUEST-ID argument is needed");
      const r = await authority.devices.decide(id, decision, "cli", flag(inv, "reason") ?? null);
      if (inv.io.json) inv.io.out(JSON.stringify(requestView(r)));
      else inv.io.out(`request ${r.id} ${decision}${decision === "approved" ? "; the device gets its certificate on its next enrollment" : ""}`);
      return EXIT.ok;
    });
}

/** Device and enrollment commands for the command table. */
export const deviceCommands: Record<string, Command> = {
  "device list": deviceList,
  "device show": deviceShow,
  "device revoke": deviceRevoke,
  "enroll list": enrollList,
  "enroll approve": decide("approved"),
  "enroll reject": decide("rejected"),
};
