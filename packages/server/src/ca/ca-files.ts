/**
 * The CA on disk: `<dataDir>/ca/` holds root.pem, intermediate.pem (the
 * issuing CA) and their keys as encrypted PKCS#8 (root.key.pem,
 * intermediate.key.pem), all mode 0600 and never overwritten. The passphrase
 * comes from TESSERA_CA_PASSPHRASE, else the passphrase file; on first init
 * with neither, a random one is generated into the passphrase file (0600).
 * After `tessera ca rollover`, `<dataDir>/ca/rollover/` holds the new root,
 * its key and the two cross certificates (see rollover.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes, type KeyObject } from "node:crypto";
import {
  basicConstraints, certificatePublicKey, createCaCertificate, exportPrivateKey, generateKeyPairAsync, importPrivateKey,
  keysMatch, parseCertificate, parseKeyType, pemDecodeAll, pemEncode, sha256Hex, formatName, verifyCertificateSignature,
  PkiError, type ParsedCertificate,
} from "@tessera/pki";
import { TesseraError } from "../errors.js";
import type { CaMaterial } from "../authority/authority.js";

/** Paths of the CA files under a data directory. */
export function caPaths(dataDir: string) {
  const dir = path.join(dataDir, "ca");
  const rolloverDir = path.join(dir, "rollover");
  return {
    dir,
    root: path.join(dir, "root.pem"),
    rootKey: path.join(dir, "root.key.pem"),
    issuer: path.join(dir, "intermediate.pem"),
    issuerKey: path.join(dir, "intermediate.key.pem"),
    chain: path.join(dir, "chain.pem"),
    /** Root rollover (RFC 4210 §4.4): NewWithNew and its key, OldWithNew, NewWithOld. */
    rollover: {
      dir: rolloverDir,
      newRoot: path.join(rolloverDir, "new-root.pem"),
      newRootKey: path.join(rolloverDir, "new-root.key.pem"),
      oldWithNew: path.join(rolloverDir, "old-with-new.pem"),
      newWithOld: path.join(rolloverDir, "new-with-old.pem"),
    },
  };
}

/** Where the passphrase comes from. */
export interface PassphraseSource {
  /** Value of TESSERA_CA_PASSPHRASE, if set. */
  env?: string;
  /** Passphrase file path (config caPassphraseFile). */
  file: string;
}

/** The CA key passphrase: TESSERA_CA_PASSPHRASE, else the passphrase file's first line; undefined if neither. */
export function readPassphrase(src: PassphraseSource): string | undefined {
  if (src.env !== undefined && src.env !== "") return src.env;
  if (fs.existsSync(src.file)) return fs.readFileSync(src.file, "utf8").replace(/\r?\n$/, "");
  return undefined;
}

/** True if a CA exists (or half exists) in the data directory. */
export function caExists(dataDir: string): boolean {
  const p = caPaths(dataDir);
  return [p.root, p.issuer, p.issuerKey].some((f) => fs.existsSync(f));
}

/** Writes a new file, mode 0600; throws (EEXIST) rather than overwrite. */
export function writeNew(file: string, data: string): void {
  // "wx": never overwrite an existing CA file (imprint's W14: half-present files were silently replaced).
  fs.writeFileSync(file, data, { mode: 0o600, flag: "wx" });
}

/** Options of `ca init`. */
export interface InitCaOptions {
  dataDir: string;
  passphrase: PassphraseSource;
  keyType: string;
  /** Common-name prefix ("Tessera" → "Tessera Root CA"). */
  name: string;
  organization: string;
  now?: Date;
}

/** Result of init/import: the material and whether a passphrase file was generated. */
export interface InitCaResult {
  material: CaMaterial;
  generatedPassphraseFile?: string;
}

