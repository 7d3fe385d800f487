import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { certificatePublicKey, formatName, importPrivateKey, keyInfo, keysMatch, parseCertificate, pemDecodeAll, sha256Hex, spkiDer } from "@tessera/pki";
import { CARAMEL_CLIENT_VERSION } from "../protocols/caramel/client.js";
import { CaramelFixtureServer } from "../protocols/caramel/fixture-server.js";
import { EXIT, main } from "./main.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "agent-caramel-"));
let seq = 0;
const freshDir = () => path.join(tmp, `dir-${++seq}`);

let fixture: CaramelFixtureServer;
let caFile: string;
before(async () => {
  fixture = await CaramelFixtureServer.start();
  caFile = path.join(tmp, "caramel-ca.pem");
  fs.writeFileSync(caFile, fixture.ca.pem);
});
after(async () => {
  await fixture.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => fixture.reset());

interface Run {
  code: number;
  out: string[];
  err: string[];
  json: Record<string, unknown>;
  sleeps: number[];
}

/** Runs main in-process; waits are recorded, not slept. `env` replaces process.env. */
async function cli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const sleeps: number[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), sleep: async (ms) => void sleeps.push(ms) }, env);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(out.at(-1) ?? "") as Record<string, unknown>;
  } catch {
    // text output
  }
  return { code, out, err, json, sleeps };
}

const show = (r: Run) => [...r.out, ...r.err].join("\n");
const mode = (file: string) => fs.statSync(file).mode & 0o777;
const UA = (id: string) => `tessera-agent-caramel/${CARAMEL_CLIENT_VERSION} (${id})`;

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

// ---------------------------------------------------------------- administered host

test("administered: key, request, pending twice, then the certificate in DIR/<id>.crt; the next run finds it unchanged", async () => {
  const dir = freshDir();
  fixture.policy = { pendingPolls: 2, outcome: "sign" };
  // The variables the systemd unit sets: TESSERA_CA, TESSERA_CN, TESSERA_CERT_DIR.
  const env = { TESSERA_CA: caFile, TESSERA_CN: "host-1.example", TESSERA_CERT_DIR: dir };
  const r = await cli(["caramel", "--server", fixture.host], env);
  assert.equal(r.code, EXIT.ok, show(r));
  assert.deepEqual(fixture.log(), ["GET 404", "POST 202", "GET 202", "GET 202", "GET 200"]);
  assert.equal(r.sleeps.length, 2);
  assert.ok(r.sleeps[0]! >= 2958 && r.sleeps[0]! <= 4002, `the Rust client's backoff (attempt 2): ${r.sleeps[0]}`);
  assert.ok(r.sleeps[1]! >= 5916 && r.sleeps[1]! <= 8004, `attempt 3: ${r.sleeps[1]}`);
  assert.equal(r.out[0], `Certificate for host-1.example written to ${path.join(dir, "host-1.example.crt")}`);
  assert.match(r.err[0]!, /is pending: waiting for an operator to sign it$/);

  const key = importPrivateKey(fs.readFileSync(path.join(dir, "host-1.example.key"), "utf8"));
  assert.equal(keyInfo(key).family, "rsa");
  assert.equal(keyInfo(key).bits, 2048);
  assert.equal(mode(path.join(dir, "host-1.example.key")), 0o600);
  const csrPem = fs.readFileSync(path.join(dir, "host-1.example.csr"), "utf8");
  assert.equal(fixture.seen[1]!.body, csrPem);
  assert.equal(fixture.seen[1]!.sha256, sha256Hex(Buffer.from(csrPem)));
  const crtFile = path.join(dir, "host-1.example.crt");
  const cert = parseCertificate(fs.readFileSync(crtFile, "utf8"));
  assert.ok(keysMatch(key, certificatePublicKey(cert)));
  assert.equal(formatName(cert.subject), "CN=host-1.example,OU=Caramel,O=Tessera Fixture AB,L=Linköping,ST=Östergötland,C=SE");
  assert.equal(mode(crtFile), 0o644);
  assert.ok(fixture.seen.every((s) => s.headers["user-agent"] === UA("host-1.example")));
  assert.ok(fixture.seen.every((s) => s.peerCertificate === undefined), "no certificate yet, none presented");
  const lastModified = fixture.csrs.get(fixture.seen[1]!.sha256!)!.certificates[0]!.lastModified;
  assert.equal(fs.statSync(crtFile).mtime.getTime(), lastModified.getTime(), "mtime = Last-Modified");
  assert.deepEqual(fs.readdirSync(dir).sort(), ["host-1.example.crt", "host-1.example.csr", "host-1.example.key"]);

  // Next run (the timer): If-Modified-Since from the mtime, 304, the file untouched; the certificate is presented.
  fixture.seen.length = 0;
  const before = fs.statSync(crtFile);
  const again = await cli(["caramel", "--server", fixture.host, "--json"], env);
  assert.equal(again.code, EXIT.ok, show(again));
  assert.equal(again.json.status, "unchanged");
  assert.equal(again.json.serial, cert.serialHex);
  assert.deepEqual(fixture.log(), ["GET 304"]);
  assert.equal(fixture.seen[0]!.headers["if-modified-since"], lastModified.toUTCString());
  assert.equal(fixture.seen[0]!.peerAuthorized, true);
  assert.equal(fs.statSync(crtFile).mtimeMs, before.mtimeMs);

  // An operator refreshes the certificate: the next run writes the new one.
  await fixture.sign(fixture.seen[0]!.sha256!);
  const renewed = await cli(["caramel", "--server", fixture.host, "--json"], env);
  assert.equal(renewed.code, EXIT.ok, show(renewed));
  assert.equal(renewed.json.status, "signed");
  assert.notEqual(parseCertificate(fs.readFileSync(crtFile, "utf8")).serialHex, cert.serialHex);
});

