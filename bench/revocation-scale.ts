/**
 * Benchmark section "revocation" (issue 9, figure 4): revocation at scale.
 *
 * CRL: 1,000,000 revoked certificates (BENCH_QUICK 100,000;
 * BENCH_REVOKED overrides) bulk-loaded straight into the store, then the
 * real CrlService rebuilds the CRL from it: listRevoked + buildCrl (DER) +
 * sign + PEM. Target ≤ 3 s. Timed on SQLite and on PostgreSQL; the time is
 * split into the query, the DER encoding, the signature and the PEM, and the
 * CRL is checked with `openssl crl -CAfile` and pki's parser (entry count,
 * signature).
 *
 * OCSP (≥ 20,000 responses/s from cache): revocation-ocsp.ts.
 *
 * When a target is missed (or BENCH_PROFILE=1), the stretch in question is
 * run again under the CPU profiler and the top self-time functions are
 * reported (bench/lib/inspector-profile.ts).
 */
import "reflect-metadata";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import pino from "pino";
import {
  buildCrl, buildCsr, certificatePublicKey, generateKeyPair, issuerSkiOf, parseCrl, pemEncode, signAsync, signatureAlgorithmFor, verifyCrlSignature,
  type CrlReason, type Issuer,
} from "@tessera/pki";
import { openAuthority } from "../packages/server/src/server.js";
import { startTestServer, testConfig } from "../packages/server/src/test-support.js";
import { openStore } from "../packages/server/src/store/index.js";
import { CRL_PAGE_SIZE, CrlService, type CrlSnapshot } from "../packages/server/src/authority/crl-service.js";
import { caPaths } from "../packages/server/src/ca/ca-files.js";
import { systemClock } from "../packages/server/src/authority/runtime.js";
import type { CertificateRecord, RevokedEntry, Store } from "../packages/server/src/authority/ports.js";
import { loadPostgres, loadSqlite, type LoadPlan, type LoadResult } from "./lib/bulk-load.js";
import { formatTop, profiled, type SelfTime } from "./lib/inspector-profile.js";
import { PG, postgresPlan, sqlitePlan, withPostgres } from "./lib/query-plans.js";
import type { BenchFigure, BenchOptions, BenchSection } from "./lib/section.js";
import { measureOcsp, OCSP_TARGET, type OcspOutcome } from "./revocation-ocsp.js";

const DAY_MS = 86_400_000;
const CRL_TARGET_S = 3;
const PROFILE = process.env.BENCH_PROFILE === "1";

/** The statement of store-sql.ts behind listRevokedPage (SQLite names the index; PostgreSQL's planner finds it). */
const listRevokedPage = (dialect: "sqlite" | "postgres") =>
  `SELECT serial, COALESCE(revoked_at, issued_at) AS revoked_at, revocation_reason FROM certificates${dialect === "sqlite" ? " INDEXED BY certificates_crl" : ""} WHERE status = 'revoked' AND not_after >= ? AND serial > ? ORDER BY serial LIMIT ?`;

/** The statement of store-sql.ts behind listRevokedSince, which RevocationEvents polls every 2 s in a running server. */
const LIST_REVOKED_SINCE =
  "SELECT serial, revoked_at, revocation_reason FROM certificates WHERE status = 'revoked' AND revoked_at >= ? ORDER BY revoked_at, serial LIMIT ?";

const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
const sec = (ms: number) => +(ms / 1000).toFixed(3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }));
  });
}

// ---------------------------------------------------------------- CRL

interface CrlTiming {
  totalMs: number;
  queryMs: number;
  numberMs: number;
}

interface CrlOutcome {
  store: "sqlite" | "postgres";
  load: LoadResult;
  plan: string;
  coldMs: number;
  runs: CrlTiming[];
  encodeMs: number;
  signMs: number;
  pemMs: number;
  bytes: number;
  entries: number;
  expected: number;
  signatureOk: boolean;
  openssl: string;
  /** RevocationEvents' poll (listRevokedSince, every 2 s): median time and plan. */
  pollMs: number;
  pollPlan: string;
  profile?: { top: SelfTime[]; file: string };
}

/**
 * Rebuilds the CRL through the real CrlService over `store`, cold once (through `cold`, e.g. the
 * server's own service) and then `n` times with a store wrapper that times the query; then splits
 * the rest into DER encoding, signature and PEM with the same inputs.
 */
