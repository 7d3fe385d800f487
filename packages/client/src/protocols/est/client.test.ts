import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import {
  buildCertsOnly, buildCsr, certificatePublicKey, colonHex, CsrAttrOid, decodeBase64Lenient, decodeCsrAttrs, encodeBase64Lines, encodeGeneralNames,
  ExtOid, formatName, sha256Hex, generateKeyPair, keyInfo, keysMatch, nameAttribute, oidValue, parseAndVerifyCsr, pemEncode, type KeyType,
} from "@tessera/pki";
import { EstClient, type EstClientOptions } from "./client.js";
import { EstError } from "./errors.js";
import { EstFixturePki } from "./fixture-pki.js";
import { EstFixtureServer, type FixtureEncoding } from "./fixture-server.js";
import { refusedUrl } from "../imprint/fake-server.js";

let pki: EstFixturePki;
let foreign: EstFixturePki;
let fixture: EstFixtureServer;
let cmcRa: EstFixtureServer;
let mismatch: EstFixtureServer;
before(async () => {
  pki = await EstFixturePki.create();
  foreign = await EstFixturePki.create("Foreign");
  fixture = await EstFixtureServer.start({ pki });
  cmcRa = await EstFixtureServer.start({ pki, identity: "cmc-ra" });
  mismatch = await EstFixtureServer.start({ pki, identity: "mismatch" });
});
after(async () => {
  await Promise.all([fixture.close(), cmcRa.close(), mismatch.close()]);
});
beforeEach(() => {
  for (const f of [fixture, cmcRa, mismatch]) f.reset();
});

const client = (extra: Partial<EstClientOptions> = {}, server = fixture) =>
  new EstClient({ url: server.url, trustAnchors: pki.root.pem, timeoutMs: 5000, ...extra });

function csrFor(cn: string, opts: { keyType?: KeyType; sans?: Parameters<typeof encodeGeneralNames>[0] } = {}) {
  const { privateKey } = generateKeyPair(opts.keyType ?? "ec-p256");
  const extensions = opts.sans ? [{ oid: ExtOid.subjectAltName, critical: false, value: encodeGeneralNames(opts.sans) }] : [];
  return { privateKey, der: buildCsr({ subject: [{ type: "CN", value: cn }], privateKey, extensions }) };
}

const isEst = (kind: EstError["kind"], extra: (e: EstError) => boolean = () => true) => (e: unknown) => {
  assert.ok(e instanceof EstError, String(e));
  assert.equal(e.kind, kind, e.message);
  return extra(e);
};

const cn = (der: Buffer) => nameAttribute(der, "CN");

test("cacerts: root and issuing CA, classified; the request is a bare GET on the label-less path", async () => {
  const bag = await client().cacerts();
  assert.equal(bag.certificates.length, 2);
  assert.equal(bag.trustAnchor.sha256, sha256Hex(pki.root.certificate.der));
  assert.ok(bag.trustAnchor.der.equals(pki.root.certificate.der));
  assert.equal(bag.trustAnchor.role, "trust-anchor");
  assert.deepEqual(bag.chain.map((c) => cn(c.certificate.subject)), ["Tessera Fixture Issuing CA"]);
  assert.equal(bag.oldWithOld, undefined);
  assert.equal(bag.pem, pki.issuing.pem + pki.root.pem);
  assert.deepEqual(fixture.seen.map((s) => [s.method, s.path]), [["GET", "/.well-known/est/cacerts"]]);
  assert.equal(fixture.seen[0]!.headers.authorization, undefined);
});

test("cacerts: every body layout, with and without Content-Transfer-Encoding, decodes to the same bag", async () => {
  for (const encoding of ["lines", "crlf", "unbroken", "der"] as FixtureEncoding[]) {
    for (const sendCte of [true, false]) {
      fixture.encoding = encoding;
      fixture.sendCte = sendCte;
      const bag = await client().cacerts();
      assert.deepEqual(bag.certificates.map((c) => c.sha256), pki.bag(false).map((d) => bag.certificates.find((c) => c.der.equals(d))!.sha256), `${encoding} cte=${sendCte}`);
      assert.ok(bag.trustAnchor.der.equals(pki.root.certificate.der), `${encoding} cte=${sendCte}`);
    }
  }
  // A body with spaces and tabs between the base64 characters (RFC 8951 §3.1).
  const der = buildCertsOnly(pki.bag(false));
  const spaced = encodeBase64Lines(der).replace(/(.{10})/g, "$1 \t");
  fixture.override = () => ({ status: 200, headers: { "Content-Type": "application/pkcs7-mime" }, body: spaced });
  assert.equal((await client().cacerts()).certificates.length, 2);
  assert.equal(fixture.seen.length, 9);
});

