/**
 * Device-side Caramel client (spec caramel.md §2, §6): downloads the CA
 * certificate on first contact, posts a request under its SHA-256, polls for
 * the certificate with the Rust client's backoff, and checks what it gets.
 * Wire-compatible with Caramel 1.9.6 and Tessera's Caramel front-end, whose
 * additions (Last-Modified / 304, client certificates) it uses when present.
 */
import * as tls from "node:tls";
import type { Dispatcher } from "undici";
import { importPrivateKey, keysMatch, certificatePublicKey, parseCertificate, pemDecodeAll, type ParsedCertificate } from "@tessera/pki";
import { CaramelError } from "./errors.js";
import {
  buildCaramelCsr, clientIdProblems, readCaramelCa, readCaramelCsr, verifyCaramelCertificate, type CaramelCa, type CaramelCsr,
} from "./request.js";
import { caramelBaseUrl, caramelExchange, errorText, header, problemOf, userAgentWithId, type CaramelHttpAnswer, type CaramelTls } from "./wire.js";
import type * as crypto from "node:crypto";
import type { CaramelClientOptions, CaramelEnsureOptions, CaramelEnsureResult, CaramelPollOptions, CaramelPollResult, CaramelRootOptions } from "./types.js";

export type * from "./types.js";

/** Version of the client package, sent in the default User-Agent (a test keeps it equal to package.json). */
export const CARAMEL_CLIENT_VERSION = "0.1.0";
/** Default deadline of one HTTP exchange, in milliseconds. */
export const DEFAULT_CARAMEL_TIMEOUT_MS = 30_000;

/** Longest wait between two polls (rn `calculate_backoff`). */
export const CARAMEL_BACKOFF_MAX_MS = 23_000;
/** Base of the backoff: attempt n waits 870 ms · 2^n. */
export const CARAMEL_BACKOFF_BASE_MS = 870;

/**
 * The Rust client's wait after the n-th poll answered pending (n = 1, 2, …;
 * rn `calculate_backoff`): min(0.87 s · 2^n, 23 s), times a random factor
 * in [0.85, 1.15). In milliseconds.
 */
