/**
 * Key generation, import/export and the signature algorithm that goes with
 * each key type. Built on node:crypto (KeyObject), which is also what signs
 * on the hot path.
 */
import * as crypto from "node:crypto";
import { encodeOid, readTlv, tlv, Tag } from "./der.js";
import { PkiError } from "./errors.js";

/** Key types Tessera generates and accepts. */
export type KeyType = "ec-p256" | "ec-p384" | "ec-p521" | "ec-p224" | "ed25519" | "rsa-2048" | "rsa-3072" | "rsa-4096";

/** Key types the `keyType` option of generateKeyPair accepts (EC P-256 is the default). */
export const GENERATABLE_KEY_TYPES: readonly KeyType[] = ["ec-p256", "ec-p384", "ec-p521", "ec-p224", "ed25519", "rsa-2048", "rsa-3072", "rsa-4096"];

/** What a public key is: family, curve or modulus size. */
export interface KeyInfo {
  /** "ec", "ed25519" or "rsa". */
  family: "ec" | "ed25519" | "rsa";
  /** Named curve for EC keys ("P-256", "P-384", "P-521", "P-224"). */
  curve?: string;
  /** Key size in bits (modulus for RSA, field size for EC, 256 for Ed25519). */
  bits: number;
}

const CURVES: Record<string, { name: string; bits: number; hash: string; sigOid: string }> = {
  prime256v1: { name: "P-256", bits: 256, hash: "sha256", sigOid: "1.2.840.10045.4.3.2" },
  secp384r1: { name: "P-384", bits: 384, hash: "sha384", sigOid: "1.2.840.10045.4.3.3" },
  secp521r1: { name: "P-521", bits: 521, hash: "sha512", sigOid: "1.2.840.10045.4.3.4" },
  secp224r1: { name: "P-224", bits: 224, hash: "sha256", sigOid: "1.2.840.10045.4.3.2" },
};

const NODE_CURVE: Record<string, string> = { "ec-p256": "prime256v1", "ec-p384": "secp384r1", "ec-p521": "secp521r1", "ec-p224": "secp224r1" };

/** Generates a key pair of the given type (default EC P-256). */
export function generateKeyPair(type: KeyType = "ec-p256"): { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject } {
  if (type in NODE_CURVE) return crypto.generateKeyPairSync("ec", { namedCurve: NODE_CURVE[type]! });
  if (type === "ed25519") return crypto.generateKeyPairSync("ed25519");
  const m = /^rsa-(2048|3072|4096)$/.exec(type);
  if (m) return crypto.generateKeyPairSync("rsa", { modulusLength: Number(m[1]), publicExponent: 0x10001 });
  throw new PkiError("TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM", "unsupported key type", type);
}

/** Async variant of generateKeyPair (runs in the thread pool; RSA 4096 takes seconds). */
export function generateKeyPairAsync(type: KeyType = "ec-p256"): Promise<{ privateKey: crypto.KeyObject; publicKey: crypto.KeyObject }> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: crypto.KeyObject, privateKey: crypto.KeyObject) =>
      err ? reject(err) : resolve({ publicKey, privateKey });
    if (type in NODE_CURVE) crypto.generateKeyPair("ec", { namedCurve: NODE_CURVE[type]! }, done);
    else if (type === "ed25519") crypto.generateKeyPair("ed25519", {}, done);
    else {
      const m = /^rsa-(2048|3072|4096)$/.exec(type);
      if (!m) return reject(new PkiError("TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM", "unsupported key type", type));
      crypto.generateKeyPair("rsa", { modulusLength: Number(m[1]), publicExponent: 0x10001 }, done);
    }
  });
}

/** Parses a key type name such as "ec-p256", "P-384", "ed25519" or "rsa-3072". */
export function parseKeyType(name: string): KeyType {
  const n = name.trim().toLowerCase().replace(/_/g, "-");
  const aliases: Record<string, KeyType> = {
    "ec-p256": "ec-p256", "p-256": "ec-p256", p256: "ec-p256", ec: "ec-p256", ecdsa: "ec-p256", prime256v1: "ec-p256",
    "ec-p384": "ec-p384", "p-384": "ec-p384", p384: "ec-p384", secp384r1: "ec-p384",
    "ec-p521": "ec-p521", "p-521": "ec-p521", p521: "ec-p521",
    "ec-p224": "ec-p224", "p-224": "ec-p224",
    ed25519: "ed25519",
    "rsa-2048": "rsa-2048", rsa: "rsa-2048", "rsa-3072": "rsa-3072", "rsa-4096": "rsa-4096",
  };
  const t = aliases[n];
  if (!t) throw new PkiError("TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM", "unsupported key type", name);
  return t;
}

/** Describes a public or private key: family, curve, size. */
export function keyInfo(key: crypto.KeyObject): KeyInfo {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === "ec") {
    const curve = CURVES[details.namedCurve ?? ""];
    if (!curve) throw new PkiError("TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM", "unsupported algorithm", `EC curve ${details.namedCurve}`);
    return { family: "ec", curve: curve.name, bits: curve.bits };
  }
  if (type === "ed25519") return { family: "ed25519", bits: 256 };
  if (type === "rsa") return { family: "rsa", bits: details.modulusLength ?? 0 };
  throw new PkiError("TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM", "unsupported algorithm", `key type ${type}`);
}

