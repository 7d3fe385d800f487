import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig, type LoadConfigOptions, type LoadConfigResult } from "./load.js";
import { parseDuration, formatDuration } from "./duration.js";
import { defaultProfiles } from "./defaults.js";
import type { TesseraConfig } from "./types.js";

const DAY = 86_400;
let root: string;
let n = 0;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), "tessera-config-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh empty working directory, optionally with a tessera.toml in it. */
async function workdir(toml?: string): Promise<string> {
  const dir = path.join(root, `w${n++}`);
  await mkdir(dir, { recursive: true });
  if (toml !== undefined) await writeFile(path.join(dir, "tessera.toml"), toml);
  return dir;
}

function load(cwd: string, opts: Partial<LoadConfigOptions> = {}): Promise<LoadConfigResult> {
  return loadConfig({ flags: {}, env: {}, systemHostname: () => undefined, cwd, ...opts });
}

/** Loads and asserts there were no problems. */
async function ok(cwd: string, opts: Partial<LoadConfigOptions> = {}): Promise<TesseraConfig> {
  const r = await load(cwd, opts);
  assert.deepEqual(r.problems, []);
  assert.ok(r.config);
  return r.config;
}

describe("durations", () => {
  test("parses units, combinations and bare seconds", () => {
    assert.equal(parseDuration("90d"), 90 * DAY);
    assert.equal(parseDuration("24h"), 86_400);
    assert.equal(parseDuration("30m"), 1_800);
    assert.equal(parseDuration("10s"), 10);
    assert.equal(parseDuration("1y"), 365 * DAY);
    assert.equal(parseDuration("2w"), 14 * DAY);
    assert.equal(parseDuration("1h30m"), 5_400);
    assert.equal(parseDuration("1d 12h"), 1.5 * DAY);
    assert.equal(parseDuration("3600"), 3_600);
    assert.equal(parseDuration(42), 42);
    assert.equal(parseDuration("0"), 0);
  });
  test("rejects everything else", () => {
    for (const bad of ["", "d", "1.5h", "-1h", "1x", "30m1h", "1h1h", "ninety days", "1 hour"]) assert.equal(parseDuration(bad), undefined, bad);
    for (const bad of [-1, 1.5, NaN, true, null, ["1h"]]) assert.equal(parseDuration(bad), undefined, String(bad));
  });
  test("formats seconds back to a short string that round-trips", () => {
    assert.equal(formatDuration(90 * DAY), "90d");
    assert.equal(formatDuration(5_400), "1h30m");
    assert.equal(formatDuration(0), "0s");
    assert.equal(formatDuration(DAY + 61), "1d1m1s");
    for (const s of [1, 59, 3_601, 365 * DAY, 123_456_789]) assert.equal(parseDuration(formatDuration(s)), s);
  });
});

describe("defaults", () => {
  test("no file, no env, no flags", async () => {
    const cwd = await workdir();
    const r = await load(cwd);
    assert.equal(r.file, undefined);
    const c = r.config!;
    assert.equal(c.dataDir, path.join(cwd, "data"));
    assert.equal(c.hostname, "localhost");
    assert.equal(c.databaseUrl, `sqlite:${path.join(cwd, "data", "tessera.db")}`);
    assert.equal(c.caPassphraseFile, path.join(cwd, "data", "ca", "passphrase"));
    assert.deepEqual(c.listeners, [{ name: "main", host: "127.0.0.1", port: 8443, clientCert: "request", clientCaNames: "issuing", protocols: ["*"], maxTls: "1.3" }]);
    assert.equal(c.httpListen, null);
    assert.equal(c.bodyLimit, 65_536);
    assert.equal(c.logLevel, "info");
    assert.equal(c.defaultProfile, "device");
    assert.deepEqual(c.ca, { keyType: "ec-p256", name: "Tessera", organization: "Tessera" });
    assert.deepEqual(c.crl, { validity: 86_400, refreshBefore: 3_600 });
    assert.deepEqual(c.serverCertificate, { validity: 90 * DAY, renewBefore: 30 * DAY });
    assert.deepEqual(c.sqlite, { synchronous: "full" });
    assert.equal(c.issuanceBatchMax, 256);
    assert.ok(Object.values(c.sources).every((s) => s === "default"));
    assert.equal(c.sources["listeners.main.address"], "default");
    assert.equal(c.sources["profiles.server.validity"], "default");
  });

  test("built-in profiles", async () => {
    const c = await ok(await workdir());
    assert.deepEqual(c.profiles["device"], {
      validity: 365 * DAY, backdate: 300, keyUsage: ["digitalSignature"], extKeyUsage: ["clientAuth"], basicConstraints: true,
      subjectKeyIdentifier: true, authorityKeyIdentifier: true, serial: { kind: "random", bytes: 16 }, subject: "csr", sans: "csr",
      minRsaBits: 2048, ecCurves: ["P-256", "P-384", "P-521"], allowEd25519: true, allowRsa: true, issuer: "issuing",
    });
    assert.deepEqual(c.profiles["server"], {
      ...c.profiles["device"], validity: 90 * DAY, keyUsage: ["digitalSignature", "keyEncipherment"], extKeyUsage: ["serverAuth"], sans: "request",
    });
    // Fresh copies: changing one result must not leak into the next.
    c.profiles["device"]!.keyUsage.push("keyAgreement");
    assert.deepEqual(defaultProfiles()["device"]!.keyUsage, ["digitalSignature"]);
  });
});

