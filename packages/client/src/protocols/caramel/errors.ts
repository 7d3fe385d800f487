/**
 * The one error type of the Caramel client (spec caramel.md): a stable
 * `kind`, and the HTTP status and the server's problem detail when there was
 * an answer.
 */

/**
 * What went wrong, independent of the message wording:
 * - "ca-not-found": GET /root.crt answered 404 (the host does not run Caramel, spec §6.1 step 2);
 * - "bad-ca": the CA certificate does not parse or is not self-signed;
 * - "refused": the server refused the POST (400, 411, 413: bad subject, hash mismatch, duplicate…; `detail` says which, spec §2.1);
 * - "rejected": GET answered 403, the request was rejected by an operator (spec §2.2); a new key and request are needed;
 * - "pending": still no certificate when the wait (timeout or deadline) ran out (HTTP 202);
 * - "bad-certificate": the certificate served is not for our key, not signed by the CA, or names another client id;
 * - "server-error": a 5xx answer;
 * - "protocol": an answer the client cannot use (unexpected status, a body that is not a PEM certificate, too large);
 * - "tls": the TLS handshake failed or the server could not be verified;
 * - "network": no answer (refused, reset, DNS, timeout);
 * - "aborted": the caller's AbortSignal fired.
 */
export type CaramelErrorKind =
  | "ca-not-found" | "bad-ca" | "refused" | "rejected" | "pending" | "bad-certificate" | "server-error" | "protocol" | "tls" | "network" | "aborted";

/** Fields of a CaramelError besides its kind and message. */
export interface CaramelErrorInit {
  /** HTTP status, when the server answered. */
  status?: number;
  /** `detail` of the server's application/problem+json body (e.g. "duplicate request"), when it sent one with a string detail. */
  detail?: string;
  /** The server's body as text, at most 8 KiB. */
  body?: string;
  /** SHA-256 (lowercase hex) of the request concerned. */
  sha256?: string;
  /** Code of the underlying Node error (ECONNREFUSED, ERR_TLS_CERT_ALTNAME_INVALID, …). */
  causeCode?: string;
  cause?: unknown;
}

/** A failed Caramel operation. */
export class CaramelError extends Error {
  /** What went wrong (see CaramelErrorKind). */
  readonly kind: CaramelErrorKind;
  /** HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** The problem detail the server sent, if any. */
  readonly detail: string | undefined;
  /** The server's body as text, at most 8 KiB. */
  readonly body: string | undefined;
  /** SHA-256 of the request concerned, if any. */
  readonly sha256: string | undefined;
  /** Code of the underlying Node error, if any. */
  readonly causeCode: string | undefined;

  constructor(kind: CaramelErrorKind, message: string, init: CaramelErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "CaramelError";
    this.kind = kind;
    this.status = init.status;
    this.detail = init.detail;
    this.body = init.body;
    this.sha256 = init.sha256;
    this.causeCode = init.causeCode;
  }
}
