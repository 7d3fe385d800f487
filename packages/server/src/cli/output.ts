/**
 * CLI output and exit codes. Every command prints human text, or one JSON
 * document with --json. Exit codes are documented in docs/cli.md.
 */
import { TesseraError, toTesseraError, type ErrorKind } from "../errors.js";

/** Exit codes of `tessera`. */
export const EXIT = {
  ok: 0,
  /** The operation failed (store, CA key, internal). */
  failure: 1,
  /** Bad command line. */
  usage: 2,
  /** Configuration invalid (`config check` found problems). */
  config: 3,
  /** The named certificate, secret or file does not exist. */
  notFound: 4,
  /** Refused: conflict (already exists / revoked) or bad input (CSR, PEM). */
  refused: 5,
} as const;

/** Thrown for command-line mistakes (exit 2). */
export class UsageError extends Error {}

/** Where a command writes. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  json: boolean;
}

/** Exit code for an error. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  const e = toTesseraError(err);
  if (e.code === "TESSERA_ERR_CONFIG_INVALID") return EXIT.config;
  const byKind: Partial<Record<ErrorKind, number>> = { not_found: EXIT.notFound, conflict: EXIT.refused, bad_request: EXIT.refused, unauthorized: EXIT.refused, forbidden: EXIT.refused, too_large: EXIT.refused, unsupported_media_type: EXIT.refused };
  return byKind[e.kind] ?? EXIT.failure;
}

/** Prints an error (JSON with --json) and returns its exit code. */
export function reportError(io: Io, err: unknown): number {
  const code = exitCodeFor(err);
  if (err instanceof UsageError) {
    if (io.json) io.out(JSON.stringify({ error: { code: "usage", message: err.message } }));
    else io.err(`tessera: ${err.message}\nRun 'tessera --help' for usage.`);
    return code;
  }
  const e = toTesseraError(err);
  if (io.json) io.out(JSON.stringify({ error: { code: e.code, message: e.message, detail: e.detail } }));
  else io.err(`tessera: ${e.message}${e.detail ? ` (${e.detail})` : ""} [${e.code}]`);
  return code;
}

export { TesseraError };
