/**
 * `tessera serve --workers 2` as an operator runs it (bin/tessera.js in a
 * child process): one banner, enrollments answered by both workers, every
 * certificate stored once, SIGHUP and SIGTERM forwarded; and the
 * `[server] workers` setting from file, environment and flag.
 */
import "reflect-metadata";
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import Database from "better-sqlite3";
import { buildCsr, decodeBase64Lenient, encodeBase64Lines, generateKeyPair, parseCertificate, readChildren, readWhole, Tag, tlvBytes } from "@tessera/pki";
import { tempDir, testConfig } from "./test-support.js";
import { loadConfig } from "./config/load.js";
import { WORKER_HEADER } from "./cluster.js";

const ROOT = new URL("../../../", import.meta.url).pathname;
const BIN = path.join(ROOT, "bin/tessera.js");

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The certificates of a certs-only CMS (EST's answer): SignedData.certificates, DER each. */
function certsOf(cms: Buffer): Buffer[] {
  const ci = readWhole(cms, Tag.SEQUENCE);
  const [, content] = readChildren(cms, ci);
  const [signedData] = readChildren(cms, content!);
  const certs = readChildren(cms, signedData!).find((t) => t.tag === 0xa0)!;
  return readChildren(cms, certs).map((t) => Buffer.from(tlvBytes(cms, t)));
}

test("serve --workers 2: one banner, both workers enroll, every certificate stored once, signals forwarded", async () => {
  const dataDir = tempDir("tessera-cluster-");
  const env = { ...process.env, TESSERA_DATA_DIR: dataDir, TESSERA_LISTEN: "127.0.0.1:0", TESSERA_HOSTNAME: "localhost", TESSERA_LITEBOOT_LISTEN: "off", TESSERA_LOG_LEVEL: "warn" };
  const child = spawn(process.execPath, [BIN, "serve", "--workers", "2"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr.setEncoding("utf8").on("data", (t: string) => (err += t));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner within 90 s: ${out}${err}`)), 90_000);
      child.stdout.setEncoding("utf8").on("data", (t: string) => {
        out += t;
        if (/^ {2}Workers: /m.test(out)) (clearTimeout(timer), resolve());
      });
      void exited.then((code) => (clearTimeout(timer), reject(new Error(`serve exited ${code}: ${out}${err}`))));
    });
    assert.equal(out.match(/Tessera is listening on/g)?.length, 1, `one banner:\n${out}`);
    assert.match(out, /^ {2}CA created: /m, "the primary created the CA at this start");
    // The user is added while the cluster runs: the CLI is one more process on the same store.
    const add = spawnSync(process.execPath, [BIN, "est", "user", "add", "alice", "--password", "cluster-pass"], { cwd: ROOT, env, encoding: "utf8" });
    assert.equal(add.status, 0, add.stderr);
    const pids = /pids (\d+), (\d+); primary (\d+)/.exec(out)!.slice(1).map(Number);
    assert.equal(pids[2], child.pid);
    const port = new URL(/Tessera is listening on (\S+)/.exec(out)![1]!).port;
    const ca = fs.readFileSync(path.join(dataDir, "ca", "chain.pem"), "utf8");
    const auth = `Basic ${Buffer.from("alice:cluster-pass").toString("base64")}`;

    // A fresh connection per request: the primary hands connections to the workers in turn.
    const enroll = (cn: string) =>
      new Promise<{ status: number; worker: string | undefined; cert: Buffer }>((resolve, reject) => {
        const der = buildCsr({ subject: [{ type: "CN", value: cn }], privateKey: generateKeyPair("ec-p256").privateKey });
        const req = https.request(
          { host: "127.0.0.1", port, path: "/.well-known/est/simpleenroll", method: "POST", ca, servername: "localhost", agent: false, headers: { "content-type": "application/pkcs10", authorization: auth } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
              const body = Buffer.concat(chunks).toString("latin1");
              if (res.statusCode !== 200) return reject(new Error(`${cn}: HTTP ${res.statusCode}: ${body}`));
              resolve({ status: res.statusCode, worker: res.headers[WORKER_HEADER] as string | undefined, cert: certsOf(decodeBase64Lenient(body))[0]! });
            });
          },
        );
        req.on("error", reject);
        req.end(encodeBase64Lines(der));
      });
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await enroll(`cluster-seq-${i}`));
    results.push(...(await Promise.all(Array.from({ length: 12 }, (_, i) => enroll(`cluster-par-${i}`)))));
    // The protocol's answers are what one process sends: no worker header on them.
    assert.deepEqual([...new Set(results.map((r) => r.worker))], [undefined]);
    // GET /healthz names the worker that answered; over fresh connections both answer.
    const healthz = () =>
      new Promise<string | undefined>((resolve, reject) => {
        https
          .get({ host: "127.0.0.1", port, path: "/healthz", ca, servername: "localhost", agent: false }, (res) => {
            res.resume();
            res.on("end", () => resolve(res.headers[WORKER_HEADER] as string | undefined));
          })
          .on("error", reject);
      });
    const answered = new Set<string | undefined>();
    for (let i = 0; i < 8; i++) answered.add(await healthz());
    assert.deepEqual([...answered].sort(), ["1", "2"], "both workers answered");

    // SIGHUP reaches the workers (they reload) and they keep serving.
    child.kill("SIGHUP");
    await new Promise((r) => setTimeout(r, 500));
    results.push(await enroll("cluster-after-hup"));

    // Every certificate answered is stored, once, as answered; nothing else was issued over EST.
    const db = new Database(path.join(dataDir, "tessera.db"), { readonly: true });
    try {
      const rows = db.prepare("SELECT serial, der FROM certificates WHERE protocol = 'est'").all() as { serial: string; der: Buffer }[];
      assert.equal(rows.length, results.length);
      const bySerial = new Map(rows.map((r) => [r.serial, Buffer.from(r.der)]));
      assert.equal(bySerial.size, results.length, "distinct serials");
      for (const r of results) assert.ok(bySerial.get(parseCertificate(r.cert).serialHex)?.equals(r.cert), "stored as answered");
    } finally {
      db.close();
    }

    child.kill("SIGTERM");
    assert.equal(await exited, 0, err);
    for (const pid of pids.slice(0, 2)) assert.equal(alive(pid), false, `worker ${pid} stopped`);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
});

test("[server] workers: file < environment < flag, 1 by default, a whole number 1–256", async () => {
  const dir = tempDir("tessera-workers-config-");
  fs.writeFileSync(path.join(dir, "tessera.toml"), "[server]\nworkers = 3\n");
  const load = (env: Record<string, string>, flags: Record<string, string> = {}) => loadConfig({ flags, env, cwd: dir, systemHostname: () => "localhost" });
  assert.equal((await testConfig({ TESSERA_DATA_DIR: tempDir() })).workers, 1);
  assert.equal((await load({})).config?.workers, 3);
  assert.equal((await load({ TESSERA_WORKERS: "4" })).config?.workers, 4);
  assert.equal((await load({ TESSERA_WORKERS: "4" }, { workers: "2" })).config?.workers, 2);
  assert.equal((await load({}, { workers: "2" })).config?.sources["server.workers"], "flag");
  for (const bad of ["0", "x", "1.5", "257"]) {
    const r = await load({ TESSERA_WORKERS: bad });
    assert.deepEqual(r.problems.map((p) => [p.key, p.source]), [["server.workers", "env TESSERA_WORKERS"]], bad);
  }
  fs.writeFileSync(path.join(dir, "tessera.toml"), "[server]\nworkers = \"2\"\nworker = 1\n");
  const r = await load({});
  assert.deepEqual(r.problems.map((p) => p.key).sort(), ["server.worker", "server.workers"]);
});
