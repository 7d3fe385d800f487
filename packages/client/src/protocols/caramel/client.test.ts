import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import {
  decodeName, encodeName, exportPrivateKey, formatName, generateKeyPair, keyInfo, parseCsr, pemEncode, readChildren, readWhole, sha256Hex, spkiDer,
  Tag, tlv, tlvBytes,
} from "@tessera/pki";
import { CARAMEL_CLIENT_VERSION, caramelBackoffMs, CaramelClient } from "./client.js";
import { caramelEnroll } from "./enroll.js";
import { CaramelError } from "./errors.js";
import { CaramelFixtureCa, CaramelFixtureServer } from "./fixture-server.js";
import { buildCaramelCsr, caramelSubject, readCaramelCa, readCaramelCsr } from "./request.js";
import { caramelBaseUrl, userAgentWithId } from "./wire.js";

let fixture: CaramelFixtureServer;
before(async () => {
  fixture = await CaramelFixtureServer.start();
});
after(async () => {
  await fixture.close();
});
beforeEach(() => fixture.reset());

const client = (id = "device-1", extra: Partial<ConstructorParameters<typeof CaramelClient>[0]> = {}) =>
  new CaramelClient({ server: fixture.host, caCert: fixture.ca.pem, clientId: id, ...extra });
const noSleep = { sleep: async () => undefined };

// A request the Rust client's integration test posts to ca.modio.se (rs network.rs `get_crt_from_ca_modio`): OpenSSL's output for the Modio CA.
const MODIO_SAMPLE_CSR = `-----BEGIN CERTIFICATE REQUEST-----
MIICvDCCAaQCAQAwdzELMAkGA1UEBhMCU0UxFzAVBgNVBAgMDsOWc3RlcmfDtnRs
YW5kMRMwEQYDVQQHDApMaW5rw7ZwaW5nMREwDwYDVQQKDAhNb2RpbyBBQjEQMA4G
A1UECwwHQ2FyYW1lbDEVMBMGA1UEAwwMZmZmYmVlYzBmZmVlMIIBIjANBgkqhkiG
9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx0XvZX2qZn0oijLw2YptgP2dgPOXiV74LWYT
4LLtQwTzgLE+3sHt9Hrk/nBtZtTTYqDGpKdOEEbnx/SV5E4QiGiAPR03LUKVprhD
v3/uCz7GnzJLjBT6H5JaV0xi7zMYOdSqkJfi2nG0cShqD7PkXym1WODDPfRjAZ1c
g1pjeGH0dfGuKe7bQlO2i9gsC/x1J7nWDdS/E8kffkDWamsWzb/a2iuHALp3IKnJ
xc+IxmhdTCGzAqTEcasYERpUSPjTZ5O0ky0rIqS/97pT8TZjJ4jFLd7OEXv6hXK+
2TOhZEGbmXLlOiXqRzVN+AoRPcBwLNE5MdVOxuoO+20jBMSgnQIDAQABoAAwDQYJ
KoZIhvcNAQELBQADggEBAC+KY6lE8+cLTfKj9260om7atPcS8qQiywOeWNzyhp9F
Ov7vWNCoh89vCiD4VWPRj7fPGiyB4oIY3M+cXUD3zW8Gi3IbwdnUoyrN9MzGALzQ
6zBLcxUIEt6TgQLbLNBCjqNEy4gV9qmn/XmN+J8r0orRt66S9rxYjxhIKLkuQ9xa
LixKAxaIJ58bLH0W3/+dBDTeugt2zR+bJrJXbf6n4A+wFqJnhn8uGH2dkRxhxGK8
L4CRL0Y1CrLO2Rl/ukqN9Fvdpy3RVrjQQ4jERVzc8n+QaKtrPcJsVX9wP0IYLqPO
aq69O+gq+AO+jX+8xQHnSIp6pxocIxaufeSaXCgVysM=
-----END CERTIFICATE REQUEST-----
`;

