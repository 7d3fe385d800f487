/**
 * What the agent's commands share: the identity summary they print, the
 * client operations with the missing-secret rule, and the renewal windows.
 */
import { loadIdentity } from "../keystore/store-dir.js";
import type { ImprintClient, ImprintOperations } from "../protocols/imprint/client.js";
import { ImprintError } from "../protocols/imprint/errors.js";
import { DEFAULT_RENEWAL_THRESHOLD_MS } from "../protocols/imprint/renew-or-reenroll.js";
import { duration, type Invocation } from "./options.js";

/** A command handler: returns the exit code. */
export type Command = (inv: Invocation) => Promise<number>;

const DAY_MS = 86_400_000;

/** The stored identity as status, enroll and renew report it. */
export interface IdentitySummary {
  dir: string;
  serverId: string | null;
  fingerprint: string | null;
  /** Certificate serial, lowercase hex. */
  serial: string;
  notBefore: string;
  notAfter: string;
  /** Whole days until notAfter, rounded down (negative once expired). */
  daysLeft: number;
  expired: boolean;
  /** Still valid but less than the threshold left (imprint's NeedsRenewal, strict <). */
  needsRenewal: boolean;
}

/** Reads the identity in `dir` and summarises it; throws StoreDirError when absent or damaged. */
export async function summarise(dir: string, thresholdMs: number, now = new Date()): Promise<IdentitySummary> {
  const id = await loadIdentity(dir);
  const left = id.certificate.notAfter.getTime() - now.getTime();
  const expired = left < 0;
  return {
    dir,
    serverId: id.serverId ?? null,
    fingerprint: id.fingerprint ?? null,
    serial: id.certificate.serialHex,
    notBefore: id.certificate.notBefore.toISOString(),
    notAfter: id.certificate.notAfter.toISOString(),
    daysLeft: Math.floor(left / DAY_MS),
    expired,
    needsRenewal: !expired && left < thresholdMs,
  };
}

/** The lines of a summary in text mode. */
export function summaryLines(s: IdentitySummary): string[] {
  const days = (n: number) => `${n} day${n === 1 ? "" : "s"}`;
  // daysLeft is rounded down, so an expired certificate's whole days ago are −daysLeft − 1.
  const when = s.expired ? (s.daysLeft === -1 ? "expired less than a day ago" : `expired ${days(-s.daysLeft - 1)} ago`) : `${days(s.daysLeft)} left`;
  return [
    // EST identities have neither (they are saved with empty ones): leave the lines out rather than print blanks.
    ...(s.serverId === "" ? [] : [`  server id:    ${s.serverId ?? "(no enrollment.json)"}`]),
    ...(s.fingerprint === "" ? [] : [`  fingerprint:  ${s.fingerprint ?? "(no enrollment.json)"}`]),
    `  serial:       ${s.serial}`,
    `  valid until:  ${s.notAfter} (${when})`,
  ];
}

/** How to give the build secret, for error messages. */
export const NO_SECRET_HINT = "give --secret, --secret-file or set TESSERA_BUILD_SECRET";
const NO_SECRET = `a build secret is needed to enroll: ${NO_SECRET_HINT}`;

/**
 * The client's operations, except that enrolling without a build secret fails
 * as "not enrolled" instead of sending an empty secret: an already enrolled
 * device may run without the secret on disk, which is safer.
 */
export function operations(client: ImprintClient, secret: string | undefined): ImprintOperations {
  return {
    enroll: (args) => (secret === undefined ? Promise.reject(new ImprintError("not-enrolled", NO_SECRET)) : client.enroll(args)),
    renew: () => client.renew(),
    challengeRenew: (args) => client.challengeRenew(args),
  };
}

/** Reads --threshold and --challenge-window; both default to 30 days. */
export function renewalWindows(inv: Invocation): { thresholdMs: number; challengeWindowMs: number } {
  return {
    thresholdMs: duration(inv, "threshold", DEFAULT_RENEWAL_THRESHOLD_MS),
    challengeWindowMs: duration(inv, "challenge-window", DEFAULT_RENEWAL_THRESHOLD_MS),
  };
}
