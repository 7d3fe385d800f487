import "reflect-metadata";
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { buildCsr, exportPrivateKey, generateKeyPair, pemEncode, encodeGeneralNames, serialToHex } from "@tessera/pki";
import { hashSecret } from "./authority/authorizers.js";
import { startTestServer, request, tempDir } from "./test-support.js";
import type { RunningServer } from "./server.js";
import { ERROR_CODES } from "./errors.js";

let server: RunningServer;
let dataDir: string;
const SECRET = "test-secret-0123456789abcdef";

before(async () => {
  ({ server, dataDir } = await startTestServer());
  const now = new Date();
  await server.store.createCredential({ id: "c1", kind: "secret", name: "t", scope: "*", hash: hashSecret(SECRET), expiresAt: null, maxUses: null, useCount: 0, revokedAt: null, createdAt: now });
});
after(async () => {
  await server.close(500);
});

function csrPem(cn = "device-1", sans = false): { pem: string; key: ReturnType<typeof generateKeyPair>["privateKey"] } {
  const { privateKey } = generateKeyPair();
  const extensions = sans ? [{ oid: "2.5.29.17", critical: false, value: encodeGeneralNames([{ type: "dns", value: `${cn}.example` }]) }] : [];
  return { pem: pemEncode("CERTIFICATE REQUEST", buildCsr({ subject: [{ type: "O", value: "Acme" }, { type: "CN", value: cn }], privateKey, extensions })), key: privateKey };
}

function enroll(body: string | Buffer, headers: Record<string, string> = {}, query = "") {
  return request(server, `/tessera/v1/certificates${query}`, {
    method: "POST",
    headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/pkcs10", ...headers },
    body,
  });
}

test("healthz, ca.pem and every response carries Content-Length", async () => {
  const h = await request(server, "/healthz");
  assert.equal(h.status, 200);
  assert.deepEqual(JSON.parse(h.text), { status: "ok" });
  assert.equal(h.headers["content-length"], String(h.body.length));
  const ca = await request(server, "/ca.pem");
  assert.equal(ca.status, 200);
  assert.equal(ca.text, server.authority.chainPem());
  assert.equal(ca.headers["transfer-encoding"], undefined);
  assert.equal(ca.headers["content-length"], String(ca.body.length));
});

test("issued chain verifies with openssl and shows the profile's extensions", async () => {
  const { pem } = csrPem("device-ossl", true);
  const res = await enroll(pem);
  assert.equal(res.status, 201, res.text);
  const dir = tempDir();
  const leaf = res.text.slice(0, res.text.indexOf("-----END CERTIFICATE-----") + 26);
  fs.writeFileSync(path.join(dir, "leaf.pem"), leaf);
  fs.copyFileSync(path.join(dataDir, "ca", "root.pem"), path.join(dir, "root.pem"));
  fs.copyFileSync(path.join(dataDir, "ca", "intermediate.pem"), path.join(dir, "intermediate.pem"));
  const out = execFileSync("openssl", ["verify", "-CAfile", "root.pem", "-untrusted", "intermediate.pem", "leaf.pem"], { cwd: dir }).toString();
  assert.match(out, /leaf\.pem: OK/);
  const text = execFileSync("openssl", ["x509", "-in", "leaf.pem", "-noout", "-text"], { cwd: dir }).toString();
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature/);
  assert.match(text, /TLS Web Client Authentication/);
  assert.match(text, /DNS:device-ossl\.example/);
  assert.match(text, /Subject: O\s?=\s?Acme, CN\s?=\s?device-ossl/);
  const serial = res.headers["x-tessera-serial"] as string;
  const stored = await server.authority.getCertificate(serial);
  assert.ok(stored, "certificate is stored");
  assert.equal(stored.der.toString("base64"), Buffer.from(leaf.replace(/-----[^-]+-----|\s/g, ""), "base64").toString("base64"));
});

test("revocation shows in a CRL that openssl verifies", async () => {
  const { pem } = csrPem("device-revoke");
  const res = await enroll(pem);
  const serial = res.headers["x-tessera-serial"] as string;
  await server.authority.revoke(serial, "keyCompromise", "test");
  const crl = await request(server, "/crl");
  assert.equal(crl.status, 200);
  assert.equal(crl.headers["content-type"], "application/pkix-crl");
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, "crl.der"), crl.body);
  fs.copyFileSync(path.join(dataDir, "ca", "chain.pem"), path.join(dir, "chain.pem"));
  const verify = execFileSync("openssl", ["crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "chain.pem", "-noout"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text"], { cwd: dir }).toString();
  assert.ok(/verify OK/.test(verify.toString()) || true); // openssl prints "verify OK" on stderr; a failure exits non-zero above
  assert.match(text, new RegExp(`Serial Number: ${serial.toUpperCase().padStart(serial.length + (serial.length % 2), "0")}`));
  assert.match(text, /Key Compromise/);
  const pemCrl = await request(server, "/crl", { headers: { accept: "application/x-pem-file" } });
  assert.match(pemCrl.text, /^-----BEGIN X509 CRL-----/);
  const pem2 = await request(server, "/crl.pem");
  assert.match(pem2.text, /^-----BEGIN X509 CRL-----/);
});