test("the subject is the CA's with the CN replaced, prefix RDNs copied byte for byte", () => {
  const ca = fixture.ca.certificate;
  const subject = caramelSubject(ca.subject, "device-1");
  assert.equal(formatName(subject), "CN=device-1,OU=Caramel,O=Tessera Fixture AB,L=Linköping,ST=Östergötland,C=SE");
  const rdns = (der: Buffer) => readChildren(der, readWhole(der, Tag.SEQUENCE)).map((t) => Buffer.from(tlvBytes(der, t)).toString("hex"));
  assert.deepEqual(rdns(subject).slice(0, 5), rdns(ca.subject).slice(0, 5), "C, ST, L, O, OU as the CA encodes them");
  // The CN is a UTF8String (0x0c), as OpenSSL writes it for both reference clients.
  assert.ok(rdns(subject)[5]!.startsWith("3111300f06035504030c08"), rdns(subject)[5]);

  // No CN in the CA: one is appended; several CNs: each replaced.
  assert.equal(formatName(caramelSubject(encodeName([{ type: "C", value: "SE" }, { type: "O", value: "Acme" }]), "d")), "CN=d,O=Acme,C=SE");
  assert.equal(formatName(caramelSubject(encodeName([{ type: "CN", value: "a" }, { type: "O", value: "Acme" }, { type: "CN", value: "b" }]), "d")), "CN=d,O=Acme,CN=d");
  // A CA in any other order keeps its order (only the one Modio subject is repaired).
  const odd = encodeName([{ type: "O", value: "Acme" }, { type: "C", value: "SE" }, { type: "CN", value: "CA" }]);
  assert.deepEqual(decodeName(caramelSubject(odd, "d")).map((a) => a.type), ["O", "C", "CN"]);
});

test("the Modio CA's subject is reordered C, ST, L, O, OU, CN exactly as the reference clients' requests", () => {
  // The sample's subject, with the CA's CN and the CA's own order (C, OU, L, O, ST, CN).
  const sample = parseCsr(MODIO_SAMPLE_CSR).subject;
  const r = readChildren(sample, readWhole(sample, Tag.SEQUENCE)).map((t) => tlvBytes(sample, t));
  assert.equal(r.length, 6);
  const cn = encodeName([{ type: "CN", value: "Caramel Signing Certificate" }]);
  const caCn = tlvBytes(cn, readChildren(cn, readWhole(cn, Tag.SEQUENCE))[0]!);
  const modioCa = tlv(Tag.SEQUENCE, r[0]!, r[4]!, r[2]!, r[3]!, r[1]!, caCn);
  assert.equal(formatName(modioCa), "CN=Caramel Signing Certificate,ST=Östergötland,O=Modio AB,L=Linköping,OU=Caramel,C=SE");
  assert.ok(caramelSubject(modioCa, "fffbeec0ffee").equals(sample), "byte-identical to the subject OpenSSL wrote");
});

test("requests are canonical PEM named by the SHA-256 of their bytes; anything else is refused before it is sent", () => {
  const { privateKey } = generateKeyPair("ec-p256");
  const csr = buildCaramelCsr(privateKey, fixture.ca.certificate, "device-1");
  assert.equal(csr.sha256, sha256Hex(Buffer.from(csr.pem)));
  const lines = csr.pem.split("\n");
  assert.equal(lines[0], "-----BEGIN CERTIFICATE REQUEST-----");
  assert.equal(lines.at(-2), "-----END CERTIFICATE REQUEST-----");
  assert.equal(lines.at(-1), "");
  assert.ok(lines.slice(1, -3).every((l) => l.length === 64) && lines.at(-3)!.length <= 64);
  assert.ok(csr.parsed.spki.equals(spkiDer(privateKey)));
  assert.equal(readCaramelCsr(csr.pem).sha256, csr.sha256);
  assert.equal(readCaramelCsr(MODIO_SAMPLE_CSR).sha256, sha256Hex(Buffer.from(MODIO_SAMPLE_CSR)));
  for (const bad of [csr.pem.replace(/\n/g, "\r\n"), csr.pem + "\n", "x\n" + csr.pem, csr.pem + csr.pem, csr.pem.replace(/\n(?!-)/g, "")]) {
    assert.throws(() => readCaramelCsr(bad), TypeError);
  }
  // RSA requests are deterministic (PKCS#1 v1.5): the same key gives the same request, hence the same name.
  const rsa = generateKeyPair("rsa-2048").privateKey;
  assert.equal(buildCaramelCsr(rsa, fixture.ca.certificate, "d").pem, buildCaramelCsr(rsa, fixture.ca.certificate, "d").pem);
});

