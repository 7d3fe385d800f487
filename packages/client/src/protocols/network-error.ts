/**
 * Tells a TLS failure from any other network failure of an HTTP exchange
 * (undici wraps Node's errors; the TLS code is on the error or its cause),
 * for the protocol clients' typed errors.
 */

const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|INVALID_CA|INVALID_PURPOSE|PATH_LENGTH|HOSTNAME_MISMATCH|EPROTO$)/;

/** Kind, message and underlying code of a failed exchange with `url`. */
export function classifyNetworkError(err: unknown, url: string): { kind: "tls" | "network"; message: string; causeCode?: string } {
  const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
  const code = e.code && !e.code.startsWith("UND_ERR") ? e.code : (e.cause?.code ?? e.code);
  const tls = code !== undefined && TLS_CODE.test(code);
  return { kind: tls ? "tls" : "network", message: `${tls ? "TLS" : "request"} to ${url} failed: ${e.message}`, ...(code !== undefined ? { causeCode: code } : {}) };
}
