#!/usr/bin/env node
// Runs the tessera CLI and server. When scripts/build-server.mjs has bundled it
// (packages/server/dist/tessera.mjs, made by `npm install`) and no source file is newer, the bundle runs:
// no TypeScript loader, about 50 MB less resident memory (docs/decisions/0005-bundle-the-server.md).
// Otherwise (no bundle, a stale one, TESSERA_SERVER_BUNDLE=0, or a bundle that does not load) the
// TypeScript runs through tsx's loader (docs/decisions/0001-run-typescript-with-tsx.md).
import { pathToFileURL } from "node:url";
import { freshBundle } from "./bundle.js";

const root = new URL("../", import.meta.url);

async function load() {
  const bundle = freshBundle(root, new URL("packages/server/dist/", root), "tessera.mjs", "tessera.inputs.json", "TESSERA_SERVER_BUNDLE");
  if (bundle) {
    try {
      const { main } = await import(pathToFileURL(bundle.file).href);
      if (typeof main === "function") return main;
    } catch {
      // An unloadable bundle is no reason to fail: the sources are there.
    }
  }
  const { register } = await import("tsx/esm/api");
  register();
  return (await import("../packages/server/src/cli/main.ts")).main;
}

const main = await load();
process.exitCode = await main(process.argv.slice(2));
