/**
 * Benchmark section "store" (issue 9, figure 3): store scale. Bulk-loads N
 * certificate rows (default 10 million; BENCH_QUICK 200,000; BENCH_STORE_ROWS
 * overrides) straight into SQLite and PostgreSQL, then repeats the in-process
 * issuance of section "issue" on that loaded store and on an empty one in the
 * same run: several runs alternating between the two stores (who goes first
 * alternates too), so that other load on the machine and drift over the run
 * fall on both alike instead of passing for a scale effect. Target: loaded
 * ≥ 0.90 × empty (aggregate certificates per second). Lookups by serial and by device must stay O(log n): the section
 * prints and checks the query plans of the store's own statements (an index
 * search, no scan) and times 10,000 random lookups through the store on both.
 *
 * The load stops after BENCH_LOAD_SECONDS (default 900: 10 M rows took 368 s
 * on SQLite and 263 s on PostgreSQL on a 2-core machine) per store; a capped
 * load says so in its row and figure.
 */
import "reflect-metadata";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import pg from "pg";
import pino from "pino";
import { buildCsr, generateKeyPair } from "@tessera/pki";
import { openAuthority } from "../packages/server/src/server.js";
import { testConfig } from "../packages/server/src/test-support.js";
import { openStore } from "../packages/server/src/store/index.js";
import type { CertificateRecord, Store } from "../packages/server/src/authority/ports.js";
import type { Authority } from "../packages/server/src/authority/authority.js";
import { loadPostgres, loadSqlite, rowDeviceId, serialOf, type LoadPlan, type LoadResult, type LoadTemplate } from "./lib/bulk-load.js";
import type { BenchFigure, BenchOptions, BenchSection } from "./lib/section.js";
import { closedLoop } from "./lib/closed-loop.js";
import { PG, postgresPlan, sqlitePlan, withPostgres } from "./lib/query-plans.js";

const CONCURRENCY = 64;
const DAY_MS = 86_400_000;

/** The statements of store-sql.ts behind getCertificate and listCertificates({ deviceId }). */
const BY_SERIAL = "SELECT * FROM certificates WHERE serial = ?";
const BY_DEVICE = "SELECT * FROM certificates WHERE device_id = ? ORDER BY issued_at, serial";

interface IssueStats {
  certs: number;
  seconds: number;
  cpuUs: number;
  latencies: number[];
  records: CertificateRecord[];
}

/** Several runs added up: aggregate rate, CPU per certificate, latency percentiles. */
function combine(runs: IssueStats[]): { perSecond: number; cpuUsPerCert: number; p50ms: number; p99ms: number; rates: number[] } {
  const certs = runs.reduce((n, r) => n + r.certs, 0);
  const lat = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  return {
    perSecond: certs / runs.reduce((n, r) => n + r.seconds, 0),
    cpuUsPerCert: runs.reduce((n, r) => n + r.cpuUs, 0) / certs,
    p50ms: q(lat, 0.5),
    p99ms: q(lat, 0.99),
    rates: runs.map((r) => r.certs / r.seconds),
  };
}

interface LookupStats {
  serialP50: number;
  serialP99: number;
  deviceP50: number;
  deviceP99: number;
  deviceRows: number;
}

interface Plan {
  text: string;
  indexed: boolean;
}

const q = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
const round = (x: number, d = 0) => +x.toFixed(d);
const fmt = (x: number) => Math.round(x).toLocaleString("en-US");

let csrList: ReturnType<typeof buildCsr>[] | undefined;
const csrs = () => (csrList ??= Array.from({ length: 64 }, (_, i) => buildCsr({ subject: [{ type: "CN", value: `bench-${i}` }], privateKey: generateKeyPair().privateKey })));

/** In-process issuance as section "issue" does it: 64 CSRs, an optional warm-up, then `total` certificates at concurrency 64. */
async function issueRun(authority: Authority, total: number, warmUp = 0): Promise<IssueStats> {
  const records: CertificateRecord[] = [];
  const one = async (i: number) => {
    const r = await authority.issue({ csr: csrs()[i % 64]!, protocol: "bench", credential: { kind: "operator", actor: "bench" } });
    if (records.length < 1000) records.push(r.record);
  };
  for (let i = 0; i < warmUp; i++) await one(i);
  const { seconds, cpuUs, latencies } = await closedLoop(total, CONCURRENCY, one);
  return { certs: total, seconds, cpuUs, latencies, records };
}

