/**
 * Benchmark section "enroll" (issue 9, figure 1): enrollment over HTTPS
 * keep-alive, CSR in → stored certificate out, side by side with cfssl in the
 * same run, with the same load generator (wrk, every response checked) and
 * the same CSRs.
 *
 * - Tessera: `tessera serve` as a child process (SQLite, synchronous=full),
 *   EST `POST /.well-known/est/simpleenroll`, base64 PKCS#10, HTTP Basic user.
 * - cfssl: `cfssl serve` on loopback with an ECDSA P-256 CA, behind TLS too
 *   (`-tls-cert/-tls-key`, an ECDSA P-256 server certificate like Tessera's),
 *   `POST /api/v1/cfssl/sign` with `{"certificate_request": PEM}`; it
 *   authenticates nobody and stores nothing.
 *
 * Both get the same CSRS distinct subjects in turn, each wrk thread its own
 * slice: EST's simpleenroll supersedes the subject's previous certificate
 * (compare-and-set on the device's current serial), so concurrent requests
 * for one subject would conflict; with CSRS ≫ connections they never overlap.
 * Runs alternate Tessera / cfssl per concurrency, so load from other
 * processes on the machine hits both alike: compare ratios from one run.
 * Server CPU comes from /proc/<pid>/stat (every thread, 10 ms ticks).
 *
 * Environment: BENCH_ENROLL_CONCURRENCY (default "1,8,64"),
 * BENCH_ENROLL_PROFILE=1 or a directory: one more c=8 run against a Tessera
 * started with --cpu-prof, its top self-time functions printed (the profile
 * is kept in that directory, default the OS temp dir).
 * BENCH_WORKERS (default "1"): Tessera's worker counts (`serve --workers N`),
 * e.g. "1,2": one server each, all measured in turn at every concurrency; the
 * first is the one compared with cfssl in the headline figures.
 * BENCH_BASELINE_ROOT: another checkout (e.g. `git archive` of the commit
 * before a change, with node_modules linked); its Tessera ("baseline") runs
 * in turn with the others, so a change's before/after comes from one run.
 */
import "reflect-metadata";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import Database from "better-sqlite3";
import { buildCsr, encodeBase64Lines, generateKeyPair, pemEncode } from "@tessera/pki";
import type { BenchFigure, BenchSection } from "./lib/section.js";
import { startCommandProcess, startTesseraProcess, tesseraCli, type ServerProcess, type TesseraProcess } from "./lib/server-process.js";
import { runWrk, writeWrkScript, type WrkResult } from "./lib/wrk.js";
import { topSelfTime } from "./lib/cpuprofile.js";

/** Distinct CSR subjects sent in turn (≫ connections, so one subject is never in flight twice). */
const CSRS = 1024;
const WARMUP_SECONDS = 2;
const USER = "bench";
const PASSWORD = "bench-enroll-password";

/** "cfssl", or a Tessera variant: "tessera", "tessera w2" (workers), "baseline" (BENCH_BASELINE_ROOT). */
type Server = string;

/** One Tessera server to measure. */
interface Variant {
  name: string;
  workers: number;
  root?: string;
}

/** The Tessera variants this run measures (see the module comment). */
function variants(): Variant[] {
  const workers = (process.env.BENCH_WORKERS ?? "1").split(",").map(Number).filter((n) => Number.isInteger(n) && n > 0);
  const list: Variant[] = workers.map((w) => ({ name: w === 1 ? "tessera" : `tessera w${w}`, workers: w }));
  const base = process.env.BENCH_BASELINE_ROOT;
  if (base) list.push({ name: "baseline", workers: 1, root: path.resolve(base) });
  return list;
}

interface Run {
  server: Server;
  concurrency: number;
  wrk: WrkResult;
  cpuUsPerReq: number;
  /** Cores busy on average (CPU time / wall time). */
  cores: number;
  rssMiB: number;
  /** Tessera: certificates the store gained during the run. */
  stored?: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, "127.0.0.1");
    c.once("connect", () => (c.destroy(), resolve(true)));
    c.once("error", () => resolve(false));
  });
}

