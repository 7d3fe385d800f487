/**
 * The bus publisher: delivers the outbox's "bus" channel (certificate
 * rotation events) to NATS or MQTT, as Mainflux's certs service does
 * (docs/events.md, spec mainflux.md §3). Rotation stores its event with the
 * new certificate in one transaction (rotationOutboxMessage), so an event is
 * never lost: the publisher claims due rows, publishes each as a
 * protomfx.Command on `things.<id>.commands.cert-rotation` (NATS) or
 * `things/<id>/commands/cert-rotation` (MQTT), completes it once the broker
 * confirmed it and otherwise retries with capped backoff, forever: a broker
 * outage delays events, it never drops them. Delivery is at least once (a
 * crash between publishing and recording it publishes again once the lease
 * runs out) and in order per thing (the outbox's ordering key: a thing's
 * next event waits until the previous one is delivered).
 */
import type { OutboxMessage, OutboxRecord, Store } from "../authority/ports.js";
import { systemClock, type Clock } from "../authority/runtime.js";
import type { MainfluxConfig } from "../config/types.js";
import { TesseraError } from "../errors.js";
import { encodeCommand } from "./command.js";
import { connectBus, DEFAULT_BUS_URL, isValidThingToken, rotationSubject, type BusConnection, type BusConnector, type BusKind } from "./transport.js";
import { backoffDelay } from "../authority/backoff.js";
import { IDLE_POLLER, positiveInt, startOutboxPoller, type ConsumerLog, type OutboxPoller } from "../outbox/poller.js";

export { decodeCommand, encodeCommand, type Command } from "./command.js";
export { DEFAULT_BUS_URL, isValidThingToken, rotationSubject, type BusConnection, type BusConnector, type BusKind } from "./transport.js";

/** Outbox topic of rotation events. */
export const ROTATION_TOPIC = "thing.cert-rotation";

/** The CertEvent JSON of a rotation (spec §3), in the spec's field order. */
export interface CertEvent {
  thing_id: string;
  client_cert: string;
  /** The new private key (PEM); sent only with `include_private_key`. */
  client_key?: string;
  issuing_ca: string;
  ca_chain: string[];
  serial: string;
  /** RFC 3339. */
  expires_at: string;
}

/** The logger the publisher writes to (pino's Logger fits). */
export type BusLog = ConsumerLog;

/** Options for startBusPublisher. */
export interface BusPublisherOptions {
  /** `[mainflux.events]`; with bus "none" no publisher runs. */
  config: MainfluxConfig["events"];
  /** The outbox part of the store. */
  store: Pick<Store, "claimOutbox" | "completeOutbox" | "failOutbox">;
  /** Time for leases, backoff and nothing else (default: system clock). Timeouts use real time. */
  clock?: Clock;
  log: BusLog;
  /** Poll the outbox on a timer (default true); false: only `runOnce` publishes, for tests. */
  poll?: boolean;
  /** Milliseconds between polls while nothing is due (default 1000). */
  pollInterval?: number;
  /** Messages claimed per pass and published concurrently (default 50; one per thing at a time). */
  batchSize?: number;
  /** Milliseconds allowed to connect, and to have one message confirmed (default 10 000). */
  timeout?: number;
  /** Uniform random number in [0, 1) for backoff jitter (default Math.random). */
  random?: () => number;
  /** Opens broker connections (default: the real NATS and MQTT clients); for tests. */
  connect?: BusConnector;
}

/** A running bus publisher (stop() also closes the broker connection). */
export type BusPublisher = OutboxPoller;

/** First retry delay, milliseconds. */
export const BUS_RETRY_BASE_MS = 1_000;
/** Longest retry delay before jitter, milliseconds: once the broker is back, events flow again within about a minute. */
export const BUS_RETRY_CAP_MS = 60_000;
/** Jitter: the delay is scaled by a random factor in [1 − JITTER, 1 + JITTER). */
export const BUS_RETRY_JITTER = 0.2;

