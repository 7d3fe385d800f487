import "reflect-metadata";
import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { passwordAuthorizer } from "../authority/authorizers.js";
import { openStore } from "../store/index.js";
import { systemClock } from "../authority/runtime.js";
import { tempDir } from "../test-support.js";
import { main } from "./main.js";

async function run(dataDir: string, args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (t) => out.push(t), err: (t) => err.push(t) }, { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "silent" });
  return { code, out, err };
}

/** Checks a user's password the way EST's Basic authentication does. */
async function authenticates(dataDir: string, username: string, password: string, scope = ""): Promise<boolean> {
  const store = await openStore(`sqlite:${path.join(dataDir, "tessera.db")}`);
  try {
    await passwordAuthorizer(store, systemClock).check!({ kind: "password", username, password, scope });
    return true;
  } catch {
    return false;
  } finally {
    await store.close();
  }
}

test("est user add (given or generated password, optional label), list without passwords, remove", async () => {
  const dir = path.join(tempDir(), "data");
  const added = await run(dir, ["est", "user", "add", "alice", "--password", "correct horse", "--json"]);
  assert.equal(added.code, 0, added.err.join("\n"));
  assert.deepEqual(JSON.parse(added.out[0]!), { name: "alice", label: "*" });
  assert.ok(await authenticates(dir, "alice", "correct horse"));
  assert.ok(!(await authenticates(dir, "alice", "wrong")));

  const generated = await run(dir, ["est", "user", "add", "factory-line", "--label", "factory", "--json"]);
  assert.equal(generated.code, 0);
  const { password, label } = JSON.parse(generated.out[0]!) as { password: string; label: string };
  assert.equal(label, "factory");
  assert.ok(password.length >= 20);
  assert.match(generated.err.join("\n"), /no EST label "factory" is configured/);
  assert.ok(await authenticates(dir, "factory-line", password, "factory"));
  assert.ok(!(await authenticates(dir, "factory-line", password, "")), "a label's user is refused on the label-less path");

  const listed = await run(dir, ["est", "user", "list", "--json"]);
  assert.ok(!listed.out.join("").includes(password) && !listed.out.join("").includes("scrypt"), "passwords and hashes are never listed");
  assert.deepEqual((JSON.parse(listed.out[0]!) as { name: string; label: string }[]).map((u) => `${u.name}@${u.label}`), ["alice@*", "factory-line@factory"]);

  assert.equal((await run(dir, ["est", "user", "add", "alice", "--password", "x"])).code, 5, "names are unique");
  assert.equal((await run(dir, ["est", "user", "add", "a:b", "--password", "x"])).code, 2, "':' cannot be in a Basic user name");
  assert.equal((await run(dir, ["est", "user", "add"])).code, 2);
  assert.equal((await run(dir, ["est", "user", "frobnicate", "x"])).code, 2);
  assert.equal((await run(dir, ["est", "user", "remove", "alice"])).code, 0);
  assert.ok(!(await authenticates(dir, "alice", "correct horse")), "a removed user no longer authenticates");
  assert.equal((await run(dir, ["est", "user", "remove", "alice"])).code, 4);
  assert.equal((await run(dir, ["est", "user", "add", "alice", "--password", "again"])).code, 0, "the name can be used again");
});
