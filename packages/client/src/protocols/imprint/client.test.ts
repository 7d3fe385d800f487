import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { decodeName, generateKeyPair, parseAndVerifyCsr } from "@tessera/pki";
import { loadIdentity, saveIdentity } from "../../keystore/store-dir.js";
import { ImprintClient, type ImprintClientOptions } from "./client.js";
import { ImprintError } from "./errors.js";
import { FakeImprintServer } from "./fake-server.js";
import { TestPki } from "./test-pki.js";
import { classifyFailure } from "./renew-or-reenroll.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "client-imprint-"));
let seq = 0;
const freshDir = () => path.join(tmp, `store-${++seq}`);
const DAY = 86_400_000;
const FP = "sha256:" + "5a".repeat(32);

let pki: TestPki;
let fake: FakeImprintServer;
before(async () => {
  pki = await TestPki.create();
  fake = await FakeImprintServer.start(pki);
});
after(async () => {
  await fake.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  fake.reset();
});

const client = (storeDir: string, extra: Partial<ImprintClientOptions> = {}) =>
  new ImprintClient({ serviceUrl: fake.url, storeDir, trust: pki.caPem, hostname: "dev-1", timeoutMs: 5000, ...extra });

/** Every file of a directory with its bytes, to prove a store was not touched. */
function snapshot(dir: string): Record<string, string> {
  if (!fs.existsSync(dir)) return {};
  return Object.fromEntries(fs.readdirSync(dir).sort().map((n) => [n, fs.readFileSync(path.join(dir, n), "utf8")]));
}

/** Puts a device in the store and the fake, with a certificate of the given validity. */
async function seed(dir: string, validity: { notBefore?: Date; notAfter?: Date }, keyType: "ec-p256" | "ed25519" = "ec-p256") {
  const serverId = "srv_" + crypto.randomBytes(16).toString("hex");
  const { privateKey, publicKey } = generateKeyPair(keyType);
  const issued = await pki.issueClient(publicKey, serverId, validity);
  await saveIdentity(dir, { privateKey, certificatePem: issued.pem, caPem: pki.caPem, serverId, fingerprint: FP });
  fake.register(serverId, FP, issued.pem);
  return { serverId, privateKey, pem: issued.pem };
}

const isImprint = (kind: ImprintError["kind"], extra: (e: ImprintError) => boolean = () => true) => (e: unknown) => {
  assert.ok(e instanceof ImprintError, String(e));
  assert.equal(e.kind, kind, e.message);
  return extra(e);
};