/** Short name of a key, e.g. "ec-p256", "rsa-2048", "ed25519" (used in stores and logs). */
export function keyTypeName(info: KeyInfo): string {
  if (info.family === "ec") return `ec-${info.curve!.toLowerCase().replace("-", "")}`;
  if (info.family === "rsa") return `rsa-${info.bits}`;
  return "ed25519";
}

/** How a given key signs: node:crypto digest name (null for Ed25519) and the DER AlgorithmIdentifier. */
export interface SignatureAlgorithm {
  /** Digest passed to crypto.sign (null for Ed25519, which hashes internally). */
  hash: string | null;
  /** DER AlgorithmIdentifier for the signature, as it appears in certificates and CRLs. */
  algorithmIdentifier: Buffer;
  /** Dotted OID of the signature algorithm. */
  oid: string;
}

/**
 * The signature algorithm a CA key signs with: ECDSA with the curve's matching
 * SHA-2 (RFC 5758 §3.2; parameters absent), Ed25519 (RFC 8410), or
 * sha256WithRSAEncryption (RFC 4055, NULL parameters).
 */
export function signatureAlgorithmFor(key: crypto.KeyObject): SignatureAlgorithm {
  const info = keyInfo(key);
  if (info.family === "ec") {
    const c = Object.values(CURVES).find((v) => v.name === info.curve)!;
    return { hash: c.hash, oid: c.sigOid, algorithmIdentifier: tlv(Tag.SEQUENCE, encodeOid(c.sigOid)) };
  }
  if (info.family === "ed25519") {
    return { hash: null, oid: "1.3.101.112", algorithmIdentifier: tlv(Tag.SEQUENCE, encodeOid("1.3.101.112")) };
  }
  const oid = "1.2.840.113549.1.1.11";
  return { hash: "sha256", oid, algorithmIdentifier: tlv(Tag.SEQUENCE, encodeOid(oid), Uint8Array.of(Tag.NULL, 0)) };
}

/** DER SubjectPublicKeyInfo of a key (public, or the public half of a private key). */
export function spkiDer(key: crypto.KeyObject): Buffer {
  const pub = key.type === "private" ? crypto.createPublicKey(key) : key;
  return pub.export({ format: "der", type: "spki" });
}

/** Imports a private key from PEM or DER (PKCS#8, SEC1, PKCS#1; encrypted PKCS#8 with a passphrase). */
export function importPrivateKey(data: string | Uint8Array, passphrase?: string): crypto.KeyObject {
  try {
    if (typeof data === "string" || Buffer.from(data.subarray(0, 11)).toString("latin1") === "-----BEGIN ") {
      const pem = typeof data === "string" ? data : Buffer.from(data).toString("latin1");
      return crypto.createPrivateKey({ key: pem, format: "pem", passphrase });
    }
    return crypto.createPrivateKey({ key: Buffer.from(data), format: "der", type: "pkcs8", passphrase });
  } catch (err) {
    const msg = String((err as Error).message);
    // A wrong passphrase leaves valid CBC padding about 1 time in 256; the garbage
    // plaintext then fails to decode ("DECODER routines::unsupported"), which is
    // still a wrong passphrase, not an unreadable key.
    if (/bad decrypt|passphrase|interrupted or cancelled/i.test(msg) || (passphrase !== undefined && isEncryptedKey(data))) {
      throw new PkiError("TESSERA_ERR_PKI_BAD_PASSPHRASE", "wrong passphrase for private key", msg, { cause: err });
    }
    throw new PkiError("TESSERA_ERR_PKI_MALFORMED_PEM", "unreadable private key", msg, { cause: err });
  }
}

/** True for encrypted PKCS#8 (PEM or DER EncryptedPrivateKeyInfo) and legacy "Proc-Type: 4,ENCRYPTED" PEM. */
function isEncryptedKey(data: string | Uint8Array): boolean {
  if (typeof data !== "string" && Buffer.from(data.subarray(0, 11)).toString("latin1") !== "-----BEGIN ") {
    try {
      const outer = readTlv(data, 0);
      return outer.tag === Tag.SEQUENCE && readTlv(data, outer.valueStart, outer.end).tag === Tag.SEQUENCE;
    } catch {
      return false;
    }
  }
  const text = typeof data === "string" ? data : Buffer.from(data).toString("latin1");
  return /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4, *ENCRYPTED/.test(text);
}

/**
 * Exports a private key as PKCS#8 PEM, encrypted with AES-256-CBC under
 * PBES2 (scrypt is not used: OpenSSL 1.1 clients could not read it) when a passphrase is given.
 */
export function exportPrivateKey(key: crypto.KeyObject, passphrase?: string): string {
  if (passphrase !== undefined) {
    return key.export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase }) as string;
  }
  return key.export({ format: "pem", type: "pkcs8" }) as string;
}

/** True if `privateKey` and `publicKey` are the two halves of one key pair. */
export function keysMatch(privateKey: crypto.KeyObject, publicKey: crypto.KeyObject): boolean {
  return spkiDer(privateKey).equals(spkiDer(publicKey));
}

/** Signs `data` with `key` using the key's signature algorithm (async: runs in the thread pool). */
export function signAsync(alg: SignatureAlgorithm, data: Uint8Array, key: crypto.KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    crypto.sign(alg.hash, data, key, (err, sig) => (err ? reject(err) : resolve(sig)));
  });
}

/** Signs `data` with `key` synchronously. */
export function signSync(alg: SignatureAlgorithm, data: Uint8Array, key: crypto.KeyObject): Buffer {
  return crypto.sign(alg.hash, data, key);
}
