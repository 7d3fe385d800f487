/**
 * The composition root: config → store → CA → authority → listeners.
 * Owns start-up, the banner, timers (server certificate renewal, CRL
 * refresh) and signals (SIGTERM drains, SIGHUP reloads).
 */
import * as fs from "node:fs";
import * as http from "node:http";
import pino, { type Logger } from "pino";
import { pemEncode, sha256Hex, colonHex } from "@tessera/pki";
import type { VerifyOptions } from "@tessera/mtls";
import Fastify, { LogController } from "fastify";
import type { TesseraConfig } from "./config/types.js";
import { openStore } from "./store/index.js";
import type { Store } from "./authority/ports.js";
import { Authority } from "./authority/authority.js";
import { bootstrapAuthorizer, deviceAuthorizer, operatorAuthorizer, passwordAuthorizer, secretAuthorizer } from "./authority/authorizers.js";
import { compileProfiles, revocationUrls } from "./authority/profiles.js";
import { OcspService } from "./authority/ocsp-service.js";
import { CrlFile } from "./authority/crl-file.js";
import { systemClock, systemRandom, type Clock } from "./authority/runtime.js";
import { caExists, caPaths, initCa, loadCa, readPassphrase } from "./ca/ca-files.js";
import { ensureServerCertificate, type ServerCertificate } from "./ca/server-certificate.js";
import { createListener, type Listener, type ProtocolModule, type TlsMaterial } from "./http/app.js";
import { coreRoutes } from "./http/core-routes.js";
import { ocspRoutes } from "./http/ocsp-routes.js";
import { nativeRoutes } from "./http/native-routes.js";
import { revocationFeed } from "./http/revocation-feed.js";
import { imprintRoutes } from "./protocols/imprint/routes.js";
import { estClientCaNames, estRoutes } from "./protocols/est/routes.js";
import { litebootRoutes } from "./protocols/liteboot/routes.js";
import { caramelRoutes } from "./protocols/caramel/routes.js";
import { mainfluxRoutes } from "./protocols/mainflux/routes.js";
import { lazySealer } from "./protocols/mainflux/sealer.js";
import { rotationOutboxMessage, startBusPublisher } from "./bus/bus-publisher.js";
import { litebootMtlsAcceptance, startMtlsTestServer, type MtlsTestServer } from "./protocols/liteboot/mtls-test-server.js";
import { loadLitebootServerCertificate } from "./ca/import-liteboot.js";
import { startWebhookWorker } from "./webhook/webhook-worker.js";
import { createMetrics } from "./metrics.js";
import { adminModule } from "./admin/module.js";
import { FailureCounter, type EnrollmentFailure } from "./http/enrollment-failures.js";

/** A running server. */
export interface RunningServer {
  authority: Authority;
  store: Store;
  listeners: Listener[];
  /** URL of the main listener. */
  url: string;
  /** Plain HTTP URL for CA/CRL download, if enabled. */
  httpUrl?: string;
  /** Re-reads TLS material (after renewal or on SIGHUP) and refreshes the CRL. */
  reload(): Promise<void>;
  /** Stops accepting, drains in-flight requests (up to `drainMs`, default 10 s) and queued writes, closes the store. */
  close(drainMs?: number): Promise<void>;
}