test("administered: still pending at --timeout → exit 1 naming the request; rejected → exit 1 naming the CSR and key to delete", async () => {
  const dir = freshDir();
  fixture.policy = { pendingPolls: 0, outcome: "pending" };
  const args = ["caramel", "--server", fixture.host, "--id", "host-2", "--dir", dir, "--ca", caFile, "--key-type", "ec-p256"];
  const r = await cli([...args, "--timeout", "5s"]);
  assert.equal(r.code, EXIT.failure, show(r));
  const csrFile = path.join(dir, "host-2.csr");
  assert.equal(r.err.length, 2, show(r));
  assert.match(r.err[1]!, new RegExp(`^tessera-agent: no certificate within 5s: the request in ${csrFile.replace(/[.\\]/g, "\\$&")} is still pending \\(HTTP 202\\), time spent .*; an operator must sign it$`));
  assert.ok(r.sleeps.reduce((a, b) => a + b, 0) <= 5000, `waits ${r.sleeps}`);
  assert.ok(!fs.existsSync(path.join(dir, "host-2.crt")));

  const sha = sha256Hex(fs.readFileSync(csrFile));
  fixture.reject(sha);
  const rejected = await cli(args);
  assert.equal(rejected.code, EXIT.failure);
  assert.deepEqual(rejected.err, [
    `tessera-agent: the server rejected the request in ${csrFile} (HTTP 403): delete ${csrFile} and ${path.join(dir, "host-2.key")} to request a new certificate`,
  ]);
  assert.ok(fs.existsSync(csrFile) && fs.existsSync(path.join(dir, "host-2.key")), "this mode deletes nothing");
  const json = await cli([...args, "--json"]);
  assert.deepEqual((json.json.error as Record<string, unknown>).kind, "rejected");
  assert.equal((json.json.error as Record<string, unknown>).code, "failure");
});

