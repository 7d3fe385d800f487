/**
 * The tiny dialect layer the SQL store is written against. Statements are
 * written once with `?` placeholders; each executor adapts them to its driver
 * (the PostgreSQL one rewrites them to `$1..$n`). Executors map driver errors
 * to TesseraError codes (STORE_CONFLICT, STORE_UNAVAILABLE), so the store never
 * sees driver-specific error shapes.
 */

/** Which SQL database an executor talks to. */
export type Dialect = "sqlite" | "postgres";

/** A value that can be bound to a `?` placeholder. */
export type SqlValue = string | number | bigint | Buffer | null;

/** One result row, keyed by column name. */
export type Row = Record<string, unknown>;

/** Runs single statements (inside or outside a transaction). */
export interface SqlQueryable {
  /** Runs a query and returns every row. */
  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
  /** Runs a query and returns its first row, if any. */
  get(sql: string, params?: readonly SqlValue[]): Promise<Row | undefined>;
  /** Runs a statement that returns no rows; reports how many rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }>;
  /** Runs a parameterless script that may hold several statements (migrations). */
  exec(sql: string): Promise<void>;
}

/** A connection (or pool) that can also open transactions. */
export interface SqlExecutor extends SqlQueryable {
  readonly dialect: Dialect;
  /**
   * Runs `fn` in one transaction: commits when it resolves, rolls back when it
   * throws. Statements of the transaction MUST go through the `tx` argument:
   * calling the executor itself from inside `fn` may wait for the transaction
   * to end, i.e. deadlock.
   */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  /** Waits for running work and releases the connection(s). */
  close(): Promise<void>;
}

/** Builds "?, ?, ?" for an IN list of `n` values (n ≥ 1). */
export function placeholders(n: number): string {
  return Array.from({ length: n }, () => "?").join(", ");
}

/**
 * Rewrites `?` placeholders to PostgreSQL's `$1..$n`, leaving question marks
 * inside quoted strings, quoted identifiers and comments alone.
 */
export function toNumberedPlaceholders(sql: string): string {
  let out = "";
  let n = 0;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      // Copy the quoted run verbatim; doubled quotes are escapes and simply re-enter.
      const end = sql.indexOf(c, i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (c === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      const stop = end === -1 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (c === "?") {
      out += `$${++n}`;
    } else {
      out += c;
    }
  }
  return out;
}

/**
 * A WHERE clause built from optional filters: each `add` keeps its condition
 * (one "?" placeholder) only when the value is defined, and pushes the value
 * onto the statement's parameters in the same order.
 */
export class Conditions {
  /** The conditions so far, to join into a larger clause. */
  readonly parts: string[] = [];
  constructor(private readonly params: SqlValue[]) {}

  /** Adds `sql` with `value` unless the value is undefined. */
  add(sql: string, value: SqlValue | undefined): this {
    if (value !== undefined) {
      this.parts.push(sql);
      this.params.push(value);
    }
    return this;
  }

  /** Adds a condition whose parameters (if any) the caller has already pushed. */
  raw(sql: string): this {
    this.parts.push(sql);
    return this;
  }

  /** " WHERE a AND b", or "" when there is no condition. */
  toString(): string {
    return this.parts.length ? ` WHERE ${this.parts.join(" AND ")}` : "";
  }
}
