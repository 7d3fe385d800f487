/**
 * bin/tessera.js runs the server bundle (scripts/build-server.mjs) only when
 * it is fresh, and the TypeScript through tsx otherwise: checked on a copy of
 * the launcher in a scratch tree whose "bundle" and "sources" say which one
 * ran. And the real bundle, built from this checkout, behaves as the sources
 * do where a bundle could differ: the paths it finds from its own location.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { REPO_ROOT } from "./paths.js";
import { DEFAULT_CONSOLE_DIR } from "./admin/console.js";

function scratch() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tessera-server-launcher-"));
  const put = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  };
  put("package.json", JSON.stringify({ type: "module", private: true }));
  for (const f of ["tessera.js", "bundle.js"]) put(`bin/${f}`, fs.readFileSync(path.join(REPO_ROOT, "bin", f), "utf8"));
  fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"));
  put("packages/server/src/cli/main.ts", `export async function main(argv: string[]): Promise<number> { console.log("tsx " + argv.join(" ")); return 0; }\n`);
  put("packages/server/dist/tessera.mjs", `export async function main(argv) { console.log("bundle " + argv.join(" ")); return 3; }\n`);
  put("packages/server/dist/tessera.inputs.json", JSON.stringify({ buildId: "00ff", inputs: ["packages/server/src/cli/main.ts"] }));
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(dir, "packages/server/src/cli/main.ts"), old, old);
  const run = (env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [path.join(dir, "bin/tessera.js"), "ca", "show"], { encoding: "utf8", env: { ...process.env, ...env } });
    return { out: r.stdout.trim(), status: r.status };
  };
  return { dir, run };
}

test("a fresh bundle runs (its exit code is the process's); TESSERA_SERVER_BUNDLE=0, a newer source or a broken bundle run the sources", () => {
  const s = scratch();
  assert.deepEqual(s.run(), { out: "bundle ca show", status: 3 });
  assert.deepEqual(s.run({ TESSERA_SERVER_BUNDLE: "0" }), { out: "tsx ca show", status: 0 });
  const future = new Date(Date.now() + 60_000);
  fs.utimesSync(path.join(s.dir, "packages/server/src/cli/main.ts"), future, future);
  assert.deepEqual(s.run(), { out: "tsx ca show", status: 0 }, "a source edited after the build");
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(s.dir, "packages/server/src/cli/main.ts"), past, past);
  fs.writeFileSync(path.join(s.dir, "packages/server/dist/tessera.mjs"), "export const = ;\n");
  assert.deepEqual(s.run(), { out: "tsx ca show", status: 0 }, "a bundle that does not load");
  fs.rmSync(path.join(s.dir, "packages/server/dist/tessera.inputs.json"));
  assert.deepEqual(s.run(), { out: "tsx ca show", status: 0 }, "no list of inputs");
});

test("bundled at packages/server/dist/, paths.ts finds the repository root as it does from the sources", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tessera-bundle-"));
  const out = path.join(dir, "packages/server/dist/tessera.mjs");
  // Built the way scripts/build-server.mjs builds it, at the same depth below a scratch root.
  const script = `
    const esbuild = await import("esbuild");
    await esbuild.build({ entryPoints: [${JSON.stringify(path.join(REPO_ROOT, "packages/server/src/paths.ts"))}],
      bundle: true, platform: "node", format: "esm", target: "node20", outfile: ${JSON.stringify(out)}, logLevel: "error" });`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", cwd: REPO_ROOT });
  assert.equal(r.status, 0, r.stderr);
  const bundled = (await import(out)) as { REPO_ROOT: string };
  assert.equal(bundled.REPO_ROOT, dir + path.sep);
  // And from the sources: the console's files and the launcher that workers run.
  assert.equal(DEFAULT_CONSOLE_DIR, path.join(REPO_ROOT, "packages/web/dist"));
  assert.ok(fs.existsSync(path.join(REPO_ROOT, "bin/tessera.js")));
  assert.ok(fs.existsSync(path.join(REPO_ROOT, "packages/server/src/paths.ts")));
});
