/**
 * Conformance tests for the outbox: messages enqueued with an issuance (and
 * rolled back with it), the claim compare-and-set that keeps replicas from
 * sending one message twice at once, lease expiry, completion, retry and
 * giving up; channels (each consumer claims its own) and ordering keys (per
 * key only the oldest pending message is claimable).
 */
import assert from "node:assert/strict";
import type { OutboxRecord, Store } from "../authority/ports.js";
import { at, concurrently, issued, makeCert, newDevice, rejectsWith, uid, type Register } from "./conformance-fixtures.js";

/** Later than any time a test claims at: parking leases rows past every test's clock. */
const FAR = new Date("9000-01-01T00:00:00.000Z");
const FOREVER = new Date("9999-01-01T00:00:00.000Z");

/**
 * Claims every claimable row left by earlier tests with a lease no test
 * outlives, so each test's claims see only the rows it enqueues.
 */
async function park(store: Store): Promise<void> {
  for (const channel of ["webhook", "bus"] as const) while ((await store.claimOutbox(FAR, FOREVER, 500, channel)).length > 0);
}

async function find(store: Store, id: string): Promise<OutboxRecord | undefined> {
  return (await store.listOutbox()).find((m) => m.id === id);
}

function ids(records: readonly OutboxRecord[]): string[] {
  return records.map((m) => m.id);
}

async function enqueueOne(store: Store, when: Date, payload: Record<string, unknown> = {}): Promise<OutboxRecord> {
  const [m] = await store.enqueueOutbox([{ topic: "device.created", payload }], when);
  assert.ok(m);
  return m;
}

