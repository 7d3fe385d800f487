/**
 * Conformance tests for the admin console's aggregates and state (migration
 * 5): expiries and activity bucketed by UTC day (edges at midnight to the
 * millisecond), renewals told from first issuances, the failure counter's
 * upsert under concurrency, devices issued under one actor, session expiry
 * and the job compare-and-set. Aggregates use days far from the other tests'
 * times (2081, 2085, 2091), as the suite shares one database.
 */
import assert from "node:assert/strict";
import type { CertificateRecord, IssuedWrite, JobRecord, Store } from "../authority/ports.js";
import { at, concurrently, event, issued, makeCert, newDevice, rejectsWith, uid, type Register } from "./conformance-fixtures.js";

const d = (text: string) => new Date(text);

/** An issuance audited as done by `actor`. */
function issuedBy(actor: string, cert: CertificateRecord, extra: Omit<IssuedWrite, "certificate" | "audit"> = {}): IssuedWrite {
  return { ...issued(cert, extra), audit: { ...event("certificate.issued", cert.serial), actor } };
}

/** Registers the aggregate tests; `s` returns the open, migrated store. */
export function adminHealthTests(s: () => Store, test: Register): void {
  test("expiryPerDay: valid certificates per UTC day of notAfter, in [from's day, + days)", async () => {
    const valid = (notAfter: string) => makeCert({ notAfter: d(notAfter) });
    await s().commitIssued(
      [
        valid("2091-04-30T23:59:59.999Z"),
        valid("2091-05-01T00:00:00.000Z"),
        valid("2091-05-01T23:59:59.999Z"),
        valid("2091-05-02T00:00:00.000Z"),
        valid("2091-05-04T12:00:00.000Z"),
        makeCert({ notAfter: d("2091-05-01T12:00:00.000Z"), status: "revoked", revokedAt: at(1), revocationReason: "unspecified" }),
        makeCert({ notAfter: d("2091-05-02T12:00:00.000Z"), status: "superseded" }),
      ].map((c) => issued(c)),
    );
    const from = d("2091-05-01T15:00:00.000Z");
    assert.deepEqual(await s().expiryPerDay(from, 2), [
      { day: "2091-05-01", count: 2 },
      { day: "2091-05-02", count: 1 },
    ]);
    assert.deepEqual(await s().expiryPerDay(from, 4), [
      { day: "2091-05-01", count: 2 },
      { day: "2091-05-02", count: 1 },
      { day: "2091-05-04", count: 1 },
    ]);
    assert.deepEqual(await s().expiryPerDay(d("2091-04-30T00:00:00.000Z"), 1), [{ day: "2091-04-30", count: 1 }]);
    assert.deepEqual(await s().expiryPerDay(from, 0), []);
    await rejectsWith(s().expiryPerDay(from, -1), "TESSERA_ERR_INPUT_MALFORMED");
    await rejectsWith(s().expiryPerDay(from, 1.5), "TESSERA_ERR_INPUT_MALFORMED");
  });

  test("activityPerDay: issued vs renewed (earlier certificate of the device, same-instant ties by serial), revoked by revokedAt", async () => {
    const x = (time: string) => d(`2081-06-10T${time}Z`);
    const y = (time: string) => d(`2081-06-11T${time}Z`);
    const one = newDevice();
    const c1 = makeCert({ deviceId: one.id, issuedAt: x("10:00:00.000") });
    const c2 = makeCert({ deviceId: one.id, issuedAt: x("12:00:00.000") });
    const c3 = makeCert({ deviceId: one.id, issuedAt: y("00:00:00.000") });
    for (const c of [c1, c2, c3]) await s().commitIssued([issued(c, { device: one })]);
    // Two certificates of one device in the same millisecond: one first issuance, one renewal.
    const twin = newDevice();
    await s().commitIssued([x("23:59:59.999"), x("23:59:59.999")].map((t) => issued(makeCert({ deviceId: twin.id, issuedAt: t }), { device: twin })));
    const loose = makeCert({ issuedAt: y("05:00:00.000") });
    await s().commitIssued([issued(loose)]);
    // Its first certificate predates the window; the one inside is still a renewal.
    const veteran = newDevice();
    await s().commitIssued([issued(makeCert({ deviceId: veteran.id, issuedAt: d("2081-06-01T00:00:00.000Z") }), { device: veteran })]);
    await s().commitIssued([issued(makeCert({ deviceId: veteran.id, issuedAt: y("09:00:00.000") }), { device: veteran })]);
    await s().revokeCertificate(c2.serial, "keyCompromise", x("23:59:59.999"), event("certificate.revoked", c2.serial));
    await s().revokeCertificate(c1.serial, "superseded", y("00:00:00.000"), event("certificate.revoked", c1.serial));

    const xDay = { day: "2081-06-10", issued: 2, renewed: 2, revoked: 1 };
    const yDay = { day: "2081-06-11", issued: 1, renewed: 2, revoked: 1 };
    assert.deepEqual(await s().activityPerDay(x("18:00:00.000")), [xDay, yDay], "since's whole day counts");
    assert.deepEqual(await s().activityPerDay(y("00:00:00.000")), [yDay]);
    assert.deepEqual(await s().activityPerDay(d("2081-06-01T23:00:00.000Z")), [{ day: "2081-06-01", issued: 1, renewed: 0, revoked: 0 }, xDay, yDay]);
    assert.deepEqual(await s().activityPerDay(d("2081-06-12T00:00:00.000Z")), []);
  });

  test("recordFailure: 20 concurrent upserts count 20; counters per UTC day, protocol and code", async () => {
    const protocol = uid("proto");
    const day1 = (time: string) => d(`2085-01-31T${time}Z`);
    const { errors } = await concurrently(20, (i) => s().recordFailure(protocol, "TESSERA_ERR_AUTH_DENIED", day1(i % 2 ? "00:00:00.000" : "23:59:59.999")));
    assert.deepEqual(errors, []);
    await Promise.all([s().recordFailure(protocol, "http_500", day1("12:00:00.000")), s().recordFailure(protocol, "http_500", day1("13:00:00.000"))]);
    await s().recordFailure(protocol, "TESSERA_ERR_AUTH_DENIED", d("2085-02-01T00:00:00.000Z"));
    await s().recordFailure(uid("other"), "http_500", day1("12:00:00.000"));
    // A batch of several at once adds them all (the server counts in memory and writes sums).
    await s().recordFailure(protocol, "http_500", day1("14:00:00.000"), 3);
    const mine = async (since: Date) => (await s().listFailures(since)).filter((f) => f.protocol === protocol);
    assert.deepEqual(await mine(day1("18:00:00.000")), [
      { day: "2085-01-31", protocol, code: "TESSERA_ERR_AUTH_DENIED", count: 20 },
      { day: "2085-01-31", protocol, code: "http_500", count: 5 },
      { day: "2085-02-01", protocol, code: "TESSERA_ERR_AUTH_DENIED", count: 1 },
    ]);
    assert.deepEqual(await mine(d("2085-02-01T23:59:59.999Z")), [{ day: "2085-02-01", protocol, code: "TESSERA_ERR_AUTH_DENIED", count: 1 }]);
    const listed = await s().listFailures(day1("00:00:00.000"));
    const tuple = (f: { day: string; protocol: string; code: string }) => [f.day, f.protocol, f.code];
    const before = (a: string[], b: string[]): number => a.findIndex((v, i) => v !== b[i]);
    for (let i = 1; i < listed.length; i++) {
      const [prev, cur] = [tuple(listed[i - 1] ?? assert.fail()), tuple(listed[i] ?? assert.fail())];
      const k = before(prev, cur);
      assert.ok(k >= 0 && (prev[k] ?? "") < (cur[k] ?? ""), "ordered by day, protocol, code, each once");
    }
  });

  test("devicesIssuedBy: distinct devices of the certificates issued under an actor, sorted", async () => {
    const actor = `bootstrap:${uid("line")}`;
    const [one, two, other] = [newDevice(), newDevice(), newDevice()];
    await s().commitIssued([issuedBy(actor, makeCert({ deviceId: two.id }), { device: two })]);
    await s().commitIssued([issuedBy(actor, makeCert({ deviceId: one.id, issuedAt: at(1) }), { device: one })]);
    await s().commitIssued([issuedBy(actor, makeCert({ deviceId: one.id, issuedAt: at(2) }), { device: one })]);
    await s().commitIssued([issuedBy(actor, makeCert())]);
    const foreign = makeCert({ deviceId: other.id });
    await s().commitIssued([issuedBy(`${actor}x`, foreign, { device: other })]);
    await s().appendAudit({ ...event("certificate.revoked", foreign.serial), actor });
    assert.deepEqual(await s().devicesIssuedBy(actor), [one.id, two.id].sort());
    assert.deepEqual(await s().devicesIssuedBy(uid("bootstrap:none")), []);
  });

  test("admin sessions: round trip, expired at expiresAt, delete once, prune the expired", async () => {
    const session = (expiresAt: Date) => ({
      idHash: uid("sha"),
      tokenId: uid("cred"),
      tokenName: "alice",
      role: "editor",
      csrfToken: uid("csrf"),
      createdAt: at(0),
      expiresAt,
    });
    const a = session(at(10));
    await s().createAdminSession(a);
    assert.deepStrictEqual(await s().getAdminSession(a.idHash, at(9)), a);
    assert.equal(await s().getAdminSession(a.idHash, at(10)), undefined, "expired at expiresAt");
    assert.equal(await s().getAdminSession(a.idHash, at(11)), undefined);
    assert.equal(await s().getAdminSession(uid("sha"), at(1)), undefined);
    await rejectsWith(s().createAdminSession({ ...a, tokenId: "x" }), "TESSERA_ERR_STORE_CONFLICT");
    assert.equal(await s().deleteAdminSession(a.idHash), true);
    assert.equal(await s().deleteAdminSession(a.idHash), false);

    const [early, late] = [session(at(20)), session(at(30))];
    await s().createAdminSession(early);
    await s().createAdminSession(late);
    assert.equal(await s().pruneAdminSessions(at(19)), 0);
    assert.equal(await s().pruneAdminSessions(at(20)), 1);
    assert.equal(await s().getAdminSession(early.idHash, at(0)), undefined, "pruned rows are gone, whatever the time asked");
    assert.deepStrictEqual(await s().getAdminSession(late.idHash, at(25)), late);
    assert.equal(await s().pruneAdminSessions(at(40)), 1);
  });

  test("jobs: round trip, progress while running, finishJob compare-and-set (one winner of ten), newest first", async () => {
    const job = (createdAt: Date): JobRecord => ({
      id: uid("job"),
      kind: "revoke-bootstrap-batch",
      params: { credentialId: uid("cred"), reason: "keyCompromise", nested: { n: [1, 2] } },
      status: "running",
      done: 0,
      total: 0,
      createdBy: "token:alice",
      createdAt,
      updatedAt: createdAt,
      finishedAt: null,
      result: null,
      error: null,
    });
    const a = job(at(1));
    await s().createJob(a);
    assert.deepStrictEqual(await s().getJob(a.id), a);
    assert.equal(await s().getJob(uid("job")), undefined);
    await s().updateJobProgress(a.id, 3, 10, at(2));
    assert.deepStrictEqual(await s().getJob(a.id), { ...a, done: 3, total: 10, updatedAt: at(2) });
    await rejectsWith(s().updateJobProgress(a.id, 1.5, 10, at(2)), "TESSERA_ERR_INPUT_MALFORMED");

    assert.equal(await s().finishJob(a.id, "succeeded", at(3), { revoked: 10 }, null), true);
    assert.equal(await s().finishJob(a.id, "failed", at(4), null, "late"), false);
    await s().updateJobProgress(a.id, 4, 10, at(5));
    const done = { ...a, status: "succeeded" as const, done: 3, total: 10, updatedAt: at(3), finishedAt: at(3), result: { revoked: 10 } };
    assert.deepStrictEqual(await s().getJob(a.id), done, "neither the late finish nor late progress changed it");
    assert.equal(await s().finishJob(uid("job"), "failed", at(4), null, "x"), false);

    const b = job(at(5));
    await s().createJob(b);
    const { ok, errors } = await concurrently(10, (i) => s().finishJob(b.id, i % 2 ? "failed" : "succeeded", at(6), null, i % 2 ? `error ${i}` : null));
    assert.deepEqual(errors, []);
    assert.equal(ok.filter(Boolean).length, 1);
    const finished = await s().getJob(b.id);
    assert.ok(finished && finished.status !== "running");
    assert.equal(finished.error === null, finished.status === "succeeded");

    const c = job(at(5));
    await s().createJob(c);
    const newest = [c, b].sort((x, y) => (x.id < y.id ? 1 : -1)).map((j) => j.id);
    assert.deepEqual((await s().listJobs()).map((j) => j.id).filter((id) => id !== a.id).slice(0, 2), newest, "same createdAt: id descending");
    assert.deepEqual((await s().listJobs(2)).map((j) => j.id), newest);
    assert.deepEqual((await s().listJobs()).at(-1)?.id, a.id);
  });
}
