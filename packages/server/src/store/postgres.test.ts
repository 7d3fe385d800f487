/**
 * Runs the store conformance suite on PostgreSQL in a fresh random schema
 * (dropped afterwards, so concurrent runs never collide). Unreachable
 * PostgreSQL skips the suite locally and fails it when CI=true.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import pg from "pg";
import { TesseraError } from "../errors.js";
import { runStoreConformance } from "./conformance.js";
import { openStore } from "./index.js";

const url = process.env.TESSERA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `tessera_test_${randomBytes(6).toString("hex")}`;
const shownUrl = url.replace(/\/\/[^@/]*@/, "//…@");

/** Returns why PostgreSQL cannot be used, or undefined when it answers. */
async function unreachable(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("SELECT 1");
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message || err.constructor.name : String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function dropSchema(): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

const why = await unreachable();
const ci = process.env.CI === "true";

if (why !== undefined && ci) {
  test("PostgreSQL is reachable (required when CI=true)", () => {
    assert.fail(`PostgreSQL not reachable at ${shownUrl}: ${why}`);
  });
} else {
  const skip = why === undefined ? undefined : `PostgreSQL not reachable at ${shownUrl} (${why}): skipping (set CI=true to make this a failure)`;
  runStoreConformance("postgres", () => openStore(url, { schema }), dropSchema, { skip });

  describe("postgres store", () => {
    test("?schema= in the URL selects the schema", { skip }, async () => {
      const other = `${schema}_url`;
      const sep = url.includes("?") ? "&" : "?";
      const store = await openStore(`${url}${sep}schema=${other}`);
      try {
        assert.equal(store.kind, "postgres");
        assert.equal(await store.schemaVersion(), 0);
        assert.ok((await store.migrate()) > 0);
      } finally {
        await store.close();
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${other}" CASCADE`);
        await client.end();
      }
    });

    test("an unreachable server is TESSERA_ERR_STORE_UNAVAILABLE", { skip }, async () => {
      await assert.rejects(
        openStore("postgres://postgres@127.0.0.1:1/test"),
        (err: unknown) => err instanceof TesseraError && err.code === "TESSERA_ERR_STORE_UNAVAILABLE",
      );
    });
  });
}
