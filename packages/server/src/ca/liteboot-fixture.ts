/**
 * Test fixture: a liteboot working directory built the way the original
 * setup scripts build it (liteboot.md §4.2–4.4, §6, §9), with the `openssl`
 * CLI and a CADB.db in the original schema and column types. Used by the
 * import tests and by tests of old liteboot credentials against Tessera.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { parseCertificate, pemDecodeAll, subjectKeyIdentifier } from "@tessera/pki";

const run = promisify(execFile);

/** What makeLitebootDir built. */
export interface LitebootFixture {
  /** The liteboot working directory (holds certs/ and CADB.db). */
  dir: string;
  caCertPem: string;
  /** certs/BOOTSTRAP.crt: X.509 v1, OU "LinaroCA Bootstrap Cert". */
  bootstrapCertPem: string;
  /** certs/BOOTSTRAP.key: SEC1 with an EC PARAMETERS block, as `openssl ecparam -genkey` writes it. */
  bootstrapKeyPem: string;
  /** certs/SERVER.crt (SAN DNS:localhost, serverAuth). */
  serverCertPem: string;
  /** The device's lower-case UUID (its CN and CADB.db id). */
  uuid: string;
  /** Serials of the device's two certificates, in issue order (19 digits, > 2^53). */
  serials: bigint[];
}

/** liteboot's schema, verbatim from cadb/schema.go (version 20220215a): STRING columns have NUMERIC affinity. */
const SCHEMA = [
  `CREATE TABLE settings (key STRING PRIMARY KEY,
		value STRING NOT NULL)`,
  `CREATE TABLE devices (id STRING PRIMARY KEY,
		registered INTEGER NOT NULL)`,
  `CREATE TABLE certs (id STRING NOT NULL REFERENCES devices(id),
		name STRING NOT NULL,
		serial STRING NOT NULL,
		keyid BLOB NOT NULL,
		cert BLOB NOT NULL,
		expiry DATE NOT NULL,
		valid INTEGER NOT NULL,
		PRIMARY KEY (id, serial))`,
];

