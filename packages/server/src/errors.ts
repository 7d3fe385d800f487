/**
 * Typed errors with stable codes. Every code is listed in docs/errors.md
 * (a test keeps the two in sync). `kind` is protocol-neutral; each protocol
 * front-end maps kinds and codes to its own wire form. `message` is public;
 * `detail` and `cause` go to logs only.
 */
import { PkiError, type PkiErrorCode } from "@tessera/pki";

/** Protocol-neutral category of an error; HTTP edges map it to a status. */
export type ErrorKind =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "too_large"
  | "unsupported_media_type"
  | "unavailable"
  | "internal";

/** HTTP status for each kind (used by the generic JSON error form). */
export const HTTP_STATUS: Record<ErrorKind, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  unavailable: 503,
  internal: 500,
};

/** Every server error code, with its kind and default public message. */
export const ERROR_CODES = {
  TESSERA_ERR_CSR_MALFORMED: { kind: "bad_request", message: "malformed certificate request" },
  TESSERA_ERR_CSR_SIGNATURE: { kind: "bad_request", message: "certificate request signature is invalid" },
  TESSERA_ERR_CSR_ALGORITHM: { kind: "bad_request", message: "unsupported algorithm in certificate request" },
  TESSERA_ERR_CSR_WEAK_KEY: { kind: "bad_request", message: "key type or size not allowed" },
  TESSERA_ERR_CSR_POLICY: { kind: "bad_request", message: "certificate request violates the profile's policy" },
  TESSERA_ERR_INPUT_MALFORMED: { kind: "bad_request", message: "malformed input" },
  TESSERA_ERR_INPUT_TOO_LARGE: { kind: "too_large", message: "request body too large" },
  TESSERA_ERR_INPUT_CONTENT_TYPE: { kind: "unsupported_media_type", message: "unsupported content type" },
  TESSERA_ERR_PROFILE_UNKNOWN: { kind: "bad_request", message: "unknown certificate profile" },
  TESSERA_ERR_AUTH_REQUIRED: { kind: "unauthorized", message: "authentication required" },
  TESSERA_ERR_AUTH_DENIED: { kind: "forbidden", message: "not allowed" },
  TESSERA_ERR_AUTH_CLIENT_CERT: { kind: "unauthorized", message: "client certificate rejected" },
  TESSERA_ERR_CREDENTIAL_INVALID: { kind: "unauthorized", message: "credential invalid, expired, exhausted or revoked" },
  TESSERA_ERR_CERT_NOT_FOUND: { kind: "not_found", message: "certificate not found" },
  TESSERA_ERR_CERT_ALREADY_REVOKED: { kind: "conflict", message: "certificate already revoked" },
  TESSERA_ERR_DEVICE_NOT_FOUND: { kind: "not_found", message: "device not found" },
  TESSERA_ERR_DEVICE_REVOKED: { kind: "forbidden", message: "device is revoked" },
  TESSERA_ERR_DEVICE_PENDING: { kind: "forbidden", message: "device is waiting for approval" },
  TESSERA_ERR_RENEWAL_DENIED: { kind: "unauthorized", message: "renewal denied" },
  TESSERA_ERR_LINEAGE_CONFLICT: { kind: "conflict", message: "the device's certificate changed concurrently" },
  TESSERA_ERR_REQUEST_REJECTED: { kind: "forbidden", message: "enrollment request was rejected" },
  TESSERA_ERR_REQUEST_NOT_FOUND: { kind: "not_found", message: "enrollment request not found" },
  TESSERA_ERR_REQUEST_ALREADY_DECIDED: { kind: "conflict", message: "enrollment request already decided" },
  TESSERA_ERR_REQUEST_DUPLICATE: { kind: "conflict", message: "a request with this CSR already exists" },
  TESSERA_ERR_NOT_FOUND: { kind: "not_found", message: "not found" },
  TESSERA_ERR_METHOD_NOT_ALLOWED: { kind: "bad_request", message: "method not allowed" },
  TESSERA_ERR_ADMIN_UNAUTHENTICATED: { kind: "unauthorized", message: "sign in with an operator token" },
  TESSERA_ERR_ADMIN_FORBIDDEN: { kind: "forbidden", message: "your role does not allow this" },
  TESSERA_ERR_ADMIN_CSRF: { kind: "forbidden", message: "missing or wrong X-CSRF-Token" },
  TESSERA_ERR_CA_NOT_INITIALIZED: { kind: "unavailable", message: "certificate authority not initialized" },
  TESSERA_ERR_CA_EXISTS: { kind: "conflict", message: "certificate authority already exists" },
  TESSERA_ERR_CA_KEY: { kind: "internal", message: "CA key cannot be loaded" },
  TESSERA_ERR_CA_IMPORT: { kind: "bad_request", message: "CA files cannot be imported" },
  TESSERA_ERR_CA_ROLLOVER: { kind: "conflict", message: "root CA rollover refused" },
  TESSERA_ERR_CONFIG_INVALID: { kind: "bad_request", message: "configuration is invalid" },
  TESSERA_ERR_STORE_UNAVAILABLE: { kind: "unavailable", message: "store unavailable" },
  TESSERA_ERR_STORE_CONFLICT: { kind: "conflict", message: "conflicting write" },
  TESSERA_ERR_STORE_MIGRATION: { kind: "internal", message: "store schema migration failed" },
  TESSERA_ERR_SHUTTING_DOWN: { kind: "unavailable", message: "server is shutting down" },
  TESSERA_ERR_INTERNAL: { kind: "internal", message: "internal error" },
} as const satisfies Record<string, { kind: ErrorKind; message: string }>;

/** A stable error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** A typed Tessera error: stable `code`, neutral `kind`, public `message`, private `detail`. */
export class TesseraError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly detail: string | undefined;
  constructor(code: ErrorCode, opts: { message?: string; detail?: string; cause?: unknown } = {}) {
    super(opts.message ?? ERROR_CODES[code].message, { cause: opts.cause });
    this.name = "TesseraError";
    this.code = code;
    this.kind = ERROR_CODES[code].kind;
    this.detail = opts.detail;
  }

  /** HTTP status for this error's kind. */
  get status(): number {
    return HTTP_STATUS[this.kind];
  }
}

const FROM_PKI: Partial<Record<PkiErrorCode, ErrorCode>> = {
  TESSERA_ERR_PKI_MALFORMED_DER: "TESSERA_ERR_CSR_MALFORMED",
  TESSERA_ERR_PKI_MALFORMED_PEM: "TESSERA_ERR_CSR_MALFORMED",
  TESSERA_ERR_PKI_CSR_SIGNATURE: "TESSERA_ERR_CSR_SIGNATURE",
  TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM: "TESSERA_ERR_CSR_ALGORITHM",
  TESSERA_ERR_PKI_WEAK_KEY: "TESSERA_ERR_CSR_WEAK_KEY",
  TESSERA_ERR_PKI_INVALID_ARGUMENT: "TESSERA_ERR_INPUT_MALFORMED",
};

/**
 * Normalises anything thrown into a TesseraError: pki errors map to CSR/input
 * codes, unknown errors become TESSERA_ERR_INTERNAL (their text stays private).
 */
export function toTesseraError(err: unknown): TesseraError {
  if (err instanceof TesseraError) return err;
  if (err instanceof PkiError) {
    return new TesseraError(FROM_PKI[err.code] ?? "TESSERA_ERR_INPUT_MALFORMED", { message: err.message, detail: err.detail, cause: err });
  }
  return new TesseraError("TESSERA_ERR_INTERNAL", { detail: err instanceof Error ? err.message : String(err), cause: err });
}
