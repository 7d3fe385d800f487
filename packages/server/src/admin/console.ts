/**
 * Serves the web console (packages/web, built by `npm install` into
 * packages/web/dist) at /admin/: static files only, with headers that keep
 * the page from being framed, sniffed or given scripts from elsewhere. When
 * the console has not been built, /admin/ says how to build it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { FastifyInstance } from "fastify";
import fastifyStatic from "@fastify/static";
import { REPO_ROOT } from "../paths.js";

/** Where `npm install` builds the console (packages/web/dist in this repository). */
export const DEFAULT_CONSOLE_DIR = path.join(REPO_ROOT, "packages/web/dist");

/** Same-origin only; no inline scripts; no framing (clickjacking). */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tessera console</title></head>
<body><main><h1>Tessera console not built</h1><p>Run <code>npm run build:web</code> (or <code>npm install</code>) in the Tessera checkout, then reload.
The admin API at <code>/admin/api/v1</code> works without it.</p></main></body></html>`;

/** Registers /admin (redirect) and /admin/* (the built files). */
export async function registerConsole(app: FastifyInstance, dir: string): Promise<void> {
  app.get("/admin", { exposeHeadRoute: false }, async (_req, reply) => reply.redirect("/admin/", 302));
  const built = fs.existsSync(path.join(dir, "index.html"));
  if (!built) {
    app.get("/admin/", async (_req, reply) => reply.code(503).headers(SECURITY_HEADERS).type("text/html; charset=utf-8").send(NOT_BUILT));
    return;
  }
  await app.register(async (scope) => {
    scope.addHook("onSend", async (_req, reply, payload) => {
      reply.headers(SECURITY_HEADERS);
      // index.html names the hashed assets: always revalidate it; the assets themselves never change.
      const url = _req.url.split("?", 1)[0]!;
      reply.header("cache-control", url.startsWith("/admin/assets/") ? "public, max-age=31536000, immutable" : "no-cache");
      return payload;
    });
    await scope.register(fastifyStatic, { root: dir, prefix: "/admin/", decorateReply: false, index: ["index.html"], wildcard: true, cacheControl: false });
  });
}
