import { test } from "node:test";
import assert from "node:assert/strict";
import { AutoRenewer, type RenewCheckContext, type RenewCheckResult, type RenewerTimers } from "./auto-renewer.js";

const HOUR = 3_600_000;

/** Timers that fire only when the test says so. */
class FakeTimers implements RenewerTimers {
  pending = new Map<number, { fn: () => void; ms: number }>();
  delays: number[] = [];
  private id = 0;
  setTimeout(fn: () => void, ms: number): unknown {
    this.pending.set(++this.id, { fn, ms });
    this.delays.push(ms);
    return this.id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** Fires the only pending timer and lets the async check settle. */
  async fire(): Promise<void> {
    assert.equal(this.pending.size, 1, "exactly one timer pending");
    const [id, t] = [...this.pending][0]!;
    this.pending.delete(id);
    t.fn();
    await settle();
  }
}

/** Lets pending promise callbacks run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** A run() whose answers are scripted: a result, or an Error to throw. */
function scripted(answers: (RenewCheckResult | Error)[]) {
  const calls: RenewCheckContext[] = [];
  const run = async (ctx: RenewCheckContext) => {
    calls.push(ctx);
    const a = answers.shift() ?? { action: "none" };
    if (a instanceof Error) throw a;
    return a;
  };
  return { run, calls };
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

test("start() checks at once with the threshold, then waits the interval within the jitter bounds", async () => {
  const timers = new FakeTimers();
  const randoms = [0, 0.999999, 0.5];
  const { run, calls } = scripted([]);
  const r = new AutoRenewer({ run, timers, random: () => randoms.shift()!, now: () => 1_000, intervalMs: 10_000, thresholdMs: 5_000, jitter: 0.2 });
  r.start();
  await settle();
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.thresholdMs, 5_000);
  assert.deepEqual(timers.delays, [8_000]); // random 0 → interval × (1 − jitter)
  assert.equal(r.nextRunAt?.getTime(), 9_000);
  await timers.fire();
  assert.ok(timers.delays[1]! > 11_999 && timers.delays[1]! <= 12_000, `upper bound: ${timers.delays[1]}`);
  await timers.fire();
  assert.equal(timers.delays[2], 10_000);
  assert.equal(calls.length, 3);
  await r.stop();
});

test("defaults: 1 h interval, 30-day threshold, ±10 % jitter, 30 s first backoff", async () => {
  const timers = new FakeTimers();
  const randoms = [0, 0.5];
  const { run, calls } = scripted([{ action: "none" }, new Error("down")]);
  const r = new AutoRenewer({ run, timers, random: () => randoms.shift() ?? 0.5 });
  r.start();
  await settle();
  assert.equal(calls[0]!.thresholdMs, 30 * 86_400_000);
  assert.deepEqual(timers.delays, [0.9 * HOUR]);
  await timers.fire();
  assert.deepEqual(timers.delays, [0.9 * HOUR, 30_000]);
  await r.stop();
});

test("failures back off exponentially up to the cap, and onError receives each next delay", async () => {
  const timers = new FakeTimers();
  const errors: [unknown, number][] = [];
  const boom = new Error("server unreachable");
  const r = new AutoRenewer({
    run: async () => { throw boom; },
    timers, random: () => 0.5, intervalMs: HOUR,
    backoff: { initialMs: 1_000, maxMs: 10_000, factor: 3 },
    onError: (err, next) => errors.push([err, next]),
  });
  r.start();
  await settle();
  for (let i = 0; i < 4; i++) await timers.fire();
  assert.deepEqual(timers.delays, [1_000, 3_000, 9_000, 10_000, 10_000]);
  assert.deepEqual(errors.map((e) => e[1]), timers.delays);
  assert.ok(errors.every((e) => e[0] === boom));
  assert.equal(r.consecutiveFailures, 5);
  await r.stop();
});

test("jitter never pushes a backoff delay above maxMs", async () => {
  const timers = new FakeTimers();
  const r = new AutoRenewer({
    run: async () => { throw new Error("x"); },
    timers, random: () => 0.999, intervalMs: HOUR, backoff: { initialMs: 8_000, maxMs: 10_000 },
  });
  r.start();
  await settle();
  await timers.fire();
  assert.ok(timers.delays[0]! > 8_000 && timers.delays[0]! < 8_800, `jittered first delay ${timers.delays[0]}`);
  assert.equal(timers.delays[1], 10_000);
  await r.stop();
});

test("a success resets the backoff to the interval, and the next failure starts again from initialMs", async () => {
  const timers = new FakeTimers();
  const e = new Error("503");
  const { run } = scripted([e, e, { action: "renewed" }, e]);
  const r = new AutoRenewer({ run, timers, random: () => 0.5, intervalMs: HOUR });
  r.start();
  await settle();
  for (let i = 0; i < 3; i++) await timers.fire();
  assert.deepEqual(timers.delays, [30_000, 60_000, HOUR, 30_000]);
  assert.equal(r.consecutiveFailures, 1);
  await r.stop();
});

test("onRenew is called for renewals and not for 'none'; a throwing onRenew counts as a failure", async () => {
  const timers = new FakeTimers();
  const renewed: RenewCheckResult[] = [];
  const errors: unknown[] = [];
  const { run } = scripted([{ action: "none" }, { action: "challenge_renewed" }, { action: "reenrolled" }]);
  let throwOnce = false;
  const r = new AutoRenewer({
    run, timers, random: () => 0.5,
    onRenew: (res) => {
      renewed.push(res);
      if (throwOnce) throw new Error("hook failed");
    },
    onError: (err) => errors.push(err),
  });
  r.start();
  await settle();
  assert.deepEqual(renewed, []);
  await timers.fire();
  assert.deepEqual(renewed, [{ action: "challenge_renewed" }]);
  throwOnce = true;
  await timers.fire();
  assert.equal(renewed.length, 2);
  assert.equal((errors[0] as Error).message, "hook failed");
  assert.equal(timers.delays.at(-1), 30_000);
  await r.stop();
});

test("aborting the signal aborts the check in flight, stops scheduling and resolves stopped", async () => {
  const timers = new FakeTimers();
  const ac = new AbortController();
  let seen: AbortSignal | undefined;
  const errors: unknown[] = [];
  const r = new AutoRenewer({
    timers, signal: ac.signal, onError: (err) => errors.push(err),
    run: (ctx) => new Promise<RenewCheckResult>((_, reject) => {
      seen = ctx.signal;
      ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
    }),
  });
  r.start();
  await settle();
  assert.equal(r.busy, true);
  assert.equal(seen?.aborted, false);
  ac.abort();
  assert.equal(seen?.aborted, true);
  await r.stopped;
  await settle();
  assert.equal(r.running, false);
  assert.equal(r.busy, false);
  assert.equal(timers.pending.size, 0);
  assert.deepEqual(errors, [], "shutdown is not reported as a failure");
  assert.throws(() => r.start(), /stopped/);
  await assert.rejects(r.runOnce(), /stopped/);
});

test("stop() clears the pending timer; stopped waits for a check that ignores its signal", async () => {
  const timers = new FakeTimers();
  const gate = deferred<RenewCheckResult>();
  const answers: Promise<RenewCheckResult>[] = [Promise.resolve({ action: "none" }), gate.promise];
  const r = new AutoRenewer({ timers, random: () => 0.5, run: () => answers.shift()! });
  r.start();
  await settle();
  assert.equal(timers.pending.size, 1);
  await timers.fire();
  let done = false;
  const s = r.stop().then(() => (done = true));
  await settle();
  assert.equal(done, false, "still waiting for the check in flight");
  gate.resolve({ action: "none" });
  await s;
  assert.equal(timers.pending.size, 0);
});

test("an already-aborted signal never runs a check", async () => {
  const timers = new FakeTimers();
  const { run, calls } = scripted([]);
  const r = new AutoRenewer({ run, timers, signal: AbortSignal.abort() });
  await r.stopped;
  assert.throws(() => r.start());
  assert.equal(calls.length, 0);
});

test("checks never overlap: runOnce() during a check joins it, and one timer follows", async () => {
  const timers = new FakeTimers();
  const gate = deferred<RenewCheckResult>();
  let calls = 0;
  let active = 0;
  let maxActive = 0;
  const renewed: RenewCheckResult[] = [];
  const r = new AutoRenewer({
    timers, random: () => 0.5, onRenew: (res) => renewed.push(res),
    run: async () => {
      calls++;
      maxActive = Math.max(maxActive, ++active);
      try {
        return await gate.promise;
      } finally {
        active--;
      }
    },
  });
  r.start();
  r.start(); // second start is a no-op, not a second loop
  const a = r.runOnce();
  const b = r.runOnce();
  gate.resolve({ action: "renewed" });
  assert.deepEqual(await a, { action: "renewed" });
  assert.deepEqual(await b, { action: "renewed" });
  await settle();
  assert.equal(calls, 1);
  assert.equal(maxActive, 1);
  assert.equal(renewed.length, 1, "onRenew once per check, not once per caller");
  assert.equal(timers.pending.size, 1);
  await r.stop();
});

test("runOnce() works without start() and rejects with the check's error", async () => {
  const { run, calls } = scripted([{ action: "renewed" }, new Error("bad")]);
  const timers = new FakeTimers();
  const r = new AutoRenewer({ run, timers });
  assert.deepEqual(await r.runOnce(), { action: "renewed" });
  await assert.rejects(r.runOnce(), /bad/);
  assert.equal(calls.length, 2);
  assert.equal(timers.pending.size, 0, "runOnce does not schedule");
  await r.stop();
});

test("options are validated on receipt", () => {
  const run = async () => ({ action: "none" });
  assert.throws(() => new AutoRenewer({ run, jitter: 1 }), RangeError);
  assert.throws(() => new AutoRenewer({ run, jitter: -0.1 }), RangeError);
  assert.throws(() => new AutoRenewer({ run, intervalMs: 0 }), RangeError);
  assert.throws(() => new AutoRenewer({ run, thresholdMs: Number.NaN }), RangeError);
  assert.throws(() => new AutoRenewer({ run, backoff: { factor: 0.5 } }), RangeError);
  assert.throws(() => new AutoRenewer({ run: undefined as never }), TypeError);
});

test("real timers: keepAlive false unrefs the timer, and stop() ends cleanly", async () => {
  let calls = 0;
  const handles: NodeJS.Timeout[] = [];
  const timers: RenewerTimers = {
    setTimeout: (fn, ms) => {
      const h = setTimeout(fn, ms);
      handles.push(h);
      return h;
    },
    clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  };
  const r = new AutoRenewer({ run: async () => { calls++; return { action: "none" }; }, intervalMs: 5, jitter: 0, keepAlive: false, timers });
  r.start();
  await new Promise((res) => setTimeout(res, 40));
  await r.stop();
  assert.ok(calls >= 2, `several checks ran on real timers: ${calls}`);
  assert.ok(handles.length >= 2 && handles.every((h) => !h.hasRef()));
});