async function measureCrl(
  kind: "sqlite" | "postgres",
  store: Pick<Store, "listRevokedPage" | "nextCrlNumber" | "listRevokedSince">,
  issuer: Issuer,
  cold: () => Promise<CrlSnapshot>,
  validity: { validitySeconds: number; refreshBeforeSeconds: number },
  n: number,
  workDir: string,
  chainFile: string,
  load: LoadResult,
  plans: { crl: string; poll: string },
): Promise<CrlOutcome> {
  let t = performance.now();
  const first = await cold();
  const coldMs = performance.now() - t;
  let timing: CrlTiming = { totalMs: 0, queryMs: 0, numberMs: 0 };
  const timed: Pick<Store, "listRevokedPage" | "nextCrlNumber"> = {
    async listRevokedPage(since: Date, after: string | undefined, limit: number): Promise<RevokedEntry[]> {
      const s = performance.now();
      const r = await store.listRevokedPage(since, after, limit);
      timing.queryMs += performance.now() - s;
      return r;
    },
    async nextCrlNumber(): Promise<bigint> {
      const s = performance.now();
      const r = await store.nextCrlNumber();
      timing.numberMs += performance.now() - s;
      return r;
    },
  };
  const service = new CrlService(timed, issuer, systemClock, validity.validitySeconds, validity.refreshBeforeSeconds);
  const runs: CrlTiming[] = [];
  let last = first;
  for (let i = 0; i < n; i++) {
    timing = { totalMs: 0, queryMs: 0, numberMs: 0 };
    t = performance.now();
    last = await service.rebuild();
    timing.totalMs = performance.now() - t;
    runs.push(timing);
  }
  // The split: the same entries through buildCrl (encode + sign), the signature alone, the PEM.
  const revoked: RevokedEntry[] = [];
  for (let after: string | undefined; ; ) {
    const page = await store.listRevokedPage(last.thisUpdate, after, CRL_PAGE_SIZE);
    for (const r of page) revoked.push(r);
    if (page.length < CRL_PAGE_SIZE) break;
    after = page[page.length - 1]!.serial;
  }
  const input = {
    issuer: issuer.certificate.subject,
    issuerKeyId: issuerSkiOf(issuer.certificate),
    privateKey: issuer.privateKey,
    thisUpdate: last.thisUpdate,
    nextUpdate: last.nextUpdate,
    crlNumber: last.number,
    entries: revoked.map((r) => ({ serialHex: r.serial, revokedAt: r.revokedAt, reason: (r.reason ?? undefined) as CrlReason | undefined })),
  };
  const builds: number[] = [];
  const signs: number[] = [];
  const pems: number[] = [];
  const parsed = parseCrl(last.der);
  const alg = signatureAlgorithmFor(issuer.privateKey);
  for (let i = 0; i < n; i++) {
    t = performance.now();
    await buildCrl(input);
    builds.push(performance.now() - t);
    t = performance.now();
    await signAsync(alg, parsed.tbs, issuer.privateKey);
    signs.push(performance.now() - t);
    t = performance.now();
    pemEncode("X509 CRL", last.der);
    pems.push(performance.now() - t);
  }
  const signMs = median(signs);
  // Checks: OpenSSL verifies the signature against the chain; pki's parser counts the entries.
  const file = path.join(workDir, `crl-${kind}.pem`);
  fs.writeFileSync(file, last.pem);
  const o = await run("openssl", ["crl", "-in", file, "-noout", "-CAfile", chainFile]);
  fs.rmSync(file, { force: true });
  const openssl = o.code === 0 && /verify OK/i.test(o.out) ? "verify OK" : `FAILED: ${o.out.trim().slice(0, 200)}`;
  // The revocation poll as a server runs it: rows revoked in the last two minutes (none here).
  const polls: number[] = [];
  for (let i = 0; i < 5; i++) {
    t = performance.now();
    await store.listRevokedSince(new Date(Date.now() - 120_000));
    polls.push(performance.now() - t);
  }
  let profile: CrlOutcome["profile"];
  const total = median(runs.map((r) => r.totalMs));
  if (PROFILE || total > CRL_TARGET_S * 1000) {
    const p = await profiled(`crl-${kind}`, () => service.rebuild());
    profile = { top: p.top, file: p.file };
  }
  return {
    store: kind,
    load,
    plan: plans.crl,
    pollMs: median(polls),
    pollPlan: plans.poll,
    coldMs,
    runs,
    encodeMs: Math.max(0, median(builds) - signMs),
    signMs,
    pemMs: median(pems),
    bytes: last.der.length,
    entries: parsed.revoked.size,
    expected: load.rows,
    signatureOk: verifyCrlSignature(parsed, certificatePublicKey(issuer.certificate)),
    openssl,
    profile,
  };
}

