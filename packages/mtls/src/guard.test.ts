import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import type { TLSSocket } from "node:tls";
import Fastify from "fastify";
import express from "express";
import { sha256Hex } from "@tessera/pki";
import { deviceIdentity, mtlsServerOptions, requireMTLS, type MtlsGuard, type MtlsOptions } from "./index.js";
import { get, listen, makeTestPki, stop, type Issued, type TestPki } from "./test-support.js";

let pki: TestPki;
let good: Issued;
let cnOnly: Issued;

before(async () => {
  pki = await makeTestPki();
  good = await pki.device({ cn: "device-cn", sans: [{ type: "uri", value: "imprint://server/srv-42" }, { type: "dns", value: "dev.example" }] });
  cnOnly = await pki.device({ cn: "device-only-cn" });
});
after(() => pki.cleanup());

/** A node:https server guarded by requireMTLS(options) that echoes the identity. */
async function nodeServer(options: Partial<MtlsOptions> = {}, tls: https.ServerOptions = {}) {
  const guard = requireMTLS({ ca: pki.bundlePem, ...options });
  const server = https.createServer(
    { key: pki.server.key, cert: pki.server.cert, ...mtlsServerOptions({ ca: pki.bundlePem }), ...tls },
    guard.handler((req, res) => {
      const id = deviceIdentity(req);
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ ...id, certificate: undefined, chain: id.chain.length, viaProperty: (req as { tessera?: unknown }).tessera === id, authorized: (req.socket as TLSSocket).authorized }));
    }),
  );
  const port = await listen(server);
  return { port, guard, close: async () => (guard.close(), await stop(server)) };
}

function assertRefused(r: { status: number; contentType: string | undefined; json(): { error?: { code: string; message: string } } }, status: number, code: string, message?: RegExp) {
  assert.equal(r.status, status);
  assert.match(r.contentType ?? "", /^application\/json\b/);
  const body = r.json();
  assert.equal(body.error?.code, code);
  if (message) assert.match(body.error!.message, message);
}

test("node:https: a good device gets through and its identity is on the request", async () => {
  const s = await nodeServer();
  try {
    const r = await get(s.port, pki.rootPem, { device: good });
    assert.equal(r.status, 200, r.body);
    const id = r.json();
    assert.equal(id.serverId, "srv-42", "URI SAN imprint://server/<id> wins over the CN");
    assert.equal(id.serial, good.certificate.serialHex);
    assert.equal(id.fingerprint, sha256Hex(good.certificate.der));
    assert.equal(id.subject, "CN=device-cn,O=Tessera Test");
    assert.equal(id.notAfter, good.certificate.notAfter.toISOString());
    assert.equal(id.chain, 3, "leaf, intermediate, root");
    assert.equal(id.viaProperty, true);
    const r2 = await get(s.port, pki.rootPem, { device: cnOnly });
    assert.equal(r2.json().serverId, "device-only-cn");
  } finally {
    await s.close();
  }
});

test("node:https refusals: no certificate, foreign CA, expired, not yet valid, wrong purpose (401); authorize false (403)", async () => {
  const foreign = await makeTestPki();
  const s = await nodeServer({ authorize: (id) => id.serverId !== "blocked" });
  try {
    assertRefused(await get(s.port, pki.rootPem), 401, "TESSERA_ERR_MTLS_CERT_REQUIRED", /required/);
    assertRefused(await get(s.port, pki.rootPem, { device: await foreign.device() }), 401, "TESSERA_ERR_MTLS_CERT_INVALID", /does not chain to a trusted CA/);
    assertRefused(await get(s.port, pki.rootPem, { device: await pki.device({ notBefore: -2 * 86400_000, notAfter: -86400_000 }) }), 401, "TESSERA_ERR_MTLS_CERT_INVALID", /expired/);
    assertRefused(await get(s.port, pki.rootPem, { device: await pki.device({ notBefore: 3600_000 }) }), 401, "TESSERA_ERR_MTLS_CERT_INVALID", /not yet valid/);
    assertRefused(await get(s.port, pki.rootPem, { device: await pki.device({ eku: ["serverAuth"] }) }), 401, "TESSERA_ERR_MTLS_CERT_INVALID", /purpose/);
    assertRefused(await get(s.port, pki.rootPem, { device: await pki.device({ cn: "blocked" }) }), 403, "TESSERA_ERR_MTLS_FORBIDDEN");
    assert.equal((await get(s.port, pki.rootPem, { device: good })).status, 200);
  } finally {
    await s.close();
    foreign.cleanup();
  }
});

test("W5: with rejectUnauthorized true the TLS layer says authorized, and the guard still refuses a revoked device", async () => {
  const revoked = await pki.device({ cn: "revoked" });
  const crlFile = path.join(pki.dir, "w5.crl");
  fs.writeFileSync(crlFile, await pki.crl([{ serialHex: revoked.certificate.serialHex, revokedAt: new Date(), reason: "keyCompromise" }]));
  const s = await nodeServer({ crl: crlFile }, { rejectUnauthorized: true });
  try {
    await s.guard.ready();
    assertRefused(await get(s.port, pki.rootPem, { device: revoked }), 403, "TESSERA_ERR_MTLS_CERT_REVOKED", /revoked/);
    const ok = await get(s.port, pki.rootPem, { device: good });
    assert.equal(ok.status, 200);
    assert.equal(ok.json().authorized, true);
  } finally {
    await s.close();
  }
});

