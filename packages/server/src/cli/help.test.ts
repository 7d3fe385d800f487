import assert from "node:assert/strict";
import * as fs from "node:fs";
import { test } from "node:test";
import { HELP } from "./help.js";
import { COMMANDS } from "./commands.js";

test("--help names every command the dispatcher knows", () => {
  for (const name of Object.keys(COMMANDS)) assert.ok(HELP.includes(`  ${name}`), `help misses '${name}'`);
});

test("docs/cli.md repeats the --help text verbatim", () => {
  const doc = fs.readFileSync(new URL("../../../../docs/cli.md", import.meta.url), "utf8");
  assert.ok(doc.includes(HELP.trimEnd()), "docs/cli.md differs from HELP: regenerate it from `tessera --help`");
});
