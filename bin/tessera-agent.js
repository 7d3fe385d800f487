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
import { freshBundle } from "./bundle.js";

const root = new URL("../", import.meta.url);
const dist = new URL("packages/client/dist/", root);

/** The bundle and its code cache file, if the bundle may run (bin/bundle.js). */
function agentBundle() {
  const b = freshBundle(root, dist, "agent.cjs", "agent.inputs.json", "TESSERA_AGENT_BUNDLE");
  return b && { file: b.file, built: b.built, cacheFile: fileURLToPath(new URL(`agent.${b.buildId}.cache`, dist)) };
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
  const bundle = agentBundle();
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
