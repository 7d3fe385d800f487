/**
 * `tessera serve --workers N` (`[server] workers`, env TESSERA_WORKERS): N
 * server processes on one host over one store, with node:cluster.
 *
 * The primary prepares once, before any worker exists: store migrations, the
 * CA on first start, the server's TLS certificate. Then it forks worker 1,
 * waits until it listens (it also issues the OCSP signer on a first start),
 * and forks the others. Every worker runs the ordinary startServer, so every
 * protocol, the admin API and the revocation endpoints behave as in one
 * process; the listening sockets are shared through the primary (Node's
 * round-robin scheduling on Linux, or the kernel's with
 * NODE_CLUSTER_SCHED_POLICY=none). Each answer over HTTPS carries
 * `X-Tessera-Worker: <index>`.
 *
 * Duties that must not run twice (the CRL file writer, Caramel refresh,
 * Mainflux rotation, renewing the server certificate ahead of expiry) run in
 * worker 1 only (startServer's `singletons`); outbox workers (webhooks, the
 * bus) claim their rows compare-and-set and run in every worker. Workers
 * share nothing in memory: a revocation made by one reaches the others' CRL
 * and OCSP caches by the store poll (2 s), as with several hosts.
 *
 * SQLite: every worker opens the same WAL database (5 s busy timeout, write
 * transactions BEGIN IMMEDIATE), so commits from different workers queue in
 * SQLite while reads go on; each worker still group-commits its own writes.
 *
 * The primary prints the banner once (worker 1's, when every worker is
 * listening), forwards SIGTERM/SIGINT (drain, then exit) and SIGHUP (reload)
 * to the workers, and replaces a worker that dies, with the same index and
 * duties, backing off when one keeps dying.
 */
import cluster, { type Worker } from "node:cluster";
import * as path from "node:path";
import type { Logger } from "pino";
import { sha256Hex } from "@tessera/pki";
import type { TesseraConfig } from "./config/types.js";
import { ensureServerCertificate } from "./ca/server-certificate.js";
import { caPaths } from "./ca/ca-files.js";
import { installSignalHandlers, openAuthority, type RunningServer } from "./server.js";
import { REPO_ROOT } from "./paths.js";

/** The CLI entry the workers run (the same `tessera serve` command line). */
const BIN = path.join(REPO_ROOT, "bin/tessera.js");
/** Environment variable that tells a forked process its worker index (1…N). */
const INDEX_ENV = "TESSERA_WORKER_INDEX";
/** Response header naming the worker that answered, on GET /healthz only (the device protocols' answers stay exactly as from one process). */
export const WORKER_HEADER = "x-tessera-worker";

interface ReadyMessage {
  type: "tessera:ready";
  index: number;
  url: string;
  httpUrl?: string;
  banner: string[];
}

/** What a cluster worker needs to know and do (see clusterWorker). */
export interface WorkerRole {
  /** 1…N; worker 1 runs the singleton duties. */
  index: number;
  /** startServer's `singletons`. */
  singletons: boolean;
  /** startServer's `banner`: collected and handed to the primary, which prints worker 1's. */
  banner(line: string): void;
  /** Call once the server listens: tags its answers with X-Tessera-Worker and tells the primary. */
  ready(server: RunningServer): void;
}

/** This process's role if `tessera serve --workers N` forked it; undefined in any other process. */
export function clusterWorker(): WorkerRole | undefined {
  if (!cluster.isWorker) return undefined;
  const index = Number(process.env[INDEX_ENV]);
  if (!Number.isInteger(index) || index < 1) return undefined;
  const banner: string[] = [];
  return {
    index,
    singletons: index === 1,
    banner: (line) => void banner.push(line),
    ready(server) {
      // Set before Fastify's handler runs; writeHead merges it with the reply's own headers.
      for (const l of server.listeners) {
        l.server.prependListener("request", (req, res) => {
          if (req.url?.split("?", 1)[0] === "/healthz") res.setHeader(WORKER_HEADER, String(index));
        });
      }
      const msg: ReadyMessage = { type: "tessera:ready", index, url: server.url, httpUrl: server.httpUrl, banner };
      process.send?.(msg);
    },
  };
}

/** Options of runPrimary. */
export interface PrimaryOptions {
  config: TesseraConfig;
  logger: Logger;
  /** The command line the workers run (`serve …` as the CLI got it). */
  argv: string[];
  /** Environment for the workers (and CA passphrase lookup). */
  env: NodeJS.ProcessEnv;
  /** Where banner lines go (undefined with --json). */
  banner?: (line: string) => void;
  /** Milliseconds a worker may take to listen (default 60 s). */
  startTimeoutMs?: number;
}

/** A running cluster, as the primary sees it. */
export interface RunningCluster {
  url: string;
  httpUrl?: string;
  /** SHA-256 of the root CA certificate, hex. */
  rootSha256: string;
  /** Worker process ids by index (current ones; a replaced worker has a new pid). */
  pids(): number[];
  /** Stops every worker (SIGTERM: drain, then exit; SIGKILL after `graceMs`, default 30 s). */
  stop(graceMs?: number): Promise<void>;
}