/** Times random lookups through the store: getCertificate(serial) and listCertificates({ deviceId }). */
async function lookupRun(store: Store, serials: string[], devices: string[]): Promise<LookupStats> {
  for (let i = 0; i < Math.min(200, serials.length); i++) await store.getCertificate(serials[i]!);
  const s: number[] = [];
  for (const serial of serials) {
    const t = process.hrtime.bigint();
    const r = await store.getCertificate(serial);
    s.push(Number(process.hrtime.bigint() - t) / 1e3);
    if (!r) throw new Error(`lookup by serial found nothing for ${serial}`);
  }
  const d: number[] = [];
  let rows = 0;
  for (const id of devices) {
    const t = process.hrtime.bigint();
    const r = await store.listCertificates({ deviceId: id });
    d.push(Number(process.hrtime.bigint() - t) / 1e3);
    rows += r.length;
  }
  s.sort((a, b) => a - b);
  d.sort((a, b) => a - b);
  return { serialP50: q(s, 0.5), serialP99: q(s, 0.99), deviceP50: q(d, 0.5), deviceP99: q(d, 0.99), deviceRows: rows / Math.max(1, devices.length) };
}

function sqlitePlans(file: string, serial: string, device: string): { serial: Plan; device: Plan } {
  const plan = (sql: string, arg: string): Plan => {
    const details = sqlitePlan(file, sql, [arg]);
    return { text: details.join("; "), indexed: details.some((x) => /^SEARCH certificates USING /.test(x)) && !details.some((x) => /^SCAN certificates\b/.test(x)) };
  };
  return { serial: plan(BY_SERIAL, serial), device: plan(BY_DEVICE, device) };
}

function postgresPlans(schema: string, serial: string, device: string): Promise<{ serial: Plan; device: Plan }> {
  return withPostgres(schema, async (c) => {
    const plan = async (sql: string, arg: string): Promise<Plan> => {
      const lines = await postgresPlan(c, sql, [arg]);
      return { text: lines.join(" / "), indexed: lines.some((l) => /Index (Only )?Scan|Bitmap Index Scan/.test(l)) && !lines.some((l) => /Seq Scan/.test(l)) };
    };
    return { serial: await plan(BY_SERIAL, serial), device: await plan(BY_DEVICE, device) };
  });
}

const pgAdmin = <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => withPostgres(undefined, fn);

/** Loaded-table size on disk, bytes. */
async function sizeOf(kind: "sqlite" | "postgres", where: string): Promise<number> {
  if (kind === "sqlite") return ["", "-wal"].reduce((n, ext) => n + (fs.existsSync(where + ext) ? fs.statSync(where + ext).size : 0), 0);
  return pgAdmin(async (c) => Number((await c.query(`SELECT pg_total_relation_size('${where}.certificates') + pg_total_relation_size('${where}.devices') AS n`)).rows[0].n));
}

interface StoreOutcome {
  kind: "sqlite" | "postgres";
  planned: number;
  load: LoadResult;
  empty: ReturnType<typeof combine>;
  loaded: ReturnType<typeof combine>;
  lookupsEmpty: LookupStats;
  lookupsLoaded: LookupStats;
  plansEmpty: { serial: Plan; device: Plan };
  plansLoaded: { serial: Plan; device: Plan };
  emptyRows: number;
  bytes: number;
  /** 1-minute load average at the start of each round (a 2-core machine shows other work here). */
  loadAvg: number[];
}

interface Sizes {
  rows: number;
  /** Certificates per timed issuance run, and runs per store (alternating empty and loaded). */
  issue: number;
  rounds: number;
  lookups: number;
  budget: number;
}