test("options: host[:port] or an https URL; every problem listed at once", () => {
  assert.equal(caramelBaseUrl("ca.example.com"), "https://ca.example.com");
  assert.equal(caramelBaseUrl("ca.example.com:8443"), "https://ca.example.com:8443");
  assert.equal(caramelBaseUrl("https://ca.example.com/caramel/"), "https://ca.example.com/caramel");
  assert.throws(() => caramelBaseUrl("http://ca.example.com"), /not https/);
  assert.throws(
    () => new CaramelClient({ server: "http://x", caCert: "junk", clientId: "" }),
    (e: Error) => e instanceof TypeError && /not https/.test(e.message) && /caCert/.test(e.message) && /clientId/.test(e.message),
  );
  assert.throws(() => client("x".repeat(65)), /at most 64/);
  const leaf = generateKeyPair("ec-p256");
  assert.throws(() => client("d", { clientCertificate: { cert: fixture.ca.pem, key: exportPrivateKey(leaf.privateKey) } }), /does not belong/);
  assert.equal(userAgentWithId("p/1", "a(b)\\c ü"), "p/1 (a\\(b\\)\\\\c %C3%BC)");
  const pkg = JSON.parse(fs.readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
  assert.equal(CARAMEL_CLIENT_VERSION, pkg.version);
});

test("the backoff is the Rust client's: 0.87 s · 2^n, at most 23 s, ±15 %", () => {
  assert.equal(caramelBackoffMs(1, () => 0.5), 1740);
  assert.equal(caramelBackoffMs(2, () => 0.5), 3480);
  assert.equal(caramelBackoffMs(5, () => 0.5), 23_000);
  assert.equal(caramelBackoffMs(1000, () => 0.5), 23_000);
  assert.equal(caramelBackoffMs(1, () => 0), 1479);
  assert.equal(caramelBackoffMs(1, () => 0.999_999), 2001);
});

test("fetchRootCertificate downloads and checks /root.crt; 404 is ca-not-found", async () => {
  const ca = await CaramelClient.fetchRootCertificate({ server: fixture.host, trust: fixture.ca.pem });
  assert.equal(ca.pem, fixture.ca.pem);
  assert.equal(fixture.seen[0]!.path, "/root.crt");
  // Default trust is the public roots only: the fixture's own CA is not among them.
  await assert.rejects(CaramelClient.fetchRootCertificate({ server: fixture.host }), (e: CaramelError) => e.kind === "tls");
  fixture.override = (r) => (r.path === "/root.crt" ? { status: 404, body: "{}" } : undefined);
  await assert.rejects(CaramelClient.fetchRootCertificate({ server: fixture.host, trust: fixture.ca.pem }), (e: CaramelError) => e.kind === "ca-not-found");
  const leaf = await fixture.ca.issue(encodeName([{ type: "CN", value: "x" }]), spkiDer(generateKeyPair().publicKey));
  fixture.override = () => ({ status: 200, body: pemEncode("CERTIFICATE", leaf.der) });
  await assert.rejects(CaramelClient.fetchRootCertificate({ server: fixture.host, trust: fixture.ca.pem }), (e: CaramelError) => e.kind === "bad-ca");
});

test("poll and submit: unknown, pending, signed with Last-Modified, 304, rejected; certificates are checked", async () => {
  const c = client();
  const { privateKey } = generateKeyPair("ec-p256");
  const csr = c.buildCsr(privateKey);
  fixture.policy = { pendingPolls: 1, outcome: "sign" };
  assert.deepEqual(await c.poll(csr), { state: "unknown" });
  assert.deepEqual(await c.submit(csr), { state: "pending", sha256: csr.sha256 });
  assert.deepEqual(await c.poll(csr.pem), { state: "pending" });
  const signed = await c.poll(csr);
  assert.equal(signed.state, "signed");
  if (signed.state !== "signed") return;
  assert.equal(formatName(signed.certificate.subject), "CN=device-1,OU=Caramel,O=Tessera Fixture AB,L=Linköping,ST=Östergötland,C=SE");
  assert.ok(signed.lastModified instanceof Date);
  assert.deepEqual(await c.poll(csr, { ifModifiedSince: signed.lastModified }), { state: "unchanged" });
  assert.equal(fixture.seen.at(-1)!.status, 304);
  assert.equal(fixture.seen.at(-1)!.headers["if-modified-since"], signed.lastModified!.toUTCString());
  assert.equal((await c.poll(csr, { ifModifiedSince: new Date(signed.lastModified!.getTime() - 1000) })).state, "signed");
  assert.deepEqual(fixture.seen.map((s) => `${s.method} ${s.status}`), ["GET 404", "POST 202", "GET 202", "GET 200", "GET 304", "GET 200"]);
  assert.equal(fixture.seen[1]!.body, csr.pem, "the exact PEM bytes are posted");
  assert.equal(fixture.seen[1]!.headers["content-length"], String(csr.pem.length));
  assert.equal(fixture.seen[0]!.headers["user-agent"], `tessera-caramel/${CARAMEL_CLIENT_VERSION} (device-1)`);

  // A duplicate POST is refused with the server's reason; a rejected request answers 403.
  await assert.rejects(c.submit(csr), (e: CaramelError) => e.kind === "refused" && e.status === 400 && e.detail === "duplicate request");
  fixture.reject(csr.sha256);
  assert.deepEqual(await c.poll(csr), { state: "rejected" });

  // A request under another CA's subject: the server's "Bad subject" reason comes through.
  const other = await CaramelFixtureCa.create([
    { type: "C", value: "SE" }, { type: "ST", value: "Östergötland" }, { type: "L", value: "Linköping" }, { type: "O", value: "Other AB" }, { type: "CN", value: "Other CA" },
  ]);
  const foreign = buildCaramelCsr(privateKey, other.certificate, "device-1");
  await assert.rejects(c.submit(foreign), (e: CaramelError) => e.kind === "refused" && /^Bad subject: \(\('C', 'SE'\).*'Other AB'\)\) do not match .*'Tessera Fixture AB'/.test(e.detail ?? ""));
  const tooShort = buildCaramelCsr(privateKey, (await CaramelFixtureCa.create([{ type: "O", value: "x" }, { type: "CN", value: "y" }])).certificate, "device-1");
  await assert.rejects(c.submit(tooShort), (e: CaramelError) => e.kind === "refused" && e.detail === "Bad subject: Too few subject components");

  // A certificate for another key, from another CA, or for another id is refused.
  const csr2 = c.buildCsr(generateKeyPair("ec-p256").privateKey);
  await c.submit(csr2);
  const serve = async (cert: { der: Buffer }) => {
    fixture.override = (r) => (r.sha256 === csr2.sha256 && r.method === "GET" ? { status: 200, body: pemEncode("CERTIFICATE", cert.der) } : undefined);
    return c.poll(csr2).then(() => undefined, (e: CaramelError) => `${e.kind}: ${e.message.replace(/.*[0-9a-f]{64} /, "")}`);
  };
  const subj = caramelSubject(fixture.ca.certificate.subject, "device-1");
  assert.equal(await serve(await fixture.ca.issue(subj, spkiDer(generateKeyPair().publicKey))), "bad-certificate: is not for our key");
  assert.equal(await serve(await other.issue(subj, csr2.parsed.spki)), "bad-certificate: is not signed by the CA");
  assert.equal(await serve(await fixture.ca.issue(caramelSubject(fixture.ca.certificate.subject, "device-2"), csr2.parsed.spki)), 'bad-certificate: names CN "device-2", not "device-1"');
  fixture.override = () => ({ status: 500, headers: { "Content-Type": "application/problem+json" }, body: '{"status":500,"title":"Internal Server Error","detail":"db down"}' });
  await assert.rejects(c.poll(csr2), (e: CaramelError) => e.kind === "server-error" && /db down/.test(e.message));
});

