/**
 * Writes a response byte for byte on the raw Node response, bypassing
 * Fastify's reply (which lower-cases header names). Device protocols need
 * this: libest compares header names case-sensitively, and firmware locates
 * the body by a `Content-Length` header it searches for as written.
 */
import type { FastifyReply } from "fastify";

/**
 * Sends `body` with exactly `headers` (keys in the case to send) plus an
 * exact `Content-Length`, never chunked. The reply is hijacked: Fastify's
 * onSend hooks do not run.
 */
export function sendRaw(reply: FastifyReply, status: number, headers: Record<string, string>, body: Buffer | string = ""): FastifyReply {
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  reply.hijack();
  const res = reply.raw;
  if (res.headersSent) return reply;
  res.writeHead(status, { ...headers, "Content-Length": String(bytes.length) });
  res.end(bytes);
  return reply;
}
