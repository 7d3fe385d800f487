import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import type { CrlEntry } from "@tessera/pki";
import { CrlRevocationSource, deviceIdentity, mtlsServerOptions, requireMTLS, RevocationFeed, type MtlsOptions } from "./index.js";
import { get, keepAliveAgent, listen, makeTestPki, stop, waitFor, type Issued, type TestPki } from "./test-support.js";

let pki: TestPki;
let device: Issued;
let other: Issued;

before(async () => {
  pki = await makeTestPki();
  device = await pki.device({ cn: "device-1" });
  other = await pki.device({ cn: "device-2" });
});
after(() => pki.cleanup());

/** A guarded node:https server that counts TLS connections. */
async function guarded(options: Partial<MtlsOptions>) {
  const guard = requireMTLS({ ca: pki.bundlePem, ...options });
  const server = https.createServer(
    { key: pki.server.key, cert: pki.server.cert, ...mtlsServerOptions({ ca: pki.bundlePem }) },
    guard.handler((req, res) => res.end(deviceIdentity(req).serverId)),
  );
  let connections = 0;
  server.on("secureConnection", () => connections++);
  const port = await listen(server);
  return { port, guard, connections: () => connections, close: async () => (guard.close(), await stop(server)) };
}

const revoke = (d: Issued, reason: CrlEntry["reason"] = "keyCompromise"): CrlEntry => ({ serialHex: d.certificate.serialHex, revokedAt: new Date(), reason });

test("CRL file: a device revoked after startup is refused after the refresh, on its same keep-alive connection", async () => {
  const file = path.join(pki.dir, "refresh.crl");
  fs.writeFileSync(file, await pki.crl([revoke(other)], { crlNumber: 1n }));
  const s = await guarded({ crl: file, crlRefreshMs: 100 });
  const agent = keepAliveAgent(pki.rootPem, device);
  try {
    await s.guard.ready();
    const first = await get(s.port, pki.rootPem, { agent });
    assert.equal(first.status, 200, first.body);
    assert.equal(first.body, "device-1");
    assert.equal((await get(s.port, pki.rootPem, { device: other })).status, 403, "listed in the startup CRL");
    fs.writeFileSync(file, await pki.crl([revoke(other), revoke(device)], { crlNumber: 2n }));
    let last = first;
    await waitFor(async () => (last = await get(s.port, pki.rootPem, { agent })).status !== 200);
    assert.equal(last.status, 403);
    assert.deepEqual(last.json().error, { code: "TESSERA_ERR_MTLS_CERT_REVOKED", message: "client certificate revoked" });
    assert.equal(s.connections(), 2, "one keep-alive connection for `device`, one for `other`");
  } finally {
    agent.destroy();
    await s.close();
  }
});

test("CRL over http: served by a small server, refreshed, conditional GET answered 304 keeps it", async () => {
  let crl = await pki.crl([], { crlNumber: 10n });
  let gets = 0;
  let notModified = 0;
  const crlServer = http.createServer((req, res) => {
    gets++;
    const etag = `"${crl.length}-${crl.subarray(-8).toString("hex")}"`;
    if (req.headers["if-none-match"] === etag) {
      notModified++;
      res.statusCode = 304;
      return res.end();
    }
    res.setHeader("etag", etag);
    res.setHeader("content-type", "application/pkix-crl");
    res.end(crl);
  });
  const crlPort = await listen(crlServer);
  let updates = 0;
  const source = new CrlRevocationSource({ crl: `http://127.0.0.1:${crlPort}/ca.crl`, issuers: pki.bundlePem, refreshMs: 60_000, onUpdate: () => updates++ });
  const s = await guarded({ crl: source });
  const agent = keepAliveAgent(pki.rootPem, device);
  try {
    await source.ready();
    assert.equal((await get(s.port, pki.rootPem, { agent })).status, 200);
    await source.refresh();
    assert.equal(notModified, 1, "the unchanged CRL was not downloaded again");
    crl = await pki.crl([revoke(device)], { crlNumber: 11n });
    await source.refresh();
    assert.equal(updates, 2);
    assert.equal(gets, 3);
    const r = await get(s.port, pki.rootPem, { agent });
    assert.equal(r.status, 403);
    assert.equal(r.json().error?.code, "TESSERA_ERR_MTLS_CERT_REVOKED");
    assert.equal(s.connections(), 1);
  } finally {
    agent.destroy();
    source.close();
    await s.close();
    await stop(crlServer);
  }
});

