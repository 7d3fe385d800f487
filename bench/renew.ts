/**
 * Benchmark section "renew" (issue 9, figure 2): imprint tier-1 renewal over
 * a fresh mTLS connection per request, as a device renewing does a full
 * handshake. Tessera runs as a child process (`tessera serve`), the load
 * generator (bench/renew-client.ts) in another, so the server's CPU time per
 * renewal is read from /proc alone. Every answer is checked (a certificate
 * that parses, names the device, has a new serial); each device renews with
 * the certificate it got last.
 *
 * Runs: renew with 8 and 64 devices in flight; then, to split the server's
 * CPU, the same fresh mTLS connections carrying GET /healthz (handshake + a
 * trivial request) and GET /tessera/v1/whoami (+ client-chain verification),
 * and against a bare Node https server with the same certificates (the floor
 * any Node server pays per handshake); last a short run of a second server
 * under --cpu-prof, whose self time is printed by area and by function.
 *
 * One core or more: async crypto in the thread pool does not pay: the
 * signature it could move (ECDSA P-256, ~25 µs) is under 1% of a renewal,
 * while the TLS handshake (about half of the server's CPU), HTTP and
 * verification run on the main thread whatever we do. A cluster of worker
 * processes over one store (`tessera serve --workers N`) uses more cores:
 * with BENCH_WORKERS="1,2" (the first is the main server) the same devices
 * renew, at 8 and 64 in flight, against the same data directory served by
 * each worker count in turn, two rounds alternating, so the ratio comes from
 * one run. Server CPU and memory count the primary and its workers.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { processTreeCpuMicros, processTreeRssBytes, startTesseraProcess, tesseraCli, type TesseraProcess } from "./lib/server-process.js";
import type { BenchFigure, BenchSection } from "./lib/section.js";

const SECRET = "bench-build-secret-0123456789";

/** VmRSS and VmHWM (peak) of a process, in bytes. */
export function memoryOf(pid: number): { rss: number; hwm: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)\\s+kB`, "m").exec(s)?.[1] ?? 0) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** A Tessera child process with an imprint build secret, ready for the load client. */
export async function renewServer(dataDir: string, nodeArgs: string[] = [], workers?: number, env?: Record<string, string>): Promise<{ server: TesseraProcess; ca: string }> {
  // Creates the CA and the store on first use, then the secret devices enroll with.
  tesseraCli(dataDir, ["secret", "create", "bench", "--value", SECRET, "--scope", "imprint"], env);
  const server = await startTesseraProcess({ dataDir, nodeArgs, workers, env });
  return { server, ca: fs.readFileSync(path.join(dataDir, "ca", "chain.pem"), "utf8") };
}

export interface RunResult {
  count: number;
  errors: number;
  firstError?: string;
  wallS: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  clientCpuUs: number;
}

/** The load generator in its own process. */
export class LoadClient {
  private pending?: { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void };
  private constructor(private readonly child: ChildProcess) {
    child.on("message", (m: Record<string, unknown>) => {
      const p = this.pending;
      this.pending = undefined;
      if (m.type === "error") p?.reject(new Error(`load client: ${m.message as string}`));
      else p?.resolve(m);
    });
    child.on("exit", (code) => this.pending?.reject(new Error(`load client exited (${code})`)));
  }

  static async start(): Promise<LoadClient> {
    const child = fork(new URL("./renew-client.ts", import.meta.url).pathname, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const c = new LoadClient(child);
    await c.call(undefined);
    return c;
  }

  private call(msg: Record<string, unknown> | undefined): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      if (msg) this.child.send(msg);
    });
  }

  /** Enrolls `devices` more devices through imprint. */
  async enroll(url: string, ca: string, devices: number): Promise<void> {
    await this.call({ type: "enroll", url, ca, secret: SECRET, devices });
  }

  /** Points the client at another server (same CA and listener certificate). */
  async target(url: string): Promise<void> {
    await this.call({ type: "target", url });
  }

  /** One timed run; `path` "renew" renews, any other path is a GET over the same kind of connection. */
  async run(path: string, concurrency: number, seconds: number): Promise<RunResult> {
    return (await this.call({ type: "run", path, concurrency, seconds })) as unknown as RunResult;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.send({ type: "exit" });
    await exited;
  }
}

/** A timed run with the server's CPU time (from /proc) and peak RSS around it. */
export async function measured(server: { pid: number }, client: LoadClient, p: string, concurrency: number, seconds: number) {
  // The process and its descendants: a cluster's primary and workers count together.
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, processTreeRssBytes(server.pid))), 100);
  const cpu0 = processTreeCpuMicros(server.pid);
  const r = await client.run(p, concurrency, seconds);
  const cpu = processTreeCpuMicros(server.pid) - cpu0;
  clearInterval(sampler);
  peakRss = Math.max(peakRss, processTreeRssBytes(server.pid));
  if (r.errors > 0) console.error(`  ${p} c${concurrency}: ${r.errors} failed requests, first: ${r.firstError}`);
  return { ...r, perSecond: Math.round(r.count / r.wallS), serverCpuUs: r.count ? Math.round(cpu / r.count) : 0, serverCores: +(cpu / 1e6 / r.wallS).toFixed(2), peakRss };
}

/**
 * The floor: a bare Node https server (no framework, no verification in JS)
 * with Tessera's listener certificate and the same client-certificate request,
 * answering "ok". What any Node server pays per fresh mTLS connection here.
 */
async function bareHttpsServer(dataDir: string): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const code = `
    const fs = require("node:fs"), https = require("node:https"), d = process.env.D;
    const s = https.createServer({ cert: fs.readFileSync(d + "/server/tls.pem"), key: fs.readFileSync(d + "/server/tls.key.pem"),
      ca: fs.readFileSync(d + "/ca/intermediate.pem"), requestCert: true, rejectUnauthorized: false },
      (req, res) => { req.resume(); res.setHeader("content-length", 3); res.end("ok\\n"); });
    s.listen(0, "127.0.0.1", () => console.log("port " + s.address().port));
    process.on("SIGTERM", () => process.exit(0));`;
  const child = spawn(process.execPath, ["-e", code], { env: { ...process.env, D: dataDir }, stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (t: string) => {
      out += t;
      const m = /port (\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (c) => reject(new Error(`bare https server exited (${c})`)));
  });
  return {
    url: `https://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: () => new Promise<void>((r) => { child.removeAllListeners("exit"); child.once("exit", () => r()); child.kill("SIGTERM"); }),
  };
}

