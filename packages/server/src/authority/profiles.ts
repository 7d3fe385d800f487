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

/** Compiles every profile for `issuer` (one library-generated template each, made once). */
export async function compileProfiles(
  profiles: Record<string, ProfileConfig>,
  issuer: Issuer,
  urls: { crl?: string[]; ocsp?: string[] } = {},
): Promise<Map<string, CompiledProfile>> {
  const out = new Map<string, CompiledProfile>();
  for (const [name, config] of Object.entries(profiles)) {
    out.set(name, {
      name,
      config,
      template: await CertificateTemplate.create(extensionSpec(config, urls), issuer),
      policy: { minRsaBits: config.minRsaBits, ecCurves: config.ecCurves, allowEd25519: config.allowEd25519, allowRsa: config.allowRsa },
    });
  }
  return out;
}