describe("environment", () => {
  test("TESSERA_DATA_DIR resolves against cwd and moves the derived defaults", async () => {
    const cwd = await workdir();
    const c = await ok(cwd, { env: { TESSERA_DATA_DIR: "state" } });
    assert.equal(c.dataDir, path.join(cwd, "state"));
    assert.equal(c.databaseUrl, `sqlite:${path.join(cwd, "state", "tessera.db")}`);
    assert.equal(c.caPassphraseFile, path.join(cwd, "state", "ca", "passphrase"));
    assert.equal(c.sources["data_dir"], "env");
    assert.equal(c.sources["database_url"], "default");
  });

  test("TESSERA_LISTEN accepts IPv4, bracketed IPv6 and a bare :port", async () => {
    const cwd = await workdir();
    const cases: Array<[string, string, number]> = [["[::1]:8443", "::1", 8443], ["0.0.0.0:9443", "0.0.0.0", 9443], [":8443", "0.0.0.0", 8443], ["tessera.local:443", "tessera.local", 443]];
    for (const [value, host, port] of cases) {
      const c = await ok(cwd, { env: { TESSERA_LISTEN: value } });
      assert.equal(c.listeners[0]!.host, host, value);
      assert.equal(c.listeners[0]!.port, port, value);
      assert.equal(c.sources["listeners.main.address"], "env");
    }
  });

  test("TESSERA_HTTP_LISTEN sets or turns off the plain-HTTP listener", async () => {
    const cwd = await workdir('http_listen = "127.0.0.1:8080"\n');
    assert.deepEqual((await ok(cwd)).httpListen, { host: "127.0.0.1", port: 8080 });
    assert.deepEqual((await ok(cwd, { env: { TESSERA_HTTP_LISTEN: "0.0.0.0:80" } })).httpListen, { host: "0.0.0.0", port: 80 });
    const off = await ok(cwd, { env: { TESSERA_HTTP_LISTEN: "off" } });
    assert.equal(off.httpListen, null);
    assert.equal(off.sources["http_listen"], "env");
  });

  test("TESSERA_DATABASE_URL selects PostgreSQL or a SQLite path", async () => {
    const cwd = await workdir();
    const url = async (v: string) => (await ok(cwd, { env: { TESSERA_DATABASE_URL: v } })).databaseUrl;
    assert.equal(await url("postgres://tessera:secret@db:5432/tessera"), "postgres://tessera:secret@db:5432/tessera");
    assert.equal(await url("postgresql://db/tessera?sslmode=require"), "postgresql://db/tessera?sslmode=require");
    assert.equal(await url("sqlite:db/t.db"), `sqlite:${path.join(cwd, "db", "t.db")}`);
    assert.equal(await url("/var/lib/tessera/t.db"), "sqlite:/var/lib/tessera/t.db");
    assert.equal(await url("t.db"), `sqlite:${path.join(cwd, "t.db")}`);
    assert.equal(await url("sqlite:///abs/t.db"), "sqlite:/abs/t.db");
    assert.equal(await url("sqlite::memory:"), "sqlite::memory:");
  });

  test("TESSERA_DATABASE_URL with another scheme is a problem that does not echo credentials", async () => {
    const r = await load(await workdir(), { env: { TESSERA_DATABASE_URL: "mysql://root:hunter2@db/tessera" } });
    assert.equal(r.config, undefined);
    assert.equal(r.problems.length, 1);
    assert.equal(r.problems[0]!.source, "env TESSERA_DATABASE_URL");
    assert.equal(r.problems[0]!.key, "database_url");
    assert.match(r.problems[0]!.message, /unsupported database scheme "mysql:"/);
    assert.doesNotMatch(r.problems[0]!.message, /hunter2/);
  });

  test("TESSERA_CA_PASSPHRASE_FILE, TESSERA_LOG_LEVEL, TESSERA_HOSTNAME", async () => {
    const cwd = await workdir();
    const c = await ok(cwd, { env: { TESSERA_CA_PASSPHRASE_FILE: "secret/pass", TESSERA_LOG_LEVEL: "debug", TESSERA_HOSTNAME: "ca.example.com" } });
    assert.equal(c.caPassphraseFile, path.join(cwd, "secret", "pass"));
    assert.equal(c.logLevel, "debug");
    assert.equal(c.hostname, "ca.example.com");
    assert.equal(c.sources["log_level"], "env");
  });

  test("TESSERA_BODY_LIMIT accepts bytes and k/m suffixes", async () => {
    const cwd = await workdir();
    const limit = async (v: string) => (await ok(cwd, { env: { TESSERA_BODY_LIMIT: v } })).bodyLimit;
    assert.equal(await limit("64k"), 65_536);
    assert.equal(await limit("1m"), 1_048_576);
    assert.equal(await limit("1000"), 1_000);
    assert.equal(await limit("512KiB"), 524_288);
  });

  test("TESSERA_CONFIG names the file; relative to cwd", async () => {
    const cwd = await workdir();
    await writeFile(path.join(cwd, "other.toml"), 'log_level = "warn"\n');
    const r = await load(cwd, { env: { TESSERA_CONFIG: "other.toml" } });
    assert.equal(r.file, path.join(cwd, "other.toml"));
    assert.equal(r.config!.logLevel, "warn");
    assert.equal(r.config!.sources["log_level"], "file");
  });

  test("empty variables count as unset", async () => {
    const c = await ok(await workdir(), { env: { TESSERA_LISTEN: "", TESSERA_LOG_LEVEL: "  " } });
    assert.equal(c.listeners[0]!.port, 8443);
    assert.equal(c.logLevel, "info");
  });

  test("bad env values are reported with their variable", async () => {
    const r = await load(await workdir(), {
      env: { TESSERA_LISTEN: "::1:8443", TESSERA_HTTP_LISTEN: "0.0.0.0", TESSERA_LOG_LEVEL: "verbose", TESSERA_BODY_LIMIT: "0", TESSERA_HOSTNAME: "bad_host!" },
    });
    assert.equal(r.config, undefined);
    const bySource = Object.fromEntries(r.problems.map((p) => [p.source, p]));
    assert.deepEqual(Object.keys(bySource).sort(), ["env TESSERA_BODY_LIMIT", "env TESSERA_HOSTNAME", "env TESSERA_HTTP_LISTEN", "env TESSERA_LISTEN", "env TESSERA_LOG_LEVEL"]);
    assert.match(bySource["env TESSERA_LISTEN"]!.message, /brackets/);
    assert.equal(bySource["env TESSERA_LISTEN"]!.key, "listeners.main.address");
    assert.match(bySource["env TESSERA_BODY_LIMIT"]!.message, /positive/);
  });
});

