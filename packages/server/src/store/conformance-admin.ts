/**
 * Conformance tests for the admin console's searches (migration 5): what `q`
 * matches (each exact kind, exact before substring, `%`, `_` and `!` taken
 * literally), filters, every sort in both orders with its tie-break and NULL
 * placement, paging against the total, and the audit search's actor prefix
 * range. The suite shares one database, so each test isolates its rows by a
 * unique protocol, marker or actor.
 */
import assert from "node:assert/strict";
import type { CertificateRecord, CertificateSort, DeviceSort, DeviceSummary, Store } from "../authority/ports.js";
import { at, issued, makeCert, makeRequest, newDevice, rejectsWith, uid, type Register } from "./conformance-fixtures.js";

type Key = Array<string | null>;

/** The order the store promises: keys compared in `dir`, a null first key last either way, then the tie key in `dir`. */
function sortedBy<T>(items: readonly T[], key: (t: T) => Key, tie: (t: T) => string, dir: "asc" | "desc"): T[] {
  const sign = dir === "asc" ? 1 : -1;
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return [...items].sort((x, y) => {
    const [kx, ky] = [key(x), key(y)];
    if (kx[0] === null || ky[0] === null) {
      if (kx[0] !== ky[0]) return kx[0] === null ? 1 : -1;
    }
    for (let i = 0; i < kx.length; i++) {
      const c = cmp(kx[i] ?? "", ky[i] ?? "");
      if (c !== 0) return sign * c;
    }
    return sign * cmp(tie(x), tie(y));
  });
}

/** A serial as an operator might paste it: upper case, colon-separated octets, a leading zero octet. */
function pasted(serial: string): string {
  const even = serial.length % 2 ? `0${serial}` : serial;
  return `00:${even.toUpperCase().match(/../g)?.join(":")}`;
}

/** Issues `certs` in order to a new device (each becomes its current certificate); returns the device id. */
async function deviceWith(store: Store, certs: CertificateRecord[], device = newDevice()): Promise<string> {
  for (const c of certs) await store.commitIssued([issued({ ...c, deviceId: device.id }, { device })]);
  return device.id;
}