test("ensure: posts an unknown request, waits with backoff, and returns the checked certificate; timeout and rejection fail", async () => {
  const c = client();
  const { privateKey } = generateKeyPair("ec-p256");
  const csr = c.buildCsr(privateKey);
  fixture.policy = { pendingPolls: 2, outcome: "sign" };
  const waits: number[] = [];
  const r = await c.ensure({ csr: csr.pem, sleep: async (ms) => void waits.push(ms), random: () => 0.5 });
  assert.equal(r.state, "signed");
  assert.equal(r.posted, true);
  assert.equal(r.polls, 4);
  assert.deepEqual(waits, [3480, 6960], "attempts 2 and 3: the GET that found it unknown counts, as in the Rust client");
  assert.deepEqual(fixture.log(), ["GET 404", "POST 202", "GET 202", "GET 202", "GET 200"]);
  // Again with the certificate held: 304, unchanged.
  const again = await c.ensure({ csr, current: { certificatePem: r.certificatePem, lastModified: r.lastModified! } });
  assert.equal(again.state, "unchanged");
  assert.equal(again.certificatePem, r.certificatePem);
  assert.equal(fixture.seen.at(-1)!.status, 304);
  // The same bytes again (Caramel 1.9.6: no 304) are unchanged too.
  fixture.conditional = false;
  assert.equal((await c.ensure({ csr, current: { certificatePem: r.certificatePem, lastModified: r.lastModified! } })).state, "unchanged");

  // Pending past maxWaitMs: the last wait is cut to the deadline, then one last GET.
  fixture.policy = { pendingPolls: 0, outcome: "pending" };
  const csr2 = c.buildCsr(generateKeyPair("ec-p256").privateKey);
  const waits2: number[] = [];
  await assert.rejects(
    c.ensure({ csr: csr2, maxWaitMs: 5000, sleep: async (ms) => void waits2.push(ms), random: () => 0.5 }),
    (e: CaramelError) => e.kind === "pending" && e.sha256 === csr2.sha256 && /no certificate within 5s/.test(e.message),
  );
  assert.equal(waits2[0], 3480);
  assert.ok(waits2.reduce((a, b) => a + b, 0) <= 5000);
  await assert.rejects(c.ensure({ csr: csr2, maxWaitMs: 0 }), (e: CaramelError) => e.kind === "pending");

  fixture.reject(csr2.sha256);
  await assert.rejects(c.ensure({ csr: csr2, ...noSleep }), (e: CaramelError) => e.kind === "rejected" && e.status === 403);

  // Aborting stops the wait.
  const csr3 = c.buildCsr(generateKeyPair("ec-p256").privateKey);
  const stop = new AbortController();
  setTimeout(() => stop.abort(), 50);
  await assert.rejects(c.ensure({ csr: csr3, signal: stop.signal }), (e: CaramelError) => e.kind === "aborted");
});