describe("precedence", () => {
  test("data_dir: flag > env > file > default", async () => {
    const cwd = await workdir('data_dir = "from-file"\n');
    const dataDir = async (opts: Partial<LoadConfigOptions>) => {
      const c = await ok(cwd, opts);
      return [c.dataDir, c.sources["data_dir"]];
    };
    assert.deepEqual(await dataDir({}), [path.join(cwd, "from-file"), "file"]);
    assert.deepEqual(await dataDir({ env: { TESSERA_DATA_DIR: "from-env" } }), [path.join(cwd, "from-env"), "env"]);
    assert.deepEqual(await dataDir({ env: { TESSERA_DATA_DIR: "from-env" }, flags: { "data-dir": "from-flag" } }), [path.join(cwd, "from-flag"), "flag"]);
    assert.deepEqual(await dataDir({ flags: { "data-dir": "/abs/dir" } }), ["/abs/dir", "flag"]);
  });

  test("every other flag overrides env", async () => {
    const cwd = await workdir();
    const c = await ok(cwd, {
      env: { TESSERA_LISTEN: ":1000", TESSERA_HTTP_LISTEN: ":1001", TESSERA_DATABASE_URL: "postgres://env/db", TESSERA_CA_PASSPHRASE_FILE: "env-pass", TESSERA_LOG_LEVEL: "warn" },
      flags: { listen: "127.0.0.1:2000", "http-listen": "off", "database-url": "flag.db", "ca-passphrase-file": "flag-pass", "log-level": "trace", json: true },
    });
    assert.deepEqual([c.listeners[0]!.host, c.listeners[0]!.port], ["127.0.0.1", 2000]);
    assert.equal(c.httpListen, null);
    assert.equal(c.databaseUrl, `sqlite:${path.join(cwd, "flag.db")}`);
    assert.equal(c.caPassphraseFile, path.join(cwd, "flag-pass"));
    assert.equal(c.logLevel, "trace");
    for (const k of ["listeners.main.address", "http_listen", "database_url", "ca_passphrase_file", "log_level"]) assert.equal(c.sources[k], "flag", k);
  });

  test("hostname: flag > file > env > system host name > localhost", async () => {
    const withFile = await workdir('hostname = "file.example"\n');
    const noFile = await workdir();
    const env = { TESSERA_HOSTNAME: "env.example" };
    const systemHostname = () => "system.example";
    const host = async (cwd: string, opts: Partial<LoadConfigOptions>) => {
      const c = await ok(cwd, opts);
      return [c.hostname, c.sources["hostname"]];
    };
    assert.deepEqual(await host(withFile, { flags: { hostname: "flag.example" }, env, systemHostname }), ["flag.example", "flag"]);
    assert.deepEqual(await host(withFile, { env, systemHostname }), ["file.example", "file"]);
    assert.deepEqual(await host(noFile, { env, systemHostname }), ["env.example", "env"]);
    assert.deepEqual(await host(noFile, { systemHostname }), ["system.example", "default"]);
    assert.deepEqual(await host(noFile, {}), ["localhost", "default"]);
    // A machine name that is not a DNS name (or a failing lookup) falls back to localhost.
    assert.deepEqual(await host(noFile, { systemHostname: () => "My_Laptop" }), ["localhost", "default"]);
    assert.deepEqual(await host(noFile, { systemHostname: () => { throw new Error("no"); } }), ["localhost", "default"]);
  });

  test("a flag without a value is a problem", async () => {
    const r = await load(await workdir(), { flags: { "data-dir": true, config: true } });
    assert.deepEqual(r.problems.map((p) => [p.key, p.source]).sort(), [["config", "flag --config"], ["data_dir", "flag --data-dir"]]);
  });
});

