import "reflect-metadata";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { buildCsr, generateKeyPair, parseCrl } from "@tessera/pki";
import { startTestServer, tempDir, TestClock } from "../test-support.js";
import type { RunningServer } from "../server.js";
import type { TesseraConfig } from "../config/types.js";
import { CrlFile } from "./crl-file.js";
import type { CrlSnapshot } from "./crl-service.js";

const run = promisify(execFile);
let server: RunningServer;
let config: TesseraConfig;
let dataDir: string;
const clock = new TestClock();
const dir = tempDir("tessera-crlfile-");
const crlFile = path.join(dir, "broker", "tessera-crl.pem");

async function issue(name: string): Promise<string> {
  const { privateKey } = generateKeyPair();
  const issued = await server.authority.issue({
    csr: buildCsr({ subject: [{ type: "CN", value: name }], privateKey }),
    protocol: "test",
    credential: { kind: "operator", actor: "test" },
    subject: [{ type: "CN", value: name }],
  });
  return issued.record.serial;
}

/** Waits (polling every 10 ms, up to 5 s) until the file's CRL satisfies `ok`. */
async function fileWhere(ok: (crl: ReturnType<typeof parseCrl>) => boolean): Promise<ReturnType<typeof parseCrl>> {
  for (let i = 0; i < 500; i++) {
    const crl = parseCrl(fs.readFileSync(crlFile, "utf8"));
    if (ok(crl)) return crl;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("the CRL file did not change");
}

before(async () => {
  ({ server, config, dataDir } = await startTestServer({}, { clock, configure: (c) => (c.revocation.crlFile = crlFile) }));
});
after(async () => {
  await server.close(500);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("the CRL file is written at start (0644, PEM) and openssl crl verifies it", async () => {
  assert.equal(fs.statSync(crlFile).mode & 0o777, 0o644);
  assert.match(fs.readFileSync(crlFile, "utf8"), /^-----BEGIN X509 CRL-----\n/);
  const r = await run("openssl", ["crl", "-in", crlFile, "-CAfile", path.join(dataDir, "ca", "chain.pem"), "-noout"]);
  assert.match(r.stdout + r.stderr, /verify OK/);
  assert.deepEqual(fs.readdirSync(path.dirname(crlFile)), ["tessera-crl.pem"], "no temporary file left behind");
});

test("a revocation in this process rewrites the file", async () => {
  const serial = await issue("crl-file-1");
  const before = parseCrl(fs.readFileSync(crlFile, "utf8"));
  await server.authority.revoke(serial, "keyCompromise", "test");
  const crl = await fileWhere((c) => c.revoked.has(serial));
  assert.equal(crl.revoked.get(serial)?.reason, "keyCompromise");
  assert.ok(crl.crlNumber! > before.crlNumber!);
  const r = await run("openssl", ["crl", "-in", crlFile, "-CAfile", path.join(dataDir, "ca", "chain.pem"), "-noout", "-text"]);
  assert.match(r.stdout + r.stderr, /verify OK/);
  assert.match(r.stdout, new RegExp(`Serial Number: ${serial.toUpperCase()}`));
});

test("a revocation by another process reaches the file at the next poll", async () => {
  const serial = await issue("crl-file-2");
  const at = clock.now();
  await server.store.revokeCertificate(serial, "superseded", at, { at, actor: "cli", action: "certificate.revoked", target: serial, detail: {} });
  await server.authority.revocations.poll();
  const crl = await fileWhere((c) => c.revoked.has(serial));
  assert.equal(crl.revoked.get(serial)?.reason, "superseded");
});

test("the file follows the cache before nextUpdate (the refresh timer's rebuild)", async () => {
  const before = parseCrl(fs.readFileSync(crlFile, "utf8"));
  clock.advance((config.crl.validity - config.crl.refreshBefore + 1) * 1000);
  await server.authority.currentCrl(); // what the minute timer calls
  const crl = await fileWhere((c) => c.crlNumber! > before.crlNumber!);
  assert.ok(crl.nextUpdate! > before.nextUpdate!);
});

test("CrlFile: emits \"written\" after each write, never writes an older CRL, reports write failures", async () => {
  const file = path.join(dir, "direct.pem");
  const own = new CrlFile({ file, crl: server.authority.crl, revocations: server.authority.revocations });
  await own.start();
  const start = parseCrl(fs.readFileSync(file, "utf8"));
  const serials = [await issue("burst-1"), await issue("burst-2"), await issue("burst-3")];
  const written = new Promise<CrlSnapshot>((resolve) =>
    own.on("written", (s: CrlSnapshot) => serials.every((x) => parseCrl(s.der).revoked.has(x)) && resolve(s)),
  );
  await Promise.all(serials.map((s) => server.authority.revoke(s, "cessationOfOperation", "test")));
  const snap = await written;
  const crl = parseCrl(fs.readFileSync(file, "utf8"));
  assert.equal(crl.crlNumber, snap.number);
  for (const s of serials) assert.ok(crl.revoked.has(s), s);
  assert.ok(snap.number > start.crlNumber!);
  // An older snapshot (a slow build finishing late) does not replace a newer file.
  await own.write({ ...snap, number: start.crlNumber!, pem: "stale" });
  assert.equal(parseCrl(fs.readFileSync(file, "utf8")).crlNumber, snap.number);
  await own.stop();

  const errors: string[] = [];
  const blocked = new CrlFile({ file: path.join(file, "cannot", "be-here.pem"), crl: server.authority.crl, revocations: server.authority.revocations, onError: (m) => errors.push(m) });
  await blocked.start();
  await blocked.stop();
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /cannot write the CRL file/);
});
