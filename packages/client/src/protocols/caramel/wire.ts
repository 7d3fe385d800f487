/**
 * Caramel's wire level on the device side (spec caramel.md §1, §2): the
 * server address, one HTTP/1.1 exchange per fresh TLS connection through
 * undici (or through a dispatcher the caller supplies), and the
 * application/problem+json error bodies.
 */
import * as tls from "node:tls";
import { Agent, buildConnector, request, type Dispatcher } from "undici";
import { CaramelError } from "./errors.js";
import { classifyNetworkError } from "../network-error.js";
import { readBoundedBody } from "../bounded-body.js";

/** Largest answer read; Caramel answers are a certificate or a short JSON body. */
export const MAX_ANSWER_BYTES = 64 * 1024;
/** Largest part of a body kept in CaramelError.body. */
export const MAX_ERROR_TEXT = 8 * 1024;

/**
 * The base URL of a Caramel server: "host[:port]" as the reference clients
 * take it (they build `https://<SERVER>/…`, spec §1), or an https URL, which
 * may carry a path prefix. Throws TypeError for anything else (http too:
 * Caramel runs over TLS).
 */
export function caramelBaseUrl(server: unknown): string {
  if (typeof server !== "string" || server.trim() === "") throw new TypeError("server must be host[:port] or an https URL");
  const text = server.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TypeError(`server: '${server}' is neither host[:port] nor an https URL`);
  }
  if (url.protocol !== "https:") throw new TypeError(`server: '${server}' is not https (Caramel runs over TLS)`);
  if (!url.hostname || url.username || url.password || url.search || url.hash) {
    throw new TypeError(`server: '${server}' must be host[:port] or https://host[:port][/path] without credentials, query or fragment`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** TLS settings of the built-in connection handling. */
export interface CaramelTls {
  /** Trusted roots (PEM), replacing Node's defaults. */
  ca: string[];
  /** Client certificate (PEM) and key (PEM) to present. */
  cert?: string;
  key?: string;
}

/** One HTTP request. */
export interface CaramelHttpRequest {
  method: "GET" | "POST";
  url: string;
  headers: Record<string, string>;
  body?: Buffer;
  tls: CaramelTls;
  timeoutMs: number;
  /** Replaces the built-in connection handling (then `tls` is unused). */
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
}

/** One HTTP answer, read whole. */
export interface CaramelHttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function failure(err: unknown, url: string): CaramelError {
  const { kind, message, causeCode } = classifyNetworkError(err, url);
  return new CaramelError(kind, message, { cause: err, ...(causeCode !== undefined ? { causeCode } : {}) });
}

/**
 * Sends one request and reads the whole answer, whatever its status. The
 * built-in handling opens a fresh connection (TLS 1.2 or 1.3, HTTP/1.1,
 * the server verified against `tls.ca` by RFC 6125 name) and closes it
 * afterwards. Throws CaramelError "tls", "network" (also when no answer
 * arrives within timeoutMs), "protocol" (answer too large) or "aborted".
 */
export async function caramelExchange(req: CaramelHttpRequest): Promise<CaramelHttpAnswer> {
  const own = req.dispatcher === undefined
    ? new Agent({
      connect: buildConnector({
        timeout: req.timeoutMs,
        minVersion: "TLSv1.2",
        maxCachedSessions: 0,
        rejectUnauthorized: true,
        checkServerIdentity: tls.checkServerIdentity,
        ca: req.tls.ca,
        ...(req.tls.cert !== undefined ? { cert: req.tls.cert } : {}),
        ...(req.tls.key !== undefined ? { key: req.tls.key } : {}),
      }),
    })
    : undefined;
  const controller = new AbortController();
  const timer = setTimeout(() => {
    const err: Error & { code?: string } = new Error(`timeout after ${req.timeoutMs} ms`);
    err.code = "ETIMEDOUT";
    controller.abort(err);
  }, req.timeoutMs);
  const onAbort = () => controller.abort(new CaramelError("aborted", `request to ${req.url} aborted`));
  if (req.signal?.aborted) onAbort();
  else req.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const res = await request(req.url, {
      dispatcher: req.dispatcher ?? own!,
      method: req.method,
      headers: own ? { ...req.headers, Connection: "close" } : req.headers,
      ...(req.body !== undefined ? { body: req.body } : {}),
      signal: controller.signal,
    });
    const body = await readBoundedBody(res.body, MAX_ANSWER_BYTES, () =>
      new CaramelError("protocol", `answer from ${req.url} is larger than ${MAX_ANSWER_BYTES} bytes`, { status: res.statusCode }),
    );
    return { status: res.statusCode, headers: res.headers, body };
  } catch (err) {
    if (err instanceof CaramelError) throw err;
    const reason: unknown = controller.signal.aborted ? controller.signal.reason : err;
    if (reason instanceof CaramelError) throw reason;
    throw failure(reason, req.url);
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener("abort", onAbort);
    if (own) void own.destroy().catch(() => undefined);
  }
}

/** First value of a header. */
export function header(answer: Pick<CaramelHttpAnswer, "headers">, name: string): string | undefined {
  const v = answer.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** The body as text for an error: UTF-8, at most MAX_ERROR_TEXT bytes. */
export function errorText(body: Buffer): string {
  return body.subarray(0, MAX_ERROR_TEXT).toString("utf8");
}

/**
 * The title and detail of an application/problem+json body (spec §2:
 * `{"status":N,"title":"T","detail":D}`, D a string or null); undefined
 * fields when the body is something else.
 */
export function problemOf(body: Buffer): { title?: string; detail?: string } {
  try {
    const doc = JSON.parse(body.toString("utf8")) as unknown;
    if (typeof doc !== "object" || doc === null) return {};
    const { title, detail } = doc as Record<string, unknown>;
    return { ...(typeof title === "string" ? { title } : {}), ...(typeof detail === "string" ? { detail } : {}) };
  } catch {
    return {};
  }
}

/**
 * A User-Agent product with the client id as its comment, e.g.
 * `tessera-agent-caramel/0.1.0 (device-42)`. Characters a comment cannot
 * hold (RFC 9110 §5.6.5: controls, non-ASCII) are percent-encoded, and
 * parentheses and backslashes escaped.
 */
export function userAgentWithId(product: string, clientId: string): string {
  const comment = [...clientId]
    .map((c) => (/^[\x20-\x7e]$/.test(c) ? c.replace(/[()\\]/, "\\$&") : encodeURIComponent(c)))
    .join("");
  return `${product} (${comment})`;
}
