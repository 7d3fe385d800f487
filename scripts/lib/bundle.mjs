// Shared by scripts/build-agent.mjs and scripts/build-server.mjs: bundles one TypeScript entry point with
// esbuild (tsx's own dependency, so nothing new is installed) into one file, and writes next to it
// NAME.inputs.json: a new build id and the source files the bundle was made from (outside node_modules,
// relative to the repository) plus package-lock.json. The launchers (bin/bundle.js) run a bundle only when
// no input is newer than it, so an edited source never runs as stale build output.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * Builds `entry` into `outFile` (through a temporary name and a rename, so a running process never loads
 * half a file) with the given esbuild options, and writes `inputsFile`. Returns the build id and inputs,
 * or undefined when esbuild is not installed (not fatal: the launchers run the sources through tsx).
 */
export async function bundle({ label, entry, outFile, inputsFile, options }) {
  let esbuild;
  try {
    esbuild = await import("esbuild");
  } catch (err) {
    console.error(`${label}: esbuild is not available (${err.message}); the sources keep running through tsx`);
    return undefined;
  }
  const t0 = performance.now();
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  const tmp = `${outFile}.${process.pid}.tmp`;
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    target: "node20",
    outfile: tmp,
    metafile: true,
    logLevel: "warning",
    legalComments: "none",
    ...options,
  });
  const inputs = Object.keys(result.metafile.inputs)
    .map((p) => path.relative(ROOT, path.resolve(process.cwd(), p)))
    .filter((p) => !p.split(path.sep).includes("node_modules"))
    .concat("package-lock.json")
    .filter((p) => fs.existsSync(path.join(ROOT, p)))
    .sort();
  const buildId = randomBytes(8).toString("hex");
  fs.renameSync(tmp, outFile);
  fs.writeFileSync(inputsFile, JSON.stringify({ entry: path.relative(ROOT, entry), buildId, inputs }, null, 1) + "\n");
  return { buildId, inputs, ms: Math.round(performance.now() - t0) };
}
