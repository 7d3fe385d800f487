/**
 * Reading TOML tables for loadConfig: unknown keys are reported with a close
 * match, values are parsed by the parsers in values.ts, and every problem is
 * collected (with where it came from) instead of thrown.
 */
import { hint, isTable, show, type Parser, type Table } from "./values.js";
import type { ConfigProblem } from "./load.js";

/** Where a setting's value came from. */
export type Source = "default" | "file" | "env" | "flag";

/** Collects problems and records where each setting came from. */
export class Context {
  readonly problems: ConfigProblem[] = [];
  readonly sources: Record<string, Source> = {};
  problem(key: string, source: string, message: string): void {
    this.problems.push({ key, message, source });
  }
}

/** A TOML table being read: reports keys it does not know (with a close match) and parses the ones it does. */
export class TableReader {
  constructor(readonly ctx: Context, readonly table: Table, readonly prefix: string, known: readonly string[] | null, readonly base: string) {
    for (const k of known ? Object.keys(table) : []) {
      if (!known!.includes(k)) ctx.problem(this.key(k), "file", `unknown key${hint(k, known!)}`);
    }
  }
  key(k: string): string {
    return this.prefix ? `${this.prefix}.${k}` : k;
  }
  /** Reports a problem with this file at dotted `key`. */
  problem(key: string, message: string): void {
    this.ctx.problem(key, "file", message);
  }
  /** Parses key `k`; undefined when absent or bad (bad values are reported). */
  get<T>(k: string, parser: Parser<T>): T | undefined {
    const raw = this.table[k];
    return raw === undefined ? undefined : parser(raw, (m) => this.ctx.problem(this.key(k), "file", m), this.base);
  }
  /** Parses key `k` and, when good, applies it and records setting `sourceKey` as set by the file. */
  set<T>(k: string, parser: Parser<T>, apply: (v: T) => void, sourceKey = this.key(k)): void {
    const v = this.get(k, parser);
    if (v === undefined) return;
    apply(v);
    this.ctx.sources[sourceKey] = "file";
  }
  /** The sub-table under `k` (null `known` allows any key), or undefined when absent or not a table (reported). */
  sub(k: string, known: readonly string[] | null): TableReader | undefined {
    const raw = this.table[k];
    if (raw === undefined) return undefined;
    if (isTable(raw)) return new TableReader(this.ctx, raw, this.key(k), known, this.base);
    this.ctx.problem(this.key(k), "file", `expected a table, got ${show(raw)}`);
    return undefined;
  }
}