function hostForUrl(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/** Opens the store and the CA (creating the CA on first start) and builds the authority. */
export async function openAuthority(config: TesseraConfig, log: Logger, env: NodeJS.ProcessEnv = process.env, clock: Clock = systemClock): Promise<{ authority: Authority; store: Store; createdCa: boolean; generatedPassphraseFile?: string }> {
  const store = await openStore(config.databaseUrl, { synchronous: config.sqlite.synchronous });
  try {
    await store.migrate();
    const passphrase = { env: env.TESSERA_CA_PASSPHRASE, file: config.caPassphraseFile };
    let createdCa = false;
    let generatedPassphraseFile: string | undefined;
    if (!caExists(config.dataDir)) {
      const r = await initCa({ dataDir: config.dataDir, passphrase, keyType: config.ca.keyType, name: config.ca.name, organization: config.ca.organization });
      createdCa = true;
      generatedPassphraseFile = r.generatedPassphraseFile;
      log.info({ dir: caPaths(config.dataDir).dir }, "created a new CA");
    }
    const ca = loadCa(config.dataDir, passphrase);
    // CRL DP and AIA (OCSP, CA issuers) URLs: [revocation] public_url, else the plain-HTTP listener (docs/revocation.md).
    const publicUrl = config.revocation.publicUrl ?? (config.httpListen ? `http://${hostForUrl(config.hostname)}:${config.httpListen.port}` : undefined);
    const skipped: string[] = [];
    const profiles = await compileProfiles(config.profiles, ca, revocationUrls(publicUrl, config.revocation.ocsp.enabled), skipped);
    for (const why of skipped) log.warn(`profile not available: ${why}`);
    const authority = new Authority({
      store,
      ca,
      profiles,
      defaultProfile: config.defaultProfile,
      authorizers: { operator: operatorAuthorizer, device: deviceAuthorizer, secret: secretAuthorizer(store, clock), password: passwordAuthorizer(store, clock), bootstrap: bootstrapAuthorizer(store, clock) },
      clock,
      random: systemRandom,
      crl: { validitySeconds: config.crl.validity, refreshBeforeSeconds: config.crl.refreshBefore },
      batchMax: config.issuanceBatchMax,
    });
    return { authority, store, createdCa, generatedPassphraseFile };
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
}

/** Starts every listener. `extraProtocols` lets later front-ends mount themselves. */
export async function startServer(
  config: TesseraConfig,
  opts: {
    logger?: Logger; extraProtocols?: (a: Authority) => ProtocolModule[]; banner?: (line: string) => void; clock?: Clock;
    /**
     * Run the duties that must not run twice over one store (default true): the CRL file writer, the
     * Caramel refresh and Mainflux rotation timers, renewing the server certificate ahead of expiry.
     * `tessera serve --workers N` sets it in worker 1 only (cluster.ts); the others adopt the renewed
     * certificate file on their hourly reload. Outbox workers (webhook, bus) claim rows compare-and-set and run everywhere.
     */
    singletons?: boolean;
  } = {},
): Promise<RunningServer> {
  const log = opts.logger ?? pino({ level: config.logLevel });
  const clock = opts.clock ?? systemClock;
  const { authority, store, createdCa, generatedPassphraseFile } = await openAuthority(config, log, process.env, clock);
  const ca = authority.ca;
  const verifyOptions = (): VerifyOptions => ({
    at: clock.now(),
    roots: [ca.root],
    intermediates: [ca.issuer.certificate],
    isRevoked: (serial) => authority.isRevoked(serial),
  });
  // The CertificateRequest names every CA whose client certificates we accept, EST bootstrap CAs included.
  const issuingPem = pemEncode("CERTIFICATE", ca.issuer.certificate.der) + estClientCaNames(config.est);
  const tlsFrom = (sc: ServerCertificate): TlsMaterial => ({
    cert: sc.certPem,
    key: sc.keyPem,
    clientCaNames: { issuing: issuingPem, all: issuingPem + pemEncode("CERTIFICATE", ca.root.der) },
  });
  const serverCert = () =>
    ensureServerCertificate({ dataDir: config.dataDir, hostname: config.hostname, authority, renewBeforeSeconds: opts.singletons === false ? 0 : config.serverCertificate.renewBefore, now: new Date() });
  let tls = tlsFrom(await serverCert());
  const metrics = createMetrics(authority);
  const caramel = caramelRoutes({ authority, config: config.caramel, now: () => clock.now() });
  // Keys at rest of the Mainflux API are encrypted under a key derived from the CA passphrase (docs/protocols/mainflux.md).
  const mainfluxSealer = lazySealer(() => readPassphrase({ env: process.env.TESSERA_CA_PASSPHRASE, file: config.caPassphraseFile }));
  const mainflux = mainfluxRoutes({ authority, store, config: config.mainflux, sealer: mainfluxSealer, now: () => clock.now() });
  // A Caramel approval signs at once: its clients poll for the certificate rather than asking again.
  // Failed enrollments are counted for the console's fleet health (docs/admin-api.md): in memory,
  // written to the store as sums every 2 s and on close.
  const failures = new FailureCounter(store, () => clock.now(), (err) => log.error({ err }, "cannot count failed enrollments"));
  const admin = adminModule({ authority, store, clock, log, failures, signers: { caramel: (request, actor) => caramel.service.sign(request, { long: false, actor }) } });
  const protocols: ProtocolModule[] = [
    coreRoutes({ authority, store, metrics }),
    nativeRoutes({ authority }),
    revocationFeed({ authority }),
    imprintRoutes({ authority, config: config.imprint, now: () => clock.now() }),
    estRoutes({ authority, config: config.est, now: () => clock.now() }),
    litebootRoutes({ authority, config: config.liteboot, events: config.webhook.url ? config.webhook.events : [] }),
    caramel.module,
    mainflux.module,
    admin.module,
    ...(opts.extraProtocols?.(authority) ?? []),
  ];
  const onEnrollmentFailure = (f: EnrollmentFailure) => failures.note(f);

  const listeners: Listener[] = [];
  let litebootListener: { listener: Listener; ownCertificate: boolean } | undefined;
  let mtlsTest: MtlsTestServer | undefined;
  let plain: http.Server | undefined;
  let plainApp: ReturnType<typeof Fastify> | undefined;
  let ocsp: OcspService | undefined;
  const closeAll = async (drainMs = 10_000) => {
    ocsp?.stop();
    if (mtlsTest) await mtlsTest.close();
    // Drain in-flight requests, but never wait forever on a connection a client keeps busy.
    const force = setTimeout(() => listeners.forEach((l) => l.server.closeAllConnections()), drainMs);
    // We listen() on our own https.Server, so Fastify's close() does not close it: do both.
    await Promise.allSettled(
      listeners.map(async (l) => {
        const closed = new Promise<void>((resolve) => (l.server.listening ? l.server.close(() => resolve()) : resolve()));
        l.server.closeIdleConnections();
        await l.app.close();
        await closed;
      }),
    );
    clearTimeout(force);
    if (plainApp) await plainApp.close().catch(() => undefined);
    await admin.jobs.idle();
    await failures.close();
    await authority.flush();
    await store.close();
  };
  try {
    if (config.revocation.ocsp.enabled) {
      const { ocsp: o } = config.revocation;
      ocsp = await OcspService.open({
        dataDir: config.dataDir, passphrase: readPassphrase({ env: process.env.TESSERA_CA_PASSPHRASE, file: config.caPassphraseFile }) ?? "",
        issuer: ca.issuer, certificates: authority, revocations: authority.revocations, clock, validitySeconds: o.validity, signerValiditySeconds: o.signerValidity,
        onError: (msg, err) => log.error({ err }, msg),
      });
      protocols.push(ocspRoutes({ ocsp, now: () => clock.now() }));
    }
    const listen = async (l: Listener) => {
      await new Promise<void>((resolve, reject) => {
        l.server.once("error", reject);
        l.server.listen(l.config.port, l.config.host, () => {
          l.server.off("error", reject);
          resolve();
        });
      });
      listeners.push(l);
    };
    for (const lc of config.listeners) {
      await listen(await createListener({ config: lc, tls, logger: log, bodyLimit: config.bodyLimit, verifyOptions, protocols, onEnrollmentFailure }));
    }
    if (config.liteboot.listen) {
      // liteboot's REST API on a listener of its own that requires a client certificate (spec §1),
      // serving an imported liteboot SERVER certificate when there is one: devices pin it.
      const own = litebootServerFiles(config.dataDir);
      const lc = { name: "liteboot", ...config.liteboot.listen, clientCert: "require" as const, clientCaNames: "all" as const, protocols: ["liteboot"], maxTls: "1.3" as const };
      const l = await createListener({ config: lc, tls: own ? { ...tls, ...own } : tls, logger: log, bodyLimit: config.bodyLimit, verifyOptions, protocols, onEnrollmentFailure });
      await listen(l);
      litebootListener = { listener: l, ownCertificate: own !== undefined };
    }
    if (config.liteboot.mtlsListen) {
      // liteboot's mTLS TCP test endpoint (spec §5): the liteboot listener's server certificate, client
      // certificates chaining to our CA; bootstrap and revoked certificates are refused.
      const own = litebootServerFiles(config.dataDir);
      mtlsTest = await startMtlsTestServer({
        ...config.liteboot.mtlsListen, cert: own?.cert ?? tls.cert, key: own?.key ?? tls.key, ca: authority.chainPem(),
        isAcceptable: litebootMtlsAcceptance(authority), log: log.child({ listener: "liteboot-mtls" }),
      });
    }
    if (config.httpListen) {
      // Plain HTTP serves only what relying parties fetch without TLS: the CA chain, the CRL and OCSP.
      plainApp = Fastify({ loggerInstance: log.child({ listener: "http" }), logController: new LogController({ disableRequestLogging: true }) });
      await coreRoutes({ authority, store, metrics }).register(plainApp as never);
      if (ocsp) await ocspRoutes({ ocsp, now: () => clock.now() }).register(plainApp as never);
      await plainApp.listen({ host: config.httpListen.host, port: config.httpListen.port });
      plain = plainApp.server;
    }
  } catch (err) {
    await closeAll();
    throw err;
  }

  const main = listeners[0]!;
  const addr = main.server.address();
  const port = typeof addr === "object" && addr ? addr.port : main.config.port;
  const url = `https://${hostForUrl(config.hostname)}:${port}`;
  const paddr = plain?.address();
  const httpUrl = paddr && typeof paddr === "object" ? `http://${hostForUrl(config.hostname)}:${paddr.port}` : undefined;

  const reload = async () => {
    const sc = await serverCert();
    tls = tlsFrom(sc);
    for (const l of listeners) {
      const own = l === litebootListener?.listener && litebootListener.ownCertificate ? litebootServerFiles(config.dataDir) : undefined;
      l.reloadTls(own ? { ...tls, ...own } : tls);
    }
    if (mtlsTest) {
      const own = litebootServerFiles(config.dataDir);
      mtlsTest.updateTls({ cert: own?.cert ?? tls.cert, key: own?.key ?? tls.key, ca: authority.chainPem() });
    }
    if (sc.renewed) log.info({ serial: sc.leaf.serialHex, notAfter: sc.leaf.notAfter }, "server certificate renewed");
    await authority.crl.rebuild();
  };
  // Hourly: renew the server certificate ahead of expiry; every minute: keep the CRL ahead of nextUpdate.
  const renewTimer = setInterval(() => void reload().catch((err) => log.error({ err }, "server certificate renewal failed")), 3600_000).unref();
  const crlTimer = setInterval(() => void authority.currentCrl().catch((err) => log.error({ err }, "CRL refresh failed")), 60_000).unref();
  // Revocations made by the CLI or another replica reach the CRL cache and the live feed within seconds.
  authority.revocations.start(2_000, (err) => log.error({ err }, "revocation poll failed"));
  // [revocation] crl_file: a PEM copy of the CRL that follows the cache (after revocations, before nextUpdate).
  const crlFile = config.revocation.crlFile && opts.singletons !== false ? new CrlFile({ file: config.revocation.crlFile, crl: authority.crl, revocations: authority.revocations, onError: (msg, err) => log.error({ err }, msg) }) : undefined;
  await crlFile?.start().catch((err) => log.error({ err }, "cannot write the CRL file"));
  // Caramel: re-sign certificates ahead of expiry, so a polling client finds a fresh one (no cron job).
  const mountedCaramel = config.listeners.some((l) => l.protocols.includes("*") || l.protocols.includes("caramel"));
  const caramelTimer = mountedCaramel && config.caramel.refreshBefore > 0 && opts.singletons !== false
    ? setInterval(() => void caramel.service.refresh((msg, err) => log.error({ err }, msg)).then((n) => n > 0 && log.info({ count: n }, "caramel certificates re-signed")), config.caramel.refreshInterval * 1000).unref()
    : undefined;
  // Mainflux rotation: renew certificates nearing expiry (keeping their validity), revoke the old one in the
  // same transaction, and queue the rotation event there too; the bus publisher delivers it (docs/events.md).
  const mountedMainflux = config.listeners.some((l) => l.protocols.includes("*") || l.protocols.includes("mainflux"));
  const busOn = config.mainflux.events.bus !== "none";
  const rotate = async () => {
    const rotated = await mainflux.service.rotateExpiring(clock.now(), {
      outbox: busOn ? (event) => [rotationOutboxMessage(event.thing_id, event, { includePrivateKey: config.mainflux.events.includePrivateKey })] : undefined,
      onError: (serial, err) => log.error({ err, serial }, "mainflux rotation failed"),
    });
    if (rotated.length > 0) log.info({ count: rotated.length }, "mainflux certificates rotated");
  };
  const rotationTimer = mountedMainflux && config.mainflux.rotation.enabled && opts.singletons !== false
    ? setInterval(() => void rotate().catch((err) => log.error({ err }, "mainflux rotation pass failed")), config.mainflux.rotation.interval * 1000).unref()
    : undefined;
  if (rotationTimer) void rotate().catch((err) => log.error({ err }, "mainflux rotation pass failed"));
  const bus = startBusPublisher({ config: config.mainflux.events, store, clock, log: log.child({ component: "bus" }) });
  // New-device notifications from the outbox (docs/webhooks.md); a no-op without [webhook] url.
  const webhook = startWebhookWorker({ config: config.webhook, store, clock, log: log.child({ component: "webhook" }) });

  const print = opts.banner ?? ((line: string) => process.stdout.write(line + "\n"));
  const p = caPaths(config.dataDir);
  print(`Tessera is listening on ${url}${listeners.length > 1 ? ` (+${listeners.length - 1} more listeners)` : ""}`);
  if (httpUrl) print(`  CA and CRL over plain HTTP: ${httpUrl}/ca.pem ${httpUrl}/crl${ocsp ? ` ${httpUrl}/ocsp` : ""}`);
  print(`  Root CA SHA-256 fingerprint: ${colonHex(sha256Hex(ca.root.der))}`);
  print(`  CA ${createdCa ? "created" : "loaded"}: ${p.root} (root), ${p.issuer} (issuing CA), ${p.chain} (chain)`);
  if (generatedPassphraseFile) print(`  CA key passphrase generated into ${generatedPassphraseFile} (mode 0600): back it up, the CA keys are encrypted with it`);
  const mounted = (name: string) => config.listeners.some((l) => l.protocols.includes("*") || l.protocols.includes(name));
  if (mounted("imprint")) print(`  imprint: ${url}/api/v1/enroll, /api/v1/renew, /api/v1/renew/challenge (build secrets: tessera secret create NAME --scope imprint)`);
  if (mounted("est")) {
    const named = Object.keys(config.est.labels);
    print(`  EST (RFC 7030): ${url}/.well-known/est/{cacerts,simpleenroll,simplereenroll,csrattrs,serverkeygen}${named.length ? `; labels: ${named.join(", ")}` : ""} (users: tessera est user add NAME --password P)`);
  }
  if (mounted("caramel")) print(`  Caramel: ${url}/root.crt, POST/GET ${url}/<sha256 of the CSR> (${config.caramel.mode} signing: tessera caramel list|sign|reject)`);
  if (mounted("admin")) print(`  Web console: ${url}/admin/ (sign in with a token: tessera token create NAME --role admin); admin API ${url}/admin/api/v1, /openapi.json`);
  if (mounted("mainflux")) print(`  Mainflux certs API: ${url}/certs, /things/{id}/serials, /openapi.json (tessera token create NAME --role editor; tessera thing add ID)`);
  if (litebootListener) {
    const a = litebootListener.listener.server.address();
    const lport = typeof a === "object" && a ? a.port : config.liteboot.listen?.port;
    print(`  liteboot: https://${hostForUrl(config.hostname)}:${lport}/api/v1/{cr,p10cr,ds,cs,cc,ccs,kur,krr} (client certificate required: tessera bootstrap issue --name LINE --out DIR)`);
  }
  if (mtlsTest) print(`  liteboot mTLS test endpoint: ${hostForUrl(config.hostname)}:${mtlsTest.address.port}`);
  print(`  Store: ${store.kind === "sqlite" ? config.databaseUrl.replace(/^sqlite:/, "") : "PostgreSQL"}; try: curl --cacert ${p.chain} ${url}/healthz`);

  return {
    authority,
    store,
    listeners,
    url,
    httpUrl,
    reload,
    async close(drainMs?: number) {
      clearInterval(renewTimer);
      clearInterval(crlTimer);
      if (caramelTimer) clearInterval(caramelTimer);
      authority.revocations.stop();
      await crlFile?.stop();
      await webhook.stop();
      if (rotationTimer) clearInterval(rotationTimer);
      await bus.stop();
      await closeAll(drainMs);
    },
  };
}

/**
 * Installs SIGTERM/SIGINT (drain, then exit) and SIGHUP (reload) handlers for
 * `target`: a running server, or the primary of `serve --workers`, which
 * drains and reloads its workers.
 */
export function installSignalHandlers(target: { close(): Promise<unknown>; reload(): Promise<unknown> | void }, log: Logger): void {
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, "draining and shutting down");
    target.close().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGHUP", () => {
    log.info("SIGHUP: reloading TLS certificate and CRL");
    Promise.resolve()
      .then(() => target.reload())
      .catch((err: unknown) => log.error({ err }, "reload failed"));
  });
}

/** The imported liteboot server certificate (tessera import liteboot) in the listener's terms, if there is one. */
function litebootServerFiles(dataDir: string): { cert: string; key: string } | undefined {
  const own = loadLitebootServerCertificate(dataDir);
  return own ? { cert: own.certPem, key: own.keyPem } : undefined;
}

/** Reads a file if it exists (helper for the CLI). */
export function readIfExists(file: string): string | undefined {
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
}