function ensurePassphrase(src: PassphraseSource): { passphrase: string; generated?: string } {
  const existing = readPassphrase(src);
  if (existing !== undefined) return { passphrase: existing };
  fs.mkdirSync(path.dirname(src.file), { recursive: true, mode: 0o700 });
  const passphrase = randomBytes(32).toString("base64url");
  writeNew(src.file, passphrase + "\n");
  return { passphrase, generated: src.file };
}

/**
 * Creates a root (10 years) and an issuing intermediate (5 years, pathlen 0).
 * Throws TESSERA_ERR_CA_EXISTS if any CA file is already there.
 */
export async function initCa(opts: InitCaOptions): Promise<InitCaResult> {
  if (caExists(opts.dataDir)) throw new TesseraError("TESSERA_ERR_CA_EXISTS", { detail: caPaths(opts.dataDir).dir });
  const keyType = parseKeyType(opts.keyType);
  const now = opts.now ?? new Date();
  const start = new Date(Math.floor(now.getTime() / 1000) * 1000 - 3600_000);
  const rootKeys = await generateKeyPairAsync(keyType);
  const root = await createCaCertificate({
    subject: [{ type: "O", value: opts.organization }, { type: "CN", value: `${opts.name} Root CA` }],
    publicKey: rootKeys.publicKey,
    privateKey: rootKeys.privateKey,
    notBefore: start,
    notAfter: addYears(start, 10),
  });
  const issuerKeys = await generateKeyPairAsync(keyType);
  const issuer = await createCaCertificate({
    subject: [{ type: "O", value: opts.organization }, { type: "CN", value: `${opts.name} Issuing CA` }],
    publicKey: issuerKeys.publicKey,
    notBefore: start,
    notAfter: addYears(start, 5),
    pathLength: 0,
    issuer: { certificate: root, privateKey: rootKeys.privateKey },
  });
  const { passphrase, generated } = ensurePassphrase(opts.passphrase);
  writeFiles(opts.dataDir, passphrase, root, rootKeys.privateKey, issuer, issuerKeys.privateKey);
  return { material: { root, issuer: { certificate: issuer, privateKey: issuerKeys.privateKey } }, generatedPassphraseFile: generated };
}

function writeFiles(dataDir: string, passphrase: string, root: ParsedCertificate, rootKey: KeyObject | undefined, issuer: ParsedCertificate, issuerKey: KeyObject): void {
  const p = caPaths(dataDir);
  fs.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  if (rootKey) writeNew(p.rootKey, exportPrivateKey(rootKey, passphrase));
  writeNew(p.issuerKey, exportPrivateKey(issuerKey, passphrase));
  writeNew(p.root, pemEncode("CERTIFICATE", root.der));
  writeNew(p.issuer, pemEncode("CERTIFICATE", issuer.der));
  writeNew(p.chain, pemEncode("CERTIFICATE", issuer.der) + pemEncode("CERTIFICATE", root.der));
}

/** `d` plus whole calendar years (UTC). */
export function addYears(d: Date, years: number): Date {
  const out = new Date(d);
  out.setUTCFullYear(out.getUTCFullYear() + years);
  return out;
}

/** Options of `ca init --import-*`: an existing CA moves to Tessera with its devices. */
export interface ImportCaOptions {
  dataDir: string;
  passphrase: PassphraseSource;
  /** PEM of the issuing CA certificate (may be followed by its chain up to the root). */
  certificatePem: string;
  /** PEM of the issuing CA's private key (PKCS#8, SEC1 or PKCS#1; encrypted PKCS#8 with keyPassphrase). */
  keyPem: string;
  keyPassphrase?: string;
  /** PEM of the root, when not in certificatePem and the issuing CA is not itself the root. */
  rootPem?: string;
}