async function runStore(kind: "sqlite" | "postgres", opts: BenchOptions, sizes: Sizes): Promise<StoreOutcome> {
  const dataDir = path.join(opts.workDir, "data");
  const stamp = Date.now().toString(36);
  const schemaE = `bench_store_e_${stamp}`;
  const schemaL = `bench_store_l_${stamp}`;
  const fileE = path.join(opts.workDir, "empty.db");
  const fileL = path.join(opts.workDir, "loaded.db");
  const urlE = kind === "sqlite" ? `sqlite:${fileE}` : `${PG}?schema=${schemaE}`;
  const urlL = kind === "sqlite" ? `sqlite:${fileL}` : `${PG}?schema=${schemaL}`;
  const open = async (url: string) => openAuthority(await testConfig({ TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "silent", TESSERA_DATABASE_URL: url }), pino({ level: "silent" }), {});
  const log = (msg: string) => console.error(`  store/${kind}: ${msg}`);
  try {
    // 1. The empty store, warmed up; its first certificate is the template of the loaded rows.
    const e = await open(urlE);
    const warm = await issueRun(e.authority, 0, 500);
    const first = warm.records[0]!;
    const template: LoadTemplate = { der: first.der, profile: first.profile, keyType: first.keyType };

    // 2. Bulk load a second store.
    const now = Date.now();
    const plan: LoadPlan = {
      seed: `s${stamp}`,
      rows: sizes.rows,
      devices: Math.max(1, Math.floor(sizes.rows / 3)),
      issuedFrom: now - 730 * DAY_MS,
      issuedTo: now - 2 * DAY_MS,
      validityMs: 365 * DAY_MS,
      validPct: 90,
      supersededPct: 7,
      template,
      budgetSeconds: sizes.budget,
      progress: (n, s) => {
        if (n % Math.max(200_000, Math.floor(sizes.rows / 10)) < 200_000) log(`inserted ${fmt(n)} rows in ${s.toFixed(0)} s (${fmt(n / s)} rows/s)`);
      },
    };
    const migrated = await openStore(urlL);
    await migrated.migrate();
    await migrated.close();
    const load = kind === "sqlite" ? loadSqlite(fileL, plan) : await loadPostgres(PG, schemaL, plan);
    log(`load done: ${fmt(load.rows)} rows in ${load.seconds.toFixed(1)} s (index rebuild ${load.indexSeconds.toFixed(1)} s)${load.capped ? ", CAPPED by the time budget" : ""}`);
    const bytes = await sizeOf(kind, kind === "sqlite" ? fileL : schemaL);

    // 3. Issuance, alternating between the two stores (who goes first alternates too), so that
    //    other load on the machine and drift over the run fall on both alike.
    const l = await open(urlL);
    await issueRun(l.authority, 0, 500);
    const runsE: IssueStats[] = [];
    const runsL: IssueStats[] = [];
    const loadAvg: number[] = [];
    for (let r = 0; r < sizes.rounds; r++) {
      loadAvg.push(os.loadavg()[0] ?? 0);
      for (const which of r % 2 ? ["loaded", "empty"] : ["empty", "loaded"]) {
        const stats = await issueRun(which === "empty" ? e.authority : l.authority, sizes.issue);
        (which === "empty" ? runsE : runsL).push(stats);
        log(`round ${r + 1}, ${which}: ${fmt(stats.certs / stats.seconds)} certs/s`);
      }
    }

    // 4. Lookups and plans on the loaded store; then it goes (disk) before the empty one's turn.
    const pick = () => Math.floor(Math.random() * load.rows);
    const lookupsLoaded = await lookupRun(
      l.store,
      Array.from({ length: sizes.lookups }, () => serialOf(plan.seed, pick())),
      Array.from({ length: sizes.lookups }, () => rowDeviceId(plan, pick())!),
    );
    await l.store.close();
    const probe = pick();
    const plansLoaded =
      kind === "sqlite" ? sqlitePlans(fileL, serialOf(plan.seed, probe), rowDeviceId(plan, probe)!) : await postgresPlans(schemaL, serialOf(plan.seed, probe), rowDeviceId(plan, probe)!);
    if (kind === "sqlite") for (const ext of ["", "-wal", "-shm"]) fs.rmSync(fileL + ext, { force: true });
    else await pgAdmin((c) => c.query(`DROP SCHEMA IF EXISTS ${schemaL} CASCADE`));

    // 5. The empty store gets a few device rows, so that lookups by device find something there too.
    await e.store.close();
    const small: LoadPlan = { ...plan, seed: `t${stamp}`, rows: 10_000, devices: 3_333, budgetSeconds: 600, progress: undefined };
    if (kind === "sqlite") loadSqlite(fileE, small);
    else await loadPostgres(PG, schemaE, small);
    const e2 = await open(urlE);
    const issued = runsE.flatMap((r) => r.records).map((r) => r.serial);
    const lookupsEmpty = await lookupRun(
      e2.store,
      Array.from({ length: sizes.lookups }, (_, i) => (i % 2 ? issued[i % issued.length]! : serialOf(small.seed, Math.floor(Math.random() * small.rows)))),
      Array.from({ length: sizes.lookups }, () => rowDeviceId(small, Math.floor(Math.random() * small.rows))!),
    );
    const emptyRows = await e2.store.countCertificates();
    await e2.store.close();
    const plansEmpty = kind === "sqlite" ? sqlitePlans(fileE, issued[0]!, rowDeviceId(small, 1)!) : await postgresPlans(schemaE, issued[0]!, rowDeviceId(small, 1)!);
    return { kind, planned: sizes.rows, load, empty: combine(runsE), loaded: combine(runsL), lookupsEmpty, lookupsLoaded, plansEmpty, plansLoaded, emptyRows, bytes, loadAvg };
  } finally {
    if (kind === "postgres") await pgAdmin((c) => c.query(`DROP SCHEMA IF EXISTS ${schemaE} CASCADE; DROP SCHEMA IF EXISTS ${schemaL} CASCADE`)).catch(() => undefined);
    for (const f of [fileE, fileL]) for (const ext of ["", "-wal", "-shm"]) fs.rmSync(f + ext, { force: true });
  }
}

