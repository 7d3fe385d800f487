/**
 * The admin API (`/admin/api/v1`, docs/admin-api.md) and the web console's
 * static files (`/admin`) as a module of the main listener. Thin: each route
 * authenticates (role, CSRF), decodes its query or JSON body, makes one call
 * to the admin service, and answers JSON; errors use the generic form.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { pemEncode } from "@tessera/pki";
import type { ProtocolModule } from "../http/app.js";
import { sendError } from "../http/errors.js";
import type { Authority } from "../authority/authority.js";
import type { BootstrapCredentials } from "../authority/bootstrap-credentials.js";
import type { CertificateSort, CertificateStatus, DeviceSort, DeviceStatus, RequestStatus } from "../authority/ports.js";
import type { Role } from "../authority/operator-tokens.js";
import { TesseraError } from "../errors.js";
import { parseDuration } from "../config/duration.js";
import type { AdminAuth, Operator } from "./auth.js";
import type { AdminService } from "./service.js";
import type { JobRunner } from "./jobs.js";
import { adminOpenApi } from "./openapi.js";
import { credentialView, decodeJsonBody, query, type Query } from "./wire.js";
import { registerConsole } from "./console.js";

/** The API's path prefix. */
export const ADMIN_API = "/admin/api/v1";

/** What the module needs. */
export interface AdminRoutesDeps {
  auth: AdminAuth;
  service: AdminService;
  credentials: BootstrapCredentials;
  jobs: JobRunner;
  authority: Pick<Authority, "ca">;
  now: () => Date;
  /** Directory of the built console (packages/web/dist); a page saying how to build it is served when absent. */
  consoleDir: string;
  log?: Logger;
}

type Handler = (req: FastifyRequest, op: Operator, reply: FastifyReply) => Promise<unknown>;

const DEVICE_SORTS: readonly DeviceSort[] = ["id", "status", "protocol", "createdAt", "lastSeenAt", "notAfter"];
const CERT_SORTS: readonly CertificateSort[] = ["issuedAt", "notAfter", "serial", "subject", "status"];
const DEVICE_STATUSES: readonly DeviceStatus[] = ["active", "pending", "revoked", "disabled"];
const CERT_STATUSES: readonly CertificateStatus[] = ["valid", "revoked", "superseded"];
const REQUEST_STATUSES: readonly RequestStatus[] = ["pending", "approved", "rejected"];
const CREDENTIAL_KINDS = ["secret", "certificate", "password"] as const;

