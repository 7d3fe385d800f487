/**
 * `tessera-agent est cacerts|enroll|reenroll|serverkeygen`: the EST client
 * (RFC 7030) on the command line. Each command reads its options, makes the
 * EstClient calls it needs, checks the answer against the CA certificates and
 * writes the identity directory as one set (keystore/store-dir.ts).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type * as crypto from "node:crypto";
import {
  buildCsr, encodeGeneralNames, ExtOid, formatName, formatSan, certificateSans, generateKeyPair, keyInfo, keyTypeName, parseKeyType, parseNameString,
  parseSan, colonHex, type KeyType, type NameAttribute, type SubjectAltName, type RequestedExtension,
} from "@tessera/pki";
import { encodeStoredKey, isEnrolled, loadIdentity, saveIdentity, STORE_FILES } from "../keystore/store-dir.js";
import { signedBy, type EstCaCertificate, type EstCaCerts, type EstCertificate } from "../protocols/est/cacerts.js";
import { EstClient, DEFAULT_EST_MAX_WAIT_MS, type EstClientOptions } from "../protocols/est/client.js";
import { EstError } from "../protocols/est/errors.js";
import { EXIT, exitCodeName, UsageError, type AgentIo } from "./output.js";
import { duration, parseDuration, readText, serverUrl, storeDir, str, type Invocation, type OptionName } from "./options.js";
import type { Command } from "./shared.js";

const DAY_MS = 86_400_000;

/** Exit code for an EstError: 4 when the server refused (4xx), 5 pending, else 1. */
export function estExitCode(err: EstError): number {
  if (err.kind === "pending") return EXIT.pending;
  if (["unauthorized", "forbidden", "bad-request", "not-found"].includes(err.kind)) return EXIT.refused;
  return EXIT.failure;
}

/** Prints an EstError as the agent prints errors (a pending request is a state on standard output) and returns its exit code. */
export function reportEstError(io: AgentIo, err: EstError): number {
  const code = estExitCode(err);
  if (err.kind === "pending") {
    const retryAt = err.retryAt?.toISOString();
    if (io.json) io.out(JSON.stringify({ status: "pending", ...(retryAt ? { retryAt } : {}), message: err.message }));
    else io.out(`The EST request is pending (HTTP 202)${retryAt ? `; the server asks to try again after ${retryAt}` : ""}. Run the command again later.`);
    return code;
  }
  if (io.json) {
    const e: Record<string, unknown> = { code: exitCodeName(code), message: err.message.trimEnd(), kind: err.kind };
    if (err.status !== undefined) e.status = err.status;
    if (err.body !== undefined) e.body = err.body;
    if (err.causeCode !== undefined) e.causeCode = err.causeCode;
    if (err.retryAt !== undefined) e.retryAt = err.retryAt.toISOString();
    io.out(JSON.stringify({ error: e }));
  } else {
    io.err(`tessera-agent: ${err.message.trimEnd()}`);
  }
  return code;
}

/** Runs `cmd`, reporting EstError itself (other errors go to the dispatcher's reportError). */
function est(cmd: Command): Command {
  return async (inv) => {
    try {
      return await cmd(inv);
    } catch (err) {
      if (err instanceof EstError) return reportEstError(inv.io, err);
      throw err;
    }
  };
}

/** The EST base URL: --server or TESSERA_SERVER, https only. */
function estServer(inv: Invocation): string {
  const url = serverUrl(inv);
  if (!url.toLowerCase().startsWith("https://")) throw new UsageError(`--server: EST runs over TLS, give an https URL (got '${url}')`);
  return url;
}

/** --wait: "0" means never wait; else a duration (default 10m). */
function maxWait(inv: Invocation): number {
  const v = str(inv, "wait");
  if (v === undefined) return DEFAULT_EST_MAX_WAIT_MS;
  return /^0+(ms|s|m|h|d)?$/.test(v.trim()) ? 0 : parseDuration(v, "wait");
}

