/**
 * Conformance tests for the Mainflux API's tables (migration 4): a
 * server-generated key stored with its certificate in one transaction, the
 * download-once compare-and-set (exactly one of concurrent downloads wins),
 * erasure on revocation, the things' encrypted keys, and the credential kinds
 * the API uses (tokens, thing keys).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { Store } from "../authority/ports.js";
import { at, concurrently, issued, makeCert, makeCredential, newDevice, rejectsWith, uid, type Register } from "./conformance-fixtures.js";

/** Registers the Mainflux table tests; `s` returns the open, migrated store. */
export function mainfluxTests(s: () => Store, test: Register): void {
  test("issued keys: stored with the certificate, listed per thing; a conflicting issuance stores no key", async () => {
    const device = newDevice();
    const ciphertext = randomBytes(120);
    ciphertext[3] = 0;
    const c1 = makeCert({ deviceId: device.id, issuedAt: at(1) });
    await s().commitIssued([issued(c1, { device: { ...device, expectCurrentSerial: null }, sealedKey: { ownerId: device.id, ciphertext } })]);
    assert.deepStrictEqual(await s().getIssuedKey(c1.serial), { serial: c1.serial, thingId: device.id, ciphertext, createdAt: c1.issuedAt, downloadedAt: null });

    const c2 = makeCert({ deviceId: device.id, issuedAt: at(2) });
    await rejectsWith(
      s().commitIssued([issued(c2, { device: { ...device, expectCurrentSerial: null }, sealedKey: { ownerId: device.id, ciphertext: randomBytes(10) } })]),
      "TESSERA_ERR_LINEAGE_CONFLICT",
    );
    assert.equal(await s().getIssuedKey(c2.serial), undefined, "the losing write left no key behind");

    const c3 = makeCert({ deviceId: device.id, issuedAt: at(3) });
    await s().commitIssued([issued(c3, { device: { ...device, expectCurrentSerial: c1.serial }, supersedes: [c1.serial], revokeSuperseded: true, sealedKey: { ownerId: device.id, ciphertext: randomBytes(10) } })]);
    assert.deepEqual((await s().listIssuedKeys(device.id)).map((k) => k.serial), [c1.serial, c3.serial]);
    assert.deepEqual(await s().listIssuedKeys(uid("no-thing")), []);
    assert.equal(await s().getIssuedKey("abc"), undefined);
  });

  test("markIssuedKeyDownloaded: only for its thing, once; it erases the key", async () => {
    const device = newDevice();
    const c = makeCert({ deviceId: device.id });
    await s().commitIssued([issued(c, { device, sealedKey: { ownerId: device.id, ciphertext: randomBytes(64) } })]);
    assert.equal(await s().markIssuedKeyDownloaded(c.serial, "someone-else", at(5)), false);
    assert.equal(await s().markIssuedKeyDownloaded(uid("serial"), device.id, at(5)), false);
    assert.equal(await s().markIssuedKeyDownloaded(c.serial, device.id, at(5)), true);
    const after = await s().getIssuedKey(c.serial);
    assert.equal(after?.ciphertext, null);
    assert.deepEqual(after?.downloadedAt, at(5));
    assert.equal(await s().markIssuedKeyDownloaded(c.serial, device.id, at(6)), false);
    assert.deepEqual((await s().getIssuedKey(c.serial))?.downloadedAt, at(5));
  });

  test("markIssuedKeyDownloaded: of concurrent downloads exactly one wins", async () => {
    const device = newDevice();
    const c = makeCert({ deviceId: device.id });
    await s().commitIssued([issued(c, { device, sealedKey: { ownerId: device.id, ciphertext: randomBytes(64) } })]);
    const { ok, errors } = await concurrently(10, (i) => s().markIssuedKeyDownloaded(c.serial, device.id, at(10 + i)));
    assert.deepEqual(errors, []);
    assert.equal(ok.filter((x) => x).length, 1);
  });

  test("eraseIssuedKeys drops ciphertexts without marking a download; an erased key cannot be downloaded", async () => {
    const device = newDevice();
    const c1 = makeCert({ deviceId: device.id, issuedAt: at(1) });
    const c2 = makeCert({ deviceId: device.id, issuedAt: at(2) });
    await s().commitIssued([issued(c1, { device, sealedKey: { ownerId: device.id, ciphertext: randomBytes(8) } })]);
    await s().commitIssued([issued(c2, { device, sealedKey: { ownerId: device.id, ciphertext: randomBytes(8) } })]);
    assert.equal(await s().eraseIssuedKeys([]), 0);
    assert.equal(await s().eraseIssuedKeys([c1.serial, uid("none")]), 1);
    assert.equal(await s().eraseIssuedKeys([c1.serial]), 0);
    const erased = await s().getIssuedKey(c1.serial);
    assert.equal(erased?.ciphertext, null);
    assert.equal(erased?.downloadedAt, null);
    assert.equal(await s().markIssuedKeyDownloaded(c1.serial, device.id, at(3)), false);
    assert.ok((await s().getIssuedKey(c2.serial))?.ciphertext);
  });

  test("thing keys: put, replace, get, delete (binary-safe)", async () => {
    const id = uid("thing");
    assert.equal(await s().getThingKey(id), undefined);
    const first = Buffer.from([0, 1, 2, 0, 255]);
    await s().putThingKey(id, first, at(1));
    assert.deepEqual(await s().getThingKey(id), first);
    const second = randomBytes(48);
    await s().putThingKey(id, second, at(2));
    assert.deepEqual(await s().getThingKey(id), second);
    assert.equal(await s().deleteThingKey(id), true);
    assert.equal(await s().deleteThingKey(id), false);
    assert.equal(await s().getThingKey(id), undefined);
  });

  test("credential kinds token, thing and thing-external: same name in each kind, found by hash", async () => {
    const name = uid("thing");
    const hash = `hmac:${randomBytes(32).toString("hex")}`;
    for (const kind of ["token", "thing", "thing-external"] as const) await s().createCredential(makeCredential({ kind, name, hash: `${hash}:${kind}`, scope: kind === "token" ? "editor" : "*" }));
    assert.equal((await s().findCredentialByHash("thing", `${hash}:thing`))?.name, name);
    assert.equal(await s().findCredentialByHash("thing", `${hash}:thing-external`), undefined, "kinds do not mix");
    assert.equal((await s().findCredentialByName("token", name))?.scope, "editor");
    assert.ok((await s().listCredentials("thing-external")).some((c) => c.name === name));
  });
}