/** Most characters of an error kept in the outbox row. */
const MAX_ERROR_LENGTH = 500;

/**
 * Milliseconds to wait after failed attempt number `attempt` (1-based):
 * min(1 s × 2^(attempt − 1), 60 s), scaled by a random factor in [0.8, 1.2).
 * Bus events are never given up (a dead event would leave a device with a
 * certificate it was never told about), so the cap is low.
 */
export function busRetryDelay(attempt: number, random: () => number = Math.random): number {
  return backoffDelay(attempt, { baseMs: BUS_RETRY_BASE_MS, capMs: BUS_RETRY_CAP_MS, jitter: BUS_RETRY_JITTER }, random);
}

/**
 * The outbox message of a rotation event, for `authority.issue({ outbox })`
 * so it is stored in the same transaction as the new certificate: channel
 * "bus", ordering key the thing id, payload `{ thing_id, event }`. The
 * private key is kept out of the stored row unless `includePrivateKey`
 * (pass `[mainflux.events] include_private_key`): delivered rows stay in the
 * database, and a key that will not be sent should not sit there.
 */
export function rotationOutboxMessage(thingId: string, event: CertEvent, options: { includePrivateKey?: boolean } = {}): OutboxMessage {
  const { client_key: key, ...rest } = event;
  const stored: CertEvent = {
    thing_id: rest.thing_id,
    client_cert: rest.client_cert,
    ...(options.includePrivateKey === true && key !== undefined ? { client_key: key } : {}),
    issuing_ca: rest.issuing_ca,
    ca_chain: [...rest.ca_chain],
    serial: rest.serial,
    expires_at: rest.expires_at,
  };
  return { topic: ROTATION_TOPIC, channel: "bus", orderingKey: thingId, payload: { thing_id: thingId, event: stored } };
}

/**
 * The bytes published for an outbox row: a protomfx.Command with
 * publisher = the thing id, payload = the CertEvent JSON (without
 * `client_key` unless `includePrivateKey`), protocol "certs" and created =
 * the row's creation time in nanoseconds (stable across retries, so a
 * repeated delivery is byte-identical). Throws TESSERA_ERR_INPUT_MALFORMED
 * for a payload that is not `{ thing_id, event }` or a thing id that cannot
 * be a subject token.
 */
export function rotationCommand(m: Pick<OutboxRecord, "payload" | "createdAt">, includePrivateKey: boolean): { thingId: string; bytes: Buffer } {
  const { thing_id: thingId, event } = m.payload;
  if (typeof thingId !== "string" || !isValidThingToken(thingId)) {
    throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail: `bus event: thing_id ${JSON.stringify(thingId)} cannot be a subject token` });
  }
  if (typeof event !== "object" || event === null || Array.isArray(event)) {
    throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail: "bus event: payload.event is not an object" });
  }
  const { client_key: key, ...rest } = event as Record<string, unknown>;
  const body = includePrivateKey && key !== undefined ? (event as Record<string, unknown>) : rest;
  const bytes = encodeCommand({
    publisher: thingId,
    payload: Buffer.from(JSON.stringify(body), "utf8"),
    protocol: "certs",
    created: BigInt(m.createdAt.getTime()) * 1_000_000n,
  });
  return { thingId, bytes };
}

/**
 * Starts the bus publisher for `config`, or returns a no-op one when
 * `config.bus` is "none". Connects lazily (on the first due event) to
 * `config.url` (default nats://127.0.0.1:4222 or mqtt://127.0.0.1:1883) and
 * reconnects after any failure. Each pass claims up to `batchSize` rows of
 * channel "bus" with a lease of 2 × timeout + 30 s, publishes them
 * concurrently (the outbox hands out one row per thing at a time), completes
 * the confirmed ones and schedules the rest for a retry. A row that can never
 * be published (malformed payload, thing id unusable as a subject token) is
 * marked dead and logged as an error, so it does not hold its thing's later
 * events back.
 */
