/**
 * `tessera-agent run`: the AutoRenewer as a daemon. It logs one line per
 * check, renewal and error, runs an optional command after each renewal, and
 * stops cleanly on SIGTERM/SIGINT (or the AbortSignal a caller passes in).
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { isEnrolled } from "../keystore/store-dir.js";
import { ImprintError } from "../protocols/imprint/errors.js";
import { renewOrReenroll, type RenewOutcome } from "../protocols/imprint/renew-or-reenroll.js";
import { AutoRenewer } from "../renew/auto-renewer.js";
import { errorJson, EXIT, UsageError, type AgentIo } from "./output.js";
import { buildSecret, deviceFingerprint, duration, formatDuration, imprintClient, serverUrl, storeDir, str } from "./options.js";
import { NO_SECRET_HINT, operations, renewalWindows, summarise, type Command, type IdentitySummary } from "./shared.js";

/** How long an --exec command may run before it is sent SIGTERM, in milliseconds. */
export const EXEC_TIMEOUT_MS = 120_000;
const HOUR_MS = 3_600_000;

/** One log record; text mode prints `time event: text`, --json prints the fields as one JSON line. */
type Log = (event: "start" | "check" | "renewal" | "exec" | "error" | "stop", fields: Record<string, unknown>, text: string) => void;

function logger(io: AgentIo): Log {
  return (event, fields, text) => {
    const time = new Date().toISOString();
    if (io.json) io.out(JSON.stringify({ time, event, ...fields }));
    else (event === "error" ? io.err : io.out)(`${time} ${event}: ${text}`);
  };
}

/**
 * Splits --exec into a program and its arguments on spaces and tabs. There is
 * deliberately no shell, quoting or expansion: the command line is fixed by
 * the operator, and nothing the server sends can reach it.
 */
export function parseExec(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  const argv = text.trim().split(/[ \t]+/).filter((a) => a !== "");
  if (argv.length === 0) throw new UsageError("--exec must name a program");
  return argv;
}

/** Reads --jitter: a fraction in [0, 1), default 0.1. */
export function parseJitter(text: string | undefined): number {
  if (text === undefined) return 0.1;
  const j = Number(text);
  if (text.trim() === "" || !(j >= 0 && j < 1)) throw new UsageError(`--jitter: '${text}' is not a number in [0, 1)`);
  return j;
}

/** How an --exec run ended. */
export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  /** Why it could not start or was aborted. */
  error?: string;
}

/**
 * Runs the --exec command without a shell. Its standard output goes to our
 * standard error so it cannot corrupt the --json log stream; the build secret
 * is removed from its environment because a reload hook has no use for it.
 */
export function runExec(argv: string[], env: NodeJS.ProcessEnv, extra: Record<string, string>, signal: AbortSignal): Promise<ExecResult> {
  const childEnv: NodeJS.ProcessEnv = { ...env, ...extra };
  delete childEnv.TESSERA_BUILD_SECRET;
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: ExecResult) => {
      if (!settled) resolve(r);
      settled = true;
    };
    const child = spawn(argv[0]!, argv.slice(1), { shell: false, stdio: ["ignore", 2, 2], env: childEnv, timeout: EXEC_TIMEOUT_MS, signal });
    child.on("error", (err) => done({ exitCode: null, signal: null, error: err.message }));
    child.on("exit", (exitCode, sig) => done({ exitCode, signal: sig }));
  });
}

/** A signal for stopping: the caller's, else one fired by the first SIGTERM or SIGINT (a second one kills as usual). */
function stopSignal(io: AgentIo): { signal: AbortSignal; release: () => void } {
  if (io.signal) return { signal: io.signal, release: () => undefined };
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => controller.abort(new Error(`received ${name}`));
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  return {
    signal: controller.signal,
    release: () => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    },
  };
}

function certText(s: IdentitySummary): string {
  return `serial ${s.serial}, valid until ${s.notAfter} (${s.daysLeft} days left)`;
}

/** `tessera-agent run`; returns 0 once stopped by a signal. */
export const runCommand: Command = async (inv) => {
  const dir = storeDir(inv);
  const client = imprintClient(inv, dir);
  const secret = buildSecret(inv);
  const windows = renewalWindows(inv);
  const intervalMs = duration(inv, "interval", HOUR_MS);
  const jitter = parseJitter(str(inv, "jitter"));
  const exec = parseExec(str(inv, "exec"));
  // Without an identity and without a secret every check would fail the same way: say so now.
  if (secret === undefined && !(await isEnrolled(dir))) {
    throw new ImprintError("not-enrolled", `not enrolled: no identity in ${dir}, and a build secret is needed to enroll: ${NO_SECRET_HINT}`);
  }
  const fp = await deviceFingerprint(inv, dir);
  const log = logger(inv.io);
  const ops = operations(client, secret);
  const { signal, release } = stopSignal(inv.io);

  const check = async (thresholdMs: number, checkSignal: AbortSignal): Promise<RenewOutcome> => {
    const outcome = await renewOrReenroll(ops, { storeDir: dir, now: () => new Date() }, {
      buildSecret: secret ?? "", fingerprint: fp.fingerprint, thresholdMs, challengeWindowMs: windows.challengeWindowMs,
    });
    const s = await summarise(dir, thresholdMs);
    if (outcome.action === "none") {
      log("check", { action: "none", serial: s.serial, notAfter: s.notAfter, daysLeft: s.daysLeft }, `no renewal needed; ${certText(s)}`);
      return outcome;
    }
    const tried = outcome.attempts.map((a) => `${a.tier}${a.status ? ` HTTP ${a.status}` : ""}`).join(", ");
    log(
      "renewal",
      { action: outcome.action, attempts: outcome.attempts, serverId: s.serverId, serial: s.serial, notAfter: s.notAfter, daysLeft: s.daysLeft },
      `${outcome.action}${tried ? ` (after ${tried} failed)` : ""}; server id ${s.serverId}, ${certText(s)}`,
    );
    if (exec) {
      const r = await runExec(exec, inv.env, {
        TESSERA_AGENT_ACTION: outcome.action, TESSERA_AGENT_DIR: path.resolve(dir), TESSERA_AGENT_SERVER_ID: s.serverId ?? "",
      }, checkSignal);
      const how = r.error ?? (r.signal ? `killed by ${r.signal}` : `exited ${r.exitCode}`);
      log("exec", { command: exec, ...r }, `${exec.join(" ")} ${how}`);
    }
    return outcome;
  };

  log(
    "start",
    { dir, server: serverUrl(inv), intervalMs, thresholdMs: windows.thresholdMs, jitter, fingerprint: fp.fingerprint, fingerprintTier: fp.tier },
    `dir ${dir}, every ${formatDuration(intervalMs)} ±${Math.round(jitter * 1000) / 10}%, renew below ${formatDuration(windows.thresholdMs)}; fingerprint ${fp.fingerprint} (${fp.tier})`,
  );
  const renewer = new AutoRenewer({
    run: (ctx) => check(ctx.thresholdMs, ctx.signal),
    intervalMs,
    thresholdMs: windows.thresholdMs,
    jitter,
    signal,
    onError: (err, nextDelayMs) => {
      const e = errorJson(err);
      log("error", { ...e, retryInMs: nextDelayMs }, `${String(e.message)}; next try in ${formatDuration(Math.round(nextDelayMs / 1000) * 1000 || nextDelayMs)}`);
    },
  });
  renewer.start();
  await renewer.stopped;
  release();
  const reason = signal.reason instanceof Error ? signal.reason.message : "stopped";
  log("stop", { reason }, reason);
  return EXIT.ok;
};
