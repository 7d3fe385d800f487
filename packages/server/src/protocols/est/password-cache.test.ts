/**
 * EST users authenticate on every request, so a successful password check is
 * remembered (authority/passwords.ts): these tests pin down that remembering
 * never lets a wrong password, a removed or revoked user, or a changed
 * password through.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { buildCsr, encodeBase64Lines, generateKeyPair } from "@tessera/pki";
import { hashPassword, verifyPassword } from "../../authority/passwords.js";
import type { RunningServer } from "../../server.js";
import { rawRequest } from "../../test-support.js";
import { addEstUser, estServer } from "./test-kit.js";

test("verifyPassword: a remembered success still refuses other passwords and other stored hashes", async () => {
  const stored = await hashPassword("right");
  const other = await hashPassword("right"); // same password, another salt
  const [a, b] = await Promise.all([verifyPassword("right", stored), verifyPassword("right", stored)]); // one scrypt shared
  assert.ok(a && b);
  assert.equal(await verifyPassword("right", stored), true); // remembered
  assert.equal(await verifyPassword("wrong", stored), false);
  assert.equal(await verifyPassword("right ", stored), false);
  // Flip one bit of the stored key itself: editing the last base64 character
  // may touch only its padding bits and decode to the same bytes.
  const parts = stored.split("$");
  const key = Buffer.from(parts[5]!, "base64url");
  key[0] = key[0]! ^ 1;
  const tampered = [...parts.slice(0, 5), key.toString("base64url")].join("$");
  assert.equal(await verifyPassword("right", tampered), false);
  assert.equal(await verifyPassword("right", other), true);
  assert.equal(await verifyPassword("wrong", other), false);
  // NFC: the same text in another normal form is the same password, remembered or not.
  const accented = await hashPassword("caf\u00e9");
  assert.equal(await verifyPassword("cafe\u0301", accented), true);
  assert.equal(await verifyPassword("cafe\u0301", accented), true);
  assert.equal(await verifyPassword("caf\u00e9", accented), true);
  assert.equal(await verifyPassword("right", "not a hash"), false);
});

let server: RunningServer;
let base: string;
let ca: string;
before(async () => {
  ({ server, base } = await estServer());
  ca = server.authority.chainPem();
});
after(() => server.close(100));

const basic = (user: string, password: string) => "Basic " + Buffer.from(`${user}:${password}`).toString("base64");
const enroll = async (auth: string) => {
  const body = encodeBase64Lines(buildCsr({ subject: [{ type: "CN", value: "cache-test" }], privateKey: generateKeyPair().privateKey }));
  const r = await rawRequest(base, { method: "POST", path: "/.well-known/est/simpleenroll", ca, body, headers: { "Content-Type": "application/pkcs10", Authorization: auth } });
  return r.status;
};

test("simpleenroll: a remembered password stops working when the user is revoked or removed, or the password changes", async () => {
  const bob = await addEstUser(server, "bob", "bob-pass-1");
  assert.equal(await enroll(basic("bob", "bob-pass-1")), 200);
  assert.equal(await enroll(basic("bob", "bob-pass-1")), 200);
  assert.equal(await enroll(basic("bob", "bob-pass-2")), 401);
  await server.store.revokeCredential(bob.id, new Date());
  assert.equal(await enroll(basic("bob", "bob-pass-1")), 401);

  const carol = await addEstUser(server, "carol", "carol-pass-1");
  assert.equal(await enroll(basic("carol", "carol-pass-1")), 200);
  await server.store.deleteCredential(carol.id);
  assert.equal(await enroll(basic("carol", "carol-pass-1")), 401);
  await addEstUser(server, "carol", "carol-pass-2"); // a new password: a new stored hash
  assert.equal(await enroll(basic("carol", "carol-pass-1")), 401);
  assert.equal(await enroll(basic("carol", "carol-pass-2")), 200);
});
