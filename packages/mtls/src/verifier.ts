/**
 * The middleware core, free of any framework: takes a TLS socket, returns the
 * device identity or a refusal. Chain building (signatures) is cached per
 * certificate; validity dates, revocation and authorization are decided on
 * every request, so a device revoked while its keep-alive connection stays
 * open is refused on its next request. It never trusts `socket.authorized`:
 * the server may run with rejectUnauthorized false, and even with true, Node's
 * check knows nothing of CRLs or purposes.
 */
import { createHash } from "node:crypto";
import type { TLSSocket } from "node:tls";
import { ekuOid, sha256Hex, type ParsedCertificate } from "@tessera/pki";
import { MtlsError, refusal, type Refusal } from "./errors.js";
import { CrlRevocationSource } from "./crl-source.js";
import { RevocationFeed } from "./feed.js";
import { identityOf, type DeviceIdentity } from "./identity.js";
import type { RevocationSource, RevocationStatus } from "./revocation.js";
import { loadCertificates, splitTrust, type PemSource } from "./trust.js";
import { verifyPeer } from "./verify.js";

/** Options of createMtlsVerifier (and requireMTLS). */
export interface MtlsOptions {
  /** Trusted CA bundle: PEM text or file path(s), roots plus intermediates used to complete chains (see splitTrust). */
  ca: PemSource;
  /** Revocation by CRL: a file path or http(s) URL (signed by a CA of `ca`), a CrlRevocationSource, or several. */
  crl?: string | RevocationSource | ReadonlyArray<string | RevocationSource>;
  /** Refresh period of CRLs given as strings, in milliseconds (default 300 000 = 5 min). */
  crlRefreshMs?: number;
  /** Extra trusted CA certificates (PEM text or path) for https CRL and feed URLs given as strings. */
  fetchCa?: string;
  /** Live revocation feed: the full URL of Tessera's `/tessera/v1/revocations/events`, or a RevocationFeed. */
  revocationFeed?: string | RevocationFeed;
  /** Extended key usage the client certificate must allow: name (see pki EKU_OIDS) or OID (default clientAuth, 1.3.6.1.5.5.7.3.2); false to skip. A certificate without the extension passes. */
  requiredEku?: string | false;
  /** Final say after the certificate checks: return false to refuse with 403. May be async; a throw fails the request (500). */
  authorize?: (identity: DeviceIdentity) => boolean | Promise<boolean>;
  /** Current time (default `() => new Date()`); used for validity and CRL staleness. */
  clock?: () => Date;
  /** Most verified chains kept (default 10 000; least recently used go first). */
  cacheSize?: number;
  /** Called with CRL and feed failures of sources created from strings (default: none; they are also visible as refusals). */
  onError?: (err: MtlsError) => void;
}

/** Outcome of verifying one request. */
export type MtlsOutcome = { ok: true; identity: DeviceIdentity } | { ok: false; refusal: Refusal };

/** A framework-free mTLS verifier (see createMtlsVerifier). */
export interface MtlsVerifier {
  /** Verifies the client certificate of `socket` (chain, validity, purpose, revocation) and runs `authorize`. Throws only if `authorize` throws. */
  verifySocket(socket: unknown): Promise<MtlsOutcome>;
  /** Verifies a leaf (DER) and the chain the peer sent, as verifySocket does. */
  verifyCertificate(leafDer: Uint8Array | undefined, sentChain?: readonly Uint8Array[]): Promise<MtlsOutcome>;
  /** Resolves when every CRL source has loaded once; rejects with the first source's error. */
  ready(): Promise<void>;
  /** Stops the CRL timers and the feed this verifier created (sources passed in as objects are left to their owner). */
  close(): void;
  /** All revocation sources consulted, in order. */
  readonly sources: readonly RevocationSource[];
}

const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

interface PeerDer {
  leaf?: Buffer;
  rest: Buffer[];
  fingerprint?: string;
  key?: string;
}

// Per-connection memo of the peer's DER: the certificate cannot change on a
// TLS connection, and getPeerCertificate(true) builds a fresh object tree each call.
const socketPeers = new WeakMap<object, PeerDer>();

