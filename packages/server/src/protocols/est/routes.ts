/**
 * EST (RFC 7030) as a protocol module named "est": `/.well-known/est/<op>`
 * and `/.well-known/est/<label>/<op>` (§3.2.2), the label choosing the
 * profile and the authentication. Each route decodes, makes one service
 * call, and answers in EST's exact framing (wire.ts).
 */
import * as fs from "node:fs";
import type { TLSSocket } from "node:tls";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { parseCertificate, pemDecodeAll, type ParsedCertificate } from "@tessera/pki";
import type { ProtocolModule } from "../../http/app.js";
import { noteRefusal } from "../../http/enrollment-failures.js";
import { sentChain } from "../../http/peer.js";
import type { EstConfig, EstLabelConfig } from "../../config/types.js";
import { TesseraError } from "../../errors.js";
import { EstService, type EstAuthority, type EstLabel, type EstRequestContext } from "./service.js";
import { tlsUnique } from "./tls-unique.js";
import { EST_TYPES, EstFailure, decodeCsrBody, mediaType, sendBase64, sendCertsOnly, sendFailure, sendRaw, sendServerKeygen } from "./wire.js";

const BASE = "/.well-known/est";
const GET_OPS = new Set(["cacerts", "csrattrs"]);
const POST_OPS = new Set(["simpleenroll", "simplereenroll", "serverkeygen", "fullcmc"]);

/** Reads a label's bootstrap CA files (PEM, any number of certificates each). Throws TesseraError on a bad file. */
function readBootstrapRoots(key: string, files: readonly string[]): ParsedCertificate[] {
  return files.flatMap((file) => {
    try {
      const certs = pemDecodeAll(fs.readFileSync(file, "utf8")).filter((b) => b.label === "CERTIFICATE").map((b) => parseCertificate(b.der));
      if (certs.length === 0) throw new Error("no CERTIFICATE block");
      return certs;
    } catch (err) {
      throw new TesseraError("TESSERA_ERR_CONFIG_INVALID", { message: `${key}.bootstrap_ca: cannot read ${file}`, detail: (err as Error).message, cause: err });
    }
  });
}

/** The labels of a configuration, "" being the label-less path. */
export function estLabels(config: EstConfig): Map<string, EstLabel> {
  const entries: Array<[string, EstLabelConfig, string]> = [["", config.default, "est"], ...Object.entries(config.labels).map(([n, l]): [string, EstLabelConfig, string] => [n, l, `est.labels.${n}`])];
  return new Map(entries.map(([name, cfg, key]) => [name, { name, config: cfg, bootstrapRoots: readBootstrapRoots(key, cfg.bootstrapCa) }]));
}

/** PEM of every bootstrap CA, for the TLS CertificateRequest (Go and Java clients send a certificate only when its issuer is listed). */
export function estClientCaNames(config: EstConfig): string {
  const files = new Set([config.default, ...Object.values(config.labels)].flatMap((l) => l.bootstrapCa));
  return [...files].map((f) => fs.readFileSync(f, "utf8").trim() + "\n").join("");
}

