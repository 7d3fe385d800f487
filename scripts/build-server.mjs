#!/usr/bin/env node
// Bundles the server's CLI (packages/server/src/cli/main.ts and the workspace packages it imports) into one
// ES module, packages/server/dist/tessera.mjs, with esbuild (scripts/lib/bundle.mjs). npm dependencies stay
// outside the bundle and load from node_modules as they would from the sources (native addons such as
// better-sqlite3, and the versions pinned under packages/server/node_modules). bin/tessera.js runs the bundle
// when no source file is newer, and the TypeScript through tsx otherwise.
//
// Why: tsx's loader and the transformed sources it keeps cost the server about 50 MB of resident memory
// (docs/benchmarks.md, footprint; docs/decisions/0005-bundle-the-server.md), and start-up time.
//
// The bundle sits two directories below the repository root, as the sources' packages/server/src/paths.ts
// does, so that paths resolved from import.meta.url (the console's files, bin/tessera.js for workers) are
// the same from either.
// Usage: node scripts/build-server.mjs [--quiet]
import * as fs from "node:fs";
import * as path from "node:path";
import { bundle, ROOT } from "./lib/bundle.mjs";

const OUT_DIR = path.join(ROOT, "packages/server/dist");
const OUT = path.join(OUT_DIR, "tessera.mjs");

/** Leaves every bare import outside the bundle except the workspace's own TypeScript packages. */
const externals = {
  name: "tessera-externals",
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith("@tessera/") ? undefined : { path: args.path, external: true }));
  },
};

const built = await bundle({
  label: "build-server",
  entry: path.join(ROOT, "packages/server/src/cli/main.ts"),
  outFile: OUT,
  inputsFile: path.join(OUT_DIR, "tessera.inputs.json"),
  options: { format: "esm", plugins: [externals] },
});
if (built && !process.argv.includes("--quiet")) {
  const kib = Math.round(fs.statSync(OUT).size / 1024);
  console.log(`build-server: ${path.relative(ROOT, OUT)} (${kib} KiB, ${built.inputs.length - 1} source files) in ${built.ms} ms`);
}
