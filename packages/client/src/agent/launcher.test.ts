/**
 * bin/tessera-agent.js picks the bundle scripts/build-agent.mjs makes only
 * when it is fresh, and runs the TypeScript through tsx otherwise. Checked on
 * a copy of the launcher in a scratch tree whose "bundle" and "sources" say
 * which one ran.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const ROOT = new URL("../../../../", import.meta.url).pathname;

function scratch(): { dir: string; run: (env?: Record<string, string>) => string; touch: (rel: string, secondsFromNow: number) => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tessera-launcher-"));
  const put = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  };
  put("package.json", JSON.stringify({ type: "module", private: true }));
  fs.mkdirSync(path.join(dir, "bin"));
  fs.copyFileSync(path.join(ROOT, "bin/tessera-agent.js"), path.join(dir, "bin/tessera-agent.js"));
  fs.copyFileSync(path.join(ROOT, "bin/bundle.js"), path.join(dir, "bin/bundle.js"));
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
  put("packages/client/src/agent/main.ts", `export async function main(argv) { console.log("tsx " + argv.join(" ")); return 0; }\n`);
  put("packages/client/src/agent/other.ts", "export {};\n");
  put("packages/client/dist/agent.cjs", `exports.main = async (argv) => { console.log("bundle " + argv.join(" ")); return 0; };\n`);
  put("packages/client/dist/agent.inputs.json", JSON.stringify({ buildId: "0123abcd", inputs: ["packages/client/src/agent/main.ts", "packages/client/src/agent/other.ts"] }));
  const touch = (rel: string, secondsFromNow: number) => {
    const t = new Date(Date.now() + secondsFromNow * 1000);
    fs.utimesSync(path.join(dir, rel), t, t);
  };
  // Sources older than the bundle to begin with.
  touch("packages/client/src/agent/main.ts", -60);
  touch("packages/client/src/agent/other.ts", -60);
  const run = (env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [path.join(dir, "bin/tessera-agent.js"), "renew", "--dir", "x"], { encoding: "utf8", env: { ...process.env, ...env } });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  return { dir, run, touch };
}

test("a fresh bundle runs (and leaves its code cache); TESSERA_AGENT_BUNDLE=0 runs the sources through tsx", () => {
  const s = scratch();
  const cache = path.join(s.dir, "packages/client/dist/agent.0123abcd.cache");
  assert.equal(s.run(), "bundle renew --dir x");
  assert.ok(fs.existsSync(cache), "code cache written after the first run");
  assert.equal(s.run(), "bundle renew --dir x", "and used by the next");
  assert.equal(s.run({ TESSERA_AGENT_BUNDLE: "0" }), "tsx renew --dir x");
  // A cache older than the bundle is not used (nor trusted): a rebuilt bundle runs as itself.
  fs.writeFileSync(path.join(s.dir, "packages/client/dist/agent.cjs"), `exports.main = async () => { console.log("rebuilt"); return 0; };\n`);
  s.touch("packages/client/dist/agent.0123abcd.cache", -30);
  assert.equal(s.run(), "rebuilt");
});

test("a source newer than the bundle, a missing input or a missing list: the sources run", () => {
  const s = scratch();
  s.touch("packages/client/src/agent/other.ts", 60);
  assert.equal(s.run(), "tsx renew --dir x", "edited after the build");
  s.touch("packages/client/src/agent/other.ts", -60);
  assert.equal(s.run(), "bundle renew --dir x");
  fs.rmSync(path.join(s.dir, "packages/client/src/agent/other.ts"));
  assert.equal(s.run(), "tsx renew --dir x", "an input is gone");
  fs.rmSync(path.join(s.dir, "packages/client/dist/agent.inputs.json"));
  assert.equal(s.run(), "tsx renew --dir x", "no list of inputs");
});

test("an unloadable bundle falls back to the sources", () => {
  const s = scratch();
  fs.writeFileSync(path.join(s.dir, "packages/client/dist/agent.cjs"), "this is not JavaScript {\n");
  s.touch("packages/client/src/agent/main.ts", -60);
  assert.equal(s.run(), "tsx renew --dir x");
});
