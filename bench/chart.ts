/**
 * The chart docs/benchmarks.md shows (docs/benchmarks.svg), made from
 * bench/results/latest.json: enrollment req/s at each concurrency as grouped
 * bars, Tessera (every worker count measured) next to cfssl, and a panel of
 * the issue's targets, met or missed, with the value measured. Plain SVG
 * text, no dependencies. `npm run bench` writes it after the sections;
 * `node --import tsx bench/chart.ts [results.json] [out.svg]` redraws it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { BenchFigure } from "./lib/section.js";

/** The part of bench/results/latest.json the chart reads. */
export interface BenchResults {
  at: string;
  machine: { cores: number; cpu: string; node: string };
  figures: BenchFigure[];
  sections: Record<string, { title: string; rows: Record<string, unknown>[]; at?: string; loadavg?: number[] }>;
}

const W = 880;
const FONT = "font-family=\"-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif\"";
const COLORS: Record<string, string> = { cfssl: "#9aa5b1" };
const TESSERA_COLORS = ["#1f6feb", "#0b3d91", "#5aa9f5", "#7048e8"];
const GREEN = "#1a7f37";
const RED = "#cf222e";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const fmt = (n: number) => (n >= 10_000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(Math.round(n)));

/** A round grid step (1, 2, 2.5 or 5 × a power of ten) so that `ticks` steps reach `max`. */
function niceStep(max: number, ticks: number): number {
  const raw = Math.max(max, 1) / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** Enrollment runs by server name and concurrency (req/s), from the enroll section's rows. */
function enrollRuns(results: BenchResults): { servers: string[]; levels: number[]; reqs: Map<string, number> } {
  const rows = results.sections["enroll"]?.rows ?? [];
  const reqs = new Map<string, number>();
  const servers: string[] = [];
  const levels: number[] = [];
  for (const r of rows) {
    const server = String(r["server"]);
    const c = Number(r["conc"]);
    if (server === "baseline") continue; // a development comparison (BENCH_BASELINE_ROOT), not a product figure
    if (!servers.includes(server)) servers.push(server);
    if (!levels.includes(c)) levels.push(c);
    reqs.set(`${server}@${c}`, Number(r["req/s"]));
  }
  // Tessera variants first, cfssl last.
  servers.sort((a, b) => (a === "cfssl" ? 1 : 0) - (b === "cfssl" ? 1 : 0));
  return { servers, levels: levels.sort((a, b) => a - b), reqs };
}

/** The issue's targets (figures with a target other than the per-run "0 errors" checks). */
function targets(results: BenchResults): BenchFigure[] {
  // "(ours …)" marks a bound we set ourselves (e.g. the console's page time), not one of the issue's targets.
  return results.figures.filter((f) => f.target !== undefined && f.met !== undefined && !/^0 errors/.test(f.target) && !/\(ours/.test(f.target));
}

/** Renders the SVG text. */
export function renderChart(results: BenchResults): string {
  const parts: string[] = [];
  let y = 0;
  const text = (x: number, ty: number, s: string, attrs = "") => parts.push(`<text x="${x}" y="${ty}" ${attrs}>${esc(s)}</text>`);

  // --- title
  y = 28;
  text(20, y, "Tessera benchmarks", `font-size="18" font-weight="600"`);
  y += 20;
  const when = results.at.slice(0, 16).replace("T", " ");
  text(20, y, `${results.machine.cores} cores (${results.machine.cpu}), Node ${results.machine.node}; results of ${when} UTC. Shared machine: compare ratios within one run.`, `font-size="12" fill="#57606a"`);

  // --- panel 1: enrollment req/s
  const { servers, levels, reqs } = enrollRuns(results);
  y += 30;
  text(20, y, "Enrollment over HTTPS keep-alive, CSR in → certificate out (req/s, higher is better)", `font-size="14" font-weight="600"`);
  const enrollAt = results.sections["enroll"]?.at;
  if (enrollAt) text(W - 20, y, `measured ${enrollAt.slice(0, 16).replace("T", " ")}`, `font-size="11" fill="#57606a" text-anchor="end"`);
  y += 10;
  if (levels.length === 0) {
    y += 24;
    text(20, y, "(no enroll section in these results: run BENCH_ONLY=enroll npm run bench)", `font-size="12" fill="#57606a"`);
    y += 10;
  } else {
    const plotTop = y + 16;
    const plotH = 200;
    const left = 70;
    const right = W - 220;
    const max = 4 * niceStep(Math.max(...reqs.values()), 4);
    // grid and axis labels
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      const gy = plotTop + plotH - (plotH * i) / 4;
      parts.push(`<line x1="${left}" y1="${gy}" x2="${right}" y2="${gy}" stroke="#d0d7de" stroke-width="${i === 0 ? 1.5 : 0.6}"/>`);
      text(left - 8, gy + 4, fmt(v), `font-size="11" text-anchor="end" fill="#57606a"`);
    }
    const groupW = (right - left) / levels.length;
    const barW = Math.min(48, (groupW * 0.75) / servers.length);
    levels.forEach((c, gi) => {
      const gx = left + gi * groupW + (groupW - barW * servers.length) / 2;
      servers.forEach((s, si) => {
        const v = reqs.get(`${s}@${c}`);
        if (v === undefined) return;
        const h = (plotH * v) / max;
        const x = gx + si * barW;
        const color = COLORS[s] ?? TESSERA_COLORS[servers.filter((n) => n !== "cfssl").indexOf(s) % TESSERA_COLORS.length];
        parts.push(`<rect x="${x + 2}" y="${plotTop + plotH - h}" width="${barW - 4}" height="${h}" fill="${color}"><title>${esc(`${s}, c=${c}: ${v} req/s`)}</title></rect>`);
        text(x + barW / 2, plotTop + plotH - h - 4, fmt(v), `font-size="10" text-anchor="middle" fill="#24292f"`);
      });
      text(left + gi * groupW + groupW / 2, plotTop + plotH + 18, `${c} connection${c === 1 ? "" : "s"}`, `font-size="12" text-anchor="middle"`);
    });
    // legend
    servers.forEach((s, si) => {
      const ly = plotTop + 10 + si * 20;
      const color = COLORS[s] ?? TESSERA_COLORS[servers.filter((n) => n !== "cfssl").indexOf(s) % TESSERA_COLORS.length];
      parts.push(`<rect x="${right + 20}" y="${ly - 10}" width="12" height="12" fill="${color}"/>`);
      const label = s === "cfssl" ? "cfssl serve (stores nothing)" : s === "tessera" ? "Tessera EST, 1 process (SQLite)" : `Tessera EST, ${s.replace(/^tessera w/, "")} workers (SQLite)`;
      text(right + 38, ly, label, `font-size="11"`);
    });
    y = plotTop + plotH + 30;
  }

  // --- panel 2: targets
  const list = targets(results);
  y += 26;
  text(20, y, `The issue's targets: ${list.filter((f) => f.met).length} met, ${list.filter((f) => !f.met).length} missed`, `font-size="14" font-weight="600"`);
  y += 8;
  for (const f of list) {
    y += 20;
    const color = f.met ? GREEN : RED;
    parts.push(`<circle cx="28" cy="${y - 4}" r="6" fill="${color}"/>`);
    text(28, y - 1, f.met ? "✓" : "✗", `font-size="9" fill="#fff" text-anchor="middle" font-weight="700"`);
    const label = f.label.length > 70 ? f.label.slice(0, 69) + "…" : f.label;
    text(42, y, label, `font-size="12"`);
    text(W - 20, y, `${f.value} ${f.unit}  (target ${f.target})`, `font-size="12" text-anchor="end" fill="${color}"`);
  }
  if (list.length === 0) {
    y += 20;
    text(20, y, "(no targets in these results)", `font-size="12" fill="#57606a"`);
  }
  y += 20;
  const h = y + 10;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" ${FONT} role="img" aria-label="Tessera benchmark figures">\n` +
    `<rect width="${W}" height="${h}" fill="#ffffff"/>\n` +
    parts.join("\n") +
    "\n</svg>\n"
  );
}

/** Reads a results file and writes the chart; returns the output path. */
export function writeChart(resultsFile: string, outFile: string): string {
  const results = JSON.parse(fs.readFileSync(resultsFile, "utf8")) as BenchResults;
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, renderChart(results));
  return outFile;
}

const ROOT = new URL("../", import.meta.url).pathname;
/** Default paths: the runner's results file and the chart docs/benchmarks.md embeds. */
export const DEFAULT_RESULTS = path.join(ROOT, "bench/results/latest.json");
export const DEFAULT_CHART = path.join(ROOT, "docs/benchmarks.svg");

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const out = writeChart(process.argv[2] ?? DEFAULT_RESULTS, process.argv[3] ?? DEFAULT_CHART);
  console.log(`written: ${path.relative(process.cwd(), out)}`);
}
