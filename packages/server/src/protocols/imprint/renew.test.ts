import "reflect-metadata";
import assert from "node:assert/strict";
import { sign } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { buildCsr, generateKeyPair, parseCertificate, pemEncode, CertificateTemplate, generateSerial, encodeName, spkiDer } from "@tessera/pki";
import { makeTestCa } from "../../../../pki/src/test-helpers.js";
import type { RunningServer } from "../../server.js";
import type { TestClock } from "../../test-support.js";
import { request } from "../../test-support.js";
import { csrPem, DAYS, HandDevice, imprintServer, post, proofFor } from "./test-kit.js";

const FAILED = "challenge renewal failed\n";

describe("imprint tier-1 renewal (/api/v1/renew)", () => {
  let server: RunningServer;
  let secret: string;
  before(async () => ({ server, secret } = await imprintServer()));
  after(() => server.close(100));

  test("renews over mTLS: same server_id, new serial, X-Imprint-Cert-Expires of the old certificate; the old one is then refused", async () => {
    const d = new HandDevice(server);
    await d.enroll(secret);
    const old = { cert: d.cert, key: d.key, serial: parseCertificate(d.cert).serialHex, notAfter: parseCertificate(d.cert).notAfter };
    const r = await d.renew();
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers["x-imprint-cert-expires"], old.notAfter.toISOString().replace(/\.\d{3}Z$/, "Z"));
    assert.equal(JSON.parse(r.text).server_id, d.serverId);
    assert.notEqual(parseCertificate(d.cert).serialHex, old.serial);
    assert.equal((await server.authority.getCertificate(old.serial))?.status, "superseded");
    const device = await server.authority.devices.get(d.serverId);
    assert.equal(device?.currentSerial, parseCertificate(d.cert).serialHex);
    const again = await post(server, "/api/v1/renew", { csr: csrPem(generateKeyPair().privateKey, d.serverId) }, old);
    assert.deepEqual([again.status, again.text], [401, "unauthorized\n"]);
  });

  test("without a client certificate: 401 client certificate required (also for GET); with one, GET is 405", async () => {
    for (const method of ["POST", "GET"]) {
      const r = await request(server, "/api/v1/renew", { method, body: method === "POST" ? "{}" : undefined });
      assert.deepEqual([r.status, r.text], [401, "client certificate required\n"]);
    }
    const d = new HandDevice(server);
    await d.enroll(secret);
    const r = await request(server, "/api/v1/renew", { method: "GET", cert: d.cert, key: d.key.export({ type: "pkcs8", format: "pem" }) as string });
    assert.deepEqual([r.status, r.text], [405, "method not allowed\n"]);
  });

  test("bad bodies: {} is 400 missing required field: csr; a bad CSR is 400 invalid CSR", async () => {
    const d = new HandDevice(server);
    await d.enroll(secret);
    const tls = { cert: d.cert, key: d.key };
    const empty = await post(server, "/api/v1/renew", {}, tls);
    assert.deepEqual([empty.status, empty.text], [400, "missing required field: csr\n"]);
    const bad = await post(server, "/api/v1/renew", { csr: "x" }, tls);
    assert.deepEqual([bad.status, bad.text], [400, "invalid CSR\n"]);
    const junk = await post(server, "/api/v1/renew", "nope", tls);
    assert.deepEqual([junk.status, junk.text], [400, "invalid request body\n"]);
  });

  test("refused with 401 unauthorized: a foreign CA's certificate with the same CN, a revoked certificate, a revoked device", async () => {
    const d = new HandDevice(server);
    await d.enroll(secret);
    const foreign = await makeTestCa();
    const tpl = await CertificateTemplate.create({ keyUsage: ["digitalSignature"], extKeyUsage: ["clientAuth"] }, { certificate: foreign.intermediate, privateKey: foreign.intermediateKey });
    const fk = generateKeyPair().privateKey;
    const now = Date.now();
    const fder = await tpl.issue({ serial: generateSerial({ kind: "random" }), notBefore: new Date(now - 60_000), notAfter: new Date(now + DAYS), subject: encodeName([{ type: "CN", value: d.serverId }]), spki: spkiDer(fk) });
    const r1 = await post(server, "/api/v1/renew", { csr: csrPem(generateKeyPair().privateKey, d.serverId) }, { cert: pemEncode("CERTIFICATE", fder), key: fk });
    assert.deepEqual([r1.status, r1.text], [401, "unauthorized\n"]);

    await server.authority.revoke(parseCertificate(d.cert).serialHex, "keyCompromise", "test");
    assert.deepEqual([(await d.renew()).status], [401]);

    const d2 = new HandDevice(server);
    await d2.enroll(secret);
    await server.authority.revokeDevice(d2.serverId, "cessationOfOperation", "test");
    const r3 = await d2.renew();
    assert.deepEqual([r3.status, r3.text], [401, "unauthorized\n"]);
    const re = await d2.enroll(secret);
    assert.deepEqual([re.status, re.text], [403, "enrollment denied\n"], "a revoked device cannot re-enroll by default (W1)");
  });

  test("an expired certificate is refused on /renew", async () => {
    const { server: s2, clock, secret: sec } = await imprintServer();
    try {
      const d = new HandDevice(s2);
      await d.enroll(sec);
      clock.advance(366 * DAYS);
      const r = await d.renew();
      assert.deepEqual([r.status, r.text], [401, "unauthorized\n"]);
    } finally {
      await s2.close(100);
    }
  });
});

