/**
 * Conformance tests for devices, enrollment requests, credentials, the audit
 * log and the CRL number, with the compare-and-set races each must win once.
 */
import assert from "node:assert/strict";
import type { DeviceRecord, Store } from "../authority/ports.js";
import { at, concurrently, event, makeCredential, makeRequest, rejectsWith, T0, uid, type Register } from "./conformance-fixtures.js";

function deviceInput(fingerprint: string | null, id = uid("dev")): Omit<DeviceRecord, "createdAt" | "updatedAt" | "lastSeenAt" | "lastIp" | "currentSerial"> {
  return { id, fingerprint, status: "pending", protocol: "liteboot", attributes: { os: "linux" } };
}

/** Registers device tests; `s` returns the open, migrated store. */
export function deviceTests(s: () => Store, test: Register): void {
  test("createDeviceIfAbsent: 20 concurrent calls with one fingerprint create exactly one device", async () => {
    const fingerprint = uid("hw");
    const { ok, errors } = await concurrently(20, () => s().createDeviceIfAbsent(deviceInput(fingerprint), at(1)));
    assert.deepEqual(errors, []);
    assert.equal(ok.filter((r) => r.created).length, 1);
    const ids = new Set(ok.map((r) => r.device.id));
    assert.equal(ids.size, 1);
    const [id] = ids;
    const stored = await s().findDeviceByFingerprint(fingerprint);
    assert.equal(stored?.id, id);
    assert.deepEqual(stored, await s().getDevice(id ?? ""));
    assert.equal(stored?.status, "pending");
    assert.deepEqual(stored?.attributes, { os: "linux" });
    assert.deepEqual(stored?.createdAt, at(1));
    assert.equal(stored?.currentSerial, null);

    // Same id, other fingerprint: the existing device is returned untouched.
    const again = await s().createDeviceIfAbsent(deviceInput(uid("hw"), id), at(2));
    assert.equal(again.created, false);
    assert.equal(again.device.fingerprint, fingerprint);

    // Devices without a fingerprint never collide with each other.
    const a = await s().createDeviceIfAbsent(deviceInput(null), at(3));
    const b = await s().createDeviceIfAbsent(deviceInput(null), at(3));
    assert.ok(a.created && b.created);
    assert.notEqual(a.device.id, b.device.id);
    assert.equal(await s().findDeviceByFingerprint(uid("nothing")), undefined);
  });

  test("setDeviceStatus is compare-and-set", async () => {
    const { device } = await s().createDeviceIfAbsent(deviceInput(uid("hw")), at(1));
    assert.equal(await s().setDeviceStatus(device.id, ["active"], "revoked", at(2)), false, "wrong from-state");
    assert.equal(await s().setDeviceStatus(device.id, [], "active", at(2)), false, "empty from-set");
    assert.equal(await s().setDeviceStatus(device.id, ["pending", "disabled"], "active", at(3)), true);
    const updated = await s().getDevice(device.id);
    assert.equal(updated?.status, "active");
    assert.deepEqual(updated?.updatedAt, at(3));
    assert.equal(await s().setDeviceStatus(uid("missing"), ["active"], "revoked", at(3)), false);

    const { ok } = await concurrently(10, (i) => s().setDeviceStatus(device.id, ["active"], i % 2 ? "disabled" : "revoked", at(4)));
    assert.equal(ok.filter(Boolean).length, 1);
  });

  test("touchDevice records last contact; listDevices filters and pages", async () => {
    const status = "disabled";
    const made: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { device } = await s().createDeviceIfAbsent(deviceInput(uid("hw")), at(500 + i));
      await s().setDeviceStatus(device.id, ["pending"], status, at(500 + i));
      made.push(device.id);
    }
    await s().touchDevice(made[0] ?? "", "198.51.100.4", at(600));
    const touched = await s().getDevice(made[0] ?? "");
    assert.deepEqual(touched?.lastSeenAt, at(600));
    assert.equal(touched?.lastIp, "198.51.100.4");

    const listed = (await s().listDevices({ status })).map((d) => d.id);
    assert.deepEqual(listed.filter((id) => made.includes(id)), made, "ordered by creation");
    const page = await s().listDevices({ status, limit: 2, offset: 1 });
    assert.deepEqual(page.map((d) => d.id), listed.slice(1, 3));
    assert.ok((await s().listDevices()).length >= made.length);
  });
}

