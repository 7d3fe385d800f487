/**
 * /admin serves the built console with headers that keep it same-origin
 * (CSP, no framing, no sniffing), long-lived caching for hashed assets only,
 * and a page that says how to build it when it is missing.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import Fastify from "fastify";
import { registerConsole } from "./console.js";
import { tempDir } from "../test-support.js";

async function app(dir: string) {
  const a = Fastify();
  await registerConsole(a, dir);
  await a.ready();
  return a;
}

test("a built console: index at /admin/, assets cached immutably, CSP and anti-framing headers", async () => {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, "assets"));
  fs.writeFileSync(path.join(dir, "index.html"), "<!doctype html><title>console</title>");
  fs.writeFileSync(path.join(dir, "assets", "app-abc123.js"), "console.log(1)");
  const a = await app(dir);
  try {
    const redirect = await a.inject("/admin");
    assert.deepEqual([redirect.statusCode, redirect.headers.location], [302, "/admin/"]);
    const index = await a.inject("/admin/");
    assert.equal(index.statusCode, 200);
    assert.match(index.body, /<title>console<\/title>/);
    assert.match(String(index.headers["content-security-policy"]), /default-src 'self'.*frame-ancestors 'none'/);
    assert.equal(index.headers["x-content-type-options"], "nosniff");
    assert.equal(index.headers["x-frame-options"], "DENY");
    assert.equal(index.headers["cache-control"], "no-cache");
    const asset = await a.inject("/admin/assets/app-abc123.js");
    assert.equal(asset.statusCode, 200);
    assert.equal(asset.headers["cache-control"], "public, max-age=31536000, immutable");
    assert.equal((await a.inject("/admin/../package.json")).statusCode, 404);
    assert.equal((await a.inject("/admin/missing.js")).statusCode, 404);
  } finally {
    await a.close();
  }
});

test("no build: /admin/ says how to build it (503), nothing else is served", async () => {
  const a = await app(tempDir());
  try {
    const r = await a.inject("/admin/");
    assert.equal(r.statusCode, 503);
    assert.match(r.body, /npm run build:web/);
    assert.equal((await a.inject("/admin/assets/x.js")).statusCode, 404);
  } finally {
    await a.close();
  }
});
