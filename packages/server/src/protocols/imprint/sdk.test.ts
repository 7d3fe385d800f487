/**
 * Tessera's device SDK against Tessera's server, over real HTTPS: the whole
 * life cycle through renewOrReenroll, the tier-1 → tier-2 fallback, no
 * re-enrollment on a network error, and AutoRenewer + ReloadableTls serving
 * a renewed certificate without a restart.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import type { TLSSocket } from "node:tls";
import { after, before, describe, test } from "node:test";
import { parseCertificate } from "@tessera/pki";
import { AutoRenewer, ImprintClient, loadIdentity, ReloadableTls, type RenewOutcome } from "../../../../client/src/index.js";
import type { RunningServer } from "../../server.js";
import { tempDir, type TestClock } from "../../test-support.js";
import { DAYS, imprintServer } from "./test-kit.js";

const FINGERPRINT = "sha256:5049ba347fd05728c8fd768514991cbc78d488221fa23f25d2832ed84080829c";

function client(server: RunningServer, clock: TestClock, storeDir: string): ImprintClient {
  return new ImprintClient({ serviceUrl: server.url, storeDir, trust: server.authority.chainPem(), now: () => clock.now(), hostname: "sdk-device" });
}

async function serialIn(dir: string): Promise<string> {
  return (await loadIdentity(dir)).certificate.serialHex;
}

describe("SDK life cycle against the Tessera server", () => {
  let server: RunningServer;
  let clock: TestClock;
  let secret: string;
  before(async () => ({ server, clock, secret } = await imprintServer()));
  after(() => server.close(100));

  test("enroll → tier-1 renew → expiry → tier-2 challenge → key lost → tier-3 re-enroll; each reported", async () => {
    const dir = path.join(tempDir(), "identity");
    const sdk = client(server, clock, dir);
    const args = { buildSecret: secret, fingerprint: FINGERPRINT };

    const first = await sdk.renewOrReenroll(args);
    assert.equal(first.action, "reenrolled", "not enrolled yet → enroll");
    const { serverId } = await loadIdentity(dir);
    assert.match(serverId ?? "", /^srv_/);
    assert.equal(fs.statSync(path.join(dir, "client.key")).mode & 0o777, 0o600);

    assert.deepEqual(await sdk.renewOrReenroll(args), { action: "none", attempts: [] }, "far from expiry");

    const s1 = await serialIn(dir);
    const renewed = await sdk.renewOrReenroll({ ...args, thresholdMs: 400 * DAYS });
    assert.equal(renewed.action, "renewed");
    const s2 = await serialIn(dir);
    assert.notEqual(s2, s1);
    assert.equal((await server.authority.getCertificate(s1))?.status, "superseded");

    clock.advance(366 * DAYS);
    const challenged = await sdk.renewOrReenroll(args);
    assert.equal(challenged.action, "challenge_renewed", JSON.stringify(challenged.attempts));
    assert.equal((await loadIdentity(dir)).serverId, serverId);

    fs.rmSync(path.join(dir, "client.key"));
    const reenrolled = await sdk.renewOrReenroll(args);
    assert.equal(reenrolled.action, "reenrolled");
    assert.equal((await loadIdentity(dir)).serverId, serverId, "same fingerprint, same server id");
    const device = await server.authority.devices.get(serverId!);
    assert.equal(device?.currentSerial, await serialIn(dir));
  });

  test("a revoked certificate: tier 1 and tier 2 are refused (reported), then tier 3 re-enrolls", async () => {
    const dir = path.join(tempDir(), "identity");
    const sdk = client(server, clock, dir);
    const args = { buildSecret: secret, fingerprint: "sha256:revoked-then-reenrolled", thresholdMs: 400 * DAYS };
    await sdk.enroll(args);
    await server.authority.revoke(await serialIn(dir), "keyCompromise", "test");
    const r: RenewOutcome = await sdk.renewOrReenroll(args);
    assert.equal(r.action, "reenrolled");
    assert.deepEqual(r.attempts.map((a) => [a.tier, a.status]), [["renew", 401], ["challenge", 401]]);
  });

  test("a network error does not burn the identity: renewOrReenroll throws and the store is untouched", async () => {
    const dir = path.join(tempDir(), "identity");
    await client(server, clock, dir).enroll({ buildSecret: secret, fingerprint: "sha256:network" });
    const before = fs.readFileSync(path.join(dir, "client.crt"), "utf8");
    const offline = new ImprintClient({ serviceUrl: "https://127.0.0.1:9", storeDir: dir, trust: server.authority.chainPem(), now: () => clock.now(), timeoutMs: 2000 });
    await assert.rejects(offline.renewOrReenroll({ buildSecret: secret, fingerprint: "sha256:network", thresholdMs: 400 * DAYS }), (err: Error & { kind?: string }) => err.kind === "network");
    assert.equal(fs.readFileSync(path.join(dir, "client.crt"), "utf8"), before);
  });
});

describe("SDK behind a TLS terminator that drops client certificates", () => {
  test("tier 1 fails for an authentication reason, so tier 2 (possession proof) renews the unexpired certificate", async () => {
    const { server, clock, secret } = await imprintServer((c) => void (c.listeners[0]!.clientCert = "none"));
    try {
      const dir = path.join(tempDir(), "identity");
      const sdk = client(server, clock, dir);
      await sdk.enroll({ buildSecret: secret, fingerprint: "sha256:proxy" });
      const r = await sdk.renewOrReenroll({ buildSecret: secret, fingerprint: "sha256:proxy", thresholdMs: 400 * DAYS });
      assert.equal(r.action, "challenge_renewed");
      assert.deepEqual(r.attempts.map((a) => [a.tier, a.status]), [["renew", 401]]);
    } finally {
      await server.close(100);
    }
  });
});

describe("AutoRenewer with ReloadableTls", () => {
  test("renews a near-expiry certificate and a server on the reloadable context serves it without a restart", async () => {
    const { server, clock, secret } = await imprintServer();
    const dir = path.join(tempDir(), "identity");
    const sdk = client(server, clock, dir);
    await sdk.enroll({ buildSecret: secret, fingerprint: "sha256:auto" });
    const first = await serialIn(dir);

    const tlsCtx = await ReloadableTls.open({ dir, pollMs: 100 });
    const service = https.createServer(tlsCtx.serverOptions(), (_req, res) => res.end("ok"));
    const detach = tlsCtx.attachServer(service);
    await new Promise<void>((r) => service.listen(0, "127.0.0.1", r));
    const port = (service.address() as { port: number }).port;
    const servedSerial = () =>
      new Promise<string>((resolve, reject) => {
        const req = https.get({ host: "127.0.0.1", port, rejectUnauthorized: false, agent: false }, (res) => {
          const cert = (res.socket as TLSSocket).getPeerCertificate();
          res.resume();
          resolve(cert.serialNumber.toLowerCase().replace(/^0+/, ""));
        });
        req.on("error", reject);
      });
    const renewedEvents: string[] = [];
    const stop = new AbortController();
    try {
      assert.equal(await servedSerial(), first);
      clock.advance(340 * DAYS); // 25 days left: inside the 30-day threshold
      const reloaded = new Promise<void>((r) => tlsCtx.once("reload", () => r()));
      const renewer = new AutoRenewer({
        run: ({ thresholdMs }) => sdk.renewOrReenroll({ buildSecret: secret, fingerprint: "sha256:auto", thresholdMs }),
        intervalMs: 60_000,
        signal: stop.signal,
        onRenew: (r) => renewedEvents.push(r.action),
      });
      renewer.start();
      await reloaded;
      const second = await serialIn(dir);
      assert.notEqual(second, first);
      assert.deepEqual(renewedEvents, ["renewed"]);
      assert.equal(await servedSerial(), second, "the running server presents the renewed certificate");
      assert.equal(parseCertificate(fs.readFileSync(path.join(dir, "client.crt"))).serialHex, second);
      stop.abort();
      await renewer.stopped;
    } finally {
      stop.abort();
      detach();
      tlsCtx.close();
      await new Promise<void>((r) => service.close(() => r()));
      await server.close(100);
    }
  });
});
