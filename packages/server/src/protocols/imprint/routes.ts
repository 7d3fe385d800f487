/**
 * imprint's three endpoints as a protocol module named "imprint"
 * (docs/protocols/imprint.md): decode with the Go-compatible codec, one
 * service call, encode. Methods other than POST get 405 as Go's mux answers
 * (on /renew only after the client certificate was accepted, as the
 * original's middleware runs first).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ProtocolModule } from "../../http/app.js";
import { noteRefusal } from "../../http/enrollment-failures.js";
import type { ImprintConfig } from "../../config/types.js";
import { IMPRINT_ERRORS as E, decodeGoJson, rfc3339, sendEnrollment, sendText } from "./codec.js";
import { ImprintFailure, ImprintService, type ImprintAuthority } from "./service.js";

const OTHER_METHODS = ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"] as const;
const ENROLL_FIELDS = ["build_secret", "fingerprint", "hostname", "os", "arch", "csr"] as const;
const CHALLENGE_FIELDS = ["server_id", "fingerprint", "expired_cert", "csr", "proof"] as const;

/** Answers a refusal in imprint's form and logs why. */
function refuse(req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  const f = err instanceof ImprintFailure ? err : new ImprintFailure(500, E.internal, err instanceof Error ? err.message : String(err));
  const level = f.status >= 500 ? "error" : "info";
  req.log[level]({ protocol: "imprint", route: req.url, status: f.status, code: f.code, reason: f.reason }, "imprint request refused");
  noteRefusal(req, f.reason, f.code);
  return sendText(reply, f.status, f.body);
}

/** The client address without its port (W21: the original stored ip:port). */
function ipOf(req: FastifyRequest): string | null {
  return req.ip || null;
}

/** Builds the imprint protocol module. */
export function imprintRoutes(deps: { authority: ImprintAuthority; config: ImprintConfig; now?: () => Date }): ProtocolModule {
  const service = new ImprintService(deps.authority, deps.config, deps.now);
  return {
    name: "imprint",
    register(app: FastifyInstance) {
      app.register(async (scope) => {
        // Oversized or unreadable bodies are "invalid request body" here, not the generic JSON error.
        scope.setErrorHandler((err, req, reply) => {
          const status = (err as { statusCode?: number }).statusCode ?? 500;
          if (status === 413 || status === 400 || status === 415) return refuse(req, reply, new ImprintFailure(400, E.invalidBody, (err as Error).message));
          return refuse(req, reply, err);
        });
        const notAllowed = (_req: FastifyRequest, reply: FastifyReply) => {
          reply.header("allow", "POST");
          return sendText(reply, 405, E.methodNotAllowed);
        };

        scope.post("/api/v1/enroll", async (req, reply) => {
          const body = decodeGoJson(req.body as Buffer | undefined, ENROLL_FIELDS);
          if (!body) return refuse(req, reply, new ImprintFailure(400, E.invalidBody, "body is not a JSON object of strings"));
          if (!body.build_secret || !body.fingerprint || !body.csr) return refuse(req, reply, new ImprintFailure(400, E.missingEnrollFields, "missing fields"));
          try {
            const r = await service.enroll({
              buildSecret: body.build_secret, fingerprint: body.fingerprint, hostname: body.hostname, os: body.os, arch: body.arch, csr: body.csr, ip: ipOf(req),
            });
            if ("pending" in r) {
              req.log.info({ protocol: "imprint", serverId: r.pending.serverId, request: r.pending.requestId }, "imprint enrollment waits for approval");
              const json = JSON.stringify({
                status: "pending",
                server_id: r.pending.serverId,
                request_id: r.pending.requestId,
                message: "enrollment is waiting for operator approval; enroll again later",
              });
              return reply.code(202).type("application/json").header("retry-after", "3600").send(json + "\n");
            }
            return sendEnrollment(reply, r.issued);
          } catch (err) {
            return refuse(req, reply, err);
          }
        });
        scope.route({ method: [...OTHER_METHODS], url: "/api/v1/enroll", handler: notAllowed });

        const renew = async (req: FastifyRequest, reply: FastifyReply) => {
          let who;
          try {
            who = await service.renewer(await req.peer());
          } catch (err) {
            return refuse(req, reply, err);
          }
          if (req.method !== "POST") return notAllowed(req, reply);
          const body = decodeGoJson(req.body as Buffer | undefined, ["csr"] as const);
          if (!body) return refuse(req, reply, new ImprintFailure(400, E.invalidBody, "body is not a JSON object of strings"));
          if (!body.csr) return refuse(req, reply, new ImprintFailure(400, E.missingCsr, "missing csr"));
          try {
            const issued = await service.renew(who, body.csr, ipOf(req));
            reply.header("x-imprint-cert-expires", rfc3339(who.certificate.notAfter));
            return sendEnrollment(reply, issued);
          } catch (err) {
            return refuse(req, reply, err);
          }
        };
        scope.route({ method: ["POST", ...OTHER_METHODS], url: "/api/v1/renew", handler: renew });

        scope.post("/api/v1/renew/challenge", async (req, reply) => {
          const body = decodeGoJson(req.body as Buffer | undefined, CHALLENGE_FIELDS);
          if (!body) return refuse(req, reply, new ImprintFailure(400, E.invalidBody, "body is not a JSON object of strings"));
          if (CHALLENGE_FIELDS.some((f) => body[f] === "")) return refuse(req, reply, new ImprintFailure(400, E.missingChallengeFields, "missing fields"));
          try {
            const issued = await service.challenge({
              serverId: body.server_id, fingerprint: body.fingerprint, expiredCert: body.expired_cert, csr: body.csr, proof: body.proof, ip: ipOf(req),
            });
            return sendEnrollment(reply, issued);
          } catch (err) {
            return refuse(req, reply, err);
          }
        });
        scope.route({ method: [...OTHER_METHODS], url: "/api/v1/renew/challenge", handler: notAllowed });
      });
    },
  };
}
