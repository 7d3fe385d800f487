/**
 * The webhook worker: claims due messages from the persisted outbox, POSTs
 * each as signed JSON to the configured URL and records the outcome: a 2xx
 * completes it, anything else (status, timeout, network error) schedules a
 * retry with capped exponential backoff and jitter, until `maxAttempts` is
 * reached and it is marked dead. Delivery is at least once (a crash after a
 * send but before recording it sends again once the lease runs out);
 * receivers deduplicate on X-Tessera-Delivery. See docs/webhooks.md.
 */
import { readFileSync } from "node:fs";
import type { OutboxRecord, Store } from "../authority/ports.js";
import { systemClock, type Clock } from "../authority/runtime.js";
import type { WebhookConfig } from "../config/types.js";
import { TesseraError } from "../errors.js";
import { signWebhook } from "./signature.js";
import { backoffDelay } from "../authority/backoff.js";
import { IDLE_POLLER, positiveInt, startOutboxPoller, type ConsumerLog, type OutboxPoller } from "../outbox/poller.js";

export { signWebhook, verifyWebhookSignature } from "./signature.js";

/** The logger the worker writes to (pino's Logger fits). */
export type WebhookLog = ConsumerLog;

/** Options for startWebhookWorker. */
export interface WebhookWorkerOptions {
  /** The `[webhook]` configuration; with `url` null no worker runs. */
  config: WebhookConfig;
  /** The outbox part of the store. */
  store: Pick<Store, "claimOutbox" | "completeOutbox" | "failOutbox">;
  /** Time for scheduling, leases and X-Tessera-Timestamp (default: system clock). Per-attempt timeouts use real time. */
  clock?: Clock;
  log: WebhookLog;
  /** HTTP client (default: the global fetch); for tests. */
  fetch?: typeof globalThis.fetch;
  /** Poll the outbox on a timer (default true); false: only `runOnce` sends, for tests. */
  poll?: boolean;
  /** Milliseconds between polls while the outbox has nothing due (default 1000). */
  pollInterval?: number;
  /** Messages claimed per pass and sent concurrently (default 10). */
  batchSize?: number;
  /** Uniform random number in [0, 1) for backoff jitter (default Math.random). */
  random?: () => number;
}

/** A running webhook worker. */
export type WebhookWorker = OutboxPoller;

/** First retry delay, milliseconds. */
export const RETRY_BASE_MS = 5_000;
/** Longest retry delay before jitter, milliseconds (1 hour). */
export const RETRY_CAP_MS = 3_600_000;
/** Jitter: the delay is scaled by a random factor in [1 − JITTER, 1 + JITTER). */
export const RETRY_JITTER = 0.2;

/** Most characters of an error (and of a refusing receiver's body) kept in the outbox row. */
const MAX_ERROR_LENGTH = 500;

/**
 * Milliseconds to wait after failed attempt number `attempt` (1-based):
 * min(5 s × 2^(attempt − 1), 1 h), scaled by a random factor in [0.8, 1.2)
 * so receivers that come back are not hit by every replica at once.
 */
export function webhookRetryDelay(attempt: number, random: () => number = Math.random): number {
  return backoffDelay(attempt, { baseMs: RETRY_BASE_MS, capMs: RETRY_CAP_MS, jitter: RETRY_JITTER }, random);
}

/** The JSON body of one delivery. */
export function webhookBody(m: OutboxRecord): string {
  return JSON.stringify({ id: m.id, event: m.topic, created_at: m.createdAt.toISOString(), data: m.payload });
}

/**
 * Reads the signing key: the secret file's contents with surrounding
 * whitespace (a trailing newline) removed. Throws TESSERA_ERR_CONFIG_INVALID
 * when the file is unset, unreadable or empty.
 */
export function readWebhookSecret(secretFile: string | null): Buffer {
  if (secretFile === null) throw new TesseraError("TESSERA_ERR_CONFIG_INVALID", { detail: "webhook.url is set but webhook.secret_file is not" });
  let text: string;
  try {
    text = readFileSync(secretFile, "utf8").trim();
  } catch (err) {
    throw new TesseraError("TESSERA_ERR_CONFIG_INVALID", { detail: `webhook.secret_file ${secretFile}: ${err instanceof Error ? err.message : String(err)}`, cause: err });
  }
  if (text.length === 0) throw new TesseraError("TESSERA_ERR_CONFIG_INVALID", { detail: `webhook.secret_file ${secretFile} is empty` });
  return Buffer.from(text, "utf8");
}

