/**
 * The outbox's SQL (webhook deliveries, docs/webhooks.md), shared by SQLite
 * and PostgreSQL: enqueue, claim under a lease by compare-and-set, complete,
 * fail (retry later or give up), list. store-sql.ts delegates here.
 */
import { TesseraError } from "../errors.js";
import type { OutboxMessage, OutboxRecord, OutboxState } from "../authority/ports.js";
import { iso, outboxInsert, paging, toOutbox } from "./rows.js";
import type { SqlExecutor, SqlValue } from "./sql.js";

/** Store.enqueueOutbox: the messages in one transaction. */
export async function enqueue(db: SqlExecutor, messages: readonly OutboxMessage[], at: Date): Promise<OutboxRecord[]> {
  if (messages.length === 0) return [];
  return db.transaction(async (tx) => {
    const stored: OutboxRecord[] = [];
    for (const m of messages) {
      const [sql, params] = outboxInsert(m, at);
      const row = await tx.get(`${sql} RETURNING *`, params);
      if (!row) throw new TesseraError("TESSERA_ERR_INTERNAL", { detail: "outbox insert returned no row" });
      stored.push(toOutbox(row));
    }
    return stored;
  });
}

/** Store.claimOutbox: due, unleased rows leased by compare-and-set. */
export async function claim(db: SqlExecutor, kind: "sqlite" | "postgres", now: Date, leaseUntil: Date, limit: number): Promise<OutboxRecord[]> {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail: "limit must be a non-negative integer" });
  if (limit === 0) return [];
  const when = iso(now);
  // The outer WHERE repeats the claimability test: PostgreSQL re-checks it on
  // the newest row version after any row-lock wait, so a row another claim
  // took in the meantime drops out (compare-and-set). SKIP LOCKED lets
  // concurrent claimers pass over each other's rows instead of queueing;
  // SQLite has a single writer and needs neither. The candidates are a
  // MATERIALIZED CTE because PostgreSQL may plan `id IN (subquery)` as a
  // nested loop that re-runs the LIMIT subquery per row and claims more
  // than `limit` rows.
  const skipLocked = kind === "postgres" ? " FOR UPDATE SKIP LOCKED" : "";
  const claimable = "state = 'pending' AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until <= ?)";
  const rows = await db.all(
    `WITH due AS MATERIALIZED (
       SELECT id FROM outbox WHERE ${claimable} ORDER BY next_attempt_at, created_at, id LIMIT ?${skipLocked}
     )
     UPDATE outbox SET locked_until = ?, attempts = attempts + 1
     WHERE id IN (SELECT id FROM due) AND ${claimable}
     RETURNING *`,
    [when, when, limit, iso(leaseUntil), when, when],
  );
  // RETURNING order is unspecified on both databases.
  return rows.map(toOutbox).sort((a, b) => {
    const ka = outboxOrder(a);
    const kb = outboxOrder(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

/** Store.completeOutbox. */
export async function complete(db: SqlExecutor, id: string, at: Date): Promise<boolean> {
  const { changes } = await db.run("UPDATE outbox SET state = 'delivered', delivered_at = ?, locked_until = NULL WHERE id = ? AND state = 'pending'", [iso(at), id]);
  return changes === 1;
}

/** Store.failOutbox: retry at nextAttemptAt, or dead when null. */
export async function fail(db: SqlExecutor, id: string, error: string, nextAttemptAt: Date | null): Promise<boolean> {
  const { changes } =
    nextAttemptAt === null
      ? await db.run("UPDATE outbox SET state = 'dead', last_error = ?, locked_until = NULL WHERE id = ? AND state = 'pending'", [error, id])
      : await db.run("UPDATE outbox SET last_error = ?, next_attempt_at = ?, locked_until = NULL WHERE id = ? AND state = 'pending'", [
          error,
          iso(nextAttemptAt),
          id,
        ]);
  return changes === 1;
}

/** Store.listOutbox: oldest first. */
export async function list(db: SqlExecutor, query: { state?: OutboxState; limit?: number }): Promise<OutboxRecord[]> {
  const params: SqlValue[] = [];
  let sql = "SELECT * FROM outbox";
  if (query.state !== undefined) {
    sql += " WHERE state = ?";
    params.push(query.state);
  }
  const rows = await db.all(`${sql} ORDER BY created_at, id${paging({ limit: query.limit }, params)}`, params);
  return rows.map(toOutbox);
}

/** Sort key giving the claim order (due time, then creation, then id). */
function outboxOrder(r: OutboxRecord): string {
  return `${r.nextAttemptAt.toISOString()} ${r.createdAt.toISOString()} ${r.id}`;
}