test("a request that arrives while the first CRL download is under way waits for it instead of being refused", async () => {
  const crl = await pki.crl([]);
  const slow = http.createServer((_req, res) => setTimeout(() => res.end(crl), 300));
  const crlPort = await listen(slow);
  const s = await guarded({ crl: `http://127.0.0.1:${crlPort}/ca.crl` });
  try {
    const r = await get(s.port, pki.rootPem, { device });
    assert.equal(r.status, 200, r.body);
  } finally {
    await s.close();
    await stop(slow);
  }
});

test("stale CRL: past nextUpdate + grace every peer is refused (onStale reject), or accepted with onStale accept", async () => {
  const file = path.join(pki.dir, "stale.crl");
  fs.writeFileSync(file, await pki.crl([], { thisUpdate: new Date(Date.now() - 3 * 86400_000), nextUpdate: new Date(Date.now() - 2 * 3600_000) }));
  const rejecting = await guarded({ crl: file });
  const accepting = await guarded({ crl: new CrlRevocationSource({ crl: file, issuers: pki.bundlePem, onStale: "accept" }) });
  const graceful = await guarded({ crl: new CrlRevocationSource({ crl: file, issuers: pki.bundlePem, staleGraceMs: 3 * 3600_000 }) });
  try {
    await Promise.all([rejecting.guard.ready(), ...accepting.guard.verifier.sources.map((x) => x.ready()), ...graceful.guard.verifier.sources.map((x) => x.ready())]);
    const r = await get(rejecting.port, pki.rootPem, { device });
    assert.equal(r.status, 403);
    assert.deepEqual(r.json().error, { code: "TESSERA_ERR_MTLS_CERT_REVOKED", message: "revocation status unknown" });
    assert.equal((await get(accepting.port, pki.rootPem, { device })).status, 200);
    assert.equal((await get(graceful.port, pki.rootPem, { device })).status, 200, "within a 3 h grace");
  } finally {
    for (const x of [rejecting, accepting, graceful]) {
      x.guard.verifier.sources.forEach((src) => src.close());
      await x.close();
    }
  }
});

test("a CRL that goes stale while the service runs (injected clock) turns accepted devices away", async () => {
  const file = path.join(pki.dir, "clock.crl");
  fs.writeFileSync(file, await pki.crl([], { nextUpdate: new Date(Date.now() + 3600_000) }));
  let now = new Date();
  const s = await guarded({ crl: file, clock: () => now });
  try {
    await s.guard.ready();
    assert.equal((await get(s.port, pki.rootPem, { device })).status, 200);
    now = new Date(Date.now() + 2 * 3600_000 + 1000); // nextUpdate + 1 h grace has passed
    const r = await get(s.port, pki.rootPem, { device });
    assert.equal(r.status, 403);
    assert.equal(r.json().error?.message, "revocation status unknown");
  } finally {
    await s.close();
  }
});

test("no CRL yet (unreachable URL) or none for the device's issuer: revocation status unknown (fail closed)", async () => {
  const errors: string[] = [];
  const down = await guarded({ crl: "http://127.0.0.1:1/ca.crl", onError: (e) => errors.push(e.code) });
  const rootCrlFile = path.join(pki.dir, "root-only.crl");
  fs.writeFileSync(rootCrlFile, await pki.crl([], { signer: "root" }));
  const rootOnly = await guarded({ crl: rootCrlFile });
  try {
    await assert.rejects(down.guard.ready(), (e: Error & { code?: string }) => e.code === "TESSERA_ERR_MTLS_CRL_UNAVAILABLE");
    assert.deepEqual(errors, ["TESSERA_ERR_MTLS_CRL_UNAVAILABLE"]);
    const r = await get(down.port, pki.rootPem, { device });
    assert.equal(r.status, 403);
    assert.equal(r.json().error?.message, "revocation status unknown");
    await rootOnly.guard.ready();
    assert.equal((await get(rootOnly.port, pki.rootPem, { device })).json().error?.message, "revocation status unknown");
  } finally {
    await down.close();
    await rootOnly.close();
  }
});

