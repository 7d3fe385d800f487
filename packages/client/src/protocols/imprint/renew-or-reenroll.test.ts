import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { generateKeyPair } from "@tessera/pki";
import { loadIdentity, saveIdentity } from "../../keystore/store-dir.js";
import { ImprintClient, type ImprintClientOptions } from "./client.js";
import { ImprintError } from "./errors.js";
import { FakeImprintServer, refusedUrl } from "./fake-server.js";
import { TestPki } from "./test-pki.js";
import { classifyFailure } from "./renew-or-reenroll.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "client-ror-"));
let seq = 0;
const freshDir = () => path.join(tmp, `store-${++seq}`);
const DAY = 86_400_000;
const FP = "sha256:" + "c3".repeat(32);
const ARGS = { buildSecret: "build-secret", fingerprint: FP };

let pki: TestPki;
let fake: FakeImprintServer;
let refused: string;
before(async () => {
  pki = await TestPki.create();
  fake = await FakeImprintServer.start(pki);
  refused = await refusedUrl();
});
after(async () => {
  await fake.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  // Every test seeds its own device under the same fingerprint.
  fake.devices.clear();
  fake.reset();
});

const client = (storeDir: string, extra: Partial<ImprintClientOptions> = {}) =>
  new ImprintClient({ serviceUrl: fake.url, storeDir, trust: pki.caPem, hostname: "dev-1", timeoutMs: 5000, ...extra });
const paths = () => fake.seen.map((s) => s.path);
const snapshot = (dir: string) => Object.fromEntries(fs.readdirSync(dir).sort().map((n) => [n, fs.readFileSync(path.join(dir, n), "utf8")]));

/** A store whose certificate expires at `notAfter` (relative to now, in ms), registered with the fake. */
async function seed(expiresInMs: number) {
  const dir = freshDir();
  const serverId = "srv_" + crypto.randomBytes(16).toString("hex");
  const { privateKey, publicKey } = generateKeyPair();
  const notAfter = new Date(Date.now() + expiresInMs);
  const issued = await pki.issueClient(publicKey, serverId, { notBefore: new Date(notAfter.getTime() - 365 * DAY), notAfter });
  await saveIdentity(dir, { privateKey, certificatePem: issued.pem, caPem: pki.caPem, serverId, fingerprint: FP });
  fake.register(serverId, FP, issued.pem);
  return { dir, serverId };
}

test("not enrolled → reenrolled", async () => {
  const dir = freshDir();
  assert.deepEqual(await client(dir).renewOrReenroll(ARGS), { action: "reenrolled", attempts: [] });
  assert.deepEqual(paths(), ["/api/v1/enroll"]);
  assert.equal((await loadIdentity(dir)).fingerprint, FP);
});

test("far from expiry → none, no request", async () => {
  const { dir } = await seed(200 * DAY);
  assert.deepEqual(await client(dir).renewOrReenroll(ARGS), { action: "none", attempts: [] });
  assert.deepEqual(paths(), []);
  // The threshold is configurable and the clock injectable.
  const later = () => new Date(Date.now() + 180 * DAY);
  assert.equal((await client(dir, { now: later }).renewOrReenroll(ARGS)).action, "renewed");
});

test("near expiry → Tier 1 renewed over mTLS", async () => {
  const { dir, serverId } = await seed(10 * DAY);
  assert.deepEqual(await client(dir).renewOrReenroll(ARGS), { action: "renewed", attempts: [] });
  assert.deepEqual(paths(), ["/api/v1/renew"]);
  assert.equal(fake.seen[0]!.peerCn, serverId);
  assert.ok((await loadIdentity(dir)).certificate.notAfter.getTime() > Date.now() + 300 * DAY);
  assert.deepEqual(fake.problems, []);
});

test("expired within the window → Tier 2 challenge_renewed", async () => {
  const { dir } = await seed(-2 * DAY);
  assert.deepEqual(await client(dir).renewOrReenroll(ARGS), { action: "challenge_renewed", attempts: [] });
  assert.deepEqual(paths(), ["/api/v1/renew/challenge"]);
  assert.deepEqual(fake.problems, []);
});

test("expired beyond the window → straight to Tier 3", async () => {
  const { dir, serverId } = await seed(-40 * DAY);
  assert.deepEqual(await client(dir).renewOrReenroll(ARGS), { action: "reenrolled", attempts: [] });
  assert.deepEqual(paths(), ["/api/v1/enroll"]);
  assert.equal((await loadIdentity(dir)).serverId, serverId, "same fingerprint, same server_id");
  // A wider window makes the same certificate eligible for Tier 2.
  const second = await seed(-40 * DAY);
  assert.equal((await client(second.dir).renewOrReenroll({ ...ARGS, challengeWindowMs: 60 * DAY })).action, "reenrolled");
  assert.deepEqual(paths().slice(1), ["/api/v1/renew/challenge", "/api/v1/enroll"], "the fake's own 30-day window refuses it, so Tier 3 follows");
});

test("Tier 1 refused with 401 → Tier 2 is tried before Tier 3", async () => {
  const { dir } = await seed(10 * DAY);
  fake.override = (p) => (p === "/api/v1/renew" ? { status: 401, body: "unauthorized\n", contentType: "text/plain" } : undefined);
  const r = await client(dir).renewOrReenroll(ARGS);
  assert.equal(r.action, "reenrolled");
  assert.deepEqual(paths(), ["/api/v1/renew", "/api/v1/renew/challenge", "/api/v1/enroll"]);
  assert.deepEqual(r.attempts.map((a) => [a.tier, a.status]), [["renew", 401], ["challenge", 401]]);
  assert.equal(r.attempts[0]!.error, "renewal failed (HTTP 401): unauthorized\n");
});

