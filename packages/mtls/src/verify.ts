/**
 * Peer certificate verification for mTLS, independent of any framework:
 * chain to a trusted root through known intermediates, validity at a given
 * time, CA constraints, optional EKU, and a revocation callback.
 */
import {
  basicConstraints, certificatePublicKey, extendedKeyUsages, parseCertificate, verifyCertificateSignature, type ParsedCertificate,
} from "@tessera/pki";

/** Outcome of verifying a peer. */
export type PeerResult =
  | { status: "verified"; certificate: ParsedCertificate; chain: ParsedCertificate[] }
  | { status: "absent" }
  | { status: "rejected"; reason: string; certificate?: ParsedCertificate };

/** What a verifier trusts and checks. */
export interface VerifyOptions {
  /** Trust anchors (self-signed roots, or any certificate to trust as an anchor). */
  roots: readonly ParsedCertificate[];
  /** Intermediates the server knows (clients usually send only their leaf). */
  intermediates?: readonly ParsedCertificate[];
  /** Required extended key usage OID of the leaf, e.g. clientAuth (1.3.6.1.5.5.7.3.2); an absent EKU passes. */
  requiredEku?: string;
  /** Returns true if the serial (lowercase hex) is revoked. */
  isRevoked?: (serialHex: string, certificate: ParsedCertificate) => boolean | Promise<boolean>;
  /** Verification time (default now). */
  at?: Date;
}

const ANY_EKU = "2.5.29.37.0";

/**
 * Verifies a leaf (DER) plus whatever chain the peer sent. Returns a
 * PeerResult; never throws for bad input.
 */
export async function verifyPeer(leafDer: Uint8Array | undefined, sentChain: readonly Uint8Array[], opts: VerifyOptions): Promise<PeerResult> {
  if (!leafDer || leafDer.length === 0) return { status: "absent" };
  let leaf: ParsedCertificate;
  try {
    leaf = parseCertificate(leafDer);
  } catch {
    return { status: "rejected", reason: "unparsable certificate" };
  }
  const at = (opts.at ?? new Date()).getTime();
  const pool: ParsedCertificate[] = [...(opts.intermediates ?? [])];
  for (const d of sentChain) {
    try {
      pool.push(parseCertificate(d));
    } catch {
      /* ignore junk the peer sent beyond its leaf */
    }
  }
  const reject = (reason: string): PeerResult => ({ status: "rejected", reason, certificate: leaf });
  if (at < leaf.notBefore.getTime()) return reject("certificate not yet valid");
  if (at > leaf.notAfter.getTime()) return reject("certificate expired");
  const eku = extendedKeyUsages(leaf);
  if (opts.requiredEku && eku && !eku.includes(opts.requiredEku) && !eku.includes(ANY_EKU)) return reject("certificate not valid for this purpose");

  const chain: ParsedCertificate[] = [leaf];
  let cur = leaf;
  for (let depth = 0; depth < 8; depth++) {
    const anchor = opts.roots.find((r) => r.subject.equals(cur.issuer) && verifyCertificateSignature(cur, certificatePublicKey(r)));
    if (anchor) {
      if (at > anchor.notAfter.getTime() || at < anchor.notBefore.getTime()) return reject("trust anchor outside its validity");
      if (opts.isRevoked && (await opts.isRevoked(leaf.serialHex, leaf))) return reject("certificate revoked");
      if (!anchor.der.equals(cur.der)) chain.push(anchor);
      return { status: "verified", certificate: leaf, chain };
    }
    const parent = pool.find((c) => c.subject.equals(cur.issuer) && !c.der.equals(cur.der) && verifyCertificateSignature(cur, certificatePublicKey(c)));
    if (!parent) return reject("certificate does not chain to a trusted CA");
    if (!basicConstraints(parent)?.ca) return reject("issuer is not a CA");
    if (at > parent.notAfter.getTime() || at < parent.notBefore.getTime()) return reject("issuer outside its validity");
    chain.push(parent);
    cur = parent;
  }
  return reject("chain too long");
}
