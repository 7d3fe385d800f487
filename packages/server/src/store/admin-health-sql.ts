/**
 * The admin console's fleet-health aggregates (AdminQueries, migration 5),
 * shared by SQLite and PostgreSQL: expiries, issuance activity and failed
 * enrollments per UTC day, and the devices enrolled under one credential.
 * A day is the first ten characters of the stored ISO-8601 UTC text (rows.ts
 * `iso`), so both databases bucket identically, whatever their time zone.
 */
import { TesseraError } from "../errors.js";
import type { ActivityDay, DayCount, FailureCount } from "../authority/ports.js";
import { iso } from "./rows.js";
import type { SqlExecutor } from "./sql.js";

const DAY_MS = 86_400_000;

/** "YYYY-MM-DD" of `d` in UTC. */
function utcDay(d: Date): string {
  return iso(d).slice(0, 10);
}

/** Midnight UTC starting `d`'s day. */
function dayStart(d: Date): Date {
  return new Date(`${utcDay(d)}T00:00:00.000Z`);
}

/** Store.expiryPerDay: valid certificates by the UTC day of notAfter, in [from's day, + days). */
export async function expiryPerDay(db: SqlExecutor, from: Date, days: number): Promise<DayCount[]> {
  if (!Number.isSafeInteger(days) || days < 0) throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail: "days must be a non-negative integer" });
  if (days === 0) return [];
  const start = dayStart(from);
  const end = new Date(start.getTime() + days * DAY_MS);
  const rows = await db.all(
    `SELECT substr(not_after, 1, 10) AS day, COUNT(*) AS n FROM certificates
     WHERE status = 'valid' AND not_after >= ? AND not_after < ?
     GROUP BY substr(not_after, 1, 10) ORDER BY day`,
    [iso(start), iso(end)],
  );
  return rows.map((r) => ({ day: String(r.day), count: Number(r.n) }));
}

/**
 * Store.activityPerDay from `since`'s UTC day on. A certificate is a renewal
 * when its device holds an earlier one (issued before it, or at the same
 * instant with a smaller serial, so two certificates of one batch never both
 * count as first); the device_id+issued_at index answers that per row.
 */
export async function activityPerDay(db: SqlExecutor, since: Date): Promise<ActivityDay[]> {
  const start = iso(dayStart(since));
  const issued = await db.all(
    `SELECT substr(c.issued_at, 1, 10) AS day, COUNT(*) AS n,
       SUM(CASE WHEN c.device_id IS NOT NULL AND EXISTS (
         SELECT 1 FROM certificates p WHERE p.device_id = c.device_id
           AND (p.issued_at < c.issued_at OR (p.issued_at = c.issued_at AND p.serial < c.serial))
       ) THEN 1 ELSE 0 END) AS renewed
     FROM certificates c WHERE c.issued_at >= ?
     GROUP BY substr(c.issued_at, 1, 10)`,
    [start],
  );
  const revoked = await db.all(
    `SELECT substr(revoked_at, 1, 10) AS day, COUNT(*) AS n FROM certificates
     WHERE revoked_at >= ? GROUP BY substr(revoked_at, 1, 10)`,
    [start],
  );
  const days = new Map<string, ActivityDay>();
  const entry = (day: string): ActivityDay => {
    let e = days.get(day);
    if (!e) days.set(day, (e = { day, issued: 0, renewed: 0, revoked: 0 }));
    return e;
  };
  for (const r of issued) {
    const e = entry(String(r.day));
    e.renewed = Number(r.renewed);
    e.issued = Number(r.n) - e.renewed;
  }
  for (const r of revoked) entry(String(r.day)).revoked = Number(r.n);
  return [...days.values()].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
}

/** Store.recordFailure: one upsert, so concurrent failures (any replica) all count. */
export async function recordFailure(db: SqlExecutor, protocol: string, code: string, at: Date, count = 1): Promise<void> {
  await db.run(
    `INSERT INTO enrollment_failures (day, protocol, code, count) VALUES (?, ?, ?, ?)
     ON CONFLICT (day, protocol, code) DO UPDATE SET count = enrollment_failures.count + excluded.count`,
    [utcDay(at), protocol, code, count],
  );
}

/** Store.listFailures: counters from `since`'s UTC day on, by day, protocol, code. */
export async function listFailures(db: SqlExecutor, since: Date): Promise<FailureCount[]> {
  const rows = await db.all("SELECT day, protocol, code, count FROM enrollment_failures WHERE day >= ? ORDER BY day, protocol, code", [utcDay(since)]);
  return rows.map((r) => ({ day: String(r.day), protocol: String(r.protocol), code: String(r.code), count: Number(r.count) }));
}

/**
 * Store.devicesIssuedBy, sorted. The device comes from the certificate the
 * event names (target = serial), not from the event's JSON detail, which SQL
 * cannot index on both databases alike.
 */
export async function devicesIssuedBy(db: SqlExecutor, actor: string): Promise<string[]> {
  const rows = await db.all(
    `SELECT DISTINCT c.device_id AS device_id FROM audit_events a JOIN certificates c ON c.serial = a.target
     WHERE a.actor = ? AND a.action = 'certificate.issued' AND c.device_id IS NOT NULL ORDER BY c.device_id`,
    [actor],
  );
  return rows.map((r) => String(r.device_id));
}
