/**
 * liteboot's REST API as a dedicated protocol module (mounted only on the
 * liteboot listener): a gate that admits bootstrap certificates (and device
 * certificates for kur/krr) and drops every other connection without an
 * answer, as the original refuses them at the handshake; then the routes of
 * spec §3 with the original's status codes, bodies and content types.
 */
import type { TLSSocket } from "node:tls";
import busboy from "busboy";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { parseCrlReason, pemDecodeAll } from "@tessera/pki";
import type { ProtocolModule } from "../../http/app.js";
import { noteRefusal } from "../../http/enrollment-failures.js";
import { sendRaw } from "../../http/raw-reply.js";
import type { LitebootConfig } from "../../config/types.js";
import {
  LITEBOOT_ERRORS as E, TYPES, decodeCsrBody, decodeFirstCbor, encodeCborMap, goJsonObject, goString, parseSerialPath, parseUuidPath, selectEncoding,
  sendError, sendOk, type Encoding,
} from "./codec.js";
import { LitebootFailure, LitebootService, type LitebootAuthority, type LitebootCaller } from "./service.js";

/** Largest PEM file p10cr takes (spec §3.2). */
const MAX_PEM_FILE = 4096;
const callers = new WeakMap<object, Promise<{ caller?: LitebootCaller; reason: string }>>();
/** The Content-Type each request arrived with (absent and empty select JSON; Fastify itself would refuse a body without one). */
const sentTypes = new WeakMap<object, string | undefined>();
const contentTypeOf = (req: FastifyRequest) => sentTypes.get(req.raw);

/** Go's http.DetectContentType says text/plain; charset=utf-8 for text without binary bytes that is valid UTF-8. */
function sniffsAsText(data: Buffer): boolean {
  const head = data.subarray(0, 512);
  if (head.some((b) => b <= 0x08 || b === 0x0b || (b >= 0x0e && b <= 0x1a) || (b >= 0x1c && b <= 0x1f))) return false;
  const text = head.toString("utf8");
  if (/^\s*(<\?xml|<!DOCTYPE|<html|%PDF-|GIF8|\x89PNG)/i.test(text)) return false;
  return Buffer.from(text, "utf8").equals(head) || data.length > 512;
}

/** Reads the `csrfile` part of a multipart/form-data body; throws LitebootFailure in the original's order of checks. */
function readCsrFile(req: FastifyRequest): Promise<Buffer> {
  const fail = (body: string, reason?: string) => new LitebootFailure(400, TYPES.json, body, reason);
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { fileSize: MAX_PEM_FILE, files: 8, fields: 32 } });
    } catch (err) {
      return reject(fail(E.noMultipart, (err as Error).message));
    }
    let file: Buffer | undefined;
    let tooLarge = false;
    bb.on("file", (field, stream) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => field === "csrfile" && file === undefined && chunks.push(c));
      stream.on("limit", () => field === "csrfile" && (tooLarge = true));
      stream.on("end", () => {
        if (field === "csrfile" && file === undefined) file = Buffer.concat(chunks);
      });
    });
    bb.on("error", (err) => reject(fail(E.noMultipart, (err as Error).message)));
    bb.on("close", () => {
      if (file === undefined) return reject(fail(E.missingFile));
      if (tooLarge) return reject(fail(E.fileTooLarge));
      resolve(file);
    });
    bb.end((req.body as Buffer | undefined) ?? Buffer.alloc(0));
  });
}

/** The one PEM CERTIFICATE REQUEST of an uploaded file (spec §3.2 checks 5–7). */
function pemCsr(file: Buffer): Buffer {
  const fail = (body: string) => new LitebootFailure(400, TYPES.json, body);
  if (!sniffsAsText(file)) throw fail(E.fileType);
  const text = file.toString("utf8");
  const blocks = pemDecodeAll(text);
  const end = /-----END [A-Z0-9 ]+-----(\r?\n)?/.exec(text);
  const rest = end ? text.slice(end.index + end[0].length) : "";
  if (blocks.length === 0 || rest.length > 0) throw fail(E.pemBlocks);
  if (blocks[0]!.label !== "CERTIFICATE REQUEST") throw fail(E.pemType);
  return blocks[0]!.der;
}

