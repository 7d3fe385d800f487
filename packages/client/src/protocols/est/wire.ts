/**
 * EST's wire level on the device side (RFC 7030 §3, RFC 8951; spec est.md
 * §2, §4): one HTTP/1.1 exchange per fresh TLS connection through undici,
 * server verification (§3.6, with the id-kp-cmcRA fallback of §3.6.1), the
 * one Basic challenge and the 202 + Retry-After loop, and response bodies
 * decoded as base64 whatever their Content-Transfer-Encoding.
 */
import * as tls from "node:tls";
import { Agent, buildConnector, request } from "undici";
import { decodeBase64Lenient, encodeBase64Lines, extendedKeyUsages, parseCertificate, pemDecodeAll, readWhole } from "@tessera/pki";
import { EstError, kindForStatus } from "./errors.js";
import { classifyNetworkError } from "../network-error.js";
import { readBoundedBody } from "../bounded-body.js";

/** id-kp-cmcRA (RFC 6402 §2.10): an explicit-TA client may accept it instead of a name match (RFC 7030 §3.6.1). */
export const OID_CMC_RA = "1.3.6.1.5.5.7.3.28";
/** Largest answer read; EST answers are a few KiB. */
export const MAX_ANSWER_BYTES = 1 << 20;
/** Largest part of an error body kept in EstError.body (BC reads the same, RFC 7030 §4.2.3). */
export const MAX_ERROR_TEXT = 8192;
// A server that answers 202 with "Retry-After: 0" over and over must not make us spin.
const MIN_RETRY_MS = 1000;

/** The EST operations this client uses (RFC 7030 §3.2.2), plus fullcmc, which a label may not be named after either. */
export const EST_OPERATIONS = ["cacerts", "simpleenroll", "simplereenroll", "csrattrs", "serverkeygen", "fullcmc"] as const;

/** An EST operation (RFC 7030 §3.2.2). */
export type EstOperation = Exclude<(typeof EST_OPERATIONS)[number], "fullcmc">;

/** The TLS side of a connection. */
export interface EstTlsSettings {
  /** PEM trust anchors; alone trusted when verifying. */
  ca?: string;
  /** PEM client certificate (leaf first, optionally its chain) and key. */
  cert?: string;
  key?: string;
  /** false only for the bootstrap /cacerts (§4.1.1): the caller checks the server chain itself. */
  verify: boolean;
}

/** An answer as read off the wire. */
export interface EstHttpAnswer {
  status: number;
  /** Header values by lowercase name. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** DER certificates the server presented in the TLS handshake, leaf first. */
  peerChain: Buffer[];
  /** The server's leaf certificate as Node reports it (for checkServerIdentity). */
  peerCertificate: tls.PeerCertificate | undefined;
}

/** One HTTP exchange. */
export interface EstHttpRequest {
  method: "GET" | "POST";
  url: string;
  headers: Record<string, string>;
  body?: Buffer;
  tls: EstTlsSettings;
  /** Deadline of the whole exchange, connect to last byte, in milliseconds. */
  timeoutMs: number;
}

/**
 * RFC 6125 name check through Node's checkServerIdentity; when it fails, a
 * server certificate carrying EKU id-kp-cmcRA is accepted instead (RFC 7030
 * §3.6.1; only reached after the chain verified to the explicit TAs).
 */
export function checkEstServerIdentity(host: string, cert: tls.PeerCertificate): Error | undefined {
  const err = tls.checkServerIdentity(host, cert);
  if (!err) return undefined;
  return hasCmcRa(cert.raw) ? undefined : err;
}

/** True when the DER certificate's extKeyUsage lists id-kp-cmcRA. */
export function hasCmcRa(der: Uint8Array | undefined): boolean {
  if (!der) return false;
  try {
    return extendedKeyUsages(parseCertificate(der))?.includes(OID_CMC_RA) ?? false;
  } catch {
    return false;
  }
}

function chainOf(peer: tls.DetailedPeerCertificate | undefined): Buffer[] {
  const out: Buffer[] = [];
  let c: tls.DetailedPeerCertificate | undefined = peer;
  while (c && c.raw && !out.some((d) => d.equals(c!.raw))) {
    out.push(Buffer.from(c.raw));
    c = c.issuerCertificate;
  }
  return out;
}

function failure(err: unknown, url: string): EstError {
  const { kind, message, causeCode } = classifyNetworkError(err, url);
  return new EstError(kind, message, { cause: err, ...(causeCode !== undefined ? { causeCode } : {}) });
}

/**
 * Sends one request on a fresh connection (offering TLS 1.2 and 1.3,
 * HTTP/1.1 only) and reads the whole answer, whatever its status. Throws
 * EstError "tls" or "network" when no answer arrives in time.
 */
