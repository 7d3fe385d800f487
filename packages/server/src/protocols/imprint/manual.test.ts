import "reflect-metadata";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { RunningServer } from "../../server.js";
import { cli, HandDevice, imprintServer } from "./test-kit.js";

describe("imprint manual approval", () => {
  let server: RunningServer;
  let secret: string;
  let dataDir: string;
  before(async () => ({ server, secret, dataDir } = await imprintServer((c) => void (c.imprint.mode = "manual"))));
  after(() => server.close(100));

  test("202 pending (repeatable, one request) → `tessera enroll approve` → the next enroll gets its certificate", async () => {
    const d = new HandDevice(server);
    const first = await d.enroll(secret);
    assert.equal(first.status, 202);
    assert.equal(first.headers["content-type"], "application/json; charset=utf-8");
    const pending = JSON.parse(first.text) as { status: string; server_id: string; request_id: string };
    assert.equal(pending.status, "pending");
    assert.equal((await d.enroll(secret)).status, 202, "still pending");
    const listed = await cli(dataDir, ["enroll", "list"]);
    assert.equal(listed.code, 0, listed.out);
    const requests = (JSON.parse(listed.out) as { id: string; deviceId: string }[]).filter((r) => r.deviceId === pending.server_id);
    assert.deepEqual(requests.map((r) => r.id), [pending.request_id], "one request per device, however often it asks");
    const renewWhilePending = await d.renew();
    assert.equal(renewWhilePending.status, 401, "a pending device has no certificate to renew with");

    const approved = await cli(dataDir, ["enroll", "approve", pending.request_id]);
    assert.equal(approved.code, 0, approved.out);
    const r = await d.enroll(secret);
    assert.equal(r.status, 200, r.text);
    assert.equal(d.serverId, pending.server_id);
    assert.equal((await server.authority.devices.get(d.serverId))?.status, "active");
    assert.equal((await d.renew()).status, 200, "an approved device renews normally");
    const again = await cli(dataDir, ["enroll", "approve", pending.request_id]);
    assert.equal(again.code, 5, "a decided request cannot be decided again");
  });

  test("reject → 403 enrollment rejected", async () => {
    const d = new HandDevice(server);
    const pending = JSON.parse((await d.enroll(secret)).text) as { request_id: string };
    assert.equal((await cli(dataDir, ["enroll", "reject", pending.request_id, "--reason", "unknown hardware"])).code, 0);
    const r = await d.enroll(secret);
    assert.deepEqual([r.status, r.text], [403, "enrollment rejected\n"]);
  });

  test("a wrong secret is still 401 in manual mode, and creates no request", async () => {
    const d = new HandDevice(server);
    const r = await d.enroll("wrong");
    assert.deepEqual([r.status, r.text], [401, "unauthorized\n"]);
    assert.equal(await server.authority.devices.findByFingerprint(d.fingerprint), undefined);
  });
});

describe("imprint revocation policy", () => {
  test("allow_revoked_reenroll lets a revoked device enroll again (the original's behaviour)", async () => {
    const { server, secret, dataDir } = await imprintServer((c) => void (c.imprint.allowRevokedReenroll = true));
    try {
      const d = new HandDevice(server);
      await d.enroll(secret);
      const id = d.serverId;
      const { code, out } = await cli(dataDir, ["device", "revoke", id]);
      assert.equal(code, 0, out);
      assert.equal((JSON.parse(out) as { revokedCertificates: string[] }).revokedCertificates.length, 1);
      assert.equal((await d.renew()).status, 401);
      const r = await d.enroll(secret);
      assert.equal(r.status, 200, r.text);
      assert.equal(d.serverId, id);
      assert.equal((await server.authority.devices.get(id))?.status, "active");
    } finally {
      await server.close(100);
    }
  });
});
