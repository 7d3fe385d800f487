/**
 * Test support for server tests: a temp data dir, a started server on an
 * ephemeral port, and an HTTPS client that can present a client certificate.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as https from "node:https";
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
