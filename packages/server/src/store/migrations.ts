/**
 * Numbered schema migrations shared by SQLite and PostgreSQL, and the runner
 * that applies them. Conventions (both databases): times are TEXT holding
 * `Date.toISOString()` (UTC, milliseconds, fixed width, so text order is time
 * order); statuses are TEXT words; JSON is TEXT; no booleans. Status values
 * are not CHECK-constrained on purpose: adding a word later would force a
 * table rebuild on SQLite, and the TypeScript types already close the sets.
 */
import { TesseraError } from "../errors.js";
import type { Dialect, SqlExecutor } from "./sql.js";

/** One numbered migration; `sql` returns a script for the given dialect. */
export interface Migration {
  version: number;
  name: string;
  sql(dialect: Dialect): string;
}

/** Column types that differ between the dialects. */
function types(d: Dialect): { text: string; blob: string; serialPk: string } {
  return d === "sqlite"
    ? { text: "TEXT", blob: "BLOB", serialPk: "INTEGER PRIMARY KEY AUTOINCREMENT" }
    : // "C" collation makes PostgreSQL compare text bytewise like SQLite's BINARY,
      // so serial and time ordering is identical on both backends.
      { text: 'TEXT COLLATE "C"', blob: "BYTEA", serialPk: "BIGSERIAL PRIMARY KEY" };
}

