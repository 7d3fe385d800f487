/**
 * GET /openapi.json on a listener: one OpenAPI 3.1 document merged from the
 * fragments of the modules mounted there (the Mainflux certs API, the admin
 * API), so a client generator sees every JSON API the listener serves.
 */
import type { FastifyInstance } from "fastify";
import { sendRaw } from "./raw-reply.js";

/** A module's part of the document: paths, components, and a paragraph for the description. */
export interface OpenApiFragment {
  title: string;
  description: string;
  paths: Record<string, unknown>;
  components?: { schemas?: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
}

const SELF = {
  get: {
    operationId: "openApi",
    summary: "This document",
    security: [],
    responses: { "200": { description: "OpenAPI 3.1", content: { "application/json": { schema: { type: "object" } } } } },
  },
};

/** Merges fragments into one document; a path or component name given twice is a programming error. */
export function mergeOpenApi(fragments: readonly OpenApiFragment[]): Record<string, unknown> {
  const paths: Record<string, unknown> = { "/openapi.json": SELF };
  const schemas: Record<string, unknown> = {};
  const securitySchemes: Record<string, unknown> = {};
  const into = (target: Record<string, unknown>, source: Record<string, unknown> | undefined, what: string) => {
    for (const [k, v] of Object.entries(source ?? {})) {
      if (k in target && JSON.stringify(target[k]) !== JSON.stringify(v)) throw new Error(`OpenAPI: ${what} ${k} defined twice`);
      target[k] = v;
    }
  };
  for (const f of fragments) {
    into(paths, f.paths, "path");
    into(schemas, f.components?.schemas, "schema");
    into(securitySchemes, f.components?.securitySchemes, "security scheme");
  }
  return {
    openapi: "3.1.0",
    info: {
      title: fragments.length === 1 ? `Tessera: ${fragments[0]!.title}` : "Tessera APIs",
      version: "1",
      description: fragments.map((f) => (fragments.length === 1 ? f.description : `**${f.title}.** ${f.description}`)).join("\n\n"),
    },
    paths,
    components: { securitySchemes, schemas },
  };
}

/** Registers GET /openapi.json serving the merged document (no authentication; it holds no secrets). */
export function registerOpenApi(app: FastifyInstance, fragments: readonly OpenApiFragment[]): void {
  const body = JSON.stringify(mergeOpenApi(fragments));
  app.get("/openapi.json", { exposeHeadRoute: false }, async (_req, reply) => sendRaw(reply, 200, { "Content-Type": "application/json" }, body));
}
