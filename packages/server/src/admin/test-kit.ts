/**
 * Helpers for the admin API tests: a server in imprint manual mode with a
 * build secret, one token per role, and a client that speaks the API with a
 * bearer token or as the console does (session cookie + CSRF header).
 */
import { OperatorTokens } from "../authority/operator-tokens.js";
import type { RunningServer } from "../server.js";
import { request, type TestResponse } from "../test-support.js";
import { imprintServer } from "../protocols/imprint/test-kit.js";
import type { TestClock } from "../test-support.js";
import type { TesseraConfig } from "../config/types.js";

/** A JSON answer. */
export interface ApiResponse extends TestResponse {
  json: any;
}

/** How a call authenticates: a bearer token, a console session, or nothing. */
export type Auth = { token: string } | { session: Session } | undefined;

/** A console session: its cookie and CSRF token. */
export interface Session {
  cookie: string;
  csrfToken: string;
}

/** Calls the admin API (`path` relative to /admin/api/v1 unless it starts with "/admin" or "/openapi"). */
export async function api(
  server: RunningServer,
  method: string,
  path: string,
  opts: { auth?: Auth; body?: unknown; csrf?: string | null; headers?: Record<string, string> } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.auth && "token" in opts.auth) headers.authorization = `Bearer ${opts.auth.token}`;
  if (opts.auth && "session" in opts.auth) {
    headers.cookie = opts.auth.session.cookie;
    // The console sends its CSRF token on every change; a test passes csrf: null to leave it out.
    if (opts.csrf !== null && method !== "GET") headers["x-csrf-token"] = opts.csrf ?? opts.auth.session.csrfToken;
  }
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    headers["content-type"] ??= "application/json";
  }
  const full = path.startsWith("/admin") || path.startsWith("/openapi") ? path : `/admin/api/v1${path}`;
  const r = await request(server, full, { method, headers, body });
  let json: unknown;
  try {
    json = r.text ? JSON.parse(r.text) : undefined;
  } catch {
    json = undefined;
  }
  return { ...r, json };
}

/** Signs in with `token` as the console does; returns the session. */
export async function signIn(server: RunningServer, token: string): Promise<Session> {
  const r = await api(server, "POST", "/session", { body: { token } });
  if (r.status !== 200) throw new Error(`sign-in failed: ${r.status} ${r.text}`);
  const setCookie = [r.headers["set-cookie"]].flat()[0]!;
  return { cookie: setCookie.split(";", 1)[0]!, csrfToken: (r.json as { csrfToken: string }).csrfToken };
}

/** A server for admin tests: imprint in manual mode, build secret "build-secret-1", tokens per role. */
export async function adminServer(configure?: (c: TesseraConfig) => void): Promise<{
  server: RunningServer; clock: TestClock; secret: string; dataDir: string; tokens: { admin: string; editor: string; viewer: string }; operatorTokens: OperatorTokens;
}> {
  const kit = await imprintServer((c) => {
    c.imprint.mode = "manual";
    configure?.(c);
  });
  const operatorTokens = new OperatorTokens(kit.server.store, () => kit.clock.now());
  const tokens = {
    admin: (await operatorTokens.create("alice", "admin", undefined, "test")).value,
    editor: (await operatorTokens.create("eddie", "editor", undefined, "test")).value,
    viewer: (await operatorTokens.create("vera", "viewer", undefined, "test")).value,
  };
  return { ...kit, tokens, operatorTokens };
}
