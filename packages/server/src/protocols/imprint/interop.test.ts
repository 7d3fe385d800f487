/**
 * The whole imprint life cycle driven only by curl and openssl, so the wire
 * format is checked by clients that are not ours: enroll → tier-1 renew over
 * mTLS → expiry → tier-2 challenge with a proof from `openssl dgst -sha256
 * -sign` → key lost → tier-3 re-enroll.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { parseCertificate } from "@tessera/pki";
import type { RunningServer } from "../../server.js";
import { tempDir, type TestClock } from "../../test-support.js";
import { DAYS, imprintServer } from "./test-kit.js";

let server: RunningServer;
let clock: TestClock;
let secret: string;
let dir: string;
let base: string;

before(async () => {
  ({ server, clock, secret } = await imprintServer());
  dir = tempDir("tessera-imprint-interop-");
  base = server.url.replace("://localhost", "://127.0.0.1");
  fs.writeFileSync(path.join(dir, "server-ca.pem"), server.authority.chainPem());
});
after(() => server.close(100));

const file = (name: string) => path.join(dir, name);
const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });

/** New P-256 key and a CSR with CN only, by openssl; returns the CSR PEM text. */
function keyAndCsr(keyName: string, cn: string): string {
  openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", file(keyName));
  openssl("req", "-new", "-key", file(keyName), "-subj", `/CN=${cn}`, "-out", file(`${keyName}.csr`));
  return fs.readFileSync(file(`${keyName}.csr`), "utf8");
}

const run = promisify(execFile);

/**
 * POSTs a JSON file with curl; returns status and body. `tls` adds the client
 * certificate and trusts only the stored CA. Asynchronous: the server runs in
 * this process, so a synchronous child would block it.
 */
async function curl(route: string, body: unknown, tls?: { cert: string; key: string; ca: string }): Promise<{ status: number; body: string }> {
  fs.writeFileSync(file("body.json"), JSON.stringify(body));
  const args = ["-sS", "-o", file("out.txt"), "-w", "%{http_code}", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", `@${file("body.json")}`];
  if (tls) args.push("--cacert", tls.ca, "--cert", tls.cert, "--key", tls.key);
  else args.push("--cacert", file("server-ca.pem"));
  const status = Number((await run("curl", [...args, base + route], { encoding: "utf8" })).stdout);
  return { status, body: fs.readFileSync(file("out.txt"), "utf8") };
}

/** Stores a response the way the Go client lays out its directory. */
function store(body: string): { serverId: string } {
  const j = JSON.parse(body) as { server_id: string; certificate: string; ca_certificate: string };
  fs.writeFileSync(file("client.crt"), j.certificate);
  fs.writeFileSync(file("ca.crt"), j.ca_certificate);
  return { serverId: j.server_id };
}

test("enroll, renew, challenge-renew and re-enroll with curl and openssl only", async () => {
  const fingerprint = "sha256:1c461733ddbbb9a7993e0dc089cad08682c51e64e87a50b07163f85bdd93440a";
  // Tier 0: enrollment with the build secret.
  const csr1 = keyAndCsr("k1.pem", "curl-device");
  const enrolled = await curl("/api/v1/enroll", { build_secret: secret, fingerprint, hostname: "curl-device", os: "linux", arch: "amd64", csr: csr1 });
  assert.equal(enrolled.status, 200, enrolled.body);
  const { serverId } = store(enrolled.body);
  const serial1 = parseCertificate(fs.readFileSync(file("client.crt"), "utf8")).serialHex;
  // openssl agrees the certificate chains to the ca_certificate we stored.
  assert.match(execFileSync("openssl", ["verify", "-CAfile", file("ca.crt"), "-purpose", "sslclient", file("client.crt")], { encoding: "utf8" }), /OK/);

  // Tier 1: mTLS renewal; the server's TLS certificate must verify against ca.crt alone.
  const csr2 = keyAndCsr("k2.pem", serverId);
  const renewed = await curl("/api/v1/renew", { csr: csr2 }, { cert: file("client.crt"), key: file("k1.pem"), ca: file("ca.crt") });
  assert.equal(renewed.status, 200, renewed.body);
  assert.equal(store(renewed.body).serverId, serverId);
  const serial2 = parseCertificate(fs.readFileSync(file("client.crt"), "utf8")).serialHex;
  assert.notEqual(serial2, serial1);

  // Tier 2: the certificate has expired; prove possession of k2 over M with openssl.
  clock.advance(366 * DAYS);
  const csr3 = keyAndCsr("k3.pem", serverId);
  fs.writeFileSync(file("m.txt"), `${serverId}\n${fingerprint}\n${csr3}`);
  openssl("dgst", "-sha256", "-sign", file("k2.pem"), "-out", file("proof.bin"), file("m.txt"));
  const proof = openssl("base64", "-A", "-in", file("proof.bin")).toString("utf8").trim();
  const challenged = await curl("/api/v1/renew/challenge", {
    server_id: serverId, fingerprint, expired_cert: fs.readFileSync(file("client.crt"), "utf8"), csr: csr3, proof,
  });
  assert.equal(challenged.status, 200, challenged.body);
  assert.equal(store(challenged.body).serverId, serverId);
  // The same request again is a replay.
  const replay = await curl("/api/v1/renew/challenge", JSON.parse(fs.readFileSync(file("body.json"), "utf8")));
  assert.deepEqual([replay.status, replay.body], [401, "challenge renewal failed\n"]);

  // Tier 3: the key is lost; enroll again with the build secret: same server id, new lineage.
  fs.rmSync(file("k3.pem"));
  const csr4 = keyAndCsr("k4.pem", "curl-device");
  const reenrolled = await curl("/api/v1/enroll", { build_secret: secret, fingerprint, hostname: "curl-device", os: "linux", arch: "amd64", csr: csr4 });
  assert.equal(reenrolled.status, 200, reenrolled.body);
  assert.equal(store(reenrolled.body).serverId, serverId);
  const device = await server.authority.devices.get(serverId);
  assert.equal(device?.currentSerial, parseCertificate(fs.readFileSync(file("client.crt"), "utf8")).serialHex);
  const statuses = (await server.authority.listCertificates({ deviceId: serverId })).map((c) => c.status);
  assert.deepEqual(statuses, ["superseded", "superseded", "revoked", "valid"]);
});

test("the TLS certificate request names only our issuing CA (Go clients then send their certificate)", async () => {
  const port = new URL(base).port;
  // stdin closed at once: s_client prints the handshake and exits.
  const stdout = await new Promise<string>((resolve) => {
    const child = execFile("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", "localhost", "-tls1_2"], { encoding: "utf8", timeout: 10_000 }, (_err, out) => resolve(out));
    child.stdin?.end();
  });
  const names = /Acceptable client certificate CA names\n([\s\S]*?)\n(?:Requested|Client Certificate Types|Shared)/.exec(stdout)?.[1]?.trim().split("\n");
  assert.deepEqual(names, ["O = Tessera, CN = Tessera Issuing CA"]);
});
