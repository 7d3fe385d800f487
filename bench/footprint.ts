/**
 * Benchmark section "footprint" (issue 9, figure 5): the server's resident
 * memory under renewal load (≤ 200 MB), and `tessera-agent renew` when
 * nothing is due (≤ 150 ms).
 *
 * Memory: `tessera serve` as a child process under the renew section's load
 * (imprint tier-1 renewals, a fresh mTLS connection each, 64 devices in
 * flight); VmRSS sampled every 100 ms, and VmHWM (the kernel's peak) at the end.
 *
 * Agent: one identity enrolled with `tessera-agent enroll`, then
 * `node bin/tessera-agent.js renew` timed from spawn to exit (wall clock,
 * Node's and tsx's start-up included, as a cron job or systemd timer sees it).
 * To show what bounds it: `node -e 0`, `node --import tsx` of an empty file,
 * the agent's phases (tsx register, loading its modules, the renew decision)
 * timed inside one process, and, for comparison only, the same agent bundled
 * ahead of time with esbuild (tsx's own dependency; not how it ships, see
 * docs/decisions/0001-run-typescript-with-tsx.md).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { LoadClient, memoryOf, renewServer } from "./renew.js";
import type { BenchFigure, BenchSection } from "./lib/section.js";

const ROOT = new URL("../", import.meta.url).pathname;
const SECRET = "bench-build-secret-0123456789"; // renewServer's imprint secret
const MB = 2 ** 20;

/** Wall-clock milliseconds of a command, with its output; throws if it fails. */
function timed(args: string[], env: Record<string, string> = {}): { ms: number; out: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...env } });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited ${r.status}: ${r.stderr}${r.stdout}`);
  return { ms, out: r.stdout + r.stderr };
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

export const section: BenchSection = {
  id: "footprint",
  title: "Footprint: server RSS under renewal load, `tessera-agent renew` when nothing is due",
  async run({ seconds, quick, workDir }) {
    const runs = quick ? 5 : 10;
    const rows: Record<string, unknown>[] = [];
    const figures: BenchFigure[] = [];
    const dataDir = path.join(workDir, "data");
    const { server, ca } = await renewServer(dataDir);
    const client = await LoadClient.start();
    const agentRuns: number[] = [];
    try {
      // --- server memory under load: twice the run length, as V8 lets the heap grow for a while before
      // its first major collections give memory back (the peak comes after a few thousand renewals here).
      const idle = memoryOf(server.pid);
      const idleHeap = await heapOf(server.url, ca);
      await client.enroll(server.url, ca, 64);
      const samples: number[] = [];
      const sampler = setInterval(() => samples.push(memoryOf(server.pid).rss), 100);
      let atPeak = { rss: 0, heap: undefined as Awaited<ReturnType<typeof heapOf>> };
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
      const peakSampled = Math.max(...samples);
      const lastQuarter = samples.slice(Math.floor((samples.length * 3) / 4));
      const mb = (b: number | undefined) => (b === undefined || Number.isNaN(b) ? "?" : r1(b / MB));
      rows.push(
        { measure: "server VmRSS after start-up, idle", value: r1(idle.rss / MB), unit: "MB", note: idleHeap ? `V8 heap ${mb(idleHeap.heapUsed)} used of ${mb(idleHeap.heapTotal)}, external ${mb(idleHeap.external)}` : "" },
        {
          measure: `server VmRSS, peak of ${samples.length} samples during ${r.count} renewals`, value: r1(peakSampled / MB), unit: "MB",
          note: `64 in flight, ${Math.round(r.count / r.wallS)}/s, ${r.errors} failed` + (atPeak.heap ? `; at the highest 1-s sample (${mb(atPeak.rss)} MB): V8 heap ${mb(atPeak.heap.heapUsed)} used of ${mb(atPeak.heap.heapTotal)}, external ${mb(atPeak.heap.external)}` : ""),
        },
        { measure: "server VmRSS, median of the last quarter of the run", value: r1(median(lastQuarter) / MB), unit: "MB", note: "" },
        { measure: "server VmHWM (kernel's peak since start)", value: r1(after.hwm / MB), unit: "MB", note: "" },
      );
      const peak = Math.max(peakSampled, after.hwm);
      figures.push({
        key: "footprint.serverPeakRssMB", label: "server peak RSS under renewal load (VmHWM)", value: r1(peak / MB), unit: "MB", target: "≤ 200 MB",
        met: peak <= 200 * MB,
        note:
          `idle after start ${r1(idle.rss / MB)} MB; ${r.count} renewals with 64 in flight over ${2 * seconds} s; last quarter median ${r1(median(lastQuarter) / MB)} MB` +
          (atPeak.heap ? `; near the peak the main V8 heap was ${mb(atPeak.heap.heapTotal)} MB (${mb(atPeak.heap.heapUsed)} used)` : ""),
      });

      // --- the agent, nothing due
      const agentDir = path.join(workDir, "agent");
      timed(["bin/tessera-agent.js", "enroll", "--server", server.url, "--ca", path.join(dataDir, "ca", "chain.pem"), "--dir", agentDir], { TESSERA_BUILD_SECRET: SECRET });
      timed(["bin/tessera-agent.js", "renew", "--dir", agentDir, "--server", server.url]); // warm tsx's transform cache
      for (let i = 0; i < runs; i++) {
        const t = timed(["bin/tessera-agent.js", "renew", "--dir", agentDir, "--server", server.url]);
        if (!/No renewal needed/.test(t.out)) throw new Error(`tessera-agent renew did something: ${t.out}`);
        agentRuns.push(t.ms);
      }
      const nodeFloor = Array.from({ length: 5 }, () => timed(["-e", "0"]).ms);
      const empty = path.join(workDir, "empty.ts");
      fs.writeFileSync(empty, "export {};\n");
      const tsxFloor = Array.from({ length: 5 }, () => timed(["--import", "tsx", empty]).ms);

      // The agent's phases inside one process: tsx register, loading the agent's modules, main().
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

      // For comparison only: the agent bundled ahead of time (esbuild, which tsx itself uses).
      let bundled: number[] = [];
      try {
        const esbuild = await import("esbuild");
        const out = path.join(workDir, "agent-bundle.mjs");
        await esbuild.build({
          entryPoints: [path.join(ROOT, "packages/client/src/agent/main.ts")], bundle: true, platform: "node", format: "esm", target: "node20", outfile: out, logLevel: "silent",
          banner: { js: 'import { createRequire as __tesseraRequire } from "node:module"; const require = __tesseraRequire(import.meta.url);' },
        });
        const runner = path.join(workDir, "agent-bundle-run.mjs");
        fs.writeFileSync(runner, 'import { main } from "./agent-bundle.mjs";\nprocess.exitCode = await main(process.argv.slice(2));\n');
        timed([runner, "renew", "--dir", agentDir, "--server", server.url]);
        bundled = Array.from({ length: 5 }, () => timed([runner, "renew", "--dir", agentDir, "--server", server.url]).ms);
      } catch (err) {
        console.error(`bundled agent skipped: ${(err as Error).message}`);
      }

      rows.push(
        { measure: `tessera-agent renew, nothing due: median of ${runs} runs (spawn to exit)`, value: r1(median(agentRuns)), unit: "ms" },
        { measure: "tessera-agent renew, nothing due: max", value: r1(Math.max(...agentRuns)), unit: "ms" },
        { measure: "floor: node -e 0 (median of 5)", value: r1(median(nodeFloor)), unit: "ms" },
        { measure: "floor: node --import tsx, empty .ts file (median of 5)", value: r1(median(tsxFloor)), unit: "ms" },
        { measure: "agent phase: process start to first line (median of 5)", value: phase("start"), unit: "ms" },
        { measure: "agent phase: tsx register()", value: phase("register"), unit: "ms" },
        { measure: "agent phase: loading the agent's modules through tsx", value: phase("load"), unit: "ms" },
        { measure: "agent phase: main() — read the identity, decide nothing is due", value: phase("main"), unit: "ms" },
      );
      if (bundled.length) rows.push({ measure: "for comparison: the agent bundled ahead of time (esbuild), renew, median of 5", value: r1(median(bundled)), unit: "ms" });

      const med = median(agentRuns);
      figures.push(
        {
          key: "footprint.agentRenewNoopMs", label: "tessera-agent renew when nothing is due (median wall)", value: r1(med), unit: "ms", target: "≤ 150 ms", met: med <= 150,
          note:
            `max ${r1(Math.max(...agentRuns))} ms over ${runs} runs. ` +
            (med <= 150
              ? ""
              : `${r1(med / 150)}× the target, bound by start-up: node alone ${r1(median(nodeFloor))} ms, node + tsx with an empty file ${r1(median(tsxFloor))} ms (already ${median(tsxFloor) > 150 ? "over" : "under"} the target); ` +
                `in process: tsx register ${phase("register")} ms, loading the agent's modules through tsx ${phase("load")} ms, the renew decision itself ${phase("main")} ms` +
                (bundled.length ? `; bundled ahead of time (esbuild): ${r1(median(bundled))} ms` : "")),
        },
        { key: "footprint.agentRenewNoopMaxMs", label: "tessera-agent renew when nothing is due (max wall)", value: r1(Math.max(...agentRuns)), unit: "ms" },
      );
    } finally {
      await client.close();
      await server.stop();
    }
    return { rows, figures };
  },
};
