/**
 * Helpers for the Mainflux API tests: a server (optionally on PostgreSQL) with
 * one token per role and two things (one with an external key), a service on
 * the same store for rotateExpiring, and JSON requests.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { ExtOid, nameAttribute, parseCertificate, type ParsedCertificate } from "@tessera/pki";
import { readPassphrase } from "../../ca/ca-files.js";
import type { TesseraConfig } from "../../config/types.js";
import type { RunningServer } from "../../server.js";
import { request, startTestServer, TestClock, type TestResponse } from "../../test-support.js";
import { MainfluxRegistry } from "./registry.js";
import { lazySealer } from "./sealer.js";
import { MainfluxService } from "./service.js";

export const HOUR = 3600_000;
export const DAY = 24 * HOUR;

/** A thing as the tests know it. */
export interface TestThing {
  id: string;
  key: string;
  externalKey?: string;
}

/** A running Mainflux test server. */
export interface MainfluxKit {
  server: RunningServer;
  config: TesseraConfig;
  clock: TestClock;
  dataDir: string;
  tokens: { admin: string; editor: string; viewer: string };
  /** `a` has an external key; `b` does not; `empty` never gets certificates. */
  things: { a: TestThing; b: TestThing; empty: TestThing };
  registry: MainfluxRegistry;
  /** A service on the server's authority and store (as a scheduler would hold). */
  service: MainfluxService;
  /** A JSON request; `token` sends `Authorization: Bearer <token>`, `auth` any Authorization value. */
  req(method: string, path: string, opts?: { token?: string; auth?: string; body?: unknown; raw?: string | Buffer; contentType?: string | null }): Promise<TestResponse & { json: any }>;
  /** Issues a certificate over E1 with the editor token; returns the answer. */
  issue(thing: TestThing, body?: Record<string, unknown>): Promise<any>;
  close(): Promise<void>;
}

/** The PostgreSQL URL the store tests use. */
export const PG_URL = process.env.TESSERA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Why PostgreSQL cannot be used, or undefined when it answers. */
export async function postgresUnavailable(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("SELECT 1");
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message || err.constructor.name : String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Starts a server with tokens and things; `postgres` puts its store in a fresh schema (dropped on close). */
export async function mainfluxServer(opts: { configure?: (c: TesseraConfig) => void; postgres?: boolean } = {}): Promise<MainfluxKit> {
  const clock = new TestClock();
  const schema = opts.postgres ? `tessera_mf_${randomBytes(5).toString("hex")}` : undefined;
  const env: Record<string, string> = schema ? { TESSERA_DATABASE_URL: `${PG_URL}${PG_URL.includes("?") ? "&" : "?"}schema=${schema}` } : {};
  const { server, config, dataDir } = await startTestServer(env, { clock, configure: opts.configure });
  const sealer = lazySealer(() => readPassphrase({ env: process.env.TESSERA_CA_PASSPHRASE, file: config.caPassphraseFile }));
  const registry = new MainfluxRegistry(server.store, sealer, () => clock.now());
  const service = new MainfluxService(server.authority, server.store, config.mainflux, sealer, () => clock.now());
  const tokens = {
    admin: (await registry.createToken("admin-1", "admin", undefined, "test")).value,
    editor: (await registry.createToken("editor-1", "editor", undefined, "test")).value,
    viewer: (await registry.createToken("viewer-1", "viewer", undefined, "test")).value,
  };
  const a: TestThing = { id: "thing-a", key: "", externalKey: "ext-" + randomBytes(8).toString("hex") };
  a.key = (await registry.addThing(a.id, undefined, a.externalKey, "test")).key;
  const b: TestThing = { id: "thing-b", key: (await registry.addThing("thing-b", "key-b-" + randomBytes(8).toString("hex"), undefined, "test")).key };
  const empty: TestThing = { id: "thing-empty", key: (await registry.addThing("thing-empty", undefined, undefined, "test")).key };

  const req: MainfluxKit["req"] = async (method, path, o = {}) => {
    const headers: Record<string, string> = {};
    if (o.token !== undefined) headers.Authorization = `Bearer ${o.token}`;
    if (o.auth !== undefined) headers.Authorization = o.auth;
    let body: string | Buffer | undefined = o.raw;
    if (o.body !== undefined) body = JSON.stringify(o.body);
    if (body !== undefined && o.contentType !== null) headers["Content-Type"] = o.contentType ?? "application/json";
    const r = await request(server, path, { method, headers, body });
    let json: unknown;
    try {
      json = JSON.parse(r.text);
    } catch {
      json = undefined;
    }
    return { ...r, json };
  };
  const issue: MainfluxKit["issue"] = async (thing, body = {}) => {
    const r = await req("POST", "/certs", { token: tokens.editor, body: { thing_id: thing.id, ttl: "8760h", key_type: "ecdsa", key_bits: 256, ...body } });
    if (r.status !== 201) throw new Error(`issue failed: ${r.status} ${r.text}`);
    return r.json;
  };
  return {
    server, config, clock, dataDir, tokens, things: { a, b, empty }, registry, service, req, issue,
    async close() {
      await server.close(100);
      if (schema) {
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.end();
      }
    },
  };
}

/** The certificate's KeyUsage bits by name. */
export function keyUsages(cert: ParsedCertificate): string[] {
  const ext = cert.extensions.find((e) => e.oid === ExtOid.keyUsage);
  if (!ext) return [];
  // BIT STRING: 03 len unused bits…
  const bits = ext.value.subarray(3);
  const names = ["digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"];
  return names.filter((_n, i) => ((bits[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0);
}

/** Parses a PEM certificate and its CN. */
export function certOf(pem: string): { cert: ParsedCertificate; cn: string | undefined } {
  const cert = parseCertificate(pem);
  return { cert, cn: nameAttribute(cert.subject, "CN") };
}