// --- CPU profile summary ------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/**
 * Self time by function, and by area, of a .cpuprofile, counting only the
 * samples inside `window` (CLOCK_MONOTONIC µs, as process.hrtime and V8's
 * profile timestamps on Linux), so start-up and enrollment do not count.
 */
export function summariseProfile(file: string, window?: [number, number], top = 15): { functions: { fn: string; where: string; selfMs: number; pct: number }[]; areas: Record<string, number>; totalMs: number; idleMs: number } {
  const prof = JSON.parse(fs.readFileSync(file, "utf8")) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let ts = prof.startTime;
  let idle = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    ts += prof.timeDeltas[i] ?? 0;
    if (window && (ts < window[0] || ts > window[1])) continue;
    const id = prof.samples[i]!;
    if (byId.get(id)!.callFrame.functionName === "(idle)") {
      idle += prof.timeDeltas[i + 1] ?? 0;
      continue;
    }
    self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i + 1] ?? 0));
  }
  const short = (url: string) => url.replace(/^file:\/\//, "").replace(/^.*\/node_modules\//, "").replace(/^.*\/packages\//, "").replace(/^node:internal\//, "node:");
  // The area of a sample: the most specific of the frames on its stack, in this order.
  const AREAS: Array<[string, (fn: string, url: string) => boolean]> = [
    ["client-certificate verification (peer.ts, mtls verifyPeer)", (_f, u) => /packages\/mtls\/src\/verify\.ts|http\/peer\.ts/.test(u)],
    ["store (SQLite, batch writer)", (_f, u) => /better-sqlite3|server\/src\/store\/|batch-writer/.test(u)],
    ["issuance (CSR check, certificate build, sign)", (_f, u) => /server\/src\/authority\/|packages\/pki\//.test(u)],
    ["imprint service and routes", (_f, u) => /protocols\/imprint\//.test(u)],
    ["other server code", (_f, u) => /\/packages\//.test(u)],
    ["HTTP framework (fastify)", (_f, u) => /node_modules\/(fastify|find-my-way|avvio|@fastify|light-my-request)/.test(u)],
    ["logging (pino)", (_f, u) => /pino|sonic-boom/.test(u)],
    ["TLS socket (Node's JS side)", (_f, u) => /_tls_wrap|_tls_common|node:tls|internal\/tls/.test(u)],
    ["HTTP, net, streams (Node)", (_f, u) => /_http_|internal\/http|node:net|internal\/streams|node:stream|stream_base/.test(u)],
    ["garbage collection", (f) => f === "(garbage collector)"],
    ["(program): native, no JS on the stack", (f) => f === "(program)"],
  ];
  const areaOf = (id: number): string => {
    const stack: ProfileNode["callFrame"][] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) stack.push(byId.get(cur)!.callFrame);
    for (const [name, test] of AREAS) if (stack.some((cf) => test(cf.functionName, cf.url))) return name;
    return "other";
  };
  const fns = new Map<string, { fn: string; where: string; us: number }>();
  const areas: Record<string, number> = {};
  let total = 0;
  for (const [id, us] of self) {
    const cf = byId.get(id)!.callFrame;
    total += us;
    const where = cf.url ? `${short(cf.url)}:${cf.lineNumber + 1}` : "";
    const k = `${cf.functionName}@${where}`;
    const e = fns.get(k) ?? { fn: cf.functionName || "(anonymous)", where, us: 0 };
    e.us += us;
    fns.set(k, e);
    const a = areaOf(id);
    areas[a] = (areas[a] ?? 0) + us;
  }
  const functions = [...fns.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((f) => ({ fn: f.fn, where: f.where, selfMs: Math.round(f.us / 1000), pct: +((100 * f.us) / total).toFixed(1) }));
  for (const k of Object.keys(areas)) areas[k] = +((100 * areas[k]!) / total).toFixed(1);
  return { functions, areas, totalMs: Math.round(total / 1000), idleMs: Math.round(idle / 1000) };
}

// --- the section ----------------------------------------------------------------

export const section: BenchSection = {
  id: "renew",
  title: "Renewal over a fresh mTLS connection per request (imprint tier 1, server as a child process)",
  async run({ seconds, quick, workDir }) {
    const devices = quick ? 64 : 128;
    const rows: Record<string, unknown>[] = [];
    const figures: BenchFigure[] = [];
    const runs: Record<string, Awaited<ReturnType<typeof measured>>> = {};
    const workerCounts = (process.env.BENCH_WORKERS ?? "1").split(",").map(Number).filter((n) => Number.isInteger(n) && n > 0);
    const byWorkers: Array<{ workers: number; round: number; c: number; r: Awaited<ReturnType<typeof measured>> }> = [];

    let { server, ca } = await renewServer(path.join(workDir, "data"), [], workerCounts[0]);
    const client = await LoadClient.start();
    try {
      await client.enroll(server.url, ca, devices);
      await client.run("renew", 64, Math.min(2, seconds)); // warm-up: JIT, statement caches
      const plan: Array<[string, string, number, number]> = [
        ["renew", "renew", 8, seconds],
        ["renew", "renew", 64, seconds],
        ["mTLS handshake + GET /healthz", "/healthz", 64, Math.max(2, seconds / 2)],
        ["mTLS handshake + GET /tessera/v1/whoami (verifies the client chain)", "/tessera/v1/whoami", 64, Math.max(2, seconds / 2)],
      ];
      const row = (label: string, c: number, r: Awaited<ReturnType<typeof measured>>) =>
        rows.push({
          run: label, devicesInFlight: c, "req/s": r.perSecond, "p50 ms": r.p50, "p99 ms": r.p99, "max ms": r.max,
          "server CPU µs/req": r.serverCpuUs, "server cores busy": r.serverCores, "client CPU µs/req": r.clientCpuUs,
          requests: r.count, failed: r.errors, "server peak RSS MB": Math.round(r.peakRss / 2 ** 20),
        });
      for (const [label, p, c, s] of plan) {
        const r = await measured(server, client, p, c, s);
        runs[`${p}.c${c}`] = r;
        row(label, c, r);
      }
      // Worker counts: the same data directory (CA, devices, store) served by each in turn, two rounds.
      if (workerCounts.length > 1) {
        for (let round = 1; round <= 2; round++) {
          for (const w of workerCounts) {
            await server.stop();
            server = await startTesseraProcess({ dataDir: path.join(workDir, "data"), workers: w });
            await client.target(server.url);
            await client.run("renew", 64, 1); // warm-up: every worker's JIT and statement caches
            for (const c of [8, 64]) {
              const r = await measured(server, client, "renew", c, seconds);
              byWorkers.push({ workers: w, round, c, r });
              row(`renew, --workers ${w} (round ${round})`, c, r);
            }
          }
        }
      }
      await server.stop();
      // The floor: the same handshakes against a bare Node https server.
      const bare = await bareHttpsServer(path.join(workDir, "data"));
      try {
        await client.target(bare.url);
        const r = await measured(bare, client, "/", 64, Math.max(2, seconds / 2));
        runs["bare.c64"] = r;
        row("floor: bare Node https server, same certificates, GET / (no JS verification)", 64, r);
      } finally {
        await bare.stop();
      }
    } finally {
      await client.close();
      await server.stop();
    }

    // A second server under the profiler (sampling adds overhead, so it is not the one measured above).
    let profileNote = "";
    let areasNote = "";
    if (process.env.BENCH_RENEW_PROFILE !== "0") {
      const profDir = path.join(workDir, "prof");
      const p = await renewServer(path.join(workDir, "data-prof"), ["--cpu-prof", `--cpu-prof-dir=${profDir}`]);
      const c = await LoadClient.start();
      const window: [number, number] = [0, 0];
      try {
        await c.enroll(p.server.url, p.ca, 64);
        await c.run("renew", 64, 1); // warm-up
        window[0] = Number(process.hrtime.bigint() / 1000n);
        await c.run("renew", 64, Math.min(5, seconds));
        window[1] = Number(process.hrtime.bigint() / 1000n);
      } finally {
        await c.close();
        await p.server.stop();
      }
      const files = fs.readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile"));
      // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (the others: tsx's loader).
      const file = files.find((f) => /\.0\.\d+\.cpuprofile$/.test(f)) ?? files[0];
      if (file) {
        const s = summariseProfile(path.join(profDir, file), window);
        console.log(
          `server CPU profile (--cpu-prof, main thread), renew c64 for ${Math.min(5, seconds)} s: ${s.totalMs} ms with JS on the stack, ${s.idleMs} ms "(idle)". ` +
            `Native work run straight from the event loop, most of the TLS handshake, counts as idle (Node marks the loop's poll phase idle), so the ` +
            `handshake's cost is in the /proc rows below (healthz, bare server), not here. By area, % of the non-idle time (a sample counts in the first area of the list its stack touches):`,
        );
        console.table(Object.entries(s.areas).sort((a, b) => b[1] - a[1]).map(([area, pct]) => ({ area, "%": pct })));
        console.log("top functions by self time:");
        console.table(s.functions);
        profileNote = s.functions.slice(0, 4).map((f) => `${f.fn} ${f.pct}%`).join(", ");
        areasNote = Object.entries(s.areas).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([a, pct]) => `${a} ${pct}%`).join("; ");
      }
    }

    for (const w of workerCounts.slice(1)) {
      for (const c of [8, 64]) {
        const rate = (n: number) => {
          const rs = byWorkers.filter((b) => b.workers === n && b.c === c).map((b) => b.r);
          return { perSecond: rs.reduce((a, r) => a + r.perSecond, 0) / rs.length, cpu: rs.reduce((a, r) => a + r.serverCpuUs, 0) / rs.length, p99: Math.max(...rs.map((r) => r.p99)), cores: rs.reduce((a, r) => a + r.serverCores, 0) / rs.length, client: rs.reduce((a, r) => a + r.clientCpuUs, 0) / rs.length, rss: Math.max(...rs.map((r) => r.peakRss)) };
        };
        const one = rate(workerCounts[0]!);
        const many = rate(w);
        figures.push({
          key: `renew.c${c}.w${w}.vsW${workerCounts[0]}`, label: `renewals/s at ${c} in flight: --workers ${w} / --workers ${workerCounts[0]}`, value: +(many.perSecond / one.perSecond).toFixed(2), unit: "×",
          note: `${Math.round(many.perSecond)}/s vs ${Math.round(one.perSecond)}/s (mean of 2 alternating rounds); server CPU per renewal ${Math.round(many.cpu)} vs ${Math.round(one.cpu)} µs, cores busy ${many.cores.toFixed(2)} vs ${one.cores.toFixed(2)}; ` +
            `p99 ${many.p99} vs ${one.p99} ms; load generator ${Math.round(many.client)} µs CPU/renewal on the same ${os.cpus().length} cores; peak RSS (primary + workers) ${Math.round(many.rss / 2 ** 20)} vs ${Math.round(one.rss / 2 ** 20)} MB`,
        });
      }
    }
    const r8 = runs["renew.c8"]!;
    const r64 = runs["renew.c64"]!;
    const hs = runs["/healthz.c64"]!;
    const who = runs["/tessera/v1/whoami.c64"]!;
    const bare = runs["bare.c64"]!;
    const best = r64.perSecond >= r8.perSecond ? r64 : r8;
    const perCore = Math.round(1e6 / best.serverCpuUs);
    const pct = (us: number) => Math.round((100 * us) / best.serverCpuUs);
    const split =
      `server CPU per renewal ${best.serverCpuUs} µs = mTLS handshake + HTTP ${hs.serverCpuUs} µs (${pct(hs.serverCpuUs)}%; a bare Node https server: ${bare.serverCpuUs} µs) ` +
      `+ client-chain verification ${who.serverCpuUs - hs.serverCpuUs} µs + CSR check, issuance, store ${best.serverCpuUs - who.serverCpuUs} µs`;
    figures.push(
      {
        key: "renew.c64.perSecond", label: "renewals/s, fresh mTLS connection each, 64 devices in flight", value: r64.perSecond, unit: "/s", target: "≥ 2,000/s",
        met: r64.perSecond >= 2000 && r64.errors === 0,
        note:
          (r64.perSecond >= 2000 ? "" : `${Math.round((100 * r64.perSecond) / 2000)}% of the target. `) +
          `${split}. One process, one core at most (${best.serverCores} busy); the load generator needs ${best.clientCpuUs} µs/renewal on the same ${os.cpus().length} cores` +
          (areasNote ? `; profile of the JS-visible rest: ${areasNote}` : "") + `; ${r64.errors} failed`,
      },
      { key: "renew.c64.p99ms", label: "renewal p99, 64 devices in flight", value: r64.p99, unit: "ms", note: `p50 ${r64.p50} ms; queueing behind one busy core` },
      { key: "renew.c8.perSecond", label: "renewals/s, 8 devices in flight", value: r8.perSecond, unit: "/s", note: `p50 ${r8.p50} ms, p99 ${r8.p99} ms; ${r8.errors} failed` },
      { key: "renew.c8.p99ms", label: "renewal p99, 8 devices in flight", value: r8.p99, unit: "ms" },
      {
        key: "renew.serverCpuUsPerRenewal", label: "server CPU per renewal (handshake included)", value: best.serverCpuUs, unit: "µs",
        note:
          `${perCore} renewals/s per server core: 2,000/s would take a cluster of ≥ ${Math.ceil(2000 / perCore)} workers on free cores (handshakes alone: ≥ ${Math.ceil((2000 * bare.serverCpuUs) / 1e6)})` +
          `${profileNote ? `; top self time: ${profileNote}` : ""}`,
      },
      {
        key: "renew.handshakeCpuUs", label: "server CPU per fresh mTLS connection + GET /healthz", value: hs.serverCpuUs, unit: "µs",
        note: `bare Node https server: ${bare.serverCpuUs} µs; + whoami chain verification: ${who.serverCpuUs} µs`,
      },
    );
    return { rows, figures };
  },
};
