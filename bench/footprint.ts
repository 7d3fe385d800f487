/**
 * Benchmark section "footprint" (issue 9, figure 5): the server's resident
 * memory under renewal load (≤ 200 MB), and `tessera-agent renew` when
 * nothing is due (≤ 150 ms).
 *
 * Memory: `tessera serve` as a child process under the renew section's load
 * (imprint tier-1 renewals, a fresh mTLS connection each, 64 devices in
 * flight); VmRSS sampled every 100 ms, and VmHWM (the kernel's peak) at the
 * end: first as `npm start` runs it (the bundle scripts/build-server.mjs
 * makes), then through tsx (TESSERA_SERVER_BUNDLE=0), each on its own store.
 *
 * Agent: one identity enrolled with `tessera-agent enroll`, then
 * `node bin/tessera-agent.js renew` timed from spawn to exit (wall clock,
 * Node's start-up included, as a cron job or systemd timer sees it), the
 * two ways the launcher runs it, alternating run by run: the bundle that
 * scripts/build-agent.mjs makes (built first, as `npm run build:agent`
 * would), and the TypeScript through tsx (TESSERA_AGENT_BUNDLE=0, what runs
 * when no fresh bundle is there). Each run's CPU time (user + system) is
 * recorded too: on a shared machine it varies less than the wall clock.
 * To show what bounds it: `node -e 0`, `node --import tsx` of an empty file,
 * and the agent's phases under tsx (register, loading its modules, the renew
 * decision) timed inside one process.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { LoadClient, memoryOf, renewServer } from "./renew.js";
import type { TesseraProcess } from "./lib/server-process.js";
import type { BenchFigure, BenchSection } from "./lib/section.js";

const ROOT = new URL("../", import.meta.url).pathname;
const SECRET = "bench-build-secret-0123456789"; // renewServer's imprint secret
const MB = 2 ** 20;

/** CPU time of this process's waited-for children so far (cutime + cstime of /proc/self/stat), ms; 10 ms resolution. */
function childCpuMs(): number {
  const stat = fs.readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[13]) + Number(f[14])) * 10;
}

/** Wall-clock milliseconds of a command, its CPU time (user + system) and output; throws if it fails. */
function timed(args: string[], env: Record<string, string> = {}): { ms: number; cpuMs: number; out: string } {
  const c0 = childCpuMs();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...env } });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited ${r.status}: ${r.stderr}${r.stdout}`);
  return { ms, cpuMs: childCpuMs() - c0, out: r.stdout + r.stderr };
}

/** The server's V8 heap (total, used) and external memory from its /metrics (prom-client's default metrics), in bytes. */
function heapOf(url: string, ca: string): Promise<{ heapTotal: number; heapUsed: number; external: number } | undefined> {
  return new Promise((resolve) => {
    const req = https.get(`${url}/metrics`, { ca, servername: "localhost", agent: false, timeout: 2000 }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (t: string) => (text += t));
      res.on("end", () => {
        const g = (name: string) => Number(new RegExp(`^tessera_${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
        resolve({ heapTotal: g("nodejs_heap_size_total_bytes"), heapUsed: g("nodejs_heap_size_used_bytes"), external: g("nodejs_external_memory_bytes") });
      });
    });
    req.on("error", () => resolve(undefined));
    req.on("timeout", () => req.destroy());
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const r1 = (x: number) => Math.round(x * 10) / 10;

const mb = (b: number | undefined) => (b === undefined || Number.isNaN(b) ? "?" : r1(b / MB));

type Heap = Awaited<ReturnType<typeof heapOf>>;
interface ServerMemory {
  idle: ReturnType<typeof memoryOf>;
  idleHeap: Heap;
  r: Awaited<ReturnType<LoadClient["run"]>>;
  samples: number[];
  peakSampled: number;
  lastQuarter: number[];
  after: ReturnType<typeof memoryOf>;
  atPeak: { rss: number; heap: Heap };
}

/**
 * The server's memory idle and under renewal load: twice the run length, as V8 lets the heap grow for a
 * while before its first major collections give memory back (the peak comes after a few thousand
 * renewals here). VmRSS every 100 ms, the V8 heap every second, VmHWM at the end.
 */
