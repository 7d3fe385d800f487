/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function,
 * largest first. The profile covers the main JavaScript thread only: work in
 * libuv's thread pool (async crypto such as scrypt or async sign/verify,
 * zlib) and in V8's background threads does not appear in it.
 */
import * as fs from "node:fs";
import * as path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface ProfileEntry {
  /** "name (file:line)", paths relative to the repository or node_modules. */
  fn: string;
  selfMs: number;
  /** Share of the profile's sampled time (idle excluded). */
  percent: number;
}

const ROOT = new URL("../../", import.meta.url).pathname;

function where(url: string, line: number): string {
  if (url === "") return "";
  let file = url.replace(/^file:\/\//, "");
  const nm = file.lastIndexOf("/node_modules/");
  file = nm >= 0 ? file.slice(nm + "/node_modules/".length) : path.relative(ROOT, file);
  return ` (${file}:${line + 1})`;
}

/** Where a function lives: an npm package, a repository directory, node's internals, or V8 ("(garbage collector)", native code). */
function moduleOf(url: string, key: string): string {
  if (url === "") return key.startsWith("(") ? key : "(native)";
  if (url.startsWith("node:")) return "node:internal";
  const file = url.replace(/^file:\/\//, "");
  const nm = file.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = file.slice(nm + "/node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  return path.dirname(path.relative(ROOT, file));
}

/** Self time per function of a .cpuprofile, busiest first; "(idle)" is left out of the total. */
export function topSelfTime(file: string, n = 20): { entries: ProfileEntry[]; byModule: ProfileEntry[]; busyMs: number; idleMs: number; wallMs: number } {
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<string, number>();
  const moduleUs = new Map<string, number>();
  // Sample i stands for the interval until the next sample.
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const key = `${node.callFrame.functionName || "(anonymous)"}${where(node.callFrame.url, node.callFrame.lineNumber)}`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
    if (key !== "(idle)") {
      const mod = moduleOf(node.callFrame.url, key);
      moduleUs.set(mod, (moduleUs.get(mod) ?? 0) + dt);
    }
  }
  const idleUs = selfUs.get("(idle)") ?? 0;
  selfUs.delete("(idle)");
  const busyUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const top = (m: Map<string, number>, k: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([fn, us]) => ({ fn, selfMs: Math.round(us / 100) / 10, percent: Math.round((1000 * us) / busyUs) / 10 }));
  return { entries: top(selfUs, n), byModule: top(moduleUs, n), busyMs: Math.round(busyUs / 1000), idleMs: Math.round(idleUs / 1000), wallMs: Math.round((profile.endTime - profile.startTime) / 1000) };
}
