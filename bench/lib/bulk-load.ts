/**
 * Bulk loading of synthetic certificate rows for the "store" and
 * "revocation" benchmark sections: straight SQL into the store's own schema
 * (migrated by the store first), in large transactions, bypassing the
 * authority. Rows are deterministic functions of (seed, n), so a benchmark
 * can name any loaded row again (serialOf, deviceIdOf) without reading the
 * table back:
 *
 * - serial: 32 hex digits, leading "4" (like generateSerial's 16 octets with
 *   the top bit clear and the next set), the rest from SHA-512(seed:n);
 * - device: row n belongs to device n mod `devices` (≈ rows/devices
 *   certificates each), whose id is a UUID-shaped SHA-256(seed:d:k);
 * - issued_at spread evenly over [issuedFrom, issuedTo) in row order,
 *   not_after = issued_at + validity;
 * - status by n mod 100 (valid / superseded / revoked), revoked rows with a
 *   time a day after issuance and a reason mix (keyCompromise, superseded,
 *   cessationOfOperation, none);
 * - der: one real certificate's DER, reused (size is what matters here).
 *
 * SQLite rows are made in JavaScript and inserted with one prepared
 * statement; PostgreSQL rows are made by the server (INSERT … SELECT over
 * generate_series, same functions in SQL), which is faster than shipping
 * them. Loading stops early, with `capped` set, when the time budget runs out.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import Database from "better-sqlite3";
import pg from "pg";

/** What every loaded row copies from one real issued certificate. */
export interface LoadTemplate {
  der: Buffer;
  profile: string;
  keyType: string;
}

/** What to load. */
export interface LoadPlan {
  /** Lowercase letters and digits; keeps serials of different loads apart. */
  seed: string;
  rows: number;
  /** Devices the rows are spread over (row n → device n mod devices); 0 → device_id NULL. */
  devices: number;
  /** issued_at range, ms since the epoch. */
  issuedFrom: number;
  issuedTo: number;
  validityMs: number;
  /** Of every 100 rows (n mod 100): below `validPct` valid, below `validPct + supersededPct` superseded, the rest revoked. */
  validPct: number;
  supersededPct: number;
  template: LoadTemplate;
  /** Rows per transaction (default 200,000). */
  batch?: number;
  /** Drop secondary indexes (and, on PostgreSQL, the keys) for the load and rebuild them after (default true). */
  deferIndexes?: boolean;
  /** Stop after the batch that crosses this many seconds. */
  budgetSeconds: number;
  /** Called after each batch. */
  progress?: (loaded: number, seconds: number) => void;
}

/** What a load did. */
export interface LoadResult {
  /** Certificate rows loaded (less than planned when capped). */
  rows: number;
  devices: number;
  /** Seconds spent on certificate rows (inserts, then index rebuilds and flushing to disk), and on device rows. */
  seconds: number;
  /** Of `seconds`: rebuilding the indexes and keys afterwards, flush included. */
  indexSeconds: number;
  deviceSeconds: number;
  capped: boolean;
}

const REASONS = ["keyCompromise", "superseded", "cessationOfOperation", null] as const;
const DAY_MS = 86_400_000;

/** Serial of row n. */
export function serialOf(seed: string, n: number): string {
  return "4" + createHash("sha512").update(`${seed}:${n}`).digest("hex").slice(1, 32);
}

/** Certificate SHA-256 (the `fingerprint` column) of row n. */
export function fingerprintOf(seed: string, n: number): string {
  return createHash("sha512").update(`${seed}:${n}`).digest("hex").slice(64, 128);
}

/** Id of device k. */
export function deviceIdOf(seed: string, k: number): string {
  const d = createHash("sha256").update(`${seed}:d:${k}`).digest("hex");
  return `${d.slice(0, 8)}-${d.slice(8, 12)}-${d.slice(12, 16)}-${d.slice(16, 20)}-${d.slice(20, 32)}`;
}

/** Device id of row n under `plan` (null without devices). */
export function rowDeviceId(plan: Pick<LoadPlan, "seed" | "devices">, n: number): string | null {
  return plan.devices > 0 ? deviceIdOf(plan.seed, n % plan.devices) : null;
}

/** After a batch: reports progress, and whether the time budget is spent with rows still to load. */
function budgetSpent(plan: LoadPlan, loaded: number, startedMs: number): boolean {
  const seconds = (performance.now() - startedMs) / 1000;
  plan.progress?.(loaded, seconds);
  return loaded < plan.rows && seconds > plan.budgetSeconds;
}

function issuedAtMs(plan: LoadPlan, n: number): number {
  // n / rows first: n × span would pass 2^53 for ten million rows over years.
  return plan.issuedFrom + Math.floor((n / plan.rows) * (plan.issuedTo - plan.issuedFrom));
}

function statusOf(plan: LoadPlan, n: number): "valid" | "superseded" | "revoked" {
  const m = n % 100;
  return m < plan.validPct ? "valid" : m < plan.validPct + plan.supersededPct ? "superseded" : "revoked";
}

