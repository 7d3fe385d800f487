/**
 * Tessera's own minimal enrollment call: `POST /tessera/v1/certificates`,
 * body a PKCS#10 CSR (PEM or DER), `Authorization: Bearer <bootstrap
 * secret>` (scope "tessera" or "*"), optional `?profile=`. Answers 201 with
 * the PEM certificate followed by the issuing CA. Errors use the generic
 * JSON form with stable codes (docs/errors.md). `GET /tessera/v1/whoami`
 * reports how this connection's client certificate verified.
 */
import type { FastifyInstance } from "fastify";
import type { Authority } from "../authority/authority.js";
import { TesseraError } from "../errors.js";
import type { ProtocolModule } from "./app.js";
import { formatName, pemEncode } from "@tessera/pki";

const CSR_TYPES = /^(application\/(pkcs10|x-pem-file|octet-stream)|text\/plain)\b/;

/** The native enrollment route as a protocol module named "tessera". */
export function nativeRoutes(deps: { authority: Pick<Authority, "issue"> }): ProtocolModule {
  return {
    name: "tessera",
    register(app: FastifyInstance) {
      // What this connection's client certificate verified as (for operators and device debugging).
      app.get("/tessera/v1/whoami", async (req, reply) => {
        const peer = await req.peer();
        const body =
          peer.status === "verified"
            ? { status: peer.status, serial: peer.certificate.serialHex, subject: formatName(peer.certificate.subject), notAfter: peer.certificate.notAfter.toISOString() }
            : peer.status === "rejected"
              ? { status: peer.status, reason: peer.reason }
              : { status: peer.status };
        return reply.type("application/json").send(body);
      });
      app.post<{ Querystring: { profile?: string } }>("/tessera/v1/certificates", async (req, reply) => {
        const auth = req.headers.authorization ?? "";
        const m = /^Bearer\s+(\S+)$/i.exec(auth);
        if (!m) throw new TesseraError("TESSERA_ERR_AUTH_REQUIRED");
        if (!CSR_TYPES.test(req.headers["content-type"] ?? "")) throw new TesseraError("TESSERA_ERR_INPUT_CONTENT_TYPE");
        const body = req.body;
        if (!Buffer.isBuffer(body) || body.length === 0) throw new TesseraError("TESSERA_ERR_CSR_MALFORMED", { detail: "empty body" });
        const issued = await deps.authority.issue({
          csr: body,
          profile: req.query.profile,
          protocol: "tessera",
          credential: { kind: "secret", secret: m[1], scope: "tessera" },
        });
        return reply
          .code(201)
          .type("application/x-pem-file")
          .header("x-tessera-serial", issued.record.serial)
          .send(issued.pem + issued.chain.map((c) => pemEncode("CERTIFICATE", c.der)).join(""));
      });
    },
  };
}
