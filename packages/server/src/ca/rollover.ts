/**
 * Root CA rollover (RFC 4210 §4.4): a new self-signed root (NewWithNew) and
 * the two cross certificates that let clients trusting either root build a
 * path through the other (OldWithNew, NewWithOld). EST /cacerts serves all
 * of them (RFC 7030 §4.1.3); switching the issuing CA to the new root is a
 * later, separate step. Files: `<dataDir>/ca/rollover/`, see caPaths().
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes, type KeyObject } from "node:crypto";
import {
  certificatePublicKey, createCaCertificate, decodeName, encodeName, exportPrivateKey, generateKeyPairAsync, importPrivateKey,
  keyInfo, keyTypeName, keysMatch, parseCertificate, parseKeyType, pemEncode, PkiError,
  type NameAttribute,
} from "@tessera/pki";
import { TesseraError } from "../errors.js";
import type { CaMaterial } from "../authority/authority.js";
import { addYears, caPaths, readPassphrase, writeNew, type PassphraseSource } from "./ca-files.js";

/** Options of createRollover. */
export interface RolloverOptions {
  dataDir: string;
  /** Where the CA key passphrase comes from; the new root's key is encrypted with the same one. */
  passphrase: PassphraseSource;
  /** Key type of the new root ("ec-p384", "rsa-3072", …); default: the current root's type. */
  keyType?: string;
  /** Issuance time (default now); certificates start one hour earlier to absorb clock skew. */
  now?: Date;
}

/** What createRollover made and where it put it. */
export interface RolloverResult {
  rollover: NonNullable<CaMaterial["rollover"]>;
  paths: ReturnType<typeof caPaths>["rollover"];
}

/**
 * Creates the rollover set from the current root and its key (root.key.pem):
 * a new key and self-signed root for 10 years (always ending after the old
 * root, so clients pick it as the trust anchor), OldWithNew (the old root's
 * name and key, signed by the new root) and NewWithOld (the new root's name
 * and key, signed by the old root); both cross certificates end when the old
 * root does. Files are written 0600 into a fresh directory renamed into place,
 * so a crash leaves no half set. Throws TESSERA_ERR_CA_ROLLOVER when a
 * rollover already exists, the root key is absent (imported CA) or the root
 * has expired; TESSERA_ERR_CA_KEY when the root key cannot be decrypted or
 * does not match root.pem; TESSERA_ERR_CA_NOT_INITIALIZED without a CA.
 */
