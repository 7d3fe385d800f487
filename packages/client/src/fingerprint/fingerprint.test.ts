import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { generateFingerprint, hashAttributes, IDENTITY_FILE, type FingerprintOptions } from "./fingerprint.js";
import { parseIoregUuid, selectPrimaryMac } from "./collectors.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "client-fp-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const fresh = (name: string) => path.join(tmp, `${name}-${++seq}`);
const sha256Hex = (s: string) => crypto.createHash("sha256").update(s, "utf8").digest("hex");

interface Nic { address?: string; flags?: string; type?: string }

/** Builds a fake filesystem root with /etc/machine-id, DMI product_uuid and /sys/class/net entries. */
function fakeRoot(opts: { machineId?: string; productUuid?: string; nics?: Record<string, Nic> }): string {
  const root = fresh("root");
  fs.mkdirSync(root);
  if (opts.machineId !== undefined) {
    fs.mkdirSync(path.join(root, "etc"), { recursive: true });
    fs.writeFileSync(path.join(root, "etc/machine-id"), opts.machineId);
  }
  if (opts.productUuid !== undefined) {
    fs.mkdirSync(path.join(root, "sys/class/dmi/id"), { recursive: true });
    fs.writeFileSync(path.join(root, "sys/class/dmi/id/product_uuid"), opts.productUuid);
  }
  if (opts.nics) {
    for (const [name, nic] of Object.entries(opts.nics)) {
      const dir = path.join(root, "sys/class/net", name);
      fs.mkdirSync(dir, { recursive: true });
      if (nic.address !== undefined) fs.writeFileSync(path.join(dir, "address"), nic.address + "\n");
      fs.writeFileSync(path.join(dir, "flags"), (nic.flags ?? "0x1003") + "\n");
      fs.writeFileSync(path.join(dir, "type"), (nic.type ?? "1") + "\n");
    }
  }
  return root;
}

const linux = (root: string, extra: FingerprintOptions = {}): FingerprintOptions => ({ platform: "linux", root, ...extra });
const nicTable = (entries: Record<string, { mac: string; internal?: boolean }>) => () =>
  Object.fromEntries(
    Object.entries(entries).map(([name, e]) => [
      name,
      [{ address: "10.0.0.1", netmask: "255.0.0.0", family: "IPv4" as const, mac: e.mac, internal: e.internal ?? false, cidr: "10.0.0.1/8" }],
    ]),
  );

// Interfaces a real Linux host shows; each one before eth0 in byte order is excluded by one rule.
const HOST_NICS: Record<string, Nic> = {
  "a-loop": { address: "52:54:00:99:99:99", flags: "0x9" }, // IFF_LOOPBACK set
  "b-tun": { address: "0a:00:00:01", type: "768" }, // IP-in-IP tunnel: "address" is an IPv4 address
  "b-gre": { address: "c0:a8:01:01", type: "778" },
  bond0: { address: "00:00:00:00:00:00" }, // all zero
  br0: { address: "00:00:00:aa:bb:cc" }, // 00:00:00 prefix
  docker0: { address: "02:42:ac:11:00:02" }, // Docker bridge
  dummy: {}, // no address file
  eth0: { address: "52:54:00:12:34:56", flags: "0x1002" }, // down: still eligible
  eth1: { address: "52:54:00:ff:ff:ff" },
  lo: { address: "00:00:00:00:00:00", flags: "0x9", type: "772" },
};

test("example A (Linux): machine-id, product_uuid and the primary NIC from sysfs", async () => {
  const root = fakeRoot({
    machineId: "4A6F1D2C9B8E4F7A8C3D2E1F0A9B8C7D\n",
    productUuid: "EC2A3B4C-1D2E-3F40-5162-738495A6B7C8\n",
    nics: HOST_NICS,
  });
  const r = await generateFingerprint(linux(root));
  assert.deepEqual(r.attributes, {
    machine_id: "4a6f1d2c9b8e4f7a8c3d2e1f0a9b8c7d",
    product_uuid: "ec2a3b4c-1d2e-3f40-5162-738495a6b7c8",
    mac_address: "52:54:00:12:34:56",
  });
  assert.equal(r.tier, "hardware");
  assert.equal(r.fingerprint, "sha256:59e913b99a1b957e6cca9a4b49def1b0ebc8dccb76c935a8f73dc5805d731ded");
  assert.equal(r.fingerprint.length, 71);
});