test("administered: a refused POST shows the server's reason; TLS and network failures are one line, exit 1", async () => {
  const dir = freshDir();
  fixture.override = (req) => (req.method === "POST"
    ? { status: 400, headers: { "Content-Type": "application/problem+json" }, body: `{"status":400,"title":"Bad Request","detail":"Bad subject: (('O', 'Other AB'),) do not match (('O', 'Muppar AB'),)"}` }
    : undefined);
  const r = await cli(["caramel", "--server", fixture.host, "--id", "host-3", "--dir", dir, "--ca", caFile, "--key-type", "ec-p256"]);
  assert.equal(r.code, EXIT.failure);
  assert.deepEqual(r.err, [`tessera-agent: the server refused the request in ${path.join(dir, "host-3.csr")} (HTTP 400): Bad subject: (('O', 'Other AB'),) do not match (('O', 'Muppar AB'),)`]);

  const port = await closedPort();
  const down = await cli(["caramel", "--server", `127.0.0.1:${port}`, "--id", "host-3", "--dir", dir, "--ca", caFile]);
  assert.equal(down.code, EXIT.failure);
  assert.equal(down.err.length, 1);
  assert.match(down.err[0]!, /^tessera-agent: request to https:\/\/127\.0\.0\.1:\d+\/[0-9a-f]{64} failed: .*ECONNREFUSED/);

  // No CA file: downloaded over the public roots only, which the fixture's TLS certificate does not chain to. Nothing written.
  const dir2 = freshDir();
  const tlsFail = await cli(["caramel", "--server", fixture.host, "--id", "host-4", "--dir", dir2, "--key-type", "ec-p256", "--json"]);
  assert.equal(tlsFail.code, EXIT.failure);
  assert.equal((tlsFail.json.error as Record<string, unknown>).kind, "tls");
  assert.ok(!fs.existsSync(path.join(dir2, "certs")), "no CA file written");
  assert.deepEqual(fixture.seen.filter((s) => s.path === "/root.crt"), [], "the handshake failed before any request");

  const usage = await cli(["caramel", "--server", fixture.host, "--dir", dir]);
  assert.equal(usage.code, EXIT.usage);
  assert.match(usage.err[0]!, /no client id: give --id CLIENT_ID or set TESSERA_CN/);
  assert.equal((await cli(["caramel", "--server", "http://x", "--id", "a"])).code, EXIT.usage);
  assert.equal((await cli(["caramel", "--server", "x", "--id", "../etc"])).code, EXIT.usage);
  assert.equal((await cli(["caramel", "--server", "x", "--id", "a", "--pem", "f"])).code, EXIT.usage, "--pem needs --embedded");
});

// ---------------------------------------------------------------- embedded

