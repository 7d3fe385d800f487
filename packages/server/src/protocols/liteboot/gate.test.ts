/**
 * Who may use the liteboot listener (spec §1, checklist 2): bootstrap
 * certificates only (device certificates for kur/krr alone). Everything else
 * is refused at the handshake or dropped without an answer, and bootstrap
 * certificates count their uses, expire and can be revoked. Then a fleet
 * moves: an imported liteboot install's old bootstrap certificate enrolls a
 * new device, the imported devices answer ds/cs/cc as before, and the
 * original SERVER certificate is served.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tls from "node:tls";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { generateKeyPair, parseCertificate, pemEncode, sha256Hex } from "@tessera/pki";
import { issueTestLeaf, makeTestCa } from "../../../../pki/src/test-helpers.js";
import { makeLitebootDir } from "../../ca/liteboot-fixture.js";
import type { RunningServer } from "../../server.js";
import { startTestServer, tempDir, type RawResponse } from "../../test-support.js";
import { crCbor, issueBootstrap, lb, litebootServer, newDevice, type PemIdentity } from "./test-kit.js";

const run = promisify(execFile);

/** A request that must not get an HTTP answer: the handshake fails or the connection is dropped. */
async function refused(pending: Promise<RawResponse>, what: string): Promise<void> {
  await assert.rejects(pending, (err: Error) => /handshake|certificate|alert|socket|ECONNRESET|EPIPE|no header end|closed/i.test(err.message), what);
}

describe("the gate", () => {
  let server: RunningServer;
  let base: string;
  let ca: string;
  let boot: PemIdentity;
  let dataDir: string;
  before(async () => {
    ({ server, base, ca, boot, dataDir } = await litebootServer());
  });
  after(() => server.close(100));

  const cr = (as: PemIdentity | undefined, dev = newDevice()) => lb(base, ca, "/api/v1/cr", { as, contentType: "application/cbor", body: crCbor(dev.csr) });

  test("no client certificate, a foreign one, and a device certificate (outside kur/krr) are refused without an answer", async () => {
    await refused(cr(undefined), "no certificate");
    const foreign = await makeTestCa();
    const key = generateKeyPair("ec-p256").privateKey;
    const leaf = await issueTestLeaf(foreign, "bootstrap-register-1", key);
    await refused(cr({ certPem: pemEncode("CERTIFICATE", leaf.der), keyPem: key.export({ type: "pkcs8", format: "pem" }) as string }), "foreign CA");
    const dev = newDevice();
    const issued = await cr(boot, dev);
    assert.equal(issued.status, 200);
    const device = { certPem: pemEncode("CERTIFICATE", issued.body.subarray(7)), keyPem: dev.key.export({ type: "pkcs8", format: "pem" }) as string };
    await refused(cr(device), "device certificate on cr");
    await refused(lb(base, ca, "/", { as: device }), "device certificate on /");
    // Tessera's own TLS server certificate is from the same CA, but no bootstrap certificate either.
    const serverDir = path.join(dataDir, "server");
    await refused(cr({ certPem: fs.readFileSync(path.join(serverDir, "tls.pem"), "utf8"), keyPem: fs.readFileSync(path.join(serverDir, "tls.key.pem"), "utf8") }), "server certificate");
  });

  test("uses are counted; an exhausted, revoked or expired bootstrap certificate is refused", async () => {
    const once = await issueBootstrap(dataDir, "once", ["--max-uses", "1"]);
    assert.equal((await cr(once)).status, 200);
    await refused(cr(once), "exhausted");
    const used = await server.authority.bootstrapCredential(sha256Hex(parseCertificate(once.certPem).der));
    assert.deepEqual([used?.useCount, used?.maxUses], [1, 1]);

    const { main } = await import("../../cli/main.js");
    const line = await issueBootstrap(dataDir, "to-revoke");
    assert.equal((await cr(line)).status, 200);
    assert.equal(await main(["bootstrap", "revoke", "to-revoke"], { out: () => undefined, err: () => undefined }, { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "silent", TESSERA_LITEBOOT_LISTEN: "off" }), 0);
    await refused(cr(line), "revoked");

    const short = await issueBootstrap(dataDir, "short", ["--expires", "1s"]);
    await new Promise((r) => setTimeout(r, 1500));
    await refused(cr(short), "expired");
  });

  test("the TLS CertificateRequest accepts TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 as the firmware uses it", async () => {
    const u = new URL(base);
    const cipher = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: u.hostname, port: Number(u.port), ca, cert: boot.certPem, key: boot.keyPem, maxVersion: "TLSv1.2", ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256" }, () => {
        resolve(s.getCipher().name);
        s.destroy();
      });
      s.on("error", reject);
    });
    assert.equal(cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
  });
});