export function caramelBackoffMs(attempt: number, random: () => number = Math.random): number {
  const bounded = Math.min(CARAMEL_BACKOFF_MAX_MS, CARAMEL_BACKOFF_BASE_MS * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(bounded * (1 + 0.3 * (random() - 0.5)));
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CaramelError("aborted", "aborted while waiting"));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CaramelError("aborted", "aborted while waiting"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function trustFor(caPem: string, publicRoots: boolean): string[] {
  return publicRoots ? [...tls.rootCertificates, caPem] : [caPem];
}

function lastModifiedOf(answer: CaramelHttpAnswer): Date | undefined {
  const v = header(answer, "last-modified");
  const t = v === undefined ? NaN : Date.parse(v);
  return Number.isNaN(t) ? undefined : new Date(t);
}

/** The CaramelError for an answer no operation expects: "server-error" for 5xx, else "protocol"; the problem detail is quoted. */
function unexpected(answer: CaramelHttpAnswer, what: string, sha256?: string): CaramelError {
  const { title, detail } = problemOf(answer.body);
  const text = errorText(answer.body);
  const why = detail ?? title ?? text.trim().split(/\r?\n/)[0] ?? "";
  return new CaramelError(answer.status >= 500 ? "server-error" : "protocol", `${what}: unexpected HTTP ${answer.status}${why ? `: ${why}` : ""}`, {
    status: answer.status, body: text, ...(detail !== undefined ? { detail } : {}), ...(sha256 !== undefined ? { sha256 } : {}),
  });
}

/**
 * A Caramel client for one server, CA and client id. Every exchange uses a
 * fresh TLS connection that trusts the CA certificate (and Node's public
 * roots unless trustPublicRoots is false). Failures are CaramelError;
 * invalid arguments are TypeError.
 */
export class CaramelClient {
  /** The CA certificate, parsed. */
  readonly ca: CaramelCa;
  /** The server's base URL (https, no trailing slash). */
  readonly baseUrl: string;
  readonly clientId: string;
  readonly userAgent: string;
  private readonly tls: CaramelTls;
  private readonly timeoutMs: number;
  private readonly dispatcher: Dispatcher | undefined;

  constructor(opts: CaramelClientOptions) {
    const problems: string[] = [];
    let base = "";
    try {
      base = caramelBaseUrl(opts?.server);
    } catch (err) {
      problems.push((err as Error).message);
    }
    let ca: CaramelCa | undefined;
    try {
      if (typeof opts?.caCert !== "string") throw new Error("caCert must be PEM text");
      ca = readCaramelCa(opts.caCert);
    } catch (err) {
      problems.push(`caCert: ${(err as Error).message}`);
    }
    problems.push(...clientIdProblems(opts?.clientId));
    const cc = opts?.clientCertificate;
    if (cc !== undefined) {
      try {
        if (typeof cc.cert !== "string" || typeof cc.key !== "string") throw new Error("cert and key must be PEM text");
        const leaf = pemDecodeAll(cc.cert).find((b) => b.label === "CERTIFICATE");
        if (!leaf) throw new Error("cert holds no PEM CERTIFICATE block");
        if (!keysMatch(importPrivateKey(cc.key), certificatePublicKey(parseCertificate(leaf.der)))) throw new Error("key does not belong to the certificate");
      } catch (err) {
        problems.push(`clientCertificate: ${(err as Error).message}`);
      }
    }
    if (opts?.timeoutMs !== undefined && !(Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0)) problems.push("timeoutMs must be a positive number");
    if (opts?.userAgent !== undefined && (typeof opts.userAgent !== "string" || !/^[\x20-\x7e]+$/.test(opts.userAgent))) {
      problems.push("userAgent must be printable ASCII");
    }
    if (problems.length > 0 || !ca) throw new TypeError(`invalid CaramelClient options: ${problems.join("; ")}`);
    this.ca = ca;
    this.baseUrl = base;
    this.clientId = opts.clientId;
    this.userAgent = opts.userAgent ?? userAgentWithId(`tessera-caramel/${CARAMEL_CLIENT_VERSION}`, opts.clientId);
    this.tls = { ca: trustFor(ca.pem, opts.trustPublicRoots !== false), ...(cc ? { cert: cc.cert, key: cc.key } : {}) };
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_CARAMEL_TIMEOUT_MS;
    this.dispatcher = opts.dispatcher;
  }

  /**
   * GET /root.crt (spec §2, §6.1 step 2): the CA certificate of a server
   * whose CA is not known yet, checked to be self-signed. The server's TLS
   * certificate must verify against `trust` (default Node's public roots).
   * Throws CaramelError "ca-not-found" on 404, "bad-ca", or as any exchange.
   * Use it once and keep the result: every later run should use the stored CA.
   */
  static async fetchRootCertificate(opts: CaramelRootOptions): Promise<CaramelCa> {
    const url = `${caramelBaseUrl(opts.server)}/root.crt`;
    const trust = opts.trust === undefined ? [...tls.rootCertificates] : typeof opts.trust === "string" ? [opts.trust] : [...opts.trust];
    const answer = await caramelExchange({
      method: "GET", url, headers: { "User-Agent": opts.userAgent ?? `tessera-caramel/${CARAMEL_CLIENT_VERSION}` }, tls: { ca: trust },
      timeoutMs: opts.timeoutMs ?? DEFAULT_CARAMEL_TIMEOUT_MS,
      ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}), ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (answer.status === 404) throw new CaramelError("ca-not-found", `the CA certificate was not found at ${url} (HTTP 404): is this a Caramel server?`, { status: 404 });
    if (answer.status !== 200) throw unexpected(answer, `GET ${url}`);
    return readCaramelCa(answer.body);
  }

  /** A new request for this client id under this CA, signed with `privateKey` (spec §6.1 step 3), as canonical PEM. */
  buildCsr(privateKey: crypto.KeyObject): CaramelCsr {
    return buildCaramelCsr(privateKey, this.ca.certificate, this.clientId);
  }

  /**
   * POST /<sha256> with the request (spec §2.1). Resolves when the server
   * stored it (202, or 200); throws CaramelError "refused" for 400, 411 and
   * 413 with the server's problem detail (bad subject, hash mismatch,
   * "duplicate request"…), "server-error" for 5xx, "protocol" otherwise.
   */
  async submit(csr: string | CaramelCsr, opts: { signal?: AbortSignal } = {}): Promise<{ state: "pending"; sha256: string }> {
    const req = this.request(csr);
    const answer = await this.send("POST", req.sha256, {}, Buffer.from(req.pem, "latin1"), opts.signal);
    if (answer.status === 202 || answer.status === 200) return { state: "pending", sha256: req.sha256 };
    if ([400, 411, 413].includes(answer.status)) {
      const { title, detail } = problemOf(answer.body);
      const why = detail ?? title ?? (errorText(answer.body).trim() || "no reason given");
      throw new CaramelError("refused", `the server refused the request ${req.sha256} (HTTP ${answer.status}): ${why}`, {
        status: answer.status, body: errorText(answer.body), sha256: req.sha256, ...(detail !== undefined ? { detail } : {}),
      });
    }
    throw unexpected(answer, `POST of request ${req.sha256}`, req.sha256);
  }

  /**
   * GET /<sha256> (spec §2.2): "signed" with the certificate (checked: our
   * key, signed by the CA, CN = client id; else CaramelError
   * "bad-certificate"), "pending" (202), "unchanged" (304, Tessera, only
   * with ifModifiedSince), "rejected" (403) or "unknown" (404: post it).
   */
  async poll(csr: string | CaramelCsr, opts: CaramelPollOptions = {}): Promise<CaramelPollResult> {
    const req = this.request(csr);
    const headers: Record<string, string> = opts.ifModifiedSince ? { "If-Modified-Since": opts.ifModifiedSince.toUTCString() } : {};
    const answer = await this.send("GET", req.sha256, headers, undefined, opts.signal);
    switch (answer.status) {
      case 200: {
        const { certificate, pem } = verifyCaramelCertificate(answer.body, req, this.ca, this.clientId);
        const lastModified = lastModifiedOf(answer);
        return { state: "signed", certificatePem: pem, certificate, ...(lastModified ? { lastModified } : {}) };
      }
      case 202:
        return { state: "pending" };
      case 304:
        return { state: "unchanged" };
      case 403:
        return { state: "rejected" };
      case 404:
        return { state: "unknown" };
      default:
        throw unexpected(answer, `GET of request ${req.sha256}`, req.sha256);
    }
  }

  /**
   * Makes sure the request has a certificate (the Rust client's loop, spec
   * §6.1 steps 5–6): GET; unknown → POST (a "duplicate request" refusal
   * means another run posted it: fine) and GET again; pending → wait
   * (caramelBackoffMs) and GET again until maxWaitMs is spent. Throws
   * CaramelError "pending" when the wait runs out, "rejected" on 403, or
   * as submit and poll do.
   */
  async ensure(opts: CaramelEnsureOptions): Promise<CaramelEnsureResult> {
    const req = this.request(opts.csr);
    const maxWaitMs = opts.maxWaitMs ?? Infinity;
    if (!(maxWaitMs >= 0)) throw new TypeError("maxWaitMs must be ≥ 0");
    const sleep = opts.sleep ?? defaultSleep;
    const random = opts.random ?? Math.random;
    // The certificate held now counts only if it is this request's (else a 304 would keep a wrong one).
    let current: { certificate: ParsedCertificate; pem: string; lastModified?: Date } | undefined;
    if (opts.current) {
      try {
        current = { ...verifyCaramelCertificate(opts.current.certificatePem, req, this.ca, this.clientId), ...(opts.current.lastModified ? { lastModified: opts.current.lastModified } : {}) };
      } catch {
        current = undefined;
      }
    }
    let spentMs = 0;
    let polls = 0;
    let posted = false;
    for (let attempt = 1; ; attempt++) {
      if (opts.signal?.aborted) throw new CaramelError("aborted", "aborted", { sha256: req.sha256 });
      const started = performance.now();
      polls++;
      const r = await this.poll(req, { ...(current?.lastModified ? { ifModifiedSince: current.lastModified } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
      if (r.state === "unknown" && !posted) {
        try {
          await this.submit(req, opts.signal ? { signal: opts.signal } : {});
        } catch (err) {
          if (!(err instanceof CaramelError && err.kind === "refused" && err.detail === "duplicate request")) throw err;
        }
        posted = true;
        spentMs += performance.now() - started;
        // As the Rust client: GET again at once; the attempt still counts for the backoff.
        continue;
      }
      spentMs += performance.now() - started;
      const done = (state: "signed" | "unchanged", pem: string, certificate: ParsedCertificate, lastModified?: Date): CaramelEnsureResult => ({
        state, certificatePem: pem, certificate, ...(lastModified ? { lastModified } : {}), sha256: req.sha256, posted, polls, spentMs: Math.round(spentMs),
      });
      if (r.state === "signed") {
        if (current && current.certificate.der.equals(r.certificate.der)) return done("unchanged", current.pem, current.certificate, r.lastModified ?? current.lastModified);
        return done("signed", r.certificatePem, r.certificate, r.lastModified);
      }
      if (r.state === "unchanged" && current) return done("unchanged", current.pem, current.certificate, current.lastModified);
      if (r.state === "rejected") {
        throw new CaramelError("rejected", `the server rejected the request ${req.sha256} (HTTP 403): a new key and request are needed`, { status: 403, sha256: req.sha256 });
      }
      if (r.state === "unknown") {
        throw new CaramelError("protocol", `the server does not know the request ${req.sha256} (HTTP 404) right after it was posted`, { status: 404, sha256: req.sha256 });
      }
      // Pending (202, or a 304 without a certificate to keep: the Rust client reads 304 as pending too).
      const left = maxWaitMs - spentMs;
      if (left <= 0) {
        throw new CaramelError("pending", `no certificate within ${formatMs(maxWaitMs)}: the request ${req.sha256} is still pending (HTTP 202), time spent ${formatMs(spentMs)}`, {
          status: 202, sha256: req.sha256,
        });
      }
      const delayMs = Math.min(caramelBackoffMs(attempt, random), left);
      opts.onWait?.({ attempt, delayMs, spentMs: Math.round(spentMs), sha256: req.sha256 });
      await sleep(delayMs, opts.signal);
      spentMs += delayMs;
    }
  }

  private request(csr: string | CaramelCsr): CaramelCsr {
    return typeof csr === "string" ? readCaramelCsr(csr) : csr;
  }

  private send(method: "GET" | "POST", sha256: string, headers: Record<string, string>, body?: Buffer, signal?: AbortSignal): Promise<CaramelHttpAnswer> {
    return caramelExchange({
      method, url: `${this.baseUrl}/${sha256}`, headers: { "User-Agent": this.userAgent, ...headers }, tls: this.tls, timeoutMs: this.timeoutMs,
      ...(body !== undefined ? { body } : {}), ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}), ...(signal ? { signal } : {}),
    });
  }
}

/** "1.5s", "2m 3s": for messages. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "forever";
  const s = Math.round(ms / 100) / 10;
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return `${m}m ${Math.round(s - m * 60)}s`;
}
