/**
 * Caramel in library mode: one call that makes (or reuses) a key and a
 * request, gets the certificate and hands everything back as objects, for an
 * application that keeps its identity in a key chain or a database. It never
 * touches the disk; the caller stores what it gets back.
 */
import type * as crypto from "node:crypto";
import { certificatePublicKey, exportPrivateKey, generateKeyPair, keysMatch, parseCertificate, type KeyType, type ParsedCertificate } from "@tessera/pki";
import { CaramelClient, type CaramelClientOptions, type CaramelEnsureOptions } from "./client.js";
import { CaramelError } from "./errors.js";
import { csrMatchesKey, readCaramelCsr, type CaramelCsr } from "./request.js";

/** Default longest wait for a signature in library mode, in milliseconds (10 min). */
export const DEFAULT_CARAMEL_ENROLL_WAIT_MS = 600_000;
/** Key type made when no key is given: RSA 2048, the size Caramel 1.9.6 signs with SHA-256 (it signs RSA 1024/2048/4096 only, spec §4). */
export const DEFAULT_CARAMEL_KEY_TYPE: KeyType = "rsa-2048";

/** Options of caramelEnroll. */
export interface CaramelEnrollOptions extends Omit<CaramelClientOptions, "clientCertificate"> {
  /** The device's key; a new one of keyType is made when absent. */
  key?: crypto.KeyObject;
  /** Type of a new key (default rsa-2048). */
  keyType?: KeyType;
  /**
   * The request made for `key` last time (canonical PEM). Give it back
   * whenever you have it: an ECDSA request signed again differs byte for
   * byte, and so would be a new request on the server. Needs `key`.
   */
  csrPem?: string;
  /** The certificate held now (PEM): presented as TLS client certificate while valid; the same one served again is "unchanged". */
  certificatePem?: string;
  /** When `certificatePem` was last modified (the lastModified of the previous result): sent as If-Modified-Since. */
  lastModified?: Date;
  /** Longest total wait for a signature in milliseconds (default 10 min; 0 = one round, no waiting); then state "pending". */
  maxWaitMs?: number;
  /** Stops waiting and requests: the call then rejects with CaramelError "aborted". */
  signal?: AbortSignal;
  /** On 403 (rejected) make a new key and request and post that (default false: return state "rejected"). */
  rekeyOnReject?: boolean;
  /** As CaramelEnsureOptions.sleep and random (tests). */
  sleep?: CaramelEnsureOptions["sleep"];
  random?: CaramelEnsureOptions["random"];
  /** A clock for choosing whether the held certificate is still valid (default () => new Date()). */
  now?: () => Date;
}

/** What caramelEnroll hands back: everything the caller stores. */
export interface CaramelEnrollResult {
  /**
   * "signed": a new certificate; "unchanged": `certificatePem` as given is
   * still current; "pending": not signed within maxWaitMs (store key and
   * csrPem, call again later); "rejected": the server refused the request
   * for good (403): call again without key and csrPem, or with rekeyOnReject.
   */
  state: "signed" | "unchanged" | "pending" | "rejected";
  key: crypto.KeyObject;
  /** The key as PKCS#8 PEM. */
  keyPem: string;
  /** The request, canonical PEM (exactly what the server knows it by). */
  csrPem: string;
  /** Lowercase hex SHA-256 of csrPem: the request's name on the server. */
  sha256: string;
  /** The certificate (canonical PEM): with "signed" and "unchanged". */
  certificatePem?: string;
  certificate?: ParsedCertificate;
  /** The Last-Modified the server sent with the certificate (Tessera; pass it back as lastModified). */
  lastModified?: Date;
  /** True when a rejection made this call replace the key. */
  rekeyed: boolean;
}

function usableCertificate(pem: string | undefined, key: crypto.KeyObject, now: Date): { cert: string; key: string } | undefined {
  if (pem === undefined) return undefined;
  try {
    const c = parseCertificate(pem);
    if (now < c.notBefore || now > c.notAfter || !keysMatch(key, certificatePublicKey(c))) return undefined;
    return { cert: pem, key: exportPrivateKey(key) };
  } catch {
    return undefined;
  }
}

/**
 * Gets a certificate for `clientId` from a Caramel server without touching
 * the disk: makes a key when none is given (rsa-2048 by default), builds the
 * request from the CA's subject (or reuses `csrPem`), posts it if the server
 * does not know it, and polls with the Rust client's backoff until it is
 * signed, maxWaitMs passes ("pending") or `signal` aborts (CaramelError
 * "aborted"). The certificate is checked (our key, signed by the CA, CN =
 * clientId). Other failures throw CaramelError; bad options TypeError.
 */
export async function caramelEnroll(opts: CaramelEnrollOptions): Promise<CaramelEnrollResult> {
  if (opts.csrPem !== undefined && opts.key === undefined) throw new TypeError("csrPem needs the key it was made with");
  const now = opts.now ?? (() => new Date());
  let key = opts.key ?? generateKeyPair(opts.keyType ?? DEFAULT_CARAMEL_KEY_TYPE).privateKey;
  const { signal, rekeyOnReject, sleep, random } = opts;
  const clientOptions: CaramelClientOptions = {
    server: opts.server, caCert: opts.caCert, clientId: opts.clientId,
    ...(opts.userAgent !== undefined ? { userAgent: opts.userAgent } : {}), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.trustPublicRoots !== undefined ? { trustPublicRoots: opts.trustPublicRoots } : {}), ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
  };
  const presented = usableCertificate(opts.certificatePem, key, now());
  let client = new CaramelClient({ ...clientOptions, ...(presented ? { clientCertificate: presented } : {}) });
  let csr: CaramelCsr;
  if (opts.csrPem !== undefined) {
    csr = readCaramelCsr(opts.csrPem);
    if (!csrMatchesKey(csr, key)) throw new TypeError("csrPem was not made with key");
  } else {
    csr = client.buildCsr(key);
  }
  const maxWaitMs = opts.maxWaitMs ?? DEFAULT_CARAMEL_ENROLL_WAIT_MS;
  const started = performance.now();
  let rekeyed = false;
  let current = opts.certificatePem !== undefined ? { certificatePem: opts.certificatePem, ...(opts.lastModified ? { lastModified: opts.lastModified } : {}) } : undefined;
  const result = (state: CaramelEnrollResult["state"], extra: Partial<CaramelEnrollResult> = {}): CaramelEnrollResult => ({
    state, key, keyPem: exportPrivateKey(key), csrPem: csr.pem, sha256: csr.sha256, rekeyed, ...extra,
  });
  for (;;) {
    try {
      const r = await client.ensure({
        csr, maxWaitMs: Math.max(0, maxWaitMs - (performance.now() - started)),
        ...(current ? { current } : {}), ...(signal ? { signal } : {}), ...(sleep ? { sleep } : {}), ...(random ? { random } : {}),
      });
      return result(r.state, { certificatePem: r.certificatePem, certificate: r.certificate, ...(r.lastModified ? { lastModified: r.lastModified } : {}) });
    } catch (err) {
      if (!(err instanceof CaramelError)) throw err;
      if (err.kind === "pending") return result("pending");
      if (err.kind !== "rejected") throw err;
      if (!rekeyOnReject || rekeyed) return result("rejected");
      // Rejected for good (spec §3: no un-reject): a new key, a new request, and nothing of the old identity.
      key = generateKeyPair(opts.keyType ?? DEFAULT_CARAMEL_KEY_TYPE).privateKey;
      client = new CaramelClient(clientOptions);
      csr = client.buildCsr(key);
      current = undefined;
      rekeyed = true;
    }
  }
}
