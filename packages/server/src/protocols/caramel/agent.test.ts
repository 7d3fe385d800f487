/**
 * `tessera-agent caramel` (as installed: the bin script, separate processes)
 * against Tessera's Caramel server. Embedded mode: pending → 69, signed → 0,
 * unchanged → 0 with nothing transferred, rejected → key wiped and a new CSR
 * posted, a run while another holds the lock → 1. Administered mode: waits until
 * signed and exits 0.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { certificatePublicKey, importPrivateKey, keysMatch, parseCertificate, pemDecodeAll, pemEncode } from "@tessera/pki";
import { acquireFileLock } from "@tessera/client";
import type { RunningServer } from "../../server.js";
import { startTestServer, tempDir } from "../../test-support.js";

const AGENT = new URL("../../../../../bin/tessera-agent.js", import.meta.url).pathname;
const run = promisify(execFile);
let server: RunningServer;
let dir: string;
let host: string;

before(async () => {
  ({ server } = await startTestServer());
  host = new URL(server.url.replace("://localhost", "://127.0.0.1")).host;
  dir = tempDir("tessera-caramel-agent-");
  fs.writeFileSync(path.join(dir, "ca.crt"), pemEncode("CERTIFICATE", server.authority.ca.root.der));
});
after(() => server.close(100));

/** Runs the agent; resolves with its exit code and output (never rejects on a non-zero exit). */
async function agent(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  try {
    const r = await run(process.execPath, [AGENT, "caramel", "--server", host, "--ca", path.join(dir, "ca.crt"), ...args], { env: { ...process.env, ...env }, encoding: "utf8" });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

const requests = async (cn: string) => (await server.authority.devices.listRequests({ protocol: "caramel" })).filter((r) => r.attributes.commonName === cn);

test("embedded: 69 while pending, 0 once signed, 0 unchanged without a transfer, a rejection starts over; 1 while locked", async () => {
  const pem = path.join(dir, "dev-1.pem");
  const embedded = (extra: string[] = []) => agent(["--embedded", "--id", "dev-1", "--pem", pem, "--key-type", "ec-p256", ...extra]);
  assert.equal((await embedded()).code, 69);
  const [first] = await requests("dev-1");
  assert.ok(first, "the CSR was posted");
  assert.equal((await embedded()).code, 69, "still pending");
  assert.equal((await requests("dev-1")).length, 1, "no second CSR while pending");

  const { CaramelService } = await import("./service.js");
  const { defaultConfig } = await import("../../config/defaults.js");
  const caramel = new CaramelService(server.authority, defaultConfig("/").caramel);
  await caramel.sign(first!, { long: false, actor: "test" });
  assert.equal((await embedded()).code, 0);
  const blocks = pemDecodeAll(fs.readFileSync(pem, "utf8"));
  const key = importPrivateKey(fs.readFileSync(pem, "utf8"));
  const cert = parseCertificate(blocks.find((b) => b.label === "CERTIFICATE")!.der);
  assert.ok(keysMatch(key, certificatePublicKey(cert)), "key and certificate in one file");
  assert.equal(fs.statSync(pem).mode & 0o777, 0o600);

  const before = fs.statSync(pem);
  assert.equal((await embedded()).code, 0, "unchanged");
  const after = fs.statSync(pem);
  assert.deepEqual([after.mtimeMs, after.ino, after.size], [before.mtimeMs, before.ino, before.size], "the file was left alone (304)");

  // While another run holds the lock (here: this test, through the SDK's lock), a run exits 1 at once.
  const held = await acquireFileLock(`${pem}.lock`);
  assert.ok(held);
  try {
    assert.equal((await embedded()).code, 1);
  } finally {
    await held.release();
  }
  assert.equal((await embedded()).code, 0, "free again");

  // A rejected request: the key is wiped and a new CSR (new hash) is posted.
  const other = path.join(dir, "dev-2.pem");
  assert.equal((await agent(["--embedded", "--id", "dev-2", "--pem", other, "--key-type", "ec-p256"])).code, 69);
  const [rejected] = await requests("dev-2");
  await server.authority.devices.decide(rejected!.id, "rejected", "test");
  const keyBefore = fs.readFileSync(other, "utf8");
  assert.equal((await agent(["--embedded", "--id", "dev-2", "--pem", other, "--key-type", "ec-p256"])).code, 69);
  const after2 = await requests("dev-2");
  assert.equal(after2.length, 2);
  assert.notEqual(after2[1]!.csrSha256, rejected!.csrSha256);
  assert.notEqual(fs.readFileSync(other, "utf8"), keyBefore, "a new key");
});

test("administered: waits while pending and exits 0 with <id>.crt once an operator signs", async () => {
  const certDir = path.join(dir, "certs");
  const pendingRun = agent(["--id", "host-1.example", "--timeout", "60s", "--key-type", "ec-p256"], { TESSERA_CERT_DIR: certDir });
  // Sign as soon as the CSR shows up.
  const { CaramelService } = await import("./service.js");
  const { defaultConfig } = await import("../../config/defaults.js");
  const caramel = new CaramelService(server.authority, defaultConfig("/").caramel);
  for (let i = 0; i < 100 && (await requests("host-1.example")).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  const [request] = await requests("host-1.example");
  assert.ok(request, "posted");
  await caramel.sign(request, { long: true, actor: "test" });
  const r = await pendingRun;
  assert.equal(r.code, 0, r.out);
  const cert = parseCertificate(fs.readFileSync(path.join(certDir, "host-1.example.crt"), "utf8"));
  assert.ok(cert.notAfter.getTime() - cert.notBefore.getTime() >= 29 * 86_400_000, "the long lifetime");
  assert.equal((await agent(["--id", "host-1.example"], { TESSERA_CERT_DIR: certDir })).code, 0, "unchanged");
});