/** Registers enrollment request tests. */
export function requestTests(s: () => Store, test: Register): void {
  test("requests round-trip, are unique by CSR hash and filter by status and protocol", async () => {
    const protocol = uid("proto");
    const request = makeRequest({ protocol, deviceId: uid("future-device") });
    await s().createRequest(request);
    assert.deepStrictEqual(await s().getRequest(request.id), request);
    assert.deepStrictEqual(await s().getRequestByCsrHash(request.csrSha256), request);
    assert.equal(await s().getRequest(uid("none")), undefined);
    await rejectsWith(s().createRequest(makeRequest({ csrSha256: request.csrSha256 })), "TESSERA_ERR_STORE_CONFLICT");

    const decided = makeRequest({ protocol, status: "rejected", decidedAt: at(2), decidedBy: "cli", reason: "no", createdAt: at(2) });
    await s().createRequest(decided);
    assert.deepEqual((await s().listRequests({ protocol })).map((r) => r.id), [request.id, decided.id]);
    assert.deepEqual((await s().listRequests({ protocol, status: "pending" })).map((r) => r.id), [request.id]);
    assert.deepEqual((await s().listRequests({ protocol, limit: 1, offset: 1 })).map((r) => r.id), [decided.id]);
  });

  test("decideRequest is compare-and-set: concurrent approvals and rejections, one winner", async () => {
    const request = makeRequest();
    await s().createRequest(request);
    const { ok, errors } = await concurrently(20, (i) =>
      s().decideRequest(request.id, i % 2 ? "rejected" : "approved", `token:${i}`, at(10), i % 2 ? "denied" : null, event(i % 2 ? "request.rejected" : "request.approved", request.id)),
    );
    assert.deepEqual(errors, []);
    const winners = ok.filter((r) => r !== undefined);
    assert.equal(winners.length, 1);
    const winner = winners[0];
    assert.ok(winner);
    assert.notEqual(winner.status, "pending");
    assert.deepEqual(winner.decidedAt, at(10));
    assert.deepStrictEqual(await s().getRequest(request.id), winner);
    assert.equal((await s().listAudit({ target: request.id })).length, 1);
    assert.equal(await s().decideRequest(request.id, "approved", "cli", at(11), null, event("request.approved", request.id)), undefined);
    assert.equal(await s().decideRequest(uid("none"), "approved", "cli", at(11), null, event("request.approved", "none")), undefined);
  });
}