/** cfssl's JSON output ({cert, key, csr}) into two PEM files. */
function cfsslGencert(dir: string, args: string[], csrJson: object, certFile: string, keyFile: string): void {
  const input = path.join(dir, `${path.basename(certFile, ".pem")}-csr.json`);
  fs.writeFileSync(input, JSON.stringify(csrJson));
  const out = JSON.parse(execFileSync("cfssl", ["gencert", ...args, input], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })) as { cert: string; key: string };
  fs.writeFileSync(path.join(dir, certFile), out.cert);
  fs.writeFileSync(path.join(dir, keyFile), out.key, { mode: 0o600 });
}

async function startCfssl(dir: string): Promise<{ proc: ServerProcess; url: string }> {
  fs.mkdirSync(dir, { recursive: true });
  // Same terms as Tessera's device profile: client auth, one year; ECDSA P-256 CA and server key.
  const config = { signing: { default: { usages: ["digital signature", "key agreement", "client auth"], expiry: "8760h" }, profiles: { server: { usages: ["digital signature", "key encipherment", "server auth"], expiry: "8760h" } } } };
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
  cfsslGencert(dir, ["-initca"], { CN: "cfssl bench CA", names: [{ O: "bench" }], key: { algo: "ecdsa", size: 256 } }, "ca.pem", "ca-key.pem");
  cfsslGencert(dir, ["-ca", "ca.pem", "-ca-key", "ca-key.pem", "-config", "config.json", "-profile", "server"], { CN: "127.0.0.1", hosts: ["127.0.0.1"], key: { algo: "ecdsa", size: 256 } }, "server.pem", "server-key.pem");
  const port = await freePort();
  const proc = await startCommandProcess(
    "cfssl",
    // -loglevel 4 (error): no line per request, as Tessera logs at warn.
    ["serve", "-address", "127.0.0.1", "-port", String(port), "-ca", "ca.pem", "-ca-key", "ca-key.pem", "-config", "config.json", "-tls-cert", "server.pem", "-tls-key", "server-key.pem", "-loglevel", "4"],
    { cwd: dir, logFile: path.join(dir, "cfssl.log"), ready: () => canConnect(port) },
  );
  return { proc, url: `https://127.0.0.1:${port}/api/v1/cfssl/sign` };
}