export async function httpExchange(req: EstHttpRequest): Promise<EstHttpAnswer> {
  let peerChain: Buffer[] = [];
  let peerCertificate: tls.PeerCertificate | undefined;
  const base = buildConnector({
    timeout: req.timeoutMs,
    minVersion: "TLSv1.2",
    maxCachedSessions: 0,
    rejectUnauthorized: req.tls.verify,
    checkServerIdentity: req.tls.verify ? checkEstServerIdentity : () => undefined,
    ...(req.tls.ca !== undefined ? { ca: req.tls.ca } : {}),
    ...(req.tls.cert !== undefined ? { cert: req.tls.cert } : {}),
    ...(req.tls.key !== undefined ? { key: req.tls.key } : {}),
  });
  const connect: buildConnector.connector = (options, callback) =>
    base(options, (...args) => {
      const socket = args[1];
      if (socket && socket instanceof tls.TLSSocket) {
        const peer = socket.getPeerCertificate(true);
        peerChain = chainOf(peer);
        if (peer && peer.raw) peerCertificate = peer;
      }
      callback(...args);
    });
  const agent = new Agent({ connect });
  const controller = new AbortController();
  const timer = setTimeout(() => {
    const err: Error & { code?: string } = new Error(`timeout after ${req.timeoutMs} ms`);
    err.code = "ETIMEDOUT";
    controller.abort(err);
  }, req.timeoutMs);
  try {
    const res = await request(req.url, {
      dispatcher: agent,
      method: req.method,
      headers: { ...req.headers, Connection: "close" },
      ...(req.body !== undefined ? { body: req.body } : {}),
      signal: controller.signal,
    });
    const body = await readBoundedBody(res.body, MAX_ANSWER_BYTES, () =>
      new EstError("protocol", `answer from ${req.url} is larger than ${MAX_ANSWER_BYTES} bytes`, { status: res.statusCode }),
    );
    return { status: res.statusCode, headers: res.headers, body, peerChain, peerCertificate };
  } catch (err) {
    if (err instanceof EstError) throw err;
    throw failure(controller.signal.aborted ? controller.signal.reason : err, req.url);
  } finally {
    clearTimeout(timer);
    void agent.destroy().catch(() => undefined);
  }
}

/** First value of a header. */
export function header(answer: Pick<EstHttpAnswer, "headers">, name: string): string | undefined {
  const v = answer.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** The body as text for an error message: UTF-8, at most MAX_ERROR_TEXT bytes. */
export function errorText(body: Buffer): string {
  return body.subarray(0, MAX_ERROR_TEXT).toString("utf8");
}

/**
 * Milliseconds to wait for a Retry-After value (RFC 9110 §10.2.3): whole
 * seconds or an HTTP-date (a past date is 0). Undefined when absent or unreadable.
 */
export function retryAfterMs(value: string | undefined, now: Date): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (!/[a-z]/i.test(v) || Number.isNaN(at)) return undefined;
  return Math.max(0, at - now.getTime());
}

/**
 * DER out of an EST body (RFC 8951 §3): base64 with any line breaks and
 * spaces, whatever the Content-Transfer-Encoding; also raw DER (a body that
 * is one whole SEQUENCE) and PEM armour, which some servers send.
 */
export function decodeEstBody(body: Buffer, what: string): Buffer {
  if (body[0] === 0x30) {
    try {
      readWhole(body, 0x30);
      return body;
    } catch {
      // not DER: "0" cannot start base64 of a SEQUENCE, but let the decoder say so
    }
  }
  try {
    const text = body.toString("latin1");
    if (text.includes("-----BEGIN ")) {
      const block = pemDecodeAll(text)[0];
      if (block) return block.der;
    }
    return decodeBase64Lenient(body);
  } catch (err) {
    throw new EstError("protocol", `${what}: body is neither base64 nor DER`, { cause: err });
  }
}

/** A request body: base64 of DER in 64-character LF lines (RFC 7030 §4.2.1, spec §2). */
export function encodeEstBody(der: Uint8Array): Buffer {
  return Buffer.from(encodeBase64Lines(der), "latin1");
}

/** The value of an Authorization header for HTTP Basic (RFC 7617; an empty username is allowed, RFC 7030 §3.2.3). */
export function basicAuthorization(username: string, password: string): string {
  return "Basic " + Buffer.from(`${username}:${password}`, "utf8").toString("base64");
}

/** True when a 401's WWW-Authenticate offers the Basic scheme. */
export function offersBasic(answer: Pick<EstHttpAnswer, "headers">): boolean {
  const raw = answer.headers["www-authenticate"];
  const values = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  return values.some((v) => /^\s*basic(\s|,|$)/i.test(v) || /,\s*basic\s+realm\s*=/i.test(v));
}

