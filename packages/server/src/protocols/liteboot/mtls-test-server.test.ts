/**
 * liteboot's mTLS TCP test endpoint (spec §5, §9, §12 item 19): the README's
 * `openssl s_client` call with a device certificate from the liteboot API,
 * a self-signed USERBAD.crt, and Tessera's refusals of bootstrap and revoked
 * certificates, checked in the lines the endpoint logs.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tls from "node:tls";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { buildCsr, generateKeyPair, parseCertificate, parseCsr, pemEncode, serialToBigInt } from "@tessera/pki";
import type { RunningServer } from "../../server.js";
import { startServer } from "../../server.js";
import { tempDir, testConfig } from "../../test-support.js";
import { goNameString, litebootMtlsAcceptance, startMtlsTestServer, type MtlsTestServer } from "./mtls-test-server.js";
import { crCbor, lb, litebootServer, newDevice, type PemIdentity } from "./test-kit.js";

let server: RunningServer;
let base: string;
let ca: string;
let boot: PemIdentity & { dir?: string };
let endpoint: MtlsTestServer;
let work: string;
const lines: string[] = [];

before(async () => {
  let dataDir: string;
  ({ server, base, ca, boot, dataDir } = await litebootServer());
  const log = pino({ level: "info" }, new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString("utf8").split("\n")) if (l) lines.push((JSON.parse(l) as { msg: string }).msg);
      done();
    },
  }));
  endpoint = await startMtlsTestServer({
    host: "127.0.0.1", port: 0, ca, log, isAcceptable: litebootMtlsAcceptance(server.authority),
    cert: fs.readFileSync(path.join(dataDir, "server", "tls.pem"), "utf8"), key: fs.readFileSync(path.join(dataDir, "server", "tls.key.pem"), "utf8"),
  });
  work = tempDir("tessera-lb-mtls-");
  fs.writeFileSync(path.join(work, "ca.pem"), ca);
});
after(async () => {
  await endpoint?.close();
  await server?.close(100);
});

/** A device enrolled over cr (CBOR) with the bootstrap certificate, its files in `work`. */
async function enroll(): Promise<{ uuid: string; der: Buffer; id: PemIdentity; crt: string; key: string }> {
  const dev = newDevice();
  const r = await lb(base, ca, "/api/v1/cr", { as: boot, contentType: "application/cbor", body: crCbor(dev.csr) });
  assert.equal(r.status, 200, r.body.toString());
  const der = Buffer.from(r.body.subarray(7, 7 + r.body.readUInt16BE(5)));
  const id = { certPem: pemEncode("CERTIFICATE", der), keyPem: dev.key.export({ type: "sec1", format: "pem" }) as string };
  const crt = path.join(work, `${dev.uuid}.crt`);
  const key = path.join(work, `${dev.uuid}.key`);
  fs.writeFileSync(crt, id.certPem);
  fs.writeFileSync(key, id.keyPem, { mode: 0o600 });
  return { uuid: dev.uuid, der, id, crt, key };
}

/** Runs `openssl s_client` (stdin closed, so it disconnects after the handshake) and waits for the endpoint's verdict. */
async function sClient(args: string[]): Promise<{ out: string; log: string[] }> {
  lines.length = 0;
  const out = await new Promise<string>((resolve) => {
    const child = execFile("openssl", ["s_client", ...args, "-CAfile", path.join(work, "ca.pem"), "-connect", `127.0.0.1:${endpoint.address.port}`], { timeout: 10_000 }, (_err, stdout, stderr) => resolve(stdout + stderr));
    child.stdin!.end();
  });
  return { out, log: await verdict() };
}

/** The lines logged for one connection, once its last line is in. */
async function verdict(): Promise<string[]> {
  const done = () => lines.some((l) => /^(Client handshake error|Client certificate refused|  - Serial: )/.test(l));
  for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 50)); // nothing more follows
  return [...lines];
}

const ACCEPTED = /^Connection accepted from 127\.0\.0\.1:\d+$/;

