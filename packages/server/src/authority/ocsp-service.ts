/**
 * The OCSP responder's core (RFC 6960): a delegated OCSP-signing key and
 * certificate issued by the issuing CA (§4.2.2.2), rotated at half-life, and
 * answers built from the store and cached per serial.
 *
 * - Signer files: `<dataDir>/ca/ocsp/signer.pem` and `signer.key.pem` (mode
 *   0600, the key encrypted with the CA passphrase like the CA keys).
 *   Replicas sharing the data directory share the signer; each process
 *   re-reads the files before it issues a new one, so a rotation by one
 *   replica is picked up by the others.
 * - Statuses: valid or superseded → good; revoked → revoked with time and
 *   reason; a serial this CA did not issue → unknown. A request naming
 *   another issuer (or a CertID hash we do not know) gets `unauthorized`
 *   (§2.3, RFC 5019 §2.2.3): a delegate of this CA cannot sign for it.
 * - Cache: nonce-less single-CertID requests (what browsers, OpenSSL with
 *   -no_nonce, and RFC 5019 clients send) are answered from a cache per
 *   serial, re-signed once half the validity has passed, so a served
 *   response always has at least half its validity left. A revocation
 *   (this process at once, other processes via RevocationEvents' poll)
 *   drops the serial's entries. Requests with a nonce are signed fresh: the
 *   price of a nonce (RFC 8954 §4). A request whose exact bytes were answered
 *   from the cache before goes straight to its entry, without being parsed
 *   again (the hot path of an OCSP responder: the same few requests over and
 *   over).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { KeyObject } from "node:crypto";
import {
  buildOcspResponse, certificatePublicKey, createOcspSignerCertificate, CRL_REASONS, exportPrivateKey, generateKeyPairAsync, importPrivateKey,
  isOcspSigner, keyInfo, keysMatch, keyTypeName, nameAttribute, ocspErrorResponse, ocspIssuerMatcher, parseCertificate, parseKeyType,
  parseOcspRequest, pemEncode, verifyCertificateSignature, type CrlReason, type Issuer, type OcspCertId, type OcspCertStatus,
  type OcspResponseStatus, type ParsedCertificate,
} from "@tessera/pki";
import type { Clock } from "./runtime.js";
import type { CertificateRecord } from "./ports.js";
import type { RevocationEvent } from "./revocation-events.js";

/** One answer: the DER OCSPResponse and what an HTTP front-end needs for caching headers. */
export interface OcspAnswer {
  der: Buffer;
  status: OcspResponseStatus;
  /** True when anyone asking gets these bytes (no nonce): HTTP caches may keep it until `nextUpdate` (RFC 5019 §6). */
  cacheable: boolean;
  /** thisUpdate of the answer (= producedAt), for Last-Modified. */
  thisUpdate?: Date;
  nextUpdate?: Date;
}

/** What the /ocsp route needs. */
export interface OcspResponder {
  /** Answers a DER OCSPRequest; never throws (failures become internalError answers). */
  respond(request: Uint8Array): Promise<OcspAnswer>;
}

/** Options of the OCSP service; times in seconds. */
export interface OcspServiceOptions {
  /** Data directory: the signer lives in `<dataDir>/ca/ocsp/`. */
  dataDir: string;
  /** The CA key passphrase, which also encrypts the signer key. */
  passphrase: string;
  /** The issuing CA (its certificates are the ones answered for). */
  issuer: Issuer;
  /** Where statuses come from (the authority). */
  certificates: { getCertificate(serial: string): Promise<CertificateRecord | undefined> };
  /** Revocations as they happen (RevocationEvents): each one drops the serial's cached answers. */
  revocations: { on(event: "revoked", l: (e: RevocationEvent) => void): unknown; off(event: "revoked", l: (e: RevocationEvent) => void): unknown };
  clock: Clock;
  /** nextUpdate − thisUpdate of an answer (default config: 3600). */
  validitySeconds: number;
  /** Lifetime of the signer certificate (default config: 7 days); rotated at half-life. */
  signerValiditySeconds: number;
  /** Where failures are reported. */
  onError?: (message: string, err: unknown) => void;
  /** Most serials kept in the cache (default 100 000; the oldest go first). */
  maxCachedSerials?: number;
  /** Most CertIDs in one request (default 32; more is a malformedRequest). */
  maxCertIds?: number;
}

