/**
 * Benchmark helpers for servers run as child processes: Tessera started with
 * `node bin/tessera.js serve --json` on a free loopback port with its own data
 * directory (optionally with `--workers N`, or from another checkout to
 * compare commits in one run), any other command (cfssl), and their CPU time
 * and memory read from /proc (Linux) for the process and its descendants
 * (cluster workers), so a load generator in another process measures the
 * server alone.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = new URL("../../", import.meta.url).pathname;
const TESSERA = path.join(ROOT, "bin/tessera.js");
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on every Linux ABI that matters). */
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** CPU time (user + system, every thread) of a process so far, in µs; /proc resolution is one tick (10 ms). */
export function processCpuMicros(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may contain spaces) start at ") ": state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Math.round((ticks * 1e6) / CLK_TCK);
}

/** Resident set size of a process now (VmRSS), in bytes. */
export function processRssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** A process and its living descendants (children, grandchildren…), from /proc/<pid>/stat's ppid field. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  for (const queue = [pid]; queue.length > 0; ) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Sums `f` over a process tree, skipping processes that exit while it is read. */
function overTree(pid: number, f: (pid: number) => number): number {
  let sum = 0;
  for (const p of processTree(pid)) {
    try {
      sum += f(p);
    } catch {
      // exited between the listing and the read
    }
  }
  return sum;
}

/** CPU time so far of a process and its living descendants (e.g. `tessera serve --workers N`), µs. */
export function processTreeCpuMicros(pid: number): number {
  return overTree(pid, processCpuMicros);
}

/** VmRSS now of a process and its living descendants, bytes. */
export function processTreeRssBytes(pid: number): number {
  return overTree(pid, processRssBytes);
}

/** A server running as a child process. */
export interface ServerProcess {
  pid: number;
  /** CPU time used so far (user + system, all threads, the process and its living descendants), µs. */
  cpuMicros(): number;
  /** Current RSS (the process and its living descendants), bytes. */
  rssBytes(): number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

function stopper(child: ChildProcess): (graceMs?: number) => Promise<void> {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  return async (graceMs = 10_000) => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
}

function serverProcess(child: ChildProcess): ServerProcess {
  const pid = child.pid!;
  return { pid, cpuMicros: () => processTreeCpuMicros(pid), rssBytes: () => processTreeRssBytes(pid), stop: stopper(child) };
}

/** Runs the Tessera CLI once against a data directory (e.g. `est user add`); throws with its output on failure. `root`: another checkout's. */
export function tesseraCli(dataDir: string, args: string[], env: Record<string, string> = {}, root = ROOT): string {
  const r = spawnSync(process.execPath, [path.join(root, "bin/tessera.js"), ...args], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "warn", ...env },
  });
  if (r.status !== 0) throw new Error(`tessera ${args.join(" ")} exited ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

export interface TesseraProcessOptions {
  /** Data directory (created if missing; Tessera creates its CA on first start). */
  dataDir: string;
  /** Extra environment (TESSERA_*), on top of the benchmark defaults. */
  env?: Record<string, string>;
  /** Extra node flags, e.g. ["--cpu-prof", "--cpu-prof-dir=…"]. */
  nodeArgs?: string[];
  /** Milliseconds to wait for the start-up line (default 60 s). */
  timeoutMs?: number;
  /** Worker processes (`tessera serve --workers N`, env TESSERA_WORKERS); default: the server's default (1). */
  workers?: number;
  /**
   * The checkout whose bin/tessera.js runs (default: this one). Another
   * commit's tree (e.g. `git archive` of it, with node_modules linked) lets a
   * section measure before and after a change in one run.
   */
  root?: string;
}

export interface TesseraProcess extends ServerProcess {
  /** https://127.0.0.1:PORT of the main listener. */
  url: string;
  dataDir: string;
}

/**
 * Starts `tessera serve` as a child process: main listener on 127.0.0.1 at a
 * port the kernel picks, liteboot listener off, log level warn. Resolves once
 * the server has printed its start-up line (it is listening then).
 */
export async function startTesseraProcess(opts: TesseraProcessOptions): Promise<TesseraProcess> {
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const root = opts.root ?? ROOT;
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), root === ROOT ? TESSERA : path.join(root, "bin/tessera.js"), "serve", "--json"], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      TESSERA_DATA_DIR: opts.dataDir,
      TESSERA_LISTEN: "127.0.0.1:0",
      TESSERA_LITEBOOT_LISTEN: "off",
      TESSERA_LOG_LEVEL: "warn",
      ...(opts.workers !== undefined ? { TESSERA_WORKERS: String(opts.workers) } : {}),
      ...opts.env,
    },
  });
  // Keep the last 32–64 KiB of the server's output (its log) for error messages.
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (s: string) => {
    stderr += s;
    if (stderr.length > 64 * 1024) stderr = stderr.slice(-32 * 1024);
  });
  const onStdout = (s: string) => {
    out += s;
    if (out.length > 64 * 1024) out = out.slice(-32 * 1024);
  };
  let out = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`tessera serve printed no start-up line within ${opts.timeoutMs ?? 60_000} ms`)), opts.timeoutMs ?? 60_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${err.message}\n${stderr}${out}`));
    };
    child.once("exit", (code, signal) => fail(new Error(`tessera serve exited (${code ?? signal}) before it was ready`)));
    const onStart = (s: string) => {
      out += s;
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (!line) return;
      child.stdout!.off("data", onStart).on("data", onStdout);
      try {
        // {"url":"https://HOST:PORT",…}: HOST is the configured hostname; connect by address.
        const port = new URL((JSON.parse(line) as { url: string }).url).port;
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolve(`https://127.0.0.1:${port}`);
      } catch (err) {
        fail(err as Error);
      }
    };
    child.stdout!.setEncoding("utf8").on("data", onStart);
  });
  return { ...serverProcess(child), url, dataDir: opts.dataDir };
}

/**
 * Starts any server command as a child process and resolves once `ready()`
 * (e.g. a TCP connect to its port) succeeds; its output goes to `logFile`.
 */
export async function startCommandProcess(command: string, args: string[], opts: { cwd?: string; logFile: string; ready: () => Promise<boolean>; timeoutMs?: number }): Promise<ServerProcess> {
  const log = fs.openSync(opts.logFile, "a");
  const child = spawn(command, args, { cwd: opts.cwd, stdio: ["ignore", log, log] });
  fs.closeSync(log);
  let spawnError: Error | undefined;
  child.on("error", (err) => (spawnError = err));
  const proc = serverProcess(child);
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    if (spawnError) throw new Error(`${command}: ${spawnError.message}`);
    if (child.exitCode !== null) throw new Error(`${command} exited ${child.exitCode}: ${fs.readFileSync(opts.logFile, "utf8").slice(-2000)}`);
    if (await opts.ready()) return proc;
    if (Date.now() > deadline) {
      await proc.stop(1000);
      throw new Error(`${command} not ready within ${opts.timeoutMs ?? 20_000} ms: ${fs.readFileSync(opts.logFile, "utf8").slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