export function startBusPublisher(options: BusPublisherOptions): BusPublisher {
  const { config, store, log } = options;
  if (config.bus === "none") return IDLE_POLLER;
  const kind: BusKind = config.bus;
  const url = config.url ?? DEFAULT_BUS_URL[kind];
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const connector = options.connect ?? connectBus;
  const batchSize = positiveInt(options.batchSize ?? 50, "bus publisher batchSize");
  const pollInterval = positiveInt(options.pollInterval ?? 1000, "bus publisher pollInterval");
  const timeoutMs = positiveInt(options.timeout ?? 10_000, "bus publisher timeout");
  const leaseMs = 2 * timeoutMs + 30_000;
  const shownUrl = url.replace(/\/\/[^@/]*@/, "//…@");

  let connection: BusConnection | undefined;
  /** Whether the last connection attempt failed (logs the outage once, and the recovery). */
  let down = false;

  /** The open connection, or a new one; throws when the broker cannot be reached. */
  async function openConnection(): Promise<BusConnection> {
    if (connection?.usable) return connection;
    if (connection) void connection.close();
    connection = undefined;
    try {
      connection = await connector(kind, url, timeoutMs);
    } catch (err) {
      if (!down) log.warn({ bus: kind, url: shownUrl, error: describe(err) }, "bus: cannot connect; events stay in the outbox until it is back");
      down = true;
      throw err;
    }
    if (down) log.info({ bus: kind, url: shownUrl }, "bus: connected again");
    else log.debug({ bus: kind, url: shownUrl }, "bus: connected");
    down = false;
    return connection;
  }

  async function handle(m: OutboxRecord, conn: BusConnection | Error): Promise<void> {
    const ids = { event: m.id, thingId: m.orderingKey, attempt: m.attempts };
    try {
      let command: { thingId: string; bytes: Buffer };
      try {
        command = rotationCommand(m, config.includePrivateKey);
      } catch (err) {
        const error = describe(err).slice(0, MAX_ERROR_LENGTH);
        await store.failOutbox(m.id, error, null);
        log.error({ ...ids, error }, "bus: event cannot be published, marked dead");
        return;
      }
      let failure: string | undefined;
      if (conn instanceof Error) failure = `cannot connect: ${describe(conn)}`;
      else {
        try {
          await conn.publish(rotationSubject(kind, command.thingId), command.bytes);
        } catch (err) {
          failure = `publish failed: ${describe(err)}`;
        }
      }
      if (failure === undefined) {
        await store.completeOutbox(m.id, clock.now());
        log.debug({ ...ids, subject: rotationSubject(kind, command.thingId) }, "bus: event published");
        return;
      }
      const error = failure.slice(0, MAX_ERROR_LENGTH);
      const next = new Date(clock.now().getTime() + busRetryDelay(m.attempts, random));
      await store.failOutbox(m.id, error, next);
      log.warn({ ...ids, error, nextAttemptAt: next.toISOString() }, "bus: event not published, will retry");
    } catch (err) {
      // The store failed to record the outcome: the lease runs out and the event is tried again.
      log.warn({ ...ids, err }, "bus: cannot record publish outcome");
    }
  }

  async function pass(): Promise<number> {
    const now = clock.now();
    const batch = await store.claimOutbox(now, new Date(now.getTime() + leaseMs), batchSize, "bus");
    if (batch.length === 0) return 0;
    const conn = await openConnection().catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    await Promise.all(batch.map((m) => handle(m, conn)));
    // A failed publish marks the connection unusable; close it now rather than at the next pass.
    if (connection && !connection.usable) {
      void connection.close();
      connection = undefined;
    }
    return batch.length;
  }

  return startOutboxPoller({
    pass,
    // Anything handled may have unblocked a thing's next event: go again at once.
    again: (n) => n > 0,
    pollInterval,
    poll: options.poll,
    log,
    name: "bus",
    async onStop() {
      const open = connection;
      connection = undefined;
      await open?.close();
    },
  });
}

function describe(err: unknown): string {
  if (err instanceof TesseraError) return err.detail ?? err.message;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
