#!/usr/bin/env node
// Runs the device agent. When scripts/build-agent.mjs has bundled it (packages/client/dist/agent.cjs) and
// no source file it was built from is newer, the bundle runs, compiled with V8's code cache
// (agent.<build id>.cache, written after a first run when the directory is writable): no TypeScript
// loader and no parsing on the hot path, which matters for `tessera-agent renew` run from a timer.
// Otherwise (no bundle, a stale one, TESSERA_AGENT_BUNDLE=0, or a bundle that does not load) the
// TypeScript runs through tsx's loader as before (no build step; see
// docs/decisions/0001-run-typescript-with-tsx.md).
import { readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

const root = new URL("../", import.meta.url);
const dist = new URL("packages/client/dist/", root);

/** The bundle and its build id if it exists and is at least as new as every input it lists, else undefined. */
function freshBundle() {
  if (process.env.TESSERA_AGENT_BUNDLE === "0") return undefined;
  try {
    const file = fileURLToPath(new URL("agent.cjs", dist));
    const built = statSync(file).mtimeMs;
    const { inputs, buildId } = JSON.parse(readFileSync(new URL("agent.inputs.json", dist), "utf8"));
    if (!Array.isArray(inputs) || inputs.length === 0 || !/^[0-9a-f]+$/.test(buildId)) return undefined;
    // A missing input throws: stale too.
    for (const p of inputs) if (statSync(new URL(p, root)).mtimeMs > built) return undefined;
    return { file, built, cacheFile: fileURLToPath(new URL(`agent.${buildId}.cache`, dist)) };
  } catch {
    return undefined;
  }
}

/** Compiles and runs the CommonJS bundle with the code cache; returns its exports and a function that saves a new cache. */
function loadBundle({ file, built, cacheFile }) {
  let cachedData;
  try {
    if (statSync(cacheFile).mtimeMs >= built) cachedData = readFileSync(cacheFile);
  } catch {
    // no cache yet
  }
  const source = readFileSync(file, "utf8");
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData,
    importModuleDynamically: (specifier) => import(specifier),
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  const save = () => {
    if (cachedData && !script.cachedDataRejected) return;
    try {
      // After a run, so the functions it compiled are in the cache too; never half a file.
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, cacheFile);
    } catch {
      // a read-only install: run without the cache
    }
  };
  return { main: module.exports.main, save };
}

async function load() {
  const bundle = freshBundle();
  if (bundle) {
    try {
      const loaded = loadBundle(bundle);
      if (typeof loaded.main === "function") return loaded;
    } catch {
      // An unloadable bundle is no reason to fail: the sources are there.
    }
  }
  const { register } = await import("tsx/esm/api");
  register();
  const { main } = await import("../packages/client/src/agent/main.ts");
  return { main, save: () => undefined };
}

const { main, save } = await load();
process.exitCode = await main(process.argv.slice(2));
save();
