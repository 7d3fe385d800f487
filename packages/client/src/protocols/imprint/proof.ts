/**
 * The Tier 2 (challenge renewal) proof of possession, imprint spec §5:
 * M = server_id "\n" fingerprint "\n" csr, D = SHA-256(M); ECDSA keys sign
 * D as an ASN.1 DER signature (standard ECDSA-SHA256 over M), Ed25519 keys
 * sign the 32 bytes of D; the proof is padded standard base64.
 */
import * as crypto from "node:crypto";
import { ImprintError } from "./errors.js";

const STD_BASE64_PADDED = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The signed message M: UTF-8 of `serverId + "\n" + fingerprint + "\n" + csrPem`, the CSR exactly as sent (nothing appended). */
export function challengeMessage(serverId: string, fingerprint: string, csrPem: string): Buffer {
  return Buffer.from(`${serverId}\n${fingerprint}\n${csrPem}`, "utf8");
}

/** D = SHA-256(M), 32 bytes. */
export function challengeDigest(message: Uint8Array): Buffer {
  return crypto.createHash("sha256").update(message).digest();
}

/**
 * Signs M with the stored key and returns padded standard base64: DER
 * ECDSA-SHA256 for EC keys, Ed25519 over D for Ed25519 keys. Throws
 * ImprintError "unsupported-key" (`unsupported key type for proof signing: <type>`) otherwise.
 */
export function signProof(privateKey: crypto.KeyObject, message: Uint8Array): string {
  const type = privateKey.asymmetricKeyType;
  if (type === "ec") return crypto.sign("sha256", message, { key: privateKey, dsaEncoding: "der" }).toString("base64");
  // Go's ed25519 Signer is handed D, not M, so D is what gets signed.
  if (type === "ed25519") return crypto.sign(null, challengeDigest(message), privateKey).toString("base64");
  throw new ImprintError("unsupported-key", `unsupported key type for proof signing: ${type ?? privateKey.type}`);
}

/**
 * Checks a proof as imprint's server does: padded standard base64 only
 * (unpadded and URL-safe are refused), DER ECDSA signatures only (raw r‖s is
 * refused), Ed25519 over D; false for any other key type or malformed input.
 */
export function verifyProof(publicKey: crypto.KeyObject, message: Uint8Array, proofB64: string): boolean {
  if (proofB64 === "" || !STD_BASE64_PADDED.test(proofB64)) return false;
  const signature = Buffer.from(proofB64, "base64");
  try {
    if (publicKey.asymmetricKeyType === "ec") return crypto.verify("sha256", message, { key: publicKey, dsaEncoding: "der" }, signature);
    if (publicKey.asymmetricKeyType === "ed25519") return crypto.verify(null, challengeDigest(message), publicKey, signature);
  } catch {
    // malformed signature
  }
  return false;
}