/** Registers the search tests; `s` returns the open, migrated store. */
export function adminSearchTests(s: () => Store, test: Register): void {
  test("searchDevices: q by id, hardware fingerprint, any certificate's serial or SHA-256; exact beats substring", async () => {
    const mark = uid("mark");
    const a = newDevice();
    const old = makeCert({ issuedAt: at(1), subject: `CN=${mark} old` });
    const current = makeCert({ issuedAt: at(2), subject: `CN=${mark} Alpha,O=Tessera`, notAfter: at(5000) });
    await deviceWith(s(), [old, current], a);
    const b = await deviceWith(s(), [makeCert({ subject: `CN=${mark} beta` })]);
    // Its subject contains a's id, so it would match a substring search for it.
    const c = await deviceWith(s(), [makeCert({ subject: `CN=x${a.id}x` })]);
    const ids = async (q: string) => (await s().searchDevices({ q, sort: "id" })).items.map((d) => d.id);

    assert.deepEqual(await ids(a.id), [a.id], "an exact id hides substring matches");
    assert.deepEqual(await ids(` ${a.id} `), [a.id], "q is trimmed");
    assert.deepEqual(await ids(a.fingerprint ?? ""), [a.id]);
    assert.deepEqual(await ids(pasted(old.serial)), [a.id], "a superseded certificate's serial, pasted");
    assert.deepEqual(await ids(`0x${current.serial}`), [a.id]);
    assert.deepEqual(await ids(current.fingerprint.toUpperCase()), [a.id]);
    assert.deepEqual(await ids(old.keyFingerprint), [a.id]);
    assert.deepEqual(await ids(`X${a.id.slice(0, -1)}`), [c], "a substring once nothing matches exactly");
    assert.deepEqual(await ids(mark), [a.id, b].sort(), "the current subject only: the old one is no longer a's");
    assert.deepEqual(await ids(`${mark} ALPHA`), [a.id], "ASCII case-insensitive");
    assert.deepEqual(await ids(`${mark} old`), []);
    assert.deepEqual(await s().searchDevices({ q: uid("nothing") }), { items: [], total: 0 });

    const summary = (await s().searchDevices({ q: a.id })).items[0];
    const stored = await s().getDevice(a.id);
    assert.ok(stored);
    assert.deepStrictEqual(summary, { ...stored, subject: current.subject, notAfter: current.notAfter, certificateStatus: "valid" } satisfies DeviceSummary);
    const { device: bare } = await s().createDeviceIfAbsent({ id: uid("dev"), fingerprint: null, status: "pending", protocol: "imprint", attributes: {} }, at(3));
    assert.deepEqual((await s().searchDevices({ q: bare.id })).items.map((d) => [d.subject, d.notAfter, d.certificateStatus]), [[null, null, null]]);
  });

  test("searchDevices and searchCertificates: %, _ and ! in q are literal", async () => {
    const mark = uid("lit");
    const subjects = [`CN=${mark}_100%`, `CN=${mark}x100y`, `CN=${mark}!bang`, `CN=${mark}xbang`];
    for (const subject of subjects) await deviceWith(s(), [makeCert({ subject })]);
    const find = async (q: string) => (await s().searchDevices({ q })).items.map((d) => d.subject);
    assert.deepEqual(await find(`${mark}_100%`), [subjects[0]]);
    assert.deepEqual(await find(`${mark}_`), [subjects[0]]);
    assert.deepEqual(await find("100%"), [subjects[0]]);
    assert.deepEqual(await find(`${mark}!b`), [subjects[2]]);
    assert.deepEqual((await s().searchCertificates({ q: `${mark}_1` })).items.map((c) => c.subject), [subjects[0]]);
    assert.equal((await s().searchCertificates({ q: mark })).total, 4);
  });

  test("searchDevices: filters, every sort in both orders (ties by id, nulls last), paging against the total", async () => {
    const protocol = uid("proto");
    const dev = (status: "active" | "disabled" | "revoked") => ({ ...newDevice(), protocol, status });
    const made = [
      { d: dev("active"), created: 10, notAfter: 1000, seen: 50 },
      { d: dev("active"), created: 10, notAfter: 900, seen: null },
      { d: dev("disabled"), created: 5, notAfter: 900, seen: 40 },
      { d: dev("revoked"), created: 15, notAfter: 2000, seen: null },
    ];
    for (const m of made) {
      await deviceWith(s(), [makeCert({ issuedAt: at(m.created), notAfter: at(m.notAfter) })], m.d);
      if (m.seen !== null) await s().touchDevice(m.d.id, "192.0.2.1", at(m.seen));
    }
    const { device: pending } = await s().createDeviceIfAbsent({ id: uid("dev"), fingerprint: null, status: "pending", protocol, attributes: {} }, at(20));
    await s().touchDevice(pending.id, null, at(60));

    const all = (await s().searchDevices({ protocol })).items;
    assert.equal(all.length, 5);
    const time = (d: Date | null) => (d === null ? null : d.toISOString());
    const keys: Record<DeviceSort, (d: DeviceSummary) => Key> = {
      id: (d) => [d.id],
      status: (d) => [d.status, time(d.createdAt)],
      protocol: (d) => [d.protocol],
      createdAt: (d) => [time(d.createdAt)],
      lastSeenAt: (d) => [time(d.lastSeenAt)],
      notAfter: (d) => [time(d.notAfter)],
    };
    for (const sort of Object.keys(keys) as DeviceSort[]) {
      for (const order of ["asc", "desc"] as const) {
        const expected = sortedBy(all, keys[sort], (d) => d.id, order).map((d) => d.id);
        const page = await s().searchDevices({ protocol, sort, order });
        assert.deepEqual(page.items.map((d) => d.id), expected, `${sort} ${order}`);
        const paged = [];
        for (let offset = 0; offset < 5; offset += 2) {
          const p = await s().searchDevices({ protocol, sort, order, limit: 2, offset });
          assert.equal(p.total, 5);
          paged.push(...p.items.map((d) => d.id));
        }
        assert.deepEqual(paged, expected, `${sort} ${order}, paged`);
      }
    }
    assert.deepEqual((await s().searchDevices({ protocol })).items.map((d) => d.id), sortedBy(all, keys.createdAt, (d) => d.id, "asc").map((d) => d.id), "default: createdAt asc");
    const [first, second] = made;
    assert.ok(first && second);
    assert.deepEqual(new Set((await s().searchDevices({ protocol, status: "active" })).items.map((d) => d.id)), new Set([first.d.id, second.d.id]));
    const expiring = await s().searchDevices({ protocol, expiresBefore: at(950), sort: "id", limit: 1 });
    assert.equal(expiring.total, 2, "devices without a certificate never match expiresBefore");
    assert.equal(expiring.items.length, 1);
    assert.deepEqual((await s().searchDevices({ protocol, limit: 10, offset: 5 })).items, []);
    await rejectsWith(s().searchDevices({ sort: "constructor" as DeviceSort }), "TESSERA_ERR_INPUT_MALFORMED");
    await rejectsWith(s().searchDevices({ sort: "id; DROP TABLE devices" as DeviceSort }), "TESSERA_ERR_INPUT_MALFORMED");
    await rejectsWith(s().searchDevices({ order: "up" as "asc" }), "TESSERA_ERR_INPUT_MALFORMED");
    await rejectsWith(s().searchDevices({ limit: -1 }), "TESSERA_ERR_INPUT_MALFORMED");
  });

  test("searchCertificates: q kinds, filters, every sort in both orders, paging, no DER", async () => {
    const protocol = uid("proto");
    const device = newDevice();
    const mark = uid("cmark");
    const certs = [
      makeCert({ protocol, issuedAt: at(1), notAfter: at(300), subject: `CN=${mark} b`, status: "superseded" }),
      makeCert({ protocol, issuedAt: at(2), notAfter: at(100), subject: `CN=${mark} a`, status: "revoked", revokedAt: at(3), revocationReason: "keyCompromise" }),
      makeCert({ protocol, issuedAt: at(2), notAfter: at(300), subject: `CN=${mark} c` }),
    ];
    await deviceWith(s(), certs, device);
    const loose = [makeCert({ protocol, issuedAt: at(4), notAfter: at(200), subject: `CN=${mark} a` }), makeCert({ protocol, issuedAt: at(0), notAfter: at(100), subject: "CN=other" })];
    await s().commitIssued(loose.map((c) => issued(c)));
    const all = [...certs.map((c) => ({ ...c, deviceId: device.id })), ...loose];
    const [c0, c1, c2] = certs;
    assert.ok(c0 && c1 && c2);
    const serials = async (q: string, extra = {}) => (await s().searchCertificates({ q, sort: "serial", ...extra })).items.map((c) => c.serial);

    assert.deepEqual(await serials(pasted(c1.serial)), [c1.serial]);
    assert.deepEqual(await serials(c1.fingerprint.toUpperCase()), [c1.serial]);
    assert.deepEqual(await serials(c2.keyFingerprint), [c2.serial]);
    assert.deepEqual(await serials(device.id), certs.map((c) => c.serial).sort());
    assert.deepEqual(await serials(device.id, { status: "valid" }), [c2.serial]);
    assert.deepEqual(await serials(`${mark} A`), [c1.serial, loose[0]?.serial].sort());
    assert.deepEqual(await serials(`${mark} A`, { deviceId: device.id }), [c1.serial]);

    const page = await s().searchCertificates({ protocol, limit: 1 });
    assert.equal(page.total, 5);
    const item = page.items[0];
    assert.ok(item);
    assert.equal("der" in item, false);
    const { der: _der, ...summary } = all.find((c) => c.serial === item.serial) ?? assert.fail("unknown serial");
    assert.deepStrictEqual(item, summary);

    assert.equal((await s().searchCertificates({ protocol, expiresAfter: at(200) })).total, 3);
    assert.equal((await s().searchCertificates({ protocol, expiresBefore: at(200) })).total, 2);
    assert.equal((await s().searchCertificates({ protocol, expiresAfter: at(100), expiresBefore: at(300) })).total, 3);
    assert.equal((await s().searchCertificates({ protocol, status: "revoked" })).total, 1);

    const time = (d: Date) => d.toISOString();
    const keys: Record<CertificateSort, (c: CertificateRecord) => Key> = {
      issuedAt: (c) => [time(c.issuedAt)],
      notAfter: (c) => [time(c.notAfter)],
      serial: (c) => [c.serial],
      subject: (c) => [c.subject],
      status: (c) => [c.status, time(c.notAfter)],
    };
    for (const sort of Object.keys(keys) as CertificateSort[]) {
      for (const order of ["asc", "desc"] as const) {
        const expected = sortedBy(all, keys[sort], (c) => c.serial, order).map((c) => c.serial);
        assert.deepEqual((await s().searchCertificates({ protocol, sort, order })).items.map((c) => c.serial), expected, `${sort} ${order}`);
        const paged = [];
        for (let offset = 0; offset < 5; offset += 3) paged.push(...(await s().searchCertificates({ protocol, sort, order, limit: 3, offset })).items.map((c) => c.serial));
        assert.deepEqual(paged, expected, `${sort} ${order}, paged`);
      }
    }
    await rejectsWith(s().searchCertificates({ sort: "der" as CertificateSort }), "TESSERA_ERR_INPUT_MALFORMED");
  });

  test("searchRequests: oldest first (createdAt, then id), filters, paging with the total", async () => {
    const protocol = uid("proto");
    const made = [makeRequest({ protocol, createdAt: at(3) }), makeRequest({ protocol, createdAt: at(1) }), makeRequest({ protocol, createdAt: at(1), status: "rejected" })];
    for (const r of made) await s().createRequest(r);
    const order = [...made].sort((x, y) => x.createdAt.getTime() - y.createdAt.getTime() || (x.id < y.id ? -1 : 1)).map((r) => r.id);
    const all = await s().searchRequests({ protocol });
    assert.equal(all.total, 3);
    assert.deepEqual(all.items.map((r) => r.id), order);
    assert.deepStrictEqual(all.items.find((r) => r.id === made[0]?.id), made[0]);
    const second = await s().searchRequests({ protocol, limit: 1, offset: 1 });
    assert.deepEqual([second.total, second.items.map((r) => r.id)], [3, order.slice(1, 2)]);
    const pending = await s().searchRequests({ protocol, status: "pending" });
    assert.equal(pending.total, 2);
    assert.ok(pending.items.every((r) => r.status === "pending"));
  });

  test("searchAudit: newest first; action, target, since/until, beforeId, limit; actor exact or prefix (a range, case-sensitive)", async () => {
    const base = uid("tok");
    const actors = [`${base}:alice`, `${base}:bob`, `${base};x`, base, `${base}:éa`, `${base}:ê`, `${base}:alice`];
    for (const [i, actor] of actors.entries()) {
      await s().appendAudit({ at: at(100 + i), actor, action: i % 2 ? "token.used" : "certificate.revoked", target: `t-${base}-${i % 3}`, detail: { i } });
    }
    const ofActor = async (actor: string, extra = {}) => (await s().searchAudit({ actor, ...extra })).map((e) => e.detail.i);
    assert.deepEqual(await ofActor(`${base}:alice`), [6, 0]);
    assert.deepEqual(await ofActor(`${base}:*`), [6, 5, 4, 1, 0], "the prefix's upper bound itself (';') is outside");
    assert.deepEqual(await ofActor(`${base}*`), [6, 5, 4, 3, 2, 1, 0]);
    assert.deepEqual(await ofActor(`${base}:é*`), [4], "a non-ASCII last character: ê is past the range");
    assert.deepEqual(await ofActor(`${base.toUpperCase()}:*`), []);
    assert.deepEqual(await ofActor(`${base}*`, { action: "token.used" }), [5, 3, 1]);
    assert.deepEqual(await ofActor(`${base}*`, { target: `t-${base}-0` }), [6, 3, 0]);
    assert.deepEqual(await ofActor(`${base}*`, { since: at(102), until: at(105) }), [4, 3, 2], "since inclusive, until exclusive");
    const newest = await s().searchAudit({ actor: `${base}*`, limit: 2 });
    assert.deepEqual(newest.map((e) => e.detail.i), [6, 5]);
    const next = newest.at(-1)?.id;
    assert.ok(next !== undefined);
    assert.deepEqual(await ofActor(`${base}*`, { beforeId: next, limit: 2 }), [4, 3], "keyset paging");
    const [e] = await s().searchAudit({ actor: `${base}:bob` });
    assert.deepStrictEqual(e && { ...e, id: 0 }, { id: 0, at: at(101), actor: `${base}:bob`, action: "token.used", target: `t-${base}-1`, detail: { i: 1 } });
    assert.ok((await s().searchAudit({ limit: 3 })).every((x, i, list) => i === 0 || x.id < (list[i - 1]?.id ?? 0)));
  });
}
