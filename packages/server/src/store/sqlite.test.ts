/**
 * Runs the store conformance suite on a temporary SQLite file, plus
 * SQLite-specific checks (persistence across reopen, error mapping).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { TesseraError } from "../errors.js";
import { runStoreConformance } from "./conformance.js";
import { issued, makeCert, newDevice } from "./conformance-fixtures.js";
import { openStore } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "tessera-store-"));
after(() => rmSync(dir, { recursive: true, force: true }));

runStoreConformance("sqlite", () => openStore(`sqlite:${join(dir, "nested", "conformance.db")}`));

describe("sqlite store", () => {
  test("data survives close and reopen", async () => {
    const url = `sqlite:${join(dir, "reopen.db")}`;
    const device = newDevice();
    const cert = makeCert({ deviceId: device.id });
    const first = await openStore(url, { synchronous: "normal" });
    assert.equal(first.kind, "sqlite");
    await first.migrate();
    await first.commitIssued([issued(cert, { device })]);
    const crl = await first.nextCrlNumber();
    await first.close();

    const second = await openStore(url);
    try {
      assert.equal(await second.migrate(), 0);
      assert.deepStrictEqual(await second.getCertificate(cert.serial), cert);
      assert.equal((await second.getDevice(device.id))?.currentSerial, cert.serial);
      assert.equal(await second.nextCrlNumber(), crl + 1n);
    } finally {
      await second.close();
    }
  });

  test("an in-memory database works", async () => {
    const store = await openStore("sqlite::memory:");
    try {
      await store.migrate();
      const cert = makeCert();
      await store.commitIssued([issued(cert)]);
      assert.equal(await store.countCertificates(), 1);
    } finally {
      await store.close();
    }
  });

  test("an unopenable file is TESSERA_ERR_STORE_UNAVAILABLE; a relative path is a config error", async () => {
    // A directory cannot be opened as a database file.
    await assert.rejects(openStore(`sqlite:${dir}`), (err: unknown) => err instanceof TesseraError && err.code === "TESSERA_ERR_STORE_UNAVAILABLE");
    await assert.rejects(openStore("sqlite:relative.db"), (err: unknown) => err instanceof TesseraError && err.code === "TESSERA_ERR_CONFIG_INVALID");
  });
});