test("a bundle with only the root: the device sends its intermediate and is accepted; without it, refused", async () => {
  // The TLS layer gets the root only too: Node completes getPeerCertificate(true) chains from its own CA store.
  const s = await nodeServer({ ca: pki.rootPem }, { ca: [pki.rootPem] });
  try {
    const withChain = { cert: good.cert + pki.intermediatePem, key: good.key };
    const r = await get(s.port, pki.rootPem, { device: withChain });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().chain, 3);
    assertRefused(await get(s.port, pki.rootPem, { device: good }), 401, "TESSERA_ERR_MTLS_CERT_INVALID", /does not chain/);
  } finally {
    await s.close();
  }
});

test("a CA file path works for both the guard and the server options; an async authorize that throws gives 500", async () => {
  const caFile = path.join(pki.dir, "bundle.pem");
  fs.writeFileSync(caFile, pki.bundlePem);
  const opts = mtlsServerOptions({ ca: caFile });
  assert.equal(opts.requestCert, true);
  assert.equal(opts.rejectUnauthorized, false);
  assert.equal(opts.ca.length, 2);
  const s = await nodeServer({
    ca: caFile,
    authorize: async (id) => {
      if (id.serverId === "boom") throw new Error("database down");
      return true;
    },
  });
  try {
    assert.equal((await get(s.port, pki.rootPem, { device: good })).status, 200);
    const r = await get(s.port, pki.rootPem, { device: await pki.device({ cn: "boom" }) });
    assert.equal(r.status, 500);
    assert.equal(r.json().error?.code, "TESSERA_ERR_INTERNAL");
  } finally {
    await s.close();
  }
  assert.throws(() => requireMTLS({ ca: path.join(pki.dir, "missing.pem") }), (e: Error & { code?: string }) => e.code === "TESSERA_ERR_MTLS_CONFIG");
  assert.throws(() => requireMTLS({ ca: pki.bundlePem, requiredEku: "noSuchUsage" }), (e: Error & { code?: string }) => e.code === "TESSERA_ERR_MTLS_CONFIG");
});

test("chains are cached per certificate (same identity object), validity is still checked on every request", async () => {
  let now = new Date();
  const guard: MtlsGuard = requireMTLS({ ca: pki.bundlePem, clock: () => now });
  try {
    const a = await guard.verifier.verifyCertificate(good.certificate.der);
    const b = await guard.verifier.verifyCertificate(good.certificate.der);
    assert.ok(a.ok && b.ok);
    assert.equal(a.identity, b.identity, "second verification is a cache hit");
    now = new Date(good.certificate.notAfter.getTime() + 1000);
    const c = await guard.verifier.verifyCertificate(good.certificate.der);
    assert.ok(!c.ok && /certificate expired/.test(c.refusal.message), "a cached chain does not outlive the certificate");
    const uncached = requireMTLS({ ca: pki.bundlePem, cacheSize: 0 });
    const d = await uncached.verifier.verifyCertificate(good.certificate.der);
    const e = await uncached.verifier.verifyCertificate(good.certificate.der);
    assert.ok(d.ok && e.ok && d.identity !== e.identity);
  } finally {
    guard.close();
  }
});

test("Fastify: the onRequest hook accepts a good device and refuses one without a certificate", async () => {
  const guard = requireMTLS({ ca: pki.bundlePem });
  const app = Fastify({ https: { key: pki.server.key, cert: pki.server.cert, ...mtlsServerOptions({ ca: pki.bundlePem }) } });
  app.addHook("onRequest", guard.fastify);
  let routeRuns = 0;
  app.get("/", async (request) => {
    routeRuns++;
    const id = deviceIdentity(request);
    return { serverId: id.serverId, serial: id.serial, viaProperty: (request as { tessera?: unknown }).tessera === id };
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const port = (app.server.address() as { port: number }).port;
  try {
    const r = await get(port, pki.rootPem, { device: good });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json(), { serverId: "srv-42", serial: good.certificate.serialHex, viaProperty: true });
    assertRefused(await get(port, pki.rootPem), 401, "TESSERA_ERR_MTLS_CERT_REQUIRED");
    assertRefused(await get(port, pki.rootPem, { device: await pki.device({ eku: ["serverAuth"] }) }), 401, "TESSERA_ERR_MTLS_CERT_INVALID");
    assert.equal(routeRuns, 1, "the route never ran for refused requests");
  } finally {
    guard.close();
    await app.close();
  }
});

test("Express: the middleware accepts a good device and refuses one without a certificate", async () => {
  const guard = requireMTLS({ ca: pki.bundlePem });
  const app = express();
  app.use(guard);
  let routeRuns = 0;
  app.get("/", (req, res) => {
    routeRuns++;
    res.json({ serverId: deviceIdentity(req).serverId, fingerprint: req.tessera?.fingerprint });
  });
  const server = https.createServer({ key: pki.server.key, cert: pki.server.cert, ...mtlsServerOptions({ ca: pki.bundlePem }) }, app);
  const port = await listen(server);
  try {
    const r = await get(port, pki.rootPem, { device: cnOnly });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json(), { serverId: "device-only-cn", fingerprint: sha256Hex(cnOnly.certificate.der) });
    assertRefused(await get(port, pki.rootPem), 401, "TESSERA_ERR_MTLS_CERT_REQUIRED");
    assert.equal(routeRuns, 1);
  } finally {
    guard.close();
    await stop(server);
  }
});

test("deviceIdentity throws for a request that did not pass the guard", () => {
  assert.throws(() => deviceIdentity({}), /did not pass requireMTLS/);
});
