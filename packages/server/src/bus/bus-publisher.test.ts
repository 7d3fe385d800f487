/**
 * The bus publisher against a real SQLite outbox and real brokers: a
 * nats-server and a mosquitto of the test's own on free loopback ports,
 * stopped and restarted to simulate an outage. Missing broker binaries skip
 * those tests locally and fail them when CI=true. The logic that needs no
 * broker (dead rows, lazy connection, backoff) runs against a fake one.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import mqtt from "mqtt";
import { connect as natsConnect, type NatsConnection } from "nats";
import pino from "pino";
import type { OutboxRecord, Store } from "../authority/ports.js";
import type { MainfluxConfig } from "../config/types.js";
import { openStore } from "../store/index.js";
import {
  BUS_RETRY_CAP_MS,
  busRetryDelay,
  decodeCommand,
  rotationOutboxMessage,
  startBusPublisher,
  type BusConnection,
  type BusConnector,
  type BusLog,
  type BusPublisher,
  type CertEvent,
} from "./bus-publisher.js";
import { brokerSkip, MOSQUITTO, NATS_SERVER, TestBroker } from "./test-brokers.js";
import { isValidThingToken, natsOptions, rotationSubject } from "./transport.js";

// pino's Logger must fit the publisher's log port (checked by the type checker).
const pinoFits: BusLog = pino({ level: "silent" });
void pinoFits;

const ci = process.env.CI === "true";
const dir = mkdtempSync(join(tmpdir(), "tessera-bus-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const T0 = new Date("2025-03-04T05:06:07.089Z");
let dbCounter = 0;

async function newStore(): Promise<Store> {
  const store = await openStore(`sqlite:${join(dir, `outbox-${++dbCounter}.db`)}`);
  await store.migrate();
  return store;
}

class FakeClock {
  constructor(public t: Date) {}
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t = new Date(this.t.getTime() + ms);
  }
}

class Logs implements BusLog {
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
}

let serialCounter = 1000;
function certEvent(thingId: string): CertEvent {
  return {
    thing_id: thingId,
    client_cert: "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n",
    client_key: "-----BEGIN EC PRIVATE KEY-----\nMHcsecret\n-----END EC PRIVATE KEY-----\n",
    issuing_ca: "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n",
    ca_chain: ["-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n"],
    serial: String(++serialCounter),
    expires_at: "2026-03-04T05:06:07Z",
  };
}

function withoutKey(e: CertEvent): Omit<CertEvent, "client_key"> {
  const { client_key: _, ...rest } = e;
  return rest;
}

/** A message as a subscriber saw it, decoded. */
interface Seen {
  subject: string;
  publisher: string;
  protocol: string;
  created: bigint;
  json: Record<string, unknown>;
}

function seen(subject: string, data: Uint8Array): Seen {
  const c = decodeCommand(data);
  return { subject, publisher: c.publisher, protocol: c.protocol, created: c.created, json: JSON.parse(Buffer.from(c.payload).toString("utf8")) as Record<string, unknown> };
}

/** Collects messages; waitFor polls until `n` have arrived. */
abstract class Subscriber {
  readonly messages: Seen[] = [];
  async waitFor(n: number, ms = 5000): Promise<Seen[]> {
    const deadline = Date.now() + ms;
    while (this.messages.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(this.messages.length, n, `expected ${n} messages, got ${this.messages.length}`);
    return this.messages;
  }
  abstract close(): Promise<void>;
}

class NatsSubscriber extends Subscriber {
  private constructor(private readonly nc: NatsConnection) {
    super();
  }
  static async open(url: string, subject = "things.*.commands.cert-rotation"): Promise<NatsSubscriber> {
    const s = new NatsSubscriber(await natsConnect({ servers: url, reconnect: false }));
    s.nc.subscribe(subject, { callback: (err, msg) => void (err ? undefined : s.messages.push(seen(msg.subject, msg.data))) });
    await s.nc.flush();
    return s;
  }
  async close(): Promise<void> {
    await this.nc.close().catch(() => undefined);
  }
}

class MqttSubscriber extends Subscriber {
  private constructor(private readonly client: mqtt.MqttClient) {
    super();
  }
  static async open(url: string, topic = "things/+/commands/cert-rotation"): Promise<MqttSubscriber> {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, clientId: `test-sub-${Math.random().toString(16).slice(2)}` }, false);
    const s = new MqttSubscriber(client);
    client.on("message", (t, payload) => void s.messages.push(seen(t, payload)));
    await client.subscribeAsync(topic, { qos: 1 });
    return s;
  }
  async close(): Promise<void> {
    await this.client.endAsync(true).catch(() => undefined);
  }
}

