/**
 * imprint's wire format (../shared/spec/imprint.md §1–2): request bodies
 * decoded the way Go's json.Decoder reads them into a struct of strings,
 * success bodies as Go's json.Encoder writes them, and errors as Go's
 * http.Error writes them (plain text plus a newline). Existing clients print
 * these bodies, so the texts are part of the protocol.
 */
import { randomBytes } from "node:crypto";
import type { FastifyReply } from "fastify";
import { pemDecodeFirst } from "@tessera/pki";

/** The plain-text error bodies of the original server (without the trailing newline). */
export const IMPRINT_ERRORS = {
  methodNotAllowed: "method not allowed",
  invalidBody: "invalid request body",
  missingEnrollFields: "missing required fields: build_secret, fingerprint, csr",
  missingCsr: "missing required field: csr",
  missingChallengeFields: "missing required fields",
  unauthorized: "unauthorized",
  invalidCsr: "invalid CSR",
  clientCertRequired: "client certificate required",
  challengeFailed: "challenge renewal failed",
  internal: "internal error",
  // Tessera's own answers, for outcomes the original never produced.
  enrollmentDenied: "enrollment denied",
  enrollmentRejected: "enrollment rejected",
  conflict: "concurrent request for this device; try again",
  unavailable: "service unavailable",
} as const;

/** Longest accepted value per field: generous for PEM, tight for identifiers (the original had no bound, W12). */
const FIELD_LIMITS: Record<string, number> = {
  build_secret: 1024,
  fingerprint: 512,
  hostname: 255,
  os: 64,
  arch: 64,
  server_id: 64,
  csr: 16_384,
  expired_cert: 16_384,
  proof: 2048,
};

const WS = new Set([" ", "\t", "\n", "\r"]);

/**
 * Finds the end of the JSON object starting at `start` (the index after its
 * closing brace), or -1 if it does not close. Strings are skipped with their
 * escapes so braces inside them do not count.
 */
function objectEnd(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
    } else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/**
 * Decodes a request body into the named string fields as Go's json.Decoder
 * would: only the first JSON value is read (trailing bytes ignored), keys
 * match exactly or else case-insensitively, unknown keys are ignored, `null`
 * (for the body or a field) leaves fields empty. Returns undefined where Go
 * fails (empty body, not JSON, a field that is not a string), and also for a
 * field longer than Tessera accepts.
 */
export function decodeGoJson<F extends string>(body: Buffer | undefined, fields: readonly F[]): Record<F, string> | undefined {
  const out = Object.fromEntries(fields.map((f) => [f, ""])) as Record<F, string>;
  const text = body ? body.toString("utf8") : "";
  let i = 0;
  while (i < text.length && WS.has(text[i]!)) i++;
  if (text.startsWith("null", i)) return out;
  if (text[i] !== "{") return undefined;
  const end = objectEnd(text, i);
  if (end < 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.slice(i, end));
  } catch {
    return undefined;
  }
  const lower = new Map(fields.map((f) => [f.toLowerCase(), f]));
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    const field = (fields as readonly string[]).includes(key) ? (key as F) : lower.get(key.toLowerCase());
    if (field === undefined || value === null) continue;
    if (typeof value !== "string") return undefined;
    if (value.length > (FIELD_LIMITS[field] ?? 16_384)) return undefined;
    out[field] = value;
  }
  return out;
}

/** The DER of the first PEM block anywhere in `text`, whatever its label (as Go's pem.Decode), or undefined. */
export function firstPemBlock(text: string): Buffer | undefined {
  try {
    return pemDecodeFirst(text).der;
  } catch {
    return undefined;
  }
}

/**
 * A new server id: 16 random bytes with the UUIDv4 version and variant bits,
 * as "srv_" + 32 lowercase hex digits (spec §3).
 */
export function newServerId(random: (n: number) => Buffer = randomBytes): string {
  const b = random(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return "srv_" + b.toString("hex");
}

/** Sends an error the way Go's http.Error does. */
export function sendText(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply
    .code(status)
    .type("text/plain; charset=utf-8")
    .header("x-content-type-options", "nosniff")
    .send(message + "\n");
}

/** Sends the EnrollmentResponse every successful call returns: compact JSON, keys in Go's order, one newline. */
export function sendEnrollment(reply: FastifyReply, body: { serverId: string; certificate: string; caCertificate: string }): FastifyReply {
  const json = JSON.stringify({ server_id: body.serverId, certificate: body.certificate, ca_certificate: body.caCertificate });
  // Exactly "application/json", as Go sets it: Fastify adds a charset to a JSON string body, not to bytes.
  return reply.code(200).header("content-type", "application/json").send(Buffer.from(json + "\n", "utf8"));
}

/** RFC 3339 UTC with whole seconds, as Go formats time.Time with time.RFC3339. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}
