/**
 * The polling loop shared by the outbox's consumers (the webhook worker,
 * webhook/; the bus publisher, bus/): one pass at a time (a timer's pass and
 * a runOnce never overlap), the next pass at once when the last one says
 * more may be due, else after the poll interval; a failed pass is logged and
 * retried at the interval; the timer never keeps the process alive; stop()
 * waits for the pass in progress. What a pass does is the consumer's.
 */
import { TesseraError } from "../errors.js";

/** The logger an outbox consumer needs (pino's fits). */
export interface ConsumerLog {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

/** A running outbox consumer. */
export interface OutboxPoller {
  /** Stops polling and waits for the pass in progress (then the consumer's own cleanup); idempotent. */
  stop(): Promise<void>;
  /** Runs one pass now (after any pass in progress). Returns how many messages it handled (0 once stopped). */
  runOnce(): Promise<number>;
}

/** A consumer that does nothing (its channel is not configured). */
export const IDLE_POLLER: OutboxPoller = { stop: async () => undefined, runOnce: async () => 0 };

/** Starts the loop over `pass`. */
export function startOutboxPoller(options: {
  /** Claims and handles one batch; resolves to how many messages it handled. */
  pass: () => Promise<number>;
  /** Whether to go again at once after a pass that handled `n` messages. */
  again: (n: number) => boolean;
  /** Milliseconds between passes while nothing is due. */
  pollInterval: number;
  /** Poll on a timer (default true); false: only runOnce (tests). */
  poll?: boolean;
  log: ConsumerLog;
  /** Log prefix, e.g. "webhook". */
  name: string;
  /** Runs after the last pass when stopped (close connections). */
  onStop?: () => Promise<void>;
}): OutboxPoller {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  // Passes run one at a time: the timer's and runOnce's never overlap.
  let tail: Promise<unknown> = Promise.resolve();
  const pass = () => (stopped ? Promise.resolve(0) : options.pass());

  function runOnce(): Promise<number> {
    const run = tail.then(pass, pass);
    tail = run.catch(() => undefined);
    return run;
  }

  function schedule(delay: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      runOnce().then(
        (n) => schedule(options.again(n) ? 0 : options.pollInterval),
        (err: unknown) => {
          options.log.warn({ err }, `${options.name}: outbox poll failed`);
          schedule(options.pollInterval);
        },
      );
    }, delay);
    // The server's shutdown stops the consumer; the timer alone should not keep a process alive.
    timer.unref();
  }

  if (options.poll ?? true) schedule(0);

  return {
    async stop(): Promise<void> {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await tail;
      await options.onStop?.();
    },
    runOnce,
  };
}

/** A consumer option that must be a positive integer (TESSERA_ERR_CONFIG_INVALID otherwise). */
export function positiveInt(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new TesseraError("TESSERA_ERR_CONFIG_INVALID", { detail: `${what} must be a positive integer` });
  return n;
}
