/**
 * RFC 7030's flow driven only by curl and openssl, as docs/protocols/est.md
 * walks through it (est.md §7): cacerts → 401 challenge → simpleenroll with
 * Basic → openssl verify → simplereenroll over mTLS; a changed subject is
 * 400 and no client certificate 403.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import type { RunningServer } from "../../server.js";
import { tempDir } from "../../test-support.js";
import { estServer } from "./test-kit.js";

let server: RunningServer;
let dir: string;
let E: string;

before(async () => {
  let base: string;
  ({ server, base } = await estServer());
  dir = tempDir("tessera-est-interop-");
  E = `${base}/.well-known/est`;
  fs.writeFileSync(path.join(dir, "ca.pem"), server.authority.chainPem());
});
after(() => server.close(100));

const run = promisify(execFile);
const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] }).toString();
/** curl, asynchronously: the server runs in this process. */
const curl = async (...args: string[]) => (await run("curl", ["-sS", "--cacert", "ca.pem", ...args], { cwd: dir, encoding: "utf8" })).stdout;
const sh = (script: string) => execFileSync("sh", ["-c", script], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] }).toString();

test("curl + openssl: cacerts, 401, simpleenroll with Basic, verify, simplereenroll, refusals", async () => {
  const head = await curl("-D", "-", "-o", "cacerts.b64", `${E}/cacerts`);
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(head, /\r\nContent-Type: application\/pkcs7-mime; smime-type=certs-only\r\n/);
  assert.match(head, /\r\nContent-Transfer-Encoding: base64\r\n/);
  assert.match(head, /\r\nContent-Length: \d+\r\n/);
  openssl("base64", "-d", "-in", "cacerts.b64", "-out", "cacerts.p7b");
  const subjects = openssl("pkcs7", "-inform", "DER", "-in", "cacerts.p7b", "-print_certs", "-noout");
  assert.match(subjects, /subject=O = Tessera, CN = Tessera Root CA\nissuer=O = Tessera, CN = Tessera Root CA/);
  assert.match(subjects, /subject=O = Tessera, CN = Tessera Issuing CA/);
  const asn1 = openssl("asn1parse", "-inform", "DER", "-in", "cacerts.p7b", "-i").split("\n").slice(0, 9).join("\n");
  for (const want of [":pkcs7-signedData", "cont [ 0 ]", "INTEGER           :01", "SET", "l=  11 cons:    SEQUENCE", ":pkcs7-data"]) assert.ok(asn1.includes(want), `${want} in\n${asn1}`);

  sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev.key -subj /CN=device-001 -outform DER | openssl base64 > dev.csr.b64");
  const challenge = await curl("-D", "-", "-o", "/dev/null", "-H", "Content-Type: application/pkcs10", "--data-binary", "@dev.csr.b64", `${E}/simpleenroll`);
  assert.match(challenge, /^HTTP\/1\.1 401 Unauthorized\r\n/);
  assert.match(challenge, /\r\nWWW-Authenticate: Basic realm="tessera"\r\n/);
  assert.match(challenge, /\r\nContent-Length: 0\r\n/);

  const out = await curl("-u", "alice:s3cret-pass", "-H", "Content-Type: application/pkcs10", "--data-binary", "@dev.csr.b64", "-o", "dev.p7.b64", "-w", "%{http_code} %{content_type}", `${E}/simpleenroll`);
  assert.equal(out, "200 application/pkcs7-mime; smime-type=certs-only");
  sh("openssl base64 -d -in dev.p7.b64 | openssl pkcs7 -inform DER -print_certs -out dev.pem");
  assert.match(fs.readFileSync(path.join(dir, "dev.pem"), "utf8"), /^subject=CN = device-001\nissuer=O = Tessera, CN = Tessera Issuing CA\n/);
  assert.equal(openssl("verify", "-CAfile", "ca.pem", "dev.pem").trim(), "dev.pem: OK");

  sh("openssl req -new -key dev.key -subj /CN=device-001 -outform DER | openssl base64 > re.csr.b64");
  const re = await curl("--cert", "dev.pem", "--key", "dev.key", "-H", "Content-Type: application/pkcs10", "--data-binary", "@re.csr.b64", "-o", "re.p7.b64", "-w", "%{http_code}", `${E}/simplereenroll`);
  assert.equal(re, "200");
  sh("openssl base64 -d -in re.p7.b64 | openssl pkcs7 -inform DER -print_certs -out re.pem");
  assert.equal(openssl("verify", "-CAfile", "ca.pem", "re.pem").trim(), "re.pem: OK");
  const serial = (f: string) => openssl("x509", "-in", f, "-noout", "-serial");
  assert.notEqual(serial("re.pem"), serial("dev.pem"));

  sh("openssl req -new -key dev.key -subj /CN=other -outform DER | openssl base64 > other.csr.b64");
  const other = await curl("--cert", "re.pem", "--key", "dev.key", "-H", "Content-Type: application/pkcs10", "--data-binary", "@other.csr.b64", "-o", "err.txt", "-w", "%{http_code} %{content_type}", `${E}/simplereenroll`);
  assert.equal(other, "400 text/plain; charset=utf-8");
  assert.match(fs.readFileSync(path.join(dir, "err.txt"), "utf8"), /subject differs/);
  const none = await curl("-H", "Content-Type: application/pkcs10", "--data-binary", "@re.csr.b64", "-o", "/dev/null", "-w", "%{http_code}", `${E}/simplereenroll`);
  assert.equal(none, "403");
});