function eventsConfig(bus: "nats" | "mqtt", url: string, includePrivateKey = false): MainfluxConfig["events"] {
  return { bus, url, includePrivateKey };
}

/** Runs passes until one handles nothing (a thing's next event is claimable only after the previous one). */
async function drain(p: BusPublisher): Promise<number> {
  let total = 0;
  for (let i = 0; i < 20; i++) {
    const n = await p.runOnce();
    if (n === 0) return total;
    total += n;
  }
  throw new Error("the outbox did not drain");
}

async function byId(store: Store, id: string): Promise<OutboxRecord | undefined> {
  return (await store.listOutbox({ channel: "bus" })).find((m) => m.id === id);
}

/** Registers the broker tests for `kind`, or one skipped/failing test when its binary is missing. */
function brokerSuite(kind: "nats" | "mqtt", body: (broker: () => TestBroker) => void): void {
  const [binary, name] = kind === "nats" ? [NATS_SERVER, "nats-server"] : [MOSQUITTO, "mosquitto"];
  const skip = brokerSkip(binary, name);
  describe(`bus publisher over ${kind.toUpperCase()}`, () => {
    if (skip !== undefined) {
      if (ci) test(`${name} is installed (required when CI=true)`, () => assert.fail(skip));
      else test(`${kind} delivery`, { skip }, () => undefined);
      return;
    }
    let broker: TestBroker | undefined;
    before(async () => {
      broker = await TestBroker.start(kind);
    });
    after(async () => {
      await broker?.dispose();
    });
    body(() => {
      assert.ok(broker);
      return broker;
    });
  });
}

