/**
 * `npm run bench` (not part of `npm test`): runs the benchmark sections, prints
 * a table per section and one JSON line with every figure, and writes
 * bench/results/latest.json and docs/benchmarks.svg (bench/chart.ts), which
 * docs/benchmarks.md shows. Timings on shared machines are noisy: compare
 * ratios from one run; each section records the load average around it.
 *
 * A run of some sections (BENCH_ONLY) keeps the other sections of the
 * previous results file, each with the time it was measured at.
 *
 * Environment: BENCH_ONLY=issue,enroll,… (sections to run), BENCH_SECONDS
 * (per timed run, default 10), BENCH_QUICK=1 (smaller sizes); the sections
 * document their own (BENCH_WORKERS, BENCH_BASELINE_ROOT, …).
 */
import "reflect-metadata";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { BenchFigure, BenchSection } from "./lib/section.js";
import { DEFAULT_CHART, writeChart } from "./chart.js";

const SECTIONS: Array<() => Promise<{ section: BenchSection }>> = [
  () => import("./issue-inprocess.js"),
  () => import("./store-scale.js"),
  () => import("./revocation-scale.js"),
  () => import("./enroll.js"),
  () => import("./renew.js"),
  () => import("./footprint.js"),
  () => import("./admin-scale.js"),
];

const only = (process.env.BENCH_ONLY ?? "").split(",").map((s) => s.trim()).filter(Boolean);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const quick = process.env.BENCH_QUICK === "1";
const machine = { cores: os.cpus().length, cpu: os.cpus()[0]?.model ?? "?", memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.release()}` };
console.log(`Tessera benchmarks on ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}; ${seconds} s per timed run${quick ? ", quick sizes" : ""}`);

interface SectionResult {
  title: string;
  rows: Record<string, unknown>[];
  figures: BenchFigure[];
  /** When it was measured, its settings, and the 1-minute load average before and after it (absent in older files). */
  at: string;
  seconds: number;
  quick: boolean;
  loadavg?: [number, number];
}
const figures: BenchFigure[] = [];
const sections: Record<string, SectionResult> = {};
for (const load of SECTIONS) {
  const { section } = await load();
  if (only.length > 0 && !only.includes(section.id)) continue;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `tessera-bench-${section.id}-`));
  const load0 = os.loadavg()[0]!;
  const at = new Date().toISOString();
  console.log(`\n## ${section.title}`);
  console.log(`load average (1 min) before: ${load0.toFixed(2)}`);
  try {
    const r = await section.run({ seconds, quick, workDir });
    console.table(r.rows);
    const load1 = os.loadavg()[0]!;
    console.log(`load average (1 min) after: ${load1.toFixed(2)}`);
    sections[section.id] = { title: section.title, rows: r.rows, figures: r.figures, at, seconds, quick, loadavg: [+load0.toFixed(2), +load1.toFixed(2)] };
    figures.push(...r.figures);
  } catch (err) {
    console.error(`section ${section.id} failed: ${(err as Error).stack ?? err}`);
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

console.log("\n## Figures");
console.table(figures.map((f) => ({ figure: f.label, value: `${f.value} ${f.unit}`, target: f.target ?? "", met: f.met === undefined ? "" : f.met ? "yes" : "NO", note: f.note ?? "" })));
console.log(JSON.stringify({ bench: "tessera", figures }));
const resultsDir = new URL("./results/", import.meta.url).pathname;
const resultsFile = path.join(resultsDir, "latest.json");
// Sections not run this time stay as the previous file had them (figures by their section's key prefix in older files).
const previous = readPrevious(resultsFile);
const merged: Record<string, SectionResult> = {};
for (const [id, old] of Object.entries(previous?.sections ?? {})) {
  if (sections[id]) continue;
  merged[id] = { ...old, figures: old.figures ?? (previous?.figures ?? []).filter((f) => f.key.startsWith(`${id}.`)), at: old.at ?? previous!.at, seconds: old.seconds ?? previous!.seconds, quick: old.quick ?? previous!.quick };
}
Object.assign(merged, sections);
const result = { at: new Date().toISOString(), machine, seconds, quick, figures: Object.values(merged).flatMap((sec) => sec.figures), sections: merged };
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(resultsFile, JSON.stringify(result, null, 2) + "\n");
console.log(`\nwritten: bench/results/latest.json${Object.keys(merged).length > Object.keys(sections).length ? ` (kept from before: ${Object.keys(merged).filter((id) => !sections[id]).join(", ")})` : ""}`);
try {
  writeChart(resultsFile, DEFAULT_CHART);
  console.log(`written: ${path.relative(process.cwd(), DEFAULT_CHART)}`);
} catch (err) {
  console.error(`chart not written: ${(err as Error).message}`);
}

function readPrevious(file: string): { at: string; seconds: number; quick: boolean; figures?: BenchFigure[]; sections?: Record<string, Partial<SectionResult> & { title: string; rows: Record<string, unknown>[] }> } | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
}
