/**
 * The generic HTTP error form for Tessera's own routes:
 * `{"error":{"code":"TESSERA_ERR_…","message":"…"}}` with the kind's status.
 * Protocol front-ends install their own error forms on their routes.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { TesseraError, toTesseraError } from "../errors.js";

/** Maps Fastify's own errors (body limit, content type, JSON) to Tessera errors. */
export function fromFastifyError(err: FastifyError | Error): TesseraError {
  const code = (err as FastifyError).code;
  switch (code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new TesseraError("TESSERA_ERR_INPUT_TOO_LARGE", { cause: err });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new TesseraError("TESSERA_ERR_INPUT_CONTENT_TYPE", { cause: err });
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_VALIDATION":
      return new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail: err.message, cause: err });
  }
  const status = (err as FastifyError).statusCode;
  if (status === 404) return new TesseraError("TESSERA_ERR_NOT_FOUND");
  if (status !== undefined && status >= 400 && status < 500 && !(err instanceof TesseraError)) {
    return new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail: err.message, cause: err });
  }
  return toTesseraError(err);
}

/** Sends a TesseraError in the generic JSON form and logs it (warn for 4xx, error for 5xx). */
export function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  const err = error instanceof TesseraError ? error : fromFastifyError(error as Error);
  const status = err.status;
  const log = { code: err.code, detail: err.detail, url: request.url, method: request.method, err: status >= 500 ? err.cause ?? err : undefined };
  if (status >= 500) request.log.error(log, err.message);
  else request.log.warn(log, err.message);
  return reply.code(status).type("application/json").send({ error: { code: err.code, message: err.message } });
}
