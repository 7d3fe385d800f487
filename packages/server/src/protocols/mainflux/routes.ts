/**
 * The Mainflux certs service's HTTP API as a protocol module named "mainflux"
 * (spec mainflux.md §1, docs/protocols/mainflux.md), on the main listener:
 * E1–E7 with the original's status codes, `{"error": …}` texts, field names
 * and check order (decode → validate → service), written as Go's encoder
 * writes them; the list also under `/svccerts` (the SDK's path); and
 * `GET /openapi.json`. Where the original answers 500 for a client's mistake,
 * this answers 400 with the same text (see the docs' deviations).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ProtocolModule } from "../../http/app.js";
import { noteRefusal } from "../../http/enrollment-failures.js";
import { sendRaw } from "../../http/raw-reply.js";
import type { MainfluxConfig } from "../../config/types.js";
import { TesseraError } from "../../errors.js";
import { openApiFragment } from "./openapi.js";
import type { KeySealer } from "./sealer.js";
import { ERR, keySpecOf, MainfluxFailure, type CertRequest, type KeySpec, type ListQuery } from "./model.js";
import { MainfluxService, type MainfluxAuthority, type MainfluxStore } from "./service.js";
import { decodeGoObject, goJson, parseQuery, parseRfc3339, parseUint } from "./wire.js";

/** Largest `limit` of E6. */
const MAX_LIMIT = 200n;
/** The Content-Type each request arrived with (absent types are filled in so Fastify hands the body over). */
const sentTypes = new WeakMap<object, string | undefined>();

const fail = (status: number, error: string, reason?: string) => new MainfluxFailure(status, error, reason);

/** The bearer token (`Authorization: Bearer <token>`, case-sensitive prefix), else 401. */
function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization;
  const token = typeof h === "string" && h.startsWith("Bearer ") ? h.slice("Bearer ".length) : "";
  if (token === "") throw fail(401, ERR.bearer);
  return token;
}

/** E7's thing key: `Thing <key>` (internal) or `External <key>`. */
function thingKey(req: FastifyRequest): { kind: "internal" | "external"; key: string } {
  // HTTP parsers drop a header value's trailing blanks: "Thing " arrives as "Thing", an empty key.
  const raw = req.headers.authorization ?? "";
  const h = raw === "Thing" || raw === "External" ? `${raw} ` : raw;
  const kind = h.startsWith("Thing ") ? "internal" : h.startsWith("External ") ? "external" : undefined;
  if (!kind) throw fail(401, ERR.thingKeyType);
  const key = h.slice(kind === "internal" ? "Thing ".length : "External ".length);
  if (key === "") throw fail(401, ERR.entityKey);
  return { kind, key };
}

/** E1/E2 body: Content-Type exactly application/json (415), then JSON as encoding/json reads it (400, the original 500s). */
function certBody(req: FastifyRequest): CertRequest {
  if (sentTypes.get(req.raw) !== "application/json") throw fail(415, ERR.contentType);
  const body = decodeGoObject((req.body as Buffer | undefined) ?? Buffer.alloc(0), { thing_id: "string", ttl: "string", key_type: "string", key_bits: "int" });
  if (!body) throw fail(400, ERR.malformed, "malformed JSON, wrong types or empty body");
  return { thingId: String(body.thing_id), ttl: String(body.ttl), keyType: String(body.key_type), keyBits: Number(body.key_bits) };
}

/** Field validation of E1/E2 after the token: thing_id → ttl → key. */
function validateCert(req: CertRequest): KeySpec {
  if (req.thingId === "") throw fail(400, ERR.missingThing);
  if (req.ttl === "") throw fail(400, ERR.missingData, "missing ttl");
  const spec = keySpecOf(req.keyType, req.keyBits);
  if (!spec) throw fail(400, ERR.missingData, `key_type ${JSON.stringify(req.keyType)} with key_bits ${req.keyBits}`);
  return spec;
}

/** E6's query (400 invalid query parameters), before the token; the limit's size is checked after it. */
function listQuery(req: FastifyRequest): { q: ListQuery; limit: bigint } {
  const raw = req.url.includes("?") ? req.url.slice(req.url.indexOf("?") + 1) : "";
  const values = parseQuery(raw);
  const one = (key: string): string | undefined => {
    const v = values?.get(key);
    if (v && v.length > 1) throw fail(400, ERR.query, `repeated ${key}`);
    return v?.[0];
  };
  const uint = (key: string, def: bigint): bigint => {
    const v = one(key);
    if (v === undefined) return def;
    const n = parseUint(v);
    if (n === undefined) throw fail(400, ERR.query, `${key}=${v}`);
    return n;
  };
  const time = (key: string): number | undefined => {
    const v = one(key);
    if (v === undefined || v === "") return undefined;
    const t = parseRfc3339(v);
    if (t === undefined) throw fail(400, ERR.query, `${key}=${v}`);
    return t;
  };
  const offset = uint("offset", 0n);
  const limit = uint("limit", 10n);
  const serial = one("serial");
  const q: ListQuery = { offset: offset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(offset), limit: Number(limit > MAX_LIMIT ? MAX_LIMIT : limit) };
  if (serial !== undefined && serial !== "") q.serial = serial;
  const from = time("from");
  const to = time("to");
  if (from !== undefined) q.from = from;
  if (to !== undefined) q.to = to;
  return { q, limit };
}