test("the client certificate is presented when given", async () => {
  const { privateKey } = generateKeyPair("ec-p256");
  const first = await caramelEnroll({ server: fixture.host, caCert: fixture.ca.pem, clientId: "device-1", key: privateKey, ...noSleep });
  assert.equal(first.state, "signed");
  fixture.seen.length = 0;
  const c = client("device-1", { clientCertificate: { cert: first.certificatePem!, key: first.keyPem } });
  await c.poll(first.csrPem);
  assert.equal(fixture.seen[0]!.peerAuthorized, true);
  assert.ok(fixture.seen[0]!.peerCertificate!.der.equals(first.certificate!.der));
});

/** Runs `fn` with every file-writing function of node:fs replaced by one that records and fails. */
async function withoutWrites<T>(fn: () => Promise<T>): Promise<{ result: T; writes: string[] }> {
  const writes: string[] = [];
  const cjs = (await import("node:fs")).default as unknown as Record<string, unknown>;
  const promises = cjs.promises as Record<string, unknown>;
  const names = ["writeFile", "writeFileSync", "appendFile", "appendFileSync", "open", "openSync", "mkdir", "mkdirSync", "rename", "renameSync", "rm", "rmSync", "unlink", "unlinkSync", "createWriteStream", "copyFile", "copyFileSync"];
  const pnames = ["writeFile", "appendFile", "open", "mkdir", "rename", "rm", "unlink", "copyFile"];
  const saved = names.map((n) => [n, cjs[n]] as const);
  const psaved = pnames.map((n) => [n, promises[n]] as const);
  const trap = (n: string) => (...args: unknown[]) => {
    writes.push(`${n} ${String(args[0])}`);
    throw new Error(`fs.${n} called in library mode`);
  };
  for (const n of names) cjs[n] = trap(n);
  for (const n of pnames) promises[n] = async (...args: unknown[]) => trap(`promises.${n}`)(...args);
  syncBuiltinESMExports();
  try {
    return { result: await fn(), writes };
  } finally {
    for (const [n, f] of saved) cjs[n] = f;
    for (const [n, f] of psaved) promises[n] = f;
    syncBuiltinESMExports();
  }
}

