/**
 * The registration hook end to end: a device enrolled over liteboot for the
 * first time reaches the configured webhook as a signed "device.created"
 * delivery from the outbox; its second certificate does not.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import type { RunningServer } from "../../server.js";
import { tempDir } from "../../test-support.js";
import { verifyWebhookSignature } from "../../webhook/signature.js";
import { crCbor, lb, litebootServer, newDevice, type PemIdentity } from "./test-kit.js";

let server: RunningServer;
let base: string;
let ca: string;
let boot: PemIdentity;
let receiver: http.Server;
const deliveries: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
const SECRET = "webhook-test-secret-0123456789";

before(async () => {
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      deliveries.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  const secretFile = path.join(tempDir("tessera-webhook-"), "secret");
  fs.writeFileSync(secretFile, SECRET + "\n");
  ({ server, base, ca, boot } = await litebootServer((c) => {
    c.webhook = { ...c.webhook, url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, secretFile };
  }));
});
after(async () => {
  await server.close(100);
  receiver.close();
});

async function waitFor(n: number, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (deliveries.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
}

test("a new device is delivered once, signed; its second certificate is not a new device", async () => {
  const dev = newDevice({ ou: "Device Client TLS" });
  assert.equal((await lb(base, ca, "/api/v1/cr", { as: boot, contentType: "application/cbor", body: crCbor(dev.csr) })).status, 200);
  await waitFor(1);
  assert.equal(deliveries.length, 1);
  const d = deliveries[0]!;
  assert.equal(d.headers["x-tessera-event"], "device.created");
  assert.ok(verifyWebhookSignature(SECRET, String(d.headers["x-tessera-timestamp"]), d.body, String(d.headers["x-tessera-signature"])));
  const payload = JSON.parse(d.body) as { event: string; data: { device: string; protocol: string; bootstrap: string } };
  assert.deepEqual([payload.event, payload.data.device, payload.data.protocol, payload.data.bootstrap], ["device.created", dev.uuid, "liteboot", "line-1"]);

  const second = newDevice({ uuid: dev.uuid, ou: "Device COSE SIGN/Encrypt" });
  assert.equal((await lb(base, ca, "/api/v1/cr", { as: boot, contentType: "application/cbor", body: crCbor(second.csr) })).status, 200);
  await waitFor(2, 2500);
  assert.equal(deliveries.length, 1, "the same device is not announced twice");
  assert.deepEqual((await server.store.listOutbox({ state: "delivered" })).map((m) => m.topic), ["device.created"]);
});
