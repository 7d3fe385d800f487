import "reflect-metadata";
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildCsr, generateKeyPair, parseCertificate } from "@tessera/pki";
import pino from "pino";
import { openAuthority } from "../server.js";
import { testConfig, tempDir } from "../test-support.js";
import { openStore } from "../store/index.js";

const PG = process.env.TESSERA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

async function pgReachable(): Promise<string | undefined> {
  try {
    const s = await openStore(PG);
    await s.close();
    return undefined;
  } catch (err) {
    return `PostgreSQL not reachable at ${PG.replace(/\/\/[^@]*@/, "//…@")} (${(err as Error).message}): skipping (set CI=true to make this a failure)`;
  }
}

async function concurrentIssuance(databaseUrl?: string) {
  const dataDir = tempDir();
  const config = await testConfig({ TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "silent", ...(databaseUrl ? { TESSERA_DATABASE_URL: databaseUrl } : {}) });
  const { authority, store } = await openAuthority(config, pino({ level: "silent" }), {});
  try {
    const before = await store.countCertificates();
    const { privateKey } = generateKeyPair();
    const csr = buildCsr({ subject: [{ type: "CN", value: "load" }], privateKey });
    const issued = await Promise.all(
      Array.from({ length: 2000 }, () => authority.issue({ csr, protocol: "test", credential: { kind: "operator", actor: "test" } })),
    );
    const serials = new Set(issued.map((i) => i.record.serial));
    assert.equal(serials.size, 2000, "2,000 distinct serials");
    assert.equal((await store.countCertificates()) - before, 2000, "2,000 stored rows");
    for (const i of issued.slice(0, 20)) {
      const stored = await store.getCertificate(i.record.serial);
      assert.ok(stored && stored.der.equals(i.der), "returned certificate is the stored one");
      assert.equal(parseCertificate(i.der).serialHex, i.record.serial);
    }
    assert.ok(authority.writer.commits < 2000, `group commit shared transactions (${authority.writer.commits} commits)`);
  } finally {
    await store.close();
  }
}

test("2,000 concurrent issuances → 2,000 distinct stored serials (SQLite)", () => concurrentIssuance());

test("2,000 concurrent issuances → 2,000 distinct stored serials (PostgreSQL)", async (t) => {
  const skip = await pgReachable();
  if (skip) {
    if (process.env.CI === "true") assert.fail(skip);
    t.skip(skip);
    return;
  }
  const schema = `t_auth_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  try {
    await concurrentIssuance(`${PG}${PG.includes("?") ? "&" : "?"}schema=${schema}`);
  } finally {
    const pg = (await import("pg")).default;
    const c = new pg.Client({ connectionString: PG });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  }
});
