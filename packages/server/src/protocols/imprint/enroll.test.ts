import "reflect-metadata";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  buildCsr, certificatePublicKey, certificateSans, extendedKeyUsages, formatName, generateKeyPair, parseCertificate, pemDecodeAll,
  pemEncode, spkiDer, verifyCertificateSignature, basicConstraints, ExtOid,
} from "@tessera/pki";
import type { RunningServer } from "../../server.js";
import { request } from "../../test-support.js";
import { addSecret, csrPem, HandDevice, imprintServer, post } from "./test-kit.js";

const SERVER_ID_RE = /^srv_[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/;

describe("imprint enroll", () => {
  let server: RunningServer;
  let secret: string;
  before(async () => ({ server, secret } = await imprintServer()));
  after(() => server.close(100));

  test("a valid enrollment answers 200 with exactly the three keys and the §6 certificate", async () => {
    const key = generateKeyPair("ec-p256").privateKey;
    const r = await post(server, "/api/v1/enroll", { build_secret: secret, fingerprint: "sha256:aa", hostname: "h", os: "linux", arch: "arm64", csr: csrPem(key, "h") });
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/json");
    assert.ok(r.text.endsWith("}\n"));
    assert.deepEqual(Object.keys(JSON.parse(r.text)), ["server_id", "certificate", "ca_certificate"]);
    const j = JSON.parse(r.text) as { server_id: string; certificate: string; ca_certificate: string };
    assert.match(j.server_id, SERVER_ID_RE);
    const cert = parseCertificate(j.certificate);
    assert.equal(formatName(cert.subject), `CN=${j.server_id},O=Tessera`);
    assert.deepEqual(certificateSans(cert), [{ type: "uri", value: `imprint://server/${j.server_id}` }]);
    assert.deepEqual(extendedKeyUsages(cert), ["1.3.6.1.5.5.7.3.2"]);
    assert.equal(basicConstraints(cert), undefined, "no basicConstraints, as the original");
    assert.equal(cert.extensions.find((e) => e.oid === ExtOid.keyUsage)?.critical, true);
    assert.ok(spkiDer(key).equals(cert.spki), "carries the CSR's key");
    const life = cert.notAfter.getTime() - cert.notBefore.getTime();
    assert.equal(life, 365 * 86_400_000 + 5 * 60_000);
    const ca = pemDecodeAll(j.ca_certificate).map((b) => parseCertificate(b.der));
    assert.ok(ca.some((c) => c.subject.equals(cert.issuer) && verifyCertificateSignature(cert, certificatePublicKey(c))), "chains to ca_certificate");
    const stored = await server.authority.getCertificate(cert.serialHex);
    assert.equal(stored?.deviceId, j.server_id);
    const device = await server.authority.devices.get(j.server_id);
    assert.equal(device?.fingerprint, "sha256:aa");
    assert.deepEqual(device?.attributes, { hostname: "h", os: "linux", arch: "arm64" });
    assert.equal(device?.lastIp, "127.0.0.1");
  });

  test("a wrong build secret is 401 unauthorized (even with a bad CSR); any active secret is accepted", async () => {
    for (const csr of ["x", csrPem(generateKeyPair().privateKey, "h")]) {
      const r = await post(server, "/api/v1/enroll", { build_secret: "wrong", fingerprint: "f", csr });
      assert.equal(r.status, 401);
      assert.equal(r.headers["content-type"], "text/plain; charset=utf-8");
      assert.equal(r.headers["x-content-type-options"], "nosniff");
      assert.equal(r.text, "unauthorized\n");
    }
    await addSecret(server, "second-secret");
    assert.equal((await new HandDevice(server).enroll("second-secret")).status, 200);
    assert.equal((await new HandDevice(server).enroll(secret)).status, 200);
  });

  test("expired, exhausted and revoked secrets are refused like a wrong one; a use is spent only on issuance", async () => {
    await addSecret(server, "expired", { expiresAt: new Date(Date.now() - 1000) });
    await addSecret(server, "revoked", { revokedAt: new Date() });
    const once = await addSecret(server, "once", { maxUses: 1 });
    for (const s of ["expired", "revoked"]) assert.equal((await new HandDevice(server).enroll(s)).text, "unauthorized\n");
    assert.equal((await post(server, "/api/v1/enroll", { build_secret: "once", fingerprint: "f-once", csr: "x" })).text, "invalid CSR\n");
    assert.equal((await new HandDevice(server).enroll("once")).status, 200, "the bad CSR did not spend the only use");
    assert.equal((await server.store.getCredential(once.id))?.useCount, 1);
    const r = await new HandDevice(server).enroll("once");
    assert.equal(r.status, 401);
    assert.equal(r.text, "unauthorized\n");
  });

  test("missing fields and null are 400 with the spec's text; undecodable bodies are 400 invalid request body", async () => {
    const missing = "missing required fields: build_secret, fingerprint, csr\n";
    for (const body of ["null", "{}", JSON.stringify({ build_secret: secret, fingerprint: "f" }), JSON.stringify({ build_secret: secret, csr: "x", fingerprint: null })]) {
      const r = await post(server, "/api/v1/enroll", body);
      assert.deepEqual([r.status, r.text], [400, missing], body);
    }
    for (const body of ["", "hello", '{"build_secret":1}', "[1]", '{"csr":"x"', "\ufeff{}", JSON.stringify({ build_secret: "x".repeat(70_000) })]) {
      const r = await post(server, "/api/v1/enroll", body);
      assert.deepEqual([r.status, r.text], [400, "invalid request body\n"], body.slice(0, 20));
    }
  });

  test("keys match case-insensitively, unknown keys and trailing bytes are ignored", async () => {
    const key = generateKeyPair().privateKey;
    const body = JSON.stringify({ BUILD_SECRET: secret, Fingerprint: "sha256:case", extra: { nested: [1] }, CSR: csrPem(key, "") }) + " trailing {garbage";
    const r = await post(server, "/api/v1/enroll", body);
    assert.equal(r.status, 200, r.text);
  });

  test("bad CSRs are 400 invalid CSR and create nothing: garbage, a broken signature (W9), an RSA key (W10)", async () => {
    const good = buildCsr({ subject: [{ type: "CN", value: "h" }], privateKey: generateKeyPair().privateKey });
    const broken = Buffer.from(good);
    broken[broken.length - 5]! ^= 0xff;
    const rsa = csrPem(generateKeyPair("rsa-2048").privateKey, "h");
    const before = (await server.authority.devices.list()).length;
    for (const csr of ["x", pemEncode("CERTIFICATE REQUEST", broken), rsa, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"]) {
      const r = await post(server, "/api/v1/enroll", { build_secret: secret, fingerprint: `sha256:bad-${csr.length}`, csr });
      assert.deepEqual([r.status, r.text], [400, "invalid CSR\n"]);
    }
    assert.equal((await server.authority.devices.list()).length, before, "no device row was written");
  });

  test("the CSR's first PEM block is used whatever its label, after leading text", async () => {
    const pem = csrPem(generateKeyPair().privateKey, "h").replaceAll("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST");
    const r = await post(server, "/api/v1/enroll", { build_secret: secret, fingerprint: "sha256:label", csr: "some text\n" + pem });
    assert.equal(r.status, 200, r.text);
  });

  test("other methods are 405 method not allowed with Allow: POST", async () => {
    for (const method of ["GET", "PUT", "DELETE"]) {
      const r = await request(server, "/api/v1/enroll", { method });
      assert.deepEqual([r.status, r.text, r.headers.allow], [405, "method not allowed\n", "POST"]);
    }
  });

  test("the same fingerprint twice keeps the server_id; the first certificate is then refused on /renew", async () => {
    const d = new HandDevice(server);
    assert.equal((await d.enroll(secret)).status, 200);
    const first = { id: d.serverId, cert: d.cert, key: d.key };
    assert.equal((await d.enroll(secret)).status, 200);
    assert.equal(d.serverId, first.id);
    assert.notEqual(d.cert, first.cert);
    const old = await post(server, "/api/v1/renew", { csr: csrPem(generateKeyPair().privateKey, first.id) }, { cert: first.cert, key: first.key });
    assert.deepEqual([old.status, old.text], [401, "unauthorized\n"]);
    const oldSerial = parseCertificate(first.cert).serialHex;
    assert.equal((await server.authority.getCertificate(oldSerial))?.status, "revoked", "re-enrollment revokes the previous lineage by default");
  });

  test("concurrent enrollments of one new fingerprint yield one lineage", async () => {
    const fingerprint = "sha256:concurrent";
    const results = await Promise.all(Array.from({ length: 6 }, () => new HandDevice(server, fingerprint).enroll(secret)));
    const ok = results.filter((r) => r.status === 200);
    assert.ok(ok.length >= 1);
    for (const r of results.filter((x) => x.status !== 200)) assert.equal(r.status, 409, r.text);
    const device = await server.authority.devices.findByFingerprint(fingerprint);
    assert.ok(device);
    const valid = await server.authority.listCertificates({ deviceId: device.id, status: "valid" });
    assert.equal(valid.length, 1, "exactly one valid certificate");
    assert.equal(valid[0]?.serial, device.currentSerial);
  });
});