describe("TOML file", () => {
  test("[[listeners]]: several listeners, TESSERA_LISTEN overrides the first", async () => {
    const cwd = await workdir(`
[[listeners]]
name = "public"
address = "0.0.0.0:443"
client_cert = "none"
client_ca_names = "none"
protocols = ["est", "liteboot", "some-future-protocol"]

[[listeners]]
name = "devices"
address = "[::]:8444"
client_cert = "require"
client_ca_names = "all"
`);
    const c = await ok(cwd);
    assert.deepEqual(c.listeners, [
      { name: "public", host: "0.0.0.0", port: 443, clientCert: "none", clientCaNames: "none", protocols: ["est", "liteboot", "some-future-protocol"], maxTls: "1.3" },
      { name: "devices", host: "::", port: 8444, clientCert: "require", clientCaNames: "all", protocols: ["*"], maxTls: "1.3" },
    ]);
    assert.equal(c.sources["listeners.public.address"], "file");
    assert.equal(c.sources["listeners.devices.protocols"], "default");
    const over = await ok(cwd, { env: { TESSERA_LISTEN: "10.0.0.1:8443" } });
    assert.deepEqual([over.listeners[0]!.host, over.listeners[0]!.port, over.listeners[1]!.port], ["10.0.0.1", 8443, 8444]);
    assert.equal(over.sources["listeners.public.address"], "env");
  });

  test("[listen] changes the main listener", async () => {
    const c = await ok(await workdir('[listen]\naddress = ":9443"\nclient_cert = "require"\n'));
    assert.deepEqual(c.listeners, [{ name: "main", host: "0.0.0.0", port: 9443, clientCert: "require", clientCaNames: "issuing", protocols: ["*"], maxTls: "1.3" }]);
  });

  test("listener conflicts: duplicate names, same address, wildcard overlap, missing name, both forms", async () => {
    const r = await load(await workdir(`
http_listen = "127.0.0.1:443"
[listen]
address = ":1"
[[listeners]]
name = "a"
address = "0.0.0.0:443"
[[listeners]]
name = "a"
address = "127.0.0.1:8443"
[[listeners]]
address = "127.0.0.1:8443"
[[listeners]]
name = "c"
address = "127.0.0.1:0"
[[listeners]]
name = "d"
address = "127.0.0.1:0"
`));
    const got = r.problems.map((p) => `${p.key}: ${p.message}`);
    assert.ok(got.some((m) => m.startsWith("listeners: use either [listen] or [[listeners]]")), got.join("\n"));
    assert.ok(got.some((m) => m.startsWith('listeners.a: listener name "a" is used more than once')), got.join("\n"));
    assert.ok(got.some((m) => m.startsWith("listeners[2].name: every listener after the first needs a name")), got.join("\n"));
    assert.ok(got.some((m) => m.startsWith("listeners.main.address: 127.0.0.1:8443 is already used by listener \"a\"")), got.join("\n"));
    assert.ok(got.some((m) => m.startsWith('http_listen: 127.0.0.1:443 is already used by listener "a" (0.0.0.0:443)')), got.join("\n"));
    assert.equal(r.problems.length, 5, got.join("\n"));
  });

  test("profiles: a built-in name overrides only what it sets; new profiles start from device", async () => {
    const cwd = await workdir(`
default_profile = "sensor"
[profiles.server]
validity = "30d"
[profiles.sensor]
validity = "10y"
backdate = "1h"
key_usage = ["digitalSignature", "keyAgreement"]
ext_key_usage = ["clientAuth", "1.3.6.1.4.1.99999.1"]
serial = "int64"
subject = "request"
sans = "none"
min_rsa_bits = 3072
ec_curves = ["P-256"]
allow_ed25519 = false
allow_rsa = false
basic_constraints = false
subject_key_identifier = false
authority_key_identifier = false
[profiles.wide]
serial_bytes = 20
`);
    const c = await ok(cwd);
    const defaults = defaultProfiles();
    assert.deepEqual(c.profiles["server"], { ...defaults["server"], validity: 30 * DAY });
    assert.deepEqual(c.profiles["device"], defaults["device"]);
    assert.deepEqual(c.profiles["sensor"], {
      validity: 3650 * DAY, backdate: 3600, keyUsage: ["digitalSignature", "keyAgreement"], extKeyUsage: ["clientAuth", "1.3.6.1.4.1.99999.1"],
      basicConstraints: false, subjectKeyIdentifier: false, authorityKeyIdentifier: false, serial: { kind: "int64" }, subject: "request",
      sans: "none", minRsaBits: 3072, ecCurves: ["P-256"], allowEd25519: false, allowRsa: false, issuer: "issuing",
    });
    assert.deepEqual(c.profiles["wide"], { ...defaults["device"], serial: { kind: "random", bytes: 20 } });
    assert.equal(c.defaultProfile, "sensor");
    assert.equal(c.sources["profiles.server.validity"], "file");
    assert.equal(c.sources["profiles.server.backdate"], "default");
    assert.equal(c.sources["profiles.wide.serial"], "file");
    assert.equal(c.sources["default_profile"], "file");
  });

  test("sections: ca, crl, server_certificate, sqlite, body_limit, issuance_batch_max", async () => {
    const c = await ok(await workdir(`
body_limit = "1m"
issuance_batch_max = 64
[ca]
key_type = "rsa-3072"
name = "Acme"
organization = "Acme Corp"
[crl]
validity = "7d"
refresh_before = "1d"
[server_certificate]
validity = "1y"
renew_before = 2592000
[sqlite]
synchronous = "normal"
`));
    assert.equal(c.bodyLimit, 1_048_576);
    assert.equal(c.issuanceBatchMax, 64);
    assert.deepEqual(c.ca, { keyType: "rsa-3072", name: "Acme", organization: "Acme Corp" });
    assert.deepEqual(c.crl, { validity: 7 * DAY, refreshBefore: DAY });
    assert.deepEqual(c.serverCertificate, { validity: 365 * DAY, renewBefore: 30 * DAY });
    assert.equal(c.sqlite.synchronous, "normal");
    assert.equal(c.sources["crl.refresh_before"], "file");
    assert.equal(c.sources["sqlite.synchronous"], "file");
  });

  test("relative paths in the file resolve against the file's directory", async () => {
    const cwd = await workdir();
    const etc = path.join(cwd, "etc");
    await mkdir(etc);
    await writeFile(path.join(etc, "tessera.toml"), 'data_dir = "state"\nca_passphrase_file = "secrets/pass"\ndatabase_url = "sqlite:db/t.db"\n');
    const r = await load(cwd, { flags: { config: "etc/tessera.toml" } });
    assert.equal(r.file, path.join(etc, "tessera.toml"));
    assert.equal(r.config!.dataDir, path.join(etc, "state"));
    assert.equal(r.config!.caPassphraseFile, path.join(etc, "secrets", "pass"));
    assert.equal(r.config!.databaseUrl, `sqlite:${path.join(etc, "db", "t.db")}`);
    // The same values from a flag resolve against cwd instead.
    const f = await ok(cwd, { flags: { config: "etc/tessera.toml", "data-dir": "state" } });
    assert.equal(f.dataDir, path.join(cwd, "state"));
  });

  test("database_url in the file: postgres selects PostgreSQL", async () => {
    const c = await ok(await workdir('database_url = "postgresql://u:p@localhost/tessera"\n'));
    assert.equal(c.databaseUrl, "postgresql://u:p@localhost/tessera");
    assert.equal(c.sources["database_url"], "file");
  });

  test("every problem at once: four mistakes, four problems", async () => {
    const r = await load(await workdir(`
data-dir = "/srv/tessera"
log_level = "verbose"
[listen]
address = "localhost"
[profiles.device]
validity = "ninety days"
`));
    assert.equal(r.config, undefined);
    assert.equal(r.problems.length, 4, JSON.stringify(r.problems, null, 2));
    const byKey = Object.fromEntries(r.problems.map((p) => [p.key, p]));
    assert.equal(byKey["data-dir"]!.message, 'unknown key; did you mean "data_dir"?');
    assert.match(byKey["log_level"]!.message, /expected one of "fatal", .*got "verbose"/);
    assert.match(byKey["listen.address"]!.message, /host:port/);
    assert.match(byKey["profiles.device.validity"]!.message, /duration/);
    assert.ok(r.problems.every((p) => p.source === "file"));
  });

  test("unknown keys in nested tables, bad types and bad names, all reported", async () => {
    const r = await load(await workdir(`
default_profile = "devcie"
body_limit = 0
issuance_batch_max = 1.5
http_listen = "1.2.3.4:99999"
[ca]
key_typ = "ec-p256"
[crl]
validity = "1h"
refresh_before = "2h"
[listen]
adress = ":8443"
protocols = []
[profiles.device]
key_usage = ["digitalSignatur"]
ext_key_usage = ["clientauth"]
serial = "int64"
serial_bytes = 12
ec_curves = "P-256"
allow_rsa = "yes"
[profiles."bad name"]
validity = "1d"
[profiles.nokeys]
allow_rsa = false
allow_ed25519 = false
ec_curves = []
[profiles.short]
validity = "1m"
`));
    const byKey = Object.fromEntries(r.problems.map((p) => [p.key, p.message]));
    assert.deepEqual(Object.keys(byKey).sort(), [
      "body_limit", "ca.key_typ", "crl.refresh_before", "default_profile", "http_listen", "issuance_batch_max", "listen.adress", "listen.protocols",
      "profiles.bad name", "profiles.device.allow_rsa", "profiles.device.ec_curves", "profiles.device.ext_key_usage", "profiles.device.key_usage",
      "profiles.device.serial_bytes", "profiles.nokeys", "profiles.short.validity",
    ]);
    assert.equal(byKey["ca.key_typ"], 'unknown key; did you mean "key_type"?');
    assert.equal(byKey["listen.adress"], 'unknown key; did you mean "address"?');
    assert.match(byKey["profiles.device.key_usage"]!, /did you mean "digitalSignature"\?/);
    assert.match(byKey["profiles.device.ext_key_usage"]!, /did you mean "clientAuth"\?/);
    assert.match(byKey["default_profile"]!, /no profile named "devcie".*did you mean "device"\?/);
    assert.match(byKey["http_listen"]!, /port must be 0 to 65535/);
    assert.match(byKey["listen.protocols"]!, /at least one protocol/);
    assert.equal(byKey["profiles.short.validity"], "backdate (5m) must be shorter than validity (1m)");
  });

  test("a named config file that does not exist is a problem", async () => {
    const cwd = await workdir();
    const r = await load(cwd, { flags: { config: "missing.toml" } });
    assert.equal(r.config, undefined);
    assert.equal(r.file, path.join(cwd, "missing.toml"));
    assert.deepEqual(r.problems, [{ key: "config", source: "flag --config", message: `config file ${path.join(cwd, "missing.toml")} does not exist` }]);
    const e = await load(cwd, { env: { TESSERA_CONFIG: "/nonexistent/tessera.toml" } });
    assert.equal(e.problems[0]?.source, "env TESSERA_CONFIG");
    // The flag wins over the variable for choosing the file.
    await writeFile(path.join(cwd, "real.toml"), "");
    assert.deepEqual((await load(cwd, { flags: { config: "real.toml" }, env: { TESSERA_CONFIG: "missing.toml" } })).problems, []);
  });

  test("invalid TOML is a problem, and env problems are still collected", async () => {
    const r = await load(await workdir("data_dir = \n[[["), { env: { TESSERA_LOG_LEVEL: "loud" } });
    assert.equal(r.config, undefined);
    assert.equal(r.problems.length, 2);
    assert.equal(r.problems[0]!.key, "config");
    assert.match(r.problems[0]!.message, /is not valid TOML/);
    assert.equal(r.problems[1]!.source, "env TESSERA_LOG_LEVEL");
  });
});