test("cacerts: a rollover bag is classified as RFC 7030 §4.1.3 says, whatever the order", async () => {
  fixture.rollover = true;
  const bag = await client().cacerts();
  assert.equal(bag.certificates.length, 5);
  assert.ok(bag.trustAnchor.der.equals(pki.newRoot.certificate.der), "NewWithNew (later notAfter) is the trust anchor");
  assert.ok(bag.oldWithOld!.der.equals(pki.root.certificate.der));
  assert.ok(bag.newWithOld!.der.equals(pki.newWithOld.der));
  assert.ok(bag.oldWithNew!.der.equals(pki.oldWithNew.der));
  assert.deepEqual(bag.chain.map((c) => cn(c.certificate.subject)), ["Tessera Fixture Issuing CA"]);
  assert.deepEqual(bag.certificates.map((c) => c.role), ["old-with-new", "chain", "trust-anchor", "old-with-old", "new-with-old"]);
});

test("cacerts: a bag without a self-signed certificate, or with three, is refused", async () => {
  fixture.override = () => ({ status: 200, body: encodeBase64Lines(buildCertsOnly([pki.issuing.certificate.der])) });
  await assert.rejects(client().cacerts(), isEst("protocol", (e) => /no self-signed/.test(e.message)));
  const three = [pki.root.certificate.der, pki.newRoot.certificate.der, foreign.root.certificate.der];
  fixture.override = () => ({ status: 200, body: encodeBase64Lines(buildCertsOnly(three)) });
  await assert.rejects(client().cacerts(), isEst("protocol", (e) => /3 self-signed/.test(e.message)));
  fixture.override = () => ({ status: 200, body: "not base64 at all!" });
  await assert.rejects(client().cacerts(), isEst("protocol"));
});

test("labels go into the path; an unknown label is not-found", async () => {
  await client({ label: "tenant-a" }).cacerts();
  assert.equal(fixture.seen[0]!.path, "/.well-known/est/tenant-a/cacerts");
  await assert.rejects(client({ label: "nope" }).cacerts(), isEst("not-found", (e) => e.status === 404 && e.body === "not found\n"));
});

test("simpleEnroll: sends application/pkcs10 + CTE base64 in 64-character lines and returns the one issued certificate", async () => {
  const { der } = csrFor("dev-1", { sans: [{ type: "dns", value: "dev-1.example" }] });
  const issued = await client({ label: "tenant-a" }).simpleEnroll(der);
  assert.equal(formatName(issued.certificate.subject), "CN=dev-1");
  assert.equal(issued.certificate.serialHex, fixture.issued[0]!.serialHex);
  assert.ok(issued.certificate.issuer.equals(pki.issuing.certificate.subject));
  assert.ok(issued.pem.startsWith("-----BEGIN CERTIFICATE-----\n"));
  assert.deepEqual(fixture.ops(), ["simpleenroll"]);
  assert.equal(fixture.seen[0]!.path, "/.well-known/est/tenant-a/simpleenroll");
  assert.deepEqual(fixture.problems, []);
  assert.ok(decodeBase64Lenient(fixture.seen[0]!.body).equals(der));
  // PEM input works too, and every answer layout decodes.
  for (const encoding of ["crlf", "unbroken", "der"] as FixtureEncoding[]) {
    fixture.encoding = encoding;
    fixture.sendCte = encoding === "crlf";
    const again = await client().simpleEnroll(pemEncode("CERTIFICATE REQUEST", der));
    assert.equal(again.certificate.serialHex, fixture.issued.at(-1)!.serialHex, encoding);
  }
});

