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

// Work that depends only on the configured trust (the same ParsedCertificate objects on every
// call, e.g. a server's roots and intermediates) is done once per object: importing a public key
// costs more than verifying a signature with it (OpenSSL 3's decoders), and the intermediate's
// signature by the root does not change between handshakes. Keyed by object identity, so the
// entries go when the certificates do; a certificate the peer sends is a new object each time
// and never hits. ParsedCertificate objects are not mutated anywhere; `spki`/`tbs` identity is
// checked anyway.
const publicKeys = new WeakMap<ParsedCertificate, { spki: Buffer; key: ReturnType<typeof certificatePublicKey> }>();
const verifiedBy = new WeakMap<ParsedCertificate, WeakMap<ParsedCertificate, Buffer>>();

function publicKeyOf(c: ParsedCertificate): ReturnType<typeof certificatePublicKey> {
  const hit = publicKeys.get(c);
  if (hit && hit.spki === c.spki) return hit.key;
  const key = certificatePublicKey(c);
  publicKeys.set(c, { spki: c.spki, key });
  return key;
}

/** Whether `issuer`'s key signed `cert`; a success between two trusted (configured) certificates is remembered. */
function signedBy(cert: ParsedCertificate, issuer: ParsedCertificate, remember: boolean): boolean {
  const known = verifiedBy.get(cert)?.get(issuer);
  if (known !== undefined && known === cert.tbs) return true;
  if (!verifyCertificateSignature(cert, publicKeyOf(issuer))) return false;
  if (remember) {
    let m = verifiedBy.get(cert);
    if (!m) verifiedBy.set(cert, (m = new WeakMap()));
    m.set(issuer, cert.tbs);
  }
  return true;
}

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
  // Configured intermediates before what the peer sent: the first match wins, so a chain that
  // verifies without the sent certificates verifies the same with them (the server's peer.ts relies on it).
  const pool: ParsedCertificate[] = [...(opts.intermediates ?? [])];
  const configured = new Set<ParsedCertificate>(pool);
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
    const trusted = configured.has(cur);
    const anchor = opts.roots.find((r) => r.subject.equals(cur.issuer) && signedBy(cur, r, trusted));
    if (anchor) {
      if (at > anchor.notAfter.getTime() || at < anchor.notBefore.getTime()) return reject("trust anchor outside its validity");
      if (opts.isRevoked && (await opts.isRevoked(leaf.serialHex, leaf))) return reject("certificate revoked");
      if (!anchor.der.equals(cur.der)) chain.push(anchor);
      return { status: "verified", certificate: leaf, chain };
    }
    const parent = pool.find((c) => c.subject.equals(cur.issuer) && !c.der.equals(cur.der) && signedBy(cur, c, trusted && configured.has(c)));
    if (!parent) return reject("certificate does not chain to a trusted CA");
    if (!basicConstraints(parent)?.ca) return reject("issuer is not a CA");
    if (at > parent.notAfter.getTime() || at < parent.notBefore.getTime()) return reject("issuer outside its validity");
    chain.push(parent);
    cur = parent;
  }
  return reject("chain too long");
}
