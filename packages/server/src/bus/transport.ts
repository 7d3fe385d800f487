/**
 * The two brokers the bus publisher talks to, behind one small interface:
 * NATS (core publish, confirmed by a flush: the server has read the
 * message) and MQTT (QoS 1, confirmed by the broker's PUBACK). Neither
 * client reconnects by itself: a connection that fails or closes is dropped
 * and the publisher opens a new one on its next attempt, so the outbox, not
 * a client-side buffer, holds what has not been confirmed.
 */
import { randomBytes } from "node:crypto";
import mqtt from "mqtt";
import { connect as natsConnect } from "nats";

/** Which broker (MainfluxConfig["events"]["bus"] minus "none"). */
export type BusKind = "nats" | "mqtt";

/** An open broker connection. */
export interface BusConnection {
  /** Publishes and resolves once the broker has confirmed it; rejects on failure or after the timeout. */
  publish(subject: string, data: Uint8Array): Promise<void>;
  /** False once the connection failed or closed; it is then replaced. */
  readonly usable: boolean;
  /** Closes the connection (idempotent, never rejects). */
  close(): Promise<void>;
}

/** Opens connections; injectable for tests. */
export type BusConnector = (kind: BusKind, url: string, timeoutMs: number) => Promise<BusConnection>;

/** The default broker URLs (docs/events.md). */
export const DEFAULT_BUS_URL: Readonly<Record<BusKind, string>> = { nats: "nats://127.0.0.1:4222", mqtt: "mqtt://127.0.0.1:1883" };

/**
 * The subject (NATS) or topic (MQTT) of a thing's rotation event:
 * `things.<id>.commands.cert-rotation` or `things/<id>/commands/cert-rotation`.
 */
export function rotationSubject(kind: BusKind, thingId: string): string {
  return kind === "nats" ? `things.${thingId}.commands.cert-rotation` : `things/${thingId}/commands/cert-rotation`;
}

/**
 * Whether `thingId` can be one subject token or topic level: not empty, no
 * separators or wildcards of either broker (`.` `*` `>` `/` `+` `#`), no
 * whitespace or control characters.
 */
export function isValidThingToken(thingId: string): boolean {
  return thingId.length > 0 && !/[.*>/+#\s\u0000-\u001f\u007f]/u.test(thingId);
}

/** Rejects after `ms` unless `promise` settles first. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timeout after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Opens a real NATS or MQTT connection. */
export const connectBus: BusConnector = (kind, url, timeoutMs) => (kind === "nats" ? connectNats(url, timeoutMs) : connectMqtt(url, timeoutMs));

/**
 * nats.js ignores a server URL's scheme and credentials, so they become
 * options here: `tls://` requires TLS, `user:pass@` is user/password and a
 * lone `token@` is a token (as in the NATS CLI).
 */
export function natsOptions(url: string): { servers: string; tls?: Record<string, never>; user?: string; pass?: string; token?: string } {
  const u = new URL(url);
  const port = u.port || "4222";
  const opts: ReturnType<typeof natsOptions> = { servers: `${u.hostname}:${port}` };
  if (u.protocol === "tls:") opts.tls = {};
  const user = decodeURIComponent(u.username);
  const pass = decodeURIComponent(u.password);
  if (user && pass) Object.assign(opts, { user, pass });
  else if (user) opts.token = user;
  return opts;
}

async function connectNats(url: string, timeoutMs: number): Promise<BusConnection> {
  const nc = await withTimeout(
    natsConnect({ ...natsOptions(url), name: "tessera", reconnect: false, timeout: timeoutMs, maxReconnectAttempts: 0 }),
    timeoutMs + 1000,
    "NATS connect",
  );
  let usable = true;
  // A flush issued just before the client notices the socket closed is never
  // answered (nats.js keeps it for a reconnect that will not come): waiting
  // on `closed` too ends it at once instead of at the timeout.
  const closed = nc.closed().then(() => {
    usable = false;
    throw new Error("NATS connection closed");
  });
  closed.catch(() => undefined);
  return {
    get usable() {
      return usable && !nc.isClosed();
    },
    async publish(subject, data) {
      if (nc.isClosed()) throw new Error("NATS connection closed");
      try {
        nc.publish(subject, data);
        // The server answers PING in order, so a PONG means it has read the message.
        await withTimeout(Promise.race([nc.flush(), closed]), timeoutMs, "NATS flush");
      } catch (err) {
        usable = false;
        throw err;
      }
    },
    async close() {
      usable = false;
      await nc.close().catch(() => undefined);
    },
  };
}

async function connectMqtt(url: string, timeoutMs: number): Promise<BusConnection> {
  const client = await withTimeout(
    mqtt.connectAsync(
      url,
      { clientId: `tessera-${randomBytes(8).toString("hex")}`, clean: true, reconnectPeriod: 0, connectTimeout: timeoutMs, protocolVersion: 4 },
      false,
    ),
    timeoutMs + 1000,
    "MQTT connect",
  ).catch((err: unknown) => {
    throw err instanceof Error ? err : new Error(String(err));
  });
  let usable = client.connected;
  const drop = (): void => {
    usable = false;
    // Fails the callbacks of unacknowledged publishes at once instead of leaving them to the timeout.
    client.end(true);
  };
  client.on("close", drop);
  client.on("error", drop);
  return {
    get usable() {
      return usable && client.connected;
    },
    async publish(subject, data) {
      if (!usable || !client.connected) throw new Error("MQTT connection closed");
      try {
        await withTimeout(client.publishAsync(subject, Buffer.from(data), { qos: 1 }), timeoutMs, "MQTT publish");
      } catch (err) {
        drop();
        throw err;
      }
    },
    async close() {
      usable = false;
      await client.endAsync(true).catch(() => undefined);
    },
  };
}
