/**
 * Tessera's own EST client (packages/client) against Tessera's EST server:
 * bootstrap by the root fingerprint the server prints, cacerts, csrattrs,
 * enroll with Basic, re-enroll and rekey over mTLS, serverkeygen, and a
 * manual approval the client waits out through 202 + Retry-After.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { bootstrapCacerts, EstClient, EstError } from "@tessera/client";
import type { KeyObject } from "node:crypto";
import { buildCsr, certificatePublicKey, formatName, generateKeyPair, keysMatch, sha256Hex } from "@tessera/pki";
import type { RunningServer } from "../../server.js";
import { estServer } from "./test-kit.js";

let server: RunningServer;
let base: string;
let anchors: string;

before(async () => {
  ({ server, base } = await estServer((c) => {
    c.est.labels["approve"] = { ...c.est.default, mode: "manual", retryAfter: 1 };
  }));
  anchors = server.authority.chainPem();
});
after(() => server.close(100));

const csr = (cn: string, key: KeyObject) => buildCsr({ subject: [{ type: "CN", value: cn }], privateKey: key });
const alice = { username: "alice", password: "s3cret-pass" };

test("bootstrap by the printed root fingerprint, then cacerts with explicit trust anchors", async () => {
  const boot = await bootstrapCacerts({ url: base, fingerprint: sha256Hex(server.authority.ca.root.der).toUpperCase().replace(/(..)(?!$)/g, "$1:") });
  assert.equal(boot.trustAnchor.sha256, sha256Hex(server.authority.ca.root.der));
  await assert.rejects(bootstrapCacerts({ url: base, fingerprint: "00".repeat(32) }), EstError);
  const est = new EstClient({ url: base, trustAnchors: boot.pem });
  const bag = await est.cacerts();
  assert.equal(bag.certificates.length, 2);
  assert.equal(bag.chain.length, 1);
  assert.equal(formatName(bag.chain[0]!.certificate.subject), "CN=Tessera Issuing CA,O=Tessera");
  assert.deepEqual(await est.csrattrs(), []);
});

test("enroll (the client answers the 401 with Basic), re-enroll with the same key, rekey; the server keeps one lineage", async () => {
  const key = generateKeyPair("ec-p256").privateKey;
  const est = new EstClient({ url: base, trustAnchors: anchors, basic: alice });
  const first = await est.simpleEnroll(csr("sdk-device", key));
  assert.equal(formatName(first.certificate.subject), "CN=sdk-device");
  const keyPem = key.export({ type: "pkcs8", format: "pem" }) as string;
  const renewed = await new EstClient({ url: base, trustAnchors: anchors, clientCertificate: { cert: first.pem, key: keyPem } }).simpleReenroll(csr("sdk-device", key));
  assert.notEqual(renewed.certificate.serialHex, first.certificate.serialHex);
  const newKey = generateKeyPair("ed25519").privateKey;
  const rekeyed = await new EstClient({ url: base, trustAnchors: anchors, clientCertificate: { cert: renewed.pem, key: keyPem } }).simpleReenroll(csr("sdk-device", newKey));
  assert.ok(keysMatch(newKey, certificatePublicKey(rekeyed.certificate)));
  const statuses = await Promise.all([first, renewed, rekeyed].map(async (c) => (await server.authority.getCertificate(c.certificate.serialHex))?.status));
  assert.deepEqual(statuses, ["superseded", "superseded", "valid"]);
  // The superseded certificate can no longer re-enroll: a typed refusal with the server's text.
  const stale = new EstClient({ url: base, trustAnchors: anchors, clientCertificate: { cert: first.pem, key: keyPem } });
  await assert.rejects(stale.simpleReenroll(csr("sdk-device", key)), (err: unknown) => err instanceof EstError && err.kind === "forbidden" && err.status === 403);
});

test("serverkeygen returns a key that matches its certificate", async () => {
  const est = new EstClient({ url: base, trustAnchors: anchors, basic: alice });
  const r = await est.serverKeygen(csr("sdk-keygen", generateKeyPair("ec-p256").privateKey));
  assert.ok(keysMatch(r.privateKey, certificatePublicKey(r.certificate.certificate)));
  assert.equal(formatName(r.certificate.certificate.subject), "CN=sdk-keygen");
});

test("manual approval: the client waits through 202 + Retry-After until an operator approves", async () => {
  let waits = 0;
  const est = new EstClient({
    url: base, label: "approve", trustAnchors: anchors, basic: alice, maxWaitMs: 60_000,
    sleep: async (ms) => {
      waits++;
      assert.equal(ms, 1000, "Retry-After: 1");
      if (waits === 2) {
        const pending = await server.authority.devices.listRequests({ status: "pending", protocol: "est" });
        for (const p of pending) await server.authority.devices.decide(p.id, "approved", "test");
      }
    },
  });
  const cert = await est.simpleEnroll(csr("sdk-waiting", generateKeyPair("ec-p256").privateKey));
  assert.equal(formatName(cert.certificate.subject), "CN=sdk-waiting");
  assert.equal(waits, 2);
  // Without approval the wait is bounded and ends in a typed "pending" error.
  const impatient = new EstClient({ url: base, label: "approve", trustAnchors: anchors, basic: alice, maxWaitMs: 0 });
  await assert.rejects(impatient.simpleEnroll(csr("sdk-waiting-2", generateKeyPair("ec-p256").privateKey)), (err: unknown) => err instanceof EstError && err.kind === "pending");
});
