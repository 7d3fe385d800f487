/**
 * The admin console's own state (AdminQueries, migration 5), shared by SQLite
 * and PostgreSQL: signed-in sessions (only the SHA-256 of a session id is
 * stored) and long-running jobs with their progress. Finishing a job is a
 * compare-and-set, so of two replicas racing to finish one, one wins.
 */
import { TesseraError } from "../errors.js";
import type { AdminSessionRecord, JobRecord } from "../authority/ports.js";
import { iso, json, paging } from "./rows.js";
import type { Row, SqlExecutor, SqlValue } from "./sql.js";

function malformed(detail: string): TesseraError {
  return new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail });
}

/** A progress count; the columns are INTEGER, which PostgreSQL caps at 2^31 − 1 and SQLite would fill with any number. */
function units(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0 || n > 2_147_483_647) throw malformed(`job ${what} must be an integer from 0 to 2147483647`);
  return n;
}

function toSession(row: Row): AdminSessionRecord {
  return {
    idHash: String(row.id_hash),
    tokenId: String(row.token_id),
    tokenName: String(row.token_name),
    role: String(row.role),
    csrfToken: String(row.csrf_token),
    createdAt: new Date(String(row.created_at)),
    expiresAt: new Date(String(row.expires_at)),
  };
}

/** Store.createAdminSession. */
export async function createAdminSession(db: SqlExecutor, s: AdminSessionRecord): Promise<void> {
  await db.run(
    "INSERT INTO admin_sessions (id_hash, token_id, token_name, role, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    [s.idHash, s.tokenId, s.tokenName, s.role, s.csrfToken, iso(s.createdAt), iso(s.expiresAt)],
  );
}

/** Store.getAdminSession: expired at `at` (expiresAt <= at) reads as absent. */
export async function getAdminSession(db: SqlExecutor, idHash: string, at: Date): Promise<AdminSessionRecord | undefined> {
  const row = await db.get("SELECT * FROM admin_sessions WHERE id_hash = ? AND expires_at > ?", [idHash, iso(at)]);
  return row && toSession(row);
}

/** Store.deleteAdminSession. */
export async function deleteAdminSession(db: SqlExecutor, idHash: string): Promise<boolean> {
  const { changes } = await db.run("DELETE FROM admin_sessions WHERE id_hash = ?", [idHash]);
  return changes === 1;
}

/** Store.pruneAdminSessions. */
export async function pruneAdminSessions(db: SqlExecutor, at: Date): Promise<number> {
  const { changes } = await db.run("DELETE FROM admin_sessions WHERE expires_at <= ?", [iso(at)]);
  return changes;
}

function toJob(row: Row): JobRecord {
  return {
    id: String(row.id),
    kind: String(row.kind),
    params: JSON.parse(String(row.params)) as Record<string, unknown>,
    status: String(row.status) as JobRecord["status"],
    done: Number(row.done),
    total: Number(row.total),
    createdBy: String(row.created_by),
    createdAt: new Date(String(row.created_at)),
    updatedAt: new Date(String(row.updated_at)),
    finishedAt: row.finished_at == null ? null : new Date(String(row.finished_at)),
    result: row.result == null ? null : (JSON.parse(String(row.result)) as Record<string, unknown>),
    error: row.error == null ? null : String(row.error),
  };
}

/** Store.createJob. */
export async function createJob(db: SqlExecutor, j: JobRecord): Promise<void> {
  await db.run(
    `INSERT INTO jobs (id, kind, params, status, done, total, created_by, created_at, updated_at, finished_at, result, error)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      j.id,
      j.kind,
      json(j.params),
      j.status,
      units(j.done, "done"),
      units(j.total, "total"),
      j.createdBy,
      iso(j.createdAt),
      iso(j.updatedAt),
      j.finishedAt === null ? null : iso(j.finishedAt),
      j.result === null ? null : json(j.result),
      j.error,
    ],
  );
}

/** Store.getJob. */
export async function getJob(db: SqlExecutor, id: string): Promise<JobRecord | undefined> {
  const row = await db.get("SELECT * FROM jobs WHERE id = ?", [id]);
  return row && toJob(row);
}

/** Store.listJobs: newest first (createdAt, then id, descending); all when `limit` is omitted. */
export async function listJobs(db: SqlExecutor, limit?: number): Promise<JobRecord[]> {
  const params: SqlValue[] = [];
  const rows = await db.all(`SELECT * FROM jobs ORDER BY created_at DESC, id DESC${paging({ limit }, params)}`, params);
  return rows.map(toJob);
}

/** Store.updateJobProgress: only while the job runs, so a late update cannot touch a finished job. */
export async function updateJobProgress(db: SqlExecutor, id: string, done: number, total: number, at: Date): Promise<void> {
  await db.run("UPDATE jobs SET done = ?, total = ?, updated_at = ? WHERE id = ? AND status = 'running'", [units(done, "done"), units(total, "total"), iso(at), id]);
}

/** Store.finishJob: compare-and-set on status = 'running'. */
export async function finishJob(
  db: SqlExecutor,
  id: string,
  status: "succeeded" | "failed",
  at: Date,
  result: Record<string, unknown> | null,
  error: string | null,
): Promise<boolean> {
  if (status !== "succeeded" && status !== "failed") throw malformed(`a job finishes as "succeeded" or "failed", not ${JSON.stringify(status)}`);
  const when = iso(at);
  const { changes } = await db.run(
    "UPDATE jobs SET status = ?, finished_at = ?, updated_at = ?, result = ?, error = ? WHERE id = ? AND status = 'running'",
    [status, when, when, result === null ? null : json(result), error, id],
  );
  return changes === 1;
}
