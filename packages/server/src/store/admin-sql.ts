/**
 * The admin console's searches (AdminQueries, migration 5,
 * docs/admin-api.md), shared by SQLite and PostgreSQL: devices, certificates,
 * enrollment requests and audit events, filtered, sorted and paged in the
 * database, with the total count. Sort columns come from fixed maps, never
 * from the caller's text. admin-health-sql.ts holds the fleet-health
 * aggregates, admin-state-sql.ts the console's sessions and jobs;
 * store-sql.ts delegates to all three.
 */
import { TesseraError } from "../errors.js";
import type {
  AuditRecord,
  AuditSearch,
  CertificateSearch,
  CertificateSort,
  CertificateStatus,
  CertificateSummary,
  DeviceSearch,
  DeviceSort,
  DeviceSummary,
  EnrollmentRequestRecord,
  Page,
  RequestStatus,
} from "../authority/ports.js";
import { CERTIFICATE_SUMMARY_COLUMNS, iso, paging, toAudit, toCertificateSummary, toDevice, toRequest } from "./rows.js";
import { Conditions, type Row, type SqlExecutor, type SqlValue } from "./sql.js";

function malformed(detail: string): TesseraError {
  return new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { detail });
}

/** A serial as typed (colons, "0x", upper case, leading zeros) in the stored form, or undefined if it is not hex. */
function serialForm(q: string): string | undefined {
  let s = q.toLowerCase().replace(/:/g, "");
  if (s.startsWith("0x")) s = s.slice(2);
  if (!/^[0-9a-f]+$/.test(s)) return undefined;
  return s.replace(/^0+(?=.)/, "");
}

/** A SHA-256 as typed (colons, upper case) in the stored lowercase hex, or undefined. */
function sha256Form(q: string): string | undefined {
  const s = q.toLowerCase().replace(/:/g, "");
  return /^[0-9a-f]{64}$/.test(s) ? s : undefined;
}

/**
 * LIKE pattern for "contains `q`", case-insensitive the way both databases
 * lower the column: SQLite's LOWER and PostgreSQL's under the "C" collation
 * change ASCII letters only, so the pattern is lowered the same way (not with
 * toLowerCase, which would also fold "Ü" and then never match).
 */
function containsPattern(q: string): string {
  const lowered = q.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return `%${lowered.replace(/[!%_]/g, (c) => `!${c}`)}%`;
}

/** The condition for a subject substring; `col` is a trusted column name. */
function subjectContains(col: string, q: string, params: SqlValue[]): string {
  params.push(containsPattern(q));
  return `LOWER(${col}) LIKE ? ESCAPE '!'`;
}

/** Validates a sort key against its map (own keys only: "constructor" is no column). */
function pick<K extends string, V>(map: Record<K, V>, key: K | undefined, fallback: K, what: string): V {
  const k = key ?? fallback;
  if (!Object.hasOwn(map, k)) throw malformed(`unknown ${what} sort ${JSON.stringify(k)}`);
  return map[k];
}

function direction(order: "asc" | "desc" | undefined): "ASC" | "DESC" {
  if (order === undefined || order === "asc") return "ASC";
  if (order === "desc") return "DESC";
  throw malformed(`order must be "asc" or "desc", got ${JSON.stringify(order)}`);
}

/** A sort: its columns (primary first; then a secondary that an index already orders) and whether the primary may be NULL. */
interface SortSpec {
  cols: string[];
  nullable?: boolean;
}

/** ORDER BY clause: every column in one direction, NULLs last both ways, then the unique `tie` column. */
function orderBy(spec: SortSpec, dir: "ASC" | "DESC", tie: string): string {
  const [first, ...rest] = spec.cols;
  const parts = [`${first} ${dir}${spec.nullable ? " NULLS LAST" : ""}`, ...rest.map((c) => `${c} ${dir}`)];
  if (first !== tie) parts.push(`${tie} ${dir}`);
  return ` ORDER BY ${parts.join(", ")}`;
}

function whereClause(where: string[]): string {
  return where.length ? ` WHERE ${where.join(" AND ")}` : "";
}

async function count(db: SqlExecutor, sql: string, params: readonly SqlValue[]): Promise<number> {
  const row = await db.get(sql, params);
  return Number(row?.n ?? 0);
}