test("library mode: objects in, objects out, nothing written anywhere", async () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), "caramel-lib-"));
  const cwd = process.cwd();
  process.chdir(empty);
  try {
    // The trap works for both ways the package imports fs.
    const probe = await withoutWrites(async () => {
      assert.throws(() => fs.writeFileSync("probe", "x"));
      await assert.rejects(fsp.writeFile("probe", "x"));
      await assert.rejects(fsp.open("probe", "wx"));
    });
    assert.equal(probe.writes.length, 3);

    fixture.policy = { pendingPolls: 1, outcome: "sign" };
    const opts = { server: fixture.host, caCert: fixture.ca.pem, clientId: "app-7", ...noSleep };
    const { result: r, writes } = await withoutWrites(() => caramelEnroll(opts));
    assert.deepEqual(writes, []);
    assert.equal(r.state, "signed");
    assert.equal(keyInfo(r.key).family, "rsa", "rsa-2048 by default: what Caramel signs");
    assert.equal(r.keyPem, exportPrivateKey(r.key));
    assert.equal(r.sha256, sha256Hex(Buffer.from(r.csrPem)));
    assert.ok(r.certificate!.spki.equals(spkiDer(r.key)));
    assert.equal(r.rekeyed, false);
    assert.deepEqual(fixture.log(), ["GET 404", "POST 202", "GET 202", "GET 200"]);

    // The next call with what was stored: 304, unchanged, the certificate presented.
    fixture.seen.length = 0;
    const { result: again } = await withoutWrites(() =>
      caramelEnroll({ ...opts, key: r.key, csrPem: r.csrPem, certificatePem: r.certificatePem!, lastModified: r.lastModified! }));
    assert.equal(again.state, "unchanged");
    assert.equal(again.csrPem, r.csrPem);
    assert.deepEqual(fixture.log(), ["GET 304"]);
    assert.equal(fixture.seen[0]!.peerAuthorized, true);

    // Pending past the wait is a state, with everything needed to ask again later.
    fixture.policy = { pendingPolls: 0, outcome: "pending" };
    const ec = generateKeyPair("ec-p256").privateKey;
    const { result: pending } = await withoutWrites(() => caramelEnroll({ ...opts, key: ec, maxWaitMs: 0 }));
    assert.equal(pending.state, "pending");
    assert.equal(pending.key, ec);
    assert.equal(pending.certificatePem, undefined);

    // Rejected: a state, or with rekeyOnReject a new key and request at once.
    fixture.reject(pending.sha256);
    const { result: rejected } = await withoutWrites(() => caramelEnroll({ ...opts, key: ec, csrPem: pending.csrPem }));
    assert.equal(rejected.state, "rejected");
    fixture.policy = { pendingPolls: 0, outcome: "sign" };
    const { result: rekeyed } = await withoutWrites(() => caramelEnroll({ ...opts, key: ec, csrPem: pending.csrPem, rekeyOnReject: true, keyType: "ec-p256" }));
    assert.equal(rekeyed.state, "signed");
    assert.equal(rekeyed.rekeyed, true);
    assert.notEqual(rekeyed.sha256, pending.sha256);
    assert.ok(!spkiDer(rekeyed.key).equals(spkiDer(ec)));

    await assert.rejects(caramelEnroll({ ...opts, csrPem: pending.csrPem }), TypeError);
    await assert.rejects(caramelEnroll({ ...opts, key: generateKeyPair("ec-p256").privateKey, csrPem: pending.csrPem }), /not made with key/);
    assert.deepEqual(await fsp.readdir(empty), []);
  } finally {
    process.chdir(cwd);
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test("readCaramelCa accepts only a self-signed certificate", async () => {
  assert.equal(readCaramelCa(fixture.ca.pem).pem, fixture.ca.pem);
  const leaf = await fixture.ca.issue(encodeName([{ type: "CN", value: "x" }]), spkiDer(generateKeyPair().publicKey));
  assert.throws(() => readCaramelCa(pemEncode("CERTIFICATE", leaf.der)), (e: CaramelError) => e.kind === "bad-ca");
  assert.throws(() => readCaramelCa("nothing"), (e: CaramelError) => e.kind === "bad-ca");
});
