/**
 * Output and exit codes of `tessera-agent`. Every command prints human text,
 * or one JSON document with --json (`run` prints JSON lines). Exit codes are
 * listed in help.ts and docs/agent.md; scripts and service managers rely on
 * them, so they never change meaning.
 */
import { ImprintError } from "../protocols/imprint/errors.js";
import { FingerprintError } from "../fingerprint/fingerprint.js";
import { StoreDirError } from "../keystore/store-dir.js";

/** Exit codes of `tessera-agent`. */
export const EXIT = {
  ok: 0,
  /** The operation failed: network, TLS, a 5xx answer, a bad answer, the disk. Worth retrying. */
  failure: 1,
  /** Bad command line (unknown command or option, bad value, missing --server or secret). */
  usage: 2,
  /** No identity in the store directory (or a build secret is needed to enroll and none was given). */
  notEnrolled: 3,
  /** The server answered 4xx: wrong build secret, enrollment rejected, bad request. Retrying will not help. */
  refused: 4,
  /** The server answered 202: the enrollment waits for operator approval; run enroll again later. */
  pending: 5,
  /** `status` only: the stored certificate has expired. */
  expired: 6,
  /** `caramel --embedded` only: the request is pending (HTTP 202); run again later (the Rust README's code). */
  embeddedPending: 69,
  /** `caramel --embedded` only: any failure but a held lock (which is 1), usage errors included. */
  embeddedError: 127,
} as const;

/** Thrown for command-line mistakes (exit 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Where a command writes, and what stops `run`. */
export interface AgentIo {
  /** Writes one line (or one JSON document) to standard output. */
  out(text: string): void;
  /** Writes one line to standard error (text mode only; --json writes everything to out). */
  err(text: string): void;
  /** --json was given. */
  json: boolean;
  /** Stops `run` when aborted; when absent `run` listens for SIGTERM and SIGINT itself. */
  signal?: AbortSignal;
  /** How `caramel` waits between polls (default setTimeout); tests and embedders pass a recorder. */
  sleep?: (ms: number) => Promise<void>;
}

/** What a 202 answer said, as far as it can be read (Tessera sends JSON with server_id and request_id). */
export interface PendingInfo {
  serverId?: string;
  requestId?: string;
  message?: string;
}

/** True when `err` is the server's 202 "waiting for approval" answer. */
export function isPending(err: unknown): boolean {
  return err instanceof ImprintError && err.kind === "http" && err.status === 202;
}

/** Reads the 202 body; imprint servers may send anything, so every field is optional. */
export function pendingInfo(err: ImprintError): PendingInfo {
  try {
    const body = JSON.parse(err.body ?? "") as Record<string, unknown>;
    const str = (k: string) => (typeof body[k] === "string" ? (body[k] as string) : undefined);
    const info: PendingInfo = {};
    if (str("server_id")) info.serverId = str("server_id");
    if (str("request_id")) info.requestId = str("request_id");
    if (str("message")) info.message = str("message");
    return info;
  } catch {
    return {};
  }
}

/** Exit code for an error (see EXIT). */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof StoreDirError) return err.reason === "not-enrolled" ? EXIT.notEnrolled : EXIT.failure;
  if (err instanceof ImprintError) {
    if (err.kind === "not-enrolled") return EXIT.notEnrolled;
    if (isPending(err)) return EXIT.pending;
    if (err.kind === "http" && err.status !== undefined && err.status >= 400 && err.status < 500) return EXIT.refused;
  }
  return EXIT.failure;
}

const CODE_NAMES: Record<number, string> = {
  [EXIT.failure]: "failure",
  [EXIT.usage]: "usage",
  [EXIT.notEnrolled]: "not_enrolled",
  [EXIT.refused]: "refused",
  [EXIT.pending]: "pending",
  [EXIT.expired]: "expired",
  [EXIT.embeddedPending]: "pending",
  [EXIT.embeddedError]: "error",
};

/** Name of an exit code as --json reports it ("failure", "usage", "not_enrolled", …). */
export function exitCodeName(code: number): string {
  return CODE_NAMES[code] ?? "ok";
}

/** The error fields --json prints; the server's body is included because it says why (e.g. "unauthorized"). */
export function errorJson(err: unknown): Record<string, unknown> {
  const code = exitCodeFor(err);
  const out: Record<string, unknown> = { code: exitCodeName(code), message: err instanceof Error ? err.message.trimEnd() : String(err) };
  if (err instanceof ImprintError) {
    out.kind = err.kind;
    if (err.status !== undefined) out.status = err.status;
    if (err.body !== undefined) out.body = err.body;
    if (err.causeCode !== undefined) out.causeCode = err.causeCode;
    if (err.attempts.length > 0) out.attempts = err.attempts;
  }
  return out;
}

/**
 * Prints an error and returns its exit code. A 202 is not an error to the
 * operator but a state, so it goes to standard output as
 * `{"status":"pending",…}` (text: one explanatory line) with exit 5.
 */
export function reportError(io: AgentIo, err: unknown): number {
  const code = exitCodeFor(err);
  if (err instanceof ImprintError && isPending(err)) {
    const info = pendingInfo(err);
    if (io.json) io.out(JSON.stringify({ status: "pending", ...info, ...(err.attempts.length > 0 ? { attempts: err.attempts } : {}) }));
    else {
      const ids = [info.serverId && `server id ${info.serverId}`, info.requestId && `request ${info.requestId}`].filter(Boolean).join(", ");
      io.out(`Enrollment is pending operator approval${ids ? ` (${ids})` : ""}; run the command again once it has been approved.`);
    }
    return code;
  }
  if (io.json) {
    io.out(JSON.stringify({ error: errorJson(err) }));
    return code;
  }
  const message = err instanceof Error ? err.message.trimEnd() : String(err);
  if (err instanceof UsageError) io.err(`tessera-agent: ${message}\nRun 'tessera-agent --help' for usage.`);
  else {
    io.err(`tessera-agent: ${message}`);
    if (err instanceof ImprintError) for (const a of err.attempts) io.err(`  tried ${a.tier}: ${a.error.trimEnd()}`);
    // Anything but our own error types is a bug; the stack is what a bug report needs.
    if (!(err instanceof ImprintError || err instanceof StoreDirError || err instanceof FingerprintError) && err instanceof Error && err.stack) {
      io.err(err.stack);
    }
  }
  return code;
}