/** Migrations, the CA on first start and the server certificate, once, before any worker runs. */
async function prepare(config: TesseraConfig, log: Logger, env: NodeJS.ProcessEnv): Promise<{ createdCa: boolean; generatedPassphraseFile?: string; rootSha256: string }> {
  const { authority, store, createdCa, generatedPassphraseFile } = await openAuthority(config, log, env);
  try {
    await ensureServerCertificate({ dataDir: config.dataDir, hostname: config.hostname, authority, renewBeforeSeconds: config.serverCertificate.renewBefore, now: new Date() });
    await authority.flush();
    return { createdCa, generatedPassphraseFile, rootSha256: sha256Hex(authority.ca.root.der) };
  } finally {
    await store.close();
  }
}

function whenReady(w: Worker, index: number, timeoutMs: number): Promise<ReadyMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`worker ${index} did not listen within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (m: unknown) => {
      if ((m as ReadyMessage | undefined)?.type === "tessera:ready") done(undefined, m as ReadyMessage);
    };
    const onExit = (code: number | null, signal: string | null) => done(new Error(`worker ${index} exited (${signal ?? code}) before it listened`));
    const done = (err?: Error, m?: ReadyMessage) => {
      clearTimeout(timer);
      w.off("message", onMessage);
      w.off("exit", onExit);
      if (err) reject(err);
      else resolve(m!);
    };
    w.on("message", onMessage);
    w.on("exit", onExit);
  });
}

/**
 * The primary of `tessera serve --workers N`: prepares, starts the workers
 * (worker 1 first), prints worker 1's banner once they all listen, and keeps
 * them running (signals forwarded, dead workers replaced). Resolves once every
 * worker listens; rejects (after stopping any started worker) if one cannot
 * start, whose own error is on stderr already.
 */
export async function runPrimary(opts: PrimaryOptions): Promise<RunningCluster> {
  const { config, logger: log } = opts;
  const n = config.workers;
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  const prepared = await prepare(config, log, opts.env);
  cluster.setupPrimary({ exec: BIN, args: opts.argv, silent: false });

  const workers = new Map<number, Worker>();
  let stopping = false;
  const deaths = new Map<number, number[]>();
  const fork = (index: number): Worker => {
    const w = cluster.fork({ ...opts.env, [INDEX_ENV]: String(index) });
    workers.set(index, w);
    w.on("exit", (code, signal) => {
      if (workers.get(index) !== w) return;
      workers.delete(index);
      if (stopping || !started) return;
      // Replace it with the same index (worker 1 keeps its duties); back off when it keeps dying.
      const now = Date.now();
      const recent = (deaths.get(index) ?? []).filter((t) => now - t < 60_000).concat(now);
      deaths.set(index, recent);
      const delay = Math.min(30_000, 500 * 2 ** (recent.length - 1));
      log.error({ worker: index, pid: w.process.pid, code, signal }, `worker ${index} died; starting another in ${delay} ms`);
      setTimeout(() => {
        if (stopping) return;
        const again = fork(index);
        whenReady(again, index, timeoutMs).then(
          () => log.info({ worker: index, pid: again.process.pid }, `worker ${index} replaced`),
          (err) => log.error({ err }, `replacement of worker ${index} failed`),
        );
      }, delay).unref();
    });
    return w;
  };

  const stop = async (graceMs = 30_000) => {
    stopping = true;
    const alive = [...workers.values()].filter((w) => w.process.exitCode === null && w.process.signalCode === null);
    const exited = alive.map((w) => new Promise<void>((resolve) => w.once("exit", () => resolve())));
    for (const w of alive) w.process.kill("SIGTERM");
    const force = setTimeout(() => alive.forEach((w) => w.process.kill("SIGKILL")), graceMs);
    await Promise.all(exited);
    clearTimeout(force);
  };

  let started = false;
  let first: ReadyMessage;
  try {
    // Worker 1 alone first: anything a first start still creates (the OCSP signer) is made once.
    first = await whenReady(fork(1), 1, timeoutMs);
    await Promise.all(Array.from({ length: n - 1 }, (_, i) => whenReady(fork(i + 2), i + 2, timeoutMs)));
  } catch (err) {
    await stop(5_000);
    throw err;
  }
  started = true;

  // The workers drain on the way out and reload on SIGHUP (each runs its own handlers).
  installSignalHandlers({ close: () => stop(), reload: () => void workers.forEach((w) => w.process.kill("SIGHUP")) }, log);

  const print = opts.banner;
  if (print) {
    const p = caPaths(config.dataDir);
    for (const line of first.banner) {
      // The primary made the CA, so worker 1 found it: say what happened at this start.
      print(prepared.createdCa && line.startsWith("  CA loaded: ") ? line.replace("  CA loaded: ", "  CA created: ") : line);
      if (prepared.generatedPassphraseFile && line.startsWith("  CA ") && line.includes(p.root)) {
        print(`  CA key passphrase generated into ${prepared.generatedPassphraseFile} (mode 0600): back it up, the CA keys are encrypted with it`);
      }
    }
    const pids = [...workers.entries()].sort((a, b) => a[0] - b[0]).map(([, w]) => w.process.pid);
    print(`  Workers: ${n} processes (node:cluster, pids ${pids.join(", ")}; primary ${process.pid}); worker 1 runs the CRL file, renewal and rotation timers`);
  }
  return {
    url: first.url,
    httpUrl: first.httpUrl,
    rootSha256: prepared.rootSha256,
    pids: () => [...workers.entries()].sort((a, b) => a[0] - b[0]).map(([, w]) => w.process.pid!),
    stop,
  };
}