async function serverMemory(server: TesseraProcess, ca: string, client: LoadClient, seconds: number): Promise<ServerMemory> {
  const idle = memoryOf(server.pid);
  const idleHeap = await heapOf(server.url, ca);
  await client.enroll(server.url, ca, 64);
  const samples: number[] = [];
  const sampler = setInterval(() => samples.push(memoryOf(server.pid).rss), 100);
  let atPeak = { rss: 0, heap: undefined as Heap };
  let heapBusy = false;
  const heapSampler = setInterval(() => {
    if (heapBusy) return;
    heapBusy = true;
    const rss = memoryOf(server.pid).rss;
    void heapOf(server.url, ca).then((heap) => {
      if (heap && rss > atPeak.rss) atPeak = { rss, heap };
      heapBusy = false;
    });
  }, 1000);
  const r = await client.run("renew", 64, 2 * seconds);
  clearInterval(sampler);
  clearInterval(heapSampler);
  const after = memoryOf(server.pid);
  samples.push(after.rss);
  return { idle, idleHeap, r, samples, peakSampled: Math.max(...samples), lastQuarter: samples.slice(Math.floor((samples.length * 3) / 4)), after, atPeak };
}

function memoryRows(how: "bundle" | "tsx", m: ServerMemory, seconds: number): Record<string, unknown>[] {
  const via = how === "bundle" ? "bundle (npm start)" : "through tsx (TESSERA_SERVER_BUNDLE=0)";
  return [
    { measure: `server VmRSS after start-up, idle, ${via}`, value: r1(m.idle.rss / MB), unit: "MB", note: m.idleHeap ? `V8 heap ${mb(m.idleHeap.heapUsed)} used of ${mb(m.idleHeap.heapTotal)}, external ${mb(m.idleHeap.external)}` : "" },
    {
      measure: `server VmRSS, peak of ${m.samples.length} samples during ${m.r.count} renewals, ${via}`, value: r1(m.peakSampled / MB), unit: "MB",
      note: `64 in flight for ${2 * seconds} s, ${Math.round(m.r.count / m.r.wallS)}/s, ${m.r.errors} failed` + (m.atPeak.heap ? `; at the highest 1-s sample (${mb(m.atPeak.rss)} MB): V8 heap ${mb(m.atPeak.heap.heapUsed)} used of ${mb(m.atPeak.heap.heapTotal)}, external ${mb(m.atPeak.heap.external)}` : ""),
    },
    { measure: `server VmRSS, median of the last quarter of the run, ${via}`, value: r1(median(m.lastQuarter) / MB), unit: "MB", note: "" },
    { measure: `server VmHWM (kernel's peak since start), ${via}`, value: r1(m.after.hwm / MB), unit: "MB", note: "" },
  ];
}