test("examples B and C: hashAttributes over the exact pairs", async () => {
  assert.equal(hashAttributes({ mac_address: "aa:bb:cc:dd:ee:ff" }), "sha256:5049ba347fd05728c8fd768514991cbc78d488221fa23f25d2832ed84080829c");
  assert.equal(
    hashAttributes({ machine_id: "abc123", mac_address: "aa:bb:cc:dd:ee:ff" }),
    "sha256:1c461733ddbbb9a7993e0dc089cad08682c51e64e87a50b07163f85bdd93440a",
  );
  // B through the collectors: only a NIC, and an empty machine-id file that must not count.
  const root = fakeRoot({ machineId: "  \n", nics: { enp3s0: { address: "AA:BB:CC:DD:EE:FF" } } });
  const r = await generateFingerprint(linux(root));
  assert.deepEqual(r.attributes, { mac_address: "aa:bb:cc:dd:ee:ff" });
  assert.equal(r.fingerprint, "sha256:5049ba347fd05728c8fd768514991cbc78d488221fa23f25d2832ed84080829c");
});

test("example D (Windows): machine_guid from the injected registry reader, MAC from the interface table", async () => {
  const r = await generateFingerprint({
    platform: "win32",
    readWindowsMachineGuid: async () => "6F1C2D3E-4B5A-4978-8A6B-5C4D3E2F1A0B\r\n",
    networkInterfaces: nicTable({
      "Loopback Pseudo-Interface 1": { mac: "00:00:00:00:00:00", internal: true },
      Ethernet: { mac: "00:15:5D:01:02:03" },
      "vEthernet (WSL)": { mac: "00:15:5d:aa:aa:aa" },
    }),
  });
  assert.deepEqual(r.attributes, { machine_guid: "6f1c2d3e-4b5a-4978-8a6b-5c4d3e2f1a0b", mac_address: "00:15:5d:01:02:03" });
  assert.equal(r.fingerprint, "sha256:257390012b713ced91532cdfadec62a9af875aedae9a4e58b1ef7c36360dd08b");
});

test("example E (macOS): platform_uuid parsed from ioreg output", async () => {
  const ioreg = [
    "+-o MacBookPro18,3  <class IOPlatformExpertDevice, id 0x100000116, registered, matched, active, busy 0 (0 ms), retain 37>",
    "    {",
    '      "IOPlatformSerialNumber" = "C02XXXXXXX"',
    '      "IOPlatformUUID" = "564D1A2B-3C4D-5E6F-7081-92A3B4C5D6E7"',
    "    }",
  ].join("\n");
  const r = await generateFingerprint({
    platform: "darwin",
    readDarwinIoreg: async () => ioreg,
    networkInterfaces: nicTable({ lo0: { mac: "00:00:00:00:00:00", internal: true }, en0: { mac: "a4:83:e7:11:22:33" }, utun0: { mac: "" } }),
  });
  assert.deepEqual(r.attributes, { platform_uuid: "564d1a2b-3c4d-5e6f-7081-92a3b4c5d6e7", mac_address: "a4:83:e7:11:22:33" });
  assert.equal(r.fingerprint, "sha256:c3f4ca9bc4d8ef692a65314c14b248fcd56b0c30e852786a52d75cc9d098324b");
  assert.equal(parseIoregUuid('"IOPlatformUUID" = "X=Y"'), "x=y");
  assert.equal(parseIoregUuid("no uuid here"), undefined);
});

test("example F (generated): random UUID hashed, fingerprint persisted with mode 0600 in a 0700 dir", async () => {
  const dir = path.join(fresh("persist"), "nested");
  const r = await generateFingerprint(linux(fakeRoot({}), { persistDir: dir, randomUUID: () => "3f2b8c1e-9d4a-4b7e-8f10-2a3b4c5d6e7f" }));
  assert.equal(r.tier, "generated");
  assert.equal(r.fingerprint, "sha256:f770e2aead5fbb306b5fbb5be85f95dffd3cc422aed8f163cf1bf741f5c7b4fb");
  assert.deepEqual(r.attributes, {});
  const file = path.join(dir, IDENTITY_FILE);
  assert.equal(fs.readFileSync(file, "utf8"), r.fingerprint + "\n");
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.equal(fs.existsSync(file + ".tmp"), false);
  // The next start finds no hardware again and reads the file back.
  const again = await generateFingerprint(linux(fakeRoot({}), { persistDir: dir, randomUUID: () => assert.fail("must not generate") }));
  assert.deepEqual(again, { fingerprint: r.fingerprint, tier: "persisted", attributes: {} });
});

test("persisted tier returns the trimmed content verbatim, unvalidated; a blank file is ignored", async () => {
  const dir = fresh("persist");
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, IDENTITY_FILE), "  not-a-hash \n");
  const r = await generateFingerprint(linux(fakeRoot({}), { persistDir: dir }));
  assert.deepEqual(r, { fingerprint: "not-a-hash", tier: "persisted", attributes: {} });

  fs.writeFileSync(path.join(dir, IDENTITY_FILE), " \n\t");
  const g = await generateFingerprint(linux(fakeRoot({}), { persistDir: dir, randomUUID: () => "u" }));
  assert.equal(g.tier, "generated");
  assert.equal(fs.readFileSync(path.join(dir, IDENTITY_FILE), "utf8"), g.fingerprint + "\n");
});

