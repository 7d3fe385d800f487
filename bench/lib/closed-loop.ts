/**
 * A closed-loop load in this process: `concurrency` callers each run `one(i)`
 * for the next i until `total` are done, timing each call and the CPU this
 * process spent (all threads, process.cpuUsage).
 */

/** What a closed-loop run measured. */
export interface ClosedLoopResult {
  seconds: number;
  /** CPU of this process over the run, microseconds. */
  cpuUs: number;
  /** Per-call latencies, ms, sorted ascending. */
  latencies: number[];
}

/** Runs `one` `total` times with `concurrency` in flight. */
export async function closedLoop(total: number, concurrency: number, one: (i: number) => Promise<unknown>): Promise<ClosedLoopResult> {
  const latencies: number[] = [];
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const s = process.hrtime.bigint();
        await one(i);
        latencies.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  return { seconds, cpuUs: cpu.user + cpu.system, latencies };
}

/** The p-quantile (0–1) of sorted values. */
export function quantile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}
