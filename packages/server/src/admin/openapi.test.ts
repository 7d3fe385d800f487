/**
 * The admin API's OpenAPI fragment lists exactly the routes the module
 * registers, and the listener's /openapi.json carries it next to the
 * Mainflux API's paths.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify from "fastify";
import { adminRoutes, ADMIN_API, type AdminRoutesDeps } from "./routes.js";
import { adminOpenApi } from "./openapi.js";
import { tempDir, startTestServer, request } from "../test-support.js";

const METHODS = ["get", "put", "post", "delete", "patch"];

test("the fragment documents exactly the API's routes, each with its path parameters", async () => {
  const app = Fastify();
  const routes: string[] = [];
  app.addHook("onRoute", (r) => {
    if (!r.url.startsWith(ADMIN_API)) return;
    for (const m of [r.method].flat()) if (m !== "HEAD") routes.push(`${m} ${r.url.replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`);
  });
  // register() never calls the dependencies; an empty console dir serves the "not built" page.
  await adminRoutes({ consoleDir: tempDir() } as AdminRoutesDeps).register(app);
  await app.ready();
  await app.close();
  const doc = adminOpenApi();
  const documented: string[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    const params = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const method of Object.keys(item).filter((k) => METHODS.includes(k))) {
      documented.push(`${method.toUpperCase()} ${path}`);
      const declared = [...(item.parameters ?? []), ...(item[method].parameters ?? [])].filter((p: { in: string }) => p.in === "path").map((p: { name: string }) => p.name);
      assert.deepEqual(declared.sort(), params.sort(), `${method} ${path}`);
    }
  }
  assert.ok(routes.length >= 25, routes.join(", "));
  assert.deepEqual(documented.sort(), routes.sort());
  const refs = JSON.stringify(doc).match(/#\/components\/schemas\/[A-Za-z]+/g) ?? [];
  for (const ref of refs) assert.ok(doc.components?.schemas?.[ref.split("/").pop()!], ref);
});

test("GET /openapi.json on the main listener merges the admin API with the Mainflux API", async () => {
  const { server } = await startTestServer();
  try {
    const r = await request(server, "/openapi.json");
    assert.equal(r.status, 200);
    const doc = JSON.parse(r.text) as { openapi: string; paths: Record<string, unknown>; components: { securitySchemes: Record<string, unknown> } };
    assert.equal(doc.openapi, "3.1.0");
    assert.ok(doc.paths[`${ADMIN_API}/devices`] && doc.paths["/certs"] && doc.paths["/openapi.json"]);
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ["bearer", "session", "thingKey"]);
  } finally {
    await server.close(100);
  }
});
