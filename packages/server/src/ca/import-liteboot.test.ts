import "reflect-metadata";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, test } from "node:test";
import Database from "better-sqlite3";
import { certificatePublicKey, importPrivateKey, keysMatch, parseCertificate, pemDecodeAll, serialToHex } from "@tessera/pki";
import pino from "pino";
import { openStore } from "../store/index.js";
import { openAuthority } from "../server.js";
import { main } from "../cli/main.js";
import { startTestServer, tempDir, testConfig } from "../test-support.js";
import { caPaths } from "./ca-files.js";
import { litebootPaths, loadLitebootServerCertificate, locateLitebootFiles } from "./import-liteboot.js";
import { makeLitebootDir, type LitebootFixture } from "./liteboot-fixture.js";

async function run(dataDir: string, args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (t) => out.push(t), err: (t) => err.push(t) }, { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "silent" });
  return { code, out, err };
}

const der = (pem: string) => pemDecodeAll(pem)[0]!.der;

let lb: LitebootFixture;
before(async () => {
  lb = await makeLitebootDir(path.join(tempDir("liteboot-"), "lite_bootstrap_server"));
});

/** A copy of the fixture directory whose CADB.db `edit` may change. */
function copyWith(edit: (db: Database.Database) => void): string {
  const dir = path.join(tempDir("liteboot-copy-"), "lb");
  fs.cpSync(lb.dir, dir, { recursive: true });
  const db = new Database(path.join(dir, "CADB.db"));
  try {
    edit(db);
  } finally {
    db.close();
  }
  return dir;
}

test("fixture: CADB.db keeps liteboot's types (INTEGER serials above 2^53, text expiry)", () => {
  const db = new Database(path.join(lb.dir, "CADB.db"), { readonly: true });
  try {
    db.defaultSafeIntegers(true);
    const rows = db.prepare("SELECT typeof(serial) AS t, serial, typeof(expiry) AS e, expiry FROM certs ORDER BY serial").all() as { t: string; serial: bigint; e: string; expiry: string }[];
    assert.deepEqual(rows.map((r) => [r.t, r.serial, r.e]), lb.serials.map((s) => ["integer", s, "text"]));
    assert.match(rows[0]!.expiry, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00:00$/);
    assert.ok(lb.serials[0]! > BigInt(Number.MAX_SAFE_INTEGER));
  } finally {
    db.close();
  }
  assert.match(fs.readFileSync(path.join(lb.dir, "certs", "CA.key"), "utf8"), /^-----BEGIN EC PARAMETERS-----[\s\S]*-----BEGIN EC PRIVATE KEY-----/);
  assert.equal(parseCertificate(lb.bootstrapCertPem).version, 1);
});

test("import liteboot: CA, server certificate, devices and certificates with their exact serials", async () => {
  const dataDir = path.join(tempDir(), "data");
  const r = await run(dataDir, ["import", "liteboot", lb.dir, "--json"]);
  assert.equal(r.code, 0, r.err.join("\n") + r.out.join("\n"));
  const doc = JSON.parse(r.out[0]!) as { ca: { subject: string; sha256: string }; devices: number; certificates: number; revoked: number; generatedPassphraseFile: string | null; paths: Record<string, string> };
  assert.equal(doc.ca.subject, "CN=LRC - 20220520043806,O=Linaro\\, LTD");
  assert.equal(doc.devices, 1);
  assert.equal(doc.certificates, 2);
  assert.equal(doc.revoked, 0);
  assert.equal(doc.generatedPassphraseFile, path.join(dataDir, "ca", "passphrase"));

  // The CA is the liteboot CA, as root and as issuer.
  const ca = caPaths(dataDir);
  assert.deepEqual(der(fs.readFileSync(ca.root, "utf8")), der(lb.caCertPem));
  assert.deepEqual(der(fs.readFileSync(ca.issuer, "utf8")), der(lb.caCertPem));
  assert.match(fs.readFileSync(ca.issuerKey, "utf8"), /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);

  // SERVER.crt served unchanged, then the CA; the key as plain PKCS#8, 0600.
  const p = litebootPaths(dataDir);
  const serverPem = fs.readFileSync(p.serverCert, "utf8");
  assert.ok(serverPem.startsWith(lb.serverCertPem), "server.pem starts with SERVER.crt");
  assert.deepEqual(pemDecodeAll(serverPem).map((b) => b.der), [der(lb.serverCertPem), der(lb.caCertPem)]);
  assert.equal(fs.statSync(p.serverKey).mode & 0o777, 0o600);
  const loaded = loadLitebootServerCertificate(dataDir);
  assert.ok(loaded);
  assert.match(loaded.keyPem, /^-----BEGIN PRIVATE KEY-----/);
  assert.ok(keysMatch(importPrivateKey(loaded.keyPem), certificatePublicKey(parseCertificate(lb.serverCertPem))));
  assert.equal(loadLitebootServerCertificate(tempDir()), undefined);

  const store = await openStore(`sqlite:${path.join(dataDir, "tessera.db")}`);
  try {
    const deviceCerts = pemDecodeAll(fs.readdirSync(path.join(lb.dir, "certs")).filter((f) => f.startsWith(lb.uuid) && f.endsWith(".crt")).sort()
      .map((f) => fs.readFileSync(path.join(lb.dir, "certs", f), "utf8")).join(""));
    for (const [i, serial] of lb.serials.entries()) {
      const rec = await store.getCertificate(serialToHex(serial));
      assert.ok(rec, `certificate ${serial}`);
      assert.equal(rec.serial, serial.toString(16));
      assert.equal(BigInt("0x" + rec.serial), serial);
      assert.deepEqual(rec.der, deviceCerts[i]!.der);
      assert.equal(rec.deviceId, lb.uuid);
      assert.equal(rec.status, "valid");
      assert.equal(rec.profile, "liteboot");
      assert.equal(rec.protocol, "liteboot");
      assert.equal(rec.keyType, "ec-p256");
      assert.equal(rec.subject, `CN=${lb.uuid},OU=${["Device Client TLS", "Device COSE SIGN/Encrypt"][i]},O=Linaro`);
      assert.deepEqual(rec.sans, []);
      assert.equal(rec.issuedAt.getTime(), rec.notBefore.getTime());
    }
    const device = await store.getDevice(lb.uuid);
    assert.ok(device);
    assert.equal(device.status, "active");
    assert.equal(device.protocol, "liteboot");
    assert.equal(device.currentSerial, serialToHex(lb.serials[1]!), "the newest certificate is current");
    assert.deepEqual(device.attributes, { ou: "Device COSE SIGN/Encrypt" });
    assert.equal((await store.listCertificates({ deviceId: lb.uuid })).length, 2);
    assert.equal((await store.listAudit({ action: "certificate.imported" })).length, 2);
  } finally {
    await store.close();
  }

  // A second import into the same data dir is refused: the CA exists.
  const again = await run(dataDir, ["import", "liteboot", lb.dir]);
  assert.equal(again.code, 5);
  assert.match(again.err.join("\n"), /already has a CA.*fresh data directory.*\[TESSERA_ERR_CA_EXISTS\]/);

  // The imported data dir opens and serves with the generated passphrase.
  const config = await testConfig({ TESSERA_DATA_DIR: dataDir });
  const opened = await openAuthority(config, pino({ level: "silent" }), {});
  try {
    assert.equal(opened.createdCa, false);
    assert.deepEqual(opened.authority.ca.issuer.certificate.der, der(lb.caCertPem));
  } finally {
    await opened.store.close();
  }
  const { server } = await startTestServer({ TESSERA_DATA_DIR: dataDir });
  try {
    assert.deepEqual(server.authority.ca.root.der, der(lb.caCertPem));
    assert.equal((await server.authority.getCertificate(serialToHex(lb.serials[0]!)))?.deviceId, lb.uuid);
  } finally {
    await server.close(100);
  }
});

