/**
 * The calls of the original liteboot README (spec §9), made with curl and
 * openssl against Tessera (host, port and file names adapted), with the
 * answers the spec shows; and p10cr's multipart checks in their order
 * (spec §3.2, checklist 15).
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { parseCertificate } from "@tessera/pki";
import type { RunningServer } from "../../server.js";
import { tempDir } from "../../test-support.js";
import { litebootServer } from "./test-kit.js";

let server: RunningServer;
let dir: string;
let base: string;

before(async () => {
  let boot: { certPem: string; keyPem: string };
  let ca: string;
  ({ server, base, ca, boot } = await litebootServer());
  dir = tempDir("tessera-lb-readme-");
  fs.mkdirSync(path.join(dir, "certs"));
  fs.writeFileSync(path.join(dir, "certs", "CA.crt"), ca);
  fs.writeFileSync(path.join(dir, "certs", "BOOTSTRAP.crt"), boot.certPem);
  fs.writeFileSync(path.join(dir, "certs", "BOOTSTRAP.key"), boot.keyPem);
});
after(() => server.close(100));

const run = promisify(execFile);
const sh = (script: string) => execFileSync("sh", ["-c", script], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] }).toString();
/** curl with the README's TLS options; asynchronous, as the server runs in this process. */
async function curl(...args: string[]): Promise<{ code: string; body: string; headers: string }> {
  const { stdout } = await run("curl", ["-sS", "--cacert", "certs/CA.crt", "--cert", "certs/BOOTSTRAP.crt", "--key", "certs/BOOTSTRAP.key", "-D", "headers.txt", "-o", "body.out", "-w", "%{http_code}", ...args], { cwd: dir, encoding: "utf8" });
  return { code: stdout, body: fs.readFileSync(path.join(dir, "body.out"), "latin1"), headers: fs.readFileSync(path.join(dir, "headers.txt"), "latin1") };
}

test("README flow: p10cr with curl -F, then ds, cs, cc and ccs, plain and CBOR", async () => {
  const uuid = sh("cat /proc/sys/kernel/random/uuid").trim();
  sh(`openssl ecparam -name prime256v1 -genkey -out USER.key && openssl req -new -key USER.key -subj "/O=Test Vendor/CN=${uuid}/OU=Signing" -out USER.csr`);
  const p10 = await curl("-F", "csrfile=@USER.csr", `${base}/api/v1/p10cr`);
  assert.equal(p10.code, "200", p10.body);
  assert.match(p10.headers, /\r\nContent-Type: application\/x-pem-file\r\n/);
  assert.match(p10.headers, /\r\nContent-Disposition: attachment; filename=USERx\.der\r\n/);
  assert.match(p10.body, /^-----BEGIN CERTIFICATE-----\n(.{64}\n)*.{1,64}\n-----END CERTIFICATE-----\n$/);
  fs.writeFileSync(path.join(dir, "USER.crt"), p10.body);
  assert.equal(sh("openssl verify -CAfile certs/CA.crt USER.crt").trim(), "USER.crt: OK");
  const serial = BigInt("0x" + parseCertificate(p10.body).serialHex);

  assert.equal((await curl(`${base}/api/v1/ds/${uuid}`)).body, `{"Status":1,"Serials":[${serial}]}\n`);
  const dsCbor = await curl("-H", "Content-Type: application/cbor", `${base}/api/v1/ds/${uuid}`);
  assert.equal(Buffer.from(dsCbor.body, "latin1").toString("hex"), `a2010102811b${serial.toString(16).padStart(16, "0")}`);
  assert.equal((await curl(`${base}/api/v1/cs/${serial}`)).body, '{"Status":1}\n');
  assert.equal(Buffer.from((await curl("-H", "Content-Type: application/cbor", `${base}/api/v1/cs/${serial}`)).body, "latin1").toString("hex"), "a10101");
  const cc = JSON.parse((await curl(`${base}/api/v1/cc/${serial}`)).body) as { Status: number; Cert: string };
  assert.equal(cc.Status, 0);
  assert.equal(cc.Cert, p10.body);
  assert.equal((await curl(`${base}/api/v1/ccs`)).body, '{"Hubname":"azure-hub-name","Port":8883}\n');
  const ccsCbor = await curl("-H", "Content-Type: application/cbor", "-H", "Accept: application/cbor", `${base}/api/v1/ccs`);
  assert.equal(Buffer.from(ccsCbor.body, "latin1").toString("hex"), "a2016e617a7572652d6875622d6e616d65021922b3");
});

test("p10cr refusals in the original's order, each 400 application/json", async () => {
  sh(`openssl ecparam -name prime256v1 -genkey -out bad.key && openssl req -new -key bad.key -subj "/O=Test Vendor/CN=$(cat /proc/sys/kernel/random/uuid)/OU=Signing" -out ok.csr && openssl req -in ok.csr -outform DER -out ok.der`);
  fs.writeFileSync(path.join(dir, "big.csr"), "x".repeat(5000));
  fs.writeFileSync(path.join(dir, "two.csr"), fs.readFileSync(path.join(dir, "ok.csr"), "utf8") + fs.readFileSync(path.join(dir, "ok.csr"), "utf8"));
  fs.writeFileSync(path.join(dir, "cert.pem"), fs.readFileSync(path.join(dir, "certs", "CA.crt"), "utf8").split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
  fs.writeFileSync(path.join(dir, "rsa.csr"), sh("openssl req -new -newkey rsa:2048 -nodes -keyout /dev/null -subj /CN=x 2>/dev/null"));
  const cases: Array<[string[], string]> = [
    [["-H", "Content-Type: application/json", "--data-binary", "{}"], '{"error": "Bad request (no multipart form)"}'],
    [["-F", "other=@ok.csr"], '{"error": "Missing csrfile file"}'],
    [["-F", "csrfile=@big.csr"], '{"error": "File too large"}'],
    [["-F", "csrfile=@ok.der"], `{"error": "Invalid file type (require 'text/plain; charset=utf-8')"}`],
    [["-F", "csrfile=@two.csr"], '{"error": "Invalid PEM input. Expecting one block"}'],
    [["-F", "csrfile=@cert.pem"], '{"error": "Expecting BEGIN CERTIFICATE REQUEST"}'],
    [["-F", "csrfile=@rsa.csr"], '{"error": "Invalid CSR"}'],
  ];
  for (const [args, body] of cases) {
    const r = await curl(...args, `${base}/api/v1/p10cr`);
    assert.deepEqual([r.code, r.body], ["400", body], args.join(" "));
    assert.match(r.headers, /\r\nContent-Type: application\/json\r\n/);
  }
});
