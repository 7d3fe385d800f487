/**
 * The @tessera/mtls middleware protecting an Express service with devices
 * enrolled through imprint: the device's identity reaches the route, and a
 * revoked device is refused — through the live feed at once, and through
 * Tessera's CRL on its next refresh.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import * as https from "node:https";
import { test } from "node:test";
import express from "express";
import { buildCsr, generateKeyPair } from "@tessera/pki";
import { CrlRevocationSource, RevocationFeed, deviceIdentity, mtlsServerOptions, requireMTLS } from "@tessera/mtls";
import { HandDevice, imprintServer } from "./test-kit.js";

/** GET / on the service with a device's certificate; status and JSON body. */
function call(port: number, d: HandDevice, agent: https.Agent): Promise<{ status: number; body: { error?: { code: string }; serverId?: string; serial?: string } }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: "127.0.0.1", port, path: "/", rejectUnauthorized: false, cert: d.cert, key: d.key.export({ type: "pkcs8", format: "pem" }) as string, agent },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on("error", reject);
  });
}

async function startService(guard: ReturnType<typeof requireMTLS>, ca: string, tls: { cert: string; key: string }): Promise<https.Server> {
  const app = express();
  app.use(guard);
  app.get("/", (req, res) => {
    const id = deviceIdentity(req);
    res.json({ serverId: id.serverId, serial: id.serial });
  });
  const srv = https.createServer({ ...tls, ...mtlsServerOptions({ ca }) }, app);
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return srv;
}

test("Express + requireMTLS: identity on the request; revoked devices refused via the feed and via the CRL", async () => {
  const { server, secret } = await imprintServer();
  const ca = server.authority.chainPem();
  // The service's own TLS certificate, from the same CA through the "server" profile.
  const svcKey = generateKeyPair("ec-p256").privateKey;
  const svcCert = await server.authority.issue({
    csr: buildCsr({ subject: [{ type: "CN", value: "localhost" }], privateKey: svcKey }),
    profile: "server",
    protocol: "test",
    credential: { kind: "operator" },
    sans: [{ type: "dns", value: "localhost" }],
  });
  const serviceTls = { cert: svcCert.pem, key: svcKey.export({ type: "pkcs8", format: "pem" }) as string };

  const crlSource = new CrlRevocationSource({ crl: `${server.url}/crl`, issuers: ca, fetchCa: ca, refreshMs: 3_600_000 });
  const feed = new RevocationFeed({ url: `${server.url}/tessera/v1/revocations/events`, ca });
  const feedGuard = requireMTLS({ ca, crl: `${server.url}/crl`, fetchCa: ca, revocationFeed: feed });
  const crlGuard = requireMTLS({ ca, crl: crlSource });
  const feedService = await startService(feedGuard, ca, serviceTls);
  const crlService = await startService(crlGuard, ca, serviceTls);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await feedGuard.ready();
    await crlGuard.ready();
    await feed.ready(); // subscribed before the revocation happens
    const d = new HandDevice(server);
    assert.equal((await d.enroll(secret)).status, 200);
    const portOf = (s: https.Server) => (s.address() as { port: number }).port;

    for (const svc of [feedService, crlService]) {
      const ok = await call(portOf(svc), d, agent);
      assert.equal(ok.status, 200);
      assert.equal(ok.body.serverId, d.serverId, "server id from the imprint URI SAN");
    }

    await server.authority.revokeDevice(d.serverId, "keyCompromise", "test");
    // The feed delivers the revocation without any CRL refresh.
    let refused = await call(portOf(feedService), d, agent);
    for (let i = 0; i < 50 && refused.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      refused = await call(portOf(feedService), d, agent);
    }
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error?.code, "TESSERA_ERR_MTLS_CERT_REVOKED");

    // The CRL-only guard still accepts until it refreshes, then refuses on the same keep-alive connection.
    assert.equal((await call(portOf(crlService), d, agent)).status, 200);
    await crlSource.refresh();
    const afterRefresh = await call(portOf(crlService), d, agent);
    assert.equal(afterRefresh.status, 403);
  } finally {
    agent.destroy();
    feedGuard.close();
    feed.close();
    crlGuard.close();
    await new Promise<void>((r) => feedService.close(() => r()));
    await new Promise<void>((r) => crlService.close(() => r()));
    await server.close(100);
  }
});
