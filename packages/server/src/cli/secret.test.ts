import "reflect-metadata";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../test-support.js";
import { main } from "./main.js";

async function run(dataDir: string, args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (t) => out.push(t), err: (t) => err.push(t) }, { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "silent" });
  return { code, out, err };
}

test("secret create: a generated secret is printed once; list never shows values; revoke", async () => {
  const dir = path.join(tempDir(), "data");
  const created = await run(dir, ["secret", "create", "factory", "--scope", "imprint", "--max-uses", "10", "--expires", "90d", "--json"]);
  assert.equal(created.code, 0, created.err.join("\n"));
  const { value, maxUses } = JSON.parse(created.out[0]!) as { value: string; maxUses: number };
  assert.ok(value.length >= 32);
  assert.equal(maxUses, 10);
  const listed = await run(dir, ["secret", "list", "--json"]);
  assert.ok(!listed.out.join("").includes(value), "the value is never listed");
  assert.equal((JSON.parse(listed.out[0]!) as { state: string }[])[0]?.state, "active");
  assert.equal((await run(dir, ["secret", "create", "factory"])).code, 5, "names are unique");
  assert.equal((await run(dir, ["secret", "revoke", "factory"])).code, 0);
  assert.equal((JSON.parse((await run(dir, ["secret", "list", "--json"])).out[0]!) as { state: string }[])[0]?.state, "revoked");
});

test("secret create: a short --value (an existing fleet's secret) is accepted with a warning", async () => {
  const dir = path.join(tempDir(), "data");
  const r = await run(dir, ["secret", "create", "legacy", "--value", "s3cret", "--scope", "imprint"]);
  assert.equal(r.code, 0);
  assert.match(r.err.join("\n"), /shorter than 16 characters/);
});

test("secret create: bad arguments are refused before anything is created", async () => {
  const dir = path.join(tempDir(), "data");
  for (const args of [["--max-uses", "zero"], ["--expires", "soon"], ["--value", ""]]) {
    const r = await run(dir, ["secret", "create", "x", ...args]);
    assert.equal(r.code, 2, args.join(" "));
  }
  assert.equal(fs.existsSync(dir), false, "no data directory, CA or database was created");
});
