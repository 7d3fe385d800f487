/**
 * The webhook worker against a real node:http receiver and a real SQLite
 * outbox. The clock is injected and passes run through runOnce, so retries
 * are tested without waiting for backoff.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import type { Store } from "../authority/ports.js";
import type { WebhookConfig } from "../config/types.js";
import { TesseraError } from "../errors.js";
import { openStore } from "../store/index.js";
import {
  RETRY_BASE_MS,
  RETRY_CAP_MS,
  startWebhookWorker,
  verifyWebhookSignature,
  webhookRetryDelay,
  type WebhookLog,
  type WebhookWorker,
  type WebhookWorkerOptions,
} from "./webhook-worker.js";

// pino's Logger must fit the worker's log port (checked by the type checker).
const pinoFits: WebhookLog = pino({ level: "silent" });
void pinoFits;

const dir = mkdtempSync(join(tmpdir(), "tessera-webhook-"));
const SECRET = "whsec-test-key";
const secretFile = join(dir, "webhook.secret");
writeFileSync(secretFile, `${SECRET}\n`);
after(() => rmSync(dir, { recursive: true, force: true }));

/** One request as the receiver saw it. */
interface Received {
  method: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** What the receiver does with a request: answer with a status, or never answer. */
type Behaviour = (r: Received, res: ServerResponse) => void;

class Receiver {
  readonly received: Received[] = [];
  behaviour: Behaviour = (_r, res) => void res.writeHead(204).end();
  private readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const r = { method: req.method ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
        this.received.push(r);
        this.behaviour(r, res);
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  deliveries(): string[] {
    return this.received.map((r) => String(r.headers["x-tessera-delivery"]));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A settable clock. */
class FakeClock {
  constructor(public t: Date) {}
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t = new Date(this.t.getTime() + ms);
  }
}

/** Collects log lines. */
class Logs implements WebhookLog {
  readonly lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  debug(obj: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: "debug", obj, msg });
  }
  info(obj: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: "info", obj, msg });
  }
  warn(obj: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: "warn", obj, msg });
  }
  error(obj: Record<string, unknown>, msg: string): void {
    this.lines.push({ level: "error", obj, msg });
  }
  at(level: string): Array<{ obj: Record<string, unknown>; msg: string }> {
    return this.lines.filter((l) => l.level === level);
  }
}

const T0 = new Date("2025-03-04T05:06:07.089Z");
let dbCounter = 0;

async function newStore(file = join(dir, `outbox-${++dbCounter}.db`)): Promise<Store> {
  const store = await openStore(`sqlite:${file}`);
  await store.migrate();
  return store;
}

function webhookConfig(url: string, overrides: Partial<WebhookConfig> = {}): WebhookConfig {
  return { url, secretFile, events: ["device.created"], maxAttempts: 5, timeout: 2, ...overrides };
}

