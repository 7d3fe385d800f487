/**
 * `tessera import liteboot DIR`: moves a liteboot (Linaro lite_bootstrap_server)
 * install to Tessera without touching a device (liteboot.md §4.2–4.4, §6,
 * §12 item 21). Its CA becomes Tessera's CA, its TLS server certificate is
 * kept for the liteboot listener (devices pin SERVER.crt), and every device
 * and certificate in CADB.db becomes a Tessera device and certificate with
 * the same serial. Runs only on a fresh data directory and store.
 *
 * CADB.db quirks (§6): STRING columns have NUMERIC affinity, so serials are
 * stored as INTEGER (int64, above 2^53) and are read as BigInt end to end;
 * `expiry` is text in Go's layout and is not used (the DER's notAfter is).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import Database from "better-sqlite3";
import {
  certificatePublicKey, certificateSans, exportPrivateKey, formatName, formatSan, importPrivateKey, keyInfo, keysMatch, keyTypeName,
  nameAttribute, parseCertificate, pemDecodeAll, pemEncode, serialToHex, sha256Hex, verifyCertificateSignature,
  PkiError, type ParsedCertificate,
} from "@tessera/pki";
import { TesseraError } from "../errors.js";
import type { CertificateRecord, IssuedWrite, Store } from "../authority/ports.js";
import { caExists, caPaths, describeCertificate, importCa, type PassphraseSource } from "./ca-files.js";

/** The only CADB.db schema version liteboot ever shipped with this layout (cadb/schema.go). */
export const LITEBOOT_SCHEMA_VERSION = "20220215a";

/** Files of a liteboot working directory. */
export interface LitebootSourceFiles {
  /** The working directory (where liteboot ran). */
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  db: string;
}

/** Where the imported liteboot TLS server certificate lives under a data directory. */
export function litebootPaths(dataDir: string) {
  const dir = path.join(dataDir, "liteboot");
  return { dir, serverCert: path.join(dir, "server.pem"), serverKey: path.join(dir, "server.key.pem") };
}

function refuse(message: string, detail?: string): TesseraError {
  return new TesseraError("TESSERA_ERR_CA_IMPORT", { message, detail });
}

/**
 * Finds the liteboot files from `dir`, the liteboot working directory
 * (certs/CA.crt …, CADB.db) or its certs/ directory (CADB.db one level up).
 * Throws TESSERA_ERR_CA_IMPORT naming every missing file.
 */
export function locateLitebootFiles(dir: string): LitebootSourceFiles {
  const given = path.resolve(dir);
  if (!fs.existsSync(given) || !fs.statSync(given).isDirectory()) throw refuse("not a liteboot directory", `${given} is not a directory`);
  const asCerts = !fs.existsSync(path.join(given, "certs", "CA.crt")) && fs.existsSync(path.join(given, "CA.crt"));
  const work = asCerts ? path.dirname(given) : given;
  const certs = asCerts ? given : path.join(given, "certs");
  const files: LitebootSourceFiles = {
    dir: work,
    caCert: path.join(certs, "CA.crt"),
    caKey: path.join(certs, "CA.key"),
    serverCert: path.join(certs, "SERVER.crt"),
    serverKey: path.join(certs, "SERVER.key"),
    db: path.join(work, "CADB.db"),
  };
  const missing = [files.caCert, files.caKey, files.serverCert, files.serverKey, files.db].filter((f) => !fs.existsSync(f));
  if (missing.length > 0) throw refuse("liteboot files missing: give the directory liteboot runs in (holding certs/ and CADB.db)", missing.join(", "));
  return files;
}

/** One row of CADB.db's certs table, decoded. */
export interface LitebootCertificateRow {
  /** Device id (the CN the certificate was issued to). */
  deviceId: string;
  /** The `name` column: the certificate's first OU. */
  name: string;
  /** The serial exactly as stored (int64). */
  serial: bigint;
  der: Buffer;
  valid: boolean;
}

/** What CADB.db holds. */
export interface LitebootDatabase {
  schemaVersion: string;
  /** The database's own random id (settings `uuid`). */
  uuid: string | null;
  /** Ids of devices rows (the CN). */
  devices: string[];
  certificates: LitebootCertificateRow[];
}

/** A column value as text: numeric-looking ids and names come back as INTEGER or REAL (NUMERIC affinity). */
function text(v: unknown): string {
  return Buffer.isBuffer(v) ? v.toString("utf8") : String(v);
}