describe("docs/configuration.md", () => {
  const doc = readFileSync(new URL("../../../../docs/configuration.md", import.meta.url), "utf8");
  const blocks = [...doc.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]!);

  test("every TOML example loads without problems", async () => {
    assert.ok(blocks.length >= 2);
    for (const block of blocks) {
      const dir = await workdir(block);
      // Files the examples name, relative to the file's directory.
      await writeFile(path.join(dir, "factory-ca.pem"), "");
      await writeFile(path.join(dir, "webhook-secret"), "s");
      const r = await load(dir);
      assert.deepEqual(r.problems, [], block);
    }
  });

  test("the complete example means what it says", async () => {
    const dir = await workdir(blocks.at(-1));
    await writeFile(path.join(dir, "factory-ca.pem"), "");
    await writeFile(path.join(dir, "webhook-secret"), "s");
    const c = await ok(dir);
    assert.deepEqual([c.liteboot.listen, c.liteboot.mtlsListen, c.liteboot.ccs], [{ host: "0.0.0.0", port: 1443 }, { host: "127.0.0.1", port: 8445 }, { hubname: "azure-hub-name", mqttPort: 8883 }]);
    assert.deepEqual(c.liteboot.ccsByScope, { eu: { hubname: "eu-hub", mqttPort: 8883 } });
    assert.equal(c.webhook.url, "https://inventory.example.com/tessera");
    assert.equal(c.est.default.auth, "basic");
    assert.deepEqual(c.est.default.csrAttrs, [{ oid: "1.2.840.10045.4.3.2" }, { type: "1.2.840.10045.2.1", values: ["1.2.840.10045.3.1.7"] }]);
    assert.deepEqual({ ...c.est.labels["factory"]!, bootstrapCa: c.est.labels["factory"]!.bootstrapCa.map((f) => path.basename(f)) },
      { ...c.est.default, auth: "certificate", bootstrapCa: ["factory-ca.pem"], mode: "manual", retryAfter: 300 });
    assert.equal(c.hostname, "ca.example.com");
    assert.deepEqual(c.listeners.map((l) => `${l.name}@${l.host}:${l.port}`), ["main@0.0.0.0:443", "devices@:::8444"]);
    assert.equal(c.profiles["sensor"]!.serial.kind, "int64");
    assert.equal(c.profiles["server"]!.validity, 30 * DAY);
    assert.equal(c.bodyLimit, 65_536);
  });

  test("the problem table shows what loadConfig reports", async () => {
    const r = await load(await workdir('data-dir = "/srv"\n[listen]\naddress = "localhost"\n[profiles.device]\nvalidity = "ninety days"\n'),
      { env: { TESSERA_LOG_LEVEL: "verbose" } });
    for (const p of r.problems) assert.ok(doc.includes(`| \`${p.source}\` | \`${p.key}\` | ${p.message} |`), JSON.stringify(p));
    assert.equal(r.problems.length, 4);
  });
});

