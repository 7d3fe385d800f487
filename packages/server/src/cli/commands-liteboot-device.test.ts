/**
 * `tessera device new` (liteboot's new-device.sh, spec §9, §12 item 18)
 * against a running liteboot listener: files written, key and certificate
 * matching, the device listed by ds/<uuid>; the default server from the
 * configuration; refusals.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate, createPrivateKey } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { decodeName, parseCertificate, serialToBigInt } from "@tessera/pki";
import type { RunningServer } from "../server.js";
import { tempDir } from "../test-support.js";
import { lb, litebootServer, type PemIdentity } from "../protocols/liteboot/test-kit.js";
import { main } from "./main.js";

let server: RunningServer;
let base: string;
let ca: string;
let boot: PemIdentity & { dir: string };

before(async () => {
  const s = await litebootServer();
  ({ server, base, ca } = s);
  boot = s.boot as PemIdentity & { dir: string };
});
after(() => server.close(100));

async function run(args: string[], env: NodeJS.ProcessEnv = { TESSERA_LOG_LEVEL: "silent" }): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (t) => out.push(t), err: (t) => err.push(t) }, env);
  return { code, out, err };
}

test("device new enrolls like new-device.sh: certs/<uuid>.key (0600) and .crt, key and certificate match, ds/<uuid> lists the serial", async () => {
  const out = tempDir("tessera-device-new-");
  const r = await run(["device", "new", "--bootstrap", boot.dir, "--server", base, "--out", out, "--json"]);
  assert.equal(r.code, 0, [...r.out, ...r.err].join("\n"));
  const view = JSON.parse(r.out[0]!) as { uuid: string; serial: string; files: { key: string; cert: string } };
  assert.match(view.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const files = { key: path.join(out, "certs", `${view.uuid}.key`), cert: path.join(out, "certs", `${view.uuid}.crt`) };
  assert.deepEqual(view.files, files);
  assert.deepEqual(fs.readdirSync(path.join(out, "certs")).sort(), [`${view.uuid}.crt`, `${view.uuid}.key`]);
  assert.equal(fs.statSync(files.key).mode & 0o777, 0o600);

  const certPem = fs.readFileSync(files.cert, "utf8");
  const keyPem = fs.readFileSync(files.key, "utf8");
  assert.match(keyPem, /^-----BEGIN EC PRIVATE KEY-----/);
  assert.ok(new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem)), "the key matches the certificate");
  const cert = parseCertificate(certPem);
  assert.deepEqual(decodeName(cert.subject), [{ type: "O", value: "Test Vendor" }, { type: "OU", value: "Signing" }, { type: "CN", value: view.uuid }]);
  assert.equal(view.serial, serialToBigInt(cert.serial).toString());
  // openssl verify -CAfile CA.crt, as new-device.sh does.
  assert.equal(execFileSync("openssl", ["verify", "-CAfile", path.join(boot.dir, "CA.crt"), files.cert]).toString().trim(), `${files.cert}: OK`);

  const ds = await lb(base, ca, `/api/v1/ds/${view.uuid}`, { as: boot });
  assert.equal(ds.body.toString("utf8"), `{"Status":1,"Serials":[${view.serial}]}\n`);
  // The device certificate works as a TLS client identity (kur/krr are its routes): krr answers it.
  const krr = await lb(base, ca, "/api/v1/krr", { as: { certPem, keyPem }, contentType: "application/json", body: "{}" });
  assert.equal(krr.status, 200, krr.body.toString());
});

test("without --server: the configured liteboot listener, on localhost; --ou and --organization set the subject", async () => {
  const port = (server.listeners.find((l) => l.config.name === "liteboot")!.server.address() as AddressInfo).port;
  const out = tempDir("tessera-device-new-");
  const toml = path.join(out, "tessera.toml");
  fs.writeFileSync(toml, `[liteboot]\nlisten = "0.0.0.0:${port}"\n`);
  const r = await run(["device", "new", "--bootstrap", boot.dir, "--out", out, "--ou", "Camera", "--organization", "Acme, Inc."], { TESSERA_LOG_LEVEL: "silent", TESSERA_CONFIG: toml });
  assert.equal(r.code, 0, [...r.out, ...r.err].join("\n"));
  assert.match(r.out[0]!, new RegExp(`^device [0-9a-f-]{36} enrolled at https://localhost:${port} \\(serial \\d+, CN=[0-9a-f-]{36},OU=Camera,O=Acme\\\\, Inc\\., valid until `));
  const uuid = /^device ([0-9a-f-]{36})/.exec(r.out[0]!)![1]!;
  const cert = parseCertificate(fs.readFileSync(path.join(out, "certs", `${uuid}.crt`)));
  assert.deepEqual(decodeName(cert.subject), [{ type: "O", value: "Acme, Inc." }, { type: "OU", value: "Camera" }, { type: "CN", value: uuid }]);
});

test("refusals: missing bootstrap files, a non-https server, a certificate the liteboot listener does not admit", async () => {
  const empty = tempDir("tessera-device-new-");
  const missing = await run(["device", "new", "--bootstrap", empty, "--server", base, "--out", empty]);
  assert.equal(missing.code, 2);
  assert.match(missing.err.join("\n"), /BOOTSTRAP\.crt not found/);

  const plain = await run(["device", "new", "--bootstrap", boot.dir, "--server", base.replace("https:", "http:"), "--out", empty]);
  assert.equal(plain.code, 2);
  assert.match(plain.err.join("\n"), /--server must be an https:\/\/ URL/);

  // A device certificate is no bootstrap certificate: the listener drops the connection without an HTTP answer.
  const first = JSON.parse((await run(["device", "new", "--bootstrap", boot.dir, "--server", base, "--out", empty, "--json"])).out[0]!) as { files: { key: string; cert: string } };
  const fake = tempDir("tessera-device-new-");
  fs.copyFileSync(first.files.cert, path.join(fake, "BOOTSTRAP.crt"));
  fs.copyFileSync(first.files.key, path.join(fake, "BOOTSTRAP.key"));
  fs.copyFileSync(path.join(boot.dir, "CA.crt"), path.join(fake, "CA.crt"));
  const refused = await run(["device", "new", "--bootstrap", fake, "--server", base, "--out", fake]);
  assert.equal(refused.code, 1, refused.err.join("\n"));
  assert.match(refused.err.join("\n"), /cannot enroll over the liteboot API/);
  assert.ok(!fs.existsSync(path.join(fake, "certs")), "nothing written");
});
