/**
 * Builds the HTTPS listeners: one Fastify app per configured listener on its
 * own https.Server (so TLS options, client-certificate requests and
 * certificate reloads stay under our control), mounting the protocols the
 * listener names.
 */
import * as https from "node:https";
import type { TLSSocket } from "node:tls";
import Fastify, { LogController, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { PeerResult, VerifyOptions } from "@tessera/mtls";
import type { ListenerConfig } from "../config/types.js";
import { peerOf } from "./peer.js";
import { sendError } from "./errors.js";
import { registerOpenApi, type OpenApiFragment } from "./openapi.js";
import { trackEnrollmentFailures, type EnrollmentFailure } from "./enrollment-failures.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The TLS peer's verification result for this connection. */
    peer(): Promise<PeerResult>;
  }
}

/** TLS material of a listener. */
export interface TlsMaterial {
  /** Server certificate chain PEM (leaf first). */
  cert: string;
  key: string;
  /** CA certificates (PEM) named in the CertificateRequest, per clientCaNames. */
  clientCaNames: { issuing: string; all: string };
}

/** A mountable protocol front-end (thin: decode, one authority call, encode). */
export interface ProtocolModule {
  /** Name used in listener configs ("core" is always mounted). */
  name: string;
  /** Mounted only where a listener names it, never by "*" (protocols that need a listener of their own). */
  dedicated?: boolean;
  register(app: FastifyInstance): void | Promise<void>;
  /** Its part of GET /openapi.json, for a JSON API (served once per listener, merged). */
  openapi?: () => OpenApiFragment;
}

/** A started listener. */
export interface Listener {
  config: ListenerConfig;
  app: FastifyInstance;
  server: https.Server;
  /** Replaces the TLS certificate and CA names for new connections. */
  reloadTls(material: TlsMaterial): void;
}

function secureOptions(cfg: ListenerConfig, m: TlsMaterial): https.ServerOptions {
  const ca = cfg.clientCaNames === "none" || cfg.clientCert === "none" ? undefined : cfg.clientCaNames === "all" ? m.clientCaNames.all : m.clientCaNames.issuing;
  return {
    cert: m.cert,
    key: m.key,
    ca,
    minVersion: "TLSv1.2",
    maxVersion: cfg.maxTls === "1.2" ? "TLSv1.2" : "TLSv1.3",
    requestCert: cfg.clientCert !== "none",
    // "request": we verify the peer ourselves (chain, validity, revocation) and let routes decide.
    // "require": the handshake itself fails without a certificate chaining to the CA names (which
    // are then also the trust anchors), as liteboot's clients expect; revocation is checked after.
    rejectUnauthorized: cfg.clientCert === "require",
  };
}

/** Creates (but does not start) the HTTPS listener for `cfg`. */
export async function createListener(opts: {
  config: ListenerConfig;
  tls: TlsMaterial;
  logger: Logger;
  bodyLimit: number;
  verifyOptions: () => VerifyOptions;
  protocols: ProtocolModule[];
  /** Called once per failed enrollment or renewal answer (fleet health counters). */
  onEnrollmentFailure?: (f: EnrollmentFailure) => void;
}): Promise<Listener> {
  const cfg = opts.config;
  let server!: https.Server;
  const app = Fastify({
    loggerInstance: opts.logger.child({ listener: cfg.name }),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimit,
    return503OnClosing: true,
    // "//<path>" is "/<path>": Caramel's shell client builds such URLs (spec caramel.md §1).
    routerOptions: { ignoreDuplicateSlashes: true },
    forceCloseConnections: "idle",
    serverFactory: (handler) => {
      server = https.createServer(secureOptions(cfg, opts.tls), handler);
      if (cfg.clientCert === "require") {
        // Refuse at the handshake (as liteboot clients expect), not with an HTTP error.
        server.on("secureConnection", (socket: TLSSocket) => {
          if (!socket.getPeerCertificate()?.raw) socket.destroy();
        });
      }
      return server;
    },
  }) as unknown as FastifyInstance;
  app.decorateRequest("peer", function (this: { raw: { socket: unknown } }) {
    return peerOf(this.raw.socket as TLSSocket, opts.verifyOptions);
  });
  // Bodies arrive as bytes; each protocol decodes its own wire format (PEM, DER, base64, CBOR, JSON…).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
  const wanted = new Set(cfg.protocols);
  // A listener naming a dedicated protocol serves that protocol alone, with its own 404 and error forms.
  const dedicated = opts.protocols.some((p) => p.dedicated && wanted.has(p.name));
  if (!dedicated) app.setErrorHandler((err, request, reply) => sendError(request, reply, err));
  if (!dedicated) app.setNotFoundHandler((request, reply) => sendError(request, reply, Object.assign(new Error("not found"), { statusCode: 404 })));
  // Every response carries Content-Length: some device clients cannot read chunked bodies.
  app.addHook("onSend", async (_request, reply, payload) => {
    if (payload !== null && payload !== undefined && typeof payload === "object" && typeof (payload as NodeJS.ReadableStream).pipe === "function") {
      const chunks: Buffer[] = [];
      for await (const c of payload as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
      const body = Buffer.concat(chunks);
      reply.header("content-length", body.length);
      return body;
    }
    return payload;
  });
  if (opts.onEnrollmentFailure) trackEnrollmentFailures(app, opts.onEnrollmentFailure);
  const fragments: OpenApiFragment[] = [];
  for (const p of opts.protocols) {
    const mount = dedicated ? wanted.has(p.name) : wanted.has(p.name) || (!p.dedicated && (p.name === "core" || wanted.has("*")));
    if (!mount) continue;
    await p.register(app);
    if (p.openapi) fragments.push(p.openapi());
  }
  if (fragments.length > 0) registerOpenApi(app, fragments);
  await app.ready();
  return {
    config: cfg,
    app,
    server,
    reloadTls(material) {
      server.setSecureContext(secureOptions(cfg, material));
    },
  };
}