test("simpleEnroll refuses an answer with two certificates, one for another key, or not 200", async () => {
  const { der } = csrFor("dev-2");
  fixture.override = () => ({ status: 200, body: encodeBase64Lines(buildCertsOnly([pki.issuing.certificate.der, pki.root.certificate.der])) });
  await assert.rejects(client().simpleEnroll(der), isEst("protocol", (e) => /expected 1 certificate, found 2/.test(e.message)));
  fixture.override = () => ({ status: 200, body: encodeBase64Lines(buildCertsOnly([pki.issuing.certificate.der])) });
  await assert.rejects(client().simpleEnroll(der), isEst("protocol", (e) => /not for the request's public key/.test(e.message)));
  fixture.override = () => ({ status: 204 });
  await assert.rejects(client().simpleEnroll(der), isEst("protocol", (e) => e.status === 204));
  await assert.rejects(client().simpleEnroll(Buffer.from("nonsense")), TypeError);
});

test("errors carry a stable kind, the status and the server's text", async () => {
  const { der } = csrFor("dev-3");
  const cases: [number, EstError["kind"], Record<string, string>?][] = [
    [400, "bad-request"], [403, "forbidden"], [404, "not-found"], [413, "bad-request"], [415, "bad-request"],
    [500, "server-error"], [501, "not-found"], [503, "unavailable", { "Retry-After": "120" }],
  ];
  const now = new Date("2030-01-01T00:00:00Z");
  for (const [status, kind, headers] of cases) {
    fixture.override = () => ({ status, headers: { "Content-Type": "text/plain; charset=utf-8", ...headers }, body: `reason ${status}\n` });
    await assert.rejects(client({ now: () => now }).simpleEnroll(der), isEst(kind, (e) => {
      assert.equal(e.status, status);
      assert.equal(e.body, `reason ${status}\n`);
      assert.match(e.message, new RegExp(`simpleenroll failed \\(HTTP ${status}\\): reason ${status}`));
      if (status === 503) assert.equal(e.retryAt?.toISOString(), "2030-01-01T00:02:00.000Z");
      return true;
    }));
  }
  // Only the first 8 KiB of a long error text is kept.
  fixture.override = () => ({ status: 400, body: "x".repeat(20_000) });
  await assert.rejects(client().simpleEnroll(der), isEst("bad-request", (e) => e.body!.length === 8192));
});

test("a 401 Basic challenge is answered once; without credentials, with wrong ones, or for Digest it fails", async () => {
  fixture.basic = { username: "", password: "s3cret" };
  const { der } = csrFor("dev-4");
  const ok = await client({ basic: { username: "", password: "s3cret" } }).simpleEnroll(der);
  assert.equal(ok.certificate.serialHex, fixture.issued[0]!.serialHex);
  assert.deepEqual(fixture.ops(), ["simpleenroll", "simpleenroll"]);
  assert.equal(fixture.seen[0]!.headers.authorization, undefined, "the first attempt is bare");
  assert.equal(fixture.seen[1]!.headers.authorization, "Basic " + Buffer.from(":s3cret").toString("base64"));

  fixture.seen.length = 0;
  await assert.rejects(client().simpleEnroll(der), isEst("unauthorized", (e) => /none are configured/.test(e.message) && e.status === 401));
  assert.equal(fixture.seen.length, 1);

  fixture.seen.length = 0;
  await assert.rejects(client({ basic: { username: "", password: "wrong" } }).simpleEnroll(der), isEst("unauthorized", (e) => /refused the credentials/.test(e.message)));
  assert.equal(fixture.seen.length, 2, "exactly one retry");

  fixture.seen.length = 0;
  fixture.challenge = 'Digest realm="tessera", qop="auth", nonce="abc", algorithm="MD5"';
  await assert.rejects(client({ basic: { username: "u", password: "p" } }).simpleEnroll(der), isEst("unauthorized", (e) => /Digest/.test(e.message)));
  assert.equal(fixture.seen.length, 1);
});

test("202: waits Retry-After seconds and repeats the same request (credentials kept)", async () => {
  fixture.basic = { username: "alice", password: "pw" };
  fixture.pending = { count: 2, retryAfter: "3" };
  const sleeps: number[] = [];
  const { der } = csrFor("dev-5");
  const issued = await client({ basic: { username: "alice", password: "pw" }, sleep: async (ms) => void sleeps.push(ms) }).simpleEnroll(der);
  assert.deepEqual(sleeps, [3000, 3000]);
  assert.deepEqual(fixture.ops(), ["simpleenroll", "simpleenroll", "simpleenroll", "simpleenroll"], "401, 202, 202, 200");
  assert.ok(fixture.seen.slice(1).every((s) => s.headers.authorization !== undefined && s.body === fixture.seen[0]!.body));
  assert.equal(cn(issued.certificate.subject), "dev-5");
});

test("202: Retry-After as an HTTP-date is waited out against the injected clock", async () => {
  const now = new Date("2031-05-06T07:08:09Z");
  fixture.pending = { count: 1, retryAfter: new Date(now.getTime() + 42_000).toUTCString() };
  const sleeps: number[] = [];
  await client({ now: () => now, sleep: async (ms) => void sleeps.push(ms) }).simpleEnroll(csrFor("dev-6").der);
  assert.deepEqual(sleeps, [42_000]);
  assert.equal(fixture.seen.length, 2);
});

test("202: a wait beyond maxWaitMs ends in a typed pending error carrying the retry time", async () => {
  const now = new Date("2031-05-06T07:08:09Z");
  fixture.pending = { count: 5, retryAfter: "60" };
  const sleeps: number[] = [];
  const c = client({ maxWaitMs: 150_000, now: () => now, sleep: async (ms) => void sleeps.push(ms) });
  await assert.rejects(c.simpleEnroll(csrFor("dev-7").der), isEst("pending", (e) => {
    assert.equal(e.status, 202);
    assert.equal(e.retryAt?.toISOString(), "2031-05-06T07:09:09.000Z");
    return true;
  }));
  assert.deepEqual(sleeps, [60_000, 60_000]);
  assert.equal(fixture.seen.length, 3);
  fixture.pending = { count: 1, retryAfter: "soon" };
  await assert.rejects(client().simpleEnroll(csrFor("dev-8").der), isEst("pending", (e) => e.retryAt === undefined));
});

test("simpleReenroll presents the client certificate; without one the server answers 403", async () => {
  const device = await pki.device("dev-9", [{ type: "dns", value: "dev-9.example" }]);
  const csr = buildCsr({
    subject: [{ type: "CN", value: "dev-9" }], privateKey: device.privateKey,
    extensions: [{ oid: ExtOid.subjectAltName, critical: false, value: encodeGeneralNames([{ type: "dns", value: "dev-9.example" }]) }],
  });
  const renewed = await client({ clientCertificate: { cert: device.certPem, key: device.keyPem } }).simpleReenroll(csr);
  assert.notEqual(renewed.certificate.serialHex, device.certificate.serialHex);
  assert.ok(renewed.certificate.subject.equals(device.certificate.subject));
  assert.deepEqual(fixture.seen.map((s) => [s.op, s.peerSubject, s.peerAuthorized]), [["simplereenroll", "CN=dev-9", true]]);
  await assert.rejects(client().simpleReenroll(csr), isEst("forbidden", (e) => e.status === 403 && /TLS client certificate/.test(e.body!)));
  // A changed subject is the server's 400.
  const other = buildCsr({ subject: [{ type: "CN", value: "dev-10" }], privateKey: device.privateKey });
  await assert.rejects(client({ clientCertificate: { cert: device.certPem, key: device.keyPem } }).simpleReenroll(other), isEst("bad-request"));
});

test("serverKeygen: multipart with bare or quoted boundary, CRLF or LF, either part order; the key matches the certificate", async () => {
  const variants: { quoted: boolean; nl: "\r\n" | "\n"; certFirst: boolean; keyType: KeyType; sendCte: boolean }[] = [
    { quoted: false, nl: "\r\n", certFirst: false, keyType: "ec-p256", sendCte: true },
    { quoted: true, nl: "\n", certFirst: false, keyType: "ec-p384", sendCte: false },
    { quoted: true, nl: "\r\n", certFirst: true, keyType: "ed25519", sendCte: true },
  ];
  for (const v of variants) {
    fixture.boundaryQuoted = v.quoted;
    fixture.multipartNewline = v.nl;
    fixture.certPartFirst = v.certFirst;
    fixture.sendCte = v.sendCte;
    const { der, privateKey: csrKey } = csrFor("dev-kg", { keyType: v.keyType });
    const r = await client().serverKeygen(der);
    const label = JSON.stringify(v);
    assert.ok(keysMatch(r.privateKey, certificatePublicKey(r.certificate.certificate)), label);
    assert.ok(!keysMatch(csrKey, certificatePublicKey(r.certificate.certificate)), `the server made a new key: ${label}`);
    assert.deepEqual(keyInfo(r.privateKey), keyInfo(csrKey), label);
    assert.equal(r.certificate.certificate.serialHex, fixture.issued.at(-1)!.serialHex, label);
    assert.ok(r.privateKeyPem.startsWith("-----BEGIN PRIVATE KEY-----\n"), label);
    assert.equal(cn(r.certificate.certificate.subject), "dev-kg");
  }
  assert.deepEqual(fixture.ops(), ["serverkeygen", "serverkeygen", "serverkeygen"]);
  assert.deepEqual(fixture.problems, []);
});

test("serverKeygen refuses a key that does not belong to the certificate, and a body without a key part", async () => {
  const { der } = csrFor("dev-kg2");
  const cert = await pki.device("dev-kg2");
  const stranger = generateKeyPair("ec-p256").privateKey;
  const keyDer = stranger.export({ type: "pkcs8", format: "der" });
  const multipart = (parts: string[]) => `--b\r\n${parts.join("--b\r\n")}--b--\r\n`;
  const keyPart = `Content-Type: application/pkcs8\r\n\r\n${encodeBase64Lines(keyDer)}`;
  const certPart = `Content-Type: application/pkcs7-mime; smime-type=certs-only\r\n\r\n${encodeBase64Lines(buildCertsOnly([cert.certificate.der]))}`;
  fixture.override = () => ({ status: 200, headers: { "Content-Type": "multipart/mixed; boundary=b" }, body: multipart([keyPart, certPart]) });
  await assert.rejects(client().serverKeygen(der), isEst("protocol", (e) => /does not belong/.test(e.message)));
  fixture.override = () => ({ status: 200, headers: { "Content-Type": "multipart/mixed; boundary=b" }, body: multipart([certPart]) });
  await assert.rejects(client().serverKeygen(der), isEst("protocol", (e) => /no application\/pkcs8 part/.test(e.message)));
  fixture.override = () => ({ status: 200, headers: { "Content-Type": "application/pkcs7-mime" }, body: "" });
  await assert.rejects(client().serverKeygen(der), isEst("protocol", (e) => /multipart/.test(e.message)));
});

test("csrattrs: 200 decodes the RFC 7030 §A.2 example; 204 and 404 mean none", async () => {
  const example = "MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJBgcrBgEBAQEWBggqhkjOPQQDAw==";
  const attrs = decodeCsrAttrs(Buffer.from(example, "base64"));
  fixture.csrattrs = { status: 200, attrs };
  for (const encoding of ["lines", "der"] as FixtureEncoding[]) {
    fixture.encoding = encoding;
    const got = await client().csrattrs();
    assert.deepEqual(got, [
      { oid: CsrAttrOid.challengePassword },
      { type: CsrAttrOid.ecPublicKey, values: [oidValue("1.3.132.0.34")] },
      { type: CsrAttrOid.extensionRequest, values: [oidValue("1.3.6.1.1.1.1.22")] },
      { oid: "1.2.840.10045.4.3.3" },
    ]);
  }
  fixture.csrattrs = { status: 204 };
  assert.deepEqual(await client().csrattrs(), []);
  fixture.csrattrs = { status: 404 };
  assert.deepEqual(await client().csrattrs(), []);
  assert.equal(fixture.seen.length, 4);
});

test("server identity (RFC 7030 §3.6): a non-matching name is accepted only with id-kp-cmcRA; the chain must reach the trust anchors", async () => {
  const bag = await client({}, cmcRa).cacerts();
  assert.equal(bag.certificates.length, 2);
  assert.equal(cmcRa.seen.length, 1);
  await assert.rejects(client({}, mismatch).cacerts(), isEst("tls", (e) => e.causeCode === "ERR_TLS_CERT_ALTNAME_INVALID"));
  assert.equal(mismatch.seen.length, 0, "no request goes to an unverified server");
  await assert.rejects(client({ trustAnchors: foreign.root.pem }).cacerts(), isEst("tls", (e) => /UNABLE_TO|SELF_SIGNED|CERT/.test(e.causeCode ?? "")));
  assert.equal(fixture.seen.length, 0);
  // DER trust anchors work like PEM.
  assert.equal((await client({ trustAnchors: [pki.root.certificate.der] }).cacerts()).certificates.length, 2);
});

test("bootstrapCacerts: accepts the bag when the fingerprint matches and the TLS certificate chains to it", async () => {
  const rootFp = (await client().cacerts()).trustAnchor.sha256;
  fixture.seen.length = 0;
  const r = await EstClient.bootstrapCacerts({ url: fixture.url, fingerprint: colonHex(rootFp) });
  assert.ok(r.pinned.der.equals(pki.root.certificate.der));
  assert.deepEqual(r.serverPath.map((c) => cn(c.certificate.subject)), ["localhost", "Tessera Fixture Issuing CA", "Tessera Fixture Root CA G1"]);
  assert.equal(r.certificates.length, 2);
  assert.equal(fixture.seen.length, 1);
  // Pinning the issuing CA works as well (lowercase, no colons); the result then serves as trust anchors.
  const issuingFp = r.chain[0]!.sha256;
  const viaIssuing = await EstClient.bootstrapCacerts({ url: fixture.url, label: "tenant-a", fingerprint: issuingFp });
  assert.equal(fixture.seen.at(-1)!.path, "/.well-known/est/tenant-a/cacerts");
  assert.equal((await client({ trustAnchors: viaIssuing.pem }).cacerts()).certificates.length, 2);
  // A cmcRA server passes the identity check.
  assert.ok((await EstClient.bootstrapCacerts({ url: cmcRa.url, fingerprint: rootFp })).pinned.der.equals(pki.root.certificate.der));
});

test("bootstrapCacerts: refuses a wrong fingerprint, a pinned certificate the server does not chain to, and a misnamed server", async () => {
  const rootFp = (await client().cacerts()).trustAnchor.sha256;
  await assert.rejects(EstClient.bootstrapCacerts({ url: fixture.url, fingerprint: "ab".repeat(32) }), isEst("untrusted", (e) => /no certificate in the bag/.test(e.message)));
  // An attacker's bag that holds the pinned root, but the TLS certificate is not under it.
  const foreignFp = (await client({ trustAnchors: foreign.root.pem }, await foreignServer()).cacerts()).trustAnchor.sha256;
  fixture.override = (s) => (s.op === "cacerts" ? { status: 200, body: encodeBase64Lines(buildCertsOnly([foreign.root.certificate.der, pki.root.certificate.der])) } : undefined);
  await assert.rejects(EstClient.bootstrapCacerts({ url: fixture.url, fingerprint: foreignFp }), isEst("untrusted", (e) => /does not chain/.test(e.message)));
  // The issuing CA missing from the bag is fine: the server sent it in the handshake, and signatures decide.
  fixture.override = (s) => (s.op === "cacerts" ? { status: 200, body: encodeBase64Lines(buildCertsOnly([pki.root.certificate.der])) } : undefined);
  assert.equal((await EstClient.bootstrapCacerts({ url: fixture.url, fingerprint: rootFp })).serverPath.length, 3, "intermediates from the handshake count");
  await assert.rejects(EstClient.bootstrapCacerts({ url: mismatch.url, fingerprint: rootFp }), isEst("untrusted", (e) => /other\.example|altnames/i.test(e.message)));
  await assert.rejects(EstClient.bootstrapCacerts({ url: fixture.url, fingerprint: "abc" }), TypeError);
});

let foreignFixture: EstFixtureServer | undefined;
async function foreignServer(): Promise<EstFixtureServer> {
  foreignFixture ??= await EstFixtureServer.start({ pki: foreign });
  return foreignFixture;
}
after(async () => {
  await foreignFixture?.close();
});

test("options are validated on receipt, every problem at once", async () => {
  const device = await pki.device("dev-x");
  const other = await pki.device("dev-y");
  assert.throws(
    () => new EstClient({ url: "http://x", label: "a/b", trustAnchors: "", clientCertificate: { cert: device.certPem, key: other.keyPem }, timeoutMs: 0 }),
    (e: unknown) => {
      assert.ok(e instanceof TypeError);
      for (const m of [/https URL/, /label/, /trustAnchors/, /does not belong/, /timeoutMs/]) assert.match(e.message, m);
      return true;
    },
  );
  assert.throws(() => new EstClient({ url: fixture.url, label: "cacerts", trustAnchors: pki.root.pem }), /operation name/);
  assert.throws(() => new EstClient({ url: fixture.url } as EstClientOptions), /trustAnchors/);
});

test("no answer is a network error", async () => {
  await assert.rejects(new EstClient({ url: await refusedUrl(), trustAnchors: pki.root.pem }).cacerts(), isEst("network", (e) => e.causeCode === "ECONNREFUSED"));
});

test("the requests the client builds are what a server parses: CSR round trip through the fixture", async () => {
  const { der } = csrFor("dev-rt", { sans: [{ type: "ip", value: "10.0.0.7" }] });
  await client().simpleEnroll(der);
  const seen = await parseAndVerifyCsr(decodeBase64Lenient(fixture.seen[0]!.body));
  assert.ok(seen.der.equals(der));
});
