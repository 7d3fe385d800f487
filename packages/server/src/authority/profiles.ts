/**
 * Issuance profiles: a configured ProfileConfig compiled against the issuing
 * CA into a DER template plus the CSR policy that goes with it.
 */
import { CertificateTemplate, type CsrPolicy, type ExtensionSpec, type Issuer } from "@tessera/pki";
import type { ProfileConfig } from "../config/types.js";

/** A profile ready to issue under one issuer. */
export interface CompiledProfile {
  name: string;
  config: ProfileConfig;
  /** The CA that signs this profile's certificates (the issuing CA, or the root for `issuer = "root"`). */
  issuer: Issuer;
  template: CertificateTemplate;
  policy: CsrPolicy;
}

/** Extension spec of a profile (the fixed part of its template); CRL/OCSP URLs come from the server. */
export function extensionSpec(config: ProfileConfig, urls: { crl?: string[]; ocsp?: string[] } = {}): ExtensionSpec {
  return {
    basicConstraints: config.basicConstraints ? { ca: false } : undefined,
    keyUsage: config.keyUsage,
    extKeyUsage: config.extKeyUsage,
    subjectKeyIdentifier: config.subjectKeyIdentifier,
    authorityKeyIdentifier: config.authorityKeyIdentifier,
    subjectAltName: config.sans !== "none",
    crlDistributionPoints: urls.crl,
    ocspUrls: urls.ocsp,
  };
}

/**
 * Compiles every profile (one library-generated template each, made once)
 * for its issuer: the issuing CA, or the root for `issuer = "root"`. A root
 * profile is left out, with a note in `skipped`, when the root key is not
 * available (an imported CA without it); CRL URLs go only on profiles of
 * the issuing CA, whose CRL they name.
 */
export async function compileProfiles(
  profiles: Record<string, ProfileConfig>,
  ca: { issuer: Issuer; root: Issuer["certificate"]; rootKey?: Issuer["privateKey"] },
  urls: { crl?: string[]; ocsp?: string[] } = {},
  skipped: string[] = [],
): Promise<Map<string, CompiledProfile>> {
  const out = new Map<string, CompiledProfile>();
  for (const [name, config] of Object.entries(profiles)) {
    const fromRoot = config.issuer === "root";
    if (fromRoot && !ca.rootKey) {
      skipped.push(`${name}: issuer = "root" but the root CA key is not available`);
      continue;
    }
    const issuer = fromRoot ? { certificate: ca.root, privateKey: ca.rootKey! } : ca.issuer;
    out.set(name, {
      name,
      config,
      issuer,
      template: await CertificateTemplate.create(extensionSpec(config, fromRoot ? {} : urls), issuer),
      policy: { minRsaBits: config.minRsaBits, ecCurves: config.ecCurves, allowEd25519: config.allowEd25519, allowRsa: config.allowRsa },
    });
  }
  return out;
}
