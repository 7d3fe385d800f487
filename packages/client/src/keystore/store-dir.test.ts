import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { certificatePublicKey, generateKeyPair, keysMatch } from "@tessera/pki";
import {
  certificateExpiry, encodeEnrollmentJson, isEnrolled, loadIdentity, needsRenewal, saveIdentity, StoreDirError, type IdentityToSave,
} from "./store-dir.js";
import { TestPki } from "../protocols/imprint/test-pki.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "client-store-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const fresh = () => path.join(tmp, `store-${++seq}`);
const umask = process.umask();
const mode = (p: string) => fs.statSync(p).mode & 0o777;
const read = (dir: string, name: string) => fs.readFileSync(path.join(dir, name), "utf8");

let pki: TestPki;
before(async () => {
  pki = await TestPki.create();
});

async function identity(serverId = "srv_0123456789ab4def8123456789abcdef", fingerprint = "sha256:" + "ab".repeat(32)): Promise<IdentityToSave> {
  const { privateKey, publicKey } = generateKeyPair("ec-p256");
  const issued = await pki.issueClient(publicKey, serverId);
  return { privateKey, certificatePem: issued.pem, caPem: pki.caPem, serverId, fingerprint };
}

/** Writes a store the way imprint's Go client does, byte for byte. */
function writeGoStyle(dir: string, id: IdentityToSave, withJson = true): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(dir, "client.key"), id.privateKey.export({ type: "sec1", format: "pem" }), { mode: 0o600 });
  fs.writeFileSync(path.join(dir, "client.crt"), id.certificatePem, { mode: 0o644 });
  fs.writeFileSync(path.join(dir, "ca.crt"), id.caPem, { mode: 0o644 });
  if (withJson) fs.writeFileSync(path.join(dir, "enrollment.json"), `{\n  "server_id": "${id.serverId}",\n  "fingerprint": "${id.fingerprint}"\n}`, { mode: 0o644 });
}

test("a store written by imprint's Go client loads", async () => {
  const dir = fresh();
  const id = await identity();
  writeGoStyle(dir, id);
  assert.equal(await isEnrolled(dir), true);
  const got = await loadIdentity(dir);
  assert.ok(keysMatch(got.privateKey, createPublicKey(id.privateKey)));
  assert.equal(got.certificatePem, id.certificatePem);
  assert.equal(got.caPem, id.caPem);
  assert.equal(got.serverId, id.serverId);
  assert.equal(got.fingerprint, id.fingerprint);
  assert.equal(got.caCertificates.length, 1);
  assert.ok(got.caCertificates[0]!.der.equals(pki.ca.der));
  assert.ok(got.certificate.notAfter > new Date());
});

test("saveIdentity writes exactly the bytes and modes imprint writes", async () => {
  const dir = path.join(fresh(), "nested", "store");
  const id = await identity("srv_x", "sha256:y");
  assert.equal(await saveIdentity(dir, id), "swap");
  const goDir = fresh();
  writeGoStyle(goDir, id);
  for (const name of ["client.key", "client.crt", "ca.crt", "enrollment.json"]) {
    assert.equal(read(dir, name), read(goDir, name), name);
  }
  assert.equal(read(dir, "enrollment.json"), '{\n  "server_id": "srv_x",\n  "fingerprint": "sha256:y"\n}');
  assert.equal(read(dir, "enrollment.json"), JSON.stringify({ server_id: "srv_x", fingerprint: "sha256:y" }, null, 2));
  assert.match(read(dir, "client.key"), /^-----BEGIN EC PRIVATE KEY-----\n/);
  assert.equal(mode(path.join(dir, "client.key")), 0o600);
  for (const name of ["client.crt", "ca.crt", "enrollment.json"]) assert.equal(mode(path.join(dir, name)), 0o644 & ~umask, name);
  assert.equal(mode(dir), 0o700 & ~umask);
  assert.deepEqual(fs.readdirSync(dir).sort(), ["ca.crt", "client.crt", "client.key", "enrollment.json"]);
  assert.deepEqual(fs.readdirSync(path.dirname(dir)), ["store"], "no staging, .new or .old left behind");
});

test("enrollment.json escapes what Go's encoder escapes", () => {
  assert.equal(encodeEnrollmentJson("a<b>&", "x\u2028"), '{\n  "server_id": "a\\u003cb\\u003e\\u0026",\n  "fingerprint": "x\\u2028"\n}');
});

