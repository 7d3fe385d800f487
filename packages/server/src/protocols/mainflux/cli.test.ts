/**
 * `tessera token create|list|revoke` and `tessera thing add|list|remove`
 * against a running server's data directory: values printed once and never
 * listed, roles enforced by the API, thing removal revoking certificates.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { certOf, mainfluxServer, type MainfluxKit } from "./test-kit.js";

describe("tessera token / thing", () => {
  let k: MainfluxKit;
  before(async () => {
    k = await mainfluxServer();
  });
  after(() => k.close());

  const cli = async (args: string[], json = true) => {
    const { main } = await import("../../cli/main.js");
    const out: string[] = [];
    const err: string[] = [];
    const code = await main([...args, ...(json ? ["--json"] : [])], { out: (t) => out.push(t), err: (t) => err.push(t) }, { TESSERA_DATA_DIR: k.dataDir, TESSERA_LOG_LEVEL: "silent", TESSERA_LITEBOOT_LISTEN: "off" });
    return { code, out: out.join("\n"), err: err.join("\n") };
  };

  test("token create prints a generated value once; list shows roles, never values; the role is enforced; revoke", async () => {
    const created = await cli(["token", "create", "ops", "--role", "viewer"]);
    assert.equal(created.code, 0, created.err + created.out);
    const { token, role } = JSON.parse(created.out) as { token: string; role: string };
    assert.equal(role, "viewer");
    assert.ok(token.length >= 40);
    const human = await cli(["token", "create", "ops2", "--role", "editor", "--value", "a-long-enough-operator-token"], false);
    assert.equal(human.code, 0);
    assert.ok(!human.out.includes("a-long-enough-operator-token"), "a given value is not echoed");
    const list = await cli(["token", "list"]);
    const rows = JSON.parse(list.out) as Array<{ name: string; role: string; revokedAt: string | null }>;
    assert.deepEqual(rows.filter((r) => r.name.startsWith("ops")).map((r) => [r.name, r.role, r.revokedAt]), [["ops", "viewer", null], ["ops2", "editor", null]]);
    assert.ok(!list.out.includes(token));

    const body = { thing_id: k.things.a.id, ttl: "1h", key_type: "ecdsa", key_bits: 256 };
    assert.equal((await k.req("POST", "/certs", { token, body })).status, 403, "viewer cannot issue");
    assert.equal((await k.req("GET", `/things/${k.things.a.id}/serials`, { token })).status, 200);
    assert.equal((await k.req("POST", "/certs", { token: "a-long-enough-operator-token", body })).status, 201);

    assert.equal((await cli(["token", "create", "ops", "--role", "admin"])).code, 5, "name taken");
    assert.equal((await cli(["token", "create", "bad", "--role", "owner"])).code, 5);
    assert.equal((await cli(["token", "create", "bad"])).code, 2, "--role is required");
    assert.equal((await cli(["token", "create", "short", "--role", "viewer", "--value", "short"])).code, 5);
    assert.equal((await cli(["token", "revoke", "ops"])).code, 0);
    assert.equal((await cli(["token", "revoke", "ops"])).code, 4);
    assert.equal((await k.req("GET", `/things/${k.things.a.id}/serials`, { token })).status, 403, "revoked");
    assert.ok((JSON.parse((await cli(["token", "list"])).out) as Array<{ name: string; revokedAt: string | null }>).find((r) => r.name === "ops")?.revokedAt);
    // A revoked token's name can be used again.
    assert.equal((await cli(["token", "create", "ops", "--role", "admin"])).code, 0);
  });

  test("thing add generates a key printed once (the certificates' CN); list never shows keys; remove revokes its certificates", async () => {
    const added = await cli(["thing", "add", "sensor-7", "--external-key", "sensor-7-external-key"]);
    assert.equal(added.code, 0, added.err + added.out);
    const { key } = JSON.parse(added.out) as { key: string };
    assert.match(key, /^[0-9a-f-]{36}$/);
    const given = await cli(["thing", "add", "sensor-8", "--key", "sensor-8-key"], false);
    assert.equal(given.code, 0);
    assert.ok(!given.out.includes("sensor-8-key"));
    const list = await cli(["thing", "list"]);
    const rows = JSON.parse(list.out) as Array<{ id: string; externalKey: boolean }>;
    assert.deepEqual(rows.filter((r) => r.id.startsWith("sensor")).map((r) => [r.id, r.externalKey]), [["sensor-7", true], ["sensor-8", false]]);
    assert.ok(!list.out.includes(key) && !list.out.includes("sensor-7-external-key"));

    assert.equal((await cli(["thing", "add", "sensor-7"])).code, 5, "id taken");
    assert.equal((await cli(["thing", "add", "sensor-9", "--key", "sensor-8-key"])).code, 5, "key taken");
    assert.equal((await cli(["thing", "add", "bad id"])).code, 5);
    assert.equal((await cli(["thing", "add", "x", "--key", "k".repeat(65)])).code, 5, "too long for a CN");

    const issued = await k.issue({ id: "sensor-7", key });
    assert.equal(certOf(issued.certificate).cn, key);
    const d = await k.req("GET", `/certs/${issued.serial}/download`, { auth: "External sensor-7-external-key" });
    assert.equal(d.status, 200);

    const removed = await cli(["thing", "remove", "sensor-7"]);
    assert.equal(removed.code, 0);
    assert.deepEqual(JSON.parse(removed.out).revoked, [BigInt(issued.serial).toString(16)]);
    assert.equal((await k.req("GET", `/certs/${issued.serial}`, { token: k.tokens.viewer })).status, 404);
    assert.equal((await cli(["thing", "remove", "sensor-7"])).code, 4);
    assert.ok(!(JSON.parse((await cli(["thing", "list"])).out) as Array<{ id: string }>).some((r) => r.id === "sensor-7"));
  });

  test("an id a device of another protocol has is refused", async () => {
    const { generateKeyPair, buildCsr } = await import("@tessera/pki");
    const { privateKey } = generateKeyPair("ec-p256");
    await k.server.authority.issue({
      csr: buildCsr({ subject: [{ type: "CN", value: "x" }], privateKey }), protocol: "cli", credential: { kind: "operator", actor: "test" },
      device: { id: "taken-device", fingerprint: null, attributes: {}, status: "active" },
    });
    const r = await cli(["thing", "add", "taken-device"]);
    assert.equal(r.code, 5);
    assert.match(r.out, /cli device has this id/);
  });
});