/** Builds the "admin" module (mounted on listeners serving "*" or naming "admin"). */
export function adminRoutes(deps: AdminRoutesDeps): ProtocolModule {
  const { auth, service, credentials, jobs } = deps;
  return {
    name: "admin",
    openapi: adminOpenApi,
    async register(app: FastifyInstance) {
      await registerConsole(app, deps.consoleDir);
      await app.register(async (api) => {
        api.setErrorHandler((err, request, reply) => sendError(request, reply, err));
        api.setNotFoundHandler((request, reply) => sendError(request, reply, new TesseraError("TESSERA_ERR_NOT_FOUND", { detail: request.url })));
        // Operators' pages and answers must not be cached by browsers or proxies.
        api.addHook("onSend", async (_req, reply, payload) => {
          reply.header("cache-control", "no-store");
          return payload;
        });
        const route = (method: "GET" | "POST" | "DELETE", url: string, role: Role, handler: Handler) =>
          api.route({
            method, url, exposeHeadRoute: false,
            handler: async (req, reply) => {
              const op = await auth.authenticate(req.method, req.headers, role);
              const out = await handler(req, op, reply);
              if (reply.sent) return reply;
              return out === undefined ? reply.code(204).send() : reply.type("application/json").send(out);
            },
          });

        // Signing in is the one route without an operator: the token is in the body.
        api.post("/session", async (req, reply) => {
          const body = decodeJsonBody(req);
          const { cookie, session } = await auth.signIn(body.token);
          reply.header("set-cookie", cookie);
          return reply.type("application/json").send({ name: session.tokenName, role: session.role, csrfToken: session.csrfToken, expiresAt: session.expiresAt });
        });
        route("GET", "/session", "viewer", async (_req, op) => ({
          name: op.name, role: op.role, csrfToken: op.session?.csrfToken ?? null, expiresAt: op.session?.expiresAt ?? null,
        }));
        route("DELETE", "/session", "viewer", async (_req, op, reply) => {
          reply.header("set-cookie", await auth.signOut(op));
          return undefined;
        });
        route("GET", "/overview", "viewer", () => service.overview());

        route("GET", "/requests", "viewer", async (req) => {
          const q = query(req);
          return service.requests({ status: q.oneOf("status", REQUEST_STATUSES), protocol: q.text("protocol"), ...q.page() });
        });
        route("POST", "/requests/:id/approve", "editor", async (req, op) => service.approve(param(req, "id"), op.actor));
        route("POST", "/requests/:id/reject", "editor", async (req, op) => {
          const reason = optionalString(decodeJsonBody(req, true).reason, "reason");
          return { request: await service.reject(param(req, "id"), reason ?? null, op.actor) };
        });

        route("GET", "/devices", "viewer", async (req) => {
          const q = query(req);
          return service.devices({
            q: q.text("q"), status: q.oneOf("status", DEVICE_STATUSES), protocol: q.text("protocol"), expiresBefore: q.date("expiresBefore"),
            sort: q.oneOf("sort", DEVICE_SORTS), order: q.oneOf("order", ["asc", "desc"] as const), ...q.page(),
          });
        });
        route("GET", "/devices/:id", "viewer", async (req) => service.device(param(req, "id")));
        route("POST", "/devices/:id/disable", "editor", async (req, op) => ({ device: await service.setEnabled(param(req, "id"), false, op.actor) }));
        route("POST", "/devices/:id/enable", "editor", async (req, op) => ({ device: await service.setEnabled(param(req, "id"), true, op.actor) }));
        route("POST", "/devices/:id/revoke", "editor", async (req, op) => {
          const reason = optionalString(decodeJsonBody(req, true).reason, "reason") ?? "cessationOfOperation";
          return service.revokeDevice(param(req, "id"), reason, op.actor);
        });

        route("GET", "/certificates", "viewer", async (req) => {
          const q = query(req);
          return service.certificates({
            q: q.text("q"), status: q.oneOf("status", CERT_STATUSES), deviceId: q.text("deviceId"), protocol: q.text("protocol"),
            expiresAfter: q.date("expiresAfter"), expiresBefore: q.date("expiresBefore"),
            sort: q.oneOf("sort", CERT_SORTS), order: q.oneOf("order", ["asc", "desc"] as const), ...q.page(),
          });
        });
        route("GET", "/certificates/:serial", "viewer", async (req) => {
          const { der, ...rest } = await service.certificate(param(req, "serial"));
          return { ...rest, pem: pemEncode("CERTIFICATE", der) };
        });
        route("POST", "/certificates/:serial/revoke", "editor", async (req, op) => {
          const reason = optionalString(decodeJsonBody(req, true).reason, "reason") ?? "unspecified";
          return service.revokeCertificate(param(req, "serial"), reason, op.actor);
        });

        route("GET", "/credentials", "viewer", async (req) => {
          const kind = query(req).oneOf("kind", CREDENTIAL_KINDS);
          const now = deps.now();
          return { items: (await credentials.list(kind)).map((c) => credentialView(c, now)) };
        });
        route("POST", "/credentials/secrets", "admin", async (req, op) => {
          const b = decodeJsonBody(req);
          const r = await credentials.createSecret({ ...common(b), value: optionalString(b.value, "value") }, op.actor);
          return { credential: credentialView(r.credential, deps.now()), secret: r.value, weak: r.weak };
        });
        route("POST", "/credentials/bootstrap-certificates", "admin", async (req, op) => {
          const r = await credentials.issueBootstrapCertificate(common(decodeJsonBody(req)), op.actor);
          const ca = deps.authority.ca;
          return {
            credential: credentialView(r.credential, deps.now()), serial: r.issued.record.serial, certificatePem: r.issued.pem,
            privateKeyPem: r.privateKey.export({ type: "sec1", format: "pem" }) as string,
            caPem: pemEncode("CERTIFICATE", ca.issuer.certificate.der) + pemEncode("CERTIFICATE", ca.root.der),
          };
        });
        route("POST", "/credentials/est-users", "admin", async (req, op) => {
          const b = decodeJsonBody(req);
          const name = requiredString(b.name, "name");
          const r = await credentials.createEstUser({ name, label: optionalString(b.label, "label"), password: optionalString(b.password, "password") }, op.actor);
          return { credential: credentialView(r.credential, deps.now()), password: r.generated ? r.password : null };
        });
        route("POST", "/credentials/:id/revoke", "admin", async (req, op) => {
          const c = await credentials.get(param(req, "id"));
          if (!c) throw new TesseraError("TESSERA_ERR_NOT_FOUND", { message: "no such credential", detail: param(req, "id") });
          const r = await credentials.revoke(c, op.actor);
          return { credential: credentialView(r.credential, deps.now()), serial: r.serial };
        });

        route("GET", "/health", "viewer", async (req) => service.health(query(req).int("days", 1, 366) ?? 90));
        route("GET", "/audit", "viewer", async (req) => {
          const q = query(req);
          return service.audit({ ...auditFilter(q), beforeId: q.int("before", 1, Number.MAX_SAFE_INTEGER), limit: q.int("limit", 1, 500) ?? 50 });
        });
        route("GET", "/audit/export", "viewer", async (req, _op, reply) => {
          const filter = auditFilter(query(req));
          const lines: string[] = [];
          for await (const e of service.auditAll(filter)) lines.push(JSON.stringify(e));
          const stamp = deps.now().toISOString().replace(/[:.]/g, "-");
          return reply
            .type("application/x-ndjson")
            .header("content-disposition", `attachment; filename="tessera-audit-${stamp}.jsonl"`)
            .send(lines.length ? lines.join("\n") + "\n" : "");
        });

        route("GET", "/jobs", "viewer", async () => ({ items: await jobs.list() }));
        route("GET", "/jobs/:id", "viewer", async (req) => jobs.get(param(req, "id")));
        route("POST", "/jobs", "editor", async (req, op, reply) => {
          const b = decodeJsonBody(req);
          const kind = requiredString(b.kind, "kind");
          const job =
            kind === "crl-rebuild"
              ? await jobs.start({ kind }, op.actor)
              : kind === "revoke-bootstrap-batch"
                ? await jobs.start({ kind, credentialId: requiredString(b.credentialId, "credentialId"), reason: optionalString(b.reason, "reason") ?? "keyCompromise" }, op.actor)
                : badInput(`unknown job kind ${JSON.stringify(kind)}: crl-rebuild or revoke-bootstrap-batch`);
          return reply.code(202).type("application/json").send(job);
        });
      }, { prefix: ADMIN_API });
    },
  };
}