interface Signer {
  certificate: ParsedCertificate;
  privateKey: KeyObject;
  /** When to issue the next one: half-way through its lifetime. */
  rotateAt: number;
}

interface Cached {
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  refreshAt: number;
}

/** Paths of the OCSP signer files. */
export function ocspSignerPaths(dataDir: string) {
  const dir = path.join(dataDir, "ca", "ocsp");
  return { dir, cert: path.join(dir, "signer.pem"), key: path.join(dir, "signer.key.pem") };
}

// Relying parties' clocks lag: the signer is valid from a little before it is made.
const BACKDATE_MS = 5 * 60_000;

/** The OCSP responder's core: see the module comment. */
export class OcspService implements OcspResponder {
  private signer!: Signer;
  private rotating: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly matches: (certId: OcspCertId) => boolean;
  private readonly cache = new Map<string, Map<string, Cached>>();
  private readonly inflight = new Map<string, Promise<Cached>>();
  /** Request bytes (latin1) → where their cached answer lives; bounded, oldest out first. */
  private readonly byRequest = new Map<string, { serial: string; key: string }>();
  /** Bumped on every revocation: an answer built across one is not cached (it may predate it). */
  private epoch = 0;
  private readonly onRevoked = (e: RevocationEvent) => {
    this.epoch++;
    this.cache.delete(e.serial);
  };

  private constructor(private readonly opts: OcspServiceOptions) {
    this.matches = ocspIssuerMatcher(opts.issuer.certificate);
  }

  /** Loads the signer (issuing one if missing, stale or past half-life), hooks revocations and starts the rotation timer. */
  static async open(opts: OcspServiceOptions): Promise<OcspService> {
    const s = new OcspService(opts);
    s.signer = await s.loadOrIssueSigner();
    opts.revocations.on("revoked", s.onRevoked);
    // Look often enough that even a one-hour signer is rotated well before it expires.
    const every = Math.min(3600, Math.max(60, Math.floor(opts.signerValiditySeconds / 8))) * 1000;
    s.timer = setInterval(() => void s.rotateIfDue().catch((err) => s.report("OCSP signer rotation failed", err)), every).unref();
    return s;
  }

  /** The current signer certificate. */
  get signerCertificate(): ParsedCertificate {
    return this.signer.certificate;
  }

  /** Stops the timer and the revocation hook. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.opts.revocations.off("revoked", this.onRevoked);
  }

  /** Issues (or adopts another replica's) new signer when the current one is past half-life; true if it changed. */
  async rotateIfDue(): Promise<boolean> {
    if (this.opts.clock.now().getTime() < this.signer.rotateAt) return false;
    const before = this.signer.certificate.serialHex;
    this.rotating ??= this.loadOrIssueSigner()
      .then((s) => {
        this.signer = s;
        // Answers signed by the old signer stay valid, but a clean switch keeps reasoning simple.
        this.cache.clear();
      })
      .finally(() => {
        this.rotating = undefined;
      });
    await this.rotating;
    return this.signer.certificate.serialHex !== before;
  }