describe("moving a liteboot fleet", () => {
  let server: RunningServer;
  let fixture: Awaited<ReturnType<typeof makeLitebootDir>>;
  let base: string;
  before(async () => {
    fixture = await makeLitebootDir(tempDir("tessera-liteboot-src-"));
    const dataDir = path.join(tempDir("tessera-liteboot-dst-"), "data");
    const { main } = await import("../../cli/main.js");
    const out: string[] = [];
    const code = await main(["import", "liteboot", fixture.dir], { out: (t) => out.push(t), err: (t) => out.push(t) }, { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "silent", TESSERA_LITEBOOT_LISTEN: "off" });
    assert.equal(code, 0, out.join("\n"));
    ({ server } = await startTestServer({ TESSERA_DATA_DIR: dataDir, TESSERA_LITEBOOT_LISTEN: "127.0.0.1:0" }));
    const l = server.listeners.find((x) => x.config.name === "liteboot")!;
    base = `https://127.0.0.1:${(l.server.address() as AddressInfo).port}`;
  });
  after(() => server?.close(100));

  const old = () => ({ certPem: fixture.bootstrapCertPem, keyPem: fixture.bootstrapKeyPem });
  // SERVER.crt names localhost only (setup-ca.sh): dial 127.0.0.1, check the name.
  const call = (route: string, opts: Parameters<typeof lb>[3] = {}) => lb(base, fixture.caCertPem, route, { as: old(), hostname: "localhost", ...opts });

  test("the listener serves the original SERVER certificate, and the old v1 bootstrap certificate enrolls a new device", async () => {
    const u = new URL(base);
    const served = await new Promise<Buffer>((resolve, reject) => {
      const s = tls.connect({ host: u.hostname, port: Number(u.port), ca: fixture.caCertPem, cert: fixture.bootstrapCertPem, key: fixture.bootstrapKeyPem, servername: "localhost", checkServerIdentity: (_h, c) => tls.checkServerIdentity("localhost", c) }, () => {
        resolve(s.getPeerCertificate().raw);
        s.destroy();
      });
      s.on("error", reject);
    });
    assert.ok(served.equals(parseCertificate(fixture.serverCertPem).der), "devices pin SERVER.crt: it must be served unchanged");
    const dev = newDevice();
    const r = await call("/api/v1/cr", { contentType: "application/cbor", body: crCbor(dev.csr) });
    assert.equal(r.status, 200, r.body.toString());
    const cert = parseCertificate(r.body.subarray(7));
    assert.ok(cert.issuer.equals(parseCertificate(fixture.caCertPem).subject), "issued by the imported liteboot CA");
  });

  test("new-device.sh's steps: openssl key and CSR, CBOR, wget pinning SERVER.crt with the old bootstrap certificate, openssl verify", async () => {
    const work = tempDir("tessera-new-device-");
    const certs = path.join(work, "certs");
    fs.mkdirSync(certs);
    for (const [name, pem] of [["SERVER.crt", fixture.serverCertPem], ["BOOTSTRAP.crt", fixture.bootstrapCertPem], ["BOOTSTRAP.key", fixture.bootstrapKeyPem], ["CA.crt", fixture.caCertPem]] as const) {
      fs.writeFileSync(path.join(certs, name), pem);
    }
    const devid = randomUUID();
    const sh = (cmd: string, args: string[]) => run(cmd, args, { cwd: work, encoding: "buffer" });
    await sh("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-out", `certs/${devid}.key`]);
    await sh("openssl", ["req", "-new", "-key", `certs/${devid}.key`, "-out", `certs/${devid}.csr`, "-subj", `/O=Test Vendor/CN=${devid}/OU=Signing`, "-outform", "DER"]);
    // make_csr_cbor.go: an array holding the DER CSR as one byte string.
    fs.writeFileSync(path.join(certs, `${devid}.cbor`), crCbor(fs.readFileSync(path.join(certs, `${devid}.csr`))));
    await sh("wget", ["-q", "--ca-certificate=certs/SERVER.crt", "--certificate=certs/BOOTSTRAP.crt", "--private-key=certs/BOOTSTRAP.key", `--post-file=certs/${devid}.cbor`,
      "--header", "Content-Type: application/cbor", `https://localhost:${new URL(base).port}/api/v1/cr`, "-O", `certs/${devid}.rsp`]);
    // get_cert_cbor.go: a map {1: status, 2: bstr certificate}; status must be 0.
    const rsp = fs.readFileSync(path.join(certs, `${devid}.rsp`));
    assert.ok(rsp.subarray(0, 5).equals(Buffer.from("a201000259", "hex")));
    fs.writeFileSync(path.join(certs, `${devid}.crt`), pemEncode("CERTIFICATE", rsp.subarray(7, 7 + rsp.readUInt16BE(5))));
    const verified = await sh("openssl", ["verify", "-CAfile", "certs/CA.crt", `certs/${devid}.crt`]);
    assert.equal(verified.stdout.toString().trim(), `certs/${devid}.crt: OK`);
    const subject = await sh("openssl", ["x509", "-in", `certs/${devid}.crt`, "-noout", "-subject", "-nameopt", "RFC2253"]);
    assert.equal(subject.stdout.toString().trim(), `subject=CN=${devid},OU=Signing,O=Test Vendor`);
  });

  test("imported devices answer ds, cs and cc as before, with their exact serials", async () => {
    const ds = await call(`/api/v1/ds/${fixture.uuid}`);
    assert.equal(ds.body.toString(), `{"Status":1,"Serials":[${fixture.serials.join(",")}]}\n`);
    for (const s of fixture.serials) {
      assert.equal((await call(`/api/v1/cs/${s}`)).body.toString(), '{"Status":1}\n');
      const cc = JSON.parse((await call(`/api/v1/cc/${s}`)).body.toString()) as { Cert: string };
      assert.equal(BigInt("0x" + parseCertificate(cc.Cert).serialHex), s);
    }
  });
});
