/**
 * The OCSP responder over HTTP (RFC 6960 Appendix A, RFC 5019 §5–6):
 * `POST /ocsp` with an `application/ocsp-request` body, or
 * `GET /ocsp/<url-encoded base64 of the DER request>`; both answer
 * `application/ocsp-response`. Mounted on the main listener (protocol name
 * "ocsp") and on the plain-HTTP listener, where relying parties usually
 * look. Every OCSP-level outcome is HTTP 200 with the OCSP status inside
 * (malformedRequest, unauthorized, internalError…), as OpenSSL's own
 * responder does, so that clients can read it. Answers without a nonce carry
 * RFC 5019 §6.2 caching headers (max-age up to nextUpdate, ETag,
 * Last-Modified), so HTTP caches and CDNs can serve them.
 */
import { createHash } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { decodeOcspGetPath, ocspErrorResponse } from "@tessera/pki";
import type { OcspAnswer, OcspResponder } from "../authority/ocsp-service.js";
import type { ProtocolModule } from "./app.js";

/** Largest request accepted, bytes: 32 CertIDs with a nonce and a signature fit easily. */
const BODY_LIMIT = 16 * 1024;

/** The fixed caching headers of a cacheable answer, made once per answer: cached answers are the same Buffer every time. */
interface CacheHeaders {
  lastModified: string;
  expires: string;
  etag: string;
}
const cacheHeaders = new WeakMap<Buffer, CacheHeaders>();

function headersOf(a: OcspAnswer & { thisUpdate: Date; nextUpdate: Date }): CacheHeaders {
  let h = cacheHeaders.get(a.der);
  if (!h) {
    h = { lastModified: a.thisUpdate.toUTCString(), expires: a.nextUpdate.toUTCString(), etag: `"${createHash("sha1").update(a.der).digest("hex")}"` };
    cacheHeaders.set(a.der, h);
  }
  return h;
}

function send(reply: FastifyReply, a: OcspAnswer, now: Date): FastifyReply {
  reply.code(200).type("application/ocsp-response");
  if (a.cacheable && a.nextUpdate && a.thisUpdate) {
    const maxAge = Math.max(0, Math.floor((a.nextUpdate.getTime() - now.getTime()) / 1000));
    const h = headersOf(a as OcspAnswer & { thisUpdate: Date; nextUpdate: Date });
    reply
      .header("cache-control", `max-age=${maxAge}, public, no-transform, must-revalidate`)
      .header("last-modified", h.lastModified)
      .header("expires", h.expires)
      .header("etag", h.etag);
  } else {
    reply.header("cache-control", "no-store");
  }
  return reply.send(a.der);
}

const malformed = (): OcspAnswer => ({ der: ocspErrorResponse("malformedRequest"), status: "malformedRequest", cacheable: false });

/** The OCSP routes as a protocol module named "ocsp"; `now` feeds max-age (default: the system clock). */
export function ocspRoutes(deps: { ocsp: OcspResponder; now?: () => Date }): ProtocolModule {
  const now = deps.now ?? (() => new Date());
  const post = async (req: FastifyRequest, reply: FastifyReply) => {
    const body = req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) return send(reply, malformed(), now());
    return send(reply, await deps.ocsp.respond(body), now());
  };
  const get = async (req: FastifyRequest, reply: FastifyReply) => {
    // The raw URL, not the router's parameter: base64 holds "/" and "+", and the main
    // listener folds "//" (ignoreDuplicateSlashes), which would corrupt the request.
    const raw = (req.raw.url ?? "").split("?")[0]!;
    const m = /^\/+ocsp\/(.+)$/.exec(raw);
    let der: Buffer;
    try {
      if (!m) throw new Error("no request in the path");
      der = decodeOcspGetPath(m[1]!);
    } catch {
      return send(reply, malformed(), now());
    }
    return send(reply, await deps.ocsp.respond(der), now());
  };
  return {
    name: "ocsp",
    register(app: FastifyInstance) {
      app.register(async (scope) => {
        // The plain-HTTP listener has no catch-all body parser: take any body as bytes here.
        scope.removeAllContentTypeParsers();
        scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));
        // On the POST routes only: a GET (the cached, hot path) has no body to type.
        const defaultType = (req: FastifyRequest, _reply: FastifyReply, done: () => void) => {
          if (!req.headers["content-type"]) req.headers["content-type"] = "application/ocsp-request";
          done();
        };
        scope.post("/ocsp", { bodyLimit: BODY_LIMIT, onRequest: defaultType }, post);
        scope.post("/ocsp/", { bodyLimit: BODY_LIMIT, onRequest: defaultType }, post);
        scope.get("/ocsp/*", get);
      });
    },
  };
}
