#!/usr/bin/env node
// Runs every *.test.ts under packages/ with Node's own test runner (through tsx).
// Node 20's --test takes no globs, so the files are listed here.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules") continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const only = process.argv.slice(2).filter((a) => !a.startsWith("--"));
let files = walk("packages", []).sort();
if (process.argv.includes("--pg")) files = files.filter((f) => /postgres/.test(f));
if (only.length) files = files.filter((f) => only.some((o) => f.includes(o)));
const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=180000", ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
