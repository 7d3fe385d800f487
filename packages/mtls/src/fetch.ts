/**
 * A small HTTP(S) GET for CRLs with node:http/https (no fetch: a private CA
 * for the CRL server needs an https.Agent option that global fetch lacks
 * without undici). Bounded in time and size, follows a few redirects, and
 * makes conditional requests so an unchanged CRL is not downloaded again.
 */
import * as http from "node:http";
import * as https from "node:https";
import { MtlsError } from "./errors.js";

/** Options of fetchBytes. */
export interface FetchOptions {
  /** Extra trusted CA certificates (PEM) for https URLs; the system roots are used otherwise. */
  ca?: string;
  /** Whole-request time limit in milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Largest body accepted in bytes (default 64 MiB). */
  maxBytes?: number;
  /** Validators of the copy already held (sent as If-None-Match / If-Modified-Since). */
  etag?: string;
  lastModified?: string;
}

/** Result of fetchBytes: the body, or `notModified` when the held copy is current. */
export type FetchResult =
  | { notModified: false; body: Buffer; etag?: string; lastModified?: string }
  | { notModified: true };

const MAX_REDIRECTS = 3;

function unavailable(message: string, cause?: unknown): MtlsError {
  return new MtlsError("TESSERA_ERR_MTLS_CRL_UNAVAILABLE", message, { cause });
}

/** GETs an http(s) URL; rejects with TESSERA_ERR_MTLS_CRL_UNAVAILABLE on a network error, a non-2xx status, a timeout or an oversized body. */
export function fetchBytes(url: string, options: FetchOptions = {}, redirects = 0): Promise<FetchResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  return new Promise<FetchResult>((resolve, reject) => {
    const u = new URL(url);
    const headers: Record<string, string> = { accept: "application/pkix-crl, application/x-pkcs7-crl, */*" };
    if (options.etag) headers["if-none-match"] = options.etag;
    if (options.lastModified) headers["if-modified-since"] = options.lastModified;
    const onResponse = (res: http.IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && status !== 304 && res.headers.location) {
        res.resume();
        if (redirects >= MAX_REDIRECTS) return reject(unavailable(`CRL fetch ${url}: too many redirects`));
        return resolve(fetchBytes(new URL(res.headers.location, u).toString(), options, redirects + 1));
      }
      if (status === 304) {
        res.resume();
        return resolve({ notModified: true });
      }
      if (status < 200 || status >= 300) {
        res.resume();
        return reject(unavailable(`CRL fetch ${url}: HTTP ${status}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) {
          req.destroy();
          reject(unavailable(`CRL fetch ${url}: larger than ${maxBytes} bytes`));
        } else chunks.push(c);
      });
      res.on("end", () => {
        const etag = typeof res.headers.etag === "string" ? res.headers.etag : undefined;
        const lastModified = res.headers["last-modified"];
        resolve({ notModified: false, body: Buffer.concat(chunks), etag, lastModified });
      });
      res.on("error", (err) => reject(unavailable(`CRL fetch ${url}: ${err.message}`, err)));
    };
    let req: http.ClientRequest;
    if (u.protocol === "https:") req = https.get(u, { headers, ca: options.ca, agent: false }, onResponse);
    else if (u.protocol === "http:") req = http.get(u, { headers, agent: false }, onResponse);
    else return reject(unavailable(`CRL fetch ${url}: unsupported URL scheme`));
    const timer = setTimeout(() => req.destroy(unavailable(`CRL fetch ${url}: timed out after ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    req.on("close", () => clearTimeout(timer));
    req.on("error", (err) => reject(err instanceof MtlsError ? err : unavailable(`CRL fetch ${url}: ${err.message}`, err)));
  });
}