  /** Answers a DER OCSPRequest (see the module comment for the rules). */
  async respond(request: Uint8Array): Promise<OcspAnswer> {
    // The hot path: the very bytes of a request answered from the cache before. Same bytes, same
    // parse, same issuer match, so only the cached entry itself is checked (present, fresh, and the
    // signer not due for rotation); anything else takes the full path below.
    const bytes = Buffer.from(request.buffer, request.byteOffset, request.byteLength).toString("latin1");
    const known = this.byRequest.get(bytes);
    if (known) {
      const hit = this.cache.get(known.serial)?.get(known.key);
      const now = this.opts.clock.now().getTime();
      if (hit && now < hit.refreshAt && now < this.signer.rotateAt) return cachedAnswer(hit);
    }
    let req: ReturnType<typeof parseOcspRequest>;
    try {
      req = parseOcspRequest(request);
    } catch {
      return errorAnswer("malformedRequest");
    }
    if (req.certIds.length > (this.opts.maxCertIds ?? 32)) return errorAnswer("malformedRequest");
    if (!req.certIds.every(this.matches)) return errorAnswer("unauthorized");
    try {
      await this.ensureSigner();
      if (req.certIds.length === 1 && !req.nonce) {
        const certId = req.certIds[0]!;
        const c = await this.cached(certId);
        const key = certId.der.toString("base64");
        if (this.cache.get(certId.serialHex)?.get(key) === c) {
          if (this.byRequest.size >= 2 * (this.opts.maxCachedSerials ?? 100_000)) this.byRequest.delete(this.byRequest.keys().next().value!);
          this.byRequest.set(bytes, { serial: certId.serialHex, key });
        }
        return cachedAnswer(c);
      }
      const now = this.thisUpdate();
      const nextUpdate = this.nextUpdateFor(now);
      const statuses = await Promise.all(req.certIds.map((id) => this.status(id.serialHex)));
      const der = await buildOcspResponse({
        signer: this.signer,
        producedAt: now,
        nonce: req.nonce,
        responses: req.certIds.map((certId, i) => ({ certId, status: statuses[i]!, thisUpdate: now, nextUpdate })),
      });
      return { der, status: "successful", cacheable: !req.nonce, thisUpdate: now, nextUpdate };
    } catch (err) {
      this.report("OCSP answer failed", err);
      return errorAnswer("internalError");
    }
  }

  /** The status of one serial of this CA, from the store. */
  private async status(serial: string): Promise<OcspCertStatus> {
    const rec = await this.opts.certificates.getCertificate(serial);
    // A serial the store knows but another CA (the root, for root-issued profiles) signed is not this CA's.
    if (!rec || !parseCertificate(rec.der).issuer.equals(this.opts.issuer.certificate.subject)) return { status: "unknown" };
    if (rec.status === "revoked") {
      const reason = rec.revocationReason && rec.revocationReason in CRL_REASONS ? (rec.revocationReason as CrlReason) : undefined;
      return { status: "revoked", revokedAt: rec.revokedAt ?? rec.issuedAt, reason };
    }
    return { status: "good" };
  }

