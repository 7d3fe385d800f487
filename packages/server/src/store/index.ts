/**
 * Store factory: picks the adapter from the database URL.
 */
import { isAbsolute } from "node:path";
import type { Store } from "../authority/ports.js";
import { TesseraError } from "../errors.js";
import { openPostgresExecutor } from "./postgres.js";
import { openSqliteExecutor } from "./sqlite.js";
import { SqlStore } from "./store-sql.js";

export { LATEST_SCHEMA_VERSION } from "./migrations.js";
export { SqlStore } from "./store-sql.js";

/** Options for openStore. */
export interface OpenStoreOptions {
  /** SQLite `synchronous` pragma: "full" (default) or "normal". */
  synchronous?: "full" | "normal";
  /** PostgreSQL schema (search_path), created if absent; overrides `?schema=` in the URL. */
  schema?: string;
}

/**
 * Opens the store named by `url` and checks it answers; does not migrate (call
 * `migrate()`). Accepts `sqlite:/abs/path.db`, `sqlite::memory:`,
 * `postgres://…` and `postgresql://…` (optionally with `?schema=name`).
 * Throws TESSERA_ERR_CONFIG_INVALID for an unusable URL and
 * TESSERA_ERR_STORE_UNAVAILABLE when the database cannot be reached.
 */
export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  let store: Store;
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length);
    if (path !== ":memory:" && !isAbsolute(path)) {
      throw new TesseraError("TESSERA_ERR_CONFIG_INVALID", { detail: `sqlite URL needs an absolute path: ${url}` });
    }
    store = new SqlStore(openSqliteExecutor(path, { synchronous: opts.synchronous }));
  } else if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    const { connection, schema } = splitSchema(url);
    store = new SqlStore(await openPostgresExecutor(connection, { schema: opts.schema ?? schema }));
  } else {
    // The URL may hold a password: name only its scheme.
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? "(none)";
    throw new TesseraError("TESSERA_ERR_CONFIG_INVALID", { detail: `unsupported database URL scheme ${scheme}` });
  }
  try {
    await store.ping();
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return store;
}

/** Takes `schema` out of a PostgreSQL URL's query so pg does not see an unknown parameter. */
function splitSchema(url: string): { connection: string; schema: string | undefined } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TesseraError("TESSERA_ERR_CONFIG_INVALID", { detail: "malformed PostgreSQL URL" });
  }
  const schema = parsed.searchParams.get("schema") ?? undefined;
  if (schema === undefined) return { connection: url, schema };
  parsed.searchParams.delete("schema");
  return { connection: parsed.toString(), schema };
}