test("import liteboot: human summary; DIR may be the certs/ directory", async () => {
  assert.equal(locateLitebootFiles(path.join(lb.dir, "certs")).dir, lb.dir);
  const dataDir = path.join(tempDir(), "data");
  const r = await run(dataDir, ["import", "liteboot", path.join(lb.dir, "certs")]);
  assert.equal(r.code, 0, r.err.join("\n"));
  const text = r.out.join("\n");
  assert.match(text, /CA: {11}CN=LRC - 20220520043806,O=Linaro\\, LTD {2}SHA-256 [0-9a-f]{64}/);
  assert.match(text, /devices: {6}1\n {2}certificates: 2\n/);
  assert.ok(text.includes(litebootPaths(dataDir).serverCert));
});

test("import liteboot: a row with valid = 0 is stored revoked", async () => {
  const dir = copyWith((db) => db.prepare("UPDATE certs SET valid = 0 WHERE serial = ?").run(lb.serials[0]!));
  const dataDir = path.join(tempDir(), "data");
  const r = await run(dataDir, ["import", "liteboot", dir, "--json"]);
  assert.equal(r.code, 0, r.out.join("\n"));
  assert.equal((JSON.parse(r.out[0]!) as { revoked: number }).revoked, 1);
  const store = await openStore(`sqlite:${path.join(dataDir, "tessera.db")}`);
  try {
    const rec = await store.getCertificate(serialToHex(lb.serials[0]!));
    assert.equal(rec?.status, "revoked");
    assert.equal(rec?.revocationReason, "unspecified");
    assert.ok(rec?.revokedAt);
    assert.equal((await store.getCertificate(serialToHex(lb.serials[1]!)))?.status, "valid");
  } finally {
    await store.close();
  }
});

test("import liteboot: refuses another schema version or a missing file, writing nothing", async () => {
  const wrong = copyWith((db) => db.prepare("UPDATE settings SET value = '20200820b' WHERE key = 'schemaVersion'").run());
  let dataDir = path.join(tempDir(), "data");
  let r = await run(dataDir, ["import", "liteboot", wrong]);
  assert.equal(r.code, 5);
  assert.match(r.err.join("\n"), /schema version is '20200820b'; only liteboot's '20220215a'.*\[TESSERA_ERR_CA_IMPORT\]/);
  assert.equal(fs.existsSync(caPaths(dataDir).dir), false);

  const missing = copyWith(() => undefined);
  fs.rmSync(path.join(missing, "certs", "SERVER.key"));
  dataDir = path.join(tempDir(), "data");
  r = await run(dataDir, ["import", "liteboot", missing, "--json"]);
  assert.equal(r.code, 5);
  const e = JSON.parse(r.out[0]!) as { error: { code: string; message: string; detail: string } };
  assert.equal(e.error.code, "TESSERA_ERR_CA_IMPORT");
  assert.match(e.error.message, /liteboot files missing/);
  assert.equal(e.error.detail, path.join(missing, "certs", "SERVER.key"));
  assert.equal(fs.existsSync(caPaths(dataDir).dir), false);

  assert.equal((await run(dataDir, ["import", "liteboot"])).code, 2);
});

test("import liteboot: refuses a data dir that already has a CA", async () => {
  const dataDir = path.join(tempDir(), "data");
  assert.equal((await run(dataDir, ["ca", "init"])).code, 0);
  const r = await run(dataDir, ["import", "liteboot", lb.dir]);
  assert.equal(r.code, 5);
  assert.match(r.err.join("\n"), /fresh data directory/);
  assert.equal(fs.existsSync(litebootPaths(dataDir).dir), false);
});
