/**
 * The revocation-source port: anything that can say whether a certificate is
 * revoked (a CRL, a live feed, a database in the caller's own code). The
 * verifier asks every source on every request, so `check` is synchronous and
 * must answer from memory.
 */
import type { ParsedCertificate } from "@tessera/pki";

/** What a source knows about one certificate. */
export type RevocationStatus =
  /** The source covers the certificate's issuer and does not list it. */
  | { status: "good" }
  | { status: "revoked"; revokedAt?: Date; reason?: string }
  /** The source covers the issuer but cannot answer now (CRL past nextUpdate + grace). */
  | { status: "unknown"; detail: string }
  /** The source has nothing to say about this issuer (no CRL for it; a feed that does not list the serial). */
  | { status: "not-covered" };

/** A revocation source consulted by the verifier. */
export interface RevocationSource {
  /**
   * Status of `certificate`, issued by `issuer` (the next certificate of the
   * verified chain), at time `at`. Answers from memory; never throws.
   */
  check(certificate: ParsedCertificate, issuer: ParsedCertificate, at: Date): RevocationStatus;
  /** Settles once the source has made its first attempt to load; rejects if that attempt failed. */
  ready(): Promise<void>;
  /** Stops timers and connections. */
  close(): void;
  /** True for sources that give complete answers for the issuers they cover (CRLs); a leaf no such source covers is refused. */
  readonly authoritative: boolean;
}