/** Trust anchors: --ca FILE, else DIR/ca.crt. */
function trustAnchors(inv: Invocation, dir: string): string {
  const ca = str(inv, "ca");
  const file = ca ?? path.join(dir, STORE_FILES.ca);
  if (ca === undefined && !fs.existsSync(file)) {
    throw new UsageError(`no trust anchors: give --ca FILE, or fetch them first with 'tessera-agent est cacerts --ca-fingerprint HEX --dir ${dir}'`);
  }
  const pem = readText(file, "--ca");
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new UsageError(`--ca: ${file} holds no PEM certificate`);
  return pem;
}

/** HTTP Basic credentials from --user and --password / TESSERA_EST_PASSWORD; none when neither is given. */
function basic(inv: Invocation): EstClientOptions["basic"] {
  const user = str(inv, "user");
  const password = str(inv, "password") ?? inv.env.TESSERA_EST_PASSWORD;
  if (user === undefined && password === undefined) return undefined;
  if (password === undefined) throw new UsageError("--user needs a password: give --password or set TESSERA_EST_PASSWORD");
  return { username: user ?? "", password };
}

/** --cert and --key (both or neither). */
function bootstrapCertificate(inv: Invocation): EstClientOptions["clientCertificate"] {
  const cert = str(inv, "cert");
  const key = str(inv, "key");
  if ((cert === undefined) !== (key === undefined)) throw new UsageError("give --cert and --key together");
  if (cert === undefined || key === undefined) return undefined;
  return { cert: readText(cert, "--cert"), key: readText(key, "--key") };
}

/** An EstClient; bad option values (a key that does not fit --cert…) are usage errors. */
function estClient(inv: Invocation, opts: Pick<EstClientOptions, "trustAnchors"> & Partial<EstClientOptions>): EstClient {
  const label = str(inv, "label");
  try {
    return new EstClient({
      url: estServer(inv),
      timeoutMs: duration(inv, "timeout", 30_000),
      maxWaitMs: maxWait(inv),
      ...(label !== undefined ? { label } : {}),
      ...opts,
    });
  } catch (err) {
    if (err instanceof TypeError) throw new UsageError(err.message.replace(/^invalid EstClient options: /, ""));
    throw err;
  }
}

function keyType(inv: Invocation, fallback: KeyType): KeyType {
  const t = str(inv, "key-type");
  if (t === undefined) return fallback;
  try {
    return parseKeyType(t);
  } catch {
    throw new UsageError(`--key-type: '${t}' is not a key type (ec-p256, ec-p384, ed25519, rsa-2048…)`);
  }
}

/** The request's subject and SAN extension from --subject and --san. */
function requestedName(inv: Invocation): { subject: NameAttribute[]; extensions: RequestedExtension[] } {
  const text = str(inv, "subject");
  let subject: NameAttribute[];
  try {
    subject = text === undefined ? [{ type: "CN", value: os.hostname() }] : parseNameString(text);
  } catch {
    throw new UsageError(`--subject: '${text}' is not a distinguished name such as /O=Acme/CN=dev-1`);
  }
  const sansText = inv.flags.san;
  const list = Array.isArray(sansText) ? sansText : typeof sansText === "string" ? [sansText] : [];
  let sans: SubjectAltName[];
  try {
    sans = list.map((s) => parseSan(s));
    encodeGeneralNames(sans);
  } catch {
    throw new UsageError(`--san: '${list.join(", ")}' holds a name that is not DNS:x, IP:a.b.c.d, URI:u or email:e`);
  }
  if (subject.length === 0 && sans.length === 0) throw new UsageError("the request needs a --subject or a --san");
  return { subject, extensions: sans.length ? [{ oid: ExtOid.subjectAltName, critical: subject.length === 0, value: encodeGeneralNames(sans) }] : [] };
}

/** Refuses an issued certificate whose issuer is not in the /cacerts bag (it could not be verified later). */
function checkIssuedUnder(issued: EstCertificate, bag: EstCaCerts): void {
  if (!bag.certificates.some((ca) => issued.certificate.issuer.equals(ca.certificate.subject) && signedBy(issued.certificate, ca.certificate))) {
    throw new EstError("protocol", `the issued certificate (issuer ${formatName(issued.certificate.issuer)}) is not signed by a certificate from /cacerts`);
  }
}

