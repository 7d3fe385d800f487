/**
 * Framework adapters around the verifier: one guard object that is at once
 * Express/Connect middleware, a wrapper for plain node:http/https handlers
 * and a Fastify onRequest hook. Refusals are written as JSON
 * `{"error":{"code","message"}}` with status 401 or 403.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { refusalBody, type Refusal } from "./errors.js";
import { attachIdentity } from "./identity.js";
import { createMtlsVerifier, type MtlsOptions, type MtlsVerifier } from "./verifier.js";

/** The parts of a Fastify request the hook uses (declared here so fastify stays a dev dependency). */
export interface FastifyRequestLike {
  raw: IncomingMessage;
}

/** The parts of a Fastify reply the hook uses. */
export interface FastifyReplyLike {
  code(statusCode: number): unknown;
  header(key: string, value: string): unknown;
  send(payload: string): unknown;
}

/** An mTLS guard: call it as Express/Connect middleware, or use `handler` (node:http) or `fastify` (onRequest hook). */
export interface MtlsGuard {
  /** Express/Connect middleware: refuses with 401/403 JSON, or sets `req.tessera` and calls `next()`. */
  (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void;
  /** Wraps a node:http/https request listener so it only runs for verified devices; read the device with deviceIdentity(req). */
  handler<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
    listener: (req: Req, res: Res) => unknown,
  ): (req: Req, res: Res) => void;
  /** Fastify onRequest hook: `app.addHook("onRequest", guard.fastify)`; sets `request.tessera` on success. */
  fastify: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>;
  /** The verifier behind the guard. */
  verifier: MtlsVerifier;
  /** Resolves when the CRLs have loaded once, rejects if the first load failed (requests arriving meanwhile wait for that load). */
  ready(): Promise<void>;
  /** Stops CRL refresh timers and the revocation feed. */
  close(): void;
}

function writeRefusal(res: ServerResponse, r: Refusal): void {
  if (res.headersSent) return void res.destroy();
  const body = refusalBody(r);
  res.statusCode = r.status;
  res.setHeader("content-type", "application/json");
  res.setHeader("content-length", Buffer.byteLength(body));
  res.setHeader("cache-control", "no-store");
  res.end(body);
}

function writeInternal(res: ServerResponse): void {
  if (res.headersSent) return void res.destroy();
  const body = JSON.stringify({ error: { code: "TESSERA_ERR_INTERNAL", message: "internal error" } });
  res.statusCode = 500;
  res.setHeader("content-type", "application/json");
  res.setHeader("content-length", Buffer.byteLength(body));
  res.end(body);
}

/**
 * Creates an mTLS guard from verifier options (or an existing verifier).
 * The server must request a client certificate (see mtlsServerOptions); the
 * guard then does all verification itself and never relies on
 * `socket.authorized`.
 */
export function requireMTLS(options: MtlsOptions | MtlsVerifier): MtlsGuard {
  const verifier: MtlsVerifier = "verifySocket" in options ? options : createMtlsVerifier(options);

  const middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void => {
    verifier.verifySocket(req.socket).then(
      (out) => {
        if (!out.ok) return writeRefusal(res, out.refusal);
        attachIdentity(req, out.identity);
        next();
      },
      // authorize() threw: hand it to the framework's error handling.
      (err) => next(err),
    );
  };

  const guard = middleware as MtlsGuard;
  guard.verifier = verifier;
  guard.handler = <Req extends IncomingMessage, Res extends ServerResponse>(listener: (req: Req, res: Res) => unknown) => (req: Req, res: Res) => {
    middleware(req, res, (err?: unknown) => {
      if (err) return writeInternal(res);
      let result: unknown;
      try {
        result = listener(req, res);
      } catch {
        return writeInternal(res);
      }
      // An async listener that rejects would otherwise be an unhandled rejection (and end the process).
      if (result && typeof (result as Promise<unknown>).then === "function") (result as Promise<unknown>).then(undefined, () => writeInternal(res));
    });
  };
  guard.fastify = async (request, reply) => {
    const out = await verifier.verifySocket(request.raw.socket);
    if (!out.ok) {
      reply.code(out.refusal.status);
      reply.header("content-type", "application/json");
      reply.header("cache-control", "no-store");
      reply.send(refusalBody(out.refusal));
      // Returning the reply tells Fastify the hook answered and the route must not run.
      return reply;
    }
    attachIdentity(request, out.identity);
    attachIdentity(request.raw, out.identity);
    return undefined;
  };
  guard.ready = () => verifier.ready();
  guard.close = () => verifier.close();
  return guard;
}
