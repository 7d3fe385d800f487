/**
 * Verification of the tier-2 challenge proof (spec §5): a signature by the
 * expired certificate's key over M = server_id "\n" fingerprint "\n" csr,
 * where csr is exactly the JSON string received. ECDSA signs SHA-256(M) and
 * sends ASN.1 DER; Ed25519 signs the 32-byte digest itself, not M. The proof
 * is standard base64 with padding; other encodings and raw r‖s signatures are
 * refused, as the original refuses them.
 */
import { createHash, verify, type KeyObject } from "node:crypto";

/** The signed message M. */
export function challengeMessage(serverId: string, fingerprint: string, csr: string): Buffer {
  return Buffer.from(`${serverId}\n${fingerprint}\n${csr}`, "utf8");
}

/** Decodes standard padded base64 (line breaks ignored, as Go's decoder does); undefined for anything else. */
function strictBase64(text: string): Buffer | undefined {
  const s = text.replace(/[\r\n]/g, "");
  if (s.length === 0 || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  return Buffer.from(s, "base64");
}

/** True if `proof` is a valid signature by `publicKey` over the challenge for these values. */
export function verifyChallengeProof(publicKey: KeyObject, serverId: string, fingerprint: string, csr: string, proof: string): boolean {
  const signature = strictBase64(proof);
  if (!signature) return false;
  const message = challengeMessage(serverId, fingerprint, csr);
  try {
    if (publicKey.asymmetricKeyType === "ec") return verify("sha256", message, { key: publicKey, dsaEncoding: "der" }, signature);
    if (publicKey.asymmetricKeyType === "ed25519") return verify(null, createHash("sha256").update(message).digest(), publicKey, signature);
  } catch {
    // A malformed DER signature throws in OpenSSL; it is simply not a valid proof.
    return false;
  }
  return false;
}