function badInput(message: string): never {
  throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { message });
}

function param(req: FastifyRequest, name: string): string {
  const v = (req.params as Record<string, string | undefined>)[name];
  return v ?? badInput(`missing ${name}`);
}

function optionalString(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") badInput(`${name} must be a string`);
  return v;
}

function requiredString(v: unknown, name: string): string {
  return optionalString(v, name) ?? badInput(`${name} is required`);
}

/** name, scope, expiresIn ("90d") and maxUses of a new credential. */
function common(b: Record<string, unknown>): { name: string; scope?: string; expiresInSeconds?: number; maxUses?: number } {
  const name = requiredString(b.name, "name");
  const expiresIn = optionalString(b.expiresIn, "expiresIn");
  let expiresInSeconds: number | undefined;
  if (expiresIn !== undefined) {
    expiresInSeconds = parseDuration(expiresIn);
    if (expiresInSeconds === undefined || expiresInSeconds <= 0) badInput(`expiresIn is a duration such as 90d, 12h or 30m, not ${JSON.stringify(expiresIn)}`);
  }
  if (b.maxUses !== undefined && b.maxUses !== null && typeof b.maxUses !== "number") badInput("maxUses must be a number");
  return { name, scope: optionalString(b.scope, "scope"), expiresInSeconds, maxUses: (b.maxUses as number | null | undefined) ?? undefined };
}

function auditFilter(q: Query) {
  return { action: q.text("action"), actor: q.text("actor"), target: q.text("target"), since: q.date("since"), until: q.date("until") };
}