describe("webhook worker", () => {
  const receiver = new Receiver();
  const cleanups: Array<() => Promise<void>> = [];

  before(() => receiver.start());
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await receiver.close();
  });

  /** A store, clock, logs and a worker that only sends through runOnce. */
  async function setup(config: Partial<WebhookConfig> = {}, extra: Partial<WebhookWorkerOptions> = {}) {
    receiver.received.length = 0;
    receiver.behaviour = (_r, res) => void res.writeHead(204).end();
    const store = await newStore();
    const clock = new FakeClock(T0);
    const logs = new Logs();
    const worker = startWebhookWorker({ config: webhookConfig(receiver.url, config), store, clock, log: logs, poll: false, ...extra });
    cleanups.push(async () => {
      await worker.stop();
      await store.close();
    });
    return { store, clock, logs, worker };
  }

  async function only(store: Store) {
    const all = await store.listOutbox();
    assert.equal(all.length, 1);
    return all[0]!;
  }

  test("delivers a message as signed JSON with the documented headers", async () => {
    const { store, clock, worker } = await setup();
    const payload = { deviceId: "dev-ü1", serial: "1a2b", attributes: { hostname: "h1" } };
    const [m] = await store.enqueueOutbox([{ topic: "device.created", payload }], T0);
    clock.advance(1500);
    assert.equal(await worker.runOnce(), 1);
    assert.equal(receiver.received.length, 1);
    const r = receiver.received[0]!;
    assert.equal(r.method, "POST");
    assert.equal(r.headers["content-type"], "application/json");
    assert.equal(r.headers["x-tessera-event"], "device.created");
    assert.equal(r.headers["x-tessera-delivery"], m!.id);
    const ts = String(r.headers["x-tessera-timestamp"]);
    assert.equal(ts, String(Math.floor((T0.getTime() + 1500) / 1000)));
    assert.deepEqual(JSON.parse(r.body), { id: m!.id, event: "device.created", created_at: T0.toISOString(), data: payload });
    // Checked independently of the worker's own signing code.
    const expected = createHmac("sha256", SECRET).update(`${ts}.${r.body}`).digest("hex");
    assert.equal(r.headers["x-tessera-signature"], `sha256=${expected}`);
    assert.equal(verifyWebhookSignature(SECRET, ts, r.body, String(r.headers["x-tessera-signature"])), true);

    const row = await only(store);
    assert.equal(row.state, "delivered");
    assert.equal(row.attempts, 1);
    assert.deepStrictEqual(row.deliveredAt, clock.now());
    assert.equal(await worker.runOnce(), 0);
    assert.equal(receiver.received.length, 1);
  });

  test("a 500 is retried after the backoff with the same delivery id, then succeeds", async () => {
    const { store, clock, worker, logs } = await setup({}, { random: () => 0.5 });
    const [m] = await store.enqueueOutbox([{ topic: "device.created", payload: { deviceId: "d2" } }], T0);
    receiver.behaviour = (_r, res) => void res.writeHead(500, { "content-type": "text/plain" }).end("database\n  down");
    assert.equal(await worker.runOnce(), 1);
    let row = await only(store);
    assert.equal(row.state, "pending");
    assert.equal(row.attempts, 1);
    assert.equal(row.lastError, "HTTP 500: database down");
    assert.deepStrictEqual(row.nextAttemptAt, new Date(T0.getTime() + RETRY_BASE_MS), "random 0.5 means no jitter");
    assert.equal(logs.at("warn").length, 1);

    receiver.behaviour = (_r, res) => void res.writeHead(200).end("ok");
    clock.advance(RETRY_BASE_MS - 1);
    assert.equal(await worker.runOnce(), 0, "not due yet");
    clock.advance(1);
    assert.equal(await worker.runOnce(), 1);
    assert.deepEqual(receiver.deliveries(), [m!.id, m!.id]);
    row = await only(store);
    assert.equal(row.state, "delivered");
    assert.equal(row.attempts, 2);
    for (const r of receiver.received) {
      assert.equal(verifyWebhookSignature(SECRET, String(r.headers["x-tessera-timestamp"]), r.body, String(r.headers["x-tessera-signature"])), true);
    }
    assert.notEqual(receiver.received[0]?.headers["x-tessera-timestamp"], receiver.received[1]?.headers["x-tessera-timestamp"], "each attempt is signed at its own time");
  });

  test("a receiver that never answers times out and is retried", async () => {
    const { store, clock, worker } = await setup({ timeout: 0.3 });
    await store.enqueueOutbox([{ topic: "device.created", payload: { deviceId: "d3" } }], T0);
    receiver.behaviour = () => undefined;
    const started = Date.now();
    assert.equal(await worker.runOnce(), 1);
    assert.ok(Date.now() - started < 5000);
    let row = await only(store);
    assert.equal(row.state, "pending");
    assert.equal(row.lastError, "timeout after 0.3 s");
    receiver.behaviour = (_r, res) => void res.writeHead(202).end();
    clock.advance(RETRY_CAP_MS * 2);
    assert.equal(await worker.runOnce(), 1);
    row = await only(store);
    assert.equal(row.state, "delivered");
    assert.equal(row.attempts, 2);
  });

  test("a refused connection and a redirect are failures too", async () => {
    const { store, clock, worker } = await setup({}, {});
    await store.enqueueOutbox([{ topic: "device.created", payload: {} }], T0);
    receiver.behaviour = (_r, res) => void res.writeHead(302, { location: "http://127.0.0.1:1/elsewhere" }).end();
    await worker.runOnce();
    assert.equal((await only(store)).lastError, "HTTP 302");

    const closed = new Receiver();
    await closed.start();
    const url = closed.url;
    await closed.close();
    const other = await newStore();
    const w = startWebhookWorker({ config: webhookConfig(url), store: other, clock, log: new Logs(), poll: false });
    try {
      await other.enqueueOutbox([{ topic: "device.created", payload: {} }], T0);
      assert.equal(await w.runOnce(), 1);
      const row = await only(other);
      assert.equal(row.state, "pending");
      assert.equal(row.lastError, "network error: ECONNREFUSED");
    } finally {
      await w.stop();
      await other.close();
    }
  });

  test("gives up after maxAttempts: the row is kept as dead and an error is logged", async () => {
    const { store, clock, worker, logs } = await setup({ maxAttempts: 3 });
    const [m] = await store.enqueueOutbox([{ topic: "device.created", payload: { deviceId: "d4" } }], T0);
    receiver.behaviour = (_r, res) => void res.writeHead(503).end();
    for (let i = 0; i < 5; i++) {
      await worker.runOnce();
      clock.advance(RETRY_CAP_MS * 2);
    }
    assert.equal(receiver.received.length, 3);
    const row = await only(store);
    assert.equal(row.state, "dead");
    assert.equal(row.attempts, 3);
    assert.equal(row.lastError, "HTTP 503");
    assert.equal(logs.at("warn").length, 2);
    const errors = logs.at("error");
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.obj.delivery, m!.id);
    assert.equal(errors[0]?.obj.error, "HTTP 503");
    assert.match(errors[0]!.msg, /given up after 3 attempts/);
    assert.deepEqual(
      (await store.listOutbox({ state: "dead" })).map((r) => r.id),
      [m!.id],
    );
  });

  test("only events listed in webhook.events are sent; others are completed unsent", async () => {
    const { store, worker, logs } = await setup({ events: ["device.created"] });
    const [skipped, sent] = await store.enqueueOutbox(
      [
        { topic: "device.updated", payload: { deviceId: "d5" } },
        { topic: "device.created", payload: { deviceId: "d5" } },
      ],
      T0,
    );
    assert.equal(await worker.runOnce(), 2);
    assert.deepEqual(receiver.deliveries(), [sent!.id]);
    const rows = await store.listOutbox({ state: "delivered" });
    assert.deepEqual(rows.map((r) => r.id).sort(), [skipped!.id, sent!.id].sort());
    assert.ok(logs.at("debug").some((l) => l.obj.delivery === skipped!.id && /not in webhook.events/.test(l.msg)));
  });

  test("claims only the webhook channel: bus events are left to their publisher", async () => {
    const { store, worker } = await setup();
    const [bus, hook] = await store.enqueueOutbox(
      [
        { topic: "thing.cert-rotation", payload: { thing_id: "t1", event: {} }, channel: "bus", orderingKey: "t1" },
        { topic: "device.created", payload: { deviceId: "d6" } },
      ],
      T0,
    );
    assert.equal(await worker.runOnce(), 1);
    assert.deepEqual(receiver.deliveries(), [hook!.id]);
    const stored = (await store.listOutbox({ channel: "bus" })).find((m) => m.id === bus!.id);
    assert.equal(stored?.state, "pending");
    assert.equal(stored?.attempts, 0);
  });

  test("two workers on one SQLite file never deliver a message twice", async () => {
    receiver.received.length = 0;
    // A slow receiver keeps both workers' passes in flight together.
    receiver.behaviour = (_r, res) => void setTimeout(() => res.writeHead(200).end(), 5);
    const file = join(dir, "shared.db");
    const a = await newStore(file);
    const b = await openStore(`sqlite:${file}`);
    const clock = new FakeClock(T0);
    const config = webhookConfig(receiver.url);
    const wa = startWebhookWorker({ config, store: a, clock, log: new Logs(), poll: false, batchSize: 3 });
    const wb = startWebhookWorker({ config, store: b, clock, log: new Logs(), poll: false, batchSize: 3 });
    try {
      const enqueued = await a.enqueueOutbox(
        Array.from({ length: 40 }, (_, i) => ({ topic: "device.created", payload: { i } })),
        T0,
      );
      let handled = 0;
      for (;;) {
        const [na, nb] = await Promise.all([wa.runOnce(), wb.runOnce()]);
        handled += na + nb;
        if (na + nb === 0) break;
      }
      assert.equal(handled, 40);
      const seen = receiver.deliveries();
      assert.equal(seen.length, 40);
      assert.equal(new Set(seen).size, 40, "no delivery id arrived twice");
      assert.deepEqual([...seen].sort(), enqueued.map((m) => m.id).sort());
      assert.equal((await b.listOutbox({ state: "delivered" })).length, 40);
    } finally {
      await wa.stop();
      await wb.stop();
      await a.close();
      await b.close();
    }
  });

  test("polls by itself; stop() ends polling and waits for the pass in progress", async () => {
    const { store, worker } = await setup();
    await worker.stop();
    receiver.received.length = 0;
    const logs = new Logs();
    const polling = startWebhookWorker({ config: webhookConfig(receiver.url), store, log: logs, pollInterval: 10 });
    try {
      await store.enqueueOutbox([{ topic: "device.created", payload: { n: 1 } }], new Date());
      for (let i = 0; i < 200 && receiver.received.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(receiver.received.length, 1);
      await store.enqueueOutbox([{ topic: "device.created", payload: { n: 2 } }], new Date());
      for (let i = 0; i < 200 && receiver.received.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(receiver.received.length, 2);
    } finally {
      await polling.stop();
    }
    await store.enqueueOutbox([{ topic: "device.created", payload: { n: 3 } }], new Date());
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(receiver.received.length, 2, "a stopped worker sends nothing");
    assert.equal(await polling.runOnce(), 0);
    await polling.stop();
  });
});