/** Imports an existing CA. Checks: CA:TRUE, key matches, chain signatures. */
export async function importCa(opts: ImportCaOptions): Promise<InitCaResult> {
  if (caExists(opts.dataDir)) throw new TesseraError("TESSERA_ERR_CA_EXISTS", { detail: caPaths(opts.dataDir).dir });
  const bad = (detail: string) => new TesseraError("TESSERA_ERR_CA_IMPORT", { detail });
  let certs: ParsedCertificate[];
  let key: KeyObject;
  try {
    certs = pemDecodeAll(opts.certificatePem + "\n" + (opts.rootPem ?? "")).filter((b) => b.label === "CERTIFICATE").map((b) => parseCertificate(b.der));
    key = importPrivateKey(opts.keyPem, opts.keyPassphrase);
  } catch (err) {
    throw bad(err instanceof PkiError ? `${err.message}: ${err.detail}` : String(err));
  }
  const issuer = certs[0];
  if (!issuer) throw bad("no CERTIFICATE block");
  if (!basicConstraints(issuer)?.ca) throw bad("issuing certificate is not a CA (basicConstraints CA:TRUE missing)");
  if (!keysMatch(key, certificatePublicKey(issuer))) throw bad("private key does not match the certificate");
  const root = certs.find((c) => c.subject.equals(c.issuer)) ?? (issuer.subject.equals(issuer.issuer) ? issuer : undefined);
  if (!root) throw bad("root certificate missing: pass it with --root");
  let cur = issuer;
  for (let hops = 0; !cur.subject.equals(root.subject) || !cur.der.equals(root.der); hops++) {
    const parent = certs.find((c) => c.subject.equals(cur.issuer));
    if (!parent || hops > 5 || !verifyCertificateSignature(cur, certificatePublicKey(parent))) {
      throw bad(`cannot verify ${formatName(cur.subject)} up to the root`);
    }
    if (parent === cur) break;
    cur = parent;
  }
  const { passphrase, generated } = ensurePassphrase(opts.passphrase);
  writeFiles(opts.dataDir, passphrase, root, undefined, issuer, key);
  return { material: { root, issuer: { certificate: issuer, privateKey: key } }, generatedPassphraseFile: generated };
}

/**
 * Loads the CA from the data directory, with the rollover certificates when
 * `ca/rollover/` holds them (checked, see loadRollover). Throws
 * TESSERA_ERR_CA_NOT_INITIALIZED or TESSERA_ERR_CA_KEY.
 */
export function loadCa(dataDir: string, passphrase: PassphraseSource): CaMaterial {
  const p = caPaths(dataDir);
  if (!fs.existsSync(p.issuer) || !fs.existsSync(p.issuerKey) || !fs.existsSync(p.root)) {
    throw new TesseraError("TESSERA_ERR_CA_NOT_INITIALIZED", { detail: p.dir });
  }
  const pass = readPassphrase(passphrase);
  if (pass === undefined) throw new TesseraError("TESSERA_ERR_CA_KEY", { message: "CA passphrase not found", detail: `set TESSERA_CA_PASSPHRASE or create ${passphrase.file}` });
  const root = parseCertificate(fs.readFileSync(p.root, "utf8"));
  const certificate = parseCertificate(fs.readFileSync(p.issuer, "utf8"));
  let privateKey: KeyObject;
  try {
    privateKey = importPrivateKey(fs.readFileSync(p.issuerKey, "utf8"), pass);
  } catch (err) {
    throw new TesseraError("TESSERA_ERR_CA_KEY", { message: err instanceof PkiError ? err.message : "CA key cannot be loaded", cause: err });
  }
  if (!keysMatch(privateKey, certificatePublicKey(certificate))) {
    throw new TesseraError("TESSERA_ERR_CA_KEY", { message: "CA key does not match the issuing certificate" });
  }
  const rollover = loadRollover(p.rollover, root);
  const rootKey = loadRootKey(p, root, certificate, privateKey, pass);
  return { root, issuer: { certificate, privateKey }, ...(rootKey ? { rootKey } : {}), ...(rollover ? { rollover } : {}) };
}

/**
 * The root's private key, for profiles that issue from the root (Caramel's
 * clients trust one self-signed CA and verify with its key): root.key.pem,
 * or the issuing key when the root issues itself (an imported single-level
 * CA). Undefined when neither is there (an imported CA without its root key).
 */
