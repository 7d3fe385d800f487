import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { generateKeyPair } from "@tessera/pki";
import { isEnrolled, loadIdentity, saveIdentity } from "../keystore/store-dir.js";
import { FakeImprintServer, refusedUrl } from "../protocols/imprint/fake-server.js";
import { TestPki } from "../protocols/imprint/test-pki.js";
import { COMMANDS } from "./commands.js";
import { COMMAND_HELP, HELP } from "./help.js";
import { EXIT, main } from "./main.js";
import { parseDuration } from "./options.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "agent-cli-"));
let seq = 0;
const freshDir = () => path.join(tmp, `store-${++seq}`);
const DAY = 86_400_000;
const FP = "sha256:" + "a7".repeat(32);
const SERVER_ID = /^srv_[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/;

let pki: TestPki;
let fake: FakeImprintServer;
let caFile: string;
let refused: string;
before(async () => {
  pki = await TestPki.create();
  fake = await FakeImprintServer.start(pki);
  caFile = path.join(tmp, "ca.pem");
  fs.writeFileSync(caFile, pki.caPem);
  refused = await refusedUrl();
});
after(async () => {
  await fake.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  fake.reset();
});

interface Run {
  code: number;
  out: string[];
  err: string[];
  /** The last stdout line as JSON. */
  json: Record<string, unknown>;
}

/** Runs main in-process with captured output; `env` replaces process.env entirely so nothing leaks in. */
async function cli(argv: string[], env: NodeJS.ProcessEnv = {}, signal?: AbortSignal, out: string[] = []): Promise<Run> {
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), ...(signal ? { signal } : {}) }, env);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(out.at(-1) ?? "") as Record<string, unknown>;
  } catch {
    // text output
  }
  return { code, out, err, json };
}

const server = () => ["--server", fake.url, "--ca", caFile];
const enrollArgs = (dir: string) => ["enroll", ...server(), "--secret", "build-secret", "--dir", dir, "--fingerprint", FP, "--hostname", "dev-1"];
const paths = () => fake.seen.map((s) => s.path);

/** Puts an identity valid until now + `expiresInMs` in a new store directory and registers it with the fake. */
async function seed(expiresInMs: number) {
  const dir = freshDir();
  const serverId = "srv_" + crypto.randomBytes(16).toString("hex");
  const { privateKey, publicKey } = generateKeyPair();
  const notAfter = new Date(Date.now() + expiresInMs);
  const issued = await pki.issueClient(publicKey, serverId, { notBefore: new Date(notAfter.getTime() - 365 * DAY), notAfter });
  await saveIdentity(dir, { privateKey, certificatePem: issued.pem, caPem: pki.caPem, serverId, fingerprint: FP });
  fake.register(serverId, FP, issued.pem);
  return { dir, serverId, serial: issued.certificate.serialHex };
}

async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("enroll writes the store and prints server id, serial and notAfter", async () => {
  const dir = freshDir();
  const r = await cli([...enrollArgs(dir), "--json"]);
  assert.equal(r.code, EXIT.ok, r.out.join("\n") + r.err.join("\n"));
  assert.match(String(r.json.serverId), SERVER_ID);
  assert.equal(r.json.status, "enrolled");
  assert.equal(r.json.replaced, false);
  assert.equal(r.json.fingerprint, FP);
  assert.equal(r.json.fingerprintTier, "option");
  const id = await loadIdentity(dir);
  assert.equal(id.serverId, r.json.serverId);
  assert.equal(r.json.serial, id.certificate.serialHex);
  assert.equal(r.json.notAfter, id.certificate.notAfter.toISOString());
  assert.equal(r.json.daysLeft, 364);
  assert.deepEqual(paths(), ["/api/v1/enroll"]);
  assert.equal(JSON.parse(fake.seen[0]!.raw).hostname, "dev-1");
  assert.deepEqual(fake.problems, []);

  // Text mode, enrolling again: same server id (same fingerprint), identity replaced.
  const again = await cli(enrollArgs(dir));
  assert.equal(again.code, EXIT.ok);
  assert.equal(again.out[0], `Enrolled again (identity replaced) in ${dir}`);
  assert.ok(again.out.includes(`  server id:    ${id.serverId}`), again.out.join("\n"));
  assert.notEqual((await loadIdentity(dir)).certificate.serialHex, id.certificate.serialHex);
});

