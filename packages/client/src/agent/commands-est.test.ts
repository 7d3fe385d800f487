import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  certificatePublicKey, colonHex, encodeGeneralNames, encodeOid, ExtOid, formatName, generateKeyPair, keyInfo, keysMatch, pemDecodeAll,
  pemEncode, sha256Hex, spkiDer, tlv,
} from "@tessera/pki";
import { loadIdentity, saveIdentity } from "../keystore/store-dir.js";
import { EstFixturePki } from "../protocols/est/fixture-pki.js";
import { EstFixtureServer } from "../protocols/est/fixture-server.js";
import { EXIT, main } from "./main.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "agent-est-"));
let seq = 0;
const freshDir = () => path.join(tmp, `store-${++seq}`);

let pki: EstFixturePki;
let fixture: EstFixtureServer;
let rootFile: string;
let rootFp: string;
before(async () => {
  pki = await EstFixturePki.create();
  fixture = await EstFixtureServer.start({ pki });
  rootFile = path.join(tmp, "root.pem");
  fs.writeFileSync(rootFile, pki.root.pem);
  rootFp = sha256Hex(pki.root.certificate.der);
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
}

async function cli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t) }, env);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(out.at(-1) ?? "") as Record<string, unknown>;
  } catch {
    // text output
  }
  return { code, out, err, json };
}

const show = (r: Run) => [...r.out, ...r.err].join("\n");
const bagPem = () => pki.bag(false).map((d) => pemEncode("CERTIFICATE", d)).join("");

test("bootstrap, enroll with a Basic challenge, reenroll with the same key and with a new one", async () => {
  const dir = freshDir();
  const env = { TESSERA_SERVER: fixture.url, TESSERA_AGENT_DIR: dir, TESSERA_EST_PASSWORD: "s3cret" };
  const boot = await cli(["est", "cacerts", "--ca-fingerprint", colonHex(rootFp), "--json"], env);
  assert.equal(boot.code, EXIT.ok, show(boot));
  assert.equal(boot.json.file, path.join(dir, "ca.crt"));
  assert.equal(boot.json.bootstrap, true);
  assert.equal(boot.json.pinned, rootFp);
  assert.deepEqual((boot.json.certificates as { role: string; subject: string }[]).map((c) => [c.role, c.subject]), [
    ["chain", "CN=Tessera Fixture Issuing CA,O=Tessera Fixture"],
    ["trust-anchor", "CN=Tessera Fixture Root CA G1,O=Tessera Fixture"],
  ]);
  assert.equal(fs.readFileSync(path.join(dir, "ca.crt"), "utf8"), bagPem());

  fixture.basic = { username: "device-42", password: "s3cret" };
  const enrolled = await cli(["est", "enroll", "--user", "device-42", "--subject", "/O=Acme/CN=device-42", "--san", "DNS:device-42.local", "--san", "ip:10.1.2.3", "--json"], env);
  assert.equal(enrolled.code, EXIT.ok, show(enrolled));
  assert.equal(enrolled.json.status, "enrolled");
  assert.equal(enrolled.json.replaced, false);
  assert.equal(enrolled.json.subject, "CN=device-42,O=Acme");
  assert.deepEqual(enrolled.json.sans, ["DNS:device-42.local", "IP Address:10.1.2.3"]);
  assert.deepEqual(fixture.ops(), ["cacerts", "cacerts", "simpleenroll", "simpleenroll"], "bootstrap, cacerts, 401, 200");
  assert.deepEqual(fixture.problems, []);
  const id = await loadIdentity(dir);
  assert.equal(id.certificate.serialHex, enrolled.json.serial);
  assert.equal(id.certificate.serialHex, fixture.issued[0]!.serialHex);
  assert.equal(id.caPem, bagPem());
  assert.equal(id.serverId, "");
  assert.equal(keyInfo(id.privateKey).curve, "P-256");

  const status = await cli(["status", "--json"], env);
  assert.equal(status.code, EXIT.ok);
  assert.equal(status.json.serial, id.certificate.serialHex);

  fixture.seen.length = 0;
  const renewed = await cli(["est", "reenroll", "--json"], env);
  assert.equal(renewed.code, EXIT.ok, show(renewed));
  assert.equal(renewed.json.status, "reenrolled");
  assert.equal(renewed.json.rekeyed, false);
  assert.equal(renewed.json.previousSerial, id.certificate.serialHex);
  assert.deepEqual(fixture.seen.map((s) => [s.op, s.peerSubject ?? null]), [["cacerts", "CN=device-42,O=Acme"], ["simplereenroll", "CN=device-42,O=Acme"]]);
  const after1 = await loadIdentity(dir);
  assert.notEqual(after1.certificate.serialHex, id.certificate.serialHex);
  assert.ok(keysMatch(id.privateKey, certificatePublicKey(after1.certificate)), "same key");
  assert.deepEqual(renewed.json.sans, enrolled.json.sans);

  const rekeyed = await cli(["est", "reenroll", "--rekey", "--key-type", "ec-p384"], env);
  assert.equal(rekeyed.code, EXIT.ok, show(rekeyed));
  assert.match(rekeyed.out[0]!, /^Reenrolled over EST in .* with a new key$/);
  const after2 = await loadIdentity(dir);
  assert.equal(keyInfo(after2.privateKey).curve, "P-384");
  assert.ok(after2.certificate.subject.equals(id.certificate.subject));
  assert.deepEqual(fixture.problems, []);
});

