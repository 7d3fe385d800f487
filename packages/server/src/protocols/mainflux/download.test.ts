/**
 * The device's one download (E7, checklist 16–18) and the keys at rest: the
 * download-once compare-and-set under concurrency (SQLite and PostgreSQL),
 * keys never returned afterwards, return_private_key = false, encryption of
 * the stored keys and thing keys, and thing removal.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { certificatePublicKey, keysMatch } from "@tessera/pki";
import { certOf, mainfluxServer, postgresUnavailable, type MainfluxKit } from "./test-kit.js";

const DOWNLOAD_KEYS = ["certificate", "issuing_ca", "ca_chain", "private_key", "private_key_type", "serial", "thing_id", "expires_at"];
const hexOf = (decimal: string) => BigInt(decimal).toString(16);

describe("mainflux API: download (E7)", () => {
  let k: MainfluxKit;
  before(async () => {
    k = await mainfluxServer();
  });
  after(() => k.close());
  const download = (serial: string, auth?: string) => k.req("GET", `/certs/${serial}/download`, { auth });

  test("16: Thing <key> → 200 DownloadRes (the issued key), then the view says downloaded:true; External <key> works too", async () => {
    const issued = await k.issue(k.things.a, { key_type: "rsa", key_bits: 2048 });
    const r = await download(issued.serial, `Thing ${k.things.a.key}`);
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json), DOWNLOAD_KEYS);
    assert.deepEqual(r.json, {
      certificate: issued.certificate, issuing_ca: issued.issuing_ca, ca_chain: issued.ca_chain, private_key: issued.private_key, private_key_type: "rsa",
      serial: issued.serial, thing_id: k.things.a.id, expires_at: issued.expires_at,
    });
    assert.ok(keysMatch(createPrivateKey(r.json.private_key), certificatePublicKey(certOf(r.json.certificate).cert)));
    assert.equal((await k.req("GET", `/certs/${issued.serial}`, { token: k.tokens.viewer })).json.downloaded, true);
    const listed = await k.req("GET", `/things/${k.things.a.id}/serials?serial=${issued.serial}`, { token: k.tokens.viewer });
    assert.equal(listed.json.certs[0].downloaded, true);
    const second = await k.issue(k.things.a);
    const ext = await download(second.serial, `External ${k.things.a.externalKey}`);
    assert.deepEqual([ext.status, ext.json.private_key], [200, second.private_key]);
  });

  test("17: a second download → 403 certificate already downloaded; the key is never returned again", async () => {
    const issued = await k.issue(k.things.b);
    assert.equal((await download(issued.serial, `Thing ${k.things.b.key}`)).status, 200);
    const again = await download(issued.serial, `Thing ${k.things.b.key}`);
    assert.deepEqual([again.status, again.text], [403, '{"error":"certificate already downloaded"}\n']);
    const row = await k.server.store.getIssuedKey(hexOf(issued.serial));
    assert.equal(row?.ciphertext, null, "erased from the store");
    assert.ok(row?.downloadedAt);
    const view = await k.req("GET", `/certs/${issued.serial}`, { token: k.tokens.admin });
    assert.ok(!view.text.includes("PRIVATE KEY"));
  });

  test("17: N concurrent downloads → exactly one 200, the others 403", async () => {
    const issued = await k.issue(k.things.a);
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => download(issued.serial, i % 2 ? `Thing ${k.things.a.key}` : `External ${k.things.a.externalKey}`)));
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, ...Array(11).fill(403)]);
    assert.ok(answers.filter((a) => a.status === 403).every((a) => a.json.error === "certificate already downloaded"));
  });

  test("18: another thing's key → 403; unknown key → 404; Bearer → 401 invalid thing key type; empty key → 401; unknown serial → 404", async () => {
    const issued = await k.issue(k.things.a);
    const other = await download(issued.serial, `Thing ${k.things.b.key}`);
    assert.deepEqual([other.status, other.json], [403, { error: "failed to perform authorization over the entity" }]);
    const unknown = await download(issued.serial, "Thing not-a-key");
    assert.deepEqual([unknown.status, unknown.json], [404, { error: "entity not found" }]);
    assert.deepEqual((await download(issued.serial, `External ${k.things.a.key}`)).status, 404, "the internal key is not an external one");
    for (const auth of [`Bearer ${k.tokens.admin}`, undefined, `thing ${k.things.a.key}`]) {
      const r = await download(issued.serial, auth);
      assert.deepEqual([r.status, r.json], [401, { error: "invalid thing key type" }], String(auth));
    }
    for (const auth of ["Thing ", "External "]) assert.deepEqual((await download(issued.serial, auth)).json, { error: "missing or invalid bearer entity key" });
    assert.deepEqual((await download("123", `Thing ${k.things.a.key}`)).json, { error: "entity not found" });
    // HEAD is not a download.
    assert.equal((await k.req("HEAD", `/certs/${issued.serial}/download`, { auth: `Thing ${k.things.a.key}` })).status, 404);
    // Nothing was consumed by the refusals.
    assert.equal((await download(issued.serial, `Thing ${k.things.a.key}`)).status, 200);
  });

  test("revoked, renewed or rotated certificates' keys cannot be downloaded", async () => {
    const revoked = await k.issue(k.things.a);
    await k.req("DELETE", `/certs/${revoked.serial}`, { token: k.tokens.editor });
    assert.equal((await download(revoked.serial, `Thing ${k.things.a.key}`)).status, 404);
    const rotated = await k.issue(k.things.a);
    const r = await k.req("POST", `/certs/${rotated.serial}/rotate`, { token: k.tokens.editor, body: { thing_id: k.things.a.id, ttl: "1h", key_type: "ecdsa", key_bits: 256 } });
    assert.equal(r.status, 201);
    assert.equal((await download(rotated.serial, `Thing ${k.things.a.key}`)).status, 404);
    assert.equal((await k.server.store.getIssuedKey(hexOf(rotated.serial)))?.ciphertext, null);
    assert.equal((await download(r.json.serial, `Thing ${k.things.a.key}`)).json.private_key, r.json.private_key);
  });

  test("keys at rest: the stored private key and thing key are ciphertexts; the credentials hold HMACs", async () => {
    const issued = await k.issue(k.things.b);
    const row = await k.server.store.getIssuedKey(hexOf(issued.serial));
    assert.ok(row?.ciphertext);
    const body = issued.private_key.split("\n").slice(1, 3).join("");
    assert.ok(!row.ciphertext.toString("latin1").includes(body.slice(0, 24)), "not the PEM");
    assert.ok(!row.ciphertext.includes(Buffer.from(body, "base64").subarray(0, 32)), "not the DER");
    const thingKey = await k.server.store.getThingKey(k.things.b.id);
    assert.ok(thingKey && !thingKey.includes(Buffer.from(k.things.b.key)));
    const cred = await k.server.store.findCredentialByName("thing", k.things.b.id);
    assert.match(cred!.hash, /^hmac-sha256:[0-9a-f]{64}$/);
    const token = await k.server.store.findCredentialByName("token", "editor-1");
    assert.match(token!.hash, /^sha256:[0-9a-f]{64}$/);
    assert.equal(token!.scope, "editor");
    // A ciphertext moved to another certificate's row does not open there.
    const other = await k.issue(k.things.b);
    const sealer = await (k.service as unknown as { sealer: () => Promise<import("./sealer.js").KeySealer> }).sealer();
    assert.throws(() => sealer.open(row.ciphertext!, `issued-key:${"0".repeat(64)}`));
    assert.ok(other);
  });

  test("removing a thing revokes its certificates and erases its keys; its key no longer authenticates", async () => {
    const thing = { id: "thing-gone", key: (await k.registry.addThing("thing-gone", undefined, undefined, "test")).key };
    const c1 = await k.issue(thing);
    const c2 = await k.issue(thing);
    const { revoked } = await k.registry.removeThing(thing.id, k.server.authority, "test");
    assert.deepEqual(revoked.sort(), [hexOf(c1.serial), hexOf(c2.serial)].sort());
    assert.equal((await k.server.authority.getCertificate(hexOf(c1.serial)))?.revocationReason, "cessationOfOperation");
    assert.equal((await download(c1.serial, `Thing ${thing.key}`)).status, 404);
    assert.equal((await k.server.store.getIssuedKey(hexOf(c2.serial)))?.ciphertext, null);
    assert.equal((await k.req("POST", "/certs", { token: k.tokens.editor, body: { thing_id: thing.id, ttl: "1h", key_type: "ecdsa", key_bits: 256 } })).status, 403);
    assert.equal((await k.req("GET", `/things/${thing.id}/serials`, { token: k.tokens.viewer })).status, 403);
    // Added again: a new key, and the device is active again.
    const again = await k.registry.addThing(thing.id, undefined, undefined, "test");
    assert.notEqual(again.key, thing.key);
    const c3 = await k.issue({ id: thing.id, key: again.key });
    assert.equal(certOf(c3.certificate).cn, again.key);
  });
});

describe("mainflux API: return_private_key = false", () => {
  let k: MainfluxKit;
  before(async () => {
    k = await mainfluxServer({ configure: (c) => (c.mainflux.returnPrivateKey = false) });
  });
  after(() => k.close());

  test("issue, renew and rotate answers leave the key out; only the download returns it", async () => {
    const issued = await k.issue(k.things.a, { ttl: "24h" });
    assert.equal("private_key" in issued, false);
    assert.equal(issued.private_key_type, "ecdsa");
    const renewed = await k.req("PUT", `/certs/${issued.serial}`, { token: k.tokens.editor });
    assert.equal(renewed.status, 201);
    assert.ok(!renewed.text.includes("PRIVATE KEY"));
    const rotated = await k.req("POST", `/certs/${renewed.json.serial}/rotate`, { token: k.tokens.editor, body: { thing_id: k.things.a.id, ttl: "1h", key_type: "rsa", key_bits: 2048 } });
    assert.equal(rotated.status, 201);
    assert.ok(!rotated.text.includes("PRIVATE KEY"));
    const d = await k.req("GET", `/certs/${rotated.json.serial}/download`, { auth: `Thing ${k.things.a.key}` });
    assert.equal(d.status, 200);
    assert.match(d.json.private_key, /^-----BEGIN RSA PRIVATE KEY-----/);
    assert.ok(keysMatch(createPrivateKey(d.json.private_key), certificatePublicKey(certOf(d.json.certificate).cert)));
  });
});

const pgWhy = await postgresUnavailable();
describe("mainflux API on PostgreSQL", { skip: pgWhy && process.env.CI !== "true" ? `PostgreSQL not reachable (${pgWhy})` : undefined }, () => {
  let k: MainfluxKit;
  before(async () => {
    k = await mainfluxServer({ postgres: true });
  });
  after(() => k.close());

  test("17: N concurrent downloads → exactly one 200; issue, view, list and renew work", async () => {
    assert.equal(k.server.store.kind, "postgres");
    const issued = await k.issue(k.things.a, { ttl: "24h" });
    const answers = await Promise.all(Array.from({ length: 12 }, () => k.req("GET", `/certs/${issued.serial}/download`, { auth: `Thing ${k.things.a.key}` })));
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, ...Array(11).fill(403)]);
    assert.equal((await k.req("GET", `/certs/${issued.serial}`, { token: k.tokens.viewer })).json.downloaded, true);
    assert.equal((await k.req("GET", `/things/${k.things.a.id}/serials`, { token: k.tokens.viewer })).json.total, 1);
    const renewed = await k.req("PUT", `/certs/${issued.serial}`, { token: k.tokens.editor });
    assert.equal(renewed.status, 201);
    assert.equal((await k.req("GET", `/things/${k.things.a.id}/serials`, { token: k.tokens.viewer })).json.certs[0].cert_serial, renewed.json.serial);
  });
});
