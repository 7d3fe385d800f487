/**
 * `GET /tessera/v1/revocations/events`: revocations as Server-Sent Events,
 * for relying parties (the @tessera/mtls middleware) that want to refuse a
 * revoked device before the next CRL. Revocation data is public, like the
 * CRL, so no authentication. Format:
 *
 *   event: revoked
 *   id: <n>
 *   data: {"serial":"<lowercase hex>","revokedAt":"<ISO 8601>","reason":"<CRL reason name>"}
 *
 * plus a `: ping` comment every 15 s. A client reconnecting with
 * Last-Event-ID gets the events it missed while this process remembers them.
 */
import type { FastifyInstance } from "fastify";
import type { Authority } from "../authority/authority.js";
import type { RevocationEvent } from "../authority/revocation-events.js";
import type { ProtocolModule } from "./app.js";

const PING_MS = 15_000;

function frame(e: RevocationEvent): string {
  const data = JSON.stringify({ serial: e.serial, revokedAt: e.revokedAt.toISOString(), reason: e.reason ?? "unspecified" });
  return `event: revoked\nid: ${e.id}\ndata: ${data}\n\n`;
}

/** The revocation feed as a module of the "tessera" protocol. */
export function revocationFeed(deps: { authority: Pick<Authority, "revocations"> }): ProtocolModule {
  return {
    name: "tessera",
    register(app: FastifyInstance) {
      const open = new Set<import("node:http").ServerResponse>();
      // Streams never finish on their own: end them when the server closes so shutdown does not wait out its drain.
      app.addHook("onClose", async () => {
        for (const res of open) res.end();
      });
      app.get("/tessera/v1/revocations/events", (req, reply) => {
        const events = deps.authority.revocations;
        // A stream has no length: write it ourselves, past the hook that buffers bodies to set Content-Length.
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive", "x-accel-buffering": "no" });
        res.write("retry: 2000\n\n");
        const last = Number(req.headers["last-event-id"]);
        if (Number.isInteger(last) && last > 0) for (const e of events.since(last)) res.write(frame(e));
        const onRevoked = (e: RevocationEvent) => res.write(frame(e));
        events.on("revoked", onRevoked);
        const ping = setInterval(() => res.write(": ping\n\n"), PING_MS);
        open.add(res);
        const stop = () => {
          open.delete(res);
          clearInterval(ping);
          events.off("revoked", onRevoked);
        };
        req.raw.socket.once("close", stop);
        res.once("close", stop);
      });
    },
  };
}
