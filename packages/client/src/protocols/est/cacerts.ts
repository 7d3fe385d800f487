/**
 * The /cacerts bag (RFC 7030 §4.1.3, spec est.md §5.2): which certificate is
 * the trust anchor and which are the RFC 4210 §4.4 root key rollover
 * certificates, classified the way the Go client (thales-e-security) does.
 */
import {
  certificatePublicKey, parseCertificate, pemEncode, readCmsCertificates, sha256Hex, verifyCertificateSignature, type ParsedCertificate,
} from "@tessera/pki";
import { EstError } from "./errors.js";

/**
 * What a certificate is in the bag: "trust-anchor" (self-signed, the later
 * notAfter: NewWithNew in a rollover), "old-with-old" (the other self-signed
 * root), "new-with-old" (the new root key signed by the old), "old-with-new"
 * (the old root key signed by the new), "chain" (everything else: issuing CAs).
 */
export type EstCaRole = "trust-anchor" | "old-with-old" | "new-with-old" | "old-with-new" | "chain";

/** One certificate out of an EST answer. */
export interface EstCertificate {
  der: Buffer;
  /** PEM "CERTIFICATE". */
  pem: string;
  certificate: ParsedCertificate;
  /** SHA-256 of the DER, lowercase hex without colons. */
  sha256: string;
}

/** A classified certificate of the /cacerts bag. */
export interface EstCaCertificate extends EstCertificate {
  role: EstCaRole;
}

/** The /cacerts answer, classified (§5.2). */
export interface EstCaCerts {
  /** Every certificate in the server's order. */
  certificates: EstCaCertificate[];
  /** The current root: self-signed, the later notAfter of at most two. */
  trustAnchor: EstCaCertificate;
  oldWithOld?: EstCaCertificate;
  newWithOld?: EstCaCertificate;
  oldWithNew?: EstCaCertificate;
  /** The rest (intermediate and issuing CAs), in the server's order. */
  chain: EstCaCertificate[];
  /** All certificates as one PEM bundle, in the server's order (what ca.crt holds). */
  pem: string;
}

/** Wraps DER as an EstCertificate. Throws PkiError when it does not parse. */
export function estCertificate(der: Uint8Array): EstCertificate {
  const buf = Buffer.from(der);
  return { der: buf, pem: pemEncode("CERTIFICATE", buf), certificate: parseCertificate(buf), sha256: sha256Hex(buf) };
}

/** True when `cert` is signed by the key of `issuer` (false for keys node:crypto cannot use). */
export function signedBy(cert: ParsedCertificate, issuer: ParsedCertificate): boolean {
  try {
    return verifyCertificateSignature(cert, certificatePublicKey(issuer));
  } catch {
    return false;
  }
}

/** Issuer equals subject and the certificate verifies with its own key. */
export function isSelfSigned(cert: ParsedCertificate): boolean {
  return cert.issuer.equals(cert.subject) && signedBy(cert, cert);
}

/**
 * Classifies the certificates of a bag (DER, in order). Throws EstError
 * "protocol" for a bag without a self-signed certificate or with more than
 * two, or with a certificate that does not parse.
 */
export function classifyCaCerts(ders: readonly Uint8Array[]): EstCaCerts {
  let certs: EstCaCertificate[];
  try {
    certs = ders.map((d) => ({ ...estCertificate(d), role: "chain" as EstCaRole }));
  } catch (err) {
    throw new EstError("protocol", `cacerts: a certificate does not parse: ${(err as Error).message}`, { cause: err });
  }
  const roots = certs.filter((c) => isSelfSigned(c.certificate));
  if (roots.length === 0) throw new EstError("protocol", "cacerts: no self-signed certificate (trust anchor) in the bag");
  if (roots.length > 2) throw new EstError("protocol", `cacerts: ${roots.length} self-signed certificates in the bag; at most two (old and new root) are allowed`);
  // The later notAfter is the current root; on a tie the first one stays (as the Go client).
  const [ta, old] = roots.length === 2 && roots[1]!.certificate.notAfter > roots[0]!.certificate.notAfter ? [roots[1]!, roots[0]!] : [roots[0]!, roots[1]];
  ta.role = "trust-anchor";
  const out: EstCaCerts = { certificates: certs, trustAnchor: ta, chain: [], pem: certs.map((c) => c.pem).join("") };
  if (old) {
    old.role = "old-with-old";
    out.oldWithOld = old;
  }
  for (const c of certs) {
    if (c.role !== "chain") continue;
    if (old && !out.newWithOld && c.certificate.spki.equals(ta.certificate.spki) && c.certificate.issuer.equals(old.certificate.subject) && signedBy(c.certificate, old.certificate)) {
      c.role = "new-with-old";
      out.newWithOld = c;
    } else if (old && !out.oldWithNew && c.certificate.spki.equals(old.certificate.spki) && c.certificate.issuer.equals(ta.certificate.subject) && signedBy(c.certificate, ta.certificate)) {
      c.role = "old-with-new";
      out.oldWithNew = c;
    } else {
      out.chain.push(c);
    }
  }
  return out;
}

/** Reads and classifies a /cacerts certs-only CMS (DER). Throws EstError "protocol". */
export function parseCaCertsResponse(der: Uint8Array): EstCaCerts {
  let ders: Buffer[];
  try {
    ders = readCmsCertificates(der);
  } catch (err) {
    throw new EstError("protocol", `cacerts: not a certs-only CMS: ${(err as Error).message}`, { cause: err });
  }
  return classifyCaCerts(ders);
}
