/**
 * The options and results of the Caramel client (client.ts), which
 * re-exports them.
 */
import type { Dispatcher } from "undici";
import type { ParsedCertificate } from "@tessera/pki";
import type { CaramelCsr } from "./request.js";

/** Options of CaramelClient, validated by the constructor (a TypeError lists every problem). */
export interface CaramelClientOptions {
  /** The server: "host[:port]" as the reference clients take it, or an https URL (a path prefix is kept). */
  server: string;
  /**
   * The Caramel CA certificate (PEM; the first CERTIFICATE block is used; it
   * must be self-signed). Requests copy its subject, certificates must be
   * signed by it, and the server's TLS certificate may chain to it.
   */
  caCert: string;
  /** The client id: the CN of the requests (1–64 characters). */
  clientId: string;
  /** User-Agent sent with every request (default `tessera-caramel/<version> (<clientId>)`). */
  userAgent?: string;
  /**
   * TLS client certificate (PEM) and its PEM key, presented on every
   * connection: Tessera's server may sign a new request at once when it is
   * the device's current certificate; Caramel ignores it.
   */
  clientCertificate?: { cert: string; key: string };
  /** Deadline of each HTTP exchange in milliseconds (default 30 000). */
  timeoutMs?: number;
  /**
   * Trust Node's bundled public roots besides the CA certificate for the
   * server's TLS certificate (default true: the reference clients try the
   * system store, then the CA file, spec §1).
   */
  trustPublicRoots?: boolean;
  /** An undici dispatcher replacing the built-in connections (trust and client certificate then come from it). */
  dispatcher?: Dispatcher;
}

/** Options of CaramelClient.fetchRootCertificate. */
export interface CaramelRootOptions {
  /** The server, as in CaramelClientOptions. */
  server: string;
  /**
   * Roots (PEM) trusted for the server's TLS certificate instead of Node's
   * bundled public roots. Default: the public roots only, as the Rust client
   * (a server whose TLS certificate chains to its own CA cannot be trusted
   * before that CA is known).
   */
  trust?: string | readonly string[];
  userAgent?: string;
  timeoutMs?: number;
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
}

/** What a GET of a request's certificate said (spec §2.2, plus Tessera's 304). */
export type CaramelPollResult =
  | {
    state: "signed";
    /** The certificate as canonical PEM, checked: our key, signed by the CA, CN = client id. */
    certificatePem: string;
    certificate: ParsedCertificate;
    /** The answer's Last-Modified (Tessera sends it; Caramel does not). */
    lastModified?: Date;
  }
  | { state: "pending" }
  | { state: "unchanged" }
  | { state: "rejected" }
  | { state: "unknown" };

/** Options of CaramelClient.poll. */
export interface CaramelPollOptions {
  /** Sent as If-Modified-Since: Tessera answers 304 "unchanged" when its certificate is not newer. */
  ifModifiedSince?: Date;
  signal?: AbortSignal;
}

/** The certificate a caller already holds for the request. */
export interface CaramelCurrentCertificate {
  certificatePem: string;
  /** When it was last modified (its file's mtime or the Last-Modified it came with): sent as If-Modified-Since. */
  lastModified?: Date;
}

/** Options of CaramelClient.ensure. */
export interface CaramelEnsureOptions {
  /** The request (canonical PEM, exactly as posted) or one from buildCsr. */
  csr: string | CaramelCsr;
  /** The certificate held now, if any: a 304 or the same certificate again is "unchanged". */
  current?: CaramelCurrentCertificate;
  /** Longest total wait for a signature in milliseconds (default Infinity, as the Rust client without -t; 0 = one round, no waiting). */
  maxWaitMs?: number;
  signal?: AbortSignal;
  /** How to wait (default setTimeout, ended early by `signal`); tests inject a recorder. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Source of the backoff jitter, in [0, 1) (default Math.random). */
  random?: () => number;
  /** Told before every wait. */
  onWait?: (event: { attempt: number; delayMs: number; spentMs: number; sha256: string }) => void;
}

/** How ensure ended. */
export interface CaramelEnsureResult {
  /** "signed": a certificate other than `current`; "unchanged": `current` is still the one (304, or the same bytes). */
  state: "signed" | "unchanged";
  certificatePem: string;
  certificate: ParsedCertificate;
  /** Last-Modified of the answer, when the server sent one. */
  lastModified?: Date;
  sha256: string;
  /** True when the request was posted during this call (the server did not know it). */
  posted: boolean;
  /** GET requests made. */
  polls: number;
  /** Milliseconds spent (waits plus requests). */
  spentMs: number;
}
