/**
 * Bootstrap distribution of CA certificates (RFC 7030 §4.1.1): a device that
 * has no trust anchor yet fetches /cacerts without verifying TLS and accepts
 * the bag only when it is tied to something known out of band — here the
 * SHA-256 fingerprint of one certificate in it (Tessera's server prints
 * "Root CA SHA-256 fingerprint: AA:BB:…" at startup) — and the TLS server
 * certificate of that very connection chains to the pinned certificate
 * through the bag. Then the bag came from the genuine server.
 */
import { basicConstraints, extendedKeyUsages, formatName, type ParsedCertificate } from "@tessera/pki";
import { estCertificate, parseCaCertsResponse, signedBy, type EstCaCertificate, type EstCaCerts, type EstCertificate } from "./cacerts.js";
import { EstError } from "./errors.js";
import { checkEstServerIdentity, decodeEstBody, estSend, expectStatus, OID_CMC_RA, urlProblems } from "./wire.js";

/** Options of bootstrapCacerts. */
export interface EstBootstrapOptions {
  /** Base URL, e.g. "https://est.example.com:8443" (see EstClientOptions.url). */
  url: string;
  /** CA label (RFC 7030 §3.2.2); default none. */
  label?: string;
  /** SHA-256 fingerprint of a certificate in the bag (usually the root): 64 hex digits, colons and case free. */
  fingerprint: string;
  /** Deadline of the exchange in milliseconds (default 30 000). */
  timeoutMs?: number;
  /** Clock for the validity checks (default () => new Date()). */
  now?: () => Date;
}

/** A bag accepted by bootstrapCacerts. */
export interface EstBootstrapResult extends EstCaCerts {
  /** The certificate whose fingerprint was given. */
  pinned: EstCaCertificate;
  /** The TLS server's path, leaf first, ending with the pinned certificate. */
  serverPath: EstCertificate[];
}

const EKU_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const EKU_ANY = "2.5.29.37.0";
const MAX_PATH = 8;

/** Lowercase hex without separators, or undefined when `text` is not a SHA-256 fingerprint (colons, spaces and "sha256:" allowed). */
export function normaliseFingerprint(text: string): string | undefined {
  const hex = text.trim().replace(/^sha-?256:\s*/i, "").replace(/[:\s]/g, "").toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}

function validAt(cert: ParsedCertificate, now: Date): boolean {
  return cert.notBefore.getTime() <= now.getTime() && now.getTime() <= cert.notAfter.getTime();
}

/** A path from `leaf` to `anchor` through `pool` (signatures, name chaining, validity, CA flags), or undefined. */
function buildPath(leaf: EstCertificate, anchor: EstCertificate, pool: readonly EstCertificate[], now: Date): EstCertificate[] | undefined {
  const walk = (cert: EstCertificate, path: EstCertificate[]): EstCertificate[] | undefined => {
    if (cert.der.equals(anchor.der)) return path;
    if (path.length > MAX_PATH) return undefined;
    for (const next of [anchor, ...pool]) {
      if (path.some((p) => p.der.equals(next.der))) continue;
      if (!cert.certificate.issuer.equals(next.certificate.subject) || !signedBy(cert.certificate, next.certificate)) continue;
      if (!validAt(next.certificate, now)) continue;
      let isCa = false;
      try {
        isCa = basicConstraints(next.certificate)?.ca === true;
      } catch {
        // unreadable basicConstraints: not a CA
      }
      if (!isCa && !next.der.equals(anchor.der)) continue;
      const found = walk(next, [...path, next]);
      if (found) return found;
    }
    return undefined;
  };
  return validAt(leaf.certificate, now) ? walk(leaf, [leaf]) : undefined;
}

/**
 * Fetches /cacerts without TLS verification and accepts the bag only if a
 * certificate in it has the given SHA-256 fingerprint, the TLS server
 * certificate chains to that certificate through the bag (and the
 * intermediates the server sent), is valid now, is named for the URL's host
 * or carries id-kp-cmcRA (§3.6), and allows serverAuth when it restricts its
 * use. Throws EstError "untrusted" when a check fails, or as EstClient.cacerts.
 */
export async function bootstrapCacerts(opts: EstBootstrapOptions): Promise<EstBootstrapResult> {
  const problems = urlProblems(opts?.url, opts?.label);
  const fingerprint = typeof opts?.fingerprint === "string" ? normaliseFingerprint(opts.fingerprint) : undefined;
  if (fingerprint === undefined) problems.push("fingerprint must be a SHA-256 fingerprint (64 hex digits, colons optional)");
  if (opts?.timeoutMs !== undefined && !(Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0)) problems.push("timeoutMs must be a positive number");
  if (problems.length > 0) throw new TypeError(`invalid bootstrapCacerts options: ${problems.join("; ")}`);
  const now = opts.now ?? (() => new Date());
  const answer = await estSend({
    base: opts.url, label: opts.label, tls: { verify: false }, basic: undefined, timeoutMs: opts.timeoutMs ?? 30_000, maxWaitMs: 0,
    sleep: () => Promise.resolve(), now,
  }, "cacerts", "GET");
  expectStatus(answer, "cacerts", [200], now());
  const bag = parseCaCertsResponse(decodeEstBody(answer.body, "cacerts"));
  const pinned = bag.certificates.find((c) => c.sha256 === fingerprint);
  if (!pinned) {
    const held = bag.certificates.map((c) => `${formatName(c.certificate.subject)} ${c.sha256}`).join("; ");
    throw new EstError("untrusted", `cacerts: no certificate in the bag has SHA-256 fingerprint ${fingerprint}; it holds: ${held}`);
  }
  const [leafDer, ...sent] = answer.peerChain;
  if (!leafDer || !answer.peerCertificate) throw new EstError("untrusted", "cacerts: the server presented no TLS certificate");
  let leaf: EstCertificate;
  let pool: EstCertificate[];
  try {
    leaf = estCertificate(leafDer);
    pool = [...bag.certificates, ...sent.map((d) => estCertificate(d))];
  } catch (err) {
    throw new EstError("untrusted", `cacerts: the TLS server certificate does not parse: ${(err as Error).message}`, { cause: err });
  }
  const serverPath = buildPath(leaf, pinned, pool, now());
  if (!serverPath) {
    throw new EstError("untrusted", `cacerts: the TLS server certificate (${formatName(leaf.certificate.subject)}) does not chain to the pinned certificate ${formatName(pinned.certificate.subject)} through the bag`);
  }
  const host = new URL(opts.url).hostname.replace(/^\[|\]$/g, "");
  const identityError = checkEstServerIdentity(host, answer.peerCertificate);
  if (identityError) throw new EstError("untrusted", `cacerts: ${identityError.message}`, { cause: identityError });
  let ekus: string[] | undefined;
  try {
    ekus = extendedKeyUsages(leaf.certificate);
  } catch {
    ekus = [];
  }
  if (ekus && ![EKU_SERVER_AUTH, EKU_ANY, OID_CMC_RA].some((e) => ekus!.includes(e))) {
    throw new EstError("untrusted", "cacerts: the TLS server certificate is not for TLS servers (extKeyUsage lacks serverAuth and cmcRA)");
  }
  return { ...bag, pinned, serverPath };
}
