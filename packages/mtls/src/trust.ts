/**
 * Trusted CA bundles: read from PEM text or files, split into trust anchors
 * and intermediates, and turned into the TLS server options that make Node
 * ask for a client certificate without refusing the handshake.
 */
import * as fs from "node:fs";
import { certificatePublicKey, parseCertificate, pemDecodeAll, pemEncode, verifyCertificateSignature, type ParsedCertificate } from "@tessera/pki";
import { MtlsError } from "./errors.js";

/** PEM text, or a path to a PEM file; several may be given. */
export type PemSource = string | readonly string[];

function pemText(item: string, what: string): string {
  if (item.includes("-----BEGIN ")) return item;
  try {
    return fs.readFileSync(item, "utf8");
  } catch (err) {
    throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", `${what}: cannot read ${item}`, { cause: err });
  }
}

/**
 * Reads every CERTIFICATE block of PEM text or files (a string that contains
 * "-----BEGIN " is PEM text, anything else a file path). Throws
 * TESSERA_ERR_MTLS_CONFIG when a file is unreadable, a block is not a
 * certificate, or nothing is found.
 */
export function loadCertificates(source: PemSource, what = "ca"): ParsedCertificate[] {
  const out: ParsedCertificate[] = [];
  for (const item of typeof source === "string" ? [source] : source) {
    for (const block of pemDecodeAll(pemText(item, what))) {
      if (block.label !== "CERTIFICATE" && block.label !== "TRUSTED CERTIFICATE") continue;
      try {
        out.push(parseCertificate(block.der));
      } catch (err) {
        throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", `${what}: unreadable certificate`, { cause: err });
      }
    }
  }
  if (out.length === 0) throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", `${what}: no certificate found`);
  return out;
}

function isSelfSigned(c: ParsedCertificate): boolean {
  return c.subject.equals(c.issuer) && verifyCertificateSignature(c, certificatePublicKey(c));
}

/**
 * Splits a bundle into trust anchors and intermediates. Anchors are the
 * self-signed certificates and those whose issuer is not in the bundle (an
 * operator who lists only an issuing CA trusts it as the anchor); the rest
 * are intermediates, used to complete chains but never trusted on their own.
 */
export function splitTrust(certs: readonly ParsedCertificate[]): { roots: ParsedCertificate[]; intermediates: ParsedCertificate[] } {
  const roots: ParsedCertificate[] = [];
  const intermediates: ParsedCertificate[] = [];
  for (const c of certs) {
    const issuerInBundle = certs.some((o) => o !== c && o.subject.equals(c.issuer) && verifyCertificateSignature(c, certificatePublicKey(o)));
    (isSelfSigned(c) || !issuerInBundle ? roots : intermediates).push(c);
  }
  return { roots, intermediates };
}

/** TLS server options for mTLS: spread into `https.createServer` (or Fastify's `https`) options. */
export interface MtlsServerOptions {
  requestCert: true;
  rejectUnauthorized: false;
  /** The CA certificates as PEM, one string each (named in the TLS CertificateRequest). */
  ca: string[];
}

/**
 * Returns `{ requestCert: true, rejectUnauthorized: false, ca }` for
 * `https.createServer`: Node asks the client for a certificate issued by one
 * of `ca` (PEM text or file path) but lets the handshake finish either way,
 * so the guard can answer a missing or bad certificate with a JSON 401/403
 * instead of a bare TLS alert. Security comes from the guard, not from this.
 */
export function mtlsServerOptions(options: { ca: PemSource }): MtlsServerOptions {
  return { requestCert: true, rejectUnauthorized: false, ca: loadCertificates(options.ca).map((c) => pemEncode("CERTIFICATE", c.der)) };
}
