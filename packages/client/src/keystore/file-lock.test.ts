import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { acquireFileLock } from "./file-lock.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "file-lock-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const lockPath = () => path.join(tmp, `key-${++seq}.pem.lock`);

const MODULE = fileURLToPath(new URL("./file-lock.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

/** A separate Node process that tries the lock, prints "got" or "busy", and holds it for `holdMs` (or until killed). */
function contender(file: string, holdMs: number): { child: ChildProcess; said: Promise<string> } {
  const script = `
    const { acquireFileLock } = await import(${JSON.stringify(MODULE)});
    const lock = await acquireFileLock(${JSON.stringify(file)});
    process.stdout.write(lock ? "got\\n" : "busy\\n");
    if (lock) { await new Promise((r) => setTimeout(r, ${holdMs})); await lock.release(); }
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  const said = new Promise<string>((resolve) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(out.trim());
    });
    child.on("exit", () => resolve(out.trim()));
  });
  return { child, said };
}

test("one holder at a time in a process; release frees it; a released lock leaves no file", async () => {
  const file = lockPath();
  const a = await acquireFileLock(file);
  assert.ok(a);
  assert.equal(await acquireFileLock(file), undefined);
  const owner = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  assert.equal(owner.pid, process.pid);
  assert.equal(owner.host, os.hostname());
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  await a.release();
  assert.ok(!fs.existsSync(file));
  const b = await acquireFileLock(file);
  assert.ok(b);
  await b.release();
});

test("separate processes: of several starting together exactly one gets the lock", async () => {
  const file = lockPath();
  // The holder keeps the lock until every contender has spoken, however slowly they start.
  const runs = Array.from({ length: 5 }, () => contender(file, 60_000));
  const said = await Promise.all(runs.map((r) => r.said));
  for (const r of runs) r.child.kill("SIGKILL");
  await Promise.all(runs.map((r) => new Promise((resolve) => (r.child.exitCode !== null || r.child.signalCode !== null ? resolve(null) : r.child.on("exit", resolve)))));
  assert.equal(said.filter((s) => s === "got").length, 1, said.join(","));
  assert.equal(said.filter((s) => s === "busy").length, 4, said.join(","));
});

test("a lock held by a live process is respected; once that process is killed the lock is stale and taken over", async () => {
  const file = lockPath();
  const holder = contender(file, 60_000);
  assert.equal(await holder.said, "got");
  assert.equal(await acquireFileLock(file), undefined);
  holder.child.kill("SIGKILL");
  await new Promise((resolve) => holder.child.on("exit", resolve));
  assert.ok(fs.existsSync(file), "a killed holder leaves its lock behind");
  const taken = await acquireFileLock(file);
  assert.ok(taken, "the dead owner's lock is stale");
  assert.equal((JSON.parse(fs.readFileSync(file, "utf8")) as { pid: number }).pid, process.pid);
  assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.includes(".stale-")), [], "the stale file moved aside is deleted");
  await taken.release();
});

test("a lock older than maxAgeMs is stale whoever holds it; an empty fresh one is not", async () => {
  const file = lockPath();
  const old = await acquireFileLock(file, { now: () => Date.now() - 3_600_000 });
  assert.ok(old);
  const past = new Date(Date.now() - 3_600_000);
  fs.utimesSync(file, past, past);
  const fresh = await acquireFileLock(file, { maxAgeMs: 60_000 });
  assert.ok(fresh, "an hour-old lock is taken over");
  // The first holder's release must not remove the new holder's lock.
  await old.release();
  assert.ok(fs.existsSync(file));
  await fresh.release();
  assert.ok(!fs.existsSync(file));

  // A lock file caught between its creation and its content (empty) belongs to someone: busy.
  fs.writeFileSync(file, "");
  assert.equal(await acquireFileLock(file), undefined);
  fs.utimesSync(file, past, past);
  const late = await acquireFileLock(file);
  assert.ok(late, "but not forever");
  await late.release();
});