// Status sorts continue on the column their existing index orders next, so a
// page is read off the index instead of sorting the whole table.
const DEVICE_SORTS: Record<DeviceSort, SortSpec> = {
  id: { cols: ["d.id"] },
  status: { cols: ["d.status", "d.created_at"] },
  protocol: { cols: ["d.protocol"] },
  createdAt: { cols: ["d.created_at"] },
  lastSeenAt: { cols: ["d.last_seen_at"], nullable: true },
  notAfter: { cols: ["c.not_after"], nullable: true },
};

const DEVICE_COLUMNS = "d.*, c.subject AS cert_subject, c.not_after AS cert_not_after, c.status AS cert_status";
const CURRENT_CERT = "LEFT JOIN certificates c ON c.serial = d.current_serial";

/**
 * The certificate terms `q` can name exactly: its serial (indexed) and, for a
 * SHA-256, the certificate's or key's (a scan since migration 7). Pushes the
 * values onto `params`; none when `q` is neither form.
 */
function exactCertificateTerms(q: string, params: SqlValue[]): string[] {
  const terms: string[] = [];
  const serial = serialForm(q);
  if (serial !== undefined) {
    terms.push("serial = ?");
    params.push(serial);
  }
  const sha = sha256Form(q);
  if (sha !== undefined) {
    terms.push("fingerprint = ?", "key_fingerprint = ?");
    params.push(sha, sha);
  }
  return terms;
}

/** Device ids `q` names exactly (id, hardware fingerprint, or serial / SHA-256 of any of its certificates), as an IN condition. */
function exactDevices(q: string, params: SqlValue[]): string {
  const ids = ["SELECT id FROM devices WHERE id = ? OR fingerprint = ?"];
  params.push(q, q);
  const certTerms = exactCertificateTerms(q, params);
  if (certTerms.length) ids.push(`SELECT device_id FROM certificates WHERE device_id IS NOT NULL AND (${certTerms.join(" OR ")})`);
  return `d.id IN (${ids.join(" UNION ")})`;
}

function toDeviceSummary(row: Row): DeviceSummary {
  return {
    ...toDevice(row),
    subject: row.cert_subject == null ? null : String(row.cert_subject),
    notAfter: row.cert_not_after == null ? null : new Date(String(row.cert_not_after)),
    certificateStatus: row.cert_status == null ? null : (String(row.cert_status) as CertificateStatus),
  };
}

/**
 * Store.searchDevices. `q` is first tried as an identifier (whatever the
 * other filters); only when it names nothing is it a subject substring.
 */
export async function searchDevices(db: SqlExecutor, query: DeviceSearch): Promise<Page<DeviceSummary>> {
  const sort = pick(DEVICE_SORTS, query.sort, "createdAt", "device");
  const dir = direction(query.order);
  const where: string[] = [];
  const params: SqlValue[] = [];
  let needsCert = sort.cols.some((c) => c.startsWith("c."));
  const q = query.q?.trim();
  if (q) {
    const probe: SqlValue[] = [];
    const exact = await db.get(`SELECT 1 AS hit FROM devices d WHERE ${exactDevices(q, probe)} LIMIT 1`, probe);
    if (exact) where.push(exactDevices(q, params));
    else {
      where.push(subjectContains("c.subject", q, params));
      needsCert = true;
    }
  }
  const more = new Conditions(params).add("d.status = ?", query.status).add("d.protocol = ?", query.protocol);
  if (query.expiresBefore !== undefined) {
    more.add("c.not_after < ?", iso(query.expiresBefore));
    needsCert = true;
  }
  where.push(...more.parts);
  const filter = whereClause(where);
  const order = orderBy(sort, dir, "d.id");
  const total = await count(db, `SELECT COUNT(*) AS n FROM devices d${needsCert ? ` ${CURRENT_CERT}` : ""}${filter}`, params);
  const pageParams = [...params];
  const page = paging(query, pageParams);
  // When neither filter nor sort reads the certificate, pick the page from
  // devices alone and join only its rows: otherwise the planner may join the
  // whole certificates table before it can sort and cut.
  const sql = needsCert
    ? `SELECT ${DEVICE_COLUMNS} FROM devices d ${CURRENT_CERT}${filter}${order}${page}`
    : `SELECT ${DEVICE_COLUMNS} FROM (SELECT * FROM devices d${filter}${order}${page}) d ${CURRENT_CERT}${order}`;
  const rows = await db.all(sql, pageParams);
  return { items: rows.map(toDeviceSummary), total };
}

const CERTIFICATE_SORTS: Record<CertificateSort, SortSpec> = {
  issuedAt: { cols: ["issued_at"] },
  notAfter: { cols: ["not_after"] },
  serial: { cols: ["serial"] },
  subject: { cols: ["subject"] },
  status: { cols: ["status", "not_after"] },
};

