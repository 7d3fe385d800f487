/**
 * `npm run bench` (not part of `npm test`): runs the benchmark sections, prints
 * a table per section and one JSON line with every figure, and writes
 * bench/results/latest.json and docs/benchmarks-enroll.svg, which
 * docs/benchmarks.md shows. Timings on shared machines are noisy: compare
 * ratios from one run.
 *
 * Environment: BENCH_ONLY=issue,enroll,… (sections to run), BENCH_SECONDS
 * (per timed run, default 10), BENCH_QUICK=1 (smaller sizes).
 */
import "reflect-metadata";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { BenchFigure, BenchSection } from "./lib/section.js";

const SECTIONS: Array<() => Promise<{ section: BenchSection }>> = [
  () => import("./issue-inprocess.js"),
  () => import("./store-scale.js"),
  () => import("./revocation-scale.js"),
  () => import("./enroll.js"),
  () => import("./renew.js"),
  () => import("./footprint.js"),
];

const only = (process.env.BENCH_ONLY ?? "").split(",").map((s) => s.trim()).filter(Boolean);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const quick = process.env.BENCH_QUICK === "1";
const machine = { cores: os.cpus().length, cpu: os.cpus()[0]?.model ?? "?", memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.release()}` };
console.log(`Tessera benchmarks on ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}; ${seconds} s per timed run${quick ? ", quick sizes" : ""}`);

const figures: BenchFigure[] = [];
const sections: Record<string, { title: string; rows: Record<string, unknown>[] }> = {};
for (const load of SECTIONS) {
  const { section } = await load();
  if (only.length > 0 && !only.includes(section.id)) continue;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `tessera-bench-${section.id}-`));
  console.log(`\n## ${section.title}`);
  try {
    const r = await section.run({ seconds, quick, workDir });
    console.table(r.rows);
    sections[section.id] = { title: section.title, rows: r.rows };
    figures.push(...r.figures);
  } catch (err) {
    console.error(`section ${section.id} failed: ${(err as Error).stack ?? err}`);
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

console.log("\n## Figures");
console.table(figures.map((f) => ({ figure: f.label, value: `${f.value} ${f.unit}`, target: f.target ?? "", met: f.met === undefined ? "" : f.met ? "yes" : "NO", note: f.note ?? "" })));
const result = { at: new Date().toISOString(), machine, seconds, quick, figures, sections };
console.log(JSON.stringify({ bench: "tessera", figures }));
const resultsDir = new URL("./results/", import.meta.url).pathname;
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(path.join(resultsDir, "latest.json"), JSON.stringify(result, null, 2) + "\n");
console.log(`\nwritten: bench/results/latest.json`);