export async function createRollover(opts: RolloverOptions): Promise<RolloverResult> {
  const p = caPaths(opts.dataDir);
  const refuse = (message: string, detail?: string) => new TesseraError("TESSERA_ERR_CA_ROLLOVER", { message, detail });
  if (!fs.existsSync(p.root)) throw new TesseraError("TESSERA_ERR_CA_NOT_INITIALIZED", { detail: p.dir });
  if (fs.existsSync(p.rollover.dir)) {
    throw refuse("a root rollover already exists (one at a time)", p.rollover.dir);
  }
  // An imported CA that is its own root (liteboot's) keeps its one key as the issuing CA's key.
  const rootIsIssuer = fs.existsSync(p.issuer) && fs.readFileSync(p.issuer, "utf8") === fs.readFileSync(p.root, "utf8");
  const rootKeyFile = !fs.existsSync(p.rootKey) && rootIsIssuer ? p.issuerKey : p.rootKey;
  if (!fs.existsSync(rootKeyFile)) {
    throw refuse("the root CA's private key is not available (imported CA?): a rollover needs it to sign the new root's cross certificate", `${p.rootKey} not found`);
  }
  const passphrase = readPassphrase(opts.passphrase);
  if (passphrase === undefined) throw new TesseraError("TESSERA_ERR_CA_KEY", { message: "CA passphrase not found", detail: `set TESSERA_CA_PASSPHRASE or create ${opts.passphrase.file}` });
  const oldRoot = parseCertificate(fs.readFileSync(p.root, "utf8"));
  let oldKey: KeyObject;
  try {
    oldKey = importPrivateKey(fs.readFileSync(rootKeyFile, "utf8"), passphrase);
  } catch (err) {
    throw new TesseraError("TESSERA_ERR_CA_KEY", { message: err instanceof PkiError ? err.message : "root CA key cannot be loaded", detail: rootKeyFile, cause: err });
  }
  if (!keysMatch(oldKey, certificatePublicKey(oldRoot))) throw new TesseraError("TESSERA_ERR_CA_KEY", { message: "root CA key does not match root.pem", detail: rootKeyFile });

  const now = opts.now ?? new Date();
  if (oldRoot.notAfter.getTime() <= now.getTime()) {
    throw refuse("the current root has expired: cross certificates cannot outlive it, create a new CA instead", `notAfter ${oldRoot.notAfter.toISOString()}`);
  }
  const keyType = parseKeyType(opts.keyType ?? keyTypeName(keyInfo(oldKey)));
  const start = new Date(Math.floor(now.getTime() / 1000) * 1000 - 3600_000);
  // EST clients take the self-signed root with the later notAfter as the trust anchor (est.md §5.2): never tie.
  const minEnd = oldRoot.notAfter.getTime() + 86_400_000;
  const newEnd = new Date(Math.max(addYears(start, 10).getTime(), minEnd));
  const crossEnd = oldRoot.notAfter;

  const newKeys = await generateKeyPairAsync(keyType);
  const newRoot = await createCaCertificate({
    subject: nextGenerationName(decodeName(oldRoot.subject)),
    publicKey: newKeys.publicKey,
    privateKey: newKeys.privateKey,
    notBefore: start,
    notAfter: newEnd,
  });
  const oldWithNew = await createCaCertificate({
    subject: oldRoot.subject,
    publicKey: certificatePublicKey(oldRoot),
    notBefore: start,
    notAfter: crossEnd,
    issuer: { certificate: newRoot, privateKey: newKeys.privateKey },
  });
  const newWithOld = await createCaCertificate({
    subject: newRoot.subject,
    publicKey: newKeys.publicKey,
    notBefore: start,
    notAfter: crossEnd,
    issuer: { certificate: oldRoot, privateKey: oldKey },
  });

  // Build the set in a private sibling directory and rename it into place: rename fails if
  // another rollover won the race, and a crash never leaves a partial set that loadCa would refuse.
  const tmp = path.join(p.dir, `.rollover-${randomBytes(6).toString("hex")}`);
  fs.mkdirSync(tmp, { mode: 0o700 });
  try {
    const inTmp = (f: string) => path.join(tmp, path.basename(f));
    writeNew(inTmp(p.rollover.newRootKey), exportPrivateKey(newKeys.privateKey, passphrase));
    writeNew(inTmp(p.rollover.newRoot), pemEncode("CERTIFICATE", newRoot.der));
    writeNew(inTmp(p.rollover.oldWithNew), pemEncode("CERTIFICATE", oldWithNew.der));
    writeNew(inTmp(p.rollover.newWithOld), pemEncode("CERTIFICATE", newWithOld.der));
    fs.renameSync(tmp, p.rollover.dir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST") throw refuse("a root rollover already exists (one at a time)", p.rollover.dir);
    throw err;
  }
  return { rollover: { newRoot, oldWithNew, newWithOld }, paths: p.rollover };
}

/**
 * The new root's name: the old one with a generation suffix on its last CN
 * ("Tessera Root CA" → "… G2", "… G2" → "… G3"), so the two roots' names
 * differ and path builders never confuse them.
 */
export function nextGenerationName(attrs: readonly NameAttribute[]): Buffer {
  const out = attrs.map((a) => ({ ...a }));
  const cn = out.map((a) => a.type).lastIndexOf("CN");
  if (cn < 0) return encodeName([...out, { type: "CN", value: "Root CA G2" }]);
  const m = /^(.*\S)\s+G(\d+)$/.exec(out[cn]!.value);
  out[cn]!.value = m ? `${m[1]} G${Number(m[2]) + 1}` : `${out[cn]!.value} G2`;
  return encodeName(out);
}