/** Builds the liteboot protocol module. */
export function litebootRoutes(deps: { authority: LitebootAuthority; config: LitebootConfig; events?: readonly string[] }): ProtocolModule {
  const service = new LitebootService(deps.authority, deps.config, deps.events ?? []);
  const cfg = deps.config;

  const refuse = (req: FastifyRequest, reply: FastifyReply, err: unknown, encoding: Encoding | undefined) => {
    const f = err instanceof LitebootFailure ? err : new LitebootFailure(500, "", "err: internal error", err instanceof Error ? err.stack ?? err.message : String(err));
    const type = f.contentType !== "" ? f.contentType : encoding === "cbor" ? TYPES.cbor : encoding === "json" ? TYPES.json : TYPES.text;
    req.log[f.status >= 500 ? "error" : "warn"]({ protocol: "liteboot", route: req.url, status: f.status, reason: f.reason }, "liteboot request refused");
    noteRefusal(req, f.reason);
    return sendError(reply, f.status, type, f.body);
  };
  const callerOf = (req: FastifyRequest) => callers.get(req.raw.socket)!;
  const bootstrapOnly = async (req: FastifyRequest) => {
    const { caller } = await callerOf(req);
    if (caller?.kind !== "bootstrap") throw new Error("gate let a non-bootstrap caller through");
    return caller;
  };
  const ip = (req: FastifyRequest) => req.ip || null;

  const crAnswer = (reply: FastifyReply, encoding: Encoding, der: Buffer, caller: LitebootCaller) => {
    const hub = cfg.appendHubToCr ? service.ccs(caller) : undefined;
    const json = `{"Status":0,"Cert":${goString(der.toString("base64"))}${hub ? `,"Hubname":${goString(hub.hubname)},"Port":${hub.mqttPort}` : ""}}`;
    return sendOk(reply, encoding, json, () => encodeCborMap([[1, 0], [2, der], ...(hub ? ([[3, hub.hubname], [4, hub.mqttPort]] as const) : [])]));
  };

  return {
    name: "liteboot",
    dedicated: true,
    register(app: FastifyInstance) {
      // The gate: every request, every path (spec §1: the original checks at the handshake, before any route).
      app.addHook("onRequest", async (req, reply) => {
        const sent = req.headers["content-type"];
        sentTypes.set(req.raw, sent);
        if (!sent) req.headers["content-type"] = "application/octet-stream";
        const socket = req.raw.socket as TLSSocket;
        let verdict = callers.get(socket);
        if (!verdict) {
          verdict = req.peer().then((peer) => service.classify(peer));
          callers.set(socket, verdict);
        }
        const { caller, reason } = await verdict;
        const path = req.url.split("?")[0]!;
        const deviceRoute = path === "/api/v1/kur" || path === "/api/v1/krr";
        const admitted = caller && (caller.kind === "bootstrap" || deviceRoute);
        if (!admitted) {
          req.log.warn({ protocol: "liteboot", route: path, reason: caller ? "a device certificate may only use kur and krr" : reason }, "liteboot connection refused");
          reply.hijack();
          socket.destroy();
        }
      });

      // Bodies Fastify refuses before a route runs (too large, unreadable), in liteboot's error form.
      app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
        const status = err.statusCode ?? 500;
        const body = status === 413 ? '{"error": "Bad request: body too large"}' : status < 500 ? E.undecodable : '{"error": "internal error"}';
        return refuse(req, reply, new LitebootFailure(status, TYPES.text, body, err.message), undefined);
      });
      app.all("/", async (_req, reply) => sendRaw(reply, 200, { "Content-Type": "text/plain; charset=utf-8" }, E.root));
      app.all("/api/v1", async (_req, reply) => sendRaw(reply, 404, { "Content-Type": TYPES.json }, E.endpointNotFound));
      app.setNotFoundHandler(async (_req, reply) => sendRaw(reply, 404, { "Content-Type": TYPES.text, "X-Content-Type-Options": "nosniff" }, E.notFound));
      const only = (method: "GET" | "POST", url: string, handler: (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>) => {
        app.route({ method, url, handler });
        // gorilla/mux: a known path with another method is 405 with an empty body.
        app.route({ method: ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"].filter((m) => m !== method), url, handler: async (_req, reply) => sendRaw(reply, 405, {}) });
      };

      /** The encoding and CSR of a cr-shaped body (cr, kur), or undefined after the refusal was sent. */
      const crRequest = (req: FastifyRequest, reply: FastifyReply): { encoding: Encoding; der: Buffer } | undefined => {
        const encoding = selectEncoding(contentTypeOf(req));
        if (!encoding) return void refuse(req, reply, new LitebootFailure(400, TYPES.text, E.crContentType), undefined);
        const der = decodeCsrBody(encoding, req.body as Buffer | undefined);
        if (!der) return void refuse(req, reply, new LitebootFailure(400, "", E.undecodable), encoding);
        return { encoding, der };
      };

      only("POST", "/api/v1/cr", async (req, reply) => {
        const body = crRequest(req, reply);
        if (!body) return reply;
        const { encoding, der } = body;
        try {
          const caller = await bootstrapOnly(req);
          const cert = await service.enroll(caller, der, ip(req));
          req.log.info({ protocol: "liteboot", route: "cr", bootstrap: caller.name }, "liteboot certificate issued");
          return crAnswer(reply, encoding, cert, caller);
        } catch (err) {
          return refuse(req, reply, err, encoding);
        }
      });

      only("POST", "/api/v1/p10cr", async (req, reply) => {
        try {
          const der = pemCsr(await readCsrFile(req));
          const caller = await bootstrapOnly(req);
          let cert: Buffer;
          try {
            cert = await service.enroll(caller, der, ip(req));
          } catch (err) {
            if (err instanceof LitebootFailure && err.status >= 500) throw err;
            throw new LitebootFailure(400, TYPES.json, E.invalidCsr, err instanceof Error ? err.message : String(err));
          }
          return sendRaw(reply, 200, { "Content-Disposition": "attachment; filename=USERx.der", "Content-Type": TYPES.pem }, LitebootService.pem(cert));
        } catch (err) {
          return refuse(req, reply, err, "json");
        }
      });

      only("POST", "/api/v1/kur", async (req, reply) => {
        const body = crRequest(req, reply);
        if (!body) return reply;
        const { encoding, der } = body;
        try {
          const { caller } = await callerOf(req);
          if (caller?.kind !== "device") throw new LitebootFailure(403, "", '{"error": "kur needs the device\'s own certificate"}');
          const cert = await service.keyUpdate(caller, der, ip(req));
          req.log.info({ protocol: "liteboot", route: "kur", device: caller.deviceId }, "liteboot key updated");
          return crAnswer(reply, encoding, cert, caller);
        } catch (err) {
          return refuse(req, reply, err, encoding);
        }
      });

      only("POST", "/api/v1/krr", async (req, reply) => {
        const encoding = selectEncoding(contentTypeOf(req));
        if (!encoding) return refuse(req, reply, new LitebootFailure(400, TYPES.text, E.crContentType), undefined);
        const body = (req.body as Buffer | undefined) ?? Buffer.alloc(0);
        let serial: bigint | undefined;
        let reason = "unspecified";
        try {
          if (body.length > 0) {
            if (encoding === "cbor") {
              // {1: uint serial, 2: tstr reason}, both optional.
              const v = decodeFirstCbor(body);
              if (!(v instanceof Map)) throw new Error("not a map");
              const s = v.get(1);
              const r = v.get(2);
              if (s !== undefined) serial = BigInt(s as number | bigint);
              if (typeof r === "string") reason = r;
            } else {
              const o = goJsonObject(body);
              if (!o) throw new Error("not an object");
              const key = (k: string) => Object.keys(o).findLast((x) => x.toLowerCase() === k);
              const s = key("serial") && o[key("serial")!];
              if (typeof s === "string" && /^\d+$/.test(s)) serial = BigInt(s);
              else if (typeof s === "number" && Number.isSafeInteger(s)) serial = BigInt(s);
              else if (s !== undefined && s !== null && s !== "") throw new Error("bad serial");
              const r = key("reason") && o[key("reason")!];
              if (typeof r === "string" && r !== "") reason = r;
            }
          }
          parseCrlReason(reason);
        } catch {
          return refuse(req, reply, new LitebootFailure(400, "", E.undecodable, `krr body or reason ${JSON.stringify(reason)} not understood`), encoding);
        }
        try {
          const { caller } = await callerOf(req);
          if (caller?.kind !== "device") throw new LitebootFailure(403, "", '{"error": "krr needs the device\'s own certificate"}');
          await service.revoke(caller, serial, reason);
          req.log.info({ protocol: "liteboot", route: "krr", device: caller.deviceId, serial: serial?.toString() }, "liteboot certificate revoked");
          return sendOk(reply, encoding, '{"Status":0}', () => encodeCborMap([[1, 0]]));
        } catch (err) {
          return refuse(req, reply, err, encoding);
        }
      });

      const getEncoding = (req: FastifyRequest, reply: FastifyReply): Encoding | undefined => {
        const encoding = selectEncoding(contentTypeOf(req));
        if (!encoding) void refuse(req, reply, new LitebootFailure(400, TYPES.text, E.getContentType), undefined);
        return encoding;
      };

      only("GET", "/api/v1/ds/:uuid", async (req, reply) => {
        const encoding = getEncoding(req, reply);
        if (!encoding) return reply;
        const uuid = parseUuidPath((req.params as { uuid: string }).uuid);
        if (!uuid) return refuse(req, reply, new LitebootFailure(400, TYPES.text, E.needUuid), undefined);
        try {
          const serials = await service.serials(uuid);
          const json = serials.length === 0 ? '{"Status":0,"Serials":null}' : `{"Status":1,"Serials":[${serials.map(String).join(",")}]}`;
          return sendOk(reply, encoding, json, () => encodeCborMap(serials.length === 0 ? [[1, 0], [2, null]] : [[1, 1], [2, serials]]));
        } catch (err) {
          return refuse(req, reply, new LitebootFailure(400, TYPES.text, E.dbUuid, String(err)), undefined);
        }
      });

      const bySerial = async (req: FastifyRequest, reply: FastifyReply, answer: (enc: Encoding, record: NonNullable<Awaited<ReturnType<LitebootService["certificate"]>>>) => FastifyReply) => {
        const encoding = getEncoding(req, reply);
        if (!encoding) return reply;
        const serial = parseSerialPath((req.params as { serial: string }).serial);
        if (serial === undefined) return refuse(req, reply, new LitebootFailure(400, TYPES.text, E.invalidRequest), undefined);
        const record = await service.certificate(serial);
        if (!record) return refuse(req, reply, new LitebootFailure(400, TYPES.text, E.invalidSerial, `serial ${serial}`), undefined);
        return answer(encoding, record);
      };
      only("GET", "/api/v1/cs/:serial", (req, reply) =>
        bySerial(req, reply, (enc, record) => {
          const valid = record.status === "valid" ? 1 : 0;
          return sendOk(reply, enc, `{"Status":${valid}}`, () => encodeCborMap([[1, valid]]));
        }),
      );
      only("GET", "/api/v1/cc/:serial", (req, reply) =>
        bySerial(req, reply, (enc, record) => {
          if (record.status !== "valid") return refuse(req, reply, new LitebootFailure(400, TYPES.text, E.invalidSerial, `serial ${record.serial} is ${record.status}`), undefined);
          const pem = LitebootService.pem(record.der);
          return sendOk(reply, enc, `{"Status":0,"Cert":${goString(pem)}}`, () => encodeCborMap([[1, 0], [2, pem]]));
        }),
      );
      only("GET", "/api/v1/ccs", async (req, reply) => {
        const encoding = getEncoding(req, reply);
        if (!encoding) return reply;
        const { caller } = await callerOf(req);
        const ccs = service.ccs(caller!);
        return sendOk(reply, encoding, `{"Hubname":${goString(ccs.hubname)},"Port":${ccs.mqttPort}}`, () => encodeCborMap([[1, ccs.hubname], [2, ccs.mqttPort]]));
      });
    },
  };
}
