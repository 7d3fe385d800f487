/**
 * Imprint's wire level on the device side (spec §1, §2, §8): JSON POSTs over
 * node:https with a deadline and a 1 MiB answer cap, fresh keys and PEM CSRs,
 * and Go's names for the OS and architecture.
 */
import * as http from "node:http";
import * as https from "node:https";
import type * as crypto from "node:crypto";
import * as os from "node:os";
import { buildCsr, generateKeyPair, pemEncode } from "@tessera/pki";
import { ImprintError } from "./errors.js";

/** Largest answer read, as imprint's client (io.LimitReader 1 MiB); the rest is dropped. */
export const MAX_RESPONSE_BYTES = 1 << 20;

/** TLS material of one request. */
export interface TlsMaterial {
  /** PEM roots that alone are trusted (default: Node's bundled roots). */
  ca?: string;
  /** PEM client certificate (chain) for mTLS. */
  cert?: string;
  /** PEM client private key for mTLS. */
  key?: string;
}

/** One JSON POST. */
export interface PostRequest {
  url: string;
  /** Serialised JSON body. */
  body: string;
  /** Deadline for the whole exchange, connect to last body byte, in milliseconds. */
  timeoutMs: number;
  tls?: TlsMaterial;
  /** Prefix of a network failure's message, e.g. "enrollment request failed". */
  what: string;
}

/** An answer: status and body (UTF-8, at most MAX_RESPONSE_BYTES). */
export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * POSTs `body` as application/json on a fresh connection (no keep-alive, so
 * a renewed certificate is used at once — W18) and resolves with any status.
 * Throws ImprintError "network" when no answer arrives in time.
 */
export function postJson(req: PostRequest): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch (err) {
      return reject(new ImprintError("network", `${req.what}: invalid URL ${req.url}`, { cause: err }));
    }
    let settled = false;
    const fail = (err: Error & { code?: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new ImprintError("network", `${req.what}: ${err.message}`, { cause: err, causeCode: err.code }));
    };
    const payload = Buffer.from(req.body, "utf8");
    const options: https.RequestOptions = {
      method: "POST",
      agent: false,
      headers: { "Content-Type": "application/json", "Content-Length": payload.length },
      minVersion: "TLSv1.2",
      ...(req.tls?.ca !== undefined ? { ca: req.tls.ca } : {}),
      ...(req.tls?.cert !== undefined ? { cert: req.tls.cert } : {}),
      ...(req.tls?.key !== undefined ? { key: req.tls.key } : {}),
    };
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const finish = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
      };
      res.on("data", (chunk: Buffer) => {
        if (settled) return;
        const room = MAX_RESPONSE_BYTES - size;
        chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
        size += Math.min(chunk.length, room);
        if (size >= MAX_RESPONSE_BYTES) {
          finish();
          res.destroy();
        }
      });
      res.on("end", finish);
      res.on("error", fail);
      res.on("aborted", () => fail(new Error("connection closed while reading the answer")));
    };
    const request = url.protocol === "http:" ? http.request(url, options, onResponse) : https.request(url, options, onResponse);
    const timer = setTimeout(() => {
      const err: Error & { code?: string } = new Error(`timeout after ${req.timeoutMs} ms`);
      err.code = "ETIMEDOUT";
      fail(err);
      request.destroy(err);
    }, req.timeoutMs);
    request.on("error", fail);
    request.end(payload);
  });
}

/** A fresh EC P-256 key and a PEM CSR for it whose subject is CN only (an empty subject when `cn` is empty, as Go encodes it). */
export function newKeyAndCsr(cn: string): { privateKey: crypto.KeyObject; csrPem: string } {
  const { privateKey } = generateKeyPair("ec-p256");
  const der = buildCsr({ subject: cn === "" ? [] : [{ type: "CN", value: cn }], privateKey });
  return { privateKey, csrPem: pemEncode("CERTIFICATE REQUEST", der) };
}

const GO_OS: Partial<Record<NodeJS.Platform, string>> = { win32: "windows", sunos: "solaris" };
const GO_ARCH: Record<string, string> = { x64: "amd64", ia32: "386", x32: "386", mipsel: "mipsle" };

/** Go's runtime.GOOS for a Node platform (win32 → windows; linux, darwin, freebsd… unchanged). */
export function goOs(platform: NodeJS.Platform = process.platform): string {
  return GO_OS[platform] ?? platform;
}

/** Go's runtime.GOARCH for a Node arch (x64 → amd64, ia32 → 386, arm64 and arm unchanged). */
export function goArch(arch: string = process.arch): string {
  // Node says "ppc64" for both byte orders; Go tells little-endian Linux (ppc64le) apart.
  if (arch === "ppc64") return os.endianness() === "LE" ? "ppc64le" : "ppc64";
  return GO_ARCH[arch] ?? arch;
}