describe("openssl s_client against the test endpoint", () => {
  test("a device certificate from the liteboot API: Verify return code 0, the §5 lines, then close with no data", async () => {
    const dev = await enroll();
    for (const version of ["-tls1_2", "-tls1_3"]) {
      const { out, log } = await sClient([version, "-cert", dev.crt, "-key", dev.key]);
      assert.match(out, /Verify return code: 0 \(ok\)/);
      assert.equal(log.length, 4, log.join("\n"));
      assert.match(log[0]!, ACCEPTED);
      assert.deepEqual(log.slice(1), ["[Certificate 0]", `  - Subject: CN=${dev.uuid},OU=Signing,O=Test Vendor`, `  - Serial:  ${serialToBigInt(parseCertificate(dev.der).serial)}`]);
    }
    // No application data: the endpoint closes the connection after the handshake.
    const received = await new Promise<number>((resolve, reject) => {
      let n = 0;
      const s = tls.connect({ host: "127.0.0.1", port: endpoint.address.port, ca, cert: dev.id.certPem, key: dev.id.keyPem, servername: "localhost" });
      s.on("data", (d: Buffer) => (n += d.length));
      s.on("end", () => resolve(n));
      s.on("error", reject);
    });
    assert.equal(received, 0);
  });

  test("a self-signed USERBAD.crt, or no certificate: the handshake-error line and nothing else", async () => {
    const bad = { crt: path.join(work, "USERBAD.crt"), key: path.join(work, "USERBAD.key") };
    await promisify(execFile)("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", bad.key, "-out", bad.crt, "-subj", "/O=Test Vendor/CN=userbad/OU=Signing", "-days", "30"]);
    const { log } = await sClient(["-cert", bad.crt, "-key", bad.key]);
    assert.equal(log.length, 2, log.join("\n"));
    assert.match(log[0]!, ACCEPTED);
    assert.equal(log[1], "Client handshake error: self-signed certificate");
    const none = await sClient([]);
    assert.match(none.log[0]!, ACCEPTED);
    assert.equal(none.log[1], "Client handshake error: peer did not return a certificate");
  });

  test("a bootstrap certificate is refused (it is for enrollment only)", async () => {
    assert.ok(boot.dir);
    const { log } = await sClient(["-cert", path.join(boot.dir, "BOOTSTRAP.crt"), "-key", path.join(boot.dir, "BOOTSTRAP.key")]);
    assert.equal(log.length, 2, log.join("\n"));
    assert.match(log[0]!, ACCEPTED);
    assert.match(log[1]!, /^Client certificate refused: CN=bootstrap-line-1,OU=LinaroCA Bootstrap Cert,O=[^(]+ \(serial \d+\): a bootstrap certificate is for enrollment only$/);
  });

  test("a device certificate revoked through krr is refused", async () => {
    const dev = await enroll();
    assert.equal((await sClient(["-cert", dev.crt, "-key", dev.key])).log[1], "[Certificate 0]");
    const krr = await lb(base, ca, "/api/v1/krr", { as: dev.id, contentType: "application/json", body: JSON.stringify({ Reason: "keyCompromise" }) });
    assert.equal(krr.status, 200, krr.body.toString());
    const { log } = await sClient(["-cert", dev.crt, "-key", dev.key]);
    assert.equal(log.length, 2, log.join("\n"));
    assert.match(log[1]!, new RegExp(`^Client certificate refused: CN=${dev.uuid},OU=Signing,O=Test Vendor \\(serial \\d+\\): certificate revoked$`));
  });
});

test("goNameString prints a subject as Go's pkix.Name.String() does", () => {
  const name = (attrs: Array<[string, string]>) => parseCsr(newDevice({ subject: attrs.map(([type, value]) => ({ type, value })) }).csr).subject;
  assert.equal(goNameString(name([["O", "Linaro, LTD"], ["CN", "bootstrap-register-1"], ["OU", "LinaroCA Bootstrap Cert"]])), "CN=bootstrap-register-1,OU=LinaroCA Bootstrap Cert,O=Linaro\\, LTD");
  // Several values of a field in one RDN; attributes Go has no field for last, as OID=#<DER of a Go string> (UTF8String here).
  assert.equal(goNameString(name([["CN", "a"], ["OU", "x"], ["OU", "y"], ["C", "GB"], ["E", "d@e.f"]])), `CN=a,OU=x+OU=y,C=GB,1.2.840.113549.1.9.1=#0c05${Buffer.from("d@e.f").toString("hex")}`);
  // CN: the last one wins; a leading '#' and a trailing space are escaped.
  assert.equal(goNameString(name([["CN", "first"], ["CN", "#last "]])), "CN=\\#last\\ ");
});

test("startServer runs the endpoint when [liteboot] mtls_listen is set, prints its banner line and stops it on close", async () => {
  const config = await testConfig({ TESSERA_DATA_DIR: tempDir(), TESSERA_LISTEN: "127.0.0.1:0", TESSERA_HOSTNAME: "localhost", TESSERA_LOG_LEVEL: "silent", TESSERA_LITEBOOT_LISTEN: "off", TESSERA_LITEBOOT_MTLS_LISTEN: "127.0.0.1:0" });
  const banner: string[] = [];
  const s = await startServer(config, { logger: pino({ level: "silent" }), banner: (l) => banner.push(l) });
  let port: number;
  try {
    const line = banner.find((l) => l.startsWith("  liteboot mTLS test endpoint: "));
    assert.ok(line, banner.join("\n"));
    port = Number(/^ {2}liteboot mTLS test endpoint: localhost:(\d+)$/.exec(line)![1]);
    // A client certificate from our CA passes; the endpoint closes without data.
    const { privateKey } = generateKeyPair("ec-p256");
    const subject = [{ type: "CN", value: "mtls-check" }];
    const issued = await s.authority.issue({ csr: buildCsr({ subject, privateKey }), credential: { kind: "operator", actor: "test" }, protocol: "cli", subject });
    const end = await new Promise<string>((resolve) => {
      const c = tls.connect({ host: "127.0.0.1", port, servername: "localhost", ca: s.authority.chainPem(), cert: issued.pem, key: privateKey.export({ type: "pkcs8", format: "pem" }) as string });
      c.on("secureConnect", () => c.on("end", () => resolve("closed by the endpoint")));
      c.on("error", (err) => resolve(`error: ${err.message}`));
    });
    assert.equal(end, "closed by the endpoint");
  } finally {
    await s.close(100);
  }
  await assert.rejects(new Promise((resolve, reject) => {
    const c = tls.connect({ host: "127.0.0.1", port: port!, rejectUnauthorized: false }, () => resolve(c.end()));
    c.on("error", reject);
  }), /ECONNREFUSED/);
});