/** The stored serial as a BigInt; an INTEGER comes back as bigint (safeIntegers), never through a JS number. */
function serialOf(v: unknown, where: string): bigint {
  let s: bigint | undefined;
  if (typeof v === "bigint") s = v;
  else if (typeof v === "string" && /^\+?\d+$/.test(v.trim())) s = BigInt(v.trim().replace(/^\+/, ""));
  if (s === undefined) throw refuse("CADB.db holds a serial that is not an integer", `${where}: ${typeof v} ${String(v)}`);
  if (s <= 0n) throw refuse("CADB.db holds a serial that is not positive", `${where}: ${s}`);
  return s;
}

/**
 * Reads CADB.db (read-only). Throws TESSERA_ERR_CA_IMPORT if it is not a
 * liteboot database of schema version 20220215a.
 */
export function readLitebootDatabase(file: string): LitebootDatabase {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw refuse("CADB.db cannot be opened", `${file}: ${(err as Error).message}`);
  }
  try {
    db.defaultSafeIntegers(true);
    const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
    for (const t of ["settings", "devices", "certs"]) if (!tables.has(t)) throw refuse("CADB.db is not a liteboot database", `${file}: no ${t} table`);
    const setting = (key: string) => (db.prepare("SELECT value FROM settings WHERE key = ?").get(key) as { value: unknown } | undefined)?.value;
    const version = setting("schemaVersion");
    if (version === undefined || text(version) !== LITEBOOT_SCHEMA_VERSION) {
      throw refuse(`CADB.db schema version is ${version === undefined ? "missing" : `'${text(version)}'`}; only liteboot's '${LITEBOOT_SCHEMA_VERSION}' can be imported`, file);
    }
    const uuid = setting("uuid");
    const devices = (db.prepare("SELECT id FROM devices").all() as { id: unknown }[]).map((r) => text(r.id));
    const certificates = (db.prepare("SELECT id, name, serial, cert, valid FROM certs").all() as Record<string, unknown>[]).map((r) => {
      const serial = serialOf(r.serial, `certs row of ${text(r.id)}`);
      if (!Buffer.isBuffer(r.cert)) throw refuse("CADB.db holds a certificate that is not a BLOB", `serial ${serial}`);
      return { deviceId: text(r.id), name: text(r.name), serial, der: r.cert, valid: r.valid === 1n || r.valid === 1 };
    });
    // Issue order (liteboot serials are UnixNano), compared as BigInt whatever SQLite's storage class was.
    certificates.sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
    return { schemaVersion: text(version), uuid: uuid === undefined ? null : text(uuid), devices, certificates };
  } catch (err) {
    if (err instanceof TesseraError) throw err;
    throw refuse("CADB.db cannot be read", `${file}: ${(err as Error).message}`);
  } finally {
    db.close();
  }
}

function readText(file: string): string {
  return fs.readFileSync(file, "utf8");
}

function firstCertificate(file: string): ParsedCertificate {
  try {
    const block = pemDecodeAll(readText(file)).find((b) => b.label === "CERTIFICATE");
    if (!block) throw refuse("no CERTIFICATE block", file);
    return parseCertificate(block.der);
  } catch (err) {
    if (err instanceof TesseraError) throw err;
    throw refuse("certificate cannot be read", `${file}: ${err instanceof PkiError ? `${err.message}: ${err.detail}` : String(err)}`);
  }
}

/**
 * The liteboot TLS server certificate and key saved by the import, for the
 * liteboot listener: `certPem` is SERVER.crt (unchanged) then the CA
 * certificate, `keyPem` the key as PKCS#8. Undefined when nothing was imported.
 */
export function loadLitebootServerCertificate(dataDir: string): { certPem: string; keyPem: string } | undefined {
  const p = litebootPaths(dataDir);
  if (!fs.existsSync(p.serverCert) || !fs.existsSync(p.serverKey)) return undefined;
  return { certPem: readText(p.serverCert), keyPem: readText(p.serverKey) };
}

/** Options of importLiteboot. */
export interface ImportLitebootOptions {
  /** The liteboot working directory (or its certs/ directory). */
  source: string;
  /** Tessera's data directory: must hold no CA yet. */
  dataDir: string;
  passphrase: PassphraseSource;
  /** The store, migrated and empty. */
  store: Pick<Store, "commitIssued" | "countCertificates" | "listDevices" | "createDeviceIfAbsent">;
  /** Audit actor (default "cli"). */
  actor?: string;
  /** Import time: revokedAt of rows with valid = 0, audit times (default now). */
  now?: Date;
  /** Certificates per store transaction (default 500). */
  batchSize?: number;
}