/** Loads `plan` into the migrated SQLite database at `file` (no other connection may write meanwhile). */
export function loadSqlite(file: string, plan: LoadPlan): LoadResult {
  const db = new Database(file);
  try {
    // Loader-only settings: a crash mid-load just means loading again. The
    // server's own connection (WAL, synchronous FULL, foreign keys on) reads
    // the result after the checkpoint below.
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = OFF");
    db.pragma("foreign_keys = OFF");
    db.pragma("cache_size = -4000000");
    db.pragma("temp_store = MEMORY");
    const batch = plan.batch ?? 200_000;
    const t0 = performance.now();
    // Secondary indexes are dropped and rebuilt afterwards from their own
    // definitions (sqlite_master), so the schema ends up as migrated.
    const indexes = plan.deferIndexes === false ? [] : (db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('certificates', 'devices') AND sql IS NOT NULL").all() as Array<{ name: string; sql: string }>);
    for (const i of indexes) db.exec(`DROP INDEX ${i.name}`);
    const at0 = new Date(plan.issuedFrom).toISOString();
    const insDevice = db.prepare(
      "INSERT INTO devices (id, fingerprint, status, protocol, attributes, created_at, updated_at) VALUES (?, ?, 'active', 'bench-load', '{}', ?, ?)",
    );
    for (let k0 = 0; k0 < plan.devices; k0 += batch) {
      db.transaction(() => {
        for (let k = k0; k < Math.min(plan.devices, k0 + batch); k++) {
          const d = createHash("sha256").update(`${plan.seed}:d:${k}`).digest("hex");
          insDevice.run(`${d.slice(0, 8)}-${d.slice(8, 12)}-${d.slice(12, 16)}-${d.slice(16, 20)}-${d.slice(20, 32)}`, d.slice(32, 64), at0, at0);
        }
      })();
    }
    const deviceSeconds = (performance.now() - t0) / 1000;
    const insCert = db.prepare(
      `INSERT INTO certificates (serial, device_id, profile, subject, sans, key_fingerprint, key_type, not_before, not_after, status,
         revoked_at, revocation_reason, issued_at, protocol, request_id, fingerprint, der)
       VALUES (?, ?, ?, ?, '[]', ?, ?, ?, ?, ?, ?, ?, ?, 'bench-load', NULL, ?, ?)`,
    );
    const { der, profile, keyType } = plan.template;
    const t1 = performance.now();
    let loaded = 0;
    let capped = false;
    while (loaded < plan.rows) {
      const end = Math.min(plan.rows, loaded + batch);
      db.transaction(() => {
        for (let n = loaded; n < end; n++) {
          const h = createHash("sha512").update(`${plan.seed}:${n}`).digest("hex");
          const ms = issuedAtMs(plan, n);
          const issued = new Date(ms).toISOString();
          const status = statusOf(plan, n);
          const revoked = status === "revoked";
          insCert.run(
            "4" + h.slice(1, 32),
            rowDeviceId(plan, n),
            profile,
            `CN=device-${plan.devices > 0 ? n % plan.devices : n}`,
            h.slice(32, 96),
            keyType,
            issued,
            new Date(ms + plan.validityMs).toISOString(),
            status,
            revoked ? new Date(ms + DAY_MS).toISOString() : null,
            revoked ? REASONS[Math.floor(n / 100) % REASONS.length]! : null,
            issued,
            h.slice(64, 128),
            der,
          );
        }
      })();
      loaded = end;
      if (budgetSpent(plan, loaded, t1)) {
        capped = true;
        break;
      }
    }
    const t2 = performance.now();
    for (const i of indexes) db.exec(i.sql);
    db.pragma("wal_checkpoint(TRUNCATE)");
    // Written through to the disk before anything is timed on it.
    const fd = fs.openSync(file, "r+");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    const seconds = (performance.now() - t1) / 1000;
    return { rows: loaded, devices: plan.devices, seconds, indexSeconds: (performance.now() - t2) / 1000, deviceSeconds, capped };
  } finally {
    db.close();
  }
}

/** SQL text of an ISO-8601 UTC time (as Date.toISOString) from an expression in ms. */
const isoSql = (ms: string) => `to_char(to_timestamp((${ms})::double precision / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * Loads `plan` into the migrated PostgreSQL schema `schema`, then ANALYZEs
 * the tables (this server runs with autovacuum off, so nothing else would)
 * and CHECKPOINTs, so that later timings do not pay for the load.
 */
export async function loadPostgres(url: string, schema: string, plan: LoadPlan): Promise<LoadResult> {
  const c = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await c.connect();
  try {
    await c.query("SET synchronous_commit = off");
    await c.query("SET maintenance_work_mem = '1GB'");
    const batch = plan.batch ?? 200_000;
    const t0 = performance.now();
    // Keys and secondary indexes are dropped and rebuilt afterwards from the
    // catalog's own definitions, so the schema ends up as migrated.
    const defer = plan.deferIndexes !== false;
    const constraints = defer
      ? (await c.query<{ name: string; def: string }>(
          `SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
           WHERE conrelid = 'certificates'::regclass AND contype IN ('p', 'f') ORDER BY contype DESC`,
        )).rows
      : [];
    const indexes = defer
      ? (await c.query<{ name: string; def: string }>(
          `SELECT i.indexname AS name, i.indexdef AS def FROM pg_indexes i
           WHERE i.schemaname = current_schema() AND i.tablename IN ('certificates', 'devices')
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname AND k.connamespace = current_schema()::regnamespace)`,
        )).rows
      : [];
    // "f" sorts after "p": foreign key dropped first, primary key added back first.
    for (const k of constraints) await c.query(`ALTER TABLE certificates DROP CONSTRAINT ${k.name}`);
    for (const i of indexes) await c.query(`DROP INDEX ${i.name}`);
    for (let k0 = 0; k0 < plan.devices; k0 += batch) {
      await c.query(
        `INSERT INTO devices (id, fingerprint, status, protocol, attributes, created_at, updated_at)
         SELECT substr(d, 1, 8) || '-' || substr(d, 9, 4) || '-' || substr(d, 13, 4) || '-' || substr(d, 17, 4) || '-' || substr(d, 21, 12),
                substr(d, 33, 32), 'active', 'bench-load', '{}', $3::text, $3::text
         FROM generate_series($1::bigint, $2::bigint) AS k,
              LATERAL (SELECT encode(sha256(convert_to($4::text || ':d:' || k, 'UTF8')), 'hex') AS d) x`,
        [k0, Math.min(plan.devices, k0 + batch) - 1, new Date(plan.issuedFrom).toISOString(), plan.seed],
      );
    }
    const deviceSeconds = (performance.now() - t0) / 1000;
    const { der, profile, keyType } = plan.template;
    const reasonSql = `CASE (n / 100) % 4 ${REASONS.map((r, i) => `WHEN ${i} THEN ${r === null ? "NULL" : `'${r}'`}`).join(" ")} END`;
    const statusSql = `CASE WHEN n % 100 < ${plan.validPct} THEN 'valid' WHEN n % 100 < ${plan.validPct + plan.supersededPct} THEN 'superseded' ELSE 'revoked' END`;
    const deviceSql =
      plan.devices > 0
        ? `(SELECT substr(d, 1, 8) || '-' || substr(d, 9, 4) || '-' || substr(d, 13, 4) || '-' || substr(d, 17, 4) || '-' || substr(d, 21, 12)
            FROM (SELECT encode(sha256(convert_to($3::text || ':d:' || (n % ${plan.devices}), 'UTF8')), 'hex') AS d) dd)`
        : "NULL";
    const sql = `INSERT INTO certificates (serial, device_id, profile, subject, sans, key_fingerprint, key_type, not_before, not_after, status,
         revoked_at, revocation_reason, issued_at, protocol, request_id, fingerprint, der)
       SELECT '4' || substr(h, 2, 31), ${deviceSql}, $4::text, 'CN=device-' || ${plan.devices > 0 ? `(n % ${plan.devices})` : "n"}, '[]', substr(h, 33, 64), $5::text,
              ${isoSql("ms")}, ${isoSql(`ms + ${plan.validityMs}`)}, st,
              CASE WHEN st = 'revoked' THEN ${isoSql(`ms + ${DAY_MS}`)} END, CASE WHEN st = 'revoked' THEN ${reasonSql} END,
              ${isoSql("ms")}, 'bench-load', NULL, substr(h, 65, 64), $6::bytea
       FROM generate_series($1::bigint, $2::bigint) AS n,
            LATERAL (SELECT encode(sha512(convert_to($3::text || ':' || n, 'UTF8')), 'hex') AS h,
                            ${plan.issuedFrom}::bigint + (n * ${plan.issuedTo - plan.issuedFrom}::bigint) / ${plan.rows} AS ms,
                            ${statusSql} AS st) x`;
    const t1 = performance.now();
    let loaded = 0;
    let capped = false;
    while (loaded < plan.rows) {
      const end = Math.min(plan.rows, loaded + batch);
      await c.query(sql, [loaded, end - 1, plan.seed, profile, keyType, der]);
      loaded = end;
      if (budgetSpent(plan, loaded, t1)) {
        capped = true;
        break;
      }
    }
    const t2 = performance.now();
    for (const i of indexes) await c.query(i.def);
    for (const k of [...constraints].reverse()) await c.query(`ALTER TABLE certificates ADD CONSTRAINT ${k.name} ${k.def}`);
    await c.query("ANALYZE devices");
    await c.query("ANALYZE certificates");
    await c.query("CHECKPOINT");
    const seconds = (performance.now() - t1) / 1000;
    return { rows: loaded, devices: plan.devices, seconds, indexSeconds: (performance.now() - t2) / 1000, deviceSeconds, capped };
  } finally {
    await c.end();
  }
}