test("reenroll copies Subject and subjectAltName byte for byte (a UTF8String CN stays UTF8String)", async () => {
  const dir = freshDir();
  const { privateKey, publicKey } = generateKeyPair("ed25519");
  // CN as UTF8String although PrintableString would do (OpenSSL's default): re-encoding the name would change its bytes.
  const subject = tlv(0x30, tlv(0x31, tlv(0x30, encodeOid("2.5.4.3"), tlv(0x0c, Buffer.from("dev-utf8")))));
  const sans = encodeGeneralNames([{ type: "dns", value: "b.example" }, { type: "dns", value: "a.example" }]);
  const cert = await pki.issueClient(spkiDer(publicKey), subject, sans);
  await saveIdentity(dir, { privateKey, certificatePem: pemEncode("CERTIFICATE", cert.der), caPem: bagPem(), serverId: "", fingerprint: "" });
  const r = await cli(["est", "reenroll", "--server", fixture.url, "--dir", dir, "--label", "tenant-a", "--json"]);
  assert.equal(r.code, EXIT.ok, show(r));
  const renewed = (await loadIdentity(dir)).certificate;
  assert.ok(renewed.subject.equals(subject));
  assert.ok(renewed.extensions.find((e) => e.oid === ExtOid.subjectAltName)!.value.equals(sans));
  assert.equal(fixture.seen.at(-1)!.path, "/.well-known/est/tenant-a/simplereenroll");
  assert.equal(keyInfo((await loadIdentity(dir)).privateKey).family, "ed25519");
});

test("serverkeygen stores the server's key with its certificate; a bootstrap client certificate replaces Basic", async () => {
  const dir = freshDir();
  fixture.basic = { username: "u", password: "p" };
  const boot = await pki.device("factory-cert");
  const certFile = path.join(tmp, "boot.crt");
  const keyFile = path.join(tmp, "boot.key");
  fs.writeFileSync(certFile, boot.certPem);
  fs.writeFileSync(keyFile, boot.keyPem);
  const r = await cli(["est", "serverkeygen", "--server", fixture.url, "--ca", rootFile, "--dir", dir, "--cert", certFile, "--key", keyFile,
    "--subject", "CN=kg-1", "--key-type", "ec-p384", "--json"]);
  assert.equal(r.code, EXIT.ok, show(r));
  assert.equal(r.json.keyGeneratedBy, "server");
  assert.equal(r.json.keyType, "ec-p384");
  assert.deepEqual(fixture.seen.map((s) => [s.op, s.peerSubject]), [["cacerts", "CN=factory-cert"], ["serverkeygen", "CN=factory-cert"]], "no 401: the certificate authenticates");
  const id = await loadIdentity(dir);
  assert.equal(formatName(id.certificate.subject), "CN=kg-1");
  assert.ok(keysMatch(id.privateKey, certificatePublicKey(id.certificate)));
  assert.equal(id.certificate.serialHex, fixture.issued[0]!.serialHex);
  assert.equal(pemDecodeAll(fs.readFileSync(path.join(dir, "client.key"), "utf8"))[0]!.label, "EC PRIVATE KEY");
});

