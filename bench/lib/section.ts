/**
 * The shape every benchmark section has, so `npm run bench` can run them in
 * one process, print one table per section and one JSON line, and write the
 * results file and the chart that docs/benchmarks.md shows.
 */

/** One headline figure, compared with its target when the issue sets one. */
export interface BenchFigure {
  /** Stable key, e.g. "enroll.c8.reqPerSec". */
  key: string;
  /** Human label for the table. */
  label: string;
  value: number;
  unit: string;
  /** The target in words, e.g. "≥ 1.5× cfssl" or "≤ 3 s". */
  target?: string;
  /** Whether the target is met (undefined: no target). */
  met?: boolean;
  /** What bounds it, or how it was measured. */
  note?: string;
}

/** What a section returns. */
export interface BenchResult {
  /** Detailed rows, printed with console.table. */
  rows: Record<string, unknown>[];
  figures: BenchFigure[];
}

/** Options every section gets. */
export interface BenchOptions {
  /** Seconds per timed run (the issue says 10; BENCH_SECONDS overrides). */
  seconds: number;
  /** Smaller sizes for a quick look (BENCH_QUICK=1): e.g. 100k rows instead of 10M. */
  quick: boolean;
  /** A directory for temporary files (data dirs, CSRs), removed afterwards. */
  workDir: string;
}

/** A benchmark section. */
export interface BenchSection {
  id: string;
  title: string;
  run(opts: BenchOptions): Promise<BenchResult>;
}