test("embedded: pending → 69, then signed → 0 with key+certificate in one file (mode, owner), then 304 → 0 with the file untouched", async () => {
  const dir = freshDir();
  const pem = path.join(dir, "identity.pem");
  const owner = `${process.getuid!()}:${process.getgid!()}`;
  const args = ["caramel", "--embedded", "--server", fixture.host, "--id", "dev-1", "--ca", caFile, "--pem", pem, "--mode", "0640", "--owner", owner, "--key-type", "ec-p256"];

  fixture.policy = { pendingPolls: 0, outcome: "pending" };
  const first = await cli([...args, "--json"]);
  assert.equal(first.code, EXIT.embeddedPending, show(first));
  assert.equal(first.code, 69);
  assert.equal(first.json.status, "pending");
  assert.equal(first.json.posted, true);
  assert.deepEqual(fixture.log(), ["GET 404", "POST 202", "GET 202"]);
  assert.deepEqual(first.sleeps, [], "never waits");
  assert.ok(fixture.seen.every((s) => s.headers["user-agent"] === UA("dev-1")), "the client id is in the User-Agent");
  assert.ok(fixture.seen.every((s) => s.peerCertificate === undefined));
  const blocks = () => pemDecodeAll(fs.readFileSync(pem, "latin1")).map((b) => b.label);
  assert.deepEqual(blocks(), ["PRIVATE KEY"], "the key only, until signed");
  assert.equal(mode(pem), 0o640);
  const csrFile = path.join(dir, "identity.csr");
  assert.equal(first.json.csr, csrFile);
  assert.equal(first.json.sha256, sha256Hex(fs.readFileSync(csrFile)));
  assert.deepEqual(fs.readdirSync(dir).sort(), ["identity.csr", "identity.pem"], "the lock is gone");

  // Still pending: one GET, exit 69 again.
  fixture.seen.length = 0;
  assert.equal((await cli(args)).code, 69);
  assert.deepEqual(fixture.log(), ["GET 202"]);

  // Signed.
  await fixture.sign(String(first.json.sha256));
  fixture.seen.length = 0;
  const signed = await cli([...args, "--json"]);
  assert.equal(signed.code, EXIT.ok, show(signed));
  assert.equal(signed.json.status, "signed");
  assert.deepEqual(fixture.log(), ["GET 200"]);
  assert.deepEqual(blocks(), ["PRIVATE KEY", "CERTIFICATE"]);
  const text = fs.readFileSync(pem, "latin1");
  const key = importPrivateKey(text);
  const cert = parseCertificate(text);
  assert.ok(keysMatch(key, certificatePublicKey(cert)));
  assert.equal(mode(pem), 0o640, "--mode");
  assert.equal(fs.statSync(pem).uid, process.getuid!(), "--owner");
  assert.equal(fs.statSync(pem).gid, process.getgid!());

  // Unchanged: If-Modified-Since → 304, no body, the file's bytes and mtime as they were; the certificate presented.
  fixture.seen.length = 0;
  const stat = fs.statSync(pem);
  const unchanged = await cli([...args, "--json"]);
  assert.equal(unchanged.code, EXIT.ok, show(unchanged));
  assert.equal(unchanged.json.status, "unchanged");
  assert.deepEqual(fixture.log(), ["GET 304"]);
  assert.equal(fixture.seen[0]!.answeredBytes, 0, "no body transferred");
  assert.equal(fixture.seen[0]!.headers["if-modified-since"], stat.mtime.toUTCString());
  assert.equal(fixture.seen[0]!.peerAuthorized, true, "the current certificate is the TLS client certificate");
  assert.ok(fixture.seen[0]!.peerCertificate!.der.equals(cert.der));
  assert.equal(fs.readFileSync(pem, "latin1"), text);
  assert.equal(fs.statSync(pem).mtimeMs, stat.mtimeMs);
  assert.equal(fs.statSync(pem).ino, stat.ino, "not even replaced");

  // Text mode, Caramel 1.9.6 (no 304): the same certificate again is unchanged too.
  fixture.conditional = false;
  const plain = await cli(args);
  assert.equal(plain.code, 0);
  assert.equal(plain.out[0], `Certificate for dev-1 unchanged in ${pem}`);
  assert.equal(fs.statSync(pem).ino, stat.ino);
});