function report(o: StoreOutcome): { rows: Record<string, unknown>[]; figures: BenchFigure[] } {
  const ratio = o.loaded.perSecond / o.empty.perSecond;
  const loadedRows = o.load.rows;
  const cap = o.load.capped ? `CAPPED at ${fmt(loadedRows)} of ${fmt(o.planned)} rows by the load time budget` : "";
  const row = (measure: string, empty: unknown, loaded: unknown, ratioOrCheck: unknown = "") => ({ store: o.kind, measure, empty, loaded, "loaded/empty": ratioOrCheck });
  const rates = (c: ReturnType<typeof combine>) => c.rates.map(fmt).join(", ");
  const rows = [
    row("certificate rows", fmt(o.emptyRows), `${fmt(loadedRows)} + issued${o.load.capped ? " (capped)" : ""}`),
    row(
      "bulk load",
      "",
      `${fmt(loadedRows / o.load.seconds)} rows/s (${o.load.seconds.toFixed(0)} s, of which index rebuild ${o.load.indexSeconds.toFixed(0)} s; ${fmt(o.load.devices)} devices in ${o.load.deviceSeconds.toFixed(0)} s; ${(o.bytes / 2 ** 30).toFixed(1)} GiB)`,
    ),
    row("issuance certs/s (c64)", `${fmt(o.empty.perSecond)} (runs: ${rates(o.empty)})`, `${fmt(o.loaded.perSecond)} (runs: ${rates(o.loaded)})`, round(ratio, 3)),
    row("load average at each round", "", o.loadAvg.map((x) => x.toFixed(1)).join(", ")),
    row("issuance CPU µs/cert", fmt(o.empty.cpuUsPerCert), fmt(o.loaded.cpuUsPerCert), round(o.loaded.cpuUsPerCert / o.empty.cpuUsPerCert, 3)),
    row("issuance p50 / p99 ms", `${round(o.empty.p50ms, 1)} / ${round(o.empty.p99ms, 1)}`, `${round(o.loaded.p50ms, 1)} / ${round(o.loaded.p99ms, 1)}`),
    row("getCertificate µs p50 / p99", `${round(o.lookupsEmpty.serialP50)} / ${round(o.lookupsEmpty.serialP99)}`, `${round(o.lookupsLoaded.serialP50)} / ${round(o.lookupsLoaded.serialP99)}`, round(o.lookupsLoaded.serialP50 / o.lookupsEmpty.serialP50, 2)),
    row(
      "listCertificates(device) µs p50 / p99",
      `${round(o.lookupsEmpty.deviceP50)} / ${round(o.lookupsEmpty.deviceP99)} (${round(o.lookupsEmpty.deviceRows, 1)} rows)`,
      `${round(o.lookupsLoaded.deviceP50)} / ${round(o.lookupsLoaded.deviceP99)} (${round(o.lookupsLoaded.deviceRows, 1)} rows)`,
      round(o.lookupsLoaded.deviceP50 / o.lookupsEmpty.deviceP50, 2),
    ),
    row("plan: by serial", o.plansEmpty.serial.text, o.plansLoaded.serial.text, o.plansLoaded.serial.indexed ? "index, no scan" : "SCAN"),
    row("plan: by device", o.plansEmpty.device.text, o.plansLoaded.device.text, o.plansLoaded.device.indexed ? "index, no scan" : "SCAN"),
  ];
  const k = `store.${o.kind}`;
  const n = `${fmt(loadedRows)} rows`;
  const figures: BenchFigure[] = [
    {
      key: `${k}.loadRowsPerSec`,
      label: `bulk load, ${o.kind}`,
      value: Math.round(loadedRows / o.load.seconds),
      unit: "rows/s",
      note: `${n} (+${fmt(o.load.devices)} devices) in ${o.load.seconds.toFixed(0)} s: 200k-row INSERT transactions with the secondary indexes and keys dropped, then rebuilt (${o.load.indexSeconds.toFixed(0)} s) and flushed to disk${cap ? `; ${cap}` : ""}`,
    },
    {
      key: `${k}.issueRatio`,
      label: `issuance on a ${n} store vs empty, ${o.kind}`,
      value: round(ratio, 3),
      unit: "× empty",
      target: "≥ 0.90",
      met: ratio >= 0.9 && !o.load.capped,
      note: `${fmt(o.loaded.perSecond)} vs ${fmt(o.empty.perSecond)} certs/s over ${o.empty.rates.length} alternating runs each (load average ${o.loadAvg.map((x) => x.toFixed(1)).join("/")}); CPU ${fmt(o.loaded.cpuUsPerCert)} vs ${fmt(o.empty.cpuUsPerCert)} µs/cert${cap ? `; ${cap}` : ""}`,
    },
    {
      key: `${k}.serialLookupUs`,
      label: `getCertificate on ${n}, ${o.kind} (p50)`,
      value: round(o.lookupsLoaded.serialP50, 1),
      unit: "µs",
      target: "O(log n): index search, no scan",
      met: o.plansLoaded.serial.indexed,
      note: `empty ${round(o.lookupsEmpty.serialP50, 1)} µs; plan: ${o.plansLoaded.serial.text}`,
    },
    {
      key: `${k}.deviceLookupUs`,
      label: `certificates by device on ${n}, ${o.kind} (p50)`,
      value: round(o.lookupsLoaded.deviceP50, 1),
      unit: "µs",
      target: "O(log n): index search, no scan",
      met: o.plansLoaded.device.indexed,
      note: `empty ${round(o.lookupsEmpty.deviceP50, 1)} µs; plan: ${o.plansLoaded.device.text}`,
    },
  ];
  return { rows, figures };
}