/** What importLiteboot did. */
export interface ImportLitebootResult {
  ca: ReturnType<typeof describeCertificate>;
  /** Devices created (every devices row and every certs id). */
  devices: number;
  certificates: number;
  /** Of those, how many were stored revoked (valid = 0). */
  revoked: number;
  /** CADB.db's settings uuid. */
  sourceUuid: string | null;
  paths: { source: string; caDir: string; serverCert: string; serverKey: string };
  /** Passphrase file generated for the CA key (back it up), if one was. */
  generatedPassphraseFile?: string;
  /** Things the operator should know (an expired or soon-expiring CA or server certificate). */
  warnings: string[];
}

interface Prepared {
  record: CertificateRecord;
  name: string;
}

/** Builds the certificate records from the rows, refusing anything Tessera could not serve as the same certificate. */
function prepareCertificates(rows: readonly LitebootCertificateRow[], ca: ParsedCertificate, now: Date): Prepared[] {
  const caKey = certificatePublicKey(ca);
  const seen = new Map<string, string>();
  return rows.map((row) => {
    const where = `device ${row.deviceId}, serial ${row.serial}`;
    let cert: ParsedCertificate;
    let keyType: string;
    try {
      cert = parseCertificate(row.der);
      keyType = keyTypeName(keyInfo(certificatePublicKey(cert)));
    } catch (err) {
      throw refuse("CADB.db holds an unreadable certificate", `${where}: ${err instanceof PkiError ? `${err.message}: ${err.detail}` : String(err)}`);
    }
    const serial = serialToHex(row.serial);
    if (cert.serialHex !== serial) throw refuse("CADB.db serial differs from the certificate's", `${where}: certificate has ${BigInt("0x" + cert.serialHex)}`);
    const other = seen.get(serial);
    if (other !== undefined) throw refuse("CADB.db holds one serial twice", `serial ${row.serial}: devices ${other} and ${row.deviceId}`);
    seen.set(serial, row.deviceId);
    if (!cert.issuer.equals(ca.subject) || !verifyCertificateSignature(cert, caKey)) {
      throw refuse("CADB.db holds a certificate not issued by certs/CA.crt", where);
    }
    // A numeric CN loses leading zeros in CADB.db (NUMERIC affinity, §11.16): the certificate's CN is the real id.
    const cn = nameAttribute(cert.subject, "CN");
    const deviceId = cn !== undefined && cn !== row.deviceId && /^[\d.eE+-]+$/.test(cn) && Number(cn) === Number(row.deviceId) ? cn : row.deviceId;
    return {
      name: row.name,
      record: {
        serial,
        deviceId,
        profile: "liteboot",
        subject: formatName(cert.subject),
        sans: certificateSans(cert).map(formatSan),
        keyFingerprint: sha256Hex(cert.spki),
        keyType,
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        status: row.valid ? "valid" : "revoked",
        revokedAt: row.valid ? null : now,
        revocationReason: row.valid ? null : "unspecified",
        issuedAt: cert.notBefore,
        protocol: "liteboot",
        requestId: null,
        fingerprint: sha256Hex(cert.der),
        der: cert.der,
      },
    };
  });
}

function expiryWarnings(what: string, cert: ParsedCertificate, now: Date): string[] {
  const days = (cert.notAfter.getTime() - now.getTime()) / 86_400_000;
  if (days <= 0) return [`${what} expired on ${cert.notAfter.toISOString()}`];
  if (days < 60) return [`${what} expires on ${cert.notAfter.toISOString()} (in ${Math.floor(days)} days)`];
  return [];
}

/**
 * Imports a liteboot install into a fresh Tessera data directory and store:
 * the CA (importCa; the self-signed liteboot CA is both root and issuer),
 * SERVER.crt/SERVER.key to `<dataDir>/liteboot/` (server.pem = SERVER.crt
 * then CA.crt; server.key.pem = PKCS#8, plain, 0600), then every devices and
 * certs row, oldest serial first, through Store.commitIssued in batches of
 * `batchSize` (each certificate with a "certificate.imported" audit event),
 * so each device's currentSerial ends on its newest certificate.
 *
 * Everything is read and checked before anything is written. Throws
 * TESSERA_ERR_CA_EXISTS when the data directory has a CA, and
 * TESSERA_ERR_CA_IMPORT for missing or unreadable files, a CADB.db schema
 * other than 20220215a, a non-empty store, or certificates not issued by CA.crt.
 */