function revokedPlan(seed: string, rows: number, template: CertificateRecord, budgetSeconds: number): LoadPlan {
  const now = Date.now();
  // Every row revoked a day after issuance, none expired yet: all of them belong on the CRL.
  return {
    seed,
    rows,
    devices: 0,
    issuedFrom: now - 300 * DAY_MS,
    issuedTo: now - 2 * DAY_MS,
    validityMs: 365 * DAY_MS,
    validPct: 0,
    supersededPct: 0,
    template: { der: template.der, profile: template.profile, keyType: template.keyType },
    budgetSeconds,
  };
}

function sqlitePlans(file: string): { crl: string; poll: string } {
  const plan = (sql: string, ...args: unknown[]) => sqlitePlan(file, sql, args).join("; ");
  return { crl: plan(listRevokedPage("sqlite"), new Date().toISOString(), "", CRL_PAGE_SIZE), poll: plan(LIST_REVOKED_SINCE, new Date().toISOString(), 1000) };
}

function postgresPlans(schema: string): Promise<{ crl: string; poll: string }> {
  return withPostgres(schema, async (c) => {
    const plan = async (sql: string, ...args: unknown[]) => (await postgresPlan(c, sql, args)).join(" / ");
    return { crl: await plan(listRevokedPage("postgres"), new Date().toISOString(), "", CRL_PAGE_SIZE), poll: await plan(LIST_REVOKED_SINCE, new Date().toISOString(), 1000) };
  });
}

// ---------------------------------------------------------------- the section

async function runSection(opts: BenchOptions): Promise<{ rows: Record<string, unknown>[]; figures: BenchFigure[] }> {
  const rowsN = Number(process.env.BENCH_REVOKED ?? (opts.quick ? 100_000 : 1_000_000));
  const goodN = opts.quick ? 200 : 1_000;
  const urlsN = opts.quick ? 2_000 : 10_000;
  const budget = Number(process.env.BENCH_LOAD_SECONDS ?? 300);
  const dataDir = path.join(opts.workDir, "data");
  const dbFile = path.join(opts.workDir, "revocation.db");
  const env = { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "silent", TESSERA_DATABASE_URL: `sqlite:${dbFile}` };
  const log = (msg: string) => console.error(`  revocation: ${msg}`);
  const stamp = Date.now().toString(36);

  // 1. The CA, and real certificates of it: the template of the loaded rows, and the "good" OCSP serials.
  const a = await openAuthority(await testConfig(env), pino({ level: "silent" }), {});
  const good: CertificateRecord[] = [];
  const key = generateKeyPair().privateKey;
  const csr = buildCsr({ subject: [{ type: "CN", value: "bench-good" }], privateKey: key });
  for (let i = 0; i < goodN; i += 50) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => a.authority.issue({ csr, protocol: "bench", credential: { kind: "operator", actor: "bench" } })));
    good.push(...batch.map((b) => b.record));
  }
  await a.store.close();

  // 2. The revoked rows (SQLite), then the real server on that store.
  const plan = revokedPlan(`r${stamp}`, rowsN, good[0]!, budget);
  const load = loadSqlite(dbFile, plan);
  log(`loaded ${fmt(load.rows)} revoked rows into SQLite in ${load.seconds.toFixed(1)} s${load.capped ? " (CAPPED)" : ""}`);
  const { server, config } = await startTestServer({ ...env, TESSERA_HTTP_LISTEN: "127.0.0.1:0" });
  const crls: CrlOutcome[] = [];
  let ocsp: OcspOutcome | undefined;
  const chainFile = caPaths(dataDir).chain;
  const issuer = server.authority.ca.issuer;
  const validity = { validitySeconds: config.crl.validity, refreshBeforeSeconds: config.crl.refreshBefore };
  const runs = opts.quick ? 3 : 5;
  try {
    crls.push(await measureCrl("sqlite", server.store, issuer, () => server.authority.crl.rebuild(), validity, runs, opts.workDir, chainFile, load, sqlitePlans(dbFile)));
    log(`CRL on SQLite: ${(median(crls[0]!.runs.map((r) => r.totalMs)) / 1000).toFixed(2)} s`);

    // 3. PostgreSQL: the same rows in a fresh schema, the same CrlService.
    const schema = `bench_rev_${stamp}`;
    try {
      const s = await openStore(`${PG}?schema=${schema}`);
      try {
        await s.migrate();
        const pgLoad = await loadPostgres(PG, schema, plan);
        log(`loaded ${fmt(pgLoad.rows)} revoked rows into PostgreSQL in ${pgLoad.seconds.toFixed(1)} s`);
        // What autovacuum does after a bulk insert (PostgreSQL ≥ 13 vacuums insert-only tables too):
        // it sets the visibility map, without which the CRL's index-only scan would visit the heap.
        await withPostgres(schema, (c) => c.query("VACUUM (ANALYZE) certificates"));
        const coldService = new CrlService(s, issuer, systemClock, validity.validitySeconds, validity.refreshBeforeSeconds);
        crls.push(await measureCrl("postgres", s, issuer, () => coldService.rebuild(), validity, runs, opts.workDir, chainFile, pgLoad, await postgresPlans(schema)));
        log(`CRL on PostgreSQL: ${(median(crls[1]!.runs.map((r) => r.totalMs)) / 1000).toFixed(2)} s`);
      } finally {
        await s.close();
      }
    } catch (err) {
      console.error(`PostgreSQL skipped: ${(err as Error).stack ?? err}`);
    } finally {
      await withPostgres(undefined, (c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)).catch(() => undefined);
    }

    // 4. OCSP from cache.
    ocsp = await measureOcsp(server.httpUrl!.replace("localhost", "127.0.0.1"), server, config, issuer, plan, load.rows, good, urlsN, opts);
  } finally {
    await server.close(500);
  }
  return report(crls, ocsp);
}