/**
 * GET routes without Fastify's implicit HEAD twin: the original answers HEAD
 * with nothing, and a HEAD on the download would use up the one download
 * without delivering the key.
 */
const noHead = { exposeHeadRoute: false } as const;

/** Sends a JSON answer as Go's encoder writes it. */
function json(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return sendRaw(reply, status, { "Content-Type": "application/json" }, goJson(body));
}

/** Dependencies of the module. */
export interface MainfluxRoutesDeps {
  authority: MainfluxAuthority;
  store: MainfluxStore;
  config: MainfluxConfig;
  /** The key sealer, derived from the CA passphrase once (sealer.ts). */
  sealer: () => Promise<KeySealer>;
  now?: () => Date;
}

/** Builds the "mainflux" protocol module and its service (whose rotateExpiring a scheduler calls). */
export function mainfluxRoutes(deps: MainfluxRoutesDeps): { module: ProtocolModule; service: MainfluxService } {
  const service = new MainfluxService(deps.authority, deps.store, deps.config, deps.sealer, deps.now);

  const refuse = (req: FastifyRequest, reply: FastifyReply, err: unknown, internal: string) => {
    let f: MainfluxFailure;
    if (err instanceof MainfluxFailure) f = err;
    else if (err instanceof TesseraError && err.kind === "unavailable") f = fail(503, internal, `${err.code}: ${err.detail ?? err.message}`);
    else f = fail(500, internal, err instanceof Error ? err.stack ?? err.message : String(err));
    req.log[f.status >= 500 ? "error" : "info"]({ protocol: "mainflux", route: req.routeOptions.url, method: req.method, status: f.status, reason: f.reason }, "mainflux request refused");
    noteRefusal(req, f.reason);
    return json(reply, f.status, { error: f.error });
  };
  /** Runs a handler; a failure becomes the original's error form, `internal` naming unexpected ones. */
  const handle = (internal: string, status: number, fn: (req: FastifyRequest<{ Params: Record<string, string> }>) => Promise<unknown>) =>
    async (req: FastifyRequest<{ Params: Record<string, string> }>, reply: FastifyReply) => {
      try {
        return json(reply, status, await fn(req));
      } catch (err) {
        return refuse(req, reply, err, internal);
      }
    };

  const module: ProtocolModule = {
    name: "mainflux",
    openapi: openApiFragment,
    register(app: FastifyInstance) {
      app.register(async (scope) => {
        scope.addHook("onRequest", async (req) => {
          const sent = req.headers["content-type"];
          sentTypes.set(req.raw, sent);
          // Fastify refuses a body without a type before the handler runs; the handler decides (415).
          if (!sent) req.headers["content-type"] = "application/octet-stream";
        });
        scope.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
          const status = err.statusCode === 413 ? 413 : err.statusCode === 415 ? 415 : err.statusCode && err.statusCode < 500 ? 400 : 500;
          const text = status === 413 ? "request body too large" : status === 415 ? ERR.contentType : status === 400 ? ERR.malformed : ERR.retrieve;
          return refuse(req, reply, fail(status, text, err.message), ERR.retrieve);
        });

        // E1
        scope.post("/certs", handle(ERR.create, 201, async (req) => {
          const body = certBody(req);
          const token = bearer(req);
          return service.issue(token, body, validateCert(body));
        }));
        // E2
        scope.post("/certs/:serial/rotate", handle(ERR.create, 201, async (req) => {
          const body = certBody(req);
          const token = bearer(req);
          return service.rotate(token, req.params.serial!, body, validateCert(body));
        }));
        // E3
        scope.get("/certs/:serial", noHead, handle(ERR.retrieve, 200, async (req) => service.view(bearer(req), req.params.serial!)));
        // E4: the body is ignored.
        scope.put("/certs/:serial", handle(ERR.create, 201, async (req) => service.renew(bearer(req), req.params.serial!)));
        // E5
        scope.delete("/certs/:serial", handle(ERR.revoke, 200, async (req) => service.revoke(bearer(req), req.params.serial!)));
        // E6, also where the SDK looks (nginx strips /svccerts in front of the original).
        const list = handle(ERR.retrieve, 200, async (req) => {
          const { q, limit } = listQuery(req);
          const token = bearer(req);
          if (limit > MAX_LIMIT) throw fail(400, ERR.limit);
          return service.list(token, req.params.id!, q);
        });
        scope.get("/things/:id/serials", noHead, list);
        scope.get("/svccerts/things/:id/serials", noHead, list);
        // E7
        scope.get("/certs/:serial/download", noHead, handle(ERR.retrieve, 200, async (req) => {
          const { kind, key } = thingKey(req);
          return service.download(kind, key, req.params.serial!);
        }));
      });
    },
  };
  return { module, service };
}
