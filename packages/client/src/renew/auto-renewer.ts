/**
 * AutoRenewer: keeps a device certificate fresh by calling a renewal check
 * (usually `renewOrReenroll`) on a jittered interval, with capped exponential
 * backoff after failures. Replaces the original's fixed 24 h ticker, which had
 * no jitter (a fleet renewed in a herd) and waited a full day after a failure
 * (imprint spec §8, weakness W20).
 */

/** What a check receives: the renewal threshold and a signal that fires when the renewer stops. */
export interface RenewCheckContext {
  /** Renew when the certificate has less than this left, in milliseconds. */
  thresholdMs: number;
  /** Aborted by stop() or the renewer's own signal; pass it to network calls. */
  signal: AbortSignal;
}

/** What a check returns; `action` is "none" when nothing was renewed ("renewed", "challenge_renewed", "reenrolled" otherwise). */
export interface RenewCheckResult {
  action: string;
}

/** The timer functions the renewer uses; tests pass fakes. */
export interface RenewerTimers {
  /** Calls `fn` once after `ms` milliseconds; returns a handle for clearTimeout. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a pending call. */
  clearTimeout(handle: unknown): void;
}

/** Capped exponential backoff after a failed check. */
export interface RenewerBackoff {
  /** First delay after a failure, in milliseconds (default 30 000). */
  initialMs?: number;
  /** Largest delay, in milliseconds (default: the interval). */
  maxMs?: number;
  /** Growth per consecutive failure (default 2). */
  factor?: number;
}

/** Options of AutoRenewer; only `run` is required. */
export interface AutoRenewerOptions<R extends RenewCheckResult = RenewCheckResult> {
  /** The check, e.g. `(ctx) => imprint.renewOrReenroll({ thresholdMs: ctx.thresholdMs, signal: ctx.signal })`. */
  run: (ctx: RenewCheckContext) => Promise<R>;
  /** Time between checks after a success, in milliseconds (default 3 600 000 = 1 h; a check only reads a local file unless renewal is due). */
  intervalMs?: number;
  /** Passed to run(): renew when less than this is left, in milliseconds (default 30 days). */
  thresholdMs?: number;
  /** Spread of every delay as a fraction of it, 0 ≤ jitter < 1 (default 0.1: ±10 %), so a fleet started together does not renew together. */
  jitter?: number;
  /** Retry schedule after a failure; reset by the next success. */
  backoff?: RenewerBackoff;
  /** Called after a check whose action is not "none" (e.g. to reload TLS). If it throws, the check counts as failed. */
  onRenew?: (result: R) => void;
  /** Called after a failed check with the error and the delay until the next try, in milliseconds. */
  onError?: (err: unknown, nextDelayMs: number) => void;
  /** Stops the renewer when aborted (same as stop()). */
  signal?: AbortSignal;
  /** Timer functions (default: the global setTimeout/clearTimeout). */
  timers?: RenewerTimers;
  /** Clock in epoch milliseconds, used for nextRunAt (default Date.now). */
  now?: () => number;
  /** Uniform random number in [0, 1) for jitter (default Math.random: jitter needs spread, not secrecy). */
  random?: () => number;
  /** Whether the pending timer keeps the process alive (default true: a renew-only agent must not exit). */
  keepAlive?: boolean;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
// setTimeout fires at once for delays above 2^31 − 1 ms (~24.8 days); an early check is harmless.
const MAX_TIMER_MS = 2 ** 31 - 1;

const defaultTimers: RenewerTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`AutoRenewer: ${name} must be a positive number of milliseconds, got ${value}`);
  return value;
}

/**
 * Runs a renewal check now and then every `intervalMs` (±jitter) until
 * stopped; after a failure it retries with capped exponential backoff.
 * Checks never overlap: a check requested while one is in flight joins it.
 */
export class AutoRenewer<R extends RenewCheckResult = RenewCheckResult> {
  /** Resolves once the renewer is stopped and no check is in flight. */
  readonly stopped: Promise<void>;
  private readonly opts: Required<Pick<AutoRenewerOptions<R>, "intervalMs" | "thresholdMs" | "jitter" | "now" | "random" | "timers" | "keepAlive">>;
  private readonly backoff: Required<RenewerBackoff>;
  private readonly controller = new AbortController();
  private state: "idle" | "running" | "stopped" = "idle";
  private timer: unknown;
  private nextAt: number | undefined;
  private inFlight: Promise<R> | undefined;
  private failures = 0;
  private resolveStopped!: () => void;
  private readonly unlink: () => void;