describe("imprint tier-2 challenge renewal (/api/v1/renew/challenge)", () => {
  let server: RunningServer;
  let clock: TestClock;
  let secret: string;
  before(async () => ({ server, clock, secret } = await imprintServer()));
  after(() => server.close(100));

  async function expiredDevice(keyType: "ec-p256" | "ed25519" = "ec-p256"): Promise<HandDevice> {
    const d = new HandDevice(server, undefined, keyType);
    assert.equal((await d.enroll(secret)).status, 200);
    return d;
  }

  test("an expired ECDSA certificate with a valid proof renews; the byte-identical replay is refused", async () => {
    const start = clock.offsetMs;
    const d = await expiredDevice();
    clock.advance(366 * DAYS);
    let sent: Record<string, string> = {};
    const r = await d.challenge((b) => void (sent = { ...b }));
    assert.equal(r.status, 200, r.text);
    assert.equal(JSON.parse(r.text).server_id, d.serverId);
    const replay = await post(server, "/api/v1/renew/challenge", sent);
    assert.deepEqual([replay.status, replay.text], [401, FAILED]);
    clock.offsetMs = start;
  });

  test("Ed25519: the proof signs the 32-byte digest", async () => {
    const start = clock.offsetMs;
    const d = await expiredDevice("ed25519");
    clock.advance(366 * DAYS);
    const r = await d.challenge();
    assert.equal(r.status, 200, r.text);
    clock.offsetMs = start;
  });

  test("every authentication failure is the same 401 challenge renewal failed", async () => {
    const start = clock.offsetMs;
    const d = await expiredDevice();
    const other = await expiredDevice();
    clock.advance(366 * DAYS);
    const otherKey = generateKeyPair().privateKey;
    const cases: Record<string, (b: Record<string, string>) => void> = {
      "bad cert PEM": (b) => void (b.expired_cert = "junk"),
      "CN differs from server_id": (b) => void (b.server_id = other.serverId),
      "wrong fingerprint": (b) => void (b.fingerprint = "sha256:other"),
      "proof from another key": (b) => void (b.proof = proofFor(otherKey, b.server_id!, b.fingerprint!, b.csr!)),
      "proof for another CSR": (b) => void (b.csr = csrPem(generateKeyPair().privateKey, d.serverId)),
      "unpadded proof": (b) => {
        // DER ECDSA signatures vary in length; sign until the base64 has padding to strip.
        let p = b.proof!;
        while (!p.endsWith("=")) p = proofFor(d.key, b.server_id!, b.fingerprint!, b.csr!);
        b.proof = p.replace(/=+$/, "");
      },
      "not base64": (b) => void (b.proof = "%%%"),
      "raw r||s (P1363) signature": (b) => {
        const m = Buffer.from(`${b.server_id}\n${b.fingerprint}\n${b.csr}`);
        b.proof = sign("sha256", m, { key: d.key, dsaEncoding: "ieee-p1363" }).toString("base64");
      },
      "another device's certificate": (b) => void (b.expired_cert = other.cert),
    };
    for (const [name, tamper] of Object.entries(cases)) {
      const r = await d.challenge(tamper);
      assert.deepEqual([r.status, r.text], [401, FAILED], name);
    }
    const missing = await post(server, "/api/v1/renew/challenge", { server_id: d.serverId });
    assert.deepEqual([missing.status, missing.text], [400, "missing required fields\n"]);
    clock.offsetMs = start;
  });

  test("outside the window (30 days after expiry) is refused; a superseded or revoked certificate is refused", async () => {
    const start = clock.offsetMs;
    const late = await expiredDevice();
    const superseded = await expiredDevice();
    const oldCert = superseded.cert;
    const oldKey = superseded.key;
    assert.equal((await superseded.renew()).status, 200);
    const revoked = await expiredDevice();
    await server.authority.revoke(parseCertificate(revoked.cert).serialHex, "keyCompromise", "test");
    clock.advance(365 * DAYS + 32 * DAYS);
    assert.equal((await late.challenge()).text, FAILED, "beyond the window");
    clock.offsetMs = start;
    clock.advance(366 * DAYS);
    superseded.cert = oldCert;
    superseded.key = oldKey;
    assert.equal((await superseded.challenge()).text, FAILED, "superseded");
    assert.equal((await revoked.challenge()).text, FAILED, "revoked");
    clock.offsetMs = start;
  });

  test("challenge_window = 0 really disables challenge renewal (W11)", async () => {
    const { server: s2, clock: c2, secret: sec } = await imprintServer((c) => void (c.imprint.challengeWindow = 0));
    try {
      const d = new HandDevice(s2);
      await d.enroll(sec);
      c2.advance(366 * DAYS);
      assert.equal((await d.challenge()).text, FAILED);
    } finally {
      await s2.close(100);
    }
  });

  test("a CSR with a broken signature is 400 invalid CSR, not 500 (W9)", async () => {
    const start = clock.offsetMs;
    const d = await expiredDevice();
    clock.advance(366 * DAYS);
    const der = buildCsr({ subject: [{ type: "CN", value: d.serverId }], privateKey: generateKeyPair().privateKey });
    der[der.length - 4]! ^= 0xff;
    const r = await d.challenge((b) => {
      b.csr = pemEncode("CERTIFICATE REQUEST", der);
      b.proof = proofFor(d.key, b.server_id!, b.fingerprint!, b.csr);
    });
    assert.deepEqual([r.status, r.text], [400, "invalid CSR\n"]);
    clock.offsetMs = start;
  });
});