brokerSuite("nats", (broker) => {
  test("a subscriber receives the rotation event: protobuf Command on things.<id>.commands.cert-rotation, JSON without client_key", async () => {
    const store = await newStore();
    const sub = await NatsSubscriber.open(broker().url);
    const publisher = startBusPublisher({ config: eventsConfig("nats", broker().url), store, clock: new FakeClock(T0), log: new Logs(), poll: false, timeout: 2000 });
    try {
      const thing = "5e2a7b0c-1d3f-4e5a-8b6c-7d8e9f0a1b2c";
      const ev = certEvent(thing);
      // Stored with the key (as if include_private_key were on at rotation time): the publisher still strips it.
      const [m] = await store.enqueueOutbox([rotationOutboxMessage(thing, ev, { includePrivateKey: true })], T0);
      assert.ok(m);
      assert.equal(await publisher.runOnce(), 1);
      const [got] = await sub.waitFor(1);
      assert.equal(got?.subject, `things.${thing}.commands.cert-rotation`);
      assert.equal(got?.publisher, thing);
      assert.equal(got?.protocol, "certs");
      assert.equal(got?.created, BigInt(T0.getTime()) * 1_000_000n);
      assert.deepEqual(got?.json, withoutKey(ev));
      assert.ok(!("client_key" in (got?.json ?? {})));
      const stored = await byId(store, m.id);
      assert.equal(stored?.state, "delivered");
      assert.equal(stored?.attempts, 1);
    } finally {
      await publisher.stop();
      await sub.close();
      await store.close();
    }
  });

  test("with include_private_key the event carries client_key; rotationOutboxMessage stores no key unless asked", async () => {
    const store = await newStore();
    const sub = await NatsSubscriber.open(broker().url);
    const publisher = startBusPublisher({ config: eventsConfig("nats", broker().url, true), store, clock: new FakeClock(T0), log: new Logs(), poll: false, timeout: 2000 });
    try {
      const [withKey, noKey] = [certEvent("thing-k1"), certEvent("thing-k2")];
      const plain = rotationOutboxMessage("thing-k2", noKey);
      assert.deepEqual(plain.payload, { thing_id: "thing-k2", event: withoutKey(noKey) });
      assert.equal(plain.channel, "bus");
      assert.equal(plain.orderingKey, "thing-k2");
      await store.enqueueOutbox([rotationOutboxMessage("thing-k1", withKey, { includePrivateKey: true }), plain], T0);
      assert.equal(await publisher.runOnce(), 2);
      const msgs = await sub.waitFor(2);
      const k1 = msgs.find((s) => s.publisher === "thing-k1");
      const k2 = msgs.find((s) => s.publisher === "thing-k2");
      assert.deepEqual(k1?.json, withKey);
      assert.equal(k1?.json.client_key, withKey.client_key);
      assert.deepEqual(k2?.json, withoutKey(noKey));
    } finally {
      await publisher.stop();
      await sub.close();
      await store.close();
    }
  });

  test("with the broker stopped rotation events stay pending; after its restart (and a Tessera restart) all arrive, in order per thing", async () => {
    const store = await newStore();
    const clock = new FakeClock(T0);
    const logs = new Logs();
    let sub = await NatsSubscriber.open(broker().url);
    const first = startBusPublisher({ config: eventsConfig("nats", broker().url), store, clock, log: logs, poll: false, timeout: 2000 });
    let second: BusPublisher | undefined;
    try {
      // Connected and delivering before the outage.
      await store.enqueueOutbox([rotationOutboxMessage("thing-a", certEvent("thing-a"))], clock.now());
      assert.equal(await first.runOnce(), 1);
      await sub.waitFor(1);
      await sub.close();

      await broker().stop();
      clock.advance(1000);
      const [a1, a2, b1] = [certEvent("thing-a"), certEvent("thing-a"), certEvent("thing-b")];
      // One transaction, one millisecond: insertion order decides a1 before a2.
      const [r1, r2, r3] = await store.enqueueOutbox(
        [rotationOutboxMessage("thing-a", a1), rotationOutboxMessage("thing-a", a2), rotationOutboxMessage("thing-b", b1)],
        clock.now(),
      );
      assert.ok(r1 && r2 && r3);
      assert.equal(await first.runOnce(), 2, "a1 and b1 are tried; a2 waits behind a1");
      for (const r of [r1, r3]) {
        const stored = await byId(store, r.id);
        assert.equal(stored?.state, "pending");
        assert.equal(stored?.attempts, 1);
        // Refused at connect, or (if the client had not yet noticed the broker go) failed on the dying connection.
        assert.match(stored?.lastError ?? "", /cannot connect|connection closed|CONNECTION_CLOSED/);
        assert.ok((stored?.nextAttemptAt.getTime() ?? 0) > clock.now().getTime());
      }
      assert.equal((await byId(store, r2.id))?.attempts, 0);
      assert.equal(await first.runOnce(), 0, "nothing due before the backoff");
      assert.ok(logs.lines.some((l) => l.level === "warn" && /cannot connect/.test(l.msg)));

      // The broker comes back; Tessera restarts too (a new publisher on the same database).
      await broker().start();
      sub = await NatsSubscriber.open(broker().url);
      await first.stop();
      second = startBusPublisher({ config: eventsConfig("nats", broker().url), store, clock, log: logs, poll: false, timeout: 2000 });
      clock.advance(BUS_RETRY_CAP_MS * 2);
      assert.equal(await drain(second), 3);
      const msgs = await sub.waitFor(3);
      assert.deepEqual(
        msgs.filter((s) => s.publisher === "thing-a").map((s) => s.json.serial),
        [a1.serial, a2.serial],
      );
      assert.deepEqual(msgs.filter((s) => s.publisher === "thing-b").map((s) => s.json.serial), [b1.serial]);
      assert.ok(msgs.every((s) => s.subject === `things.${s.publisher}.commands.cert-rotation`));
      assert.deepEqual((await store.listOutbox({ channel: "bus", state: "pending" })).map((m) => m.id), []);
      assert.equal((await byId(store, r1.id))?.attempts, 2);
    } finally {
      await first.stop();
      await second?.stop();
      await sub.close();
      await store.close();
      // Whatever failed above, later tests need the broker running (start() is a no-op when it is).
      await broker().start();
    }
  });

  test("polls by itself: an enqueued event arrives without runOnce; stop() closes the connection", async () => {
    const store = await newStore();
    const sub = await NatsSubscriber.open(broker().url);
    const publisher = startBusPublisher({ config: eventsConfig("nats", broker().url), store, log: new Logs(), pollInterval: 10, timeout: 2000 });
    try {
      await store.enqueueOutbox([rotationOutboxMessage("thing-p", certEvent("thing-p"))], new Date());
      await sub.waitFor(1);
    } finally {
      await publisher.stop();
      await sub.close();
      await store.close();
    }
    assert.equal(await publisher.runOnce(), 0);
  });
});