test("embedded: a rejected request wipes key and request and posts a new one at once (different hash)", async () => {
  const dir = freshDir();
  const args = ["caramel", "--embedded", "--server", fixture.host, "--id", "dev-2", "--ca", caFile, "--dir", dir, "--key-type", "ec-p256"];
  const pem = path.join(dir, "dev-2.pem");
  const first = await cli([...args, "--json"]);
  assert.equal(first.code, 0, show(first));
  const oldKey = importPrivateKey(fs.readFileSync(pem, "latin1"));
  const oldSha = String(first.json.sha256);
  fixture.reject(oldSha);
  fixture.policy = { pendingPolls: 0, outcome: "pending" };
  fixture.seen.length = 0;
  const r = await cli([...args, "--json"]);
  assert.equal(r.code, 69, show(r));
  assert.equal(r.json.rekeyed, true);
  assert.deepEqual(fixture.log(), ["GET 403", "POST 202", "GET 202"]);
  assert.equal(fixture.seen[0]!.peerAuthorized, true, "the second run presented the certificate the first one got");
  assert.equal(fixture.seen[0]!.peerCertificate!.serialHex, first.json.serial);
  const newSha = fixture.seen[1]!.sha256!;
  assert.notEqual(newSha, oldSha);
  assert.equal(r.json.sha256, newSha);
  assert.equal(sha256Hex(fs.readFileSync(path.join(dir, "dev-2.csr"))), newSha);
  const newKey = importPrivateKey(fs.readFileSync(pem, "latin1"));
  assert.ok(!spkiDer(newKey).equals(spkiDer(oldKey)), "a new key");
  assert.deepEqual(pemDecodeAll(fs.readFileSync(pem, "latin1")).map((b) => b.label), ["PRIVATE KEY"], "the old certificate is gone with its key");
  assert.equal(fixture.seen[1]!.peerCertificate, undefined, "the rejected identity is not presented");
  assert.equal(mode(pem), 0o600, "default mode");
});

test("embedded: two runs at once: one works, the other exits 1 (locked)", async () => {
  const dir = freshDir();
  const args = ["caramel", "--embedded", "--server", fixture.host, "--id", "dev-3", "--ca", caFile, "--dir", dir, "--json"];
  const [a, b] = await Promise.all([cli(args), cli(args)]);
  const codes = [a.code, b.code].sort();
  assert.deepEqual(codes, [0, 1], show(a) + "\n" + show(b));
  const locked = a.code === 1 ? a : b;
  assert.equal(locked.json.status, "locked");
  assert.equal(locked.json.lock, path.join(dir, "dev-3.pem.lock"));
  assert.deepEqual(fixture.log(), ["GET 404", "POST 202", "GET 200"], "only the lock holder talked to the server");
  assert.ok(!fs.existsSync(path.join(dir, "dev-3.pem.lock")));
});

test("embedded: exit codes are only 0, 1, 69, 127: usage, a missing CA, a dead server, a refusal all exit 127", async () => {
  const dir = freshDir();
  const base = ["caramel", "--embedded", "--server", fixture.host, "--id", "dev-4", "--dir", dir];
  const noCa = await cli(base);
  assert.equal(noCa.code, 127);
  assert.match(noCa.err[0]!, /--embedded needs the CA certificate file/);
  assert.equal((await cli([...base, "--ca", path.join(dir, "missing.pem")])).code, 127);
  assert.equal((await cli([...base, "--ca", caFile, "--bogus"])).code, 127, "a parse error before the command runs");
  assert.equal((await cli([...base, "--ca", caFile, "--mode", "999"])).code, 127);
  assert.equal((await cli([...base, "--ca", caFile, "--owner", "root"])).code, 127);
  const port = await closedPort();
  const down = await cli(["caramel", "--embedded", "--server", `127.0.0.1:${port}`, "--id", "dev-4", "--dir", dir, "--ca", caFile, "--json"]);
  assert.equal(down.code, 127);
  assert.equal((down.json.error as Record<string, unknown>).kind, "network");
  assert.equal((down.json.error as Record<string, unknown>).code, "error");
  fixture.override = (req) => (req.method === "POST" ? { status: 400, headers: { "Content-Type": "application/problem+json" }, body: '{"status":400,"title":"Bad Request","detail":"nope"}' } : undefined);
  const refused = await cli([...base, "--ca", caFile]);
  assert.equal(refused.code, 127);
  assert.match(refused.err[0]!, /HTTP 400\): nope$/);
  assert.ok(!fs.existsSync(path.join(dir, "dev-4.pem.lock")), "the lock is released after a failure");
  const help = await cli(["caramel", "--embedded", "--help"]);
  assert.equal(help.code, 0);
});
