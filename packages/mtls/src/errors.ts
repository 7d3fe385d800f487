/**
 * Errors of the mTLS middleware: the four refusals a request can get (each
 * with a fixed HTTP status) and the configuration and revocation-source
 * failures reported to callbacks. Codes are stable; messages are public.
 */

/** Stable codes of @tessera/mtls. */
export type MtlsErrorCode =
  /** No client certificate on the connection (HTTP 401). */
  | "TESSERA_ERR_MTLS_CERT_REQUIRED"
  /** Untrusted chain, expired, not yet valid or wrong purpose (HTTP 401). */
  | "TESSERA_ERR_MTLS_CERT_INVALID"
  /** Revoked, or revocation status unknown (HTTP 403). */
  | "TESSERA_ERR_MTLS_CERT_REVOKED"
  /** The `authorize` callback said no (HTTP 403). */
  | "TESSERA_ERR_MTLS_FORBIDDEN"
  /** Options rejected when the verifier, source or feed was created. */
  | "TESSERA_ERR_MTLS_CONFIG"
  /** A CRL could not be read or fetched. */
  | "TESSERA_ERR_MTLS_CRL_UNAVAILABLE"
  /** A CRL was read but refused: malformed, bad signature, unknown issuer, older than the one held, or unusable critical extension. */
  | "TESSERA_ERR_MTLS_CRL_INVALID"
  /** The revocation feed connection failed or sent something unreadable. */
  | "TESSERA_ERR_MTLS_FEED";

/** HTTP status of each refusal code. */
export const REFUSAL_STATUS = {
  TESSERA_ERR_MTLS_CERT_REQUIRED: 401,
  TESSERA_ERR_MTLS_CERT_INVALID: 401,
  TESSERA_ERR_MTLS_CERT_REVOKED: 403,
  TESSERA_ERR_MTLS_FORBIDDEN: 403,
} as const;

/** A code that refuses a request. */
export type RefusalCode = keyof typeof REFUSAL_STATUS;

/** A failure of @tessera/mtls with a stable `code`; `message` is safe to show a client. */
export class MtlsError extends Error {
  readonly code: MtlsErrorCode;
  constructor(code: MtlsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MtlsError";
    this.code = code;
  }
}

/** Why a request was refused: HTTP status, stable code and public message. */
export interface Refusal {
  status: 401 | 403;
  code: RefusalCode;
  message: string;
}

/** Builds a refusal for `code` (status from REFUSAL_STATUS). */
export function refusal(code: RefusalCode, message: string): Refusal {
  return { status: REFUSAL_STATUS[code], code, message };
}

/** The JSON body of a refusal: `{"error":{"code":…,"message":…}}`, as Tessera's own routes answer. */
export function refusalBody(r: Pick<Refusal, "code" | "message">): string {
  return JSON.stringify({ error: { code: r.code, message: r.message } });
}