export async function importLiteboot(opts: ImportLitebootOptions): Promise<ImportLitebootResult> {
  const now = opts.now ?? new Date();
  const actor = opts.actor ?? "cli";
  const batchSize = Math.max(1, opts.batchSize ?? 500);
  const out = litebootPaths(opts.dataDir);
  if (caExists(opts.dataDir)) {
    throw new TesseraError("TESSERA_ERR_CA_EXISTS", {
      message: "Tessera already has a CA in this data directory; import liteboot needs a fresh data directory",
      detail: caPaths(opts.dataDir).dir,
    });
  }
  const src = locateLitebootFiles(opts.source);
  if (fs.existsSync(out.serverCert) || fs.existsSync(out.serverKey)) throw refuse("a liteboot server certificate was already imported; use a fresh data directory", out.dir);

  const db = readLitebootDatabase(src.db);
  const ca = firstCertificate(src.caCert);
  const server = firstCertificate(src.serverCert);
  let serverKey;
  try {
    serverKey = importPrivateKey(readText(src.serverKey));
  } catch (err) {
    throw refuse("SERVER.key cannot be read", `${src.serverKey}: ${err instanceof PkiError ? `${err.message}: ${err.detail}` : String(err)}`);
  }
  if (!keysMatch(serverKey, certificatePublicKey(server))) throw refuse("SERVER.key does not match SERVER.crt", src.serverKey);
  const prepared = prepareCertificates(db.certificates, ca, now);

  if ((await opts.store.countCertificates()) > 0 || (await opts.store.listDevices({ limit: 1 })).length > 0) {
    throw refuse("the store already holds devices or certificates; import liteboot needs a fresh data directory and database");
  }

  // importCa checks CA:TRUE, the key against the certificate and the self-signature.
  const imported = await importCa({ dataDir: opts.dataDir, passphrase: opts.passphrase, certificatePem: readText(src.caCert), keyPem: readText(src.caKey) });
  try {
    fs.mkdirSync(out.dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(out.serverKey, exportPrivateKey(serverKey), { mode: 0o600, flag: "wx" });
    // SERVER.crt's DER is served unchanged: devices pin it (new-device.sh's wget --ca-certificate).
    fs.writeFileSync(out.serverCert, pemEncode("CERTIFICATE", server.der) + pemEncode("CERTIFICATE", ca.der), { mode: 0o600, flag: "wx" });

    const writes: IssuedWrite[] = prepared.map(({ record, name }) => ({
      certificate: record,
      audit: {
        at: now,
        actor,
        action: "certificate.imported",
        target: record.serial,
        detail: { source: "liteboot", device: record.deviceId, subject: record.subject, status: record.status },
      },
      // Oldest first: each write moves the device's currentSerial on and merges its OU, so the newest wins.
      device: { id: record.deviceId!, fingerprint: null, protocol: "liteboot", attributes: { ou: name }, status: "active" },
    }));
    for (let i = 0; i < writes.length; i += batchSize) await opts.store.commitIssued(writes.slice(i, i + batchSize));
    const withCerts = new Set(prepared.map((p) => p.record.deviceId!));
    const rawIds = new Set(db.certificates.map((c) => c.deviceId));
    let devices = withCerts.size;
    for (const id of new Set(db.devices)) {
      if (withCerts.has(id) || rawIds.has(id)) continue;
      const { created } = await opts.store.createDeviceIfAbsent({ id, fingerprint: null, status: "active", protocol: "liteboot", attributes: {} }, now);
      if (created) devices++;
    }
    return {
      ca: describeCertificate(imported.material.issuer.certificate),
      devices,
      certificates: prepared.length,
      revoked: prepared.filter((p) => p.record.status === "revoked").length,
      sourceUuid: db.uuid,
      paths: { source: src.dir, caDir: caPaths(opts.dataDir).dir, serverCert: out.serverCert, serverKey: out.serverKey },
      ...(imported.generatedPassphraseFile ? { generatedPassphraseFile: imported.generatedPassphraseFile } : {}),
      warnings: [...expiryWarnings("the liteboot CA", ca, now), ...expiryWarnings("SERVER.crt", server, now)],
    };
  } catch (err) {
    const e = err instanceof TesseraError ? err : undefined;
    throw new TesseraError(e?.code ?? "TESSERA_ERR_CA_IMPORT", {
      message: `import liteboot failed after the CA was written (${e?.message ?? String(err)}); delete ${opts.dataDir} and its database, then run it again`,
      detail: e?.detail,
      cause: err,
    });
  }
}