describe("webhook worker setup", () => {
  test("with url = null no worker runs", async () => {
    const untouchable = new Proxy({} as Store, {
      get() {
        throw new Error("the store must not be used");
      },
    });
    const worker = startWebhookWorker({ config: { url: null, secretFile: null, events: ["device.created"], maxAttempts: 20, timeout: 10 }, store: untouchable, log: new Logs() });
    assert.equal(await worker.runOnce(), 0);
    await worker.stop();
  });

  test("a missing, unreadable or empty secret file is TESSERA_ERR_CONFIG_INVALID", async () => {
    const store = await newStore();
    try {
      const empty = join(dir, "empty.secret");
      writeFileSync(empty, " \n");
      for (const file of [null, join(dir, "absent.secret"), empty]) {
        assert.throws(
          () => startWebhookWorker({ config: webhookConfig("http://127.0.0.1:1/", { secretFile: file }), store, log: new Logs(), poll: false }),
          (err: unknown) => err instanceof TesseraError && err.code === "TESSERA_ERR_CONFIG_INVALID",
        );
      }
    } finally {
      await store.close();
    }
  });

  test("retry delays grow exponentially from 5 s, are capped at 1 h and jittered by ±20 %", () => {
    assert.equal(webhookRetryDelay(1, () => 0.5), 5_000);
    assert.equal(webhookRetryDelay(2, () => 0.5), 10_000);
    assert.equal(webhookRetryDelay(4, () => 0.5), 40_000);
    assert.equal(webhookRetryDelay(1, () => 0), 4_000);
    assert.ok(webhookRetryDelay(1, () => 0.999999) <= 6_000);
    assert.equal(webhookRetryDelay(11, () => 0.5), RETRY_CAP_MS);
    assert.equal(webhookRetryDelay(1000, () => 0.5), RETRY_CAP_MS);
    assert.equal(webhookRetryDelay(1000, () => 0), RETRY_CAP_MS * 0.8);
    for (let attempt = 1; attempt <= 25; attempt++) {
      const d = webhookRetryDelay(attempt);
      assert.ok(d >= 4_000 && d <= RETRY_CAP_MS * 1.2, `attempt ${attempt}: ${d}`);
    }
  });
});