test("defaults come from TESSERA_SERVER, TESSERA_BUILD_SECRET and TESSERA_AGENT_DIR; --secret-file reads its first line", async () => {
  const dir = freshDir();
  const env = { TESSERA_SERVER: fake.url + "/", TESSERA_BUILD_SECRET: "build-secret", TESSERA_AGENT_DIR: dir };
  const r = await cli(["enroll", "--ca", caFile, "--fingerprint", FP, "--json"], env);
  assert.equal(r.code, EXIT.ok, r.out.join("\n"));
  assert.equal(r.json.dir, dir);
  assert.ok(await isEnrolled(dir));
  assert.deepEqual(paths(), ["/api/v1/enroll"], "a trailing slash on the URL is dropped");

  const secretFile = path.join(tmp, "secret.txt");
  fs.writeFileSync(secretFile, "build-secret\nignored second line\n");
  const dir2 = freshDir();
  const f = await cli(["enroll", ...server(), "--secret-file", secretFile, "--dir", dir2, "--fingerprint", FP]);
  assert.equal(f.code, EXIT.ok, f.err.join("\n"));
  assert.equal(JSON.parse(fake.seen[1]!.raw).build_secret, "build-secret");
});

test("enroll without --fingerprint sends what `fingerprint --persist-dir DIR` prints", async () => {
  const dir = freshDir();
  const fp = await cli(["fingerprint", "--persist-dir", dir, "--json"]);
  assert.equal(fp.code, EXIT.ok);
  assert.match(String(fp.json.fingerprint), /^sha256:[0-9a-f]{64}$/);
  assert.ok(["hardware", "persisted", "generated"].includes(String(fp.json.tier)));
  const r = await cli(["enroll", ...server(), "--secret", "build-secret", "--dir", dir, "--json"]);
  assert.equal(r.code, EXIT.ok, r.out.join("\n"));
  assert.equal((await loadIdentity(dir)).fingerprint, fp.json.fingerprint);
  assert.equal(JSON.parse(fake.seen[0]!.raw).fingerprint, fp.json.fingerprint);

  // --prefer-persisted: the identity file wins over the hardware.
  const pinned = freshDir();
  fs.mkdirSync(pinned);
  fs.writeFileSync(path.join(pinned, "imprint-identity"), "sha256:" + "0f".repeat(32) + "\n");
  const p = await cli(["fingerprint", "--persist-dir", pinned, "--prefer-persisted"]);
  assert.deepEqual(p.out, [`sha256:${"0f".repeat(32)} (persisted)`]);
});

test("a 202 is reported as pending (exit 5) with the request id, and nothing is stored", async () => {
  const body = JSON.stringify({ status: "pending", server_id: "srv_0123456789ab4cdef89abcdef0123456", request_id: "req_42", message: "waiting" }) + "\n";
  fake.override = (p) => (p === "/api/v1/enroll" ? { status: 202, body } : undefined);
  const dir = freshDir();
  const j = await cli([...enrollArgs(dir), "--json"]);
  assert.equal(j.code, EXIT.pending);
  assert.deepEqual(j.json, { status: "pending", serverId: "srv_0123456789ab4cdef89abcdef0123456", requestId: "req_42", message: "waiting" });
  assert.equal(await isEnrolled(dir), false);

  const t = await cli(enrollArgs(dir));
  assert.equal(t.code, EXIT.pending);
  assert.deepEqual(t.err, [], "pending is a state, not an error");
  assert.match(t.out[0]!, /pending operator approval \(server id srv_0123456789ab4cdef89abcdef0123456, request req_42\)/);

  // renew on an empty store enrolls, so it reports pending the same way.
  const r = await cli(["renew", ...server(), "--secret", "build-secret", "--dir", dir, "--fingerprint", FP, "--json"]);
  assert.equal(r.code, EXIT.pending);
  assert.equal(r.json.status, "pending");
  assert.deepEqual(r.json.attempts, [{ tier: "enroll", error: `enrollment failed (HTTP 202): ${body}`, status: 202 }]);
});

