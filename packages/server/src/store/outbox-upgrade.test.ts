/**
 * Migration 3 (outbox channels and ordering keys) on a database that already
 * holds outbox rows written at schema version 2, on SQLite and PostgreSQL
 * (a fresh random schema, dropped afterwards; unreachable PostgreSQL skips
 * locally and fails when CI=true): old rows become webhook rows without an
 * ordering key, keep their state, and new rows are ordered after them.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import pg from "pg";
import type { Store } from "../authority/ports.js";
import type { Dialect } from "./sql.js";
import { openStore } from "./index.js";
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from "./migrations.js";

/** Schema version 2 with two outbox rows (one pending, one delivered), as a script for `dialect`. */
function version2(dialect: Dialect): string {
  const upTo2 = MIGRATIONS.filter((m) => m.version <= 2).map((m) => m.sql(dialect));
  return `${upTo2.join("\n")}
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'initial schema', '2025-01-01T00:00:00.000Z'), (2, 'outbox', '2025-01-01T00:00:00.000Z');
INSERT INTO outbox (id, topic, payload, created_at, state, attempts, next_attempt_at) VALUES
  ('00000000-0000-4000-8000-000000000001', 'device.created', '{"old":1}', '2025-01-01T00:00:00.000Z', 'pending', 0, '2025-01-01T00:00:00.000Z'),
  ('00000000-0000-4000-8000-000000000002', 'device.created', '{"old":2}', '2025-01-01T00:00:00.000Z', 'delivered', 1, '2025-01-01T00:00:00.000Z');
`;
}

async function checkUpgraded(store: Store): Promise<void> {
  assert.ok((await store.migrate()) >= 1);
  assert.equal(await store.schemaVersion(), LATEST_SCHEMA_VERSION);
  const old = await store.listOutbox();
  assert.deepEqual(
    old.map((m) => [m.payload, m.state, m.channel, m.orderingKey]),
    [
      [{ old: 1 }, "pending", "webhook", null],
      [{ old: 2 }, "delivered", "webhook", null],
    ],
  );
  const now = new Date("2025-01-02T00:00:00.000Z");
  const lease = new Date("2025-01-02T00:01:00.000Z");
  assert.deepEqual(await store.claimOutbox(now, lease, 10, "bus"), []);
  assert.deepEqual(
    (await store.claimOutbox(now, lease, 10, "webhook")).map((m) => m.payload),
    [{ old: 1 }],
  );
  // New rows get insertion numbers after the old ones: same key and millisecond, claimed in insertion order.
  const bus = (n: number) => ({ topic: "thing.cert-rotation", payload: { n }, channel: "bus" as const, orderingKey: "thing-1" });
  const [a, b] = await store.enqueueOutbox([bus(1), bus(2)], now);
  assert.ok(a && b);
  assert.deepEqual((await store.claimOutbox(now, lease, 10, "bus")).map((m) => m.id), [a.id]);
  assert.equal(await store.completeOutbox(a.id, now), true);
  assert.deepEqual((await store.claimOutbox(now, lease, 10, "bus")).map((m) => m.id), [b.id]);
}

describe("migration 3 on a version-2 database", () => {
  test("SQLite", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-upgrade-"));
    const file = join(dir, "v2.db");
    try {
      const raw = new Database(file);
      raw.exec(version2("sqlite"));
      raw.close();
      const store = await openStore(`sqlite:${file}`);
      try {
        await checkUpgraded(store);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const url = process.env.TESSERA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const schema = `tessera_upgrade_${randomBytes(6).toString("hex")}`;
  let created = false;
  after(async () => {
    if (!created) return;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await client.end();
    }
  });

  test("PostgreSQL", async (t) => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    client.on("error", () => undefined);
    try {
      await client.connect();
    } catch (err) {
      const why = `PostgreSQL not reachable (${err instanceof Error ? err.message : String(err)})`;
      if (process.env.CI === "true") assert.fail(why);
      t.skip(`${why}: skipping (set CI=true to make this a failure)`);
      return;
    }
    try {
      await client.query(`CREATE SCHEMA "${schema}"`);
      created = true;
      await client.query(`SET search_path TO "${schema}"`);
      await client.query(version2("postgres"));
    } finally {
      await client.end();
    }
    const store = await openStore(url, { schema });
    try {
      await checkUpgraded(store);
    } finally {
      await store.close();
    }
  });
});
