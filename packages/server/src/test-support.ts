/**
 * Test support for server tests: a temp data dir, a started server on an
 * ephemeral port, and an HTTPS client that can present a client certificate.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as https from "node:https";
import * as tls from "node:tls";
import pino from "pino";
import { loadConfig } from "./config/load.js";
import type { TesseraConfig } from "./config/types.js";
import { startServer, type RunningServer } from "./server.js";
import type { Clock } from "./authority/runtime.js";

/** A clock tests can move forward (`advance`) without waiting. */
export class TestClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
  /** Moves time forward by `ms`. */
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

/** Makes a fresh temp directory. */
export function tempDir(prefix = "tessera-test-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Loads a configuration for tests from env-style overrides; fails on any problem. */
export async function testConfig(env: Record<string, string>, flags: Record<string, string> = {}): Promise<TesseraConfig> {
  const r = await loadConfig({ flags, env, cwd: env.TESSERA_DATA_DIR ?? tempDir(), systemHostname: () => "localhost" });
  if (!r.config || r.problems.length) throw new Error("bad test config: " + JSON.stringify(r.problems));
  return r.config;
}

/** Starts a server on 127.0.0.1 with an ephemeral port and a fresh data dir (or the given env). */
export async function startTestServer(
  env: Record<string, string> = {},
  opts: { clock?: Clock; configure?: (config: TesseraConfig) => void } = {},
): Promise<{ server: RunningServer; config: TesseraConfig; dataDir: string }> {
  const dataDir = env.TESSERA_DATA_DIR ?? tempDir();
  // liteboot's own listener is off unless a test asks for it (its default port 1443 would collide between tests).
  const config = await testConfig({ TESSERA_DATA_DIR: dataDir, TESSERA_LISTEN: "127.0.0.1:0", TESSERA_HOSTNAME: "localhost", TESSERA_LOG_LEVEL: "silent", TESSERA_LITEBOOT_LISTEN: "off", ...env });
  opts.configure?.(config);
  const server = await startServer(config, { logger: pino({ level: "silent" }), banner: () => undefined, clock: opts.clock });
  return { server, config, dataDir };
}

/** A response read whole. */
export interface TestResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

/** Sends one HTTPS request to the server (trusting its chain), optionally with a client certificate. */
export function request(server: RunningServer, pathName: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; cert?: string; key?: string; agent?: https.Agent } = {}): Promise<TestResponse> {
  const url = new URL(pathName, server.url.replace("://localhost", "://127.0.0.1"));
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: opts.method ?? "GET",
        headers: opts.headers,
        ca: server.authority.chainPem(),
        cert: opts.cert,
        key: opts.key,
        servername: "localhost",
        agent: opts.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString("utf8") });
        });
      },
    );
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
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
  opts: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer | string; ca: string; cert?: string; key?: string; maxVersion?: tls.SecureVersion; alpn?: string[]; onSecure?: (s: tls.TLSSocket) => Buffer | string | void; hostname?: string },
): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: u.hostname, port: Number(u.port), ca: opts.ca, cert: opts.cert, key: opts.key, maxVersion: opts.maxVersion, ALPNProtocols: opts.alpn,
      servername: opts.hostname ?? (u.hostname.match(/^[\d.]+$/) ? undefined : u.hostname),
      // Dial the address in the URL but check the certificate for `hostname` (a certificate with DNS names only).
      ...(opts.hostname ? { checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(opts.hostname!, cert) } : {}),
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