/** Every migration, in order. Never edit a released one: append a new one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial schema",
    sql(d) {
      const { text: T, blob, serialPk } = types(d);
      return `
CREATE TABLE devices (
  id ${T} PRIMARY KEY,
  fingerprint ${T},
  status ${T} NOT NULL,
  protocol ${T} NOT NULL,
  attributes ${T} NOT NULL,
  created_at ${T} NOT NULL,
  updated_at ${T} NOT NULL,
  last_seen_at ${T},
  last_ip ${T},
  current_serial ${T}
);
CREATE UNIQUE INDEX devices_fingerprint ON devices (fingerprint);
CREATE INDEX devices_status_created ON devices (status, created_at);

CREATE TABLE certificates (
  serial ${T} PRIMARY KEY,
  device_id ${T} REFERENCES devices (id),
  profile ${T} NOT NULL,
  subject ${T} NOT NULL,
  sans ${T} NOT NULL,
  key_fingerprint ${T} NOT NULL,
  key_type ${T} NOT NULL,
  not_before ${T} NOT NULL,
  not_after ${T} NOT NULL,
  status ${T} NOT NULL,
  revoked_at ${T},
  revocation_reason ${T},
  issued_at ${T} NOT NULL,
  protocol ${T} NOT NULL,
  request_id ${T},
  fingerprint ${T} NOT NULL,
  der ${blob} NOT NULL
);
CREATE INDEX certificates_device_issued ON certificates (device_id, issued_at);
CREATE INDEX certificates_status_not_after ON certificates (status, not_after);
CREATE INDEX certificates_not_after ON certificates (not_after);
CREATE INDEX certificates_key_fingerprint ON certificates (key_fingerprint);
CREATE INDEX certificates_issued ON certificates (issued_at, serial);

CREATE TABLE enrollment_requests (
  id ${T} PRIMARY KEY,
  protocol ${T} NOT NULL,
  device_id ${T},
  csr_sha256 ${T} NOT NULL UNIQUE,
  csr ${blob} NOT NULL,
  subject ${T} NOT NULL,
  profile ${T} NOT NULL,
  status ${T} NOT NULL,
  created_at ${T} NOT NULL,
  decided_at ${T},
  decided_by ${T},
  reason ${T},
  certificate_serial ${T},
  attributes ${T} NOT NULL
);
CREATE INDEX enrollment_requests_status_created ON enrollment_requests (status, created_at);

CREATE TABLE credentials (
  id ${T} PRIMARY KEY,
  kind ${T} NOT NULL,
  name ${T} NOT NULL,
  scope ${T} NOT NULL,
  hash ${T} NOT NULL,
  expires_at ${T},
  max_uses INTEGER,
  use_count INTEGER NOT NULL DEFAULT 0,
  revoked_at ${T},
  created_at ${T} NOT NULL,
  UNIQUE (kind, name)
);
CREATE INDEX credentials_kind_hash ON credentials (kind, hash);

CREATE TABLE audit_events (
  id ${serialPk},
  at ${T} NOT NULL,
  actor ${T} NOT NULL,
  action ${T} NOT NULL,
  target ${T} NOT NULL,
  detail ${T} NOT NULL
);
CREATE INDEX audit_events_action_at ON audit_events (action, at);
CREATE INDEX audit_events_target ON audit_events (target);

CREATE TABLE settings (
  key ${T} PRIMARY KEY,
  value ${T} NOT NULL
);
`;
    },
  },
  {
    version: 2,
    name: "outbox",
    sql(d) {
      const { text: T } = types(d);
      // state: "pending" | "delivered" | "dead". The partial index serves the
      // claim query (due pending rows) and stays small as delivered rows pile up.
      return `
CREATE TABLE outbox (
  id ${T} PRIMARY KEY,
  topic ${T} NOT NULL,
  payload ${T} NOT NULL,
  created_at ${T} NOT NULL,
  state ${T} NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at ${T} NOT NULL,
  locked_until ${T},
  delivered_at ${T},
  last_error ${T}
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_created ON outbox (created_at, id);
CREATE INDEX outbox_state_created ON outbox (state, created_at);
`;
    },
  },
  {
    version: 3,
    name: "outbox channels and ordering keys",
    sql(d) {
      const { text: T } = types(d);
      // channel: "webhook" | "bus" (OutboxChannel); rows before this are webhook
      // deliveries. ordering_key: per key only the oldest pending row of its
      // channel is claimable (outbox-sql.ts). seq: insertion order, the
      // tie-break between rows created in the same millisecond; PostgreSQL
      // numbers rows from a sequence, SQLite with a trigger (MAX + 1 is safe
      // with its single writer; rowid is not, VACUUM may renumber it).
      const seq =
        d === "sqlite"
          ? `ALTER TABLE outbox ADD COLUMN seq INTEGER;
UPDATE outbox SET seq = rowid;
CREATE INDEX outbox_seq ON outbox (seq);
CREATE TRIGGER outbox_assign_seq AFTER INSERT ON outbox WHEN NEW.seq IS NULL
BEGIN
  UPDATE outbox SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox) WHERE id = NEW.id;
END;`
          : "ALTER TABLE outbox ADD COLUMN seq BIGSERIAL;";
      return `
ALTER TABLE outbox ADD COLUMN channel ${T} NOT NULL DEFAULT 'webhook';
ALTER TABLE outbox ADD COLUMN ordering_key ${T};
${seq}
DROP INDEX outbox_due;
CREATE INDEX outbox_channel_due ON outbox (channel, next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_key_pending ON outbox (channel, ordering_key, created_at, seq) WHERE state = 'pending' AND ordering_key IS NOT NULL;
`;
    },
  },
  {
    version: 4,
    name: "mainflux issued keys and thing keys",
    sql(d) {
      const { text: T, blob } = types(d);
      // The Mainflux-compatible API (docs/protocols/mainflux.md). issued_keys:
      // one row per certificate it issued with a server-generated key, the key
      // AES-256-GCM encrypted; the device's one download sets downloaded_at and
      // nulls encrypted_key in one compare-and-set UPDATE (revocation nulls it
      // too). thing_keys: a thing's key, encrypted, because certificates carry
      // it as their CN; lookups go by the HMAC in the credentials table.
      return `
CREATE TABLE issued_keys (
  serial ${T} PRIMARY KEY,
  thing_id ${T} NOT NULL,
  encrypted_key ${blob},
  created_at ${T} NOT NULL,
  downloaded_at ${T}
);
CREATE INDEX issued_keys_thing ON issued_keys (thing_id, created_at);

CREATE TABLE thing_keys (
  thing_id ${T} PRIMARY KEY,
  encrypted_key ${blob} NOT NULL,
  created_at ${T} NOT NULL
);
`;
    },
  },
  {
    version: 5,
    name: "admin console",
    sql(d) {
      const { text: T } = types(d);
      // The admin console (docs/admin-api.md, admin-sql.ts). admin_sessions
      // keeps only the SHA-256 of a session id. jobs.status: "running" |
      // "succeeded" | "failed"; params and result are JSON. enrollment_failures
      // is one counter per UTC day ('YYYY-MM-DD'), protocol and error code,
      // bumped by an upsert, so failures cost no row each.
      //
      // Indexes for the console's queries at 100k devices and millions of
      // certificates and audit events (the ones already there cover the
      // rest: certificates by device, issued_at, not_after, status+not_after,
      // key fingerprint; audit by action+at and target):
      // - certificates_fingerprint: q = a certificate's SHA-256.
      // - certificates_revoked_at: revocations per day; partial, as most rows
      //   are never revoked (both databases use it for `revoked_at >= ?`).
      // - certificates_subject: sort by subject, one page at a time.
      // - audit_events_actor: actor filters (exact and prefix ranges), newest
      //   first, and the certificates issued under a bootstrap credential.
      // - audit_events_at: since/until windows.
      return `
CREATE TABLE admin_sessions (
  id_hash ${T} PRIMARY KEY,
  token_id ${T} NOT NULL,
  token_name ${T} NOT NULL,
  role ${T} NOT NULL,
  csrf_token ${T} NOT NULL,
  created_at ${T} NOT NULL,
  expires_at ${T} NOT NULL
);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);

CREATE TABLE jobs (
  id ${T} PRIMARY KEY,
  kind ${T} NOT NULL,
  params ${T} NOT NULL,
  status ${T} NOT NULL,
  done INTEGER NOT NULL DEFAULT 0,
  total INTEGER NOT NULL DEFAULT 0,
  created_by ${T} NOT NULL,
  created_at ${T} NOT NULL,
  updated_at ${T} NOT NULL,
  finished_at ${T},
  result ${T},
  error ${T}
);
CREATE INDEX jobs_created ON jobs (created_at, id);

CREATE TABLE enrollment_failures (
  day ${T} NOT NULL,
  protocol ${T} NOT NULL,
  code ${T} NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (day, protocol, code)
);

CREATE INDEX certificates_fingerprint ON certificates (fingerprint);
CREATE INDEX certificates_revoked_at ON certificates (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX certificates_subject ON certificates (subject, serial);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_at ON audit_events (at);
`;
    },
  },
  {
    version: 6,
    name: "CRL index",
    sql() {
      // The CRL reads every revoked, unexpired certificate in serial order,
      // a page at a time (store-sql.ts listRevokedPage). This partial index
      // holds only revoked rows and every column that read needs, so each
      // page is one range of the index: no table lookups, no sort of a
      // million rows (measured in docs/benchmarks.md).
      return `
CREATE INDEX certificates_crl ON certificates (serial, not_after, revoked_at, issued_at, revocation_reason) WHERE status = 'revoked';
`;
    },
  },
  {
    version: 7,
    name: "no hash indexes on the issuance path",
    sql() {
      // The certificate and key SHA-256 indexes served only the console's
      // exact-hash search, yet every issuance inserted into both at a random
      // place: on a store of millions of certificates each certificate of a
      // group commit dirtied a leaf page of each, and issuance fell to 0.78×
      // the empty store's rate (3 M rows; 1.06× without these two; measured
      // in docs/benchmarks.md, store scale). The search still works, by
      // scanning, which an operator's rare lookup can afford.
      return `
DROP INDEX certificates_fingerprint;
DROP INDEX certificates_key_fingerprint;
`;
    },
  },
];

/** Highest migration number this build knows. */
export const LATEST_SCHEMA_VERSION: number = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at TEXT NOT NULL
)`;

/**
 * Creates schema_migrations if absent. Two PostgreSQL sessions racing on
 * CREATE TABLE IF NOT EXISTS can both miss it and one then fails on the
 * catalog's unique index; the table exists by then, so one retry settles it.
 */
async function ensureMigrationsTable(db: SqlExecutor): Promise<void> {
  try {
    await db.exec(CREATE_MIGRATIONS_TABLE);
  } catch {
    await db.exec(CREATE_MIGRATIONS_TABLE);
  }
}

/** Reads the highest applied migration number (0 on an empty database). */
export async function readSchemaVersion(db: SqlExecutor): Promise<number> {
  await ensureMigrationsTable(db);
  const row = await db.get("SELECT MAX(version) AS v FROM schema_migrations");
  return row?.v == null ? 0 : Number(row.v);
}

/**
 * Applies every pending migration in one transaction and returns how many ran.
 * Throws TESSERA_ERR_STORE_MIGRATION if one fails (nothing is applied then) or
 * if the database is newer than this build.
 */
export async function runMigrations(db: SqlExecutor): Promise<number> {
  try {
    await ensureMigrationsTable(db);
  } catch (err) {
    throw migrationError("cannot create schema_migrations", err);
  }
  let current = "";
  try {
    return await db.transaction(async (tx) => {
      // Two servers starting together must not both apply a migration. SQLite's
      // BEGIN IMMEDIATE already excludes other writers; PostgreSQL needs a lock.
      if (db.dialect === "postgres") await tx.exec("LOCK TABLE schema_migrations IN EXCLUSIVE MODE");
      const rows = await tx.all("SELECT version FROM schema_migrations");
      const applied = new Set(rows.map((r) => Number(r.version)));
      const newest = Math.max(0, ...applied);
      if (newest > LATEST_SCHEMA_VERSION) {
        throw new TesseraError("TESSERA_ERR_STORE_MIGRATION", {
          detail: `database schema version ${newest} is newer than this build supports (${LATEST_SCHEMA_VERSION})`,
        });
      }
      let ran = 0;
      for (const m of [...MIGRATIONS].sort((a, b) => a.version - b.version)) {
        if (applied.has(m.version)) continue;
        current = `${m.version} (${m.name})`;
        await tx.exec(m.sql(db.dialect));
        await tx.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", [
          m.version,
          m.name,
          new Date().toISOString(),
        ]);
        ran++;
      }
      return ran;
    });
  } catch (err) {
    if (err instanceof TesseraError && err.code === "TESSERA_ERR_STORE_MIGRATION") throw err;
    if (err instanceof TesseraError && err.code === "TESSERA_ERR_STORE_UNAVAILABLE") throw err;
    throw migrationError(current ? `migration ${current} failed` : "migration failed", err);
  }
}

function migrationError(what: string, cause: unknown): TesseraError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new TesseraError("TESSERA_ERR_STORE_MIGRATION", { detail: `${what}: ${why}`, cause });
}