describe("[est]", () => {
  test("defaults: the label-less path only, Basic or certificate, profile device, no CSR attributes", async () => {
    const c = await ok(await workdir());
    assert.deepEqual(c.est.labels, {});
    assert.equal(c.est.default.profile, "device");
    assert.equal(c.est.default.auth, "either");
    assert.equal(c.est.default.retryAfter, 60);
    assert.deepEqual(c.est.default.csrAttrs, []);
  });

  test("labels start from [est], and every bad value is reported", async () => {
    const r = await load(await workdir([
      "[est]", 'auth = "whatever"', 'csr_attrs = ["1.2.3", "not-an-oid", { type = "1.2", values = [] }]', 'profile = "nope"', 'serverkeygen_key_type = "dsa"',
      "[est.labels.cacerts]", "[est.labels.ok]", "retry_after = 0", "tls_unique = true", 'bootstrap_ca = ["missing.pem"]', "[est.labels.\"a/b\"]",
    ].join("\n")));
    const keys = r.problems.map((p) => p.key).sort();
    assert.deepEqual(keys, [
      "est.auth", "est.csr_attrs", "est.csr_attrs", "est.labels.a/b", "est.labels.cacerts", "est.labels.ok.bootstrap_ca", "est.labels.ok.profile", "est.labels.ok.retry_after",
      "est.labels.ok.tls_unique", "est.profile", "est.serverkeygen_key_type",
    ].sort(), JSON.stringify(r.problems, null, 1));
  });

  test('tls_unique is accepted with a max_tls = "1.2" listener that mounts est', async () => {
    const c = await ok(await workdir('[listen]\nmax_tls = "1.2"\n[est.labels.linked]\ntls_unique = true\n'));
    assert.equal(c.listeners[0]!.maxTls, "1.2");
    assert.equal(c.est.labels["linked"]!.tlsUnique, true);
    assert.equal(c.est.default.tlsUnique, false);
    assert.equal(c.sources["est.labels.linked.tls_unique"], "file");
  });
});

