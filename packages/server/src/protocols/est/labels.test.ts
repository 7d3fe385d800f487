/**
 * Per-label behaviour: authentication by Basic, bootstrap certificate or
 * both; users scoped to a label; manual approval (202 + Retry-After);
 * /csrattrs; tls-unique linking (RFC 7030 §3.5); /serverkeygen (§4.4).
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createPrivateKey, type KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import {
  buildCsr, certificatePublicKey, challengePasswordAttribute, decodeBase64Lenient, encodeBase64Lines, encodeGeneralNames, ExtOid, formatName,
  generateKeyPair, keyInfo, keysMatch, parseCertificate, pemEncode, readCmsCertificates, certificateSans, formatSan, tlv, Tag,
} from "@tessera/pki";
import { issueTestLeaf, makeTestCa, type TestCa } from "../../../../pki/src/test-helpers.js";
import type { RunningServer } from "../../server.js";
import { tempDir } from "../../test-support.js";
import { addEstUser, estServer, header, rawRequest, type RawResponse } from "./test-kit.js";

const basic = (user: string, password: string) => ({ Authorization: "Basic " + Buffer.from(`${user}:${password}`).toString("base64") });
const ALICE = basic("alice", "s3cret-pass");
const pkcs10 = { "Content-Type": "application/pkcs10" };

function csrOf(cn: string, key: KeyObject = generateKeyPair("ec-p256").privateKey, attributes: Parameters<typeof buildCsr>[0]["attributes"] = []): string {
  return encodeBase64Lines(buildCsr({ subject: [{ type: "CN", value: cn }], privateKey: key, attributes }));
}

function oneCertificate(r: RawResponse) {
  assert.equal(r.status, 200, `${r.statusLine} ${r.body}`);
  const certs = readCmsCertificates(decodeBase64Lenient(r.body));
  assert.equal(certs.length, 1);
  return parseCertificate(certs[0]!);
}

describe("labels on a TLS 1.3 listener", () => {
  let server: RunningServer;
  let base: string;
  let ca: string;
  let factory: TestCa;
  let bootstrap: { certPem: string; keyPem: string };
  let dir: string;

  before(async () => {
    factory = await makeTestCa();
    dir = tempDir("tessera-est-labels-");
    const bootstrapCaFile = path.join(dir, "factory-ca.pem");
    fs.writeFileSync(bootstrapCaFile, pemEncode("CERTIFICATE", factory.intermediate.der) + pemEncode("CERTIFICATE", factory.root.der));
    ({ server, base } = await estServer((c) => {
      c.est.labels["factory"] = { ...c.est.default, auth: "certificate", bootstrapCa: [bootstrapCaFile] };
      c.est.labels["strict"] = { ...c.est.default, auth: "both", bootstrapCa: [bootstrapCaFile] };
      c.est.labels["approve"] = { ...c.est.default, mode: "manual", retryAfter: 7 };
      c.est.labels["keygen"] = {
        ...c.est.default, serverKeygenKeyType: "ec-p384",
        csrAttrs: [{ oid: "1.2.840.113549.1.9.7" }, { type: "1.2.840.10045.2.1", values: ["1.3.132.0.34"] }, { type: "1.2.840.113549.1.9.14", values: ["1.3.6.1.1.1.1.22"] }, { oid: "1.2.840.10045.4.3.3" }],
      };
    }));
    ca = server.authority.chainPem();
    const { privateKey } = generateKeyPair("ec-p256");
    const leaf = await issueTestLeaf(factory, "factory-device-9", privateKey);
    // Devices usually send the leaf only (est.md §4): the intermediate is in the bootstrap CA file.
    bootstrap = { certPem: pemEncode("CERTIFICATE", leaf.der), keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string };
    await addEstUser(server, "bob", "bob-pass", "approve");
  });
  after(() => server.close(100));

  const post = (p: string, body: string, headers: Record<string, string> = {}, client?: { certPem: string; keyPem: string }) =>
    rawRequest(base, { method: "POST", path: `/.well-known/est/${p}`, ca, body, headers: { ...pkcs10, ...headers }, cert: client?.certPem, key: client?.keyPem });

  test("the TLS CertificateRequest names Tessera's issuing CA and the bootstrap CAs", async () => {
    const u = new URL(base);
    const run = promisify(execFile)("openssl", ["s_client", "-connect", `${u.hostname}:${u.port}`, "-tls1_2"], { timeout: 10_000 });
    run.child.stdin!.end(); // s_client disconnects at end of input
    const { stdout } = await run;
    const names = String(stdout).split("Acceptable client certificate CA names")[1]?.split("\n---")[0] ?? "";
    assert.match(names, /Tessera Issuing CA/);
    assert.match(names, /Test Issuing CA/);
    assert.match(names, /Test Root/);
  });

  test('auth = "certificate": a bootstrap certificate enrolls; no certificate, Basic only or a foreign certificate are 403 (no Basic challenge)', async () => {
    const cert = oneCertificate(await post("factory/simpleenroll", csrOf("factory-device-9"), {}, bootstrap));
    assert.equal(formatName(cert.subject), "CN=factory-device-9");
    const audit = await server.authority.listAudit({ action: "certificate.issued", target: cert.serialHex });
    assert.match(audit[0]!.actor, /^device:est_[0-9a-f]+ via bootstrap:CN=factory-device-9$/);
    const other = await makeTestCa();
    const { privateKey } = generateKeyPair("ec-p256");
    const stranger = await issueTestLeaf(other, "stranger", privateKey);
    for (const [name, r] of [
      ["none", await post("factory/simpleenroll", csrOf("x1"))],
      ["basic", await post("factory/simpleenroll", csrOf("x2"), ALICE)],
      ["foreign", await post("factory/simpleenroll", csrOf("x3"), {}, { certPem: pemEncode("CERTIFICATE", stranger.der), keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string })],
    ] as const) {
      assert.equal(r.status, 403, `${name}: ${r.body}`);
      assert.equal(header(r, "WWW-Authenticate"), undefined);
    }
  });

  test('auth = "both": the bootstrap certificate alone gets the Basic challenge, Basic alone 403, both together enroll', async () => {
    const noBasic = await post("strict/simpleenroll", csrOf("s1"), {}, bootstrap);
    assert.equal(noBasic.status, 401);
    assert.equal(header(noBasic, "WWW-Authenticate"), 'Basic realm="tessera"');
    assert.equal((await post("strict/simpleenroll", csrOf("s2"), ALICE)).status, 403);
    const cert = oneCertificate(await post("strict/simpleenroll", csrOf("s3"), ALICE, bootstrap));
    const audit = await server.authority.listAudit({ action: "certificate.issued", target: cert.serialHex });
    assert.match(audit[0]!.actor, /via est-user:alice\+bootstrap:/);
  });

  test("a device certificate from Tessera's CA authenticates simpleenroll of its own subject only, and only under its label", async () => {
    const key = generateKeyPair("ec-p256").privateKey;
    const first = oneCertificate(await post("simpleenroll", csrOf("d1", key), ALICE));
    const device = { certPem: pemEncode("CERTIFICATE", first.der), keyPem: key.export({ type: "pkcs8", format: "pem" }) as string };
    const again = oneCertificate(await post("simpleenroll", csrOf("d1", key), {}, device));
    assert.equal(formatName(again.subject), "CN=d1");
    assert.equal((await server.authority.getCertificate(first.serialHex))?.status, "superseded", "a new lineage replaces the old one");
    const current = { certPem: pemEncode("CERTIFICATE", again.der), keyPem: device.keyPem };
    const other = await post("simpleenroll", csrOf("d1-someone-else"), {}, current);
    assert.equal(other.status, 403, "not for another name");
    const elsewhere = await post("approve/simpleenroll", csrOf("d1"), {}, current);
    assert.equal(elsewhere.status, 401, "another label: the certificate does not count, Basic is asked for");
  });

  test("a user scoped to one label is refused elsewhere with the Basic challenge", async () => {
    assert.equal((await post("simpleenroll", csrOf("b1"), basic("bob", "bob-pass"))).status, 401);
    assert.equal((await post("approve/simpleenroll", csrOf("b2"), basic("bob", "bob-pass"))).status, 202);
  });

  test("manual approval: 202 + Retry-After in seconds and an empty body until approved, then the certificate", async () => {
    const key = generateKeyPair("ec-p256").privateKey;
    const body = csrOf("waiting-1", key);
    const first = await post("approve/simpleenroll", body, ALICE);
    assert.equal(first.status, 202);
    assert.equal(header(first, "Retry-After"), "7");
    assert.equal(first.body.length, 0);
    assert.equal(header(first, "Content-Length"), "0");
    const again = await post("approve/simpleenroll", body, ALICE);
    assert.equal(again.status, 202);
    const pending = (await server.authority.devices.listRequests({ status: "pending", protocol: "est" })).filter((r) => r.subject === "CN=waiting-1");
    assert.equal(pending.length, 1, "the repeated request is recognised, not queued twice");
    await server.authority.devices.decide(pending[0]!.id, "approved", "test");
    const cert = oneCertificate(await post("approve/simpleenroll", body, ALICE));
    assert.ok(cert.spki.equals(parseCertificate(cert.der).spki));
    const decided = (await server.authority.devices.listRequests({ protocol: "est" })).find((r) => r.id === pending[0]!.id);
    assert.equal(decided?.certificateSerial, cert.serialHex);
  });

  test("csrattrs: a configured label answers RFC 7030's example bytes with Content-Transfer-Encoding", async () => {
    const r = await rawRequest(base, { path: "/.well-known/est/keygen/csrattrs", ca });
    assert.equal(r.status, 200);
    assert.equal(header(r, "Content-Type"), "application/csrattrs");
    assert.equal(header(r, "Content-Transfer-Encoding"), "base64");
    assert.equal(r.body.toString(), "MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJ\nBgcrBgEBAQEWBggqhkjOPQQDAw==\n");
  });

  test("serverkeygen: multipart/mixed with the PKCS#8 key first and the certs-only certificate; the CSR's key and signature are ignored", async () => {
    const san = { oid: ExtOid.subjectAltName, critical: false, value: encodeGeneralNames([{ type: "dns", value: "kg.example" }]) };
    const der = buildCsr({ subject: [{ type: "CN", value: "keygen-1" }], privateKey: generateKeyPair("ec-p256").privateKey, extensions: [san] });
    der[der.length - 1] = der[der.length - 1]! ^ 0x5a; // a broken signature does not matter here (§4.4.1)
    const r = await post("keygen/serverkeygen", encodeBase64Lines(der), ALICE);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(header(r, "Content-Type"), "multipart/mixed; boundary=tessera-est-boundary");
    assert.equal(header(r, "Content-Transfer-Encoding"), undefined, "no CTE on the multipart top level");
    const text = r.body.toString("latin1");
    assert.ok(!/[^\r]\n/.test(text), "CRLF lines only");
    const parts = text.split("--tessera-est-boundary");
    assert.equal(parts.length, 4);
    assert.equal(parts[0], "");
    assert.equal(parts[3], "--\r\n");
    const [keyHead, keyBody] = parts[1]!.split("\r\n\r\n") as [string, string];
    const [certHead, certBody] = parts[2]!.split("\r\n\r\n") as [string, string];
    assert.equal(keyHead, "\r\nContent-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64");
    assert.equal(certHead, "\r\nContent-Type: application/pkcs7-mime; smime-type=certs-only\r\nContent-Transfer-Encoding: base64");
    const key = createPrivateKey({ key: decodeBase64Lenient(keyBody), format: "der", type: "pkcs8" });
    const certs = readCmsCertificates(decodeBase64Lenient(certBody));
    assert.equal(certs.length, 1);
    const cert = parseCertificate(certs[0]!);
    assert.ok(keysMatch(key, certificatePublicKey(cert)));
    assert.equal(keyInfo(key).curve, "P-384", "the label's key type");
    assert.equal(formatName(cert.subject), "CN=keygen-1");
    assert.deepEqual(certificateSans(cert).map(formatSan), ["DNS:kg.example"]);
  });

  test("serverkeygen refuses encrypted key delivery with 400 text", async () => {
    const decryptKeyId = { oid: "1.2.840.113549.1.9.16.2.37", values: [tlv(Tag.OCTET_STRING, Buffer.from("kek-1"))] };
    const r = await post("keygen/serverkeygen", csrOf("keygen-2", undefined, [decryptKeyId]), ALICE);
    assert.equal(r.status, 400);
    assert.match(r.body.toString(), /encrypted/);
  });

  test("a challengePassword on a TLS 1.3 connection cannot be linked: 400", async () => {
    const r = await post("simpleenroll", csrOf("tls13", undefined, [challengePasswordAttribute("AAAAAAAAAAAAAAAA")]), ALICE);
    assert.equal(r.status, 400);
    assert.match(r.body.toString(), /TLS 1\.2/);
  });
});

describe("tls-unique linking on a TLS 1.2 listener", () => {
  let server: RunningServer;
  let base: string;
  let ca: string;
  before(async () => {
    ({ server, base } = await estServer((c) => {
      c.listeners[0]!.maxTls = "1.2";
      c.est.labels["linked"] = { ...c.est.default, tlsUnique: true };
    }));
    ca = server.authority.chainPem();
  });
  after(() => server.close(100));

  /** Enrolls with a CSR whose challengePassword is computed from the live connection (`pw` maps the true tls-unique). */
  const enroll = (label: string, cn: string, pw?: (tlsUnique: string) => string) =>
    rawRequest(base, {
      method: "POST", path: `/.well-known/est/${label}simpleenroll`, ca, headers: { ...pkcs10, ...ALICE },
      onSecure: (s) => {
        // Full handshake: the client's Finished is the first one (RFC 5929 §3.1).
        const unique = s.getFinished()!.toString("base64");
        return csrOf(cn, undefined, pw ? [challengePasswordAttribute(pw(unique))] : []);
      },
    });

  test("csrattrs announces challengePassword exactly as libest's server does", async () => {
    const r = await rawRequest(base, { path: "/.well-known/est/linked/csrattrs", ca });
    assert.equal(r.protocol, "TLSv1.2");
    assert.equal(r.body.toString(), "MAsGCSqGSIb3DQEJBw==\n");
  });

  test("the right tls-unique enrolls; a wrong one or none (where required) is 400", async () => {
    const ok = await enroll("linked/", "linked-1", (u) => u);
    assert.equal(ok.protocol, "TLSv1.2");
    oneCertificate(ok);
    const wrong = await enroll("linked/", "linked-2", () => "AAAAAAAAAAAAAAAA");
    assert.equal(wrong.status, 400);
    assert.match(wrong.body.toString(), /mismatch/);
    const missing = await enroll("linked/", "linked-3");
    assert.equal(missing.status, 400);
    // Unlinked path: a matching challengePassword is accepted, a wrong one still refused.
    oneCertificate(await enroll("", "plain-1", (u) => u));
    assert.equal((await enroll("", "plain-2", () => "AAAAAAAAAAAAAAAA")).status, 400);
  });
});
