/**
 * The one error type of the imprint client: a neutral `kind`, the HTTP status
 * and body when there was an answer, and the tiers tried by renewOrReenroll.
 */

/**
 * What went wrong: "http" (an answer other than 200), "network" (no answer:
 * refused, reset, DNS, TLS, timeout), "invalid-response" (a 200 that fails the
 * checks), "not-enrolled" (the store lacks what the operation needs),
 * "unsupported-key" (the stored key cannot sign a proof), "storage" (the new
 * identity could not be written).
 */
export type ImprintErrorKind = "http" | "network" | "invalid-response" | "not-enrolled" | "unsupported-key" | "storage";

/** One tier renewOrReenroll tried and how it failed. */
export interface ImprintAttempt {
  tier: "renew" | "challenge" | "enroll";
  /** The failure's message. */
  error: string;
  /** HTTP status when the server answered. */
  status?: number;
}

/** Fields of an ImprintError besides its message. */
export interface ImprintErrorInit {
  status?: number;
  body?: string;
  /** Code of the underlying Node error (ECONNREFUSED, ETIMEDOUT, CERT_HAS_EXPIRED, …). */
  causeCode?: string;
  attempts?: ImprintAttempt[];
  cause?: unknown;
}

/** A failed imprint operation; `message` uses imprint's wording (e.g. `enrollment failed (HTTP 401): unauthorized\n`). */
export class ImprintError extends Error {
  /** What went wrong, independent of the message wording. */
  readonly kind: ImprintErrorKind;
  /** HTTP status (kind "http"). */
  readonly status: number | undefined;
  /** Response body as received, at most 1 MiB (kind "http"). */
  readonly body: string | undefined;
  /** Code of the underlying Node error, if any. */
  readonly causeCode: string | undefined;
  /** Tiers tried before giving up (renewOrReenroll only; empty otherwise). */
  readonly attempts: ImprintAttempt[];

  constructor(kind: ImprintErrorKind, message: string, init: ImprintErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "ImprintError";
    this.kind = kind;
    this.status = init.status;
    this.body = init.body;
    this.causeCode = init.causeCode;
    this.attempts = init.attempts ?? [];
  }
}
