/**
 * The renew-or-re-enroll decision of imprint's RenewOrReenroll (spec §8
 * steps 1–7) with two deliberate changes (W15):
 *
 * - Tier 1 refused with 401/403 (or a TLS certificate failure) tries Tier 2
 *   before Tier 3; imprint goes straight to re-enrollment.
 * - No answer (refused, reset, DNS, timeout) or a 5xx/408/429 answer stops
 *   the run with an ImprintError listing the attempts, instead of
 *   re-enrolling: a flaky network or a busy server must not cost a device its
 *   identity. The next run tries again.
 *
 * Everything else falls through as in imprint.
 */
import { isEnrolled, loadCertificate } from "../../keystore/store-dir.js";
import { ImprintError, type ImprintAttempt } from "./errors.js";
import type { ImprintOperations } from "./client.js";

/** Default renewal threshold and challenge window: 30 days in milliseconds (imprint's DefaultRenewalThreshold). */
export const DEFAULT_RENEWAL_THRESHOLD_MS = 30 * 24 * 3600 * 1000;

/** What renewOrReenroll did. */
export type RenewAction = "renewed" | "challenge_renewed" | "reenrolled" | "none";

/** The action taken and the tiers that failed on the way. */
export interface RenewOutcome {
  action: RenewAction;
  attempts: ImprintAttempt[];
}

/** Options of renewOrReenroll. */
export interface RenewOrReenrollOptions {
  /** Build secret for (re-)enrollment. */
  buildSecret: string;
  /** Current device fingerprint (enrollment and challenge). */
  fingerprint: string;
  /** Renew when less than this is left, in milliseconds (default 30 days; 0 also means 30 days, as imprint). */
  thresholdMs?: number;
  /** How long after expiry Tier 2 is tried, in milliseconds (default 30 days; 0 also means 30 days, as imprint). */
  challengeWindowMs?: number;
}

/** How a failed tier counts: retry later, authentication refused, or anything else. */
export type FailureClass = "transient" | "auth" | "other";

// Node/OpenSSL codes for a peer certificate that did not verify, and alerts about ours.
const TLS_CERT_FAILURE = /CERT|SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY|INVALID_CA|INVALID_PURPOSE|UNKNOWN_CA|ACCESS_DENIED/;

/**
 * Classifies a failure: "transient" for no answer or 5xx/408/429, "auth" for
 * 401/403 and TLS certificate failures (the server cannot be authenticated
 * with ca.crt, or refused our certificate), "other" otherwise.
 */
export function classifyFailure(err: unknown): FailureClass {
  if (!(err instanceof ImprintError)) return "other";
  if (err.kind === "network") return TLS_CERT_FAILURE.test(err.causeCode ?? "") ? "auth" : "transient";
  if (err.kind !== "http" || err.status === undefined) return "other";
  if (err.status === 401 || err.status === 403) return "auth";
  if (err.status >= 500 || err.status === 408 || err.status === 429) return "transient";
  return "other";
}

/**
 * Runs spec §8 RenewOrReenroll with the changes above: not enrolled or an
 * unreadable certificate → enroll; valid and not near expiry → "none"; valid
 * and near expiry → Tier 1; expired within the window → Tier 2; expired
 * beyond it → Tier 3. Throws ImprintError (with `attempts`) when it stops.
 */
export async function renewOrReenroll(
  ops: ImprintOperations,
  ctx: { storeDir: string; now: () => Date },
  opts: RenewOrReenrollOptions,
): Promise<RenewOutcome> {
  const threshold = opts.thresholdMs || DEFAULT_RENEWAL_THRESHOLD_MS;
  const window = opts.challengeWindowMs || DEFAULT_RENEWAL_THRESHOLD_MS;
  const attempts: ImprintAttempt[] = [];
  const enrollArgs = { buildSecret: opts.buildSecret, fingerprint: opts.fingerprint };

  const attempt = async (tier: ImprintAttempt["tier"], run: () => Promise<unknown>): Promise<unknown> => {
    try {
      await run();
      return undefined;
    } catch (err) {
      const status = err instanceof ImprintError && err.kind === "http" ? err.status : undefined;
      attempts.push({ tier, error: err instanceof Error ? err.message : String(err), ...(status !== undefined ? { status } : {}) });
      return err ?? new Error("unknown failure");
    }
  };
  const stop = (prefix: string, err: unknown): unknown => {
    // Anything but an ImprintError is a bug and surfaces unchanged.
    if (!(err instanceof ImprintError)) return err;
    return new ImprintError(err.kind, `${prefix}: ${err.message}`, { status: err.status, body: err.body, causeCode: err.causeCode, attempts, cause: err });
  };
  const enroll = async (prefix: string): Promise<RenewOutcome> => {
    const err = await attempt("enroll", () => ops.enroll(enrollArgs));
    if (err) throw stop(prefix, err);
    return { action: "reenrolled", attempts };
  };

  if (!(await isEnrolled(ctx.storeDir))) return enroll("enroll");
  let notAfter: number;
  try {
    notAfter = (await loadCertificate(ctx.storeDir)).notAfter.getTime();
  } catch {
    return enroll("enroll after cert parse failure");
  }
  const now = ctx.now().getTime();
  const expired = now > notAfter;
  if (!expired && notAfter - now >= threshold) return { action: "none", attempts };

  let tryChallenge = expired && now - notAfter <= window;
  if (!expired) {
    const err = await attempt("renew", () => ops.renew());
    if (!err) return { action: "renewed", attempts };
    const cls = classifyFailure(err);
    if (cls === "transient") throw stop("renew", err);
    tryChallenge = cls === "auth";
  }
  if (tryChallenge) {
    const err = await attempt("challenge", () => ops.challengeRenew({ fingerprint: opts.fingerprint }));
    if (!err) return { action: "challenge_renewed", attempts };
    if (classifyFailure(err) === "transient") throw stop("challenge renew", err);
  }
  return enroll("re-enroll");
}