/** Registers the outbox tests; `s` returns the open, migrated store. */
export function outboxTests(s: () => Store, test: Register): void {
  test("enqueueOutbox stores pending messages; listOutbox lists them, by state and with a limit", async () => {
    await park(s());
    const payload = { deviceId: "dev-ünï", nested: { list: [1, "two", null], ok: true } };
    const [a, b] = await s().enqueueOutbox(
      [
        { topic: "device.created", payload },
        { topic: "test.other", payload: {} },
      ],
      at(1),
    );
    assert.ok(a && b);
    assert.match(a.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.notEqual(a.id, b.id);
    assert.deepStrictEqual(a, {
      id: a.id,
      topic: "device.created",
      payload,
      channel: "webhook",
      orderingKey: null,
      createdAt: at(1),
      state: "pending",
      attempts: 0,
      nextAttemptAt: at(1),
      lockedUntil: null,
      deliveredAt: null,
      lastError: null,
    });
    assert.deepStrictEqual(await find(s(), a.id), a);
    assert.equal(b.topic, "test.other");
    const pending = await s().listOutbox({ state: "pending" });
    assert.ok(pending.some((m) => m.id === a.id) && pending.some((m) => m.id === b.id));
    assert.ok(!(await s().listOutbox({ state: "delivered" })).some((m) => m.id === a.id));
    assert.equal((await s().listOutbox({ limit: 1 })).length, 1);
    assert.deepEqual(await s().enqueueOutbox([], at(1)), []);
  });

  test("commitIssued enqueues its outbox messages in the same transaction; a rolled-back one leaves no row", async () => {
    const device = newDevice();
    const mark = uid("mark");
    const c1 = makeCert({ deviceId: device.id, issuedAt: at(5) });
    await s().commitIssued([
      issued(c1, { device: { ...device, expectCurrentSerial: null }, outbox: [{ topic: "device.created", payload: { deviceId: device.id, mark } }] }),
    ]);
    const mine = (await s().listOutbox()).filter((m) => m.payload.mark === mark);
    assert.equal(mine.length, 1);
    assert.equal(mine[0]?.topic, "device.created");
    assert.equal(mine[0]?.state, "pending");
    assert.deepStrictEqual(mine[0]?.createdAt, c1.issuedAt);
    assert.deepStrictEqual(mine[0]?.payload, { deviceId: device.id, mark });

    // A lineage conflict rolls the whole write back, outbox message included.
    const lost = uid("lost");
    await rejectsWith(
      s().commitIssued([
        issued(makeCert({ deviceId: device.id, issuedAt: at(6) }), {
          device: { ...device, expectCurrentSerial: null },
          outbox: [{ topic: "device.created", payload: { lost } }],
        }),
      ]),
      "TESSERA_ERR_LINEAGE_CONFLICT",
    );
    // In a group commit, a later write failing (duplicate serial) takes the earlier write's message with it.
    const other = newDevice();
    await rejectsWith(
      s().commitIssued([
        issued(makeCert({ deviceId: other.id, issuedAt: at(7) }), { device: other, outbox: [{ topic: "device.created", payload: { lost } }] }),
        issued(makeCert({ serial: c1.serial, issuedAt: at(7) }), { outbox: [{ topic: "device.created", payload: { lost } }] }),
      ]),
      "TESSERA_ERR_STORE_CONFLICT",
    );
    assert.equal(await s().getDevice(other.id), undefined);
    assert.deepEqual((await s().listOutbox()).filter((m) => m.payload.lost === lost), []);
  });

  test("claimOutbox takes due, unclaimed messages oldest due first, counts an attempt, sets the lease and respects the limit", async () => {
    await park(s());
    const m12 = await enqueueOne(s(), at(12));
    const m10 = await enqueueOne(s(), at(10));
    const m11 = await enqueueOne(s(), at(11));
    const m30 = await enqueueOne(s(), at(30));
    assert.deepEqual(await s().claimOutbox(at(20), at(21), 0, "webhook"), []);
    const first = await s().claimOutbox(at(20), at(21), 2, "webhook");
    assert.deepEqual(ids(first), [m10.id, m11.id]);
    for (const m of first) {
      assert.equal(m.attempts, 1);
      assert.deepStrictEqual(m.lockedUntil, at(21));
      assert.equal(m.state, "pending");
    }
    assert.deepEqual(ids(await s().claimOutbox(at(20), at(21), 10, "webhook")), [m12.id], "leased rows are skipped, not-yet-due ones too");
    assert.deepEqual(await s().claimOutbox(at(20), at(21), 10, "webhook"), []);
    const stored = await find(s(), m10.id);
    assert.equal(stored?.attempts, 1);
    assert.deepStrictEqual(stored?.lockedUntil, at(21));
    // Once due and with the leases run out, all four come back in due order.
    const later = await s().claimOutbox(at(30), at(31), 10, "webhook");
    assert.deepEqual(ids(later), [m10.id, m11.id, m12.id, m30.id]);
    assert.deepEqual(
      later.map((m) => m.attempts),
      [2, 2, 2, 1],
    );
    await rejectsWith(s().claimOutbox(at(30), at(31), -1, "webhook"), "TESSERA_ERR_INPUT_MALFORMED");
  });

  test("an expired lease can be re-claimed; an unexpired one cannot", async () => {
    await park(s());
    const m = await enqueueOne(s(), at(40));
    assert.deepEqual(ids(await s().claimOutbox(at(40), at(45), 10, "webhook")), [m.id]);
    assert.deepEqual(await s().claimOutbox(at(44), at(49), 10, "webhook"), []);
    const again = await s().claimOutbox(at(45), at(50), 10, "webhook");
    assert.deepEqual(ids(again), [m.id]);
    assert.equal(again[0]?.attempts, 2);
    assert.deepStrictEqual(again[0]?.lockedUntil, at(50));
  });

  test("concurrent claims get disjoint rows, and together every due row exactly once", async () => {
    for (let round = 0; round < 3; round++) {
      await park(s());
      const when = at(60 + round * 10);
      const enqueued = await s().enqueueOutbox(
        Array.from({ length: 24 }, (_, i) => ({ topic: "device.created", payload: { i } })),
        when,
      );
      const { ok, errors } = await concurrently(6, () => s().claimOutbox(when, at(60 + round * 10 + 5), 5, "webhook"));
      assert.deepEqual(errors, []);
      const claimed = ok.flat();
      assert.equal(new Set(ids(claimed)).size, claimed.length, "no row claimed twice");
      const rest = await s().claimOutbox(when, at(60 + round * 10 + 5), 100, "webhook");
      const all = [...ids(claimed), ...ids(rest)];
      assert.equal(new Set(all).size, all.length);
      assert.deepEqual([...all].sort(), ids(enqueued).sort());
      assert.ok([...claimed, ...rest].every((m) => m.attempts === 1));
    }
  });

  test("completeOutbox marks a message delivered once; a delivered message is never claimed or failed again", async () => {
    await park(s());
    const m = await enqueueOne(s(), at(80));
    await s().claimOutbox(at(80), at(81), 10, "webhook");
    assert.equal(await s().completeOutbox(m.id, at(80.5)), true);
    assert.equal(await s().completeOutbox(m.id, at(80.6)), false);
    const stored = await find(s(), m.id);
    assert.equal(stored?.state, "delivered");
    assert.deepStrictEqual(stored?.deliveredAt, at(80.5));
    assert.equal(stored?.lockedUntil, null);
    assert.equal(stored?.attempts, 1);
    assert.ok((await s().listOutbox({ state: "delivered" })).some((r) => r.id === m.id));
    assert.deepEqual(await s().claimOutbox(at(200), at(201), 10, "webhook"), []);
    assert.equal(await s().failOutbox(m.id, "late failure report", at(90)), false);
    assert.equal(await s().failOutbox(m.id, "late give-up", null), false);
    assert.equal((await find(s(), m.id))?.state, "delivered");
    assert.equal(await s().completeOutbox("no-such-message", at(80)), false);
  });

  test("failOutbox schedules a retry or gives up; a dead message is kept but never claimed", async () => {
    await park(s());
    const m = await enqueueOne(s(), at(120));
    await s().claimOutbox(at(120), at(125), 10, "webhook");
    assert.equal(await s().failOutbox(m.id, "HTTP 500", at(130)), true);
    let stored = await find(s(), m.id);
    assert.equal(stored?.state, "pending");
    assert.equal(stored?.lastError, "HTTP 500");
    assert.equal(stored?.lockedUntil, null, "the lease is released");
    assert.deepStrictEqual(stored?.nextAttemptAt, at(130));
    assert.deepEqual(await s().claimOutbox(at(129), at(131), 10, "webhook"), [], "not before its next attempt time");
    const retry = await s().claimOutbox(at(130), at(135), 10, "webhook");
    assert.deepEqual(ids(retry), [m.id]);
    assert.equal(retry[0]?.attempts, 2);
    assert.equal(await s().failOutbox(m.id, "timeout after 10 s", null), true);
    stored = await find(s(), m.id);
    assert.equal(stored?.state, "dead");
    assert.equal(stored?.lastError, "timeout after 10 s");
    assert.equal(stored?.lockedUntil, null);
    assert.ok((await s().listOutbox({ state: "dead" })).some((r) => r.id === m.id));
    assert.ok(!(await s().listOutbox({ state: "pending" })).some((r) => r.id === m.id));
    assert.deepEqual(await s().claimOutbox(at(10_000), at(10_001), 10, "webhook"), []);
    assert.equal(await s().completeOutbox(m.id, at(140)), false, "dead stays dead");
    assert.equal(await s().failOutbox(m.id, "again", at(150)), false);
    assert.equal(await s().failOutbox("no-such-message", "x", null), false);
  });

  test("channels: enqueue defaults to webhook, each claim takes only its channel, listOutbox filters by channel", async () => {
    await park(s());
    const key = uid("thing");
    const [w, b] = await s().enqueueOutbox(
      [
        { topic: "device.created", payload: { w: 1 } },
        { topic: "thing.cert-rotation", payload: { b: 1 }, channel: "bus", orderingKey: key },
      ],
      at(300),
    );
    assert.ok(w && b);
    assert.equal(w.channel, "webhook");
    assert.equal(w.orderingKey, null);
    assert.equal(b.channel, "bus");
    assert.equal(b.orderingKey, key);
    assert.deepStrictEqual(await find(s(), b.id), b);
    assert.deepEqual(ids(await s().claimOutbox(at(300), at(390), 10, "webhook")), [w.id]);
    const bus = await s().claimOutbox(at(300), at(390), 10, "bus");
    assert.deepEqual(ids(bus), [b.id]);
    assert.equal(bus[0]?.channel, "bus");
    assert.equal(bus[0]?.orderingKey, key);
    const listed = await s().listOutbox({ channel: "bus" });
    assert.ok(listed.some((m) => m.id === b.id) && !listed.some((m) => m.id === w.id));
    assert.ok(listed.every((m) => m.channel === "bus"));
    assert.ok((await s().listOutbox({ channel: "webhook", state: "pending" })).some((m) => m.id === w.id));
    await rejectsWith(s().claimOutbox(at(300), at(301), 10, "nope" as "bus"), "TESSERA_ERR_INPUT_MALFORMED");

    // An issuance stores its bus message with channel and key, in the same transaction.
    const device = newDevice();
    const mark = uid("mark");
    await s().commitIssued([
      issued(makeCert({ deviceId: device.id, issuedAt: at(302) }), {
        device: { ...device, expectCurrentSerial: null },
        outbox: [{ topic: "thing.cert-rotation", payload: { mark }, channel: "bus", orderingKey: device.id }],
      }),
    ]);
    const mine = (await s().listOutbox({ channel: "bus" })).filter((m) => m.payload.mark === mark);
    assert.equal(mine.length, 1);
    assert.equal(mine[0]?.orderingKey, device.id);
    assert.deepEqual(ids(await s().claimOutbox(at(302), at(303), 10, "webhook")), []);
    assert.deepEqual(ids(await s().claimOutbox(at(302), at(303), 10, "bus")), ids(mine));
  });

  test("ordering keys: only the oldest pending message of a key is claimable; a failure holds the later ones back; dead ones do not", async () => {
    await park(s());
    const [ka, kb] = [uid("thing-a"), uid("thing-b")];
    // Leases run to at(499), past every claim here, so nothing is re-claimed by lease expiry.
    const bus = (orderingKey: string | undefined, n: string) => ({ topic: "thing.cert-rotation", payload: { n }, channel: "bus" as const, orderingKey });
    // a1 and a2 share a millisecond: insertion order decides. a0 is created earlier but enqueued last: creation time decides.
    const [a1, a2, b1, n1] = await s().enqueueOutbox([bus(ka, "a1"), bus(ka, "a2"), bus(kb, "b1"), bus(undefined, "n1")], at(401));
    const [a3, b2, n2] = await s().enqueueOutbox([bus(ka, "a3"), bus(kb, "b2"), bus(undefined, "n2")], at(402));
    const [a0] = await s().enqueueOutbox([bus(ka, "a0")], at(400));
    assert.ok(a0 && a1 && a2 && a3 && b1 && b2 && n1 && n2);

    const first = await s().claimOutbox(at(410), at(499), 10, "bus");
    assert.equal(first[0]?.id, a0.id);
    assert.deepEqual(ids(first).sort(), [a0.id, b1.id, n1.id, n2.id].sort(), "one per key, the oldest; messages without a key are not ordered");
    assert.deepEqual(await s().claimOutbox(at(410), at(499), 10, "bus"), [], "a leased message holds back its key");
    // a0 fails and is retried later: a1 stays blocked meanwhile.
    assert.equal(await s().failOutbox(a0.id, "bus down", at(420)), true);
    assert.equal(await s().completeOutbox(b1.id, at(410)), true);
    assert.deepEqual(ids(await s().claimOutbox(at(415), at(499), 10, "bus")), [b2.id], "a not-yet-due failure holds back its key");
    assert.deepEqual(await s().claimOutbox(at(415), at(499), 10, "bus"), []);
    const retry = await s().claimOutbox(at(420), at(499), 10, "bus");
    assert.deepEqual(ids(retry), [a0.id]);
    assert.equal(retry[0]?.attempts, 2);
    assert.equal(await s().completeOutbox(a0.id, at(421)), true);
    // Then a1, a2, a3 in order, one at a time.
    for (const next of [a1, a2, a3]) {
      const got = await s().claimOutbox(at(421), at(499), 10, "bus");
      assert.deepEqual(ids(got), [next.id]);
      assert.equal(await s().completeOutbox(next.id, at(421)), true);
    }
    assert.deepEqual(await s().claimOutbox(at(421), at(499), 10, "bus"), []);

    // A dead message no longer holds its key back.
    const kc = uid("thing-c");
    const [c1, c2] = await s().enqueueOutbox([bus(kc, "c1"), bus(kc, "c2")], at(430));
    assert.ok(c1 && c2);
    assert.deepEqual(ids(await s().claimOutbox(at(430), at(499), 10, "bus")), [c1.id]);
    assert.equal(await s().failOutbox(c1.id, "malformed", null), true);
    assert.deepEqual(ids(await s().claimOutbox(at(430), at(499), 10, "bus")), [c2.id]);
    // Ordering is per channel: a webhook message with the same key is not held back by bus ones.
    const [c3] = await s().enqueueOutbox([bus(kc, "c3")], at(430));
    const [w] = await s().enqueueOutbox([{ topic: "device.created", payload: {}, orderingKey: kc }], at(431));
    assert.ok(c3 && w);
    assert.deepEqual(ids(await s().claimOutbox(at(431), at(499), 10, "webhook")), [w.id]);
    assert.deepEqual(await s().claimOutbox(at(431), at(499), 10, "bus"), [], "c2 is still leased");
  });

  test("concurrent claims never take two messages of one key at once; each key is delivered in order", async () => {
    await park(s());
    const keys = Array.from({ length: 6 }, (_, i) => uid(`thing-${i}`));
    const expected = new Map<string, string[]>();
    for (let round = 0; round < 4; round++) {
      const stored = await s().enqueueOutbox(
        keys.map((k) => ({ topic: "thing.cert-rotation", payload: { k, round }, channel: "bus" as const, orderingKey: k })),
        at(500),
      );
      for (const m of stored) expected.set(m.orderingKey ?? "", [...(expected.get(m.orderingKey ?? "") ?? []), m.id]);
    }
    const delivered = new Map<string, string[]>();
    for (let pass = 0; pass < 20; pass++) {
      const { ok, errors } = await concurrently(4, () => s().claimOutbox(at(500), at(505), 3, "bus"));
      assert.deepEqual(errors, []);
      const claimed = ok.flat();
      if (claimed.length === 0) break;
      const claimedKeys = claimed.map((m) => m.orderingKey ?? "");
      assert.equal(new Set(claimedKeys).size, claimedKeys.length, "no key claimed twice at once");
      for (const m of claimed) {
        const k = m.orderingKey ?? "";
        const done = delivered.get(k) ?? [];
        assert.equal(m.id, expected.get(k)?.[done.length], "the next message of its key");
        delivered.set(k, [...done, m.id]);
        assert.equal(await s().completeOutbox(m.id, at(500)), true);
      }
    }
    assert.deepEqual(delivered, expected);
  });
}
