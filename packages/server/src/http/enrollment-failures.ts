/**
 * Counts failed enrollments for the console's fleet health (docs/admin-api.md):
 * any 4xx/5xx answer to an enrollment or renewal call of a protocol, by
 * protocol and error code, kept in the store (not scraped from logs),
 * counted in memory and written as sums (FailureCounter). An
 * EST 401 to a request without credentials is the first leg of HTTP Basic
 * (RFC 7030 §3.2.3), not a failure, so it is not counted.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";

/** A failed enrollment as the listener saw it. */
export interface EnrollmentFailure {
  protocol: string;
  /** TESSERA_ERR_* when the failure carried a typed error, else "http_<status>". */
  code: string;
  status: number;
}

const EST = /^\/\.well-known\/est\/(?:[^/]+\/)?(?:simpleenroll|simplereenroll|serverkeygen)\/?$/;
const LITEBOOT = /^(?:\/api\/v1)?\/(?:cr|p10cr|kur)\/?$/;
const IMPRINT = /^\/api\/v1\/(?:enroll|renew|renew\/challenge)\/?$/;
const CARAMEL = /^\/+[0-9a-fA-F]{64}$/;
const MAINFLUX = /^\/certs(?:\/[^/]+(?:\/rotate)?)?\/?$/;

/** The protocol of an enrollment or renewal call, or undefined for anything else. */
export function enrollmentProtocol(method: string, url: string): string | undefined {
  const path = url.split("?", 1)[0]!;
  if (method === "POST") {
    if (EST.test(path)) return "est";
    if (IMPRINT.test(path)) return "imprint";
    if (LITEBOOT.test(path)) return "liteboot";
    if (CARAMEL.test(path)) return "caramel";
    if (MAINFLUX.test(path) && (path === "/certs" || path.endsWith("/rotate"))) return "mainflux";
  }
  if (method === "PUT" && MAINFLUX.test(path) && path !== "/certs") return "mainflux";
  return undefined;
}

const codes = new WeakMap<FastifyRequest, string>();

/**
 * Records why a protocol refused a request, for the failure counter: the
 * protocols write their own wire errors (so the error never reaches
 * Fastify), and their refusal reasons start with the core's code when a
 * core error caused them ("TESSERA_ERR_CREDENTIAL_INVALID: …"). Reasons
 * without one leave the counter at "http_<status>".
 */
export function noteRefusal(request: FastifyRequest, reason: string | undefined, code?: string): void {
  const found = code ?? /^(TESSERA_ERR_[A-Z0-9_]+)/.exec(reason ?? "")?.[1];
  if (found) codes.set(request, found);
}

/** Installs hooks on `app` that call `record` once per failed enrollment answer. */
export function trackEnrollmentFailures(app: FastifyInstance, record: (f: EnrollmentFailure) => void): void {
  app.addHook("onError", async (request, _reply, err) => {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("TESSERA_ERR_")) codes.set(request, code);
  });
  app.addHook("onResponse", async (request, reply) => {
    const status = reply.statusCode;
    if (status < 400) return;
    const protocol = enrollmentProtocol(request.method, request.url);
    if (!protocol) return;
    if (status === 401 && protocol === "est" && request.headers.authorization === undefined) return;
    record({ protocol, code: codes.get(request) ?? `http_${status}`, status });
  });
}

/** Where FailureCounter writes its sums. */
export interface FailureSink {
  recordFailure(protocol: string, code: string, at: Date, count: number): Promise<void>;
}

/**
 * Failed enrollments counted in memory and written as sums, one upsert per
 * (UTC day, protocol, code) every `flushMs`: a flood of bad requests (a
 * misconfigured fleet, a scanner) then costs the store a few writes a
 * second, not one commit per refusal. Counts not yet written are lost only
 * if the process dies without closing; a failed write keeps its counts for
 * the next flush. Readers in this process call flush() first (the console's
 * health page does), so what they see is exact.
 */
export class FailureCounter {
  /** By "UTC day, protocol, code": the first failure's time (it names the day) and the count. */
  private pending = new Map<string, { at: Date; protocol: string; code: string; count: number }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly sink: FailureSink,
    private readonly now: () => Date,
    private readonly onError: (err: unknown) => void,
    private readonly flushMs = 2_000,
  ) {}

  /** Counts one failure; the write follows within flushMs. */
  note(f: Pick<EnrollmentFailure, "protocol" | "code">): void {
    const at = this.now();
    const key = `${at.toISOString().slice(0, 10)}\0${f.protocol}\0${f.code}`;
    const entry = this.pending.get(key);
    if (entry) entry.count++;
    else this.pending.set(key, { at, protocol: f.protocol, code: f.code, count: 1 });
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.flushMs).unref();
  }

  /** Writes every count noted so far (after any write already under way). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = (async () => {
      for (const [key, e] of batch) {
        try {
          await this.sink.recordFailure(e.protocol, e.code, e.at, e.count);
        } catch (err) {
          // Keep the count for the next flush rather than lose it.
          const again = this.pending.get(key);
          if (again) again.count += e.count;
          else this.pending.set(key, e);
          this.onError(err);
          this.schedule();
        }
      }
    })().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