test("hardware tier overwrites the identity file by default (imprint behaviour)", async () => {
  const dir = fresh("persist");
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, IDENTITY_FILE), "sha256:old\n");
  const r = await generateFingerprint(linux(fakeRoot({ nics: { eth0: { address: "aa:bb:cc:dd:ee:ff" } } }), { persistDir: dir }));
  assert.equal(r.tier, "hardware");
  assert.equal(fs.readFileSync(path.join(dir, IDENTITY_FILE), "utf8"), r.fingerprint + "\n");
  assert.equal(fs.statSync(path.join(dir, IDENTITY_FILE)).mode & 0o777, 0o600);
});

test("preferPersisted: an existing identity wins over changed hardware and is never overwritten", async () => {
  const dir = fresh("persist");
  const first = await generateFingerprint(linux(fakeRoot({ nics: { eth0: { address: "aa:bb:cc:dd:ee:ff" } } }), { persistDir: dir, preferPersisted: true }));
  assert.equal(first.tier, "hardware");
  assert.equal(fs.readFileSync(path.join(dir, IDENTITY_FILE), "utf8"), first.fingerprint + "\n");

  // The container came back with a new random MAC: same identity.
  const newMac = linux(fakeRoot({ nics: { eth0: { address: "52:54:00:00:00:01" } } }), { persistDir: dir, preferPersisted: true });
  const second = await generateFingerprint(newMac);
  assert.deepEqual(second, { fingerprint: first.fingerprint, tier: "persisted", attributes: {} });
  assert.equal(fs.readFileSync(path.join(dir, IDENTITY_FILE), "utf8"), first.fingerprint + "\n");

  // Without the flag the same host recomputes and overwrites.
  const plain = await generateFingerprint({ ...newMac, preferPersisted: false });
  assert.equal(plain.tier, "hardware");
  assert.notEqual(plain.fingerprint, first.fingerprint);
  assert.equal(fs.readFileSync(path.join(dir, IDENTITY_FILE), "utf8"), plain.fingerprint + "\n");
});

test("tier 4: no attributes and no persistDir is imprint's error; identity write errors follow imprint", async () => {
  await assert.rejects(generateFingerprint(linux(fakeRoot({}))), { message: "fingerprint: no hardware attributes available and no PersistDir configured" });
  await assert.rejects(generateFingerprint(linux(fakeRoot({}), { persistDir: "" })), /no PersistDir configured/);

  const blocker = fresh("file");
  fs.writeFileSync(blocker, "x");
  const unwritable = path.join(blocker, "sub");
  // Hardware tier ignores a failed write…
  const hw = await generateFingerprint(linux(fakeRoot({ nics: { eth0: { address: "aa:bb:cc:dd:ee:ff" } } }), { persistDir: unwritable }));
  assert.equal(hw.tier, "hardware");
  // …the generated tier does not: an identity that cannot be kept would change on every start.
  await assert.rejects(generateFingerprint(linux(fakeRoot({}), { persistDir: unwritable })), /^FingerprintError: fingerprint: failed to generate identity: /);
});

test("hashAttributes skips empty values, sorts keys by UTF-8 bytes and always yields 71 characters", () => {
  const b = "sha256:5049ba347fd05728c8fd768514991cbc78d488221fa23f25d2832ed84080829c";
  assert.equal(hashAttributes({ machine_id: "", mac_address: "aa:bb:cc:dd:ee:ff", product_uuid: "" }), b);
  assert.notEqual(hashAttributes({ machine_id: " ", mac_address: "aa:bb:cc:dd:ee:ff" }), b);
  // U+FFFD sorts before U+1F600 by bytes (EF… < F0…) but after it by UTF-16 code units (FFFD > D83D).
  const byBytes = "sha256:" + sha256Hex("\ufffd=1\n\u{1F600}=2\n");
  assert.equal(hashAttributes({ "\u{1F600}": "2", "\ufffd": "1" }), byBytes);
  assert.equal(hashAttributes({ Z: "1", a: "2" }), "sha256:" + sha256Hex("Z=1\na=2\n"));
  for (const pairs of [{}, { k: "v" }, { x: "é".repeat(1000) }] as Record<string, string>[]) assert.match(hashAttributes(pairs), /^sha256:[0-9a-f]{64}$/);
});

test("selectPrimaryMac: byte-ordered names, loopback and unusable addresses skipped", () => {
  assert.equal(
    selectPrimaryMac([
      { name: "wlan0", mac: "11:22:33:44:55:66", loopback: false },
      { name: "Eth9", mac: "AA:00:00:00:00:01", loopback: false }, // "E" < "w" and < "e"
      { name: "eth0", mac: "aa:00:00:00:00:02", loopback: false },
    ]),
    "aa:00:00:00:00:01",
  );
  assert.equal(selectPrimaryMac([{ name: "lo", mac: "12:34:56:78:9a:bc", loopback: true }, { name: "x", mac: "02:42:00:00:00:01", loopback: false }]), undefined);
});
