/**
 * FailureCounter: failed enrollments are summed in memory and written as one
 * upsert per (UTC day, protocol, code), so a flood of refusals costs the
 * store a handful of writes; nothing counted is lost when a write fails or
 * the server closes.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { enrollmentProtocol, FailureCounter, type FailureSink } from "./enrollment-failures.js";

type Write = { protocol: string; code: string; day: string; count: number };

function sink(failFirst = 0): FailureSink & { writes: Write[] } {
  let failures = failFirst;
  const writes: Write[] = [];
  return {
    writes,
    async recordFailure(protocol, code, at, count) {
      if (failures > 0) {
        failures--;
        throw new Error("store unavailable");
      }
      writes.push({ protocol, code, day: at.toISOString().slice(0, 10), count });
    },
  };
}

const noError = (err: unknown) => assert.fail(`unexpected write error: ${String(err)}`);
const byKey = (w: Write[]) => Object.fromEntries(w.map((x) => [`${x.day} ${x.protocol} ${x.code}`, x.count]));

test("a flood of refusals becomes one write per day, protocol and code", async () => {
  const s = sink();
  let now = new Date("2031-03-04T23:59:59.000Z");
  const counter = new FailureCounter(s, () => now, noError, 60_000);
  for (let i = 0; i < 1000; i++) counter.note({ protocol: "est", code: "http_401" });
  for (let i = 0; i < 7; i++) counter.note({ protocol: "imprint", code: "TESSERA_ERR_CREDENTIAL_INVALID" });
  now = new Date("2031-03-05T00:00:00.000Z"); // the next UTC day has its own counter
  counter.note({ protocol: "est", code: "http_401" });
  assert.equal(s.writes.length, 0, "nothing written before the flush");
  await counter.flush();
  assert.deepEqual(byKey(s.writes), {
    "2031-03-04 est http_401": 1000,
    "2031-03-04 imprint TESSERA_ERR_CREDENTIAL_INVALID": 7,
    "2031-03-05 est http_401": 1,
  });
  await counter.flush();
  assert.equal(s.writes.length, 3, "a flush with nothing new writes nothing");
  await counter.close();
});

test("counts are written on their own after flushMs", async () => {
  const s = sink();
  const counter = new FailureCounter(s, () => new Date(), noError, 20);
  counter.note({ protocol: "caramel", code: "http_400" });
  counter.note({ protocol: "caramel", code: "http_400" });
  for (let i = 0; i < 100 && s.writes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(s.writes.map((w) => w.count), [2]);
  await counter.close();
});

test("a failed write keeps its counts for the next flush; close writes what is left", async () => {
  const s = sink(1);
  const errors: unknown[] = [];
  const counter = new FailureCounter(s, () => new Date("2031-01-01T12:00:00Z"), (err) => errors.push(err), 60_000);
  for (let i = 0; i < 5; i++) counter.note({ protocol: "liteboot", code: "http_415" });
  await counter.flush();
  assert.equal(errors.length, 1);
  assert.equal(s.writes.length, 0);
  for (let i = 0; i < 3; i++) counter.note({ protocol: "liteboot", code: "http_415" });
  await counter.close();
  assert.deepEqual(s.writes, [{ protocol: "liteboot", code: "http_415", day: "2031-01-01", count: 8 }]);
});

test("concurrent flushes write each count once", async () => {
  const s = sink();
  const counter = new FailureCounter(s, () => new Date(), noError, 60_000);
  for (let i = 0; i < 10; i++) counter.note({ protocol: "mainflux", code: "http_403" });
  await Promise.all([counter.flush(), counter.flush(), counter.flush()]);
  assert.deepEqual(s.writes.map((w) => w.count), [10]);
  await counter.close();
});

test("only enrollment and renewal calls count", () => {
  assert.equal(enrollmentProtocol("POST", "/.well-known/est/simpleenroll"), "est");
  assert.equal(enrollmentProtocol("POST", "/.well-known/est/label/simplereenroll?x=1"), "est");
  assert.equal(enrollmentProtocol("GET", "/.well-known/est/cacerts"), undefined);
  assert.equal(enrollmentProtocol("POST", "/api/v1/enroll"), "imprint");
  assert.equal(enrollmentProtocol("POST", "/api/v1/renew/challenge"), "imprint");
  assert.equal(enrollmentProtocol("POST", "/api/v1/p10cr"), "liteboot");
  assert.equal(enrollmentProtocol("POST", `/${"a".repeat(64)}`), "caramel");
  assert.equal(enrollmentProtocol("POST", "/certs"), "mainflux");
  assert.equal(enrollmentProtocol("PUT", "/certs/thing-1"), "mainflux");
  assert.equal(enrollmentProtocol("POST", "/admin/api/v1/session"), undefined);
});