test("Tier 1 refused with 403, Tier 2 accepted → challenge_renewed", async () => {
  const { dir } = await seed(10 * DAY);
  fake.override = (p) => (p === "/api/v1/renew" ? { status: 403, body: "forbidden\n" } : undefined);
  // A server that also renews unexpired certificates through the challenge (imprint does not).
  fake.allowUnexpiredChallenge = true;
  try {
    const r = await client(dir).renewOrReenroll(ARGS);
    assert.equal(r.action, "challenge_renewed");
    assert.deepEqual(r.attempts, [{ tier: "renew", error: "renewal failed (HTTP 403): forbidden\n", status: 403 }]);
    assert.deepEqual(paths(), ["/api/v1/renew", "/api/v1/renew/challenge"]);
    assert.deepEqual(fake.problems, []);
  } finally {
    fake.allowUnexpiredChallenge = false;
  }
});

test("Tier 1 failing with 400 falls straight to Tier 3, as in imprint", async () => {
  const { dir } = await seed(10 * DAY);
  fake.override = (p) => (p === "/api/v1/renew" ? { status: 400, body: "invalid CSR\n" } : undefined);
  const r = await client(dir).renewOrReenroll(ARGS);
  assert.equal(r.action, "reenrolled");
  assert.deepEqual(paths(), ["/api/v1/renew", "/api/v1/enroll"]);
});

for (const status of [503, 500, 429]) {
  test(`HTTP ${status} on Tier 1 stops the run: no re-enrollment, store untouched`, async () => {
    const { dir } = await seed(10 * DAY);
    const before = snapshot(dir);
    fake.override = () => ({ status, body: "busy\n" });
    const err = await client(dir).renewOrReenroll(ARGS).catch((e: unknown) => e);
    assert.ok(err instanceof ImprintError, String(err));
    assert.equal(err.kind, "http");
    assert.equal(err.status, status);
    assert.equal(err.message, `renew: renewal failed (HTTP ${status}): busy\n`);
    assert.deepEqual(err.attempts, [{ tier: "renew", error: `renewal failed (HTTP ${status}): busy\n`, status }]);
    assert.deepEqual(paths(), ["/api/v1/renew"]);
    assert.deepEqual(snapshot(dir), before);
  });
}

test("connection refused stops the run on Tier 1 and on Tier 2 — never re-enrolls", async () => {
  for (const [expiresIn, tier, prefix] of [[10 * DAY, "renew", "renew"], [-DAY, "challenge", "challenge renew"]] as const) {
    const { dir } = await seed(expiresIn);
    const before = snapshot(dir);
    const err = await client(dir, { serviceUrl: refused }).renewOrReenroll(ARGS).catch((e: unknown) => e);
    assert.ok(err instanceof ImprintError && err.kind === "network", String(err));
    assert.equal(err.causeCode, "ECONNREFUSED");
    assert.ok(err.message.startsWith(`${prefix}: `), err.message);
    assert.deepEqual(err.attempts.map((a) => a.tier), [tier]);
    assert.deepEqual(snapshot(dir), before);
  }
});

test("a timeout on Tier 2 stops the run; Tier 2 503 too", async () => {
  const { dir } = await seed(-DAY);
  fake.override = () => "hang";
  const slow = await client(dir, { timeoutMs: 300 }).renewOrReenroll(ARGS).catch((e: unknown) => e);
  assert.ok(slow instanceof ImprintError && slow.kind === "network" && slow.causeCode === "ETIMEDOUT", String(slow));
  fake.override = () => ({ status: 503, body: "down\n" });
  const busy = await client(dir).renewOrReenroll(ARGS).catch((e: unknown) => e);
  assert.ok(busy instanceof ImprintError && busy.status === 503);
  assert.deepEqual(paths(), ["/api/v1/renew/challenge", "/api/v1/renew/challenge"]);
});

test("an unreadable client.crt → enroll; a failed enrollment reports every attempt", async () => {
  const { dir } = await seed(10 * DAY);
  fs.writeFileSync(path.join(dir, "client.crt"), "garbage\n");
  assert.equal((await client(dir).renewOrReenroll(ARGS)).action, "reenrolled");
  assert.deepEqual(paths(), ["/api/v1/enroll"]);

  const expired = await seed(-40 * DAY);
  const err = await client(expired.dir).renewOrReenroll({ ...ARGS, buildSecret: "wrong" }).catch((e: unknown) => e);
  assert.ok(err instanceof ImprintError && err.status === 401, String(err));
  assert.equal(err.message, "re-enroll: enrollment failed (HTTP 401): unauthorized\n");
  assert.deepEqual(err.attempts, [{ tier: "enroll", error: "enrollment failed (HTTP 401): unauthorized\n", status: 401 }]);
});

test("classifyFailure", () => {
  const http = (status: number) => new ImprintError("http", "x", { status });
  assert.deepEqual([401, 403, 400, 404, 202, 408, 429, 500, 503].map((s) => classifyFailure(http(s))), ["auth", "auth", "other", "other", "other", "transient", "transient", "transient", "transient"]);
  const netErr = (code: string) => new ImprintError("network", "x", { causeCode: code });
  assert.deepEqual(
    ["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "ETIMEDOUT", "EAI_AGAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "ERR_TLS_CERT_ALTNAME_INVALID", "CERT_HAS_EXPIRED", "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA"].map((c) => classifyFailure(netErr(c))),
    ["transient", "transient", "transient", "transient", "transient", "auth", "auth", "auth", "auth"],
  );
  assert.equal(classifyFailure(new ImprintError("invalid-response", "x")), "other");
  assert.equal(classifyFailure(new Error("x")), "other");
});