brokerSuite("mqtt", (broker) => {
  test("a subscriber receives the rotation event on things/<id>/commands/cert-rotation (QoS 1)", async () => {
    const store = await newStore();
    const sub = await MqttSubscriber.open(broker().url);
    const publisher = startBusPublisher({ config: eventsConfig("mqtt", broker().url), store, clock: new FakeClock(T0), log: new Logs(), poll: false, timeout: 2000 });
    try {
      const ev = certEvent("thing-m1");
      const [m] = await store.enqueueOutbox([rotationOutboxMessage("thing-m1", ev)], T0);
      assert.ok(m);
      assert.equal(await publisher.runOnce(), 1);
      const [got] = await sub.waitFor(1);
      assert.equal(got?.subject, "things/thing-m1/commands/cert-rotation");
      assert.equal(got?.publisher, "thing-m1");
      assert.equal(got?.protocol, "certs");
      assert.equal(got?.created, BigInt(T0.getTime()) * 1_000_000n);
      assert.deepEqual(got?.json, withoutKey(ev));
      assert.equal((await byId(store, m.id))?.state, "delivered");
    } finally {
      await publisher.stop();
      await sub.close();
      await store.close();
    }
  });

  test("a broker outage delays events; they arrive in order once it is back", async () => {
    const store = await newStore();
    const clock = new FakeClock(T0);
    let sub = await MqttSubscriber.open(broker().url);
    const publisher = startBusPublisher({ config: eventsConfig("mqtt", broker().url), store, clock, log: new Logs(), poll: false, timeout: 2000 });
    try {
      await store.enqueueOutbox([rotationOutboxMessage("thing-m2", certEvent("thing-m2"))], clock.now());
      assert.equal(await publisher.runOnce(), 1);
      await sub.waitFor(1);
      await sub.close();
      await broker().stop();
      const [e1, e2] = [certEvent("thing-m2"), certEvent("thing-m2")];
      const [r1] = await store.enqueueOutbox([rotationOutboxMessage("thing-m2", e1), rotationOutboxMessage("thing-m2", e2)], clock.now());
      assert.equal(await publisher.runOnce(), 1);
      assert.equal((await byId(store, r1!.id))?.state, "pending");
      assert.match((await byId(store, r1!.id))?.lastError ?? "", /cannot connect|Connection closed|connection closed/);
      await broker().start();
      sub = await MqttSubscriber.open(broker().url);
      clock.advance(BUS_RETRY_CAP_MS * 2);
      assert.equal(await drain(publisher), 2);
      const msgs = await sub.waitFor(2);
      assert.deepEqual(msgs.map((s) => s.json.serial), [e1.serial, e2.serial]);
    } finally {
      await publisher.stop();
      await sub.close();
      await store.close();
    }
  });
});

/** A broker stand-in: records publishes; `fail` makes the next ones throw. */
class FakeBus {
  connects = 0;
  fail: string | undefined;
  readonly published: Array<{ subject: string; data: Uint8Array }> = [];
  readonly connector: BusConnector = async () => {
    this.connects++;
    let usable = true;
    const conn: BusConnection = {
      get usable() {
        return usable;
      },
      publish: async (subject, data) => {
        if (this.fail !== undefined) {
          usable = false;
          throw new Error(this.fail);
        }
        this.published.push({ subject, data });
      },
      close: async () => {
        usable = false;
      },
    };
    return conn;
  };
}