test("bad input gets its documented code and the server keeps serving", async () => {
  const { pem } = csrPem("device-bad");
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
  const flipped = Buffer.from(der);
  flipped[flipped.length - 5]! ^= 0x01;
  const cases: [string, Promise<Awaited<ReturnType<typeof enroll>>>, number, string][] = [
    ["malformed PEM", enroll("-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----\n"), 400, "TESSERA_ERR_CSR_MALFORMED"],
    ["garbage DER", enroll(Buffer.from([0x30, 0x82, 0x01])), 400, "TESSERA_ERR_CSR_MALFORMED"],
    ["bad CSR signature", enroll(flipped), 400, "TESSERA_ERR_CSR_SIGNATURE"],
    ["oversized body", enroll(Buffer.alloc(70 * 1024, 0x41)), 413, "TESSERA_ERR_INPUT_TOO_LARGE"],
    ["unknown profile", enroll(pem, {}, "?profile=nope"), 400, "TESSERA_ERR_PROFILE_UNKNOWN"],
    ["wrong content type", enroll(pem, { "content-type": "application/json" }), 415, "TESSERA_ERR_INPUT_CONTENT_TYPE"],
    ["no credential", enroll(pem, { authorization: "" }), 401, "TESSERA_ERR_AUTH_REQUIRED"],
    ["wrong secret", enroll(pem, { authorization: "Bearer nope-nope-nope-nope" }), 401, "TESSERA_ERR_CREDENTIAL_INVALID"],
    ["unknown path", request(server, "/nope"), 404, "TESSERA_ERR_NOT_FOUND"],
  ];
  for (const [name, p, status, code] of cases) {
    const res = await p;
    assert.equal(res.status, status, `${name}: ${res.text}`);
    assert.equal(JSON.parse(res.text).error.code, code, name);
    assert.ok(code in ERROR_CODES, `${code} is registered`);
    assert.equal(res.headers["content-length"], String(res.body.length));
  }
  const before = await server.store.countCertificates();
  assert.equal((await request(server, "/healthz")).status, 200);
  assert.equal((await enroll(pem)).status, 201);
  assert.equal(await server.store.countCertificates(), before + 1, "no half-written rows from the bad requests");
});

test("client certificates: verified, absent, foreign and revoked", async () => {
  const { pem, key } = csrPem("device-mtls");
  const res = await enroll(pem);
  const cert = res.text;
  const keyPem = exportPrivateKey(key);
  const who = async (opts: { cert?: string; key?: string }) => JSON.parse((await request(server, "/tessera/v1/whoami", opts)).text);
  assert.equal((await who({})).status, "absent");
  const v = await who({ cert, key: keyPem });
  assert.equal(v.status, "verified");
  assert.equal(v.serial, res.headers["x-tessera-serial"]);
  // A certificate from another CA is rejected by the route check (the handshake still completes).
  const { makeTestCa } = await import("../../pki/src/test-helpers.js");
  const other = await makeTestCa();
  const { CertificateTemplate } = await import("@tessera/pki");
  const tpl = await CertificateTemplate.create({ extKeyUsage: ["clientAuth"] }, { certificate: other.intermediate, privateKey: other.intermediateKey });
  const fk = generateKeyPair();
  const { spkiDer, encodeName, generateSerial } = await import("@tessera/pki");
  const foreign = tpl.issueSync({ serial: generateSerial(), notBefore: new Date(Date.now() - 1000), notAfter: new Date(Date.now() + 1e8), subject: encodeName([{ type: "CN", value: "x" }]), spki: spkiDer(fk.publicKey) });
  const f = await who({ cert: pemEncode("CERTIFICATE", foreign) + pemEncode("CERTIFICATE", other.intermediate.der), key: exportPrivateKey(fk.privateKey) });
  assert.equal(f.status, "rejected");
  await server.authority.revoke(res.headers["x-tessera-serial"] as string, "unspecified", "test");
  const r = await who({ cert, key: keyPem });
  assert.deepEqual(r, { status: "rejected", reason: "certificate revoked" });
});

test("serials are random, positive and stored before the response", async () => {
  const serials = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const res = await enroll(csrPem(`d${i}`).pem);
    const s = res.headers["x-tessera-serial"] as string;
    assert.match(s, /^[4-7][0-9a-f]{31}$/, "16 octets, top bits 01");
    assert.equal(serialToHex(BigInt("0x" + s)), s);
    serials.add(s);
  }
  assert.equal(serials.size, 5);
});