describe("[liteboot] and [webhook]", () => {
  test("defaults: liteboot on 127.0.0.1:1443, test endpoint off, no webhook", async () => {
    const c = await ok(await workdir());
    assert.deepEqual(c.liteboot.listen, { host: "127.0.0.1", port: 1443 });
    assert.equal(c.liteboot.mtlsListen, null);
    assert.equal(c.liteboot.verifyCsrSignature, true);
    assert.equal(c.liteboot.subjectPolicy, "uuid");
    assert.equal(c.webhook.url, null);
  });

  test("environment overrides the listeners; bad values and a webhook without a secret are reported", async () => {
    const c = await ok(await workdir('[liteboot]\nlisten = "127.0.0.1:2443"\n'), { env: { TESSERA_LITEBOOT_LISTEN: "off", TESSERA_LITEBOOT_MTLS_LISTEN: "127.0.0.1:9443" } });
    assert.equal(c.liteboot.listen, null);
    assert.deepEqual(c.liteboot.mtlsListen, { host: "127.0.0.1", port: 9443 });
    assert.equal(c.sources["liteboot.listen"], "env");
    const r = await load(await workdir('[liteboot]\nsubject_policy = "loose"\nmqtt_port = 70000\nprofile = "nope"\n[liteboot.ccs]\neu = 1\n[webhook]\nurl = "ftp://x"\n'));
    assert.deepEqual(r.problems.map((p) => p.key).sort(), ["liteboot.ccs.eu", "liteboot.mqtt_port", "liteboot.profile", "liteboot.subject_policy", "webhook.url"].sort(), JSON.stringify(r.problems));
    const w = await load(await workdir('[webhook]\nurl = "https://x.example/hook"\n'));
    assert.deepEqual(w.problems.map((p) => p.key), ["webhook.secret_file"]);
    const clash = await load(await workdir('[liteboot]\nlisten = "127.0.0.1:8443"\n'));
    assert.deepEqual(clash.problems.map((p) => p.key), ["liteboot.listen"]);
  });
});

describe("[caramel]", () => {
  test("defaults, values from the file, and checks across settings", async () => {
    const d = await ok(await workdir());
    assert.deepEqual([d.caramel.mode, d.caramel.lifetimeShort, d.caramel.lifetimeLong, d.profiles["caramel"]!.issuer], ["manual", 48 * 3600, 30 * DAY, "root"]);
    const c = await ok(await workdir('[caramel]\nmode = "auto"\nlifetime_short = "72h"\nlifetime_long = "729h"\nrefresh_before = "0"\n'));
    assert.deepEqual([c.caramel.mode, c.caramel.lifetimeShort, c.caramel.lifetimeLong, c.caramel.refreshBefore], ["auto", 72 * 3600, 729 * 3600, 0]);
    const r = await load(await workdir('[caramel]\nmode = "sometimes"\nlifetime_short = "60d"\nrefresh_before = "90d"\nprofile = "nope"\n'));
    assert.deepEqual(r.problems.map((p) => p.key).sort(), ["caramel.lifetime_short", "caramel.mode", "caramel.profile", "caramel.refresh_before"].sort(), JSON.stringify(r.problems));
  });
});