test("a wrong secret is refused (exit 4); no answer at all is a failure (exit 1)", async () => {
  const dir = freshDir();
  const r = await cli(["enroll", ...server(), "--secret", "wrong", "--dir", dir, "--fingerprint", FP, "--json"]);
  assert.equal(r.code, EXIT.refused);
  const e = r.json.error as Record<string, unknown>;
  assert.equal(e.code, "refused");
  assert.equal(e.status, 401);
  assert.equal(e.body, "unauthorized\n");

  const t = await cli(["enroll", "--server", refused, "--secret", "s", "--dir", dir, "--fingerprint", FP]);
  assert.equal(t.code, EXIT.failure);
  assert.match(t.err[0]!, /^tessera-agent: enrollment request failed: .*ECONNREFUSED/);
  assert.equal(await isEnrolled(dir), false);
});

test("status: not enrolled (3), valid (0), renewal due, expired (6)", async () => {
  const empty = freshDir();
  const none = await cli(["status", "--dir", empty, "--json"]);
  assert.equal(none.code, EXIT.notEnrolled);
  assert.deepEqual(none.json, { enrolled: false, dir: empty });

  const { dir, serverId, serial } = await seed(100 * DAY + 3600_000);
  const ok = await cli(["status", "--dir", dir, "--json"]);
  assert.equal(ok.code, EXIT.ok);
  assert.equal(ok.json.enrolled, true);
  assert.equal(ok.json.serverId, serverId);
  assert.equal(ok.json.fingerprint, FP);
  assert.equal(ok.json.serial, serial);
  assert.equal(ok.json.daysLeft, 100);
  assert.equal(ok.json.needsRenewal, false);
  assert.equal(ok.json.expired, false);
  const due = await cli(["status", "--dir", dir, "--threshold", "101d", "--json"]);
  assert.equal(due.code, EXIT.ok);
  assert.equal(due.json.needsRenewal, true);
  const text = await cli(["status", "--dir", dir]);
  assert.deepEqual(text.out.slice(0, 2), [`Enrolled in ${dir}`, `  server id:    ${serverId}`]);
  assert.equal(text.out.at(-1), "  renewal due:  no");

  const expired = await seed(-2 * DAY - 3600_000);
  const x = await cli(["status", "--dir", expired.dir]);
  assert.equal(x.code, EXIT.expired);
  assert.match(x.out[0]!, /certificate EXPIRED/);
  assert.match(x.out.join("\n"), /expired 2 days ago/);
  assert.deepEqual(paths(), [], "status never talks to the server");
});

test("renew: nothing to do far from expiry; --force renews over mTLS now", async () => {
  const { dir, serverId, serial } = await seed(200 * DAY);
  const idle = await cli(["renew", ...server(), "--dir", dir, "--fingerprint", FP, "--json"]);
  assert.equal(idle.code, EXIT.ok, idle.out.join("\n"));
  assert.equal(idle.json.action, "none");
  assert.equal(idle.json.serial, serial);
  assert.deepEqual(paths(), []);

  const forced = await cli(["renew", ...server(), "--dir", dir, "--force", "--json"]);
  assert.equal(forced.code, EXIT.ok, forced.out.join("\n"));
  assert.equal(forced.json.action, "renewed");
  assert.deepEqual(forced.json.attempts, []);
  assert.equal(forced.json.serverId, serverId);
  assert.notEqual(forced.json.serial, serial);
  assert.deepEqual(paths(), ["/api/v1/renew"]);
  assert.equal(fake.seen[0]!.peerCn, serverId);
  assert.equal(fake.seen[0]!.peerAuthorized, true);
  assert.equal((await loadIdentity(dir)).certificate.serialHex, forced.json.serial);
  assert.deepEqual(fake.problems, []);

  // A threshold above the remaining time renews without --force; text lists the action.
  const t = await cli(["renew", ...server(), "--dir", dir, "--fingerprint", FP, "--threshold", "400d"]);
  assert.equal(t.code, EXIT.ok);
  assert.equal(t.out[0], "Action: renewed");
});

