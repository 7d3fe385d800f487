/**
 * Conformance tests for issuance and certificates: group commit atomicity,
 * device upkeep, supersession, round trips, queries, revocation and the CRL list.
 */
import assert from "node:assert/strict";
import type { CertificateRecord, RevokedEntry, Store } from "../authority/ports.js";
import { TesseraError } from "../errors.js";
import { at, certOrder, concurrently, event, issued, makeCert, makeRequest, newDevice, newSerial, rejectsWith, uid, type Register } from "./conformance-fixtures.js";

/** Registers the certificate tests; `s` returns the open, migrated store. */
export function certificateTests(s: () => Store, test: Register): void {
  test("commitIssued creates the device, then updates currentSerial and merges attributes", async () => {
    const device = newDevice(uid("dev"), { hostname: "a", os: "linux" });
    const c1 = makeCert({ deviceId: device.id, issuedAt: at(10) });
    await s().commitIssued([issued(c1, { device })]);
    const d1 = await s().getDevice(device.id);
    assert.ok(d1);
    assert.equal(d1.fingerprint, device.fingerprint);
    assert.equal(d1.status, "active");
    assert.equal(d1.protocol, "imprint");
    assert.equal(d1.currentSerial, c1.serial);
    assert.deepEqual(d1.attributes, { hostname: "a", os: "linux" });
    assert.deepEqual(d1.createdAt, c1.issuedAt);
    assert.equal(d1.lastSeenAt, null);

    const c2 = makeCert({ deviceId: device.id, issuedAt: at(20) });
    await s().commitIssued([issued(c2, { device: { ...device, status: "pending", attributes: { hostname: "b", arch: "arm64" } } })]);
    const d2 = await s().getDevice(device.id);
    assert.ok(d2);
    assert.equal(d2.currentSerial, c2.serial);
    assert.equal(d2.status, "active", "an existing device keeps its status");
    assert.deepEqual(d2.attributes, { hostname: "b", os: "linux", arch: "arm64" });
    assert.deepEqual(d2.createdAt, c1.issuedAt);
    assert.deepEqual(d2.updatedAt, c2.issuedAt);

    const audit = await s().listAudit({ target: c1.serial });
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.action, "certificate.issued");
  });

  test("commitIssued batch is all-or-nothing and the store keeps working", async () => {
    const request = makeRequest();
    await s().createRequest(request);
    const writes = Array.from({ length: 50 }, (_, i) => {
      const device = newDevice();
      return issued(makeCert({ deviceId: device.id, issuedAt: at(i) }), i === 10 ? { device, requestId: request.id } : { device });
    });
    const first = writes[0];
    assert.ok(first);
    const dup = issued(makeCert({ serial: first.certificate.serial }));
    await rejectsWith(s().commitIssued([...writes, dup]), "TESSERA_ERR_STORE_CONFLICT");

    for (const w of writes) {
      assert.equal(await s().getCertificate(w.certificate.serial), undefined, "no certificate of the failed batch");
      assert.equal(await s().getDevice(w.device?.id ?? ""), undefined, "no device of the failed batch");
      assert.equal((await s().listAudit({ target: w.certificate.serial })).length, 0, "no audit of the failed batch");
    }
    const untouched = await s().getRequest(request.id);
    assert.equal(untouched?.certificateSerial, null);
    assert.equal(untouched?.status, "pending");

    // A duplicate of an already stored serial fails the same way.
    const stored = makeCert();
    await s().commitIssued([issued(stored)]);
    const second = writes.slice(0, 5);
    await rejectsWith(s().commitIssued([...second, issued(makeCert({ serial: stored.serial }))]), "TESSERA_ERR_STORE_CONFLICT");
    assert.equal(await s().getCertificate(second[0]?.certificate.serial ?? ""), undefined);

    await s().commitIssued(writes);
    for (const w of writes) assert.ok(await s().getCertificate(w.certificate.serial));
    const linked = await s().getRequest(request.id);
    assert.equal(linked?.certificateSerial, writes[10]?.certificate.serial);
    assert.equal(linked?.status, "approved");
  });

  test("a failing batch does not take concurrent unrelated writes down with it", async () => {
    const writes = Array.from({ length: 200 }, () => issued(makeCert()));
    const dup = issued(makeCert({ serial: writes[0]?.certificate.serial ?? "" }));
    const action = uid("bystander.write");
    const [batch] = await Promise.allSettled([
      s().commitIssued([...writes, dup]),
      ...Array.from({ length: 50 }, (_, i) => s().appendAudit(event(action, `t${i}`))),
    ]);
    assert.equal(batch?.status, "rejected");
    assert.equal((await s().listAudit({ action })).length, 50);
    assert.equal(await s().getCertificate(writes[100]?.certificate.serial ?? ""), undefined);
  });

  test("supersedes marks only valid certificates superseded", async () => {
    const device = newDevice();
    const valid = makeCert({ deviceId: device.id, issuedAt: at(1) });
    const revoked = makeCert({ deviceId: device.id, issuedAt: at(2), status: "revoked", revokedAt: at(3), revocationReason: "keyCompromise" });
    const bystander = makeCert({ deviceId: device.id, issuedAt: at(3) });
    await s().commitIssued([issued(valid, { device }), issued(revoked), issued(bystander)]);
    const next = makeCert({ deviceId: device.id, issuedAt: at(4) });
    await s().commitIssued([issued(next, { device, supersedes: [valid.serial, revoked.serial, newSerial()] })]);
    assert.equal((await s().getCertificate(valid.serial))?.status, "superseded");
    assert.equal((await s().getCertificate(revoked.serial))?.status, "revoked");
    assert.equal((await s().getCertificate(bystander.serial))?.status, "valid");
    assert.equal((await s().getCertificate(next.serial))?.status, "valid");
  });

  test("getCertificate round-trips every field", async () => {
    const device = newDevice();
    const request = makeRequest();
    await s().createRequest(request);
    const full = makeCert({
      deviceId: device.id,
      requestId: request.id,
      status: "revoked",
      revokedAt: at(5),
      revocationReason: "superseded",
      notBefore: new Date("2025-01-01T00:00:00.001Z"),
      notAfter: new Date("9999-12-31T23:59:59.999Z"),
      protocol: "est",
      keyType: "rsa-2048",
    });
    const bare = makeCert({ sans: [] });
    await s().commitIssued([issued(full, { device }), issued(bare)]);
    const got = await s().getCertificate(full.serial);
    assert.deepStrictEqual(got, full);
    assert.ok(got && Buffer.isBuffer(got.der) && got.der.equals(full.der));
    assert.ok(got.notAfter instanceof Date);
    assert.deepStrictEqual(await s().getCertificate(bare.serial), bare);
    assert.equal(await s().getCertificate(newSerial()), undefined);
  });

  test("listCertificates filters, orders and pages; countCertificates agrees", async () => {
    const device = newDevice();
    const mk = (issuedMin: number, notAfterMin: number, status: CertificateRecord["status"] = "valid"): CertificateRecord =>
      makeCert({ deviceId: device.id, issuedAt: at(issuedMin), notAfter: at(notAfterMin), status, ...(status === "revoked" ? { revokedAt: at(issuedMin + 1), revocationReason: "unspecified" } : {}) });
    const certs = [mk(30, 1000), mk(10, 500), mk(20, 2000, "revoked"), mk(20, 3000), mk(50, 100, "superseded"), mk(40, 1500)];
    await s().commitIssued([issued(certs[0] as CertificateRecord, { device })]);
    await s().commitIssued(certs.slice(1).reverse().map((c) => issued(c)));
    const expected = [...certs].sort((a, b) => (certOrder(a) < certOrder(b) ? -1 : 1)).map((c) => c.serial);
    const serials = (list: CertificateRecord[]): string[] => list.map((c) => c.serial);
    const pick = (pred: (c: CertificateRecord) => boolean): string[] => expected.filter((sn) => pred(certs.find((c) => c.serial === sn) as CertificateRecord));

    assert.deepEqual(serials(await s().listCertificates({ deviceId: device.id })), expected);
    assert.deepEqual(serials(await s().listCertificates({ deviceId: device.id, status: "valid" })), pick((c) => c.status === "valid"));
    assert.deepEqual(serials(await s().listCertificates({ deviceId: device.id, expiresBefore: at(1500) })), pick((c) => c.notAfter < at(1500)));
    assert.deepEqual(serials(await s().listCertificates({ deviceId: device.id, expiresAfter: at(1500) })), pick((c) => c.notAfter >= at(1500)));
    assert.deepEqual(
      serials(await s().listCertificates({ deviceId: device.id, expiresAfter: at(500), expiresBefore: at(2000), status: "valid" })),
      pick((c) => c.status === "valid" && c.notAfter >= at(500) && c.notAfter < at(2000)),
    );
    assert.deepEqual(serials(await s().listCertificates({ deviceId: device.id, limit: 2, offset: 1 })), expected.slice(1, 3));
    assert.deepEqual(serials(await s().listCertificates({ deviceId: device.id, offset: 4 })), expected.slice(4));
    assert.deepEqual(serials(await s().listCertificates({ deviceId: device.id, limit: 0 })), []);

    assert.equal(await s().countCertificates({ deviceId: device.id }), 6);
    assert.equal(await s().countCertificates({ deviceId: device.id, status: "valid" }), 4);
    assert.equal(await s().countCertificates({ deviceId: device.id, expiresBefore: at(1500) }), 3);
    assert.equal(await s().countCertificates({ deviceId: device.id, expiresAfter: at(1500) }), 3);
    assert.equal(await s().countCertificates({ deviceId: uid("nobody") }), 0);

    const all = await s().listCertificates();
    assert.equal(all.length, await s().countCertificates());
    for (let i = 1; i < all.length; i++) assert.ok(certOrder(all[i - 1] as CertificateRecord) < certOrder(all[i] as CertificateRecord), "ordered by issuedAt, serial");
  });

  test("revokeCertificate is compare-and-set: 20 concurrent revokes, one winner, one audit event", async () => {
    const cert = makeCert();
    await s().commitIssued([issued(cert)]);
    const { ok, errors } = await concurrently(20, (i) => s().revokeCertificate(cert.serial, "keyCompromise", at(100 + i), event("certificate.revoked", cert.serial, { i })));
    assert.equal(ok.length, 1);
    assert.equal(errors.length, 19);
    for (const err of errors) assert.ok(err instanceof TesseraError && err.code === "TESSERA_ERR_CERT_ALREADY_REVOKED", String(err));
    const winner = ok[0];
    assert.ok(winner);
    assert.equal(winner.status, "revoked");
    assert.equal(winner.revocationReason, "keyCompromise");
    assert.deepStrictEqual(await s().getCertificate(cert.serial), winner);
    assert.equal((await s().listAudit({ target: cert.serial, action: "certificate.revoked" })).length, 1);

    assert.equal(await s().revokeCertificate(newSerial(), "unspecified", at(1), event("certificate.revoked", "x")), undefined);
    const superseded = makeCert({ status: "superseded" });
    await s().commitIssued([issued(superseded)]);
    const revoked = await s().revokeCertificate(superseded.serial, "superseded", at(7), event("certificate.revoked", superseded.serial));
    assert.equal(revoked?.status, "revoked");
    assert.deepEqual(revoked?.revokedAt, at(7));
  });

  test("listRevokedPage pages revoked certificates by serial, only those not expired before the given time", async () => {
    const expired = makeCert({ notAfter: at(10) });
    const boundary = makeCert({ notAfter: at(20) });
    const live = makeCert({ notAfter: at(30) });
    const valid = makeCert({ notAfter: at(30) });
    await s().commitIssued([expired, boundary, live, valid].map((c) => issued(c)));
    for (const c of [expired, boundary, live]) await s().revokeCertificate(c.serial, "cessationOfOperation", at(5), event("certificate.revoked", c.serial));
    // Read the way the CRL does, page after page, with pages of 2 so that paging itself is exercised.
    const readAll = async (since: Date) => {
      const out: RevokedEntry[] = [];
      for (let after: string | undefined; ; ) {
        const page = await s().listRevokedPage(since, after, 2);
        assert.ok(page.length <= 2);
        out.push(...page);
        if (page.length < 2) return out;
        after = page[page.length - 1]!.serial;
      }
    };

    const all = await readAll(at(0));
    const sortedSerials = all.map((e) => e.serial);
    assert.deepEqual(sortedSerials, [...sortedSerials].sort());
    assert.equal(new Set(sortedSerials).size, sortedSerials.length);
    const mine = all.filter((e) => [expired.serial, boundary.serial, live.serial].includes(e.serial));
    assert.equal(mine.length, 3);
    for (const e of mine) {
      assert.deepEqual(e.revokedAt, at(5));
      assert.equal(e.reason, "cessationOfOperation");
    }
    assert.ok(!sortedSerials.includes(valid.serial));

    const since = (await readAll(at(20))).map((e) => e.serial);
    assert.ok(!since.includes(expired.serial));
    assert.ok(since.includes(boundary.serial));
    assert.ok(since.includes(live.serial));
    // A page starts strictly after the serial it is given.
    const [first] = await s().listRevokedPage(at(0), boundary.serial, 1);
    assert.ok(first === undefined || first.serial > boundary.serial);
  });

  test("2,000 concurrent commitIssued calls store 2,000 distinct certificates", async () => {
    const { device } = await s().createDeviceIfAbsent({ id: uid("dev"), fingerprint: null, status: "active", protocol: "cli", attributes: {} }, at(0));
    const deviceId = device.id;
    const certs = Array.from({ length: 2000 }, (_, i) => makeCert({ deviceId, issuedAt: at(1000 + i) }));
    const { errors } = await concurrently(certs.length, (i) => s().commitIssued([issued(certs[i] as CertificateRecord)]));
    assert.deepEqual(errors, []);
    assert.equal(await s().countCertificates({ deviceId }), 2000);
    const stored = new Set((await s().listCertificates({ deviceId })).map((c) => c.serial));
    assert.equal(stored.size, 2000);
    for (const c of certs) assert.ok(stored.has(c.serial));
  });
}