/** Store.searchCertificates. `q` is first tried as an identifier (whatever the other filters), then as a subject substring. */
export async function searchCertificates(db: SqlExecutor, query: CertificateSearch): Promise<Page<CertificateSummary>> {
  const sort = pick(CERTIFICATE_SORTS, query.sort, "issuedAt", "certificate");
  const dir = direction(query.order);
  const where: string[] = [];
  const params: SqlValue[] = [];
  const q = query.q?.trim();
  if (q) {
    const exactParams: SqlValue[] = [q];
    const terms = ["device_id = ?", ...exactCertificateTerms(q, exactParams)];
    const exact = `(${terms.join(" OR ")})`;
    if (await db.get(`SELECT 1 AS hit FROM certificates WHERE ${exact} LIMIT 1`, exactParams)) {
      where.push(exact);
      params.push(...exactParams);
    } else where.push(subjectContains("subject", q, params));
  }
  const more = new Conditions(params)
    .add("status = ?", query.status)
    .add("device_id = ?", query.deviceId)
    .add("protocol = ?", query.protocol)
    .add("not_after >= ?", query.expiresAfter && iso(query.expiresAfter))
    .add("not_after < ?", query.expiresBefore && iso(query.expiresBefore));
  where.push(...more.parts);
  const filter = whereClause(where);
  const total = await count(db, `SELECT COUNT(*) AS n FROM certificates${filter}`, params);
  const rows = await db.all(`SELECT ${CERTIFICATE_SUMMARY_COLUMNS} FROM certificates${filter}${orderBy(sort, dir, "serial")}${paging(query, params)}`, params);
  return { items: rows.map(toCertificateSummary), total };
}

/** Store.searchRequests: oldest first (createdAt, then id). */
export async function searchRequests(
  db: SqlExecutor,
  query: { status?: RequestStatus; protocol?: string; limit?: number; offset?: number },
): Promise<Page<EnrollmentRequestRecord>> {
  const params: SqlValue[] = [];
  const filter = String(new Conditions(params).add("status = ?", query.status).add("protocol = ?", query.protocol));
  const total = await count(db, `SELECT COUNT(*) AS n FROM enrollment_requests${filter}`, params);
  const rows = await db.all(`SELECT * FROM enrollment_requests${filter} ORDER BY created_at, id${paging(query, params)}`, params);
  return { items: rows.map(toRequest), total };
}

/**
 * The least string above every string that starts with `prefix`, in the
 * bytewise UTF-8 order both databases use for these columns (PostgreSQL's
 * "C" collation, SQLite's BINARY): `prefix` with its last code point
 * incremented. Undefined when no such string exists (an empty prefix, or one
 * made of U+10FFFF only).
 */
function prefixUpperBound(prefix: string): string | undefined {
  const cps = Array.from(prefix, (c) => c.codePointAt(0) ?? 0);
  while (cps.length > 0) {
    const last = cps.pop() ?? 0;
    if (last >= 0x10ffff) continue;
    // Surrogate code points never reach the database as such; skip over them.
    cps.push(last + 1 >= 0xd800 && last + 1 <= 0xdfff ? 0xe000 : last + 1);
    return String.fromCodePoint(...cps);
  }
  return undefined;
}

/** Store.searchAudit: newest first; `since` inclusive, `until` exclusive; all matches when `limit` is omitted. */
export async function searchAudit(db: SqlExecutor, query: AuditSearch): Promise<AuditRecord[]> {
  const params: SqlValue[] = [];
  const where = new Conditions(params).add("action = ?", query.action);
  if (query.actor?.endsWith("*")) {
    // A range, not LIKE: it uses the (actor, id) index on both databases and
    // is case-sensitive on both (SQLite's LIKE ignores ASCII case).
    const prefix = query.actor.slice(0, -1);
    where.add("actor >= ?", prefix === "" ? undefined : prefix).add("actor < ?", prefixUpperBound(prefix));
  } else where.add("actor = ?", query.actor);
  if (query.beforeId !== undefined && !Number.isSafeInteger(query.beforeId)) throw malformed("beforeId must be an integer");
  where
    .add("target = ?", query.target)
    .add("at >= ?", query.since && iso(query.since))
    .add("at < ?", query.until && iso(query.until))
    .add("id < ?", query.beforeId);
  const rows = await db.all(`SELECT * FROM audit_events${where} ORDER BY id DESC${paging({ limit: query.limit }, params)}`, params);
  return rows.map(toAudit);
}
