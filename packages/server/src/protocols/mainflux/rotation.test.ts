/**
 * rotateExpiring (the scheduler's entry point, spec §3 without its flaws):
 * which certificates it picks under a moved clock, validity kept, the old one
 * revoked with the new one stored, the event, its outbox option, and several
 * replicas rotating at once (SQLite and PostgreSQL): each certificate once.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { buildCsr, certificatePublicKey, generateKeyPair, keyInfo, keysMatch } from "@tessera/pki";
import { openAuthority } from "../../server.js";
import { readPassphrase } from "../../ca/ca-files.js";
import { lazySealer } from "./sealer.js";
import { MainfluxService } from "./service.js";
import { certOf, DAY, HOUR, mainfluxServer, postgresUnavailable, type MainfluxKit } from "./test-kit.js";
import { goTime } from "./wire.js";

const hexOf = (decimal: string) => BigInt(decimal).toString(16);
const keyInfoCurve = (pem: string) => keyInfo(certificatePublicKey(certOf(pem).cert)).curve;
const lifetime = (pem: string) => {
  const c = certOf(pem).cert;
  return c.notAfter.getTime() - c.notBefore.getTime();
};

describe("rotateExpiring", () => {
  let k: MainfluxKit;
  before(async () => {
    k = await mainfluxServer();
  });
  after(() => k.close());

  test("rotates unexpired certificates of this API expiring within rotation.before (not before half their life), once, keeping their validity", async () => {
    const c100 = await k.issue(k.things.a, { ttl: `${100 * 24}h` });
    const c20 = await k.issue(k.things.a, { ttl: `${20 * 24}h`, key_type: "rsa", key_bits: 2048 });
    const c60 = await k.issue(k.things.b, { ttl: `${60 * 24}h`, key_type: "ecdsa", key_bits: 384 });
    const expiring = await k.issue(k.things.b, { ttl: "1h" });
    // Not this API's: left alone.
    const { privateKey } = generateKeyPair("ec-p256");
    const other = await k.server.authority.issue({ csr: buildCsr({ subject: [{ type: "CN", value: "other" }], privateKey }), protocol: "cli", credential: { kind: "operator", actor: "test" }, validitySeconds: 3600 });
    k.clock.advance(2 * HOUR);
    assert.deepEqual(await k.service.rotateExpiring(k.clock.now()), [], "the 20-day one is within 30 days but younger than half its life; the 1-hour one has expired");

    k.clock.advance(11 * DAY);
    const first = await k.service.rotateExpiring(k.clock.now());
    assert.deepEqual(first.map((r) => r.oldSerial), [c20.serial]);
    const r20 = first[0]!;
    assert.equal(r20.thingId, k.things.a.id);
    assert.notEqual(r20.newSerial, r20.oldSerial);
    const oldRecord = await k.server.authority.getCertificate(hexOf(c20.serial));
    assert.deepEqual([oldRecord?.status, oldRecord?.revocationReason], ["revoked", "superseded"]);
    const fresh = await k.server.authority.getCertificate(hexOf(r20.newSerial));
    assert.deepEqual([fresh?.status, fresh?.keyType, fresh?.deviceId, fresh?.protocol], ["valid", "rsa-2048", k.things.a.id, "mainflux"]);
    assert.equal(fresh!.notAfter.getTime() - fresh!.notBefore.getTime(), 20 * DAY, "validity kept");
    assert.ok(Math.abs(fresh!.notBefore.getTime() - k.clock.now().getTime()) < 2000);
    assert.deepEqual(Object.keys(r20.event), ["thing_id", "client_cert", "issuing_ca", "ca_chain", "serial", "expires_at"], "no client_key by default");
    assert.deepEqual([r20.event.serial, r20.event.thing_id, r20.event.expires_at], [r20.newSerial, k.things.a.id, goTime(fresh!.notAfter)]);
    assert.equal(certOf(r20.event.client_cert).cert.serialHex, hexOf(r20.newSerial));
    assert.equal(certOf(r20.event.client_cert).cn, k.things.a.key);
    assert.equal(r20.event.issuing_ca, r20.event.ca_chain[0]);
    // The device downloads the new key as usual.
    const d = await k.req("GET", `/certs/${r20.newSerial}/download`, { auth: `Thing ${k.things.a.key}` });
    assert.equal(d.status, 200);
    assert.ok(keysMatch(createPrivateKey(d.json.private_key), certificatePublicKey(certOf(r20.event.client_cert).cert)));
    assert.deepEqual(await k.service.rotateExpiring(k.clock.now()), [], "nothing twice");

    // 19 days later: the replacement (1 day left) and the 60-day one (29 days left) are due, by expiry.
    k.clock.advance(19 * DAY);
    const second = await k.service.rotateExpiring(k.clock.now());
    assert.deepEqual(second.map((r) => r.oldSerial), [r20.newSerial, c60.serial]);
    assert.equal(lifetime(second[1]!.event.client_cert), 60 * DAY);
    assert.equal(keyInfoCurve(second[1]!.event.client_cert), "P-384");
    assert.equal(second[1]!.thingId, k.things.b.id);
    assert.equal((await k.server.authority.getCertificate(hexOf(expiring.serial)))?.status, "valid", "expired: not rotated");
    assert.equal((await k.server.authority.getCertificate(other.record.serial))?.status, "valid");
    assert.equal((await k.server.authority.getCertificate(hexOf(c100.serial)))?.status, "valid");
    k.clock.offsetMs = 0;
  });

  test("the outbox option stores each event with its rotation, in the same transaction", async () => {
    const due = await k.issue(k.things.a, { ttl: "48h" });
    k.clock.advance(25 * HOUR);
    const rotated = await k.service.rotateExpiring(k.clock.now(), { outbox: (e) => [{ topic: "mainflux.cert-rotation", payload: { ...e } }] });
    const mine = rotated.find((r) => r.oldSerial === due.serial);
    assert.ok(mine);
    const messages = (await k.server.store.listOutbox()).filter((m) => m.topic === "mainflux.cert-rotation");
    assert.deepEqual(messages.map((m) => m.payload.serial), rotated.map((r) => r.newSerial));
    assert.deepEqual(messages.find((m) => m.payload.serial === mine.newSerial)?.payload, { ...mine.event });
    k.clock.offsetMs = 0;
  });

  test("a manual renew racing the rotation: one new certificate, never two", async () => {
    const due = await k.issue(k.things.b, { ttl: "24h" });
    k.clock.advance(13 * HOUR);
    const [rotated, renewed] = await Promise.all([k.service.rotateExpiring(k.clock.now()), k.req("PUT", `/certs/${due.serial}`, { token: k.tokens.editor })]);
    const byRotation = rotated.filter((r) => r.oldSerial === due.serial).length;
    assert.equal(byRotation + (renewed.status === 201 ? 1 : 0), 1, `rotation ${byRotation}, renew ${renewed.status}`);
    if (renewed.status !== 201) assert.deepEqual([renewed.status, renewed.json], [404, { error: "entity not found" }]);
    k.clock.offsetMs = 0;
  });
});

describe("rotateExpiring with events.include_private_key", () => {
  let k: MainfluxKit;
  before(async () => {
    k = await mainfluxServer({ configure: (c) => (c.mainflux.events.includePrivateKey = true) });
  });
  after(() => k.close());

  test("the event carries the new key, which the device can still download", async () => {
    await k.issue(k.things.a, { ttl: "24h" });
    k.clock.advance(13 * HOUR);
    const [r] = await k.service.rotateExpiring(k.clock.now());
    assert.ok(r?.event.client_key);
    assert.ok(keysMatch(createPrivateKey(r.event.client_key), certificatePublicKey(certOf(r.event.client_cert).cert)));
    const d = await k.req("GET", `/certs/${r.newSerial}/download`, { auth: `Thing ${k.things.a.key}` });
    assert.equal(d.json.private_key, r.event.client_key);
  });
});

/** Several replicas (own store connection and authority each) rotating the same certificates at once. */
async function replicaRace(k: MainfluxKit): Promise<void> {
  const due: string[] = [];
  for (let i = 0; i < 4; i++) due.push((await k.issue(i % 2 ? k.things.a : k.things.b, { ttl: `${24 + i}h` })).serial);
  k.clock.advance(20 * HOUR);
  const replicas = [];
  for (let i = 0; i < 2; i++) {
    const { authority, store } = await openAuthority(k.config, pino({ level: "silent" }), process.env, k.clock);
    const sealer = lazySealer(() => readPassphrase({ env: process.env.TESSERA_CA_PASSPHRASE, file: k.config.caPassphraseFile }));
    replicas.push({ service: new MainfluxService(authority, store, k.config.mainflux, sealer, () => k.clock.now()), close: async () => (await authority.flush(), await store.close()) });
  }
  try {
    const runs = await Promise.all([k.service, ...replicas.map((r) => r.service), k.service].map((s) => s.rotateExpiring(k.clock.now())));
    const all = runs.flat();
    assert.deepEqual(all.map((r) => r.oldSerial).sort(), [...due].sort(), "each certificate rotated exactly once");
    for (const thing of [k.things.a, k.things.b]) {
      const valid = await k.server.authority.listCertificates({ deviceId: thing.id, status: "valid" });
      assert.equal(valid.length, 2, `${thing.id}: one replacement per rotated certificate`);
      assert.deepEqual(valid.map((c) => c.serial).sort(), all.filter((r) => r.thingId === thing.id).map((r) => hexOf(r.newSerial)).sort());
    }
  } finally {
    for (const r of replicas) await r.close();
  }
}

describe("rotateExpiring on several replicas (SQLite)", () => {
  let k: MainfluxKit;
  before(async () => {
    k = await mainfluxServer();
  });
  after(() => k.close());
  test("each certificate is rotated once", () => replicaRace(k));
});

const pgWhy = await postgresUnavailable();
describe("rotateExpiring on several replicas (PostgreSQL)", { skip: pgWhy && process.env.CI !== "true" ? `PostgreSQL not reachable (${pgWhy})` : undefined }, () => {
  let k: MainfluxKit;
  before(async () => {
    k = await mainfluxServer({ postgres: true });
  });
  after(() => k.close());
  test("each certificate is rotated once", () => replicaRace(k));
});