function loadRootKey(p: ReturnType<typeof caPaths>, root: ParsedCertificate, issuer: ParsedCertificate, issuerKey: KeyObject, pass: string): KeyObject | undefined {
  if (root.der.equals(issuer.der)) return issuerKey;
  if (!fs.existsSync(p.rootKey)) return undefined;
  let key: KeyObject;
  try {
    key = importPrivateKey(fs.readFileSync(p.rootKey, "utf8"), pass);
  } catch (err) {
    throw new TesseraError("TESSERA_ERR_CA_KEY", { message: err instanceof PkiError ? err.message : "root CA key cannot be loaded", detail: p.rootKey, cause: err });
  }
  if (!keysMatch(key, certificatePublicKey(root))) throw new TesseraError("TESSERA_ERR_CA_KEY", { message: "root CA key does not match root.pem", detail: p.rootKey });
  return key;
}

/**
 * Loads the rollover certificates when any of them exists, and checks that
 * they form the RFC 4210 §4.4 set around `root`: NewWithNew self-signed,
 * OldWithNew = the old root's name and key under the new root, NewWithOld =
 * the new root's name and key under the old root. A partial or inconsistent
 * set throws TESSERA_ERR_CA_KEY: clients given it would fail to verify.
 */
function loadRollover(p: ReturnType<typeof caPaths>["rollover"], root: ParsedCertificate): CaMaterial["rollover"] {
  const files = [p.newRoot, p.oldWithNew, p.newWithOld];
  const present = files.filter((f) => fs.existsSync(f));
  if (present.length === 0) return undefined;
  const broken = (detail: string) => new TesseraError("TESSERA_ERR_CA_KEY", { message: "root rollover certificates are inconsistent", detail: `${p.dir}: ${detail}` });
  if (present.length < files.length) throw broken(`missing ${files.filter((f) => !present.includes(f)).map((f) => path.basename(f)).join(", ")}`);
  let newRoot: ParsedCertificate, oldWithNew: ParsedCertificate, newWithOld: ParsedCertificate;
  try {
    [newRoot, oldWithNew, newWithOld] = files.map((f) => parseCertificate(fs.readFileSync(f, "utf8"))) as [ParsedCertificate, ParsedCertificate, ParsedCertificate];
  } catch (err) {
    throw broken(err instanceof PkiError ? `${err.message}: ${err.detail}` : String(err));
  }
  const oldKey = certificatePublicKey(root);
  const newKey = certificatePublicKey(newRoot);
  if (!newRoot.subject.equals(newRoot.issuer) || !verifyCertificateSignature(newRoot, newKey)) throw broken("new-root.pem is not a self-signed certificate");
  if (newRoot.spki.equals(root.spki) || newRoot.subject.equals(root.subject)) throw broken("new-root.pem has the current root's key or name");
  if (!oldWithNew.subject.equals(root.subject) || !oldWithNew.spki.equals(root.spki)) throw broken("old-with-new.pem does not certify the current root's name and key");
  if (!oldWithNew.issuer.equals(newRoot.subject) || !verifyCertificateSignature(oldWithNew, newKey)) throw broken("old-with-new.pem is not signed by the new root");
  if (!newWithOld.subject.equals(newRoot.subject) || !newWithOld.spki.equals(newRoot.spki)) throw broken("new-with-old.pem does not certify the new root's name and key");
  if (!newWithOld.issuer.equals(root.subject) || !verifyCertificateSignature(newWithOld, oldKey)) throw broken("new-with-old.pem is not signed by the current root");
  return { newRoot, oldWithNew, newWithOld };
}

/** Summary of a CA certificate for `ca show` and the start banner. */
export function describeCertificate(cert: ParsedCertificate) {
  return {
    subject: formatName(cert.subject),
    issuer: formatName(cert.issuer),
    serial: cert.serialHex,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    sha256: sha256Hex(cert.der),
  };
}