test("renew: expired within the window → challenge; refused Tier 1 is listed; not enrolled without a secret is exit 3", async () => {
  const expired = await seed(-DAY);
  const c = await cli(["renew", ...server(), "--dir", expired.dir, "--fingerprint", FP, "--json"]);
  assert.equal(c.code, EXIT.ok, c.out.join("\n"));
  assert.equal(c.json.action, "challenge_renewed");
  assert.equal(c.json.expired, false);

  const { dir } = await seed(10 * DAY);
  fake.seen.length = 0;
  fake.override = (p) => (p === "/api/v1/renew" ? { status: 401, body: "unauthorized\n" } : undefined);
  const r = await cli(["renew", ...server(), "--dir", dir, "--fingerprint", FP, "--secret", "build-secret", "--json"]);
  assert.equal(r.json.action, "reenrolled");
  assert.deepEqual((r.json.attempts as { tier: string; status: number }[]).map((a) => [a.tier, a.status]), [["renew", 401], ["challenge", 401]]);
  assert.deepEqual(paths(), ["/api/v1/renew", "/api/v1/renew/challenge", "/api/v1/enroll"]);

  fake.seen.length = 0;
  const forced = await cli(["renew", ...server(), "--dir", freshDir(), "--force"]);
  assert.equal(forced.code, EXIT.notEnrolled);
  const empty = await cli(["renew", ...server(), "--dir", freshDir(), "--fingerprint", FP, "--json"]);
  assert.equal(empty.code, EXIT.notEnrolled);
  assert.match(String((empty.json.error as { message: string }).message), /build secret is needed to enroll/);
  assert.deepEqual(paths(), [], "no request without a secret or an identity");
});

test("usage errors exit 2 before any request", async () => {
  const dir = freshDir();
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /unknown command 'frobnicate'/],
    [["enroll", "--secret", "s", "--dir", dir], /no server/],
    [["enroll", "--server", fake.url, "--dir", dir], /no build secret/],
    [["enroll", "--server", "ftp://x", "--secret", "s"], /not an http\(s\) URL/],
    [["enroll", "--server", fake.url, "--secret", "s", "--secret-file", "f"], /not both/],
    [["enroll", "--server", fake.url, "--secret-file", path.join(tmp, "missing")], /cannot read .*ENOENT/],
    [["enroll", "--server", fake.url, "--secret", "s", "--ca", path.join(tmp, "missing.pem")], /--ca: cannot read/],
    [["renew", "--server", fake.url, "--threshold", "30"], /--threshold: '30' is not a positive duration/],
    [["run", "--server", fake.url, "--secret", "s", "--jitter", "1.5"], /--jitter/],
    [["status", "--server", fake.url], /--server does not apply to 'status'/],
    [["status", "--bogus"], /Unknown option '--bogus'/],
    [["status", "extra"], /takes no arguments/],
    [["help", "nope"], /unknown command 'nope'/],
  ];
  for (const [argv, message] of cases) {
    const r = await cli(argv);
    assert.equal(r.code, EXIT.usage, argv.join(" "));
    assert.match(r.err[0]!, message, argv.join(" "));
    const j = await cli([...argv, "--json"]);
    assert.equal(j.code, EXIT.usage);
    assert.equal((j.json.error as { code: string }).code, "usage");
  }
  const bare = await cli([]);
  assert.equal(bare.code, EXIT.usage);
  assert.equal(bare.out[0], HELP.trimEnd());
  assert.deepEqual(paths(), []);
  assert.equal(fs.existsSync(dir), false);
});