  private async cached(certId: OcspCertId): Promise<Cached> {
    const key = certId.der.toString("base64");
    const hit = this.cache.get(certId.serialHex)?.get(key);
    if (hit && this.opts.clock.now().getTime() < hit.refreshAt) return hit;
    // Concurrent askers of one CertID share one signature.
    let p = this.inflight.get(key);
    if (!p) {
      p = this.build(certId).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async build(certId: OcspCertId): Promise<Cached> {
    const epoch = this.epoch;
    const thisUpdate = this.thisUpdate();
    const nextUpdate = this.nextUpdateFor(thisUpdate);
    const status = await this.status(certId.serialHex);
    const der = await buildOcspResponse({ signer: this.signer, producedAt: thisUpdate, responses: [{ certId, status, thisUpdate, nextUpdate }] });
    const entry: Cached = { der, thisUpdate, nextUpdate, refreshAt: thisUpdate.getTime() + (nextUpdate.getTime() - thisUpdate.getTime()) / 2 };
    // "unknown" is not cached: the serial may be issued (by any replica) a moment later.
    if (status.status !== "unknown" && epoch === this.epoch) {
      let perSerial = this.cache.get(certId.serialHex);
      if (!perSerial) {
        if (this.cache.size >= (this.opts.maxCachedSerials ?? 100_000)) this.cache.delete(this.cache.keys().next().value!);
        perSerial = new Map();
        this.cache.set(certId.serialHex, perSerial);
      }
      perSerial.set(certId.der.toString("base64"), entry);
    }
    return entry;
  }

  private thisUpdate(): Date {
    return new Date(Math.floor(this.opts.clock.now().getTime() / 1000) * 1000);
  }

  /** thisUpdate + validity, never past the signer's notAfter. */
  private nextUpdateFor(thisUpdate: Date): Date {
    return new Date(Math.min(thisUpdate.getTime() + this.opts.validitySeconds * 1000, this.signer.certificate.notAfter.getTime()));
  }

  /** Rotation runs in the background; only an expired signer makes a request wait for it. */
  private async ensureSigner(): Promise<void> {
    const now = this.opts.clock.now().getTime();
    if (now < this.signer.rotateAt) return;
    const pending = this.rotateIfDue();
    if (now >= this.signer.certificate.notAfter.getTime()) await pending;
    else pending.catch((err) => this.report("OCSP signer rotation failed", err));
  }

  private report(message: string, err: unknown): void {
    this.opts.onError?.(message, err);
  }

  /** The signer on disk if it is usable and not past half-life; else a new one, written to disk. */
  private async loadOrIssueSigner(): Promise<Signer> {
    const p = ocspSignerPaths(this.opts.dataDir);
    const now = this.opts.clock.now().getTime();
    const onDisk = this.readSigner(p);
    if (onDisk && now < onDisk.rotateAt) return onDisk;
    const issuer = this.opts.issuer;
    const keys = await generateKeyPairAsync(parseKeyType(keyTypeName(keyInfo(issuer.privateKey))));
    const org = nameAttribute(issuer.certificate.subject, "O");
    const cn = nameAttribute(issuer.certificate.subject, "CN") ?? "Tessera";
    const certificate = await createOcspSignerCertificate({
      issuer,
      publicKey: keys.publicKey,
      subject: [...(org ? [{ type: "O", value: org }] : []), { type: "CN", value: `${cn} OCSP Responder` }],
      notBefore: new Date(Math.max(Math.floor((now - BACKDATE_MS) / 1000) * 1000, issuer.certificate.notBefore.getTime())),
      notAfter: new Date(Math.min(Math.floor(now / 1000) * 1000 + this.opts.signerValiditySeconds * 1000, issuer.certificate.notAfter.getTime())),
    });
    fs.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
    // Key first: a crash between the renames leaves a mismatched pair, which readSigner refuses and the next start replaces.
    writeAtomic(p.key, exportPrivateKey(keys.privateKey, this.opts.passphrase));
    writeAtomic(p.cert, pemEncode("CERTIFICATE", certificate.der));
    return { certificate, privateKey: keys.privateKey, rotateAt: rotateAt(certificate) };
  }

  private readSigner(p: ReturnType<typeof ocspSignerPaths>): Signer | undefined {
    try {
      if (!fs.existsSync(p.cert) || !fs.existsSync(p.key)) return undefined;
      const certificate = parseCertificate(fs.readFileSync(p.cert, "utf8"));
      const privateKey = importPrivateKey(fs.readFileSync(p.key, "utf8"), this.opts.passphrase);
      const ca = this.opts.issuer.certificate;
      // Issued by the current issuing CA (it may have changed), for OCSP, with its key.
      const usable = certificate.issuer.equals(ca.subject) && verifyCertificateSignature(certificate, certificatePublicKey(ca)) && isOcspSigner(certificate)
        && keysMatch(privateKey, certificatePublicKey(certificate));
      return usable ? { certificate, privateKey, rotateAt: rotateAt(certificate) } : undefined;
    } catch (err) {
      this.report("OCSP signer files unreadable; issuing a new signer", err);
      return undefined;
    }
  }
}

function rotateAt(cert: ParsedCertificate): number {
  const start = cert.notBefore.getTime() + BACKDATE_MS;
  return start + (cert.notAfter.getTime() - start) / 2;
}

function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

function cachedAnswer(c: Cached): OcspAnswer {
  return { der: c.der, status: "successful", cacheable: true, thisUpdate: c.thisUpdate, nextUpdate: c.nextUpdate };
}

function errorAnswer(status: Exclude<OcspResponseStatus, "successful">): OcspAnswer {
  return { der: ocspErrorResponse(status), status, cacheable: false };
}