/** A time as mattn/go-sqlite3 stores time.Time: Go layout `2006-01-02 15:04:05.999999999-07:00` (UTC here). */
function goTime(d: Date): string {
  const iso = d.toISOString(); // 2023-04-04T11:05:24.922Z
  const frac = iso.slice(20, 23).replace(/0+$/, "");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ? "." + frac : ""}+00:00`;
}

/**
 * Builds a liteboot directory under `dir` (created if absent): certs/CA.crt
 * and CA.key (P-256, self-signed, `O=Linaro, LTD, CN=LRC - 20220520043806`,
 * key with an EC PARAMETERS block), SERVER.crt/.key (setup-ca.sh, hostname
 * localhost), BOOTSTRAP.crt/.key (setup-bootstrap.sh), one device with two
 * certificates (OUs "Device Client TLS" and "Device COSE SIGN/Encrypt",
 * serials 1649073924922206000 and …001) and CADB.db holding them.
 * Needs the `openssl` command.
 */
export async function makeLitebootDir(dir: string): Promise<LitebootFixture> {
  const certs = path.join(dir, "certs");
  fs.mkdirSync(certs, { recursive: true });
  const ssl = (...args: string[]) => run("openssl", args, { cwd: certs });
  const read = (name: string) => fs.readFileSync(path.join(certs, name), "utf8");

  // CA (liteboot cakey generate): BC critical CA:TRUE, KU critical keyCertSign, SKI; 1 year.
  fs.writeFileSync(path.join(certs, "ca.cnf"), [
    "[req]", "distinguished_name = dn", "[dn]",
    "[v3_ca]", "basicConstraints = critical, CA:TRUE", "keyUsage = critical, keyCertSign", "subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid", "",
  ].join("\n"));
  await ssl("ecparam", "-name", "prime256v1", "-genkey", "-out", "CA.key");
  await ssl("req", "-new", "-x509", "-sha256", "-config", "ca.cnf", "-extensions", "v3_ca", "-key", "CA.key",
    "-subj", "/O=Linaro, LTD/CN=LRC - 20220520043806", "-days", "365", "-set_serial", "2022000520163806", "-out", "CA.crt");

  // SERVER (setup-ca.sh).
  await ssl("ecparam", "-name", "prime256v1", "-genkey", "-out", "SERVER.key");
  await ssl("req", "-new", "-sha256", "-key", "SERVER.key", "-out", "SERVER.csr", "-subj", "/O=Linaro, LTD/CN=localhost");
  fs.writeFileSync(path.join(certs, "server.ext"), [
    "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid,issuer", "basicConstraints = critical, CA:FALSE",
    "keyUsage = critical, digitalSignature", "extendedKeyUsage = serverAuth", "subjectAltName = DNS:localhost", "",
  ].join("\n"));
  await ssl("x509", "-req", "-sha256", "-CA", "CA.crt", "-CAkey", "CA.key", "-days", "3560", "-CAcreateserial", "-CAserial", "CA.srl",
    "-in", "SERVER.csr", "-out", "SERVER.crt", "-extfile", "server.ext");

  // BOOTSTRAP (setup-bootstrap.sh): no extensions, so X.509 v1.
  await ssl("ecparam", "-name", "prime256v1", "-genkey", "-out", "BOOTSTRAP.key");
  await ssl("req", "-new", "-sha256", "-key", "BOOTSTRAP.key", "-out", "BOOTSTRAP.csr", "-subj", "/O=Linaro, LTD/CN=bootstrap-register-1/OU=LinaroCA Bootstrap Cert");
  await ssl("x509", "-req", "-sha256", "-CA", "CA.crt", "-CAkey", "CA.key", "-days", "3560", "-CAcreateserial", "-CAserial", "CA.srl",
    "-in", "BOOTSTRAP.csr", "-out", "BOOTSTRAP.crt");

  // One device, two certificates as liteboot issues them (§4.1: subject O, OU, CN; SKI, AKI; 1 year).
  const uuid = randomUUID();
  const serials = [1649073924922206000n, 1649073924922206001n];
  const ous = ["Device Client TLS", "Device COSE SIGN/Encrypt"];
  fs.writeFileSync(path.join(certs, "device.ext"), "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n");
  const deviceCerts: Buffer[] = [];
  for (const [i, serial] of serials.entries()) {
    const base = `${uuid}-${i}`;
    await ssl("ecparam", "-name", "prime256v1", "-genkey", "-out", `${base}.key`);
    await ssl("req", "-new", "-sha256", "-key", `${base}.key`, "-out", `${base}.csr`, "-subj", `/O=Linaro/OU=${ous[i]!.replace(/\//g, "\\/")}/CN=${uuid}`);
    await ssl("x509", "-req", "-sha256", "-CA", "CA.crt", "-CAkey", "CA.key", "-days", "365", "-set_serial", serial.toString(),
      "-in", `${base}.csr`, "-out", `${base}.crt`, "-extfile", "device.ext");
    deviceCerts.push(pemDecodeAll(read(`${base}.crt`))[0]!.der);
  }
  for (const f of fs.readdirSync(certs)) if (/\.(csr|ext|cnf)$/.test(f)) fs.rmSync(path.join(certs, f));

  // CADB.db in the original schema; values bound with the types liteboot's Go code binds.
  const db = new Database(path.join(dir, "CADB.db"));
  try {
    db.defaultSafeIntegers(true);
    for (const sql of SCHEMA) db.exec(sql);
    db.prepare("INSERT INTO settings VALUES ('schemaVersion', ?)").run("20220215a");
    db.prepare("INSERT INTO settings VALUES ('uuid', ?)").run(randomUUID());
    db.prepare("INSERT INTO devices (id, registered) VALUES (?, ?)").run(uuid, 0n);
    const insert = db.prepare("INSERT INTO certs (id, name, serial, keyid, expiry, cert, valid) VALUES (?, ?, ?, ?, ?, ?, ?)");
    for (const [i, der] of deviceCerts.entries()) {
      const cert = parseCertificate(der);
      insert.run(uuid, ous[i]!, serials[i]!, subjectKeyIdentifier(cert) ?? Buffer.alloc(0), goTime(cert.notAfter), der, 1n);
    }
  } finally {
    db.close();
  }
  return {
    dir,
    caCertPem: read("CA.crt"),
    bootstrapCertPem: read("BOOTSTRAP.crt"),
    bootstrapKeyPem: read("BOOTSTRAP.key"),
    serverCertPem: read("SERVER.crt"),
    uuid,
    serials,
  };
}
