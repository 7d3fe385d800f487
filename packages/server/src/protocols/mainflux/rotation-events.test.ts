/**
 * Scheduled rotation end to end, as the server runs it: a certificate near
 * expiry is rotated by the server's own timer, the old one revoked, and a
 * NATS subscriber receives the rotation event on things.<id>.commands.cert-rotation;
 * with the broker stopped, rotation still happens and the event arrives once
 * the broker is back.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { connect, type NatsConnection, type Subscription } from "nats";
import { decodeCommand } from "../../bus/command.js";
import { brokerSkip, NATS_SERVER, TestBroker } from "../../bus/test-brokers.js";
import { HOUR, mainfluxServer, type MainfluxKit } from "./test-kit.js";

const skip = brokerSkip(NATS_SERVER, "nats-server");
let broker: TestBroker;
let k: MainfluxKit;
let nc: NatsConnection;

before(async () => {
  if (skip) return;
  broker = await TestBroker.start("nats");
  k = await mainfluxServer({
    configure: (c) => {
      c.mainflux.rotation = { enabled: true, before: 30 * 24 * 3600, interval: 1 };
      c.mainflux.events = { bus: "nats", url: broker.url, includePrivateKey: false };
    },
  });
});
after(async () => {
  await nc?.close().catch(() => undefined);
  await k?.server.close(100);
  await broker?.stop();
});

/** The next message on `sub`, within `ms`. */
async function next(sub: Subscription, ms: number): Promise<Uint8Array> {
  const timer = setTimeout(() => sub.unsubscribe(), ms);
  for await (const m of sub) {
    clearTimeout(timer);
    return m.data;
  }
  throw new Error(`no message within ${ms} ms`);
}

test("the scheduler rotates, revokes the old certificate and publishes; during a broker outage the event waits in the outbox", { skip }, async () => {
  const issued = await k.req("POST", "/certs", { token: k.tokens.editor, body: { thing_id: k.things.a.id, ttl: "2h", key_type: "ecdsa", key_bits: 256 } });
  assert.equal(issued.status, 201, issued.text);
  const first = issued.json.serial as string;

  nc = await connect({ servers: broker.url });
  const sub = nc.subscribe(`things.${k.things.a.id}.commands.cert-rotation`);
  // Past half its life and within the window: the next timer tick (1 s) rotates it.
  k.clock.advance(1.5 * HOUR);
  const command = decodeCommand(await next(sub, 20000));
  const event = JSON.parse(Buffer.from(command.payload).toString()) as { thing_id: string; serial: string; client_key?: string; client_cert: string };
  assert.deepEqual([command.publisher, command.protocol, event.thing_id], [k.things.a.id, "certs", k.things.a.id]);
  assert.equal(event.client_key, undefined, "no private key on the bus unless configured");
  assert.notEqual(event.serial, first);
  assert.equal((await k.req("GET", `/certs/${first}`, { token: k.tokens.viewer })).status, 404, "the old certificate is revoked");
  const rotated = await k.req("GET", `/certs/${event.serial}`, { token: k.tokens.viewer });
  assert.equal(rotated.status, 200);

  // Broker down: the next rotation still happens, and its event is delivered after the restart.
  await nc.close();
  await broker.stop();
  k.clock.advance(1.5 * HOUR);
  let second: string | undefined;
  for (let i = 0; i < 80 && !second; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const page = await k.req("GET", `/things/${k.things.a.id}/serials`, { token: k.tokens.viewer });
    second = (page.json.certs as Array<{ cert_serial: string }>).map((c) => c.cert_serial).find((s) => s !== event.serial && s !== first);
  }
  assert.ok(second, "rotated while the broker was down");
  await broker.start();
  // Past any backoff the failed attempts scheduled (the publisher's clock is the test's).
  k.clock.advance(2 * 60_000);
  nc = await connect({ servers: broker.url });
  const sub2 = nc.subscribe(`things.${k.things.a.id}.commands.cert-rotation`);
  // An attempt may still fail after that jump (the publisher reconnecting to the restarted broker on a
  // loaded machine) and back off for up to a minute and more: keep the test's clock moving, 10 s per
  // half second (at most 15 minutes in all, far from the next rotation, which is an hour away).
  const ticking = setInterval(() => k.clock.advance(10_000), 500);
  let late: { serial: string };
  try {
    late = JSON.parse(Buffer.from(decodeCommand(await next(sub2, 45000)).payload).toString()) as { serial: string };
  } finally {
    clearInterval(ticking);
  }
  assert.equal(late.serial, second);
});