function countEstCertificates(dataDir: string): number {
  const db = new Database(path.join(dataDir, "tessera.db"), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM certificates WHERE protocol = 'est'").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function measure(server: Server, proc: ServerProcess, url: string, script: string, concurrency: number, seconds: number, dataDir?: string): Promise<Run> {
  const before = dataDir ? countEstCertificates(dataDir) : 0;
  const cpu0 = proc.cpuMicros();
  const wrk = await runWrk({ url, script, connections: concurrency, seconds });
  const cpu = proc.cpuMicros() - cpu0;
  const run: Run = {
    server,
    concurrency,
    wrk,
    cpuUsPerReq: Math.round(cpu / Math.max(1, wrk.requests)),
    cores: +(cpu / 1e6 / wrk.seconds).toFixed(2),
    rssMiB: Math.round(proc.rssBytes() / 2 ** 20),
  };
  console.log(`  ${server} c=${concurrency}: ${Math.round(wrk.reqPerSec)} req/s, p99 ${wrk.p99ms.toFixed(1)} ms, ${run.cpuUsPerReq} µs CPU/req, errors ${wrk.errors}${wrk.firstError ? ` (${wrk.firstError})` : ""}`);
  if (dataDir) {
    // Requests in flight when wrk stopped still complete and land in the store: let them.
    await new Promise((r) => setTimeout(r, 500));
    run.stored = countEstCertificates(dataDir) - before;
  }
  return run;
}

/** The store check: every response wrk counted is a stored certificate; at most `concurrency` more were in flight at the end. */
function storeOk(r: Run): boolean {
  return r.stored !== undefined && r.stored >= r.wrk.requests - r.wrk.errors && r.stored <= r.wrk.requests + r.concurrency;
}

/** One c=8 run against a Tessera started with --cpu-prof; prints the main thread's top self time. */
export async function profileTessera(workDir: string, script: string, seconds: number, where: string): Promise<void> {
  const dir = where === "1" ? fs.mkdtempSync(path.join(os.tmpdir(), "tessera-enroll-profile-")) : where;
  fs.mkdirSync(dir, { recursive: true });
  const dataDir = path.join(workDir, "tessera-profile");
  tesseraCli(dataDir, ["est", "user", "add", USER, "--password", PASSWORD]);
  const before = new Set(fs.readdirSync(dir));
  // One profile per thread (main, and tsx's module-loader worker): no fixed name, or they overwrite each other.
  const t = await startTesseraProcess({ dataDir, nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${dir}`] });
  try {
    const url = `${t.url}/.well-known/est/simpleenroll`;
    await runWrk({ url, script, connections: 8, seconds: WARMUP_SECONDS });
    const r = await measure("tessera", t, url, script, 8, seconds, dataDir);
    console.log(`profiled run: ${Math.round(r.wrk.reqPerSec)} req/s, ${r.cpuUsPerReq} µs CPU per request (process), errors ${r.wrk.errors}`);
  } finally {
    await t.stop(); // the profile is written at exit
  }
  // The main thread's profile is the one that was busy (the loader worker idles once modules are loaded).
  const profiles = fs.readdirSync(dir).filter((f) => f.endsWith(".cpuprofile") && !before.has(f)).map((f) => ({ file: path.join(dir, f), top: topSelfTime(path.join(dir, f), 25) }));
  if (profiles.length === 0) throw new Error(`no .cpuprofile written in ${dir}`);
  const { file, top } = profiles.sort((a, b) => b.top.busyMs - a.top.busyMs)[0]!;
  console.log(`CPU profile of Tessera's main thread (${file}): ${top.busyMs} ms busy, ${top.idleMs} ms idle over ${top.wallMs} ms; top self time:`);
  console.table(top.entries);
  console.log("self time by module:");
  console.table(top.byModule);
}

export const section: BenchSection = {
  id: "enroll",
  title: "Enrollment over HTTPS keep-alive: Tessera EST simpleenroll vs cfssl sign (wrk, every response checked)",
  async run({ seconds, workDir }) {
    const levels = (process.env.BENCH_ENROLL_CONCURRENCY ?? "1,8,64").split(",").map(Number).filter((n) => n > 0);

    // The same CSRs for both servers: P-256 keys, distinct subjects.
    const csrs = Array.from({ length: CSRS }, (_, i) => buildCsr({ subject: [{ type: "O", value: "bench" }, { type: "CN", value: `enroll-bench-${i}` }], privateKey: generateKeyPair("ec-p256").privateKey }));
    const estScript = path.join(workDir, "est.lua");
    writeWrkScript(estScript, {
      method: "POST",
      headers: { "Content-Type": "application/pkcs10", Authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}` },
      bodies: csrs.map((der) => encodeBase64Lines(der)),
      marker: "MII", // base64 of a DER SEQUENCE: the certs-only CMS
    });
    const cfsslScript = path.join(workDir, "cfssl.lua");
    writeWrkScript(cfsslScript, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      bodies: csrs.map((der) => JSON.stringify({ certificate_request: pemEncode("CERTIFICATE REQUEST", der) })),
      marker: '"success":true',
    });

    const servers: Array<Variant & { proc: TesseraProcess; url: string; dataDir: string }> = [];
    let cfssl: { proc: ServerProcess; url: string } | undefined;
    const runs: Run[] = [];
    try {
      for (const v of variants()) {
        const dataDir = path.join(workDir, v.name.replace(/\W+/g, "-"));
        tesseraCli(dataDir, ["est", "user", "add", USER, "--password", PASSWORD], {}, v.root);
        const proc = await startTesseraProcess({ dataDir, workers: v.workers, root: v.root });
        servers.push({ ...v, proc, url: `${proc.url}/.well-known/est/simpleenroll`, dataDir });
      }
      cfssl = await startCfssl(path.join(workDir, "cfssl"));
      // Warm-up: JIT, statement caches, TLS session set-up paths (every worker: wrk's connections spread over them).
      for (const t of servers) await runWrk({ url: t.url, script: estScript, connections: 8 * t.workers, seconds: WARMUP_SECONDS });
      await runWrk({ url: cfssl.url, script: cfsslScript, connections: 8, seconds: WARMUP_SECONDS });
      for (const c of levels) {
        for (const t of servers) runs.push(await measure(t.name, t.proc, t.url, estScript, c, seconds, t.dataDir));
        runs.push(await measure("cfssl", cfssl.proc, cfssl.url, cfsslScript, c, seconds));
      }
    } finally {
      for (const t of servers) await t.proc.stop();
      await cfssl?.proc.stop();
    }
    const profile = process.env.BENCH_ENROLL_PROFILE;
    if (profile) await profileTessera(workDir, estScript, seconds, profile);

    const rows = runs.map((r) => ({
      server: r.server,
      conc: r.concurrency,
      "req/s": Math.round(r.wrk.reqPerSec),
      "p50 ms": +r.wrk.p50ms.toFixed(2),
      "p90 ms": +r.wrk.p90ms.toFixed(2),
      "p99 ms": +r.wrk.p99ms.toFixed(2),
      "max ms": +r.wrk.maxMs.toFixed(1),
      "CPU µs/req": r.cpuUsPerReq,
      "cores busy": r.cores,
      requests: r.wrk.requests,
      errors: r.wrk.errors,
      stored: r.stored ?? "–",
      "RSS MiB": r.rssMiB,
    }));

    const figures: BenchFigure[] = [];
    const errorNote = (r: Run) => (r.wrk.errors > 0 ? `${r.wrk.errors} bad responses (${r.wrk.badResponses} checked, ${r.wrk.socketErrors} socket): ${r.wrk.firstError}` : undefined);
    const main = servers[0]?.name ?? "tessera";
    for (const c of levels) {
      const t = runs.find((r) => r.server === main && r.concurrency === c)!;
      const f = runs.find((r) => r.server === "cfssl" && r.concurrency === c)!;
      const tOk = t.wrk.errors === 0 && storeOk(t);
      const fOk = f.wrk.errors === 0;
      const ratio = +(t.wrk.reqPerSec / f.wrk.reqPerSec).toFixed(2);
      const tNote = errorNote(t) ?? (storeOk(t) ? `${t.stored} certificates stored for ${t.wrk.requests} responses` : `store check failed: ${t.stored} stored for ${t.wrk.requests} responses`);
      figures.push(
        { key: `enroll.c${c}.tessera.reqPerSec`, label: `c=${c}: Tessera EST req/s`, value: Math.round(t.wrk.reqPerSec), unit: "req/s", target: "0 errors, all stored", met: tOk, note: tNote },
        { key: `enroll.c${c}.cfssl.reqPerSec`, label: `c=${c}: cfssl req/s`, value: Math.round(f.wrk.reqPerSec), unit: "req/s", target: "0 errors", met: fOk, note: errorNote(f) ?? "TLS with an ECDSA P-256 key like Tessera; authenticates nobody, stores nothing" },
        {
          key: `enroll.c${c}.ratio`,
          label: `c=${c}: Tessera / cfssl req/s`,
          value: ratio,
          unit: "×",
          ...(c === 1 ? {} : { target: "≥ 1.5×", met: tOk && fOk && ratio >= 1.5 }),
          note: `cores busy: Tessera ${t.cores} (one JavaScript thread does HTTP, auth, CSR checks, signing, SQLite commits), cfssl ${f.cores} (Go, every core; shares 2 cores with wrk here)`,
        },
        { key: `enroll.c${c}.tessera.p50ms`, label: `c=${c}: Tessera p50`, value: +t.wrk.p50ms.toFixed(2), unit: "ms" },
        { key: `enroll.c${c}.cfssl.p50ms`, label: `c=${c}: cfssl p50`, value: +f.wrk.p50ms.toFixed(2), unit: "ms" },
        { key: `enroll.c${c}.tessera.p99ms`, label: `c=${c}: Tessera p99`, value: +t.wrk.p99ms.toFixed(2), unit: "ms", target: `≤ cfssl p99 (${f.wrk.p99ms.toFixed(2)} ms)`, met: tOk && t.wrk.p99ms <= f.wrk.p99ms },
        { key: `enroll.c${c}.cfssl.p99ms`, label: `c=${c}: cfssl p99`, value: +f.wrk.p99ms.toFixed(2), unit: "ms" },
        { key: `enroll.c${c}.tessera.cpuUsPerReq`, label: `c=${c}: Tessera server CPU per enrollment`, value: t.cpuUsPerReq, unit: "µs", target: "≤ 100 µs", met: tOk && t.cpuUsPerReq <= 100, note: "whole process (all threads), /proc: TLS, HTTP, Basic auth, CSR parsed and verified once (EST check; issue reuses it), signing, SQLite commit" },
        { key: `enroll.c${c}.cfssl.cpuUsPerReq`, label: `c=${c}: cfssl server CPU per certificate`, value: f.cpuUsPerReq, unit: "µs", note: "whole process, /proc" },
      );
      // The other Tessera variants (worker counts, a baseline checkout), against the first.
      for (const v of servers.slice(1)) {
        const o = runs.find((r) => r.server === v.name && r.concurrency === c)!;
        const id = v.name === "baseline" ? "baseline" : `w${v.workers}`;
        const ok = o.wrk.errors === 0 && storeOk(o);
        figures.push(
          { key: `enroll.c${c}.${id}.reqPerSec`, label: `c=${c}: ${v.name} EST req/s`, value: Math.round(o.wrk.reqPerSec), unit: "req/s", target: "0 errors, all stored", met: ok, note: errorNote(o) ?? `p99 ${o.wrk.p99ms.toFixed(1)} ms, ${o.cpuUsPerReq} µs CPU/req, ${o.cores} cores busy; ${o.stored} stored for ${o.wrk.requests} responses` },
          v.name === "baseline"
            ? { key: `enroll.c${c}.speedupVsBaseline`, label: `c=${c}: ${main} / baseline req/s (this tree vs BENCH_BASELINE_ROOT)`, value: +(t.wrk.reqPerSec / o.wrk.reqPerSec).toFixed(2), unit: "×", note: `CPU per request ${t.cpuUsPerReq} vs ${o.cpuUsPerReq} µs (${(o.cpuUsPerReq / Math.max(1, t.cpuUsPerReq)).toFixed(2)}× less)` }
            : { key: `enroll.c${c}.${id}.vsFirst`, label: `c=${c}: ${v.name} / ${main} req/s`, value: +(o.wrk.reqPerSec / t.wrk.reqPerSec).toFixed(2), unit: "×", note: `${v.name}: ${Math.round(o.wrk.reqPerSec)} req/s, ${o.cpuUsPerReq} µs CPU/req, ${o.cores} cores busy; ${main}: ${Math.round(t.wrk.reqPerSec)} req/s, ${t.cpuUsPerReq} µs, ${t.cores} cores` },
          { key: `enroll.c${c}.${id}.ratio`, label: `c=${c}: ${v.name} / cfssl req/s`, value: +(o.wrk.reqPerSec / f.wrk.reqPerSec).toFixed(2), unit: "×" },
        );
      }
    }
    return { rows, figures };
  },
};
