/**
 * CPU profiles of one stretch of a benchmark (sections "store" and
 * "revocation"): the V8 sampling profiler that
 * `node --cpu-prof` uses, driven through node:inspector so that a profile
 * covers only the code under study (not the bulk load before it). Writes a
 * .cpuprofile (Chrome DevTools / speedscope) and summarises self time.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Session } from "node:inspector/promises";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** One function's share of the samples. */
export interface SelfTime {
  fn: string;
  ms: number;
  /** Percent of non-idle time. */
  pct: number;
}

/** Where profiles are written (kept after the run; the work directory is not). */
export const PROFILE_DIR = path.join(os.tmpdir(), "tessera-bench-profiles");

/** Runs `fn` under the sampling profiler; returns its result, the profile file and the top self-time functions. */
export async function profiled<T>(name: string, fn: () => Promise<T>, top = 10): Promise<{ result: T; file: string; top: SelfTime[]; idlePct: number }> {
  const session = new Session();
  session.connect();
  try {
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 200 });
    await session.post("Profiler.start");
    let result: T;
    let profile: CpuProfile;
    try {
      result = await fn();
    } finally {
      profile = ((await session.post("Profiler.stop")) as unknown as { profile: CpuProfile }).profile;
    }
    fs.mkdirSync(PROFILE_DIR, { recursive: true });
    const file = path.join(PROFILE_DIR, `${name}-${new Date().toISOString().replace(/[:.]/g, "-")}.cpuprofile`);
    fs.writeFileSync(file, JSON.stringify(profile));
    const { rows, idlePct } = selfTimes(profile, top);
    return { result, file, top: rows, idlePct };
  } finally {
    session.disconnect();
  }
}

/** Self time per function (name, file:line), largest first; idle is left out of the percentages. */
export function selfTimes(profile: CpuProfile, top = 10): { rows: SelfTime[]; idlePct: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const sums = new Map<string, number>();
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    // A sample stands for the time until the next one.
    const us = profile.timeDeltas[i + 1] ?? 0;
    const f = byId.get(id)?.callFrame;
    const name = f?.functionName || "(anonymous)";
    total += us;
    if (name === "(idle)") {
      idle += us;
      return;
    }
    const where = f?.url ? ` ${shortUrl(f.url)}${f.lineNumber > 0 ? `:${f.lineNumber + 1}` : ""}` : "";
    const key = `${name}${where}`;
    sums.set(key, (sums.get(key) ?? 0) + us);
  });
  const busy = Math.max(1, total - idle);
  const rows = [...sums.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, us]) => ({ fn, ms: Math.round(us / 1000), pct: +((100 * us) / busy).toFixed(1) }));
  return { rows, idlePct: +((100 * idle) / Math.max(1, total)).toFixed(1) };
}

function shortUrl(url: string): string {
  const p = url.replace(/^file:\/\//, "");
  const nm = p.lastIndexOf("node_modules/");
  if (nm >= 0) return p.slice(nm + "node_modules/".length);
  const pk = p.indexOf("/packages/");
  if (pk >= 0) return p.slice(pk + 1);
  return p.startsWith("node:") ? p : path.basename(p);
}

/** "name 12.3%, …" for a figure's note. */
export function formatTop(rows: SelfTime[], n = 5): string {
  return rows
    .slice(0, n)
    .map((r) => `${r.fn} ${r.pct}%`)
    .join(", ");
}
