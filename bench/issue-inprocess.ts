/**
 * Benchmark section "issue": in-process issuance through the authority with
 * durable storage (the whole pipeline: CSR verify, template build, sign,
 * group-commit store), on SQLite and on PostgreSQL.
 *
 * On SQLite it also times the way protocols call it (EST, imprint: the
 * protocol checks the CSR with authority.checkCsr, then issues), both ways
 * in the same process, alternating: handing issue() the DER again (the CSR's
 * key imported and its signature verified twice, as before the change) and
 * handing it the checked CSR (once). BENCH_ISSUE_ROUNDS (default 2) pairs.
 */
import "reflect-metadata";
import pino from "pino";
import { buildCsr, generateKeyPair } from "@tessera/pki";
import { openAuthority } from "../packages/server/src/server.js";
import * as fs from "node:fs";
import * as path from "node:path";
import { testConfig } from "../packages/server/src/test-support.js";
import { openStore } from "../packages/server/src/store/index.js";
import type { BenchSection } from "./lib/section.js";
import { closedLoop, quantile } from "./lib/closed-loop.js";

const TOTAL = Number(process.env.BENCH_N ?? 20000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const PG = process.env.TESSERA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

const ROUNDS = Number(process.env.BENCH_ISSUE_ROUNDS ?? 2);

/**
 * What one timed call does: "issue" hands authority.issue the DER (the
 * pipeline alone); "check+issue(DER)" is a protocol checking the CSR first
 * and handing issue the DER again (key imported and signature verified
 * twice); "check+issue(checked)" hands issue the checked CSR (once).
 */
type Mode = "issue" | "check+issue(DER)" | "check+issue(checked)";

interface Row { store: string; mode: Mode; round: number; certs: number; concurrency: number; perSecond: number; cpuUsPerCert: number; p50ms: number; p99ms: number; commits: number; perCoreTarget: number }

type Opened = Awaited<ReturnType<typeof openAuthority>> & { csrs: Buffer[] };

async function open(workDir: string, databaseUrl?: string, synchronous?: "full" | "normal"): Promise<Opened> {
  // Inside the section's work directory, which the runner removes afterwards.
  const config = await testConfig({ TESSERA_DATA_DIR: fs.mkdtempSync(path.join(workDir, "data-")), TESSERA_LOG_LEVEL: "silent", ...(databaseUrl ? { TESSERA_DATABASE_URL: databaseUrl } : {}) });
  if (synchronous) config.sqlite.synchronous = synchronous;
  const opened = await openAuthority(config, pino({ level: "silent" }), {});
  const csrs = Array.from({ length: 64 }, (_, i) => buildCsr({ subject: [{ type: "CN", value: `bench-${i}` }], privateKey: generateKeyPair().privateKey }));
  return { ...opened, csrs };
}

async function run(name: string, o: Opened, mode: Mode = "issue", round = 1, concurrency = CONCURRENCY, total = TOTAL): Promise<Row> {
  const { authority, csrs } = o;
  const credential = { kind: "operator", actor: "bench" } as const;
  const one =
    mode === "issue"
      ? (i: number) => authority.issue({ csr: csrs[i % csrs.length]!, protocol: "bench", credential })
      : async (i: number) => {
          const der = csrs[i % csrs.length]!;
          const checked = await authority.checkCsr(der);
          return authority.issue({ csr: mode === "check+issue(checked)" ? checked : der, protocol: "bench", credential });
        };
  for (let i = 0; i < 500; i++) await one(i); // warm-up: JIT, statement caches
  const commits0 = authority.writer.commits;
  const { seconds: wall, cpuUs, latencies } = await closedLoop(total, concurrency, one);
  const q = (p: number) => quantile(latencies, p);
  const row: Row = {
    store: name,
    mode,
    round,
    certs: total,
    concurrency,
    perSecond: Math.round(total / wall),
    cpuUsPerCert: Math.round(cpuUs / total),
    p50ms: +q(0.5).toFixed(2),
    p99ms: +q(0.99).toFixed(2),
    commits: authority.writer.commits - commits0,
    // certificates per second per CPU-second: the per-core figure the target (≥ 8,000) is about
    perCoreTarget: Math.round(1e6 / (cpuUs / total)),
  };
  return row;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** In-process issuance through the authority (no HTTP): what the pipeline itself costs. */
export const section: BenchSection = {
  id: "issue",
  title: "Issuance through the authority, in process, with durable storage",
  async run({ workDir }) {
    const sqlite = await open(workDir);
    const rows: Row[] = [];
    try {
      rows.push(await run("sqlite", sqlite));
      // The protocols' way, both variants alternating in this process (load on the machine hits both alike).
      for (let round = 1; round <= ROUNDS; round++) {
        for (const mode of ["check+issue(DER)", "check+issue(checked)"] as const) rows.push(await run("sqlite", sqlite, mode, round));
      }
    } finally {
      await sqlite.store.close();
    }
    // What the commit's fsync costs the event loop: synchronous=full (the default: SQLite fsyncs
    // the WAL inside COMMIT, on this thread) against normal (no fsync per commit), alternating.
    const full = await open(workDir, undefined, "full");
    const normal = await open(workDir, undefined, "normal");
    const syncRows: Row[] = [];
    try {
      for (const c of [1, 8, 64]) {
        for (let round = 1; round <= ROUNDS; round++) {
          const pair: Array<[string, Opened]> = [["sqlite full", full], ["sqlite normal", normal]];
          for (const [name, o] of round % 2 ? pair : pair.reverse()) {
            syncRows.push(await run(name, o, "issue", round, c, Math.min(TOTAL, c * 400)));
          }
        }
      }
    } finally {
      await full.store.close();
      await normal.store.close();
    }
    rows.push(...syncRows);
    try {
      const schema = `bench_${Date.now().toString(36)}`;
      const s = await openStore(PG);
      await s.close();
      const pgOpened = await open(workDir, `${PG}?schema=${schema}`);
      try {
        rows.push(await run("postgres", pgOpened));
      } finally {
        await pgOpened.store.close();
      }
      const pg = (await import("pg")).default;
      const c = new pg.Client({ connectionString: PG });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    } catch (err) {
      console.error(`PostgreSQL skipped: ${(err as Error).message}`);
    }
    const twice = rows.filter((r) => r.mode === "check+issue(DER)");
    const once = rows.filter((r) => r.mode === "check+issue(checked)");
    const usTwice = mean(twice.map((r) => r.cpuUsPerCert));
    const usOnce = mean(once.map((r) => r.cpuUsPerCert));
    const rateTwice = mean(twice.map((r) => r.perSecond));
    const rateOnce = mean(once.map((r) => r.perSecond));
    return {
      rows: rows.map((r) => ({ store: r.store, call: r.mode, round: r.mode === "issue" && !syncRows.includes(r) ? "" : r.round, "certs/s": r.perSecond, "CPU µs/cert": r.cpuUsPerCert, "certs/s per core": r.perCoreTarget, "p50 ms": r.p50ms, "p99 ms": r.p99ms, transactions: r.commits, concurrency: r.concurrency })),
      figures: [
        ...rows.filter((r) => r.mode === "issue" && !syncRows.includes(r)).map((r) => ({ key: `issue.${r.store}.cpuUsPerCert`, label: `in-process issuance, ${r.store}: CPU per certificate`, value: r.cpuUsPerCert, unit: "µs" })),
        ...[1, 8, 64].map((c) => {
          const of = (name: string) => syncRows.filter((r) => r.store === name && r.concurrency === c);
          const [f, n] = [of("sqlite full"), of("sqlite normal")];
          const ratio = mean(n.map((r) => r.perSecond)) / Math.max(1, mean(f.map((r) => r.perSecond)));
          return {
            key: `issue.sqlite.fsyncCost.c${c}`, label: `in-process issuance at ${c} in flight: synchronous=normal / full throughput`, value: +ratio.toFixed(2), unit: "×",
            note: `full ${Math.round(mean(f.map((r) => r.perSecond)))}/s, ${Math.round(mean(f.map((r) => r.cpuUsPerCert)))} µs; normal ${Math.round(mean(n.map((r) => r.perSecond)))}/s, ${Math.round(mean(n.map((r) => r.cpuUsPerCert)))} µs; ${ROUNDS} alternating pairs`,
          };
        }),
        ...(twice.length && once.length
          ? [
              {
                key: "issue.sqlite.checkThenIssue.cpuUsPerCert", label: "in-process check + issue (the protocols' way), sqlite: CPU per certificate", value: Math.round(usOnce), unit: "µs",
                note: `CSR handed on as checked (key imported once): ${Math.round(usOnce)} µs, ${Math.round(rateOnce)}/s; DER handed on (imported twice, as before): ${Math.round(usTwice)} µs, ${Math.round(rateTwice)}/s; mean of ${ROUNDS} alternating pairs`,
              },
              { key: "issue.sqlite.checkThenIssue.speedup", label: "in-process check + issue: throughput, checked CSR / DER again", value: +(rateOnce / rateTwice).toFixed(2), unit: "×", note: `CPU per certificate ${(usTwice / usOnce).toFixed(2)}× lower` },
            ]
          : []),
      ],
    };
  },
};