/** Splits the path after /.well-known/est into label and operation; undefined when it has neither one nor two segments. */
function route(path: string): { label: string; op: string } | undefined {
  const rest = path.slice(BASE.length).replace(/^\//, "");
  const parts = rest.split("/");
  if (parts.length === 1 && parts[0] !== "") return { label: "", op: parts[0]! };
  if (parts.length === 2 && parts[0] !== "" && parts[1] !== "") {
    try {
      return { label: decodeURIComponent(parts[0]!), op: parts[1]! };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Builds the EST protocol module. */
export function estRoutes(deps: { authority: EstAuthority; config: EstConfig; now?: () => Date }): ProtocolModule {
  const service = new EstService(deps.authority, deps.now);
  const labels = estLabels(deps.config);

  const answer = (req: FastifyRequest, reply: FastifyReply, f: EstFailure, op: string, label: string) => {
    const level = f.status >= 500 ? "error" : f.status === 401 || f.status === 202 ? "info" : "warn";
    req.log[level]({ protocol: "est", op, label, status: f.status, reason: f.reason }, f.status === 202 ? "EST enrollment waits for approval" : "EST request refused");
    noteRefusal(req, f.reason);
    return sendFailure(reply, f);
  };

  const handle = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const path = req.url.split("?")[0]!;
    const at = route(path);
    if (!at) return answer(req, reply, new EstFailure(404, "not an EST operation", path), "?", "?");
    const { op } = at;
    const label = labels.get(at.label);
    try {
      if (!label) throw new EstFailure(404, `unknown EST label ${JSON.stringify(at.label)}`);
      if (!GET_OPS.has(op) && !POST_OPS.has(op)) throw new EstFailure(404, `unknown EST operation ${JSON.stringify(op)}`);
      const method = GET_OPS.has(op) ? "GET" : "POST";
      if (req.method !== method) throw new EstFailure(405, `${op} takes ${method}`, `${req.method} ${op}`, { Allow: method });

      if (op === "cacerts") return sendCertsOnly(reply, service.cacerts());
      if (op === "csrattrs") {
        const der = service.csrattrs(label);
        // None: 204 with an empty body (Bouncy Castle fails on a 404 with a body).
        return der ? sendBase64(reply, EST_TYPES.csrattrs, der) : sendRaw(reply, 204, {});
      }
      if (op === "fullcmc") throw new EstFailure(501, "fullcmc is not implemented");
      if (mediaType(req.headers["content-type"]) !== "application/pkcs10") {
        throw new EstFailure(415, `${op} takes application/pkcs10`, `Content-Type ${JSON.stringify(req.headers["content-type"] ?? "")}`);
      }
      const socket = req.raw.socket as TLSSocket;
      const ctx: EstRequestContext = {
        peer: await req.peer(),
        chain: sentChain(socket),
        authorization: req.headers.authorization,
        tlsUnique: tlsUnique(socket),
      };
      if (op === "simplereenroll") {
        const der = decodeCsrBody(req.body as Buffer | undefined);
        const issued = await service.reenroll(label, ctx, der);
        req.log.info({ protocol: "est", op, label: label.name }, "EST certificate re-enrolled");
        return sendCertsOnly(reply, [issued]);
      }
      const caller = await service.authenticate(label, ctx);
      const der = decodeCsrBody(req.body as Buffer | undefined);
      if (op === "simpleenroll") {
        const r = await service.enroll(label, caller, der, ctx.tlsUnique);
        if ("pending" in r) return answer(req, reply, pending(r.pending), op, label.name);
        req.log.info({ protocol: "est", op, label: label.name, via: caller.via }, "EST certificate enrolled");
        return sendCertsOnly(reply, [r.certificate]);
      }
      const r = await service.serverKeygen(label, caller, der, ctx.tlsUnique);
      if ("pending" in r) return answer(req, reply, pending(r.pending), op, label.name);
      req.log.info({ protocol: "est", op, label: label.name, via: caller.via }, "EST server-generated key issued");
      return sendServerKeygen(reply, r.pkcs8, r.certificate);
    } catch (err) {
      const f = err instanceof EstFailure ? err : new EstFailure(500, "internal error", err instanceof Error ? err.stack ?? err.message : String(err));
      return answer(req, reply, f, op, at.label);
    }
  };

  return {
    name: "est",
    register(app: FastifyInstance) {
      app.register(async (scope) => {
        // Oversized, unreadable or mistyped bodies fail before the handler: answer them in EST's form too.
        scope.setErrorHandler((err: Error, req, reply) => {
          const status = (err as { statusCode?: number }).statusCode ?? 500;
          const f =
            status === 413 ? new EstFailure(413, "request body too large", err.message)
            : status === 415 ? new EstFailure(415, "unsupported content type", err.message)
            : status >= 400 && status < 500 ? new EstFailure(400, "malformed request", err.message)
            : new EstFailure(500, "internal error", err.message);
          return answer(req, reply, f, "?", "?");
        });
        scope.all(BASE, handle);
        scope.all(`${BASE}/*`, handle);
      });
    },
  };
}

function pending(p: { requestId: string; retryAfter: number }): EstFailure {
  // 202: Retry-After in whole seconds (libest parses nothing else), empty body (RFC 7030 §4.2.3).
  return new EstFailure(202, "", `request ${p.requestId} is pending approval`, { "Retry-After": String(Math.max(1, Math.round(p.retryAfter))) });
}