test("an intermediate revoked by the root's CRL refuses its devices", async () => {
  const file = path.join(pki.dir, "both.crl");
  const rootCrl = await pki.crl([{ serialHex: pki.ca.intermediate.serialHex, revokedAt: new Date(), reason: "cACompromise" }], { signer: "root" });
  const { pemEncode } = await import("@tessera/pki");
  fs.writeFileSync(file, pemEncode("X509 CRL", await pki.crl([])) + pemEncode("X509 CRL", rootCrl));
  const s = await guarded({ crl: file });
  try {
    await s.guard.ready();
    const r = await get(s.port, pki.rootPem, { device });
    assert.equal(r.status, 403);
    assert.equal(r.json().error?.message, "client certificate's issuing CA revoked");
  } finally {
    await s.close();
  }
});

/** A tiny SSE server: `push(event)` writes to every open stream; records Last-Event-ID headers. */
async function sseServer() {
  const streams = new Set<http.ServerResponse>();
  const lastEventIds: (string | undefined)[] = [];
  const server = http.createServer((req, res) => {
    lastEventIds.push(req.headers["last-event-id"] as string | undefined);
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.write(": ping\n\n");
    streams.add(res);
    res.on("close", () => streams.delete(res));
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}/tessera/v1/revocations/events`,
    lastEventIds,
    streams,
    push: (id: string, serial: string, reason = "keyCompromise") =>
      streams.forEach((s) => s.write(`event: revoked\nid: ${id}\ndata: ${JSON.stringify({ serial, revokedAt: new Date().toISOString(), reason })}\n\n`)),
    dropAll: () => streams.forEach((s) => s.destroy()),
    close: () => stop(server),
  };
}

test("revocation feed: a pushed `revoked` event refuses the device at once, without a CRL refresh", async () => {
  const file = path.join(pki.dir, "feed.crl");
  fs.writeFileSync(file, await pki.crl([]));
  const sse = await sseServer();
  const seen: string[] = [];
  const feed = new RevocationFeed({ url: sse.url, onRevoked: (r) => seen.push(r.serial) });
  const s = await guarded({ crl: file, crlRefreshMs: 3600_000, revocationFeed: feed });
  const agent = keepAliveAgent(pki.rootPem, device);
  try {
    await Promise.all([s.guard.ready(), feed.ready()]);
    assert.equal((await get(s.port, pki.rootPem, { agent })).status, 200);
    sse.push("1", device.certificate.serialHex);
    await waitFor(() => seen.length === 1, 2000);
    const r = await get(s.port, pki.rootPem, { agent });
    assert.equal(r.status, 403);
    assert.equal(r.json().error?.code, "TESSERA_ERR_MTLS_CERT_REVOKED");
    assert.equal((await get(s.port, pki.rootPem, { device: other })).status, 200, "other devices are unaffected");
    assert.equal(s.connections(), 2);
  } finally {
    agent.destroy();
    feed.close();
    await s.close();
    await sse.close();
  }
});

test("revocation feed given as a URL string, feed only (no CRL): the guard owns and closes it", async () => {
  const sse = await sseServer();
  const s = await guarded({ revocationFeed: sse.url });
  try {
    await waitFor(() => sse.streams.size === 1, 2000);
    assert.equal((await get(s.port, pki.rootPem, { device })).status, 200, "without a CRL, a serial the feed does not list passes");
    sse.push("7", device.certificate.serialHex);
    await waitFor(async () => (await get(s.port, pki.rootPem, { device })).status === 403, 2000);
  } finally {
    await s.close();
    await waitFor(() => sse.streams.size === 0, 2000);
    await sse.close();
  }
});

test("a caller's own revocation source: its answers count, and one that throws refuses rather than lets through", async () => {
  const { createMtlsVerifier } = await import("./index.js");
  let mode: "good" | "throw" | "revoked" = "good";
  const custom = {
    authoritative: true,
    ready: () => Promise.resolve(),
    close: () => {},
    check: () => {
      if (mode === "throw") throw new Error("lookup failed");
      return mode === "good" ? { status: "good" as const } : { status: "revoked" as const };
    },
  };
  const verifier = createMtlsVerifier({ ca: pki.bundlePem, crl: custom });
  const msg = async () => {
    const out = await verifier.verifyCertificate(device.certificate.der);
    return out.ok ? "ok" : out.refusal.message;
  };
  assert.equal(await msg(), "ok");
  mode = "revoked";
  assert.equal(await msg(), "client certificate revoked");
  mode = "throw";
  assert.equal(await msg(), "revocation status unknown");
});
