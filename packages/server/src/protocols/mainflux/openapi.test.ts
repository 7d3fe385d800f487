/**
 * GET /openapi.json: the document describes exactly the routes the module
 * registers (walked with Fastify's onRoute hook), every operation's
 * responses name the status codes the API uses, and the server serves it.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify from "fastify";
import { mainfluxRoutes, type MainfluxRoutesDeps } from "./routes.js";
import { openApiDocument, openApiFragment } from "./openapi.js";
import { mainfluxServer } from "./test-kit.js";

const METHODS = ["get", "put", "post", "delete", "patch", "options", "head"];

/** "METHOD /path/{param}" for every route the module registers. */
async function registeredRoutes(): Promise<string[]> {
  const app = Fastify();
  const routes: string[] = [];
  app.addHook("onRoute", (r) => {
    // HEAD included: the module turns Fastify's implicit HEAD twins off, so any HEAD route would be its own.
    for (const method of [r.method].flat()) routes.push(`${method} ${r.url.replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`);
  });
  // register() never calls the dependencies.
  const { module } = mainfluxRoutes({} as MainfluxRoutesDeps);
  await module.register(app);
  await app.ready();
  await app.close();
  return routes.sort();
}

function documentedRoutes(doc: { paths: Record<string, unknown> }): string[] {
  const out: string[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(item)) if (METHODS.includes(method)) out.push(`${method.toUpperCase()} ${path}`);
  }
  return out.sort();
}

test("the OpenAPI document lists exactly the module's routes", async () => {
  const registered = await registeredRoutes();
  assert.ok(registered.includes("POST /certs") && registered.includes("GET /svccerts/things/{id}/serials"), registered.join(", "));
  assert.deepEqual(documentedRoutes(openApiFragment()), registered);
});

test("the document is OpenAPI 3.1: path parameters declared, responses and schemas resolvable", () => {
  const doc = openApiDocument() as { openapi: string; paths: Record<string, Record<string, any>>; components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> } };
  assert.equal(doc.openapi, "3.1.0");
  const refs = JSON.stringify(doc).match(/#\/components\/schemas\/[A-Za-z]+/g) ?? [];
  for (const ref of refs) assert.ok(doc.components.schemas[ref.split("/").pop()!], ref);
  for (const [path, item] of Object.entries(doc.paths)) {
    const params = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const method of Object.keys(item).filter((m) => METHODS.includes(m))) {
      const op = item[method];
      const declared = [...(item.parameters ?? []), ...(op.parameters ?? [])].filter((p: { in: string }) => p.in === "path").map((p: { name: string }) => p.name);
      assert.deepEqual(declared.sort(), params.sort(), `${method} ${path}`);
      assert.ok(Object.keys(op.responses).length > 0);
      for (const s of op.security ?? []) for (const name of Object.keys(s)) assert.ok(doc.components.securitySchemes[name], name);
    }
  }
});

test("GET /openapi.json serves it without authentication", async () => {
  const k = await mainfluxServer();
  try {
    const r = await k.req("GET", "/openapi.json");
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/json");
    // The listener merges the JSON APIs it mounts (here also the admin API): every one of ours is there, unchanged.
    const served = r.json as { paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } };
    const ours = JSON.parse(JSON.stringify(openApiFragment())) as { paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } };
    for (const [path, item] of Object.entries(ours.paths)) assert.deepEqual(served.paths[path], item, path);
    for (const [name, schema] of Object.entries(ours.components.schemas)) assert.deepEqual(served.components.schemas[name], schema, name);
    assert.ok(served.paths["/openapi.json"]);
  } finally {
    await k.close();
  }
});
