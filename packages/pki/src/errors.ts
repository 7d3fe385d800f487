/**
 * Errors raised by the pki toolkit. Each carries a stable code
 * (`TESSERA_ERR_PKI_*`), a public message safe to show a client, and a
 * private detail for logs. The server maps these codes to HTTP answers.
 */
export type PkiErrorCode =
  | "TESSERA_ERR_PKI_MALFORMED_DER"
  | "TESSERA_ERR_PKI_MALFORMED_PEM"
  | "TESSERA_ERR_PKI_CSR_SIGNATURE"
  | "TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM"
  | "TESSERA_ERR_PKI_WEAK_KEY"
  | "TESSERA_ERR_PKI_KEY_MISMATCH"
  | "TESSERA_ERR_PKI_BAD_PASSPHRASE"
  | "TESSERA_ERR_PKI_INVALID_ARGUMENT";

/** A typed pki failure: `code` is stable, `message` is public, `detail` is for logs only. */
export class PkiError extends Error {
  readonly code: PkiErrorCode;
  readonly detail: string | undefined;
  constructor(code: PkiErrorCode, message: string, detail?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PkiError";
    this.code = code;
    this.detail = detail;
  }
}