/** Characters of a CA label (RFC 7030 §3.2.2: one path segment; Bouncy Castle's check). */
export const LABEL_PATTERN = /^[0-9A-Za-z_\-.~!$&'()*+,;:=]+$/;

/** Problems with a base URL and label, for options validation (empty when fine). */
export function urlProblems(url: unknown, label: unknown): string[] {
  const problems: string[] = [];
  let parsed: URL | undefined;
  try {
    parsed = typeof url === "string" ? new URL(url) : undefined;
  } catch {
    // reported below
  }
  if (!parsed || parsed.protocol !== "https:" || !parsed.hostname) problems.push("url must be an https URL (EST runs over TLS, RFC 7030 §3.3)");
  else if (parsed.search || parsed.hash) problems.push("url must not carry a query or fragment");
  if (label !== undefined && (typeof label !== "string" || !LABEL_PATTERN.test(label))) {
    problems.push("label must be one path segment of [0-9A-Za-z_-.~!$&'()*+,;:=]");
  } else if (typeof label === "string" && (EST_OPERATIONS as readonly string[]).includes(label)) {
    problems.push(`label must not be an operation name (${label})`);
  }
  return problems;
}

/** Where an operation lives: `<base>/.well-known/est[/<label>]/<op>` (RFC 7030 §3.2.2). */
export function estUrl(base: string, label: string | undefined, op: EstOperation): string {
  return `${base.replace(/\/+$/, "")}/.well-known/est${label ? `/${label}` : ""}/${op}`;
}

/** How one logical EST request is sent: the connection, credentials and the wait for 202. */
export interface EstSendSettings {
  base: string;
  label: string | undefined;
  tls: EstTlsSettings;
  basic: { username: string; password: string } | undefined;
  timeoutMs: number;
  maxWaitMs: number;
  sleep: (ms: number) => Promise<void>;
  now: () => Date;
}

/**
 * Sends an EST request and returns the first answer that is neither 401 nor
 * 202. The first attempt carries no credentials (as BC and libest); a 401
 * offering Basic is answered once with the configured credentials, which
 * then go with every repeat. A 202 is waited out (Retry-After, seconds or
 * HTTP-date) and the same request repeated, until the waits would pass
 * maxWaitMs: then EstError "pending" with `retryAt`.
 */
export async function estSend(s: EstSendSettings, op: EstOperation, method: "GET" | "POST", der?: Uint8Array): Promise<EstHttpAnswer> {
  const url = estUrl(s.base, s.label, op);
  const headers: Record<string, string> = {};
  let body: Buffer | undefined;
  if (der !== undefined) {
    body = encodeEstBody(der);
    headers["Content-Type"] = "application/pkcs10";
    headers["Content-Transfer-Encoding"] = "base64";
  }
  let authorization: string | undefined;
  let waited = 0;
  for (;;) {
    const answer = await httpExchange({
      method, url, body, tls: s.tls, timeoutMs: s.timeoutMs,
      headers: { ...headers, ...(authorization !== undefined ? { Authorization: authorization } : {}) },
    });
    if (answer.status === 401) {
      const text = errorText(answer.body);
      if (authorization !== undefined) throw new EstError("unauthorized", `${op}: the server refused the credentials (HTTP 401)`, { status: 401, body: text });
      if (!offersBasic(answer)) {
        const scheme = header(answer, "www-authenticate")?.trim().split(/\s/)[0] ?? "none";
        throw new EstError("unauthorized", `${op}: HTTP 401 asks for ${scheme} authentication, and only Basic is supported`, { status: 401, body: text });
      }
      if (!s.basic) throw new EstError("unauthorized", `${op}: the server asks for HTTP Basic credentials and none are configured`, { status: 401, body: text });
      authorization = basicAuthorization(s.basic.username, s.basic.password);
      continue;
    }
    if (answer.status === 202) {
      const delay = retryAfterMs(header(answer, "retry-after"), s.now());
      if (delay === undefined) {
        throw new EstError("pending", `${op}: the request is pending (HTTP 202) and the server did not say when to ask again`, { status: 202 });
      }
      const wait = Math.max(delay, MIN_RETRY_MS);
      if (waited + wait > s.maxWaitMs) {
        const retryAt = new Date(s.now().getTime() + delay);
        throw new EstError("pending", `${op}: the request is pending (HTTP 202); ask again after ${retryAt.toISOString()}`, { status: 202, retryAt });
      }
      await s.sleep(wait);
      waited += wait;
      continue;
    }
    return answer;
  }
}

/** Throws the EstError for an answer whose status is not `expected`. */
export function expectStatus(answer: EstHttpAnswer, op: EstOperation, expected: readonly number[], now: Date = new Date()): void {
  if (expected.includes(answer.status)) return;
  const text = errorText(answer.body);
  const kind = kindForStatus(answer.status);
  const retry = answer.status === 503 ? retryAfterMs(header(answer, "retry-after"), now) : undefined;
  const detail = text.trim() === "" ? "" : `: ${text.trim().split(/\r?\n/)[0]}`;
  throw new EstError(kind, `${op} failed (HTTP ${answer.status})${detail}`, {
    status: answer.status, body: text, ...(retry !== undefined ? { retryAt: new Date(now.getTime() + retry) } : {}),
  });
}