export const section: BenchSection = {
  id: "footprint",
  title: "Footprint: server RSS under renewal load, `tessera-agent renew` when nothing is due",
  async run({ seconds, quick, workDir }) {
    const runs = quick ? 5 : 10;
    const rows: Record<string, unknown>[] = [];
    const figures: BenchFigure[] = [];
    const dataDir = path.join(workDir, "data");
    // The server bundle as `npm install` makes it, fresh, so that bin/tessera.js runs it.
    const bundled = spawnSync(process.execPath, [path.join(ROOT, "scripts/build-server.mjs")], { cwd: ROOT, encoding: "utf8" });
    if (bundled.status !== 0) throw new Error(`scripts/build-server.mjs exited ${bundled.status}: ${bundled.stderr}${bundled.stdout}`);
    console.log(`  ${bundled.stdout.trim()}`);
    const { server, ca } = await renewServer(dataDir);
    const client = await LoadClient.start();
    const agentRuns: number[] = [];
    try {
      // --- server memory under load, the bundle (what `npm install` leaves) and then the sources through tsx
      // (TESSERA_SERVER_BUNDLE=0, each on its own store), the same load on each.
      const viaBundle = await serverMemory(server, ca, client, seconds);
      // Its own CA, so its own load client (a client's devices belong to the server they enrolled with).
      const tsxServer = await renewServer(path.join(workDir, "data-tsx"), [], undefined, { TESSERA_SERVER_BUNDLE: "0" });
      const tsxClient = await LoadClient.start();
      let viaTsx: ServerMemory;
      try {
        viaTsx = await serverMemory(tsxServer.server, tsxServer.ca, tsxClient, seconds);
      } finally {
        await tsxClient.close();
        await tsxServer.server.stop();
      }
      for (const [how, m] of [["bundle", viaBundle], ["tsx", viaTsx]] as const) rows.push(...memoryRows(how, m, seconds));
      const peak = Math.max(viaBundle.peakSampled, viaBundle.after.hwm);
      const tsxPeak = Math.max(viaTsx.peakSampled, viaTsx.after.hwm);
      figures.push({
        key: "footprint.serverPeakRssMB", label: "server peak RSS under renewal load (VmHWM), as npm start runs it (bundle)", value: r1(peak / MB), unit: "MB", target: "≤ 200 MB",
        // Failed renewals would mean less load, so less memory: they void the figure.
        met: peak <= 200 * MB && viaBundle.r.errors === 0,
        note:
          `idle after start ${r1(viaBundle.idle.rss / MB)} MB; ${viaBundle.r.errors} renewals failed; ${viaBundle.r.count} renewals with 64 in flight over ${2 * seconds} s; last quarter median ${r1(median(viaBundle.lastQuarter) / MB)} MB` +
          (viaBundle.atPeak.heap ? `; near the peak the main V8 heap was ${mb(viaBundle.atPeak.heap.heapTotal)} MB (${mb(viaBundle.atPeak.heap.heapUsed)} used)` : "") +
          `; the same through tsx (TESSERA_SERVER_BUNDLE=0): peak ${r1(tsxPeak / MB)} MB, idle ${r1(viaTsx.idle.rss / MB)} MB`,
      });

      // --- the agent, nothing due: the launcher with a fresh bundle (scripts/build-agent.mjs) and through tsx, alternating
      const built = spawnSync(process.execPath, [path.join(ROOT, "scripts/build-agent.mjs")], { cwd: ROOT, encoding: "utf8" });
      if (built.status !== 0) throw new Error(`scripts/build-agent.mjs exited ${built.status}: ${built.stderr}${built.stdout}`);
      console.log(`  ${built.stdout.trim()}`);
      const TSX = { TESSERA_AGENT_BUNDLE: "0" };
      const agentDir = path.join(workDir, "agent");
      const renew = ["bin/tessera-agent.js", "renew", "--dir", agentDir, "--server", server.url];
      timed(["bin/tessera-agent.js", "enroll", "--server", server.url, "--ca", path.join(dataDir, "ca", "chain.pem"), "--dir", agentDir], { TESSERA_BUILD_SECRET: SECRET });
      timed(renew, TSX); // warm tsx's transform cache
      timed(renew); // and the page cache for the bundle
      const tsxRuns: number[] = [];
      const tsxCpu: number[] = [];
      const agentCpu: number[] = [];
      for (let i = 0; i < runs; i++) {
        for (const via of ["bundle", "tsx"] as const) {
          const t = timed(renew, via === "tsx" ? TSX : {});
          if (!/No renewal needed/.test(t.out)) throw new Error(`tessera-agent renew did something: ${t.out}`);
          (via === "tsx" ? tsxRuns : agentRuns).push(t.ms);
          (via === "tsx" ? tsxCpu : agentCpu).push(t.cpuMs);
        }
      }
      const nodeFloor = Array.from({ length: 5 }, () => timed(["-e", "0"]).ms);
      const empty = path.join(workDir, "empty.ts");
      fs.writeFileSync(empty, "export {};\n");
      const tsxFloor = Array.from({ length: 5 }, () => timed(["--import", "tsx", empty]).ms);

      // The agent's phases under tsx inside one process: tsx register, loading the agent's modules, main().
      const phases = path.join(workDir, "phases.mjs");
      fs.writeFileSync(
        phases,
        `const t0 = performance.now();
const { register } = await import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))});
register();
const t1 = performance.now();
const { main } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, "packages/client/src/agent/main.ts")).href)});
const t2 = performance.now();
const code = await main(process.argv.slice(2), { out() {}, err() {} });
const t3 = performance.now();
console.log(JSON.stringify({ start: t0, register: t1 - t0, load: t2 - t1, main: t3 - t2, code }));
`,
      );
      const ph = Array.from({ length: 5 }, () => JSON.parse(timed([phases, "renew", "--dir", agentDir, "--server", server.url]).out.trim().split("\n").pop()!) as Record<string, number>);
      const phase = (k: string) => r1(median(ph.map((p) => p[k]!)));
      // The same split for the bundle, loaded as the launcher loads it (node:vm with the code cache): compile + run its top level, main().
      const bundlePhases = path.join(workDir, "bundle-phases.mjs");
      const dist = path.join(ROOT, "packages/client/dist");
      const { buildId } = JSON.parse(fs.readFileSync(path.join(dist, "agent.inputs.json"), "utf8")) as { buildId: string };
      fs.writeFileSync(
        bundlePhases,
        `const t0 = performance.now();
import { readFileSync } from "node:fs"; import { createRequire } from "node:module"; import vm from "node:vm";
const file = ${JSON.stringify(path.join(dist, "agent.cjs"))};
let cachedData; try { cachedData = readFileSync(${JSON.stringify(path.join(dist, `agent.${buildId}.cache`))}); } catch {}
const script = new vm.Script("(function (exports, require, module, __filename, __dirname) {" + readFileSync(file, "utf8") + "\\n})", { filename: file, cachedData });
const module = { exports: {} };
script.runInThisContext()(module.exports, createRequire(file), module, file, ${JSON.stringify(dist)});
const t1 = performance.now();
const code = await module.exports.main(process.argv.slice(2), { out() {}, err() {} });
const t2 = performance.now();
console.log(JSON.stringify({ start: t0, load: t1 - t0, main: t2 - t1, code, cacheRejected: script.cachedDataRejected === true }));
`,
      );
      const bph = Array.from({ length: 5 }, () => JSON.parse(timed([bundlePhases, "renew", "--dir", agentDir, "--server", server.url]).out.trim().split("\n").pop()!) as Record<string, number>);
      const bphase = (k: string) => r1(median(bph.map((p) => p[k]!)));

      rows.push(
        { measure: `tessera-agent renew, nothing due, bundle: median of ${runs} runs (spawn to exit)`, value: r1(median(agentRuns)), unit: "ms", note: `max ${r1(Math.max(...agentRuns))} ms; CPU ${r1(median(agentCpu))} ms` },
        { measure: `tessera-agent renew, nothing due, through tsx (TESSERA_AGENT_BUNDLE=0): median of ${runs} runs`, value: r1(median(tsxRuns)), unit: "ms", note: `max ${r1(Math.max(...tsxRuns))} ms; CPU ${r1(median(tsxCpu))} ms` },
        { measure: "floor: node -e 0 (median of 5)", value: r1(median(nodeFloor)), unit: "ms", note: "" },
        { measure: "floor: node --import tsx, empty .ts file (median of 5)", value: r1(median(tsxFloor)), unit: "ms", note: "" },
        { measure: "bundle phase: process start to first line (median of 5)", value: bphase("start"), unit: "ms", note: "" },
        { measure: "bundle phase: compiling (code cache) and running packages/client/dist/agent.cjs", value: bphase("load"), unit: "ms", note: bph.some((p) => p.cacheRejected) ? "code cache rejected" : "with the code cache" },
        { measure: "bundle phase: main() — read the identity, decide nothing is due", value: bphase("main"), unit: "ms", note: "" },
        { measure: "tsx phase: process start to first line (median of 5)", value: phase("start"), unit: "ms", note: "" },
        { measure: "tsx phase: tsx register()", value: phase("register"), unit: "ms", note: "" },
        { measure: "tsx phase: loading the agent's modules through tsx", value: phase("load"), unit: "ms", note: "" },
        { measure: "tsx phase: main() — read the identity, decide nothing is due", value: phase("main"), unit: "ms", note: "" },
      );

      const med = median(agentRuns);
      figures.push(
        {
          key: "footprint.agentRenewNoopMs", label: "tessera-agent renew when nothing is due (median wall, bundled)", value: r1(med), unit: "ms", target: "≤ 150 ms", met: med <= 150,
          note:
            `scripts/build-agent.mjs bundle; max ${r1(Math.max(...agentRuns))} ms over ${runs} runs, CPU ${r1(median(agentCpu))} ms; through tsx: ${r1(median(tsxRuns))} ms (${r1(median(tsxRuns) / med)}×), CPU ${r1(median(tsxCpu))} ms. ` +
            `Bound by start-up: node alone ${r1(median(nodeFloor))} ms, process start to the first line ${bphase("start")} ms, loading the bundle ${bphase("load")} ms, the renew decision ${bphase("main")} ms`,
        },
        { key: "footprint.agentRenewNoopTsxMs", label: "tessera-agent renew when nothing is due, through tsx (no bundle)", value: r1(median(tsxRuns)), unit: "ms", note: `node + tsx with an empty file ${r1(median(tsxFloor))} ms; tsx register ${phase("register")} ms, loading the modules ${phase("load")} ms` },
        { key: "footprint.agentRenewNoopMaxMs", label: "tessera-agent renew when nothing is due (max wall, bundled)", value: r1(Math.max(...agentRuns)), unit: "ms" },
      );
    } finally {
      await client.close();
      await server.stop();
    }
    return { rows, figures };
  },
};
