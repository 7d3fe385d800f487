/**
 * SqlExecutor on a pg.Pool. Statements outside a transaction take any pooled
 * connection; a transaction pins one connection from BEGIN to COMMIT/ROLLBACK.
 */
import pg from "pg";
import { TesseraError } from "../errors.js";
import { toNumberedPlaceholders, type Row, type SqlExecutor, type SqlQueryable, type SqlValue } from "./sql.js";

/** Options for the PostgreSQL executor. */
export interface PostgresOptions {
  /** Schema to use (search_path); created if absent. Lowercase letters, digits and "_" only. */
  schema?: string;
  /** Pool size (default 10). */
  max?: number;
}

const INT8_OID = 20;

/**
 * BIGINT (COUNT(*), BIGSERIAL ids) arrives as text by default; a number is what
 * callers expect, and a bigint keeps exactness if it ever outgrows 2^53.
 */
function parseInt8(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary" ? parseInt8 : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
};

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EPIPE", "ECONNABORTED"]);
const NETWORK_MESSAGES = /connection terminated|timeout exceeded when trying to connect|not queryable|cannot use a pool after calling end|client was closed/i;

/** Maps a pg error to a TesseraError where it has a store meaning; other errors pass through. */
export function mapPgError(err: unknown): unknown {
  if (err instanceof TesseraError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  const detail = err.message;
  if (typeof code === "string") {
    // 23505 unique, 23503 foreign key, 40001 serialization failure, 40P01 deadlock.
    if (code === "23505" || code === "23503" || code === "40001" || code === "40P01") {
      return new TesseraError("TESSERA_ERR_STORE_CONFLICT", { detail, cause: err });
    }
    // Class 08 connection, 57P0x shutdown, 53xxx resources, 28xxx auth, 3D000 no such database.
    if (NETWORK_CODES.has(code) || /^(08|57P0|53|28)/.test(code) || code === "3D000") {
      return new TesseraError("TESSERA_ERR_STORE_UNAVAILABLE", { detail, cause: err });
    }
  }
  if (err instanceof AggregateError || NETWORK_MESSAGES.test(detail)) {
    return new TesseraError("TESSERA_ERR_STORE_UNAVAILABLE", { detail: detail || "connection failed", cause: err });
  }
  return err;
}

/** Converts and caches `?` SQL as `$n` SQL. */
const numbered = new Map<string, string>();
function pgSql(sql: string): string {
  let out = numbered.get(sql);
  if (out === undefined) {
    if (numbered.size >= 1000) numbered.clear();
    out = toNumberedPlaceholders(sql);
    numbered.set(sql, out);
  }
  return out;
}

/** The pg client (or pool) surface the executor uses. */
type Queryer = Pick<pg.Pool | pg.PoolClient, "query">;

function queryable(target: Queryer): SqlQueryable {
  const query = async (sql: string, params: readonly SqlValue[] = []): Promise<pg.QueryResult<Row>> => {
    try {
      return await target.query<Row>(pgSql(sql), params as unknown[]);
    } catch (err) {
      throw mapPgError(err);
    }
  };
  return {
    all: async (sql, params) => (await query(sql, params)).rows,
    get: async (sql, params) => (await query(sql, params)).rows[0],
    run: async (sql, params) => ({ changes: (await query(sql, params)).rowCount ?? 0 }),
    exec: async (sql) => {
      try {
        // No parameters: pg uses the simple protocol, which accepts several statements.
        await target.query(sql);
      } catch (err) {
        throw mapPgError(err);
      }
    },
  };
}

/** SqlExecutor over a pg.Pool. */
class PostgresExecutor implements SqlExecutor {
  readonly dialect = "postgres" as const;
  private readonly pooled: SqlQueryable;

  constructor(private readonly pool: pg.Pool) {
    this.pooled = queryable(pool);
  }

  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]> {
    return this.pooled.all(sql, params);
  }
  get(sql: string, params?: readonly SqlValue[]): Promise<Row | undefined> {
    return this.pooled.get(sql, params);
  }
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    return this.pooled.run(sql, params);
  }
  exec(sql: string): Promise<void> {
    return this.pooled.exec(sql);
  }

  async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw mapPgError(err);
    }
    let broken = false;
    try {
      const tx = queryable(client);
      await tx.exec("BEGIN");
      try {
        const result = await fn(tx);
        await tx.exec("COMMIT");
        return result;
      } catch (err) {
        try {
          await client.query("ROLLBACK");
        } catch {
          // A connection that cannot roll back must not go back to the pool.
          broken = true;
        }
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

// Lowercase only: the search_path startup option folds unquoted names to lowercase,
// so a mixed-case name would select a different schema than the one created.
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Opens a pg.Pool for `url` as a SqlExecutor. With `schema`, creates the
 * schema if absent and makes it every connection's search_path. Throws
 * TESSERA_ERR_STORE_UNAVAILABLE when the server cannot be reached.
 */
export async function openPostgresExecutor(url: string, opts: PostgresOptions = {}): Promise<SqlExecutor> {
  const { schema } = opts;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new TesseraError("TESSERA_ERR_CONFIG_INVALID", { detail: `invalid PostgreSQL schema name ${JSON.stringify(schema)}` });
  }
  const base: pg.PoolConfig = { connectionString: url, max: opts.max ?? 10, types: TYPES, connectionTimeoutMillis: 10_000 };
  if (schema !== undefined) {
    const setup = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
    try {
      await setup.connect();
      await setup.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    } catch (err) {
      // Two processes creating the same schema at once: the loser sees a duplicate; that is fine.
      const code = (err as { code?: unknown }).code;
      if (code !== "42P06" && code !== "23505") throw mapPgError(err);
    } finally {
      await setup.end().catch(() => undefined);
    }
    // A startup parameter applies to every pooled connection without an extra round trip.
    base.options = `-c search_path=${schema}`;
  }
  const pool = new pg.Pool(base);
  // An idle client losing its connection emits here; without a listener the process would crash.
  pool.on("error", () => undefined);
  return new PostgresExecutor(pool);
}
