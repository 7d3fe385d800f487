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

/** URLs relying parties fetch revocation data and the issuer from: CRL Distribution Points, OCSP and CA issuers (Authority Information Access). */
export interface RevocationUrls {
  crl?: string[];
  ocsp?: string[];
  caIssuers?: string[];
}

/**
 * The URLs certificates carry for a public base URL (no trailing slash):
 * `<base>/crl`, `<base>/ocsp` when the responder is on, and `<base>/ca.der`
 * (the issuing CA in DER: RFC 5280 §4.2.2.1 wants a DER certificate or a
 * certs-only CMS there, not PEM). No base, no URLs.
 */
export function revocationUrls(base: string | null | undefined, ocsp: boolean): RevocationUrls {
  if (!base) return {};
  return { crl: [`${base}/crl`], ...(ocsp ? { ocsp: [`${base}/ocsp`] } : {}), caIssuers: [`${base}/ca.der`] };
}

/** Extension spec of a profile (the fixed part of its template); CRL/OCSP/CA-issuers URLs come from the server. */
export function extensionSpec(config: ProfileConfig, urls: RevocationUrls = {}): ExtensionSpec {
  return {
    basicConstraints: config.basicConstraints ? { ca: false } : undefined,
    keyUsage: config.keyUsage,
    extKeyUsage: config.extKeyUsage,
    subjectKeyIdentifier: config.subjectKeyIdentifier,
    authorityKeyIdentifier: config.authorityKeyIdentifier,
    subjectAltName: config.sans !== "none",
    crlDistributionPoints: urls.crl,
    ocspUrls: urls.ocsp,
    caIssuersUrls: urls.caIssuers,
  };
}

/**
 * Compiles every profile (one library-generated template each, made once)
 * for its issuer: the issuing CA, or the root for `issuer = "root"`. A root
 * profile is left out, with a note in `skipped`, when the root key is not
 * available (an imported CA without it); CRL, OCSP and CA-issuers URLs go
 * only on profiles of the issuing CA, whose CRL, responder and certificate
 * they name.
 */
export async function compileProfiles(
  profiles: Record<string, ProfileConfig>,
  ca: { issuer: Issuer; root: Issuer["certificate"]; rootKey?: Issuer["privateKey"] },
  urls: RevocationUrls = {},
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