/** Store scale: bulk load, then issuance and lookups on the loaded store vs an empty one. */
export const section: BenchSection = {
  id: "store",
  title: "Store scale: issuance and lookups on a bulk-loaded store vs an empty one (SQLite, PostgreSQL)",
  async run(opts) {
    const sizes = {
      rows: Number(process.env.BENCH_STORE_ROWS ?? (opts.quick ? 200_000 : 10_000_000)),
      issue: Number(process.env.BENCH_STORE_ISSUE_N ?? (opts.quick ? 3_000 : 10_000)),
      rounds: opts.quick ? 3 : 5,
      lookups: opts.quick ? 2_000 : 10_000,
      budget: Number(process.env.BENCH_LOAD_SECONDS ?? 900),
    };
    const rows: Record<string, unknown>[] = [];
    const figures: BenchFigure[] = [];
    const kinds = (process.env.BENCH_STORE_KINDS ?? "sqlite,postgres").split(",") as Array<"sqlite" | "postgres">;
    for (const kind of kinds) {
      try {
        const r = report(await runStore(kind, opts, sizes));
        rows.push(...r.rows);
        figures.push(...r.figures);
      } catch (err) {
        if (kind === "sqlite") throw err;
        console.error(`PostgreSQL skipped: ${(err as Error).stack ?? err}`);
      }
    }
    return { rows, figures };
  },
};
