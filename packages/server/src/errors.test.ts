import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { ERROR_CODES, HTTP_STATUS } from "./errors.js";

const doc = fs.readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");

test("docs/errors.md lists every registered code with its kind, status and message, and nothing else", () => {
  const documented = new Set([...doc.matchAll(/^\| `(TESSERA_ERR_\w+)` \| (\w+) \| (\d+) \| (.+) \|$/gm)].map((m) => `${m[1]}|${m[2]}|${m[3]}|${m[4]}`));
  const registered = new Set(Object.entries(ERROR_CODES).map(([code, e]) => `${code}|${e.kind}|${HTTP_STATUS[e.kind]}|${e.message}`));
  assert.deepEqual([...registered].filter((c) => !documented.has(c)), [], "registered but not documented");
  assert.deepEqual([...documented].filter((c) => !registered.has(c)), [], "documented but not registered");
});

test("every pki error code is documented", () => {
  const src = fs.readFileSync(new URL("../../pki/src/errors.ts", import.meta.url), "utf8");
  for (const m of src.matchAll(/"(TESSERA_ERR_PKI_\w+)"/g)) assert.ok(doc.includes("`" + m[1] + "`"), m[1]);
});

test("every mtls middleware error code is documented", () => {
  const src = fs.readFileSync(new URL("../../mtls/src/errors.ts", import.meta.url), "utf8");
  const codes = [...new Set([...src.matchAll(/"(TESSERA_ERR_MTLS_\w+)"/g)].map((m) => m[1]!))];
  assert.ok(codes.length >= 4);
  for (const code of codes) assert.ok(doc.includes("`" + code + "`"), code);
});
