/**
 * Caramel's HTTP surface as a protocol module named "caramel" (spec
 * caramel.md §1–§2): `/root.crt`, `/bundle.crt`, `POST`/`GET`/`HEAD
 * /{sha256}`, problem+json errors, Python's pending body; plus `Last-Modified`
 * and `304` for a matching `If-Modified-Since` on signed certificates.
 */
import { createHash } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ProtocolModule } from "../../http/app.js";
import { noteRefusal } from "../../http/enrollment-failures.js";
import { sendRaw } from "../../http/raw-reply.js";
import type { CaramelConfig } from "../../config/types.js";
import { CaramelFailure, CaramelService, type CaramelAuthority } from "./service.js";

const MAX_BODY = 2048;
const SHA_RE = /^[0-9a-f]{64}$/;
const TITLES: Record<number, string> = { 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 411: "Length Required", 413: "Request Entity Too Large", 500: "Internal Server Error" };
/** Methods a path answers; any other method gets 404, never 405 (spec §2). */
const ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] as const;

/** JSON as Python's json.dumps writes it with ensure_ascii: non-ASCII as \uXXXX. */
function asciiJson(value: unknown, separators: "compact" | "python" = "compact"): string {
  const text = separators === "compact" ? JSON.stringify(value) : JSON.stringify(value).replace(/","/g, '", "').replace(/":"/g, '": "');
  return text.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** An application/problem+json answer (RFC 7807 as the original writes it). */
function problem(reply: FastifyReply, status: number, detail: string | null): FastifyReply {
  return sendRaw(reply, status, { "Content-Type": "application/problem+json" }, asciiJson({ status, title: TITLES[status] ?? "Error", detail }));
}

/** The pending body: {"sha256": "<hex>", "url": "<scheme>://<Host>/<hex>"} with Python's spacing. */
function pending(req: FastifyRequest, reply: FastifyReply, sha256: string): FastifyReply {
  const host = req.headers.host ?? "localhost";
  return sendRaw(reply, 202, { "Content-Type": "application/json" }, asciiJson({ sha256, url: `https://${host}/${sha256}` }, "python"));
}

/** Builds the Caramel protocol module (mounted on the main listener). */
export function caramelRoutes(deps: { authority: CaramelAuthority; config: CaramelConfig; now?: () => Date }): { module: ProtocolModule; service: CaramelService } {
  const service = new CaramelService(deps.authority, deps.config, deps.now);
  const refuse = (req: FastifyRequest, reply: FastifyReply, err: unknown) => {
    const f = err instanceof CaramelFailure ? err : new CaramelFailure(500, null, err instanceof Error ? err.stack ?? err.message : String(err));
    req.log[f.status >= 500 ? "error" : "info"]({ protocol: "caramel", route: req.url, status: f.status, reason: f.reason }, "caramel request refused");
    noteRefusal(req, f.reason);
    return problem(reply, f.status, f.detail);
  };

  const caCert = async (_req: FastifyRequest, reply: FastifyReply) =>
    sendRaw(reply, 200, { "Content-Type": "text/plain; charset=UTF-8", "Cache-Control": "max-age=3600", Expires: new Date(Date.now() + 3600_000).toUTCString() }, service.rootPem());

  const bySha = async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split("?")[0]!;
    const sha256 = path.replace(/^\/+/, "");
    if (!SHA_RE.test(sha256) || !["GET", "HEAD", "POST"].includes(req.method)) return problem(reply, 404, path); // wrong method: 404, never 405
    try {
      if (req.method === "POST") {
        // Checks 1–3 (spec §2.1) in order; a chunked body has no Content-Length but is complete here.
        const chunked = /chunked/i.test(String(req.headers["transfer-encoding"] ?? ""));
        if (req.headers["content-length"] === undefined && !chunked) throw new CaramelFailure(411, null);
        const body = (req.body as Buffer | undefined) ?? Buffer.alloc(0);
        if (Number(req.headers["content-length"] ?? body.length) > MAX_BODY || body.length > MAX_BODY) throw new CaramelFailure(413, "Max size: 2.0 kB");
        const computed = createHash("sha256").update(body).digest("hex");
        if (computed !== sha256) throw new CaramelFailure(400, `hash mismatch (${computed})`);
        const peer = await req.peer();
        await service.submit(body, sha256, peer.status === "verified" ? peer.certificate : undefined);
        req.log.info({ protocol: "caramel", sha256 }, "caramel request stored");
        return pending(req, reply, sha256);
      }
      const r = await service.poll(sha256);
      if (r.state === "unknown") return problem(reply, 404, null);
      if (r.state === "rejected") return problem(reply, 403, null);
      if (r.state === "pending") return pending(req, reply, sha256);
      // Improvement over the original (which never answers 304): Last-Modified, and 304 when the client has it.
      const issued = Math.floor(r.certificate.issuedAt.getTime() / 1000) * 1000;
      const since = Date.parse(String(req.headers["if-modified-since"] ?? ""));
      const lastModified = new Date(issued).toUTCString();
      if (!Number.isNaN(since) && since >= issued) return sendRaw(reply, 304, { "Last-Modified": lastModified });
      return sendRaw(reply, 200, { "Content-Type": "application/octet-stream", "Last-Modified": lastModified }, r.pem);
    } catch (err) {
      return refuse(req, reply, err);
    }
  };

  const module: ProtocolModule = {
    name: "caramel",
    register(app: FastifyInstance) {
      app.register(async (scope) => {
        // Caramel's clients post without a Content-Type (or as a form); the body is the PEM either way.
        scope.addHook("onRequest", async (req) => {
          if (req.method === "POST" && !req.headers["content-type"]) req.headers["content-type"] = "application/octet-stream";
        });
        scope.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
          const status = err.statusCode === 413 ? 413 : err.statusCode && err.statusCode < 500 ? 400 : 500;
          return refuse(req, reply, new CaramelFailure(status, status === 413 ? "Max size: 2.0 kB" : status === 400 ? "malformed request" : null, err.message));
        });
        scope.get("/root.crt", caCert);
        scope.get("/bundle.crt", caCert);
        // GET / is the clients' TLS trust probe: any answer will do; the original's is a 404 problem.
        scope.route({ method: [...ALL_METHODS], url: "/", handler: async (req, reply) => problem(reply, 404, "/") });
        // Only 64 lower-case hex digits are Caramel's; any other path stays with the listener's own 404.
        scope.route({ method: [...ALL_METHODS], url: "/:sha256(^[0-9a-f]{64}$)", handler: bySha, bodyLimit: 64 * 1024 });
      });
    },
  };
  return { module, service };
}