describe("bus publisher (fake broker)", () => {
  test("bus = none: no publisher runs and the store is never touched", async () => {
    const untouchable = new Proxy({} as Store, {
      get() {
        throw new Error("the store must not be used");
      },
    });
    const p = startBusPublisher({ config: { bus: "none", url: null, includePrivateKey: false }, store: untouchable, log: new Logs() });
    assert.equal(await p.runOnce(), 0);
    await p.stop();
  });

  test("connects lazily, reuses the connection and reconnects after a failed publish; webhook rows are left alone", async () => {
    const store = await newStore();
    const bus = new FakeBus();
    const clock = new FakeClock(T0);
    const p = startBusPublisher({ config: eventsConfig("nats", "nats://fake:4222"), store, clock, log: new Logs(), poll: false, connect: bus.connector });
    try {
      const [hook] = await store.enqueueOutbox([{ topic: "device.created", payload: {} }], T0);
      assert.equal(await p.runOnce(), 0);
      assert.equal(bus.connects, 0, "nothing due: no connection");
      await store.enqueueOutbox([rotationOutboxMessage("t1", certEvent("t1")), rotationOutboxMessage("t2", certEvent("t2"))], T0);
      assert.equal(await p.runOnce(), 2);
      await store.enqueueOutbox([rotationOutboxMessage("t3", certEvent("t3"))], T0);
      assert.equal(await p.runOnce(), 1);
      assert.equal(bus.connects, 1);
      assert.deepEqual(bus.published.map((m) => m.subject).sort(), ["things.t1.commands.cert-rotation", "things.t2.commands.cert-rotation", "things.t3.commands.cert-rotation"]);
      bus.fail = "broken pipe";
      const [r4] = await store.enqueueOutbox([rotationOutboxMessage("t4", certEvent("t4"))], T0);
      assert.equal(await p.runOnce(), 1);
      assert.equal((await byId(store, r4!.id))?.lastError, "publish failed: broken pipe");
      bus.fail = undefined;
      clock.advance(BUS_RETRY_CAP_MS * 2);
      assert.equal(await p.runOnce(), 1);
      assert.equal(bus.connects, 2, "a new connection after the failure");
      assert.equal((await byId(store, r4!.id))?.state, "delivered");
      const stillHook = (await store.listOutbox({ channel: "webhook" })).find((m) => m.id === hook!.id);
      assert.equal(stillHook?.state, "pending");
      assert.equal(stillHook?.attempts, 0);
    } finally {
      await p.stop();
      await store.close();
    }
  });

  test("an event that can never be published is marked dead and does not hold back its thing's next event", async () => {
    const store = await newStore();
    const bus = new FakeBus();
    const logs = new Logs();
    const p = startBusPublisher({ config: eventsConfig("mqtt", "mqtt://fake:1883"), store, clock: new FakeClock(T0), log: logs, poll: false, connect: bus.connector });
    try {
      const [bad, good, badId] = await store.enqueueOutbox(
        [
          { topic: "thing.cert-rotation", channel: "bus", orderingKey: "t9", payload: { thing_id: "t9", event: "not an object" } },
          rotationOutboxMessage("t9", certEvent("t9")),
          { topic: "thing.cert-rotation", channel: "bus", orderingKey: "x/#", payload: { thing_id: "x/#", event: {} } },
        ],
        T0,
      );
      assert.equal(await drain(p), 3);
      assert.equal((await byId(store, bad!.id))?.state, "dead");
      assert.equal((await byId(store, badId!.id))?.state, "dead");
      assert.equal((await byId(store, good!.id))?.state, "delivered");
      assert.deepEqual(bus.published.map((m) => m.subject), ["things/t9/commands/cert-rotation"]);
      assert.equal(logs.lines.filter((l) => l.level === "error").length, 2);
    } finally {
      await p.stop();
      await store.close();
    }
  });

  test("subjects, thing-id tokens and NATS URL options", () => {
    assert.equal(rotationSubject("nats", "t-1"), "things.t-1.commands.cert-rotation");
    assert.equal(rotationSubject("mqtt", "t-1"), "things/t-1/commands/cert-rotation");
    assert.ok(isValidThingToken("5e2a7b0c-1d3f-4e5a-8b6c-7d8e9f0a1b2c"));
    for (const bad of ["", "a.b", "a*", ">", "a/b", "a+", "#", "a b", "a\n", "a\u0000", "a\u007f"]) assert.ok(!isValidThingToken(bad), JSON.stringify(bad));
    assert.deepEqual(natsOptions("nats://127.0.0.1:4222"), { servers: "127.0.0.1:4222" });
    assert.deepEqual(natsOptions("nats://broker"), { servers: "broker:4222" });
    assert.deepEqual(natsOptions("tls://u%40x:p%3Aw@broker:4443"), { servers: "broker:4443", tls: {}, user: "u@x", pass: "p:w" });
    assert.deepEqual(natsOptions("nats://s3cret@broker:4222"), { servers: "broker:4222", token: "s3cret" });
  });

  test("retry delays grow from 1 s, are capped at 60 s and jittered by ±20 %; bus events are never given up", async () => {
    assert.equal(busRetryDelay(1, () => 0.5), 1_000);
    assert.equal(busRetryDelay(2, () => 0.5), 2_000);
    assert.equal(busRetryDelay(7, () => 0.5), BUS_RETRY_CAP_MS);
    assert.equal(busRetryDelay(1_000_000, () => 0), BUS_RETRY_CAP_MS * 0.8);
    assert.ok(busRetryDelay(1, () => 0.999999) <= 1_200);

    const store = await newStore();
    const bus = new FakeBus();
    bus.fail = "down";
    const clock = new FakeClock(T0);
    const p = startBusPublisher({ config: eventsConfig("nats", "nats://fake:4222"), store, clock, log: new Logs(), poll: false, connect: bus.connector });
    try {
      const [r] = await store.enqueueOutbox([rotationOutboxMessage("t5", certEvent("t5"))], T0);
      for (let i = 0; i < 30; i++) {
        assert.equal(await p.runOnce(), 1);
        clock.advance(BUS_RETRY_CAP_MS * 2);
      }
      const stored = await byId(store, r!.id);
      assert.equal(stored?.state, "pending");
      assert.equal(stored?.attempts, 30);
    } finally {
      await p.stop();
      await store.close();
    }
  });
});
