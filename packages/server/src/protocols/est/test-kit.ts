/**
 * Helpers for the EST tests: a server with an EST user, and raw HTTPS
 * requests that show the exact bytes a strict client would see (header
 * case, Content-Length, body).
 */
import { randomUUID } from "node:crypto";
import * as tls from "node:tls";
import { hashPassword } from "../../authority/passwords.js";
import type { CredentialRecord } from "../../authority/ports.js";
import type { RunningServer } from "../../server.js";
import { startTestServer, TestClock } from "../../test-support.js";
import type { TesseraConfig } from "../../config/types.js";

/** Adds an EST (HTTP Basic) user; `label` "*" (default) allows every label. */
export async function addEstUser(server: RunningServer, name: string, password: string, label = "*"): Promise<CredentialRecord> {
  const c: CredentialRecord = {
    id: randomUUID(), kind: "password", name, scope: label, hash: await hashPassword(password),
    expiresAt: null, maxUses: null, useCount: 0, revokedAt: null, createdAt: new Date(),
  };
  await server.store.createCredential(c);
  return c;
}

/** Starts a server with EST user alice / "s3cret-pass" and a movable clock. */
export async function estServer(configure?: (c: TesseraConfig) => void): Promise<{ server: RunningServer; clock: TestClock; dataDir: string; user: string; password: string; base: string }> {
  const clock = new TestClock();
  const { server, dataDir } = await startTestServer({}, { clock, configure });
  await addEstUser(server, "alice", "s3cret-pass");
  // Dial the IP literal: the server certificate carries IP SANs, as EST clients check (est.md §4).
  return { server, clock, dataDir, user: "alice", password: "s3cret-pass", base: server.url.replace("://localhost", "://127.0.0.1") };
}

/** A raw HTTP/1.1 exchange over TLS: the response's status line, headers as sent (name case kept) and body bytes. */
export interface RawResponse {
  statusLine: string;
  status: number;
  /** Header lines in order, as [name, value] with the name's case as sent. */
  headers: Array<[string, string]>;
  body: Buffer;
  /** The negotiated TLS version. */
  protocol: string | null;
}

/**
 * Sends one request on a fresh TLS connection and reads to EOF (as libest
 * does, with `Connection: close`). Options: client certificate, TLS version
 * cap, and a hook that sees the socket before the request (tls-unique).
 */
export function rawRequest(
  url: string,
  opts: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer | string; ca: string; cert?: string; key?: string; maxVersion?: tls.SecureVersion; alpn?: string[]; onSecure?: (s: tls.TLSSocket) => Buffer | string | void },
): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: u.hostname, port: Number(u.port), ca: opts.ca, cert: opts.cert, key: opts.key, maxVersion: opts.maxVersion, ALPNProtocols: opts.alpn,
      servername: u.hostname.match(/^[\d.]+$/) ? undefined : u.hostname,
    }, () => {
      let body = opts.body ?? "";
      const replaced = opts.onSecure?.(socket);
      if (replaced !== undefined) body = replaced;
      const bytes = typeof body === "string" ? Buffer.from(body) : body;
      const head = [`${opts.method ?? "GET"} ${opts.path} HTTP/1.1`, `Host: ${u.host}`, "Connection: close", ...Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}`)];
      if (bytes.length > 0 || opts.method === "POST") head.push(`Content-Length: ${bytes.length}`);
      socket.write(head.join("\r\n") + "\r\n\r\n");
      socket.write(bytes);
    });
    const chunks: Buffer[] = [];
    socket.on("data", (c) => chunks.push(c));
    socket.on("error", reject);
    socket.on("end", () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf("\r\n\r\n");
      if (split < 0) return reject(new Error(`no header end in ${JSON.stringify(all.toString("latin1").slice(0, 200))}`));
      const lines = all.subarray(0, split).toString("latin1").split("\r\n");
      const statusLine = lines[0]!;
      const headers = lines.slice(1).map((l): [string, string] => {
        const i = l.indexOf(":");
        return [l.slice(0, i), l.slice(i + 1).trim()];
      });
      resolve({ statusLine, status: Number(statusLine.split(" ")[1]), headers, body: all.subarray(split + 4), protocol: socket.getProtocol() });
    });
  });
}

/** The value of a header (first match, case-insensitive name). */
export function header(r: RawResponse, name: string): string | undefined {
  return r.headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
}
