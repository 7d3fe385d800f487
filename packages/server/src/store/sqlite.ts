/**
 * SqlExecutor on better-sqlite3. The driver is synchronous and owns a single
 * connection, so a transaction that awaits between its statements would see
 * statements of unrelated async callers land inside it. Every transaction
 * therefore holds an async lock for its whole life, and statements outside a
 * transaction wait for that lock when it is taken.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { TesseraError } from "../errors.js";
import type { Row, SqlExecutor, SqlQueryable, SqlValue } from "./sql.js";

/** Options for the SQLite executor. */
export interface SqliteOptions {
  /** "full" (default): every commit is durable on power loss; "normal": faster, may lose the last commits. */
  synchronous?: "full" | "normal";
}

/** Hands out one turn at a time, in arrival order. */
class AsyncLock {
  private held = false;
  private readonly waiters: Array<() => void> = [];

  get locked(): boolean {
    return this.held;
  }

  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    if (this.held) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.held = true;
    try {
      return await fn();
    } finally {
      // Hand the lock straight to the next waiter so nobody can barge in between.
      const next = this.waiters.shift();
      if (next) next();
      else this.held = false;
    }
  }
}

type Stmt = Database.Statement<unknown[], unknown>;

/** Beyond this many distinct statements the cache is dropped (dynamic IN lists would grow it forever). */
const STATEMENT_CACHE_LIMIT = 500;

const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|CANTOPEN|IOERR|FULL|READONLY|NOTADB|CORRUPT|PERM|AUTH)/;

/** Maps a better-sqlite3 error to a TesseraError where it has a store meaning; other errors pass through. */
export function mapSqliteError(err: unknown): unknown {
  if (err instanceof TesseraError) return err;
  if (err instanceof Database.SqliteError) {
    if (err.code.startsWith("SQLITE_CONSTRAINT")) {
      return new TesseraError("TESSERA_ERR_STORE_CONFLICT", { detail: err.message, cause: err });
    }
    if (UNAVAILABLE.test(err.code)) {
      return new TesseraError("TESSERA_ERR_STORE_UNAVAILABLE", { detail: err.message, cause: err });
    }
  }
  if (err instanceof TypeError && /database connection is not open/i.test(err.message)) {
    return new TesseraError("TESSERA_ERR_STORE_UNAVAILABLE", { detail: err.message, cause: err });
  }
  return err;
}

/** SqlExecutor over one better-sqlite3 connection. */
class SqliteExecutor implements SqlExecutor {
  readonly dialect = "sqlite" as const;
  private readonly lock = new AsyncLock();
  private readonly statements = new Map<string, Stmt>();

  constructor(private readonly db: Database.Database) {}

  private prepare(sql: string): Stmt {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      if (this.statements.size >= STATEMENT_CACHE_LIMIT) this.statements.clear();
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  /** The statement primitives, run immediately on the connection. */
  private readonly direct = {
    all: (sql: string, params: readonly SqlValue[] = []): Row[] => this.prepare(sql).all(...params) as Row[],
    get: (sql: string, params: readonly SqlValue[] = []): Row | undefined => this.prepare(sql).get(...params) as Row | undefined,
    run: (sql: string, params: readonly SqlValue[] = []): { changes: number } => ({ changes: this.prepare(sql).run(...params).changes }),
    exec: (sql: string): void => void this.db.exec(sql),
  };

  /** Runs a single statement now when no transaction is open, else after it. */
  private outside<T>(op: () => T): Promise<T> {
    const guarded = (): T => {
      try {
        return op();
      } catch (err) {
        throw mapSqliteError(err);
      }
    };
    if (!this.lock.locked) {
      try {
        return Promise.resolve(guarded());
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.lock.run(guarded);
  }

  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]> {
    return this.outside(() => this.direct.all(sql, params));
  }
  get(sql: string, params?: readonly SqlValue[]): Promise<Row | undefined> {
    return this.outside(() => this.direct.get(sql, params));
  }
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    return this.outside(() => this.direct.run(sql, params));
  }
  exec(sql: string): Promise<void> {
    return this.outside(() => this.direct.exec(sql));
  }

  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    return this.lock.run(async () => {
      let open = true;
      const step = <R>(op: () => R): Promise<R> => {
        if (!open) return Promise.reject(new Error("transaction already finished"));
        try {
          return Promise.resolve(op());
        } catch (err) {
          return Promise.reject(mapSqliteError(err));
        }
      };
      const tx: SqlQueryable = {
        all: (sql, params) => step(() => this.direct.all(sql, params)),
        get: (sql, params) => step(() => this.direct.get(sql, params)),
        run: (sql, params) => step(() => this.direct.run(sql, params)),
        exec: (sql) => step(() => this.direct.exec(sql)),
      };
      try {
        // IMMEDIATE takes the write lock up front, so another process cannot
        // make this transaction fail half-way with SQLITE_BUSY on upgrade.
        this.db.exec("BEGIN IMMEDIATE");
      } catch (err) {
        throw mapSqliteError(err);
      }
      try {
        const result = await fn(tx);
        this.db.exec("COMMIT");
        return result;
      } catch (err) {
        try {
          if (this.db.inTransaction) this.db.exec("ROLLBACK");
        } catch {
          // The original error says more than a failed rollback would.
        }
        throw mapSqliteError(err);
      } finally {
        open = false;
      }
    });
  }

  async close(): Promise<void> {
    // Taking the lock waits for a running transaction to finish first.
    await this.lock.run(() => {
      if (this.db.open) this.db.close();
    });
  }
}

/**
 * Opens a SQLite database file (or ":memory:") as a SqlExecutor: WAL journal,
 * 5 s busy timeout, foreign keys on, and the chosen `synchronous` level.
 * Creates the file's parent directory if needed.
 */
export function openSqliteExecutor(path: string, opts: SqliteOptions = {}): SqlExecutor {
  const synchronous = opts.synchronous ?? "full";
  if (synchronous !== "full" && synchronous !== "normal") {
    throw new TesseraError("TESSERA_ERR_CONFIG_INVALID", { detail: `sqlite synchronous must be "full" or "normal", got ${String(synchronous)}` });
  }
  let db: Database.Database;
  try {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    db = new Database(path);
  } catch (err) {
    const mapped = mapSqliteError(err);
    if (mapped instanceof TesseraError) throw mapped;
    throw new TesseraError("TESSERA_ERR_STORE_UNAVAILABLE", { detail: `cannot open ${path}: ${err instanceof Error ? err.message : String(err)}`, cause: err });
  }
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("busy_timeout = 5000");
    db.pragma("foreign_keys = ON");
    db.pragma(`synchronous = ${synchronous.toUpperCase()}`);
  } catch (err) {
    db.close();
    throw mapSqliteError(err);
  }
  return new SqliteExecutor(db);
}
