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

interface Described { subject: string; issuer: string; notBefore: string; notAfter: string; sha256: string }

test("ca rollover: creates the set, prints the new root, ca show lists it, a second run is refused", async () => {
  const dir = path.join(tempDir(), "data");
  assert.equal((await run(dir, ["ca", "init"])).code, 0);
  assert.equal((await run(dir, ["ca", "rollover", "--key-type", "nonsense"])).code, 2, "unknown key type is a usage error");
  assert.equal(fs.existsSync(path.join(dir, "ca", "rollover")), false);

  const r = await run(dir, ["ca", "rollover", "--json"]);
  assert.equal(r.code, 0, r.err.join("\n") + r.out.join("\n"));
  const doc = JSON.parse(r.out[0]!) as { newRoot: Described; oldWithNew: Described; newWithOld: Described; dir: string; files: Record<string, string> };
  assert.equal(doc.newRoot.subject, "CN=Tessera Root CA G2,O=Tessera");
  assert.match(doc.newRoot.sha256, /^[0-9a-f]{64}$/);
  assert.equal(doc.oldWithNew.issuer, doc.newRoot.subject);
  assert.equal(doc.newWithOld.subject, doc.newRoot.subject);
  assert.deepEqual(Object.keys(doc.files).sort(), ["newRoot", "newRootKey", "newWithOld", "oldWithNew"]);
  for (const f of Object.values(doc.files)) assert.ok(fs.existsSync(f), f);

  const show = await run(dir, ["ca", "show", "--json"]);
  assert.equal(show.code, 0);
  const shown = JSON.parse(show.out[0]!) as { rollover?: { newRoot: Described } };
  assert.equal(shown.rollover?.newRoot.sha256, doc.newRoot.sha256);
  const human = await run(dir, ["ca", "show"]);
  assert.match(human.out.join("\n"), /rollover new root \(NewWithNew\):\n {2}subject: {4}CN=Tessera Root CA G2,O=Tessera/);
  assert.match(human.out.join("\n"), /rollover OldWithNew:/);

  const again = await run(dir, ["ca", "rollover"]);
  assert.equal(again.code, 5);
  assert.match(again.err.join("\n"), /already exists.*\[TESSERA_ERR_CA_ROLLOVER\]/);
});

test("ca rollover: human output names the new root, its validity, fingerprint and files", async () => {
  const dir = path.join(tempDir(), "data");
  assert.equal((await run(dir, ["ca", "init"])).code, 0);
  const r = await run(dir, ["ca", "rollover", "--key-type", "ec-p384"]);
  assert.equal(r.code, 0, r.err.join("\n"));
  const text = r.out.join("\n");
  assert.match(text, /new root: CN=Tessera Root CA G2,O=Tessera/);
  assert.match(text, /valid: {4}\d{4}-\d\d-\d\dT.* to \d{4}-/);
  assert.match(text, /SHA-256: {2}[0-9a-f]{64}/);
  assert.ok(text.includes(path.join(dir, "ca", "rollover", "old-with-new.pem")));
});

test("ca show: without a rollover, no rollover key in JSON", async () => {
  const dir = path.join(tempDir(), "data");
  assert.equal((await run(dir, ["ca", "init"])).code, 0);
  const shown = JSON.parse((await run(dir, ["ca", "show", "--json"])).out[0]!) as Record<string, unknown>;
  assert.deepEqual(Object.keys(shown), ["root", "issuer"]);
});