function peerDerOf(socket: unknown): PeerDer {
  if (!socket || typeof (socket as TLSSocket).getPeerCertificate !== "function") return { rest: [] };
  const memo = socketPeers.get(socket);
  if (memo) return memo;
  const cert = (socket as TLSSocket).getPeerCertificate(true);
  const out: PeerDer = { rest: [] };
  if (cert && cert.raw && cert.raw.length > 0) {
    out.leaf = cert.raw;
    const seen = new Set<string>([cert.fingerprint256]);
    for (let cur = cert.issuerCertificate; cur && cur.raw && !seen.has(cur.fingerprint256); cur = cur.issuerCertificate) {
      seen.add(cur.fingerprint256);
      out.rest.push(cur.raw);
    }
  }
  socketPeers.set(socket, out);
  return out;
}

function chainKey(peer: PeerDer): void {
  if (!peer.leaf || peer.key) return;
  peer.fingerprint = sha256Hex(peer.leaf);
  const h = createHash("sha256");
  for (const d of peer.rest) h.update(d);
  peer.key = `${peer.fingerprint}:${peer.rest.length ? h.digest("hex") : ""}`;
}

/** Creates a verifier; reads the CA bundle now and throws TESSERA_ERR_MTLS_CONFIG on bad options. */
export function createMtlsVerifier(options: MtlsOptions): MtlsVerifier {
  if (!options || options.ca === undefined) throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", "ca is required");
  const bundle = loadCertificates(options.ca, "ca");
  const { roots, intermediates } = splitTrust(bundle);
  const requiredEku = options.requiredEku === false ? undefined : options.requiredEku === undefined ? CLIENT_AUTH : toEku(options.requiredEku);
  const clock = options.clock ?? (() => new Date());
  const cacheSize = options.cacheSize ?? 10_000;
  if (!Number.isInteger(cacheSize) || cacheSize < 0) throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", "cacheSize must be a non-negative integer");
  if (options.authorize !== undefined && typeof options.authorize !== "function") throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", "authorize must be a function");

  const owned: RevocationSource[] = [];
  const sources: RevocationSource[] = [];
  const crls = options.crl === undefined ? [] : Array.isArray(options.crl) ? options.crl : [options.crl as string | RevocationSource];
  for (const c of crls) {
    if (typeof c === "string") {
      const s = new CrlRevocationSource({ crl: c, issuers: bundle, refreshMs: options.crlRefreshMs, fetchCa: options.fetchCa, clock, onError: options.onError });
      owned.push(s);
      sources.push(s);
    } else if (c && typeof c.check === "function") sources.push(c);
    else throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", "crl must be a path, a URL or a revocation source");
  }
  if (typeof options.revocationFeed === "string") {
    const feed = new RevocationFeed({ url: options.revocationFeed, ca: options.fetchCa, onError: options.onError });
    owned.push(feed);
    sources.push(feed);
  } else if (options.revocationFeed) sources.push(options.revocationFeed);
  const authoritative = sources.some((s) => s.authoritative);
  // Requests that arrive while the first CRL load is under way wait for it (at most the
  // fetch timeout) rather than being refused as "unknown" in the first moments after startup.
  let firstLoad: Promise<unknown> | undefined = Promise.allSettled(sources.filter((s) => s.authoritative).map((s) => s.ready())).then(() => {
    firstLoad = undefined;
  });

  // Verified chains by leaf fingerprint + sent chain; Map iteration order makes it an LRU.
  const cache = new Map<string, DeviceIdentity>();

  async function chainOf(leaf: Buffer, rest: readonly Buffer[], key: string | undefined, fingerprint: string | undefined, at: Date): Promise<DeviceIdentity | Refusal> {
    const hit = key ? cache.get(key) : undefined;
    if (hit && key) {
      cache.delete(key);
      cache.set(key, hit);
      return hit;
    }
    const r = await verifyPeer(leaf, rest, { roots, intermediates, requiredEku, at });
    if (r.status === "absent") return refusal("TESSERA_ERR_MTLS_CERT_REQUIRED", "client certificate required");
    if (r.status === "rejected") return refusal("TESSERA_ERR_MTLS_CERT_INVALID", `client certificate rejected: ${r.reason}`);
    const identity = identityOf(r.certificate, r.chain, fingerprint);
    if (key && cacheSize > 0) {
      cache.set(key, identity);
      if (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
    }
    return identity;
  }

  /** Validity of every chain member now: the cached chain was verified at an earlier time. */
  function validity(chain: readonly ParsedCertificate[], at: number): Refusal | undefined {
    for (let i = 0; i < chain.length; i++) {
      const c = chain[i]!;
      const who = i === 0 ? "certificate" : i === chain.length - 1 ? "trust anchor" : "issuer";
      if (at < c.notBefore.getTime()) return refusal("TESSERA_ERR_MTLS_CERT_INVALID", `client certificate rejected: ${who} not yet valid`);
      if (at > c.notAfter.getTime()) return refusal("TESSERA_ERR_MTLS_CERT_INVALID", `client certificate rejected: ${who} expired`);
    }
    return undefined;
  }

  function revocation(chain: readonly ParsedCertificate[], at: Date): Refusal | undefined {
    if (sources.length === 0) return undefined;
    let unknown: string | undefined;
    // The anchor (last) is trusted by configuration; every certificate it vouches for is checked.
    for (let i = 0; i < chain.length - 1; i++) {
      const cert = chain[i]!;
      const issuer = chain[i + 1]!;
      let covered = false;
      for (const s of sources) {
        let st: RevocationStatus;
        try {
          st = s.check(cert, issuer, at);
        } catch (err) {
          // A caller's own source that throws must not let a certificate through.
          st = { status: "unknown", detail: String(err) };
        }
        if (st.status === "revoked") {
          return refusal("TESSERA_ERR_MTLS_CERT_REVOKED", i === 0 ? "client certificate revoked" : "client certificate's issuing CA revoked");
        }
        if (st.status === "unknown") unknown ??= st.detail;
        if (st.status === "good") covered = true;
      }
      // Fail closed: with CRLs configured, a leaf whose issuer has no CRL cannot be shown to be unrevoked.
      if (i === 0 && authoritative && !covered) unknown ??= "no CRL for the certificate's issuer";
    }
    return unknown ? refusal("TESSERA_ERR_MTLS_CERT_REVOKED", "revocation status unknown") : undefined;
  }

  async function verify(peer: PeerDer): Promise<MtlsOutcome> {
    if (!peer.leaf) return { ok: false, refusal: refusal("TESSERA_ERR_MTLS_CERT_REQUIRED", "client certificate required") };
    chainKey(peer);
    if (firstLoad) await firstLoad;
    const now = clock();
    const r = await chainOf(peer.leaf, peer.rest, peer.key, peer.fingerprint, now);
    if (!("serverId" in r)) return { ok: false, refusal: r };
    const bad = validity(r.chain, now.getTime()) ?? revocation(r.chain, now);
    if (bad) return { ok: false, refusal: bad };
    if (options.authorize && !(await options.authorize(r))) return { ok: false, refusal: refusal("TESSERA_ERR_MTLS_FORBIDDEN", "device not allowed") };
    return { ok: true, identity: r };
  }

  return {
    sources,
    verifySocket: (socket) => verify(peerDerOf(socket)),
    verifyCertificate: (leafDer, sentChain = []) =>
      verify({ leaf: leafDer && leafDer.length ? Buffer.from(leafDer) : undefined, rest: sentChain.map((d) => Buffer.from(d)) }),
    ready: async () => {
      await Promise.all(sources.filter((s) => s.authoritative).map((s) => s.ready()));
    },
    close: () => owned.forEach((s) => s.close()),
  };
}

function toEku(name: string): string {
  try {
    return ekuOid(name);
  } catch (err) {
    throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", `requiredEku: unknown extended key usage ${name}`, { cause: err });
  }
}
