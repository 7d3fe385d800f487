/**
 * Query plans and one-off PostgreSQL sessions for the scale sections: the
 * plans are printed next to the figures, to show that a statement of the
 * store is an index search and not a scan.
 */
import Database from "better-sqlite3";
import pg from "pg";

export const PG = process.env.TESSERA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Runs `fn` with a PostgreSQL client, in `schema` when given, and closes it. */
export async function withPostgres<T>(schema: string | undefined, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG, ...(schema ? { options: `-c search_path=${schema}` } : {}) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** SQLite's EXPLAIN QUERY PLAN of `sql` (with `?` parameters) on `file`, one detail line per step. */
export function sqlitePlan(file: string, sql: string, args: readonly unknown[]): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail);
  } finally {
    db.close();
  }
}

/** PostgreSQL's EXPLAIN (COSTS OFF) of `sql` (with `?` parameters) through `c`, one line per node. */
export async function postgresPlan(c: pg.Client, sql: string, args: readonly unknown[]): Promise<string[]> {
  let n = 0;
  const r = await c.query<{ "QUERY PLAN": string }>(`EXPLAIN (COSTS OFF) ${sql.replace(/\?/g, () => `$${++n}`)}`, [...args]);
  return r.rows.map((x) => x["QUERY PLAN"].trim().replace(/^->\s*/, ""));
}