test("saving over an existing store replaces the set, keeps other files and the directory's mode", async () => {
  const dir = fresh();
  const first = await identity();
  writeGoStyle(dir, first);
  fs.writeFileSync(path.join(dir, "imprint-identity"), "sha256:keep\n", { mode: 0o600 });
  fs.mkdirSync(path.join(dir, "extra"));
  fs.writeFileSync(path.join(dir, "extra", "note"), "n");
  fs.chmodSync(dir, 0o750);
  const second = await identity(first.serverId, "sha256:second");
  assert.equal(await saveIdentity(dir, second), "swap");
  const got = await loadIdentity(dir);
  assert.equal(got.certificatePem, second.certificatePem);
  assert.ok(keysMatch(got.privateKey, createPublicKey(second.privateKey)));
  assert.equal(got.fingerprint, "sha256:second");
  assert.equal(read(dir, "imprint-identity"), "sha256:keep\n");
  assert.equal(mode(path.join(dir, "imprint-identity")), 0o600);
  assert.equal(read(path.join(dir, "extra"), "note"), "n");
  assert.equal(mode(dir), 0o750);
});

test("readers never see a certificate paired with another key while saves run", async () => {
  const dir = fresh();
  await saveIdentity(dir, await identity());
  const ids = await Promise.all(Array.from({ length: 8 }, () => identity()));
  let reads = 0;
  let stop = false;
  const reader = (async () => {
    while (!stop) {
      // loadIdentity throws "unreadable" on a key/certificate mismatch.
      const got = await loadIdentity(dir);
      assert.ok(keysMatch(got.privateKey, certificatePublicKey(got.certificate)));
      reads++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  for (const id of ids) await saveIdentity(dir, id);
  stop = true;
  await reader;
  assert.ok(reads > 0);
  assert.equal((await loadIdentity(dir)).certificatePem, ids[ids.length - 1]!.certificatePem);
});

test("non-EC keys are stored as PKCS#8 and read back; a PKCS#8 EC key written by hand loads", async () => {
  const dir = fresh();
  const ed = generateKeyPair("ed25519");
  const issued = await pki.issueClient(ed.publicKey, "srv_ed");
  await saveIdentity(dir, { privateKey: ed.privateKey, certificatePem: issued.pem, caPem: pki.caPem, serverId: "srv_ed", fingerprint: "f" });
  assert.match(read(dir, "client.key"), /^-----BEGIN PRIVATE KEY-----\n/);
  assert.equal((await loadIdentity(dir)).privateKey.asymmetricKeyType, "ed25519");

  const dir2 = fresh();
  const id = await identity();
  writeGoStyle(dir2, id);
  fs.writeFileSync(path.join(dir2, "client.key"), id.privateKey.export({ type: "pkcs8", format: "pem" }));
  assert.equal((await loadIdentity(dir2)).privateKey.asymmetricKeyType, "ec");
});

test("enrollment.json is optional; the three PEM files decide enrollment", async () => {
  const dir = fresh();
  assert.equal(await isEnrolled(dir), false);
  await assert.rejects(loadIdentity(dir), (e: unknown) => e instanceof StoreDirError && e.reason === "not-enrolled" && /not enrolled: no certificates in/.test(e.message));
  const id = await identity();
  writeGoStyle(dir, id, false);
  assert.equal(await isEnrolled(dir), true);
  const got = await loadIdentity(dir);
  assert.equal(got.serverId, undefined);
  assert.equal(got.fingerprint, undefined);
  fs.writeFileSync(path.join(dir, "enrollment.json"), "{broken");
  assert.equal((await loadIdentity(dir)).serverId, undefined);
  fs.rmSync(path.join(dir, "ca.crt"));
  assert.equal(await isEnrolled(dir), false);
});

test("a key that does not belong to the certificate is reported unreadable", async () => {
  const dir = fresh();
  const id = await identity();
  writeGoStyle(dir, { ...id, privateKey: generateKeyPair("ec-p256").privateKey });
  await assert.rejects(loadIdentity(dir), (e: unknown) => e instanceof StoreDirError && e.reason === "unreadable" && /does not match/.test(e.message));
  fs.writeFileSync(path.join(dir, "client.key"), "garbage");
  await assert.rejects(loadIdentity(dir), (e: unknown) => e instanceof StoreDirError && e.reason === "unreadable");
});

test("a crash between the two renames is repaired on the next load", async () => {
  const dir = fresh();
  const oldId = await identity();
  const newId = await identity();
  writeGoStyle(dir, oldId);
  const staged = dir + "-staged";
  writeGoStyle(staged, newId);
  // State after `<dir>` → `<dir>.old` and before `<dir>.new` → `<dir>`.
  fs.renameSync(dir, dir + ".old");
  fs.renameSync(staged, dir + ".new");
  assert.equal((await loadIdentity(dir)).certificatePem, newId.certificatePem);
  assert.equal(fs.existsSync(dir + ".old"), false);
  assert.equal(fs.existsSync(dir + ".new"), false);

  // Only `<dir>.old` left (the swap was undone but not renamed back): restored.
  fs.renameSync(dir, dir + ".old");
  assert.equal(await isEnrolled(dir), true);
  assert.equal((await loadIdentity(dir)).certificatePem, newId.certificatePem);

  // A complete `<dir>.new` next to an intact `<dir>` is the newer set: promoted.
  const newer = await identity();
  writeGoStyle(dir + ".new", newer);
  fs.mkdirSync(dir + ".staging");
  assert.equal((await loadIdentity(dir)).certificatePem, newer.certificatePem);
  assert.deepEqual(fs.readdirSync(path.dirname(dir)).filter((n) => n.startsWith(path.basename(dir) + ".")), []);
});

test("when directories cannot be renamed (a mount point), files are replaced one by one", async () => {
  const dir = fresh();
  writeGoStyle(dir, await identity());
  fs.writeFileSync(path.join(dir, "imprint-identity"), "keep\n");
  const id = await identity();
  let calls = 0;
  const renameDir = async () => {
    calls++;
    throw Object.assign(new Error("EBUSY: resource busy or locked, rename"), { code: "EBUSY" });
  };
  assert.equal(await saveIdentity(dir, id, { renameDir }), "per-file");
  assert.equal(calls, 1);
  const got = await loadIdentity(dir);
  assert.equal(got.certificatePem, id.certificatePem);
  assert.equal(got.serverId, id.serverId);
  assert.equal(mode(path.join(dir, "client.key")), 0o600);
  assert.deepEqual(fs.readdirSync(dir).sort(), ["ca.crt", "client.crt", "client.key", "enrollment.json", "imprint-identity"]);
  assert.equal(fs.existsSync(dir + ".new"), false);

  // Any other rename failure is a real error and is reported.
  const other = async () => {
    throw Object.assign(new Error("ENOSPC"), { code: "ENOSPC" });
  };
  await assert.rejects(saveIdentity(dir, await identity(), { renameDir: other }), /ENOSPC/);
  assert.equal((await loadIdentity(dir)).certificatePem, id.certificatePem, "store unchanged after a failed save");
});

test("needsRenewal: strict < threshold, false once expired; certificateExpiry is NotAfter", async () => {
  const dir = fresh();
  const { privateKey, publicKey } = generateKeyPair("ec-p256");
  const notAfter = new Date(Math.floor(Date.now() / 1000) * 1000 + 40 * 86_400_000);
  const issued = await pki.issueClient(publicKey, "srv_t", { notAfter });
  await saveIdentity(dir, { privateKey, certificatePem: issued.pem, caPem: pki.caPem, serverId: "srv_t", fingerprint: "f" });
  assert.equal((await certificateExpiry(dir)).getTime(), notAfter.getTime());
  const T = 30 * 86_400_000;
  const at = (ms: number) => new Date(notAfter.getTime() - ms);
  assert.equal(await needsRenewal(dir, T, at(T)), false, "exactly the threshold left: not yet");
  assert.equal(await needsRenewal(dir, T, at(T - 1)), true);
  assert.equal(await needsRenewal(dir, T, at(0)), true, "at NotAfter it is not expired yet");
  assert.equal(await needsRenewal(dir, T, at(-1)), false, "expired");
  assert.equal(await needsRenewal(dir, T, at(T + 1000)), false);
});

test("a symlinked store directory stays a symlink; its target is swapped", async () => {
  const real = fresh();
  const link = fresh();
  fs.mkdirSync(real, { mode: 0o700 });
  fs.symlinkSync(real, link);
  const id = await identity();
  assert.equal(await saveIdentity(link, id), "swap");
  assert.ok(fs.lstatSync(link).isSymbolicLink());
  assert.equal(read(real, "client.crt"), id.certificatePem);
  assert.equal((await loadIdentity(link)).certificatePem, id.certificatePem);
});
