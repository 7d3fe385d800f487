/**
 * The one error type of the EST client (RFC 7030): a stable `kind`, and the
 * HTTP status, the server's text and the retry time when there was an answer.
 */

/**
 * What went wrong, independent of the message wording:
 * - "unauthorized": 401 after the one Basic retry, or a challenge that cannot be answered (§3.2.3);
 * - "forbidden": 403 (e.g. reenroll without a client certificate, policy refusal);
 * - "bad-request": 400, 405, 413, 415 or another 4xx (bad CSR, Subject/SAN changed on reenroll…);
 * - "not-found": 404 or 501 (unknown label, operation not offered, §4.3.2);
 * - "pending": 202 and the Retry-After wait would pass maxWaitMs (§4.2.3);
 * - "unavailable": 503 (CA busy; `retryAt` when the server said when);
 * - "server-error": 500 or another 5xx;
 * - "protocol": an answer the client cannot use (wrong status, bad encoding, ≠ 1 certificate, key mismatch…);
 * - "untrusted": bootstrap /cacerts failed the fingerprint or chain check (§4.1.1);
 * - "tls": the TLS handshake failed or the server could not be verified (§3.6);
 * - "network": no answer (refused, reset, DNS, timeout).
 */
export type EstErrorKind =
  | "unauthorized" | "forbidden" | "bad-request" | "not-found" | "pending" | "unavailable" | "server-error"
  | "protocol" | "untrusted" | "tls" | "network";

/** Fields of an EstError besides its kind and message. */
export interface EstErrorInit {
  /** HTTP status, when the server answered. */
  status?: number;
  /** The server's body as text, at most 8 KiB (error answers are text/plain, RFC 7030 §4.2.3). */
  body?: string;
  /** When the server asked to be asked again (202 or 503 with Retry-After). */
  retryAt?: Date;
  /** Code of the underlying Node error (ECONNREFUSED, ERR_TLS_CERT_ALTNAME_INVALID, …). */
  causeCode?: string;
  cause?: unknown;
}

/** A failed EST operation. */
export class EstError extends Error {
  /** What went wrong (see EstErrorKind). */
  readonly kind: EstErrorKind;
  /** HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** The server's text, at most 8 KiB. */
  readonly body: string | undefined;
  /** When to try again ("pending", "unavailable"), if the server said. */
  readonly retryAt: Date | undefined;
  /** Code of the underlying Node error, if any. */
  readonly causeCode: string | undefined;

  constructor(kind: EstErrorKind, message: string, init: EstErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "EstError";
    this.kind = kind;
    this.status = init.status;
    this.body = init.body;
    this.retryAt = init.retryAt;
    this.causeCode = init.causeCode;
  }
}

/** The kind of an HTTP status other than 200/202/204 (RFC 7030 §4.2.3, RFC 8951 §5). */
export function kindForStatus(status: number): EstErrorKind {
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404 || status === 501) return "not-found";
  if (status === 503) return "unavailable";
  if (status >= 400 && status < 500) return "bad-request";
  if (status >= 500) return "server-error";
  return "protocol";
}
