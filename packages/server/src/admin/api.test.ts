/**
 * The admin API's operations end to end against a real server and real
 * device traffic (imprint by hand, Caramel by raw HTTP): the approval queue
 * across protocols, device search and lineage, revocation reaching the CRL,
 * disabling, bootstrap credentials, fleet health from the store, the audit
 * log and its export, and jobs with progress.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { buildCsr, generateKeyPair, parseCertificate, parseCrl, pemEncode, serialToHex } from "@tessera/pki";
import type { RunningServer } from "../server.js";
import { rawRequest, request, type TestClock } from "../test-support.js";
import { HandDevice, DAYS } from "../protocols/imprint/test-kit.js";
import { adminServer, api } from "./test-kit.js";
import { addEstUser } from "../protocols/est/test-kit.js";

const serialOf = (pem: string) => serialToHex(parseCertificate(pem).serial);

async function waitForJob(server: RunningServer, token: string, id: string): Promise<any> {
  for (let i = 0; i < 200; i++) {
    const r = await api(server, "GET", `/jobs/${id}`, { auth: { token } });
    assert.equal(r.status, 200, r.text);
    if (r.json.status !== "running") return r.json;
    await new Promise((res) => setTimeout(res, 25));
  }
  throw new Error(`job ${id} still running`);
}

describe("admin API: approvals across protocols", () => {
  let server: RunningServer;
  let tokens: { admin: string; editor: string; viewer: string };
  let secret: string;
  before(async () => {
    ({ server, tokens, secret } = await adminServer((c) => void (c.est.labels["approve"] = { ...c.est.default, mode: "manual", retryAfter: 5 })));
    await addEstUser(server, "gw", "gw-password-1");
  });
  after(() => server.close(100));

  test("an EST request waiting with 202 is in the queue; once approved, the device's repeat gets its certificate", async () => {
    const base = server.url.replace("://localhost", "://127.0.0.1");
    const body = buildCsr({ subject: [{ type: "CN", value: "est-waiting-1" }], privateKey: generateKeyPair("ec-p256").privateKey }).toString("base64");
    const enroll = () => rawRequest(base, {
      path: "/.well-known/est/approve/simpleenroll", method: "POST", body, ca: server.authority.chainPem(),
      headers: { "Content-Type": "application/pkcs10", Authorization: `Basic ${Buffer.from("gw:gw-password-1").toString("base64")}` },
    });
    assert.equal((await enroll()).status, 202);
    const queue = await api(server, "GET", "/requests?status=pending&protocol=est", { auth: { token: tokens.viewer } });
    const waiting = (queue.json.items as { id: string; subject: string }[]).filter((r) => r.subject === "CN=est-waiting-1");
    assert.equal(waiting.length, 1, queue.text);
    assert.equal((await api(server, "POST", `/requests/${waiting[0]!.id}/approve`, { auth: { token: tokens.editor } })).status, 200);
    const r = await enroll();
    assert.equal(r.status, 200);
    assert.equal((await server.store.getRequest(waiting[0]!.id))?.certificateSerial !== null, true);
  });

  test("imprint and Caramel requests share one queue; approving lets the device in (imprint) or signs at once (Caramel)", async () => {
    const d = new HandDevice(server);
    const pending = await d.enroll(secret);
    assert.equal(pending.status, 202, pending.text);
    const imprintId = (JSON.parse(pending.text) as { request_id: string }).request_id;

    const key = generateKeyPair("ec-p256").privateKey;
    const csr = pemEncode("CERTIFICATE REQUEST", buildCsr({ subject: [{ type: "O", value: "Tessera" }, { type: "CN", value: `cam-${randomUUID().slice(0, 8)}` }], privateKey: key }));
    const sha = createHash("sha256").update(csr).digest("hex");
    const base = server.url.replace("://localhost", "://127.0.0.1");
    const ca = pemEncode("CERTIFICATE", server.authority.ca.root.der);
    assert.equal((await rawRequest(base, { path: `/${sha}`, method: "POST", body: csr, ca })).status, 202);

    const queue = await api(server, "GET", "/requests?status=pending", { auth: { token: tokens.viewer } });
    assert.equal(queue.status, 200, queue.text);
    const protocols = new Set((queue.json.items as { protocol: string }[]).map((r) => r.protocol));
    assert.ok(protocols.has("imprint") && protocols.has("caramel"), [...protocols].join());
    assert.equal(queue.json.total, queue.json.items.length);

    const approved = await api(server, "POST", `/requests/${imprintId}/approve`, { auth: { token: tokens.editor } });
    assert.equal(approved.status, 200, approved.text);
    assert.deepEqual([approved.json.request.status, approved.json.certificate], ["approved", null]);
    const enrolled = await d.enroll(secret);
    assert.equal(enrolled.status, 200, enrolled.text);

    const caramelId = (queue.json.items as { id: string; protocol: string }[]).find((r) => r.protocol === "caramel")!.id;
    const signed = await api(server, "POST", `/requests/${caramelId}/approve`, { auth: { token: tokens.editor } });
    assert.equal(signed.status, 200, signed.text);
    assert.ok(signed.json.certificate?.serial, "Caramel: signed at once");
    const polled = await rawRequest(base, { path: `/${sha}`, ca });
    assert.equal(polled.status, 200);
    assert.equal(serialOf(polled.body.toString()), signed.json.certificate.serial);

    const twice = await api(server, "POST", `/requests/${imprintId}/approve`, { auth: { token: tokens.editor } });
    assert.deepEqual([twice.status, twice.json.error.code], [409, "TESSERA_ERR_REQUEST_ALREADY_DECIDED"]);
    const missing = await api(server, "POST", `/requests/${randomUUID()}/approve`, { auth: { token: tokens.editor } });
    assert.equal(missing.status, 404);
    const audit = await api(server, "GET", `/audit?action=request.approved&target=${imprintId}`, { auth: { token: tokens.viewer } });
    assert.deepEqual(audit.json.items.map((e: { actor: string }) => e.actor), ["token:eddie"]);
  });
});

describe("admin API: devices, certificates, credentials, health, audit, jobs", () => {
  let server: RunningServer;
  let clock: TestClock;
  let tokens: { admin: string; editor: string; viewer: string };
  let secret: string;
  const devices: HandDevice[] = [];
  before(async () => {
    ({ server, clock, tokens, secret } = await adminServer((c) => void (c.imprint.mode = "auto")));
    for (let i = 0; i < 5; i++) {
      const d = new HandDevice(server);
      const r = await d.enroll(secret, `sensor-${i}.plant_7%`);
      assert.equal(r.status, 200, r.text);
      devices.push(d);
    }
  });
  after(() => server.close(100));
  const viewer = () => ({ auth: { token: tokens.viewer } });
  const editor = () => ({ auth: { token: tokens.editor } });

  test("search by device id, fingerprint, serial (hex with colons) and subject; page, total and sort on the server", async () => {
    const d = devices[2]!;
    const serial = serialOf(d.cert);
    const colons = serial.padStart(serial.length + (serial.length % 2), "0").match(/../g)!.join(":").toUpperCase();
    // imprint certificates carry the server id as CN: a piece of it, in another case, finds the subject.
    for (const q of [d.serverId, d.fingerprint, serial, colons, d.serverId.slice(6, 18).toUpperCase()]) {
      const r = await api(server, "GET", `/devices?q=${encodeURIComponent(q)}`, viewer());
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.items.map((x: { id: string }) => x.id), [d.serverId], q);
      assert.ok(r.json.items[0].notAfter !== null, JSON.stringify(r.json.items[0]));
    }
    const underscore = await api(server, "GET", `/devices?q=${encodeURIComponent("CN=srv_")}`, viewer());
    assert.equal(underscore.json.total, 5, "_ matches itself");
    const percent = await api(server, "GET", `/devices?q=${encodeURIComponent("srv%")}`, viewer());
    assert.equal(percent.json.total, 0, "% matches itself, not any text");
    const page = await api(server, "GET", "/devices?limit=2&offset=1&sort=id&order=desc", viewer());
    const all = [...devices.map((x) => x.serverId)].sort().reverse();
    assert.equal(page.json.total, 5);
    assert.deepEqual(page.json.items.map((x: { id: string }) => x.id), all.slice(1, 3));
    const expiring = await api(server, "GET", `/devices?expiresBefore=${new Date(Date.now() + 3650 * DAYS).toISOString()}`, viewer());
    assert.equal(expiring.json.total, 5);
    const none = await api(server, "GET", `/devices?expiresBefore=${new Date(Date.now() + DAYS).toISOString()}`, viewer());
    assert.equal(none.json.total, 0);
  });

  test("a device page shows its lineage newest first; revoking a certificate puts it on the CRL", async () => {
    const d = devices[0]!;
    const first = serialOf(d.cert);
    assert.equal((await d.renew()).status, 200);
    const second = serialOf(d.cert);
    const page = await api(server, "GET", `/devices/${d.serverId}`, viewer());
    assert.equal(page.status, 200, page.text);
    assert.deepEqual(page.json.certificates.map((c: { serial: string; status: string }) => [c.serial, c.status]), [[second, "valid"], [first, "superseded"]]);
    assert.equal(page.json.device.protocol, "imprint");
    assert.equal(page.json.certificates[0].der, undefined, "no DER in lists");

    const cert = await api(server, "GET", `/certificates/${second}`, viewer());
    assert.match(cert.json.pem, /^-----BEGIN CERTIFICATE-----/);
    const revoked = await api(server, "POST", `/certificates/${second}/revoke`, { ...editor(), body: { reason: "keyCompromise" } });
    assert.equal(revoked.status, 200, revoked.text);
    assert.deepEqual([revoked.json.status, revoked.json.revocationReason], ["revoked", "keyCompromise"]);
    const crl = parseCrl((await request(server, "/crl")).body);
    assert.equal(crl.revoked.get(second)?.reason, "keyCompromise", "on the CRL");
    const again = await api(server, "POST", `/certificates/${second}/revoke`, editor());
    assert.deepEqual([again.status, again.json.error.code], [409, "TESSERA_ERR_CERT_ALREADY_REVOKED"]);
    const badReason = await api(server, "POST", `/certificates/${first}/revoke`, { ...editor(), body: { reason: "because" } });
    assert.equal(badReason.status, 400);
    const list = await api(server, "GET", "/certificates?status=revoked", viewer());
    assert.deepEqual(list.json.items.map((c: { serial: string }) => c.serial), [second]);
  });

  test("disable stops renewal until enabled; revoking a device revokes its certificates", async () => {
    const d = devices[1]!;
    const off = await api(server, "POST", `/devices/${d.serverId}/disable`, editor());
    assert.deepEqual([off.status, off.json.device.status], [200, "disabled"]);
    assert.notEqual((await d.renew()).status, 200, "a disabled device cannot renew");
    assert.equal((await api(server, "POST", `/devices/${d.serverId}/disable`, editor())).status, 409);
    const on = await api(server, "POST", `/devices/${d.serverId}/enable`, editor());
    assert.deepEqual([on.status, on.json.device.status], [200, "active"]);
    assert.equal((await d.renew()).status, 200);
    const gone = await api(server, "POST", `/devices/${d.serverId}/revoke`, { ...editor(), body: { reason: "cessationOfOperation" } });
    assert.equal(gone.status, 200, gone.text);
    assert.equal(gone.json.device.status, "revoked");
    // The current certificate and the one it superseded (unexpired), both now on the CRL.
    assert.ok(gone.json.revoked.includes(serialOf(d.cert)) && gone.json.revoked.length === 2, JSON.stringify(gone.json.revoked));
    assert.equal((await api(server, "GET", `/devices/${randomUUID()}`, viewer())).status, 404);
  });

  test("credentials: create (shown once), list with uses and state, revoke; a revoked build secret lets nobody in", async () => {
    const admin = { auth: { token: tokens.admin } };
    const s = await api(server, "POST", "/credentials/secrets", { ...admin, body: { name: "line-3", scope: "imprint", expiresIn: "30d", maxUses: 2 } });
    assert.equal(s.status, 200, s.text);
    assert.equal(typeof s.json.secret, "string");
    assert.equal(s.json.credential.hash, undefined, "never the hash");
    const d = new HandDevice(server);
    assert.equal((await d.enroll(s.json.secret)).status, 200);
    const listed = (await api(server, "GET", "/credentials?kind=secret", viewer())).json.items.find((c: { name: string }) => c.name === "line-3");
    assert.deepEqual([listed.useCount, listed.maxUses, listed.state], [1, 2, "active"]);
    assert.ok(Math.abs(Date.parse(listed.expiresAt) - clock.now().getTime() - 30 * DAYS) < 60_000);
    const dup = await api(server, "POST", "/credentials/secrets", { ...admin, body: { name: "line-3" } });
    assert.equal(dup.status, 409);
    const rev = await api(server, "POST", `/credentials/${s.json.credential.id}/revoke`, admin);
    assert.deepEqual([rev.status, rev.json.credential.state], [200, "revoked"]);
    assert.equal((await new HandDevice(server).enroll(s.json.secret)).status, 401);

    const b = await api(server, "POST", "/credentials/bootstrap-certificates", { ...admin, body: { name: "factory-a", maxUses: 100 } });
    assert.equal(b.status, 200, b.text);
    const bc = parseCertificate(b.json.certificatePem);
    assert.match(b.json.privateKeyPem, /^-----BEGIN EC PRIVATE KEY-----/);
    assert.equal(serialToHex(bc.serial), b.json.serial);
    const bRevoked = await api(server, "POST", `/credentials/${b.json.credential.id}/revoke`, admin);
    assert.equal(bRevoked.json.serial, b.json.serial, "the bootstrap certificate is revoked too");
    const u = await api(server, "POST", "/credentials/est-users", { ...admin, body: { name: "gateway", label: "factory" } });
    assert.equal(u.status, 200, u.text);
    assert.ok(u.json.password.length >= 20);
    const kinds = new Set((await api(server, "GET", "/credentials", viewer())).json.items.map((c: { kind: string }) => c.kind));
    assert.deepEqual([...kinds].sort(), ["certificate", "password", "secret"]);
    const bad = await api(server, "POST", "/credentials/secrets", { ...admin, body: { name: "x", expiresIn: "soon" } });
    assert.equal(bad.status, 400);
  });

  test("fleet health from the store: expiry per day for 90 days, issued vs renewed, failed enrollments by code", async () => {
    assert.equal((await new HandDevice(server).enroll("wrong-secret")).status, 401);
    const h = await api(server, "GET", "/health?days=90", viewer());
    assert.equal(h.status, 200, h.text);
    assert.equal(h.json.expiry.length, 90);
    assert.equal(h.json.expiry[0].day, clock.now().toISOString().slice(0, 10));
    const valid = await server.store.countCertificates({ status: "valid", expiresAfter: clock.now(), expiresBefore: new Date(Date.parse(h.json.expiry[0].day) + 90 * DAYS) });
    assert.equal(h.json.expiry.reduce((n: number, d: { count: number }) => n + d.count, 0), valid);
    const today = h.json.activity.find((a: { day: string }) => a.day === h.json.expiry[0].day);
    assert.ok(today.issued >= 6 && today.renewed >= 2, JSON.stringify(today));
    assert.ok(today.revoked >= 2);
    // The wrong build secret is counted under the core's code, not just its HTTP status.
    assert.ok(h.json.failures.some((f: { protocol: string; code: string; count: number }) => f.protocol === "imprint" && f.code === "TESSERA_ERR_CREDENTIAL_INVALID" && f.count >= 1), JSON.stringify(h.json.failures));
    assert.ok(h.json.failuresByCode.length >= 1);
    const soon = await api(server, "GET", "/health?days=400", viewer());
    assert.equal(soon.status, 400);
  });

  test("audit: filter by actor and action, page with next, export as JSON lines", async () => {
    const mine = await api(server, "GET", "/audit?actor=token:eddie", viewer());
    assert.ok(mine.json.items.length >= 3);
    assert.ok(mine.json.items.every((e: { actor: string }) => e.actor === "token:eddie"));
    const ids = mine.json.items.map((e: { id: number }) => e.id);
    assert.deepEqual(ids, [...ids].sort((a: number, b: number) => b - a), "newest first");
    const prefix = await api(server, "GET", "/audit?actor=token:*", viewer());
    assert.ok(new Set(prefix.json.items.map((e: { actor: string }) => e.actor)).size >= 2);
    const p1 = await api(server, "GET", "/audit?limit=2", viewer());
    assert.equal(p1.json.items.length, 2);
    const p2 = await api(server, "GET", `/audit?limit=2&before=${p1.json.next}`, viewer());
    assert.ok(p2.json.items[0].id < p1.json.items[1].id + 0.5);
    const exp = await api(server, "GET", "/audit/export?action=certificate.revoked", viewer());
    assert.equal(exp.status, 200);
    assert.equal(exp.headers["content-type"], "application/x-ndjson; charset=utf-8");
    assert.match(String(exp.headers["content-disposition"]), /^attachment; filename="tessera-audit-.*\.jsonl"$/);
    const lines = exp.text.trimEnd().split("\n").map((l) => JSON.parse(l) as { action: string });
    assert.ok(lines.length >= 2 && lines.every((l) => l.action === "certificate.revoked"));
  });

  test("jobs: a CRL rebuild and the revocation of a compromised build-secret batch, with progress", async () => {
    const crlJob = await api(server, "POST", "/jobs", { ...editor(), body: { kind: "crl-rebuild" } });
    assert.equal(crlJob.status, 202, crlJob.text);
    const done = await waitForJob(server, tokens.viewer, crlJob.json.id);
    assert.equal(done.status, "succeeded", JSON.stringify(done));
    assert.ok(Number(done.result.crlNumber) >= 1);

    const batch = await api(server, "POST", "/credentials/secrets", { auth: { token: tokens.admin }, body: { name: "leaked-batch" } });
    const victims = [new HandDevice(server), new HandDevice(server), new HandDevice(server)];
    for (const v of victims) assert.equal((await v.enroll(batch.json.secret)).status, 200);
    const badReason = await api(server, "POST", "/jobs", { ...editor(), body: { kind: "revoke-bootstrap-batch", credentialId: batch.json.credential.id, reason: "oops" } });
    assert.equal(badReason.status, 400);
    assert.equal((await server.store.getCredential(batch.json.credential.id))?.revokedAt, null, "a refused job changes nothing");
    const job = await api(server, "POST", "/jobs", { ...editor(), body: { kind: "revoke-bootstrap-batch", credentialId: batch.json.credential.id } });
    assert.equal(job.status, 202, job.text);
    const finished = await waitForJob(server, tokens.viewer, job.json.id);
    assert.equal(finished.status, "succeeded", JSON.stringify(finished));
    assert.deepEqual([finished.done, finished.total, finished.result.devices, finished.result.certificates], [3, 3, 3, 3]);
    for (const v of victims) {
      assert.equal((await server.store.getDevice(v.serverId))?.status, "revoked");
      assert.equal((await server.store.getCertificate(serialOf(v.cert)))?.revocationReason, "keyCompromise");
    }
    assert.equal((await new HandDevice(server).enroll(batch.json.secret)).status, 401, "the leaked secret is revoked first");
    const listed = await api(server, "GET", "/jobs", viewer());
    assert.deepEqual(listed.json.items.slice(0, 2).map((j: { id: string }) => j.id), [job.json.id, crlJob.json.id]);
    const unknown = await api(server, "POST", "/jobs", { ...editor(), body: { kind: "revoke-bootstrap-batch", credentialId: randomUUID() } });
    assert.equal(unknown.status, 404);
    const bogus = await api(server, "POST", "/jobs", { ...editor(), body: { kind: "format-disk" } });
    assert.equal(bogus.status, 400);
  });
});
