/**
 * Routes every listener serves: health, Prometheus metrics, the CA chain
 * (PEM), the issuing CA certificate alone in DER (/ca.der: what the
 * caIssuers URL of issued certificates names, RFC 5280 §4.2.2.1) and the CRL
 * (DER, or PEM by Accept or /crl.pem).
 */
import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { Authority } from "../authority/authority.js";
import type { Store } from "../authority/ports.js";
import type { ProtocolModule } from "./app.js";

/** The core routes as a protocol module. */
export function coreRoutes(deps: { authority: Authority; store: Pick<Store, "ping">; metrics: Registry }): ProtocolModule {
  return {
    name: "core",
    register(app: FastifyInstance) {
      app.get("/healthz", async (_req, reply) => {
        try {
          await deps.store.ping();
          return reply.type("application/json").send({ status: "ok" });
        } catch {
          return reply.code(503).type("application/json").send({ status: "unavailable", store: "unreachable" });
        }
      });
      app.get("/metrics", async (_req, reply) => reply.type(deps.metrics.contentType).send(await deps.metrics.metrics()));
      app.get("/ca.pem", async (_req, reply) => reply.type("application/x-pem-file").send(deps.authority.chainPem()));
      app.get("/ca.der", async (_req, reply) => reply.type("application/pkix-cert").send(deps.authority.ca.issuer.certificate.der));
      app.get("/crl", async (req, reply) => {
        const crl = await deps.authority.currentCrl();
        reply.header("last-modified", crl.thisUpdate.toUTCString()).header("expires", crl.nextUpdate.toUTCString());
        if (/application\/x-pem-file/.test(req.headers.accept ?? "")) return reply.type("application/x-pem-file").send(crl.pem);
        return reply.type("application/pkix-crl").send(crl.der);
      });
      app.get("/crl.pem", async (_req, reply) => {
        const crl = await deps.authority.currentCrl();
        return reply.type("application/x-pem-file").header("last-modified", crl.thisUpdate.toUTCString()).send(crl.pem);
      });
    },
  };
}
