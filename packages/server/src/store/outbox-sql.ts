/**
 * The outbox's SQL (webhook deliveries, docs/webhooks.md; bus events,
 * docs/events.md), shared by SQLite and PostgreSQL: enqueue, claim one
 * channel's rows under a lease by compare-and-set (per ordering key only the
 * oldest pending row), complete, fail (retry later or give up), list.
 * store-sql.ts delegates here.
 */
import { TesseraError } from "../errors.js";
import type { OutboxChannel, OutboxMessage, OutboxRecord, OutboxState } from "../authority/ports.js";
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

/** Store.claimOutbox: due, unleased rows of one channel leased by compare-and-set, per ordering key only the oldest pending one. */
export async function claim(
  db: SqlExecutor,
  kind: "sqlite" | "postgres",
  now: Date,
  leaseUntil: Date,
  limit: number,
  channel: OutboxChannel,
): Promise<OutboxRecord[]> {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail: "limit must be a non-negative integer" });
  if (channel !== "webhook" && channel !== "bus") throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail: `unknown outbox channel ${JSON.stringify(channel)}` });
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
  //
  // Ordering keys: a row is a candidate only if no older pending row of its
  // channel and key exists, leased, not yet due or locked by a concurrent
  // claim alike, so one claim takes at most one row per key and the next row
  // of a key becomes claimable only once the previous one is delivered (or
  // dead). That test reads the statement's snapshot; it holds under
  // concurrency because the row it waits for stays pending until a later
  // statement commits its outcome, and the claim of that row itself is the
  // compare-and-set above. It is not repeated in the outer WHERE (same
  // snapshot, same answer).
  const skipLocked = kind === "postgres" ? " FOR UPDATE SKIP LOCKED" : "";
  const claimable = "state = 'pending' AND channel = ? AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until <= ?)";
  const first = `(ordering_key IS NULL OR NOT EXISTS (
         SELECT 1 FROM outbox older
         WHERE older.state = 'pending' AND older.channel = outbox.channel AND older.ordering_key = outbox.ordering_key
           AND (older.created_at < outbox.created_at OR (older.created_at = outbox.created_at AND older.seq < outbox.seq))
       ))`;
  const rows = await db.all(
    `WITH due AS MATERIALIZED (
       SELECT id FROM outbox WHERE ${claimable} AND ${first}
       ORDER BY next_attempt_at, created_at, id LIMIT ?${skipLocked}
     )
     UPDATE outbox SET locked_until = ?, attempts = attempts + 1
     WHERE id IN (SELECT id FROM due) AND ${claimable}
     RETURNING *`,
    [channel, when, when, limit, iso(leaseUntil), channel, when, when],
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
export async function list(db: SqlExecutor, query: { state?: OutboxState; channel?: OutboxChannel; limit?: number }): Promise<OutboxRecord[]> {
  const params: SqlValue[] = [];
  const where: string[] = [];
  if (query.state !== undefined) {
    where.push("state = ?");
    params.push(query.state);
  }
  if (query.channel !== undefined) {
    where.push("channel = ?");
    params.push(query.channel);
  }
  let sql = "SELECT * FROM outbox";
  if (where.length > 0) sql += ` WHERE ${where.join(" AND ")}`;
  const rows = await db.all(`${sql} ORDER BY created_at, id${paging({ limit: query.limit }, params)}`, params);
  return rows.map(toOutbox);
}

/** Sort key giving the claim order (due time, then creation, then id). */
function outboxOrder(r: OutboxRecord): string {
  return `${r.nextAttemptAt.toISOString()} ${r.createdAt.toISOString()} ${r.id}`;
}