/** Writes the new identity as one set: key, certificate, and the bag as ca.crt (EST has no server id or fingerprint: both empty). */
async function save(dir: string, privateKey: crypto.KeyObject, issued: EstCertificate, bag: EstCaCerts): Promise<void> {
  checkIssuedUnder(issued, bag);
  await saveIdentity(dir, { privateKey, certificatePem: issued.pem, caPem: bag.pem, serverId: "", fingerprint: "" });
}

/** What the enrolling commands print. */
function identityReport(inv: Invocation, status: string, dir: string, issued: EstCertificate, extra: Record<string, unknown>, headline: string): void {
  const c = issued.certificate;
  const left = c.notAfter.getTime() - Date.now();
  const doc = {
    status, ...extra, dir, subject: formatName(c.subject), issuer: formatName(c.issuer), sans: certificateSans(c).map(formatSan),
    serial: c.serialHex, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString(), daysLeft: Math.floor(left / DAY_MS),
  };
  if (inv.io.json) return inv.io.out(JSON.stringify(doc));
  inv.io.out(headline);
  inv.io.out(`  subject:      ${doc.subject}`);
  if (doc.sans.length > 0) inv.io.out(`  alt names:    ${doc.sans.join(", ")}`);
  inv.io.out(`  issuer:       ${doc.issuer}`);
  inv.io.out(`  serial:       ${doc.serial}`);
  inv.io.out(`  valid until:  ${doc.notAfter} (${doc.daysLeft} day${doc.daysLeft === 1 ? "" : "s"} left)`);
}

function describeCa(c: EstCaCertificate): Record<string, unknown> {
  return {
    role: c.role, subject: formatName(c.certificate.subject), issuer: formatName(c.certificate.issuer), serial: c.certificate.serialHex,
    notAfter: c.certificate.notAfter.toISOString(), sha256: c.sha256,
  };
}

async function writeAtomically(file: string, data: string): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.promises.writeFile(tmp, data, { mode: 0o644 });
  await fs.promises.rename(tmp, file);
}

const cacerts: Command = async (inv) => {
  const dir = storeDir(inv);
  const fingerprint = str(inv, "ca-fingerprint");
  if (fingerprint !== undefined && str(inv, "ca") !== undefined) throw new UsageError("give --ca or --ca-fingerprint, not both");
  let bag: EstCaCerts;
  let pinned: string | undefined;
  if (fingerprint !== undefined) {
    const label = str(inv, "label");
    try {
      const r = await EstClient.bootstrapCacerts({
        url: estServer(inv), fingerprint, timeoutMs: duration(inv, "timeout", 30_000), ...(label !== undefined ? { label } : {}),
      });
      bag = r;
      pinned = r.pinned.sha256;
    } catch (err) {
      if (err instanceof TypeError) throw new UsageError(err.message.replace(/^invalid bootstrapCacerts options: /, ""));
      throw err;
    }
  } else {
    bag = await estClient(inv, { trustAnchors: trustAnchors(inv, dir) }).cacerts();
  }
  const file = str(inv, "out") ?? path.join(dir, STORE_FILES.ca);
  if (file === "") throw new UsageError("--out must not be empty");
  await writeAtomically(file, bag.pem);
  if (inv.io.json) {
    inv.io.out(JSON.stringify({ status: "ok", file, bootstrap: pinned !== undefined, ...(pinned ? { pinned } : {}), certificates: bag.certificates.map(describeCa) }));
    return EXIT.ok;
  }
  inv.io.out(`Wrote ${bag.certificates.length} CA certificate${bag.certificates.length === 1 ? "" : "s"} to ${file}${pinned ? ` (verified against SHA-256 ${colonHex(pinned)})` : ""}`);
  for (const c of bag.certificates) {
    inv.io.out(`  ${(c.role + ":").padEnd(14)}${formatName(c.certificate.subject)} (until ${c.certificate.notAfter.toISOString()}, SHA-256 ${colonHex(c.sha256)})`);
  }
  return EXIT.ok;
};

/** What enroll and serverkeygen share: the store, the requested name and key type, a client with the given credentials, the CA bag. */
async function enrollment(inv: Invocation) {
  const dir = storeDir(inv);
  const name = requestedName(inv);
  const type = keyType(inv, "ec-p256");
  const cert = bootstrapCertificate(inv);
  const credentials = basic(inv);
  const client = estClient(inv, { trustAnchors: trustAnchors(inv, dir), ...(credentials ? { basic: credentials } : {}), ...(cert ? { clientCertificate: cert } : {}) });
  const replaced = await isEnrolled(dir);
  const bag = await client.cacerts();
  return { dir, name, type, client, replaced, bag };
}

