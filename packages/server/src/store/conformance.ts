/**
 * The store conformance suite: behaviour every Store adapter must show,
 * registered as node:test tests so each adapter's test file runs the same set.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Store } from "../authority/ports.js";
import { certificateTests } from "./conformance-certificates.js";
import { auditAndCrlTests, credentialTests, deviceTests, requestTests } from "./conformance-entities.js";
import type { Register } from "./conformance-fixtures.js";
import { lineageTests } from "./conformance-lineage.js";
import { LATEST_SCHEMA_VERSION } from "./migrations.js";
import { outboxTests } from "./conformance-outbox.js";
import { mainfluxTests } from "./conformance-mainflux.js";
import { adminSearchTests } from "./conformance-admin.js";
import { adminHealthTests } from "./conformance-admin-health.js";

/** Options for runStoreConformance. */
export interface ConformanceOptions {
  /** When set, every test is registered as skipped with this message. */
  skip?: string;
}

/**
 * Registers the conformance tests for one adapter. `open` must return a store
 * on an EMPTY database (not yet migrated); the suite migrates it, shares it
 * across tests, closes it at the end and then calls `cleanup`.
 */
export function runStoreConformance(name: string, open: () => Promise<Store>, cleanup?: () => Promise<void>, options: ConformanceOptions = {}): void {
  describe(`${name} store conformance`, () => {
    const { skip } = options;
    // Each test is marked skipped (rather than the whole suite) so the run's summary counts them.
    const register: Register = skip === undefined ? (title, fn) => void test(title, fn) : (title, fn) => void test(title, { skip }, fn);
    let store: Store | undefined;
    let initialVersion = -1;
    let firstMigration = -1;
    const s = (): Store => {
      assert.ok(store, "store not opened");
      return store;
    };

    if (skip === undefined) {
      before(async () => {
        store = await open();
        initialVersion = await store.schemaVersion();
        firstMigration = await store.migrate();
      });

      after(async () => {
        try {
          await store?.close();
        } finally {
          await cleanup?.();
        }
      });
    }

    register("migrate is idempotent and schemaVersion reports the latest", async () => {
      assert.equal(initialVersion, 0, "open() must hand over an empty database");
      assert.equal(firstMigration, LATEST_SCHEMA_VERSION);
      assert.equal(await s().migrate(), 0);
      assert.equal(await s().migrate(), 0);
      assert.equal(await s().schemaVersion(), LATEST_SCHEMA_VERSION);
      assert.ok(s().kind === "sqlite" || s().kind === "postgres");
      await s().ping();
    });

    certificateTests(s, register);
    lineageTests(s, register);
    deviceTests(s, register);
    requestTests(s, register);
    credentialTests(s, register);
    auditAndCrlTests(s, register);
    outboxTests(s, register);
    mainfluxTests(s, register);
    adminSearchTests(s, register);
    adminHealthTests(s, register);
  });
}