test("enroll sends the six keys in imprint's order with a P-256 CSR for CN=hostname, then stores the identity", async () => {
  const dir = freshDir();
  const r = await client(dir, { os: "linux", arch: "arm64" }).enroll({ buildSecret: "build-secret", fingerprint: FP });
  assert.match(r.serverId, /^srv_[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
  assert.deepEqual(fake.problems, []);
  const sent = JSON.parse(fake.seen[0]!.raw) as Record<string, string>;
  assert.deepEqual(Object.keys(sent), ["build_secret", "fingerprint", "hostname", "os", "arch", "csr"]);
  assert.deepEqual({ ...sent, csr: "" }, { build_secret: "build-secret", fingerprint: FP, hostname: "dev-1", os: "linux", arch: "arm64", csr: "" });
  const csr = await parseAndVerifyCsr(sent.csr!);
  assert.deepEqual(decodeName(csr.subject), [{ type: "CN", value: "dev-1" }]);

  const id = await loadIdentity(dir);
  assert.equal(id.serverId, r.serverId);
  assert.equal(id.fingerprint, FP);
  assert.equal(id.certificatePem, r.certificatePem);
  assert.equal(id.caPem, pki.caPem);
  assert.ok(id.certificate.spki.equals(csr.spki), "stored key is the key of the CSR");
});

test("enroll defaults: Go's GOOS/GOARCH names, empty subject for an empty hostname", async () => {
  await client(freshDir(), { hostname: "" }).enroll({ buildSecret: "build-secret", fingerprint: "sha256:other" });
  const sent = JSON.parse(fake.seen[0]!.raw) as Record<string, string>;
  const goOs = { linux: "linux", darwin: "darwin", win32: "windows" }[process.platform as string] ?? process.platform;
  const goArch = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386" }[process.arch as string] ?? process.arch;
  assert.equal(sent.os, goOs);
  assert.equal(sent.arch, goArch);
  assert.equal(sent.hostname, "");
  assert.deepEqual(decodeName((await parseAndVerifyCsr(sent.csr!)).subject), []);
  assert.deepEqual(fake.problems, []);
});

test("any status but 200 fails with imprint's message and leaves the store untouched (401, 202, 500)", async () => {
  const dir = freshDir();
  await seed(dir, {});
  const before = snapshot(dir);
  await assert.rejects(
    client(dir).enroll({ buildSecret: "wrong", fingerprint: FP }),
    isImprint("http", (e) => e.status === 401 && e.body === "unauthorized\n" && e.message === "enrollment failed (HTTP 401): unauthorized\n"),
  );
  // A 202 carrying a perfectly good certificate is still a failure (imprint: any status ≠ 200).
  const good = await pki.issueClient(generateKeyPair().publicKey, "srv_x");
  fake.override = () => ({ status: 202, body: JSON.stringify({ server_id: "srv_x", certificate: good.pem, ca_certificate: pki.caPem }) });
  await assert.rejects(client(dir).enroll({ buildSecret: "build-secret", fingerprint: FP }), isImprint("http", (e) => e.status === 202 && /^enrollment failed \(HTTP 202\): \{/.test(e.message)));
  fake.override = () => ({ status: 500, body: "internal error\n", contentType: "text/plain" });
  await assert.rejects(client(dir).renew(), isImprint("http", (e) => e.message === "renewal failed (HTTP 500): internal error\n"));
  await assert.rejects(client(dir).challengeRenew({ fingerprint: FP }), isImprint("http", (e) => e.message === "challenge renewal failed (HTTP 500): internal error\n"));
  assert.deepEqual(snapshot(dir), before);
});

test("answers that fail the checks are refused before anything is stored (W19)", async () => {
  const dir = freshDir();
  await seed(dir, {});
  const before = snapshot(dir);
  const other = await TestPki.create("Other CA");
  const cases: { name: string; answer: (csrSpki: Buffer) => Promise<string>; detail: RegExp }[] = [
    { name: "certificate for another key", answer: async () => ok("srv_a", (await pki.issueClient(generateKeyPair().publicKey, "srv_a")).pem), detail: /not for the key/ },
    { name: "CN is not server_id", answer: async (spki) => ok("srv_a", (await pki.issueClient(spki, "srv_b")).pem), detail: /CN "srv_b" is not server_id srv_a/ },
    { name: "not signed by ca_certificate", answer: async (spki) => ok("srv_a", (await other.issueClient(spki, "srv_a")).pem), detail: /not signed by/ },
    { name: "empty server_id", answer: async (spki) => ok("", (await pki.issueClient(spki, "")).pem), detail: /empty server_id/ },
    { name: "certificate missing", answer: async () => ok("srv_a", ""), detail: /does not parse/ },
    { name: "not JSON", answer: async () => "<html>", detail: /^decode response/ },
    { name: "certificate not a string", answer: async () => JSON.stringify({ server_id: "srv_a", certificate: 1, ca_certificate: pki.caPem }), detail: /not a string/ },
  ];
  function ok(serverId: string, certificate: string, ca = pki.caPem) {
    return JSON.stringify({ server_id: serverId, certificate, ca_certificate: ca }) + "\n";
  }
  for (const c of cases) {
    // The answer is made for the CSR of this very request (so only the checked property is wrong).
    fake.override = async (_path, body) => ({ status: 200, body: await c.answer((await parseAndVerifyCsr(String(body.csr))).spki) });
    await assert.rejects(client(dir).enroll({ buildSecret: "build-secret", fingerprint: FP }), isImprint("invalid-response", (e) => c.detail.test(e.message)), c.name);
    await assert.rejects(client(dir).renew(), isImprint("invalid-response"), c.name);
    assert.deepEqual(snapshot(dir), before, c.name);
  }
  // Control: the same override with nothing wrong is accepted and stored.
  fake.override = async (_path, body) => ({ status: 200, body: ok("srv_a", (await pki.issueClient((await parseAndVerifyCsr(String(body.csr))).spki, "srv_a")).pem) });
  assert.equal((await client(dir).enroll({ buildSecret: "build-secret", fingerprint: FP })).serverId, "srv_a");
  assert.equal((await loadIdentity(dir)).serverId, "srv_a");
});

test("renew runs over mTLS with the stored certificate, keeps server_id and fingerprint, and rotates the key", async () => {
  const dir = freshDir();
  const { serverId, privateKey } = await seed(dir, { notAfter: new Date(Date.now() + 10 * DAY) });
  const r = await client(dir).renew();
  assert.deepEqual(fake.problems, []);
  assert.equal(fake.seen.length, 1);
  assert.deepEqual({ path: fake.seen[0]!.path, cn: fake.seen[0]!.peerCn, ok: fake.seen[0]!.peerAuthorized }, { path: "/api/v1/renew", cn: serverId, ok: true });
  assert.equal(r.serverId, serverId);
  const id = await loadIdentity(dir);
  assert.equal(id.serverId, serverId);
  assert.equal(id.fingerprint, FP);
  assert.equal(id.certificatePem, r.certificatePem);
  assert.ok(!id.privateKey.export({ type: "pkcs8", format: "der" }).equals(privateKey.export({ type: "pkcs8", format: "der" })), "a fresh key");
  // The old certificate is superseded at the server: a second renewal works only with the new one.
  await client(dir).renew();
  assert.equal(fake.seen[1]!.peerCn, serverId);
});

test("renew trusts only ca.crt: a server certificate from another CA is refused and nothing changes", async () => {
  const dir = freshDir();
  const { privateKey, pem, serverId } = await seed(dir, {});
  const other = await TestPki.create("Other CA");
  // ca.crt names another CA, which did not issue the server's certificate.
  await saveIdentity(dir, { privateKey, certificatePem: pem, caPem: other.caPem, serverId, fingerprint: FP });
  const before = snapshot(dir);
  const err = await client(dir, { trust: undefined }).renew().catch((e: unknown) => e);
  assert.ok(err instanceof ImprintError && err.kind === "network", String(err));
  assert.match(err.causeCode ?? "", /UNABLE_TO_VERIFY|SELF_SIGNED|ISSUER/);
  assert.match(err.message, /^renewal request failed: /);
  assert.equal(classifyFailure(err), "auth", "a server that ca.crt cannot authenticate is not a flaky network");
  assert.equal(fake.seen.length, 0);
  assert.deepEqual(snapshot(dir), before);
});

test("renew needs enrollment.json and an enrolled store", async () => {
  const dir = freshDir();
  await seed(dir, {});
  fs.rmSync(path.join(dir, "enrollment.json"));
  await assert.rejects(client(dir).renew(), isImprint("not-enrolled", (e) => /enrollment\.json/.test(e.message)));
  await assert.rejects(client(freshDir()).renew(), isImprint("not-enrolled", (e) => /not enrolled: no certificates in/.test(e.message)));
  await assert.rejects(client(freshDir()).challengeRenew({ fingerprint: FP }), isImprint("not-enrolled"));
  assert.equal(fake.seen.length, 0);
});

test("challengeRenew sends server_id from the CN, the raw client.crt and a proof the server verifies (EC and Ed25519)", async () => {
  for (const keyType of ["ec-p256", "ed25519"] as const) {
    fake.seen.length = 0;
    const dir = freshDir();
    const { serverId, pem } = await seed(dir, { notBefore: new Date(Date.now() - 400 * DAY), notAfter: new Date(Date.now() - 2 * DAY) }, keyType);
    // The client sends client.crt verbatim, even with text around the PEM block.
    fs.writeFileSync(path.join(dir, "client.crt"), "# device cert\n" + pem);
    fs.rmSync(path.join(dir, "enrollment.json"));
    const r = await client(dir).challengeRenew({ fingerprint: FP });
    assert.deepEqual(fake.problems, [], keyType);
    const sent = JSON.parse(fake.seen[0]!.raw) as Record<string, string>;
    assert.deepEqual(Object.keys(sent), ["server_id", "fingerprint", "expired_cert", "csr", "proof"]);
    assert.equal(sent.server_id, serverId);
    assert.equal(sent.expired_cert, "# device cert\n" + pem);
    assert.equal(r.serverId, serverId);
    const id = await loadIdentity(dir);
    assert.equal(id.fingerprint, FP);
    assert.equal(id.serverId, serverId);
    assert.equal(id.privateKey.asymmetricKeyType, "ec", "the new key is always EC P-256");
  }
  // A wrong fingerprint is refused by the server with imprint's uniform 401.
  const dir = freshDir();
  await seed(dir, { notBefore: new Date(Date.now() - 400 * DAY), notAfter: new Date(Date.now() - DAY) });
  await assert.rejects(client(dir).challengeRenew({ fingerprint: "sha256:wrong" }), isImprint("http", (e) => e.message === "challenge renewal failed (HTTP 401): challenge renewal failed\n"));
});

test("challengeRenew with an RSA key fails locally with unsupported-key", async () => {
  const dir = freshDir();
  const rsa = generateKeyPair("rsa-2048");
  const issued = await pki.issueClient(rsa.publicKey, "srv_rsa", { notAfter: new Date(Date.now() - DAY), notBefore: new Date(Date.now() - 10 * DAY) });
  await saveIdentity(dir, { privateKey: rsa.privateKey, certificatePem: issued.pem, caPem: pki.caPem, serverId: "srv_rsa", fingerprint: FP });
  await assert.rejects(client(dir).challengeRenew({ fingerprint: FP }), isImprint("unsupported-key", (e) => e.message === "unsupported key type for proof signing: rsa"));
  assert.equal(fake.seen.length, 0);
});

test("answers are read up to 1 MiB; a hung server times out as a network error", async () => {
  const dir = freshDir();
  fake.override = () => ({ status: 503, body: "x".repeat(3 << 20), contentType: "text/plain" });
  const big = await client(dir).enroll({ buildSecret: "build-secret", fingerprint: FP }).catch((e: unknown) => e);
  assert.ok(big instanceof ImprintError && big.kind === "http" && big.status === 503);
  assert.equal(big.body!.length, 1 << 20);

  fake.override = () => "hang";
  const started = Date.now();
  const slow = await client(dir, { timeoutMs: 300 }).enroll({ buildSecret: "build-secret", fingerprint: FP }).catch((e: unknown) => e);
  assert.ok(slow instanceof ImprintError && slow.kind === "network" && slow.causeCode === "ETIMEDOUT", String(slow));
  assert.equal(slow.message, "enrollment request failed: timeout after 300 ms");
  assert.ok(Date.now() - started < 3000);
  assert.equal(fs.existsSync(dir), false);
});

test("options are validated on construction", () => {
  assert.throws(() => new ImprintClient({ serviceUrl: "ftp://x", storeDir: "" }), /serviceUrl must be an http\(s\) URL; storeDir is required/);
  assert.throws(() => new ImprintClient({ serviceUrl: "https://x", storeDir: "d", timeoutMs: 0 }), /timeoutMs/);
});
