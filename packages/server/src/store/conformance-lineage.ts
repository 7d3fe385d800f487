/**
 * Conformance tests for certificate lineage: the compare-and-set on a
 * device's current serial that makes concurrent renewals and enrollments of
 * one device yield one lineage, revoke-on-supersede, and the revocation
 * poll that replicas use.
 */
import assert from "node:assert/strict";
import type { Store } from "../authority/ports.js";
import { at, concurrently, issued, makeCert, makeRequest, newDevice, rejectsWith, type Register } from "./conformance-fixtures.js";

/** Registers the lineage tests; `s` returns the open, migrated store. */
export function lineageTests(s: () => Store, test: Register): void {
  test("expectCurrentSerial: null creates a device once; a second first-enrollment conflicts and stores nothing", async () => {
    const device = newDevice();
    const c1 = makeCert({ deviceId: device.id, issuedAt: at(1) });
    await s().commitIssued([issued(c1, { device: { ...device, expectCurrentSerial: null } })]);
    assert.equal((await s().getDevice(device.id))?.currentSerial, c1.serial);
    const c2 = makeCert({ deviceId: device.id, issuedAt: at(2) });
    await rejectsWith(s().commitIssued([issued(c2, { device: { ...device, expectCurrentSerial: null } })]), "TESSERA_ERR_LINEAGE_CONFLICT");
    assert.equal(await s().getCertificate(c2.serial), undefined, "the losing certificate is not stored");
    assert.equal((await s().listAudit({ target: c2.serial })).length, 0);
  });

  test("expectCurrentSerial: a renewal of a superseded serial conflicts; of the current one succeeds and supersedes it", async () => {
    const device = newDevice();
    const c1 = makeCert({ deviceId: device.id, issuedAt: at(1) });
    await s().commitIssued([issued(c1, { device })]);
    const c2 = makeCert({ deviceId: device.id, issuedAt: at(2) });
    await s().commitIssued([issued(c2, { device: { ...device, expectCurrentSerial: c1.serial }, supersedes: [c1.serial] })]);
    assert.equal((await s().getCertificate(c1.serial))?.status, "superseded");
    const c3 = makeCert({ deviceId: device.id, issuedAt: at(3) });
    await rejectsWith(
      s().commitIssued([issued(c3, { device: { ...device, expectCurrentSerial: c1.serial }, supersedes: [c1.serial] })]),
      "TESSERA_ERR_LINEAGE_CONFLICT",
    );
    assert.equal(await s().getCertificate(c3.serial), undefined);
    assert.equal((await s().getDevice(device.id))?.currentSerial, c2.serial);
    assert.equal((await s().getCertificate(c2.serial))?.status, "valid");
  });

  test("concurrent renewals of one current serial: exactly one wins", async () => {
    const device = newDevice();
    const c0 = makeCert({ deviceId: device.id, issuedAt: at(1) });
    await s().commitIssued([issued(c0, { device })]);
    const { ok, errors } = await concurrently(8, (i) =>
      s().commitIssued([issued(makeCert({ deviceId: device.id, issuedAt: at(10 + i) }), { device: { ...device, expectCurrentSerial: c0.serial }, supersedes: [c0.serial] })]),
    );
    assert.equal(ok.length, 1);
    assert.equal(errors.length, 7);
    const current = (await s().getDevice(device.id))?.currentSerial;
    const valid = await s().listCertificates({ deviceId: device.id, status: "valid" });
    assert.deepEqual(valid.map((c) => c.serial), [current]);
  });

  test("a request-issued write can set an existing device's status (approval activates a pending device)", async () => {
    const device = { ...newDevice(), status: "pending" as const };
    const c1 = makeCert({ deviceId: device.id, issuedAt: at(1) });
    await s().commitIssued([issued(c1, { device })]);
    assert.equal((await s().getDevice(device.id))?.status, "pending");
    const request = makeRequest({ deviceId: device.id });
    await s().createRequest(request);
    const c2 = makeCert({ deviceId: device.id, issuedAt: at(2) });
    await s().commitIssued([issued(c2, { device: { ...device, status: "active", setStatus: true }, requestId: request.id })]);
    assert.equal((await s().getDevice(device.id))?.status, "active");
    assert.deepEqual((await s().listRequests({ deviceId: device.id })).map((r) => r.certificateSerial), [c2.serial]);
    assert.deepEqual(await s().listRequests({ deviceId: "no-such-device" }), []);
  });

  test("revokeSuperseded revokes the previous certificate with reason superseded; listRevokedSince reports it", async () => {
    const device = newDevice();
    const c1 = makeCert({ deviceId: device.id, issuedAt: at(100) });
    await s().commitIssued([issued(c1, { device })]);
    const c2 = makeCert({ deviceId: device.id, issuedAt: at(101) });
    await s().commitIssued([issued(c2, { device: { ...device, expectCurrentSerial: c1.serial }, supersedes: [c1.serial], revokeSuperseded: true })]);
    const old = await s().getCertificate(c1.serial);
    assert.equal(old?.status, "revoked");
    assert.equal(old?.revocationReason, "superseded");
    assert.deepEqual(old?.revokedAt, c2.issuedAt);
    const since = await s().listRevokedSince(at(100));
    assert.ok(since.some((e) => e.serial === c1.serial && e.reason === "superseded"));
    assert.ok(!(await s().listRevokedSince(at(102))).some((e) => e.serial === c1.serial), "not listed before its revocation time");
  });
}
