/**
 * Decoding the admin API's input (query strings, JSON bodies) and encoding
 * credentials for it. Every refusal is TESSERA_ERR_INPUT_MALFORMED (400) or
 * _CONTENT_TYPE (415) / _TOO_LARGE (413), with a message an operator can act on.
 */
import type { FastifyRequest } from "fastify";
import type { CredentialRecord } from "../authority/ports.js";
import { credentialState } from "../authority/bootstrap-credentials.js";
import { TesseraError } from "../errors.js";

/** Largest JSON body the admin API reads. */
export const MAX_BODY = 64 * 1024;

const bad = (message: string): never => {
  throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { message });
};

/**
 * The request's JSON object body. With `optional`, an empty body (a POST
 * that carries nothing, like a bare "approve") is `{}` whatever its type.
 */
export function decodeJsonBody(req: FastifyRequest, optional = false): Record<string, unknown> {
  const body = req.body as Buffer | undefined;
  if (!body || body.length === 0) {
    if (optional) return {};
    return bad("a JSON body is required");
  }
  if (body.length > MAX_BODY) throw new TesseraError("TESSERA_ERR_INPUT_TOO_LARGE", { detail: `${body.length} bytes` });
  const type = (req.headers["content-type"] ?? "").split(";", 1)[0]!.trim().toLowerCase();
  if (type !== "application/json") throw new TesseraError("TESSERA_ERR_INPUT_CONTENT_TYPE", { message: "send JSON with Content-Type: application/json", detail: type });
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return bad("the body is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return bad("the body must be a JSON object");
  return parsed as Record<string, unknown>;
}

/** Typed access to a query string; each getter refuses a malformed or repeated value. */
export interface Query {
  text(name: string): string | undefined;
  oneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined;
  int(name: string, min: number, max: number): number | undefined;
  date(name: string): Date | undefined;
  /** limit (1–500, default 50) and offset (≥ 0, default 0). */
  page(): { limit: number; offset: number };
}

/** Reads the request's query string. */
export function query(req: FastifyRequest): Query {
  const raw = req.query as Record<string, string | string[] | undefined>;
  const text = (name: string): string | undefined => {
    const v = raw[name];
    if (Array.isArray(v)) return bad(`${name} is given more than once`);
    return v === undefined || v === "" ? undefined : v;
  };
  const int = (name: string, min: number, max: number) => {
    const v = text(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) return bad(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
  return {
    text,
    int,
    oneOf<T extends string>(name: string, allowed: readonly T[]) {
      const v = text(name);
      if (v !== undefined && !allowed.includes(v as T)) return bad(`${name} must be one of ${allowed.join(", ")}`);
      return v as T | undefined;
    },
    date(name) {
      const v = text(name);
      if (v === undefined) return undefined;
      const t = Date.parse(v);
      return Number.isNaN(t) ? bad(`${name} must be an ISO 8601 date or time`) : new Date(t);
    },
    page: () => ({ limit: int("limit", 1, 500) ?? 50, offset: int("offset", 0, Number.MAX_SAFE_INTEGER) ?? 0 }),
  };
}

/** A credential as the API shows it: never its hash. */
export function credentialView(c: CredentialRecord, now: Date): Record<string, unknown> {
  return {
    id: c.id, kind: c.kind, name: c.name, scope: c.scope, useCount: c.useCount, maxUses: c.maxUses,
    expiresAt: c.expiresAt, revokedAt: c.revokedAt, createdAt: c.createdAt, state: credentialState(c, now),
  };
}