/**
 * Starts the webhook worker for `config`, or returns a no-op worker when
 * `config.url` is null. Reads the secret file once, now (throws
 * TESSERA_ERR_CONFIG_INVALID if it is missing or empty). Each pass claims up
 * to `batchSize` due messages of the outbox's "webhook" channel (other
 * channels, e.g. the bus events, belong to other consumers) with a lease of
 * 2 × timeout + 30 s, so a replica that dies mid-send releases them to the
 * others; only topics in `config.events` are sent, the others are completed
 * unsent.
 */
export function startWebhookWorker(options: WebhookWorkerOptions): WebhookWorker {
  const { config, store, log } = options;
  const url = config.url;
  if (url === null) return IDLE_POLLER;
  const secret = readWebhookSecret(config.secretFile);
  const clock = options.clock ?? systemClock;
  const fetchFn = options.fetch ?? globalThis.fetch;
  const random = options.random ?? Math.random;
  const batchSize = positiveInt(options.batchSize ?? 10, "webhook worker batchSize");
  const pollInterval = positiveInt(options.pollInterval ?? 1000, "webhook worker pollInterval");
  const timeoutMs = Math.max(1, Math.round(config.timeout * 1000));
  const leaseMs = 2 * timeoutMs + 30_000;
  const events = new Set(config.events);

  /** POSTs one message; resolves to undefined on a 2xx, else to why it failed. */
  async function send(m: OutboxRecord): Promise<string | undefined> {
    const body = webhookBody(m);
    const timestamp = String(Math.floor(clock.now().getTime() / 1000));
    try {
      const res = await fetchFn(url as string, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "User-Agent": "Tessera-Webhook",
          "X-Tessera-Event": m.topic,
          "X-Tessera-Delivery": m.id,
          "X-Tessera-Timestamp": timestamp,
          "X-Tessera-Signature": signWebhook(secret, timestamp, body),
        },
        body,
        // A redirect is a misconfiguration to fix, not a reason to POST the event elsewhere.
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel().catch(() => undefined);
        return undefined;
      }
      const text = (await readPrefix(res, 200)).replace(/\s+/g, " ").trim();
      return `HTTP ${res.status}${text ? `: ${text}` : ""}`;
    } catch (err) {
      return describeFetchError(err, config.timeout);
    }
  }

  async function handle(m: OutboxRecord): Promise<void> {
    const ids = { delivery: m.id, event: m.topic, attempt: m.attempts };
    try {
      if (!events.has(m.topic)) {
        await store.completeOutbox(m.id, clock.now());
        log.debug(ids, "webhook: event not in webhook.events, completed without sending");
        return;
      }
      const failure = await send(m);
      if (failure === undefined) {
        await store.completeOutbox(m.id, clock.now());
        log.debug(ids, "webhook delivered");
        return;
      }
      const error = failure.slice(0, MAX_ERROR_LENGTH);
      if (m.attempts >= config.maxAttempts) {
        await store.failOutbox(m.id, error, null);
        log.error({ ...ids, error }, `webhook delivery given up after ${m.attempts} attempts`);
        return;
      }
      const next = new Date(clock.now().getTime() + webhookRetryDelay(m.attempts, random));
      await store.failOutbox(m.id, error, next);
      log.warn({ ...ids, error, nextAttemptAt: next.toISOString() }, "webhook delivery failed, will retry");
    } catch (err) {
      // The store failed to record the outcome: the lease runs out and the message is tried again.
      log.warn({ ...ids, err }, "webhook: cannot record delivery outcome");
    }
  }

  async function pass(): Promise<number> {
    const now = clock.now();
    const batch = await store.claimOutbox(now, new Date(now.getTime() + leaseMs), batchSize, "webhook");
    await Promise.all(batch.map(handle));
    return batch.length;
  }

  // A full batch suggests more is due: go again at once.
  return startOutboxPoller({ pass, again: (n) => n >= batchSize, pollInterval, poll: options.poll, log, name: "webhook" });
}

/** Reads at most `max` bytes of a response body as text and drops the rest. */
async function readPrefix(res: Response, max: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < max) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // A body cut short (timeout, reset) still leaves the status to report.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, max).toString("utf8");
}

/** Turns a fetch rejection into a short reason for the outbox row. */
function describeFetchError(err: unknown, timeoutSeconds: number): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return `timeout after ${timeoutSeconds} s`;
  if (err instanceof Error) {
    const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
    const detail = typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : err.message;
    return `network error: ${detail}`;
  }
  return `network error: ${String(err)}`;
}