test("run: enrolls, runs --exec without the secret in its env, logs JSON lines, stops on abort", async () => {
  const dir = freshDir();
  const marker = path.join(tmp, "exec-marker.json");
  const script = path.join(tmp, "hook.mjs");
  fs.writeFileSync(script, `import fs from "node:fs";
fs.writeFileSync(process.argv[2], JSON.stringify({ args: process.argv.slice(3), action: process.env.TESSERA_AGENT_ACTION,
  dir: process.env.TESSERA_AGENT_DIR, serverId: process.env.TESSERA_AGENT_SERVER_ID, secret: process.env.TESSERA_BUILD_SECRET ?? null }));
`);
  const stop = new AbortController();
  const lines: string[] = [];
  const env = { TESSERA_SERVER: fake.url, TESSERA_BUILD_SECRET: "build-secret", KEEP: "1" };
  const running = cli(["run", "--ca", caFile, "--dir", dir, "--fingerprint", FP, "--interval", "1h", "--exec", `${process.execPath} ${script} ${marker} a b`, "--json"], env, stop.signal, lines);
  const events = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  await waitFor("the exec line", () => events().some((e) => e.event === "exec"));
  stop.abort();
  const r = await running;
  assert.equal(r.code, EXIT.ok);
  assert.deepEqual(events().map((e) => e.event), ["start", "renewal", "exec", "stop"]);
  const [start, renewal, exec] = events();
  assert.equal(start!.fingerprint, FP);
  assert.equal(start!.intervalMs, 3_600_000);
  assert.equal(renewal!.action, "reenrolled");
  assert.match(String(renewal!.serverId), SERVER_ID);
  assert.equal(exec!.exitCode, 0);
  assert.deepEqual(JSON.parse(fs.readFileSync(marker, "utf8")), {
    args: ["a", "b"], action: "reenrolled", dir: path.resolve(dir), serverId: renewal!.serverId, secret: null,
  });
  assert.ok(await isEnrolled(dir));
});

test("run: a failed check is one error line with the retry delay; without identity or secret it exits 3", async () => {
  const stop = new AbortController();
  const lines: string[] = [];
  const env = { TESSERA_SERVER: fake.url };
  const running = cli(["run", "--ca", caFile, "--dir", freshDir(), "--fingerprint", FP, "--secret", "wrong", "--json"], env, stop.signal, lines);
  await waitFor("the error line", () => lines.some((l) => l.includes('"event":"error"')));
  stop.abort();
  assert.equal((await running).code, EXIT.ok);
  const error = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.event === "error")!;
  assert.equal(error.code, "refused");
  assert.equal(error.status, 401);
  assert.ok(Number(error.retryInMs) >= 27_000 && Number(error.retryInMs) <= 33_000, String(error.retryInMs));

  const r = await cli(["run", "--dir", freshDir(), "--fingerprint", FP], env);
  assert.equal(r.code, EXIT.notEnrolled);
  assert.match(r.err[0]!, /a build secret is needed to enroll/);
});

test("durations: units, fractions, and no bare numbers", () => {
  assert.equal(parseDuration("30d", "x"), 30 * DAY);
  assert.equal(parseDuration("12h", "x"), 12 * 3_600_000);
  assert.equal(parseDuration("90m", "x"), 90 * 60_000);
  assert.equal(parseDuration("45s", "x"), 45_000);
  assert.equal(parseDuration("1.5h", "x"), 5_400_000);
  assert.equal(parseDuration("500ms", "x"), 500);
  for (const bad of ["30", "0s", "-1d", "1w", "d", ""]) assert.throws(() => parseDuration(bad, "x"), /not a positive duration/, bad);
});

test("help lists every command and its options; docs/agent.md repeats every help text verbatim", async () => {
  const doc = fs.readFileSync(new URL("../../../../docs/agent.md", import.meta.url), "utf8");
  assert.ok(doc.includes(HELP.trimEnd()), "docs/agent.md differs from HELP: regenerate it from `tessera-agent --help`");
  assert.deepEqual(Object.keys(COMMAND_HELP).sort(), Object.keys(COMMANDS).sort());
  for (const [name, { options }] of Object.entries(COMMANDS)) {
    assert.ok(HELP.includes(`\n  ${name} `), `HELP misses '${name}'`);
    const text = COMMAND_HELP[name as keyof typeof COMMAND_HELP];
    for (const o of [...options, "json", "help"]) assert.ok(text.includes(` --${o}`), `'${name} --help' misses --${o}`);
    assert.ok(doc.includes(text.trimEnd()), `docs/agent.md differs from '${name} --help'`);
    const r = await cli([name, "--help"]);
    assert.equal(r.code, EXIT.ok);
    assert.equal(r.out[0], text.trimEnd());
    assert.deepEqual((await cli(["help", name])).out, r.out);
  }
  for (const code of Object.values(EXIT)) assert.match(HELP, new RegExp(`\\n  ${code}  `), `exit code ${code} undocumented`);
});
