/**
 * Conformance tests for the outbox: messages enqueued with an issuance (and
 * rolled back with it), the claim compare-and-set that keeps replicas from
 * sending one message twice at once, lease expiry, completion, retry and
 * giving up.
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
  while ((await store.claimOutbox(FAR, FOREVER, 500)).length > 0);
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
    assert.deepEqual(await s().claimOutbox(at(20), at(21), 0), []);
    const first = await s().claimOutbox(at(20), at(21), 2);
    assert.deepEqual(ids(first), [m10.id, m11.id]);
    for (const m of first) {
      assert.equal(m.attempts, 1);
      assert.deepStrictEqual(m.lockedUntil, at(21));
      assert.equal(m.state, "pending");
    }
    assert.deepEqual(ids(await s().claimOutbox(at(20), at(21), 10)), [m12.id], "leased rows are skipped, not-yet-due ones too");
    assert.deepEqual(await s().claimOutbox(at(20), at(21), 10), []);
    const stored = await find(s(), m10.id);
    assert.equal(stored?.attempts, 1);
    assert.deepStrictEqual(stored?.lockedUntil, at(21));
    // Once due and with the leases run out, all four come back in due order.
    const later = await s().claimOutbox(at(30), at(31), 10);
    assert.deepEqual(ids(later), [m10.id, m11.id, m12.id, m30.id]);
    assert.deepEqual(
      later.map((m) => m.attempts),
      [2, 2, 2, 1],
    );
    await rejectsWith(s().claimOutbox(at(30), at(31), -1), "TESSERA_ERR_INPUT_MALFORMED");
  });

  test("an expired lease can be re-claimed; an unexpired one cannot", async () => {
    await park(s());
    const m = await enqueueOne(s(), at(40));
    assert.deepEqual(ids(await s().claimOutbox(at(40), at(45), 10)), [m.id]);
    assert.deepEqual(await s().claimOutbox(at(44), at(49), 10), []);
    const again = await s().claimOutbox(at(45), at(50), 10);
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
      const { ok, errors } = await concurrently(6, () => s().claimOutbox(when, at(60 + round * 10 + 5), 5));
      assert.deepEqual(errors, []);
      const claimed = ok.flat();
      assert.equal(new Set(ids(claimed)).size, claimed.length, "no row claimed twice");
      const rest = await s().claimOutbox(when, at(60 + round * 10 + 5), 100);
      const all = [...ids(claimed), ...ids(rest)];
      assert.equal(new Set(all).size, all.length);
      assert.deepEqual([...all].sort(), ids(enqueued).sort());
      assert.ok([...claimed, ...rest].every((m) => m.attempts === 1));
    }
  });

  test("completeOutbox marks a message delivered once; a delivered message is never claimed or failed again", async () => {
    await park(s());
    const m = await enqueueOne(s(), at(80));
    await s().claimOutbox(at(80), at(81), 10);
    assert.equal(await s().completeOutbox(m.id, at(80.5)), true);
    assert.equal(await s().completeOutbox(m.id, at(80.6)), false);
    const stored = await find(s(), m.id);
    assert.equal(stored?.state, "delivered");
    assert.deepStrictEqual(stored?.deliveredAt, at(80.5));
    assert.equal(stored?.lockedUntil, null);
    assert.equal(stored?.attempts, 1);
    assert.ok((await s().listOutbox({ state: "delivered" })).some((r) => r.id === m.id));
    assert.deepEqual(await s().claimOutbox(at(200), at(201), 10), []);
    assert.equal(await s().failOutbox(m.id, "late failure report", at(90)), false);
    assert.equal(await s().failOutbox(m.id, "late give-up", null), false);
    assert.equal((await find(s(), m.id))?.state, "delivered");
    assert.equal(await s().completeOutbox("no-such-message", at(80)), false);
  });

  test("failOutbox schedules a retry or gives up; a dead message is kept but never claimed", async () => {
    await park(s());
    const m = await enqueueOne(s(), at(120));
    await s().claimOutbox(at(120), at(125), 10);
    assert.equal(await s().failOutbox(m.id, "HTTP 500", at(130)), true);
    let stored = await find(s(), m.id);
    assert.equal(stored?.state, "pending");
    assert.equal(stored?.lastError, "HTTP 500");
    assert.equal(stored?.lockedUntil, null, "the lease is released");
    assert.deepStrictEqual(stored?.nextAttemptAt, at(130));
    assert.deepEqual(await s().claimOutbox(at(129), at(131), 10), [], "not before its next attempt time");
    const retry = await s().claimOutbox(at(130), at(135), 10);
    assert.deepEqual(ids(retry), [m.id]);
    assert.equal(retry[0]?.attempts, 2);
    assert.equal(await s().failOutbox(m.id, "timeout after 10 s", null), true);
    stored = await find(s(), m.id);
    assert.equal(stored?.state, "dead");
    assert.equal(stored?.lastError, "timeout after 10 s");
    assert.equal(stored?.lockedUntil, null);
    assert.ok((await s().listOutbox({ state: "dead" })).some((r) => r.id === m.id));
    assert.ok(!(await s().listOutbox({ state: "pending" })).some((r) => r.id === m.id));
    assert.deepEqual(await s().claimOutbox(at(10_000), at(10_001), 10), []);
    assert.equal(await s().completeOutbox(m.id, at(140)), false, "dead stays dead");
    assert.equal(await s().failOutbox(m.id, "again", at(150)), false);
    assert.equal(await s().failOutbox("no-such-message", "x", null), false);
  });
}