test("pending: --wait 0 gives up at once (exit 5, nothing written); a short wait is honoured", async () => {
  const dir = freshDir();
  fixture.pending = { count: 1, retryAfter: "120" };
  const r = await cli(["est", "enroll", "--server", fixture.url, "--ca", rootFile, "--dir", dir, "--subject", "CN=p-1", "--wait", "0", "--json"]);
  assert.equal(r.code, EXIT.pending, show(r));
  assert.equal(r.json.status, "pending");
  assert.ok(Math.abs(Date.parse(String(r.json.retryAt)) - (Date.now() + 120_000)) < 10_000);
  assert.equal(fs.existsSync(dir), false);

  fixture.pending = { count: 1, retryAfter: "1" };
  const started = Date.now();
  const t = await cli(["est", "enroll", "--server", fixture.url, "--ca", rootFile, "--dir", dir, "--subject", "CN=p-1", "--wait", "30s"]);
  assert.equal(t.code, EXIT.ok, show(t));
  assert.ok(Date.now() - started >= 1000);
  assert.deepEqual(fixture.ops().slice(-3), ["cacerts", "simpleenroll", "simpleenroll"]);
});

test("refusals and failures map to exit codes 4, 3 and 1", async () => {
  fixture.basic = { username: "u", password: "right" };
  const dir = freshDir();
  const wrong = await cli(["est", "enroll", "--server", fixture.url, "--ca", rootFile, "--dir", dir, "--user", "u", "--password", "wrong", "--json"]);
  assert.equal(wrong.code, EXIT.refused, show(wrong));
  assert.deepEqual(wrong.json.error, { code: "refused", message: "simpleenroll: the server refused the credentials (HTTP 401)", kind: "unauthorized", status: 401, body: "" });
  const text = await cli(["est", "enroll", "--server", fixture.url, "--ca", rootFile, "--dir", dir]);
  assert.equal(text.code, EXIT.refused);
  assert.match(text.err[0]!, /^tessera-agent: simpleenroll: the server asks for HTTP Basic credentials and none are configured$/);
  const label = await cli(["est", "cacerts", "--server", fixture.url, "--ca", rootFile, "--dir", dir, "--label", "nope"]);
  assert.equal(label.code, EXIT.refused);

  const notEnrolled = await cli(["est", "reenroll", "--server", fixture.url, "--dir", freshDir(), "--json"]);
  assert.equal(notEnrolled.code, EXIT.notEnrolled, show(notEnrolled));

  const badFp = await cli(["est", "cacerts", "--server", fixture.url, "--dir", dir, "--ca-fingerprint", "00".repeat(32), "--json"]);
  assert.equal(badFp.code, EXIT.failure);
  assert.equal((badFp.json.error as { kind: string }).kind, "untrusted");
  assert.equal(fs.existsSync(path.join(dir, "ca.crt")), false);
});

test("usage errors exit 2 before any request", async () => {
  const dir = freshDir();
  const certOnly = path.join(tmp, "only.crt");
  fs.writeFileSync(certOnly, pki.root.pem);
  const s = ["--server", fixture.url];
  const cases: [string[], RegExp][] = [
    [["est"], /'est' needs a subcommand: cacerts, enroll, reenroll, serverkeygen/],
    [["est", "frobnicate"], /'est' needs a subcommand/],
    [["est", "enroll", ...s, "--dir", dir], /no trust anchors: give --ca FILE, or fetch them first/],
    [["est", "enroll", "--server", "http://127.0.0.1:1", "--ca", rootFile], /https URL/],
    [["est", "enroll", ...s, "--ca", rootFile, "--cert", certOnly], /--cert and --key together/],
    [["est", "enroll", ...s, "--ca", rootFile, "--key-type", "dsa"], /--key-type: 'dsa'/],
    [["est", "enroll", ...s, "--ca", rootFile, "--san", "x400:nope:"], /--san/],
    [["est", "enroll", ...s, "--ca", rootFile, "--subject", "nonsense"], /--subject/],
    [["est", "enroll", ...s, "--ca", rootFile, "--user", "u"], /needs a password/],
    [["est", "enroll", ...s, "--ca", rootFile, "--label", "a/b"], /label/],
    [["est", "enroll", ...s, "--ca", rootFile, "--wait", "5"], /--wait/],
    [["est", "cacerts", ...s, "--ca", rootFile, "--ca-fingerprint", rootFp], /not both/],
    [["est", "cacerts", ...s, "--ca-fingerprint", "abc"], /fingerprint/],
    [["est", "reenroll", ...s, "--key-type", "ec-p384"], /needs --rekey/],
    [["est", "cacerts", ...s, "--ca", rootFile, "--subject", "CN=x"], /--subject does not apply to 'est cacerts'/],
  ];
  for (const [argv, message] of cases) {
    const r = await cli(argv);
    assert.equal(r.code, EXIT.usage, `${argv.join(" ")}: ${show(r)}`);
    assert.match(r.err[0]!, message, argv.join(" "));
  }
  assert.deepEqual(fixture.seen, []);
  assert.equal(fs.existsSync(dir), false);
});
