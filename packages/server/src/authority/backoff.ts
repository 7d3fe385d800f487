/**
 * Capped exponential backoff with jitter, for the outbox's delivery workers
 * (webhook, event bus): attempt n waits min(base × 2^(n−1), cap), scaled by a
 * random factor in [1 − jitter, 1 + jitter) so replicas do not retry in step.
 */

/** Milliseconds to wait after failed attempt number `attempt` (1-based). */
export function backoffDelay(attempt: number, p: { baseMs: number; capMs: number; jitter: number }, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30);
  const capped = Math.min(p.capMs, p.baseMs * 2 ** exponent);
  return Math.round(capped * (1 - p.jitter + 2 * p.jitter * random()));
}
