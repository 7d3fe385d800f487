#!/usr/bin/env node
// Bundles the device agent (packages/client/src/agent/main.ts and everything it imports, dependencies
// included) into one CommonJS file, packages/client/dist/agent.cjs, with esbuild (scripts/lib/bundle.mjs).
// bin/tessera-agent.js runs the bundle when it is there and no source file is newer, and falls back to running the TypeScript through tsx otherwise. Why: `tessera-agent renew` runs
// from cron or a systemd timer, and starting tsx and transforming ~100 modules costs more than the renew
// check itself (docs/benchmarks.md, footprint). The server has its own bundle (scripts/build-server.mjs).
//
// CommonJS, not an ES module, so the launcher can compile it with node:vm and V8's code cache
// (agent.<build id>.cache, written by the launcher on first use and primed here): Node 20 has no compile
// cache for ES modules, and parsing the 1.7 MB bundle is most of what is left of the start-up. Dependencies'
// ES module builds are preferred ("module" before "main") so that what the agent does not use is left out.
//
// Writes, next to the bundle, agent.inputs.json (scripts/lib/bundle.mjs): a new build id (it names the code
// cache, so a cache never outlives its bundle) and the source files it was made from, which the launcher
// compares with the bundle's mtime.
// Usage: node scripts/build-agent.mjs [--quiet]
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { bundle, ROOT } from "./lib/bundle.mjs";

const ENTRY = path.join(ROOT, "packages/client/src/agent/main.ts");
const OUT_DIR = path.join(ROOT, "packages/client/dist");
const OUT = path.join(OUT_DIR, "agent.cjs");
const INPUTS = path.join(OUT_DIR, "agent.inputs.json");
const quiet = process.argv.includes("--quiet");

const built = await bundle({ label: "build-agent", entry: ENTRY, outFile: OUT, inputsFile: INPUTS, options: { format: "cjs", mainFields: ["module", "main"] } });
if (!built) process.exit(0);
const { buildId, inputs, ms } = built;
// Old bundles' code caches go; the new build id names the next one.
for (const f of fs.readdirSync(OUT_DIR)) if ((/^agent\..*\.cache$/.test(f) && f !== `agent.${buildId}.cache`) || f === "agent.mjs") fs.rmSync(path.join(OUT_DIR, f), { force: true });
// Prime the code cache (best effort): the launcher writes it after a first run.
spawnSync(process.execPath, [path.join(ROOT, "bin/tessera-agent.js"), "--help"], { stdio: "ignore", env: { ...process.env, TESSERA_AGENT_BUNDLE: "1" } });
if (!quiet) {
  const kib = Math.round(fs.statSync(OUT).size / 1024);
  const cached = fs.existsSync(path.join(OUT_DIR, `agent.${buildId}.cache`)) ? ", code cache primed" : ", no code cache yet";
  console.log(`build-agent: ${path.relative(ROOT, OUT)} (${kib} KiB, ${inputs.length - 1} source files${cached}) in ${ms} ms`);
}