/** Registers credential tests. */
export function credentialTests(s: () => Store, test: Register): void {
  test("credentials round-trip, are unique per kind and name, and can be found by name or hash", async () => {
    const cred = makeCredential({ kind: "certificate", expiresAt: at(60), maxUses: 3 });
    await s().createCredential(cred);
    assert.deepStrictEqual(await s().getCredential(cred.id), cred);
    assert.deepStrictEqual(await s().findCredentialByName("certificate", cred.name), cred);
    assert.deepStrictEqual(await s().findCredentialByHash("certificate", cred.hash), cred);
    assert.equal(await s().findCredentialByName("secret", cred.name), undefined);
    await rejectsWith(s().createCredential(makeCredential({ kind: "certificate", name: cred.name })), "TESSERA_ERR_STORE_CONFLICT");
    await s().createCredential(makeCredential({ kind: "password", name: cred.name }));
    const certificates = await s().listCredentials("certificate");
    assert.ok(certificates.some((c) => c.id === cred.id));
    assert.ok(certificates.every((c) => c.kind === "certificate"));
    assert.ok((await s().listCredentials()).length > certificates.length);
  });

  test("consumeCredential: maxUses 5 under 30 concurrent calls lets exactly 5 through", async () => {
    const cred = makeCredential({ maxUses: 5 });
    await s().createCredential(cred);
    const { ok, errors } = await concurrently(30, () => s().consumeCredential(cred.id, at(1)));
    assert.deepEqual(errors, []);
    const used = ok.filter((r) => r !== undefined);
    assert.equal(used.length, 5);
    assert.deepEqual(used.map((r) => r.useCount).sort(), [1, 2, 3, 4, 5]);
    assert.equal((await s().getCredential(cred.id))?.useCount, 5);

    const unlimited = makeCredential();
    await s().createCredential(unlimited);
    for (let i = 0; i < 7; i++) assert.ok(await s().consumeCredential(unlimited.id, at(1)));
    assert.equal((await s().getCredential(unlimited.id))?.useCount, 7);
    assert.equal(await s().consumeCredential(uid("none"), at(1)), undefined);
  });

  test("expired and revoked credentials refuse consumption; revokeCredential is compare-and-set", async () => {
    const expiring = makeCredential({ expiresAt: at(10) });
    await s().createCredential(expiring);
    assert.equal((await s().consumeCredential(expiring.id, at(9)))?.useCount, 1);
    assert.equal(await s().consumeCredential(expiring.id, at(10)), undefined, "expired at its expiry instant");
    assert.equal(await s().consumeCredential(expiring.id, at(11)), undefined);

    const cred = makeCredential();
    await s().createCredential(cred);
    assert.equal(await s().revokeCredential(cred.id, at(2)), true);
    assert.equal(await s().revokeCredential(cred.id, at(3)), false);
    assert.deepEqual((await s().getCredential(cred.id))?.revokedAt, at(2));
    assert.equal(await s().consumeCredential(cred.id, at(1)), undefined);
    assert.equal((await s().getCredential(cred.id))?.useCount, 0);
  });

  test("deleteCredential removes the row once, and its name can be used again", async () => {
    const cred = makeCredential();
    await s().createCredential(cred);
    assert.equal(await s().deleteCredential(cred.id), true);
    assert.equal(await s().deleteCredential(cred.id), false);
    assert.equal(await s().getCredential(cred.id), undefined);
    assert.equal(await s().findCredentialByName(cred.kind, cred.name), undefined);
    const again = uid("again");
    await s().createCredential({ ...cred, id: again });
    assert.equal((await s().findCredentialByName(cred.kind, cred.name))?.id, again);
  });
}

/** Registers audit log and CRL number tests. */
export function auditAndCrlTests(s: () => Store, test: Register): void {
  test("appendAudit and listAudit: filters, limit, detail round trip, increasing ids", async () => {
    const target = uid("target");
    const action = uid("thing.done");
    const detail = { n: 1, nested: { list: ["a", "b"], flag: false }, big: 12345678901234567890n };
    await s().appendAudit({ at: at(1), actor: "system", action, target, detail });
    await s().appendAudit({ at: at(2), actor: "device:x", action, target: uid("other"), detail: {} });
    await s().appendAudit({ at: at(3), actor: "token:y", action: "other.action", target, detail: {} });

    const byAction = await s().listAudit({ action });
    assert.equal(byAction.length, 2);
    assert.deepEqual(byAction[0]?.detail, { ...detail, big: "12345678901234567890" });
    assert.equal(byAction[0]?.actor, "system");
    assert.deepEqual(byAction[0]?.at, at(1));
    assert.equal(typeof byAction[0]?.id, "number");
    assert.ok((byAction[0]?.id ?? 0) < (byAction[1]?.id ?? 0));
    assert.equal((await s().listAudit({ target })).length, 2);
    assert.equal((await s().listAudit({ target, action })).length, 1);
    assert.deepEqual((await s().listAudit({ target, since: at(2) })).map((e) => e.action), ["other.action"]);
    assert.equal((await s().listAudit({ action, limit: 1 })).length, 1);
    assert.ok((await s().listAudit({ since: T0 })).length >= 3);
  });

  test("nextCrlNumber is strictly increasing, also under concurrency", async () => {
    const a = await s().nextCrlNumber();
    const b = await s().nextCrlNumber();
    assert.equal(typeof a, "bigint");
    assert.ok(a >= 1n);
    assert.equal(b, a + 1n);
    const { ok, errors } = await concurrently(20, () => s().nextCrlNumber());
    assert.deepEqual(errors, []);
    assert.equal(new Set(ok).size, 20);
    const sorted = [...ok].sort((x, y) => (x < y ? -1 : 1));
    assert.equal(sorted[0], b + 1n);
    assert.equal(sorted[19], b + 20n);
  });
}