const enroll: Command = async (inv) => {
  const { dir, name, type, client, replaced, bag } = await enrollment(inv);
  const { privateKey } = generateKeyPair(type);
  const issued = await client.simpleEnroll(buildCsr({ subject: name.subject, privateKey, extensions: name.extensions }));
  await save(dir, privateKey, issued, bag);
  identityReport(inv, "enrolled", dir, issued, { replaced, keyType: type }, `${replaced ? "Enrolled again (identity replaced)" : "Enrolled"} over EST in ${dir}`);
  return EXIT.ok;
};

const reenroll: Command = async (inv) => {
  const dir = storeDir(inv);
  const rekey = inv.flags.rekey === true;
  if (!rekey && str(inv, "key-type") !== undefined) throw new UsageError("--key-type needs --rekey (reenroll keeps the key otherwise)");
  const credentials = basic(inv);
  const id = await loadIdentity(dir);
  const client = estClient(inv, {
    trustAnchors: str(inv, "ca") !== undefined ? trustAnchors(inv, dir) : id.caPem, clientCertificate: { cert: id.certificatePem, key: encodeStoredKey(id.privateKey) }, ...(credentials ? { basic: credentials } : {}),
  });
  // RFC 7030 §4.2.2: Subject and subjectAltName exactly as in the current certificate, so both are copied as DER.
  const san = id.certificate.extensions.find((e) => e.oid === ExtOid.subjectAltName);
  const privateKey = rekey ? generateKeyPair(keyType(inv, parseKeyType(keyTypeName(keyInfo(id.privateKey))))).privateKey : id.privateKey;
  const csr = buildCsr({ subject: id.certificate.subject, privateKey, extensions: san ? [{ oid: san.oid, critical: san.critical, value: san.value }] : [] });
  const bag = await client.cacerts();
  const issued = await client.simpleReenroll(csr);
  await save(dir, privateKey, issued, bag);
  identityReport(inv, "reenrolled", dir, issued, { rekeyed: rekey, previousSerial: id.certificate.serialHex }, `Reenrolled over EST in ${dir}${rekey ? " with a new key" : ""}`);
  return EXIT.ok;
};

const serverkeygen: Command = async (inv) => {
  const { dir, name, type, client, replaced, bag } = await enrollment(inv);
  // The server ignores this key (RFC 7030 §4.4.1); it only signs the request.
  const { privateKey: throwaway } = generateKeyPair(type);
  const r = await client.serverKeygen(buildCsr({ subject: name.subject, privateKey: throwaway, extensions: name.extensions }));
  await save(dir, r.privateKey, r.certificate, bag);
  identityReport(inv, "enrolled", dir, r.certificate, { replaced, keyGeneratedBy: "server", keyType: keyTypeName(keyInfo(r.privateKey)) },
    `${replaced ? "Enrolled again (identity replaced)" : "Enrolled"} over EST with a server-generated key in ${dir}`);
  return EXIT.ok;
};

const CONNECT: readonly OptionName[] = ["server", "label", "ca", "dir", "timeout"];
const AUTH: readonly OptionName[] = ["user", "password", "cert", "key"];
const REQUEST: readonly OptionName[] = ["subject", "san", "key-type", "wait"];

/** The est commands for the command table: name → handler and the options it accepts (besides --json and --help). */
export const EST_COMMANDS: Record<string, { run: Command; options: readonly OptionName[] }> = {
  "est cacerts": { run: est(cacerts), options: [...CONNECT, "ca-fingerprint", "out"] },
  "est enroll": { run: est(enroll), options: [...CONNECT, ...AUTH, ...REQUEST] },
  "est reenroll": { run: est(reenroll), options: [...CONNECT, "user", "password", "rekey", "key-type", "wait"] },
  "est serverkeygen": { run: est(serverkeygen), options: [...CONNECT, ...AUTH, ...REQUEST] },
};