function report(crls: CrlOutcome[], ocsp: OcspOutcome | undefined): { rows: Record<string, unknown>[]; figures: BenchFigure[] } {
  const rows: Record<string, unknown>[] = [];
  const figures: BenchFigure[] = [];
  const row = (part: string, measure: string, value: unknown, note = "") => rows.push({ part, measure, value, note });
  for (const c of crls) {
    const part = `CRL, ${c.store}`;
    const total = median(c.runs.map((r) => r.totalMs));
    const query = median(c.runs.map((r) => r.queryMs));
    row(part, "revoked rows loaded", fmt(c.load.rows), `${fmt(c.load.rows / c.load.seconds)} rows/s${c.load.capped ? "; CAPPED by the load budget" : ""}`);
    row(part, "listRevokedPage plan", c.plan);
    row(part, "rebuild (CrlService), cold", `${sec(c.coldMs)} s`, "first build after start: JIT, caches");
    row(part, `rebuild (CrlService), median of ${c.runs.length}`, `${sec(total)} s`, `runs: ${c.runs.map((r) => sec(r.totalMs)).join(", ")} s`);
    row(part, `  query: listRevokedPage, pages of ${fmt(CRL_PAGE_SIZE)}`, `${sec(query)} s`, "SQL + row mapping (Date objects)");
    row(part, "  DER encoding (buildCrl − sign)", `${sec(c.encodeMs)} s`);
    row(part, "  signature (hash of the TBS + sign)", `${sec(c.signMs)} s`);
    row(part, "  PEM (not in the rebuild: made on first use)", `${sec(c.pemMs)} s`, "GET /crl.pem, [revocation] crl_file");
    row(part, "CRL", `${(c.bytes / 2 ** 20).toFixed(1)} MiB, ${fmt(c.entries)} entries`, c.entries === c.expected ? "entry count as loaded" : `EXPECTED ${fmt(c.expected)}`);
    row(part, "verification", `openssl crl -CAfile: ${c.openssl}; pki verifyCrlSignature: ${c.signatureOk ? "OK" : "FAILED"}`);
    if (c.profile) row(part, "profile (self time)", formatTop(c.profile.top, 6), c.profile.file);
    row(part, "revocation poll (listRevokedSince, every 2 s in a server)", `${sec(c.pollMs)} s`, `plan: ${c.pollPlan}`);
    const ok = c.entries === c.expected && c.signatureOk && c.openssl === "verify OK";
    figures.push({
      key: `revocation.crl.${c.store}.seconds`,
      label: `CRL build + sign, ${fmt(c.entries)} revoked, ${c.store}`,
      value: sec(total),
      unit: "s",
      target: `≤ ${CRL_TARGET_S} s`,
      met: total <= CRL_TARGET_S * 1000 && ok && !c.load.capped,
      note:
        `median of ${c.runs.length} CrlService rebuilds (cold ${sec(c.coldMs)} s): query ${sec(query)} s, DER ${sec(c.encodeMs)} s, sign ${sec(c.signMs)} s (PEM, on first use: ${sec(c.pemMs)} s); ` +
        `${(c.bytes / 2 ** 20).toFixed(1)} MiB; ${ok ? "verified (openssl, pki), entry count matches" : "VERIFICATION FAILED"}` +
        (c.profile ? `; profile: ${formatTop(c.profile.top, 4)}` : ""),
    });
  }
  if (ocsp) {
    const w = ocsp.wrk;
    row("OCSP", "serials", `${fmt(ocsp.urls)} (${fmt(ocsp.revoked)} revoked, ${fmt(ocsp.good)} good)`, "nonce-less GET /ocsp/<base64> (RFC 5019), SHA-1 CertIDs");
    row("OCSP", "cache warm-up (misses: lookup + sign)", `${fmt(ocsp.warmPerSecond)} responses/s`, `${fmt(ocsp.checked)} answers checked (status, serial, expected good/revoked), ${ocsp.verified} signatures verified`);
    row(
      "OCSP",
      "HTTP GET from cache (wrk)",
      `${fmt(w.perSecond)} responses/s`,
      `server CPU ${ocsp.serverCpuUs.toFixed(1)} µs/response; load average ${ocsp.loadAvg.toFixed(2)} at start; wrk -t${ocsp.threads} -c${ocsp.connections}, plain HTTP on loopback; p50 ${w.p50ms.toFixed(2)} ms, p99 ${w.p99ms.toFixed(2)} ms; ${fmt(w.ok)} checked OK (200 + successful), ${w.bad} bad, ${w.socketErrors} socket errors`,
    );
    row(
      "OCSP",
      "HTTP GET from cache, revocation poll stopped",
      `${fmt(ocsp.noPoll.wrk.perSecond)} responses/s`,
      `server CPU ${ocsp.noPoll.serverCpuUs.toFixed(1)} µs/response; p99 ${ocsp.noPoll.wrk.p99ms.toFixed(2)} ms; ${ocsp.noPoll.wrk.bad} bad, ${ocsp.noPoll.wrk.socketErrors} socket errors`,
    );
    row("OCSP", "OcspService.respond from cache (no HTTP)", `${fmt(ocsp.inProcessPerSecond)} responses/s`, "in process, one at a time: the service's own ceiling");
    if (ocsp.profile) row("OCSP", `profile of the server under wrk (${fmt(ocsp.profile.perSecond)}/s while profiled)`, formatTop(ocsp.profile.top, 8), `idle ${ocsp.profile.idlePct}%; ${ocsp.profile.file}`);
    const valid = w.bad === 0 && w.socketErrors === 0 && w.ok > 0;
    figures.push({
      key: "revocation.ocsp.http.perSecond",
      label: "OCSP responses from cache over HTTP (wrk, GET)",
      value: Math.round(w.perSecond),
      unit: "responses/s",
      target: `≥ ${fmt(OCSP_TARGET)}/s`,
      met: w.perSecond >= OCSP_TARGET && valid,
      note:
        `${fmt(ocsp.urls)} cached serials, wrk -t${ocsp.threads} -c${ocsp.connections} on loopback, server in this process (one event loop); every response checked (${valid ? "all 200 + successful" : `${w.bad} bad, ${w.socketErrors} socket errors`}); ` +
        `server CPU ${ocsp.serverCpuUs.toFixed(1)} µs/response (1 core → ${fmt(1e6 / ocsp.serverCpuUs)}/s ceiling); service alone ${fmt(ocsp.inProcessPerSecond)}/s; load average ${ocsp.loadAvg.toFixed(2)}` +
        (ocsp.profile ? `; profile: ${formatTop(ocsp.profile.top, 5)}` : ""),
    });
    figures.push({
      key: "revocation.ocsp.inprocess.perSecond",
      label: "OCSP responses from cache, OcspService alone (no HTTP)",
      value: Math.round(ocsp.inProcessPerSecond),
      unit: "responses/s",
      note: "parse request, match issuer, cache hit; sequential awaits in this process",
    });
  }
  return { rows, figures };
}

/** Revocation at scale: CRL of a million revoked certificates; OCSP from cache. */
export const section: BenchSection = {
  id: "revocation",
  title: "Revocation at scale: CRL build + sign over 1M revoked certificates; OCSP responses from cache",
  run: runSection,
};