  /** Validates the options (RangeError on a bad value); does not start checking until start(). */
  constructor(private readonly options: AutoRenewerOptions<R>) {
    if (typeof options.run !== "function") throw new TypeError("AutoRenewer: run must be a function");
    const intervalMs = positive("intervalMs", options.intervalMs ?? HOUR_MS);
    const jitter = options.jitter ?? 0.1;
    if (!(jitter >= 0 && jitter < 1)) throw new RangeError(`AutoRenewer: jitter must be in [0, 1), got ${jitter}`);
    this.opts = {
      intervalMs,
      thresholdMs: positive("thresholdMs", options.thresholdMs ?? 30 * DAY_MS),
      jitter,
      now: options.now ?? Date.now,
      random: options.random ?? Math.random,
      timers: options.timers ?? defaultTimers,
      keepAlive: options.keepAlive ?? true,
    };
    const b = options.backoff ?? {};
    this.backoff = {
      initialMs: positive("backoff.initialMs", b.initialMs ?? 30_000),
      maxMs: positive("backoff.maxMs", b.maxMs ?? intervalMs),
      factor: b.factor ?? 2,
    };
    if (!(this.backoff.factor >= 1)) throw new RangeError(`AutoRenewer: backoff.factor must be ≥ 1, got ${this.backoff.factor}`);
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    const external = options.signal;
    const onAbort = () => void this.stop();
    external?.addEventListener("abort", onAbort, { once: true });
    this.unlink = () => external?.removeEventListener("abort", onAbort);
    if (external?.aborted) void this.stop();
  }

  /** True between start() and stop(). */
  get running(): boolean {
    return this.state === "running";
  }

  /** True while a check is in flight. */
  get busy(): boolean {
    return this.inFlight !== undefined;
  }

  /** When the next scheduled check is due (undefined while a check runs or when not running). */
  get nextRunAt(): Date | undefined {
    return this.nextAt === undefined ? undefined : new Date(this.nextAt);
  }

  /** Number of failed checks since the last success. */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Runs a check immediately, then keeps scheduling; a second call is a no-op. Throws after stop(): make a new renewer. */
  start(): this {
    if (this.state === "stopped") throw new Error("AutoRenewer: stopped; create a new one to start again");
    if (this.state === "idle") {
      this.state = "running";
      void this.tick();
    }
    return this;
  }

  /**
   * Runs one check now, outside the schedule (for CLI tools), and returns its
   * result; joins the check in flight if there is one. Rejects with the
   * check's error; does not change the schedule or the backoff.
   */
  runOnce(): Promise<R> {
    if (this.state === "stopped") return Promise.reject(new Error("AutoRenewer: stopped"));
    return this.check();
  }

  /** Stops scheduling and aborts the check in flight; resolves like `stopped`. */
  stop(): Promise<void> {
    if (this.state !== "stopped") {
      this.state = "stopped";
      this.clearTimer();
      this.unlink();
      this.controller.abort(new Error("AutoRenewer stopped"));
      // A check that ignores its signal still finishes before `stopped` resolves,
      // so callers never shut down under a half-written store.
      void (this.inFlight ?? Promise.resolve()).then(this.resolveStopped, this.resolveStopped);
    }
    return this.stopped;
  }

  private check(): Promise<R> {
    if (!this.inFlight) {
      const p = (async () => {
        const result = await this.options.run({ thresholdMs: this.opts.thresholdMs, signal: this.controller.signal });
        if (result.action !== "none") this.options.onRenew?.(result);
        return result;
      })();
      this.inFlight = p;
      const clear = () => {
        if (this.inFlight === p) this.inFlight = undefined;
      };
      p.then(clear, clear);
    }
    return this.inFlight;
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    this.nextAt = undefined;
    if (this.state !== "running") return;
    let delay: number;
    try {
      await this.check();
      this.failures = 0;
      delay = this.jittered(this.opts.intervalMs);
    } catch (err) {
      // A check aborted by stop() is shutdown, not a failure worth reporting.
      if (this.state !== "running") return;
      this.failures++;
      const base = this.backoff.initialMs * this.backoff.factor ** (this.failures - 1);
      delay = Math.min(this.backoff.maxMs, this.jittered(Math.min(base, this.backoff.maxMs)));
      try {
        this.options.onError?.(err, delay);
      } catch {
        // A throwing error hook has nowhere left to report to; it must not end the schedule.
      }
    }
    if (this.state === "running") this.schedule(delay);
  }

  private jittered(ms: number): number {
    const j = this.opts.jitter;
    return Math.max(1, Math.round(ms * (1 - j + 2 * j * this.opts.random())));
  }

  private schedule(delay: number): void {
    this.nextAt = this.opts.now() + delay;
    const handle = this.opts.timers.setTimeout(() => void this.tick(), Math.min(delay, MAX_TIMER_MS));
    if (!this.opts.keepAlive) (handle as { unref?: () => void } | undefined)?.unref?.();
    this.timer = handle;
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.opts.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.nextAt = undefined;
  }
}
