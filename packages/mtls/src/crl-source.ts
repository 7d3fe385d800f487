/**
 * CRL revocation source: loads a CRL from a file or an http(s) URL, checks
 * its signature against the configured CA certificates, keeps it in memory
 * and refreshes it on a timer. A failed refresh keeps the last good CRL; a
 * CRL left past nextUpdate + grace makes its issuer's certificates "unknown".
 */
import * as fs from "node:fs/promises";
import { certificatePublicKey, parseCrl, pemDecodeAll, pemEncode, verifyCrlSignature, type ParsedCertificate, type ParsedCrl } from "@tessera/pki";
import { MtlsError } from "./errors.js";
import { fetchBytes } from "./fetch.js";
import type { RevocationSource, RevocationStatus } from "./revocation.js";
import { loadCertificates, type PemSource } from "./trust.js";

/** Options of a CrlRevocationSource. */
export interface CrlSourceOptions {
  /** Where the CRL is: an `http://` or `https://` URL, else a file path. DER or PEM; a PEM file may hold several CRLs (one per issuer). */
  crl: string;
  /** CA certificates whose CRLs are accepted (PEM text, file paths, or parsed); each CRL's signature must verify against one of them. */
  issuers: PemSource | readonly ParsedCertificate[];
  /** How often to reload, in milliseconds (default 300 000 = 5 min). Sooner when a CRL's nextUpdate comes first. */
  refreshMs?: number;
  /** How long past nextUpdate a CRL is still used, in milliseconds (default 3 600 000 = 1 h). */
  staleGraceMs?: number;
  /** What a CRL past nextUpdate + grace means: "reject" (default) answers "unknown" for its issuer's certificates, "accept" keeps using it. */
  onStale?: "reject" | "accept";
  /** Extra trusted CA certificates (PEM text or file path) for an https CRL URL. */
  fetchCa?: string;
  /** Time limit of one fetch in milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Called with each failed load (the previous CRL stays in use). */
  onError?: (err: MtlsError) => void;
  /** Called after each load that changed the CRLs held. */
  onUpdate?: (crls: readonly ParsedCrl[]) => void;
  /** Current time (default `() => new Date()`), for staleness and refresh scheduling. */
  clock?: () => Date;
}

interface Held {
  crl: ParsedCrl;
  signer: ParsedCertificate;
}

// While no CRL is held, retry sooner than the normal refresh so that a CRL
// server that was down at startup does not keep every peer refused for 5 min.
const RETRY_WITHOUT_CRL_MS = 10_000;
// Timers cannot exceed 2^31-1 ms; a far nextUpdate would otherwise fire at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

function invalid(message: string, cause?: unknown): MtlsError {
  return new MtlsError("TESSERA_ERR_MTLS_CRL_INVALID", message, { cause });
}

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", `${name} must be a non-negative number of milliseconds`);
  return v;
}

/**
 * A revocation source backed by one CRL location. Starts loading at once;
 * `ready()` settles after the first attempt, `refresh()` reloads now,
 * `close()` stops the timer (timers are unref'd and never keep a process alive).
 */
export class CrlRevocationSource implements RevocationSource {
  /** CRLs are complete for their issuer, so a leaf without one is "unknown". */
  readonly authoritative = true;
  private readonly location: string;
  private readonly issuers: readonly ParsedCertificate[];
  private readonly refreshMs: number;
  private readonly staleGraceMs: number;
  private readonly onStale: "reject" | "accept";
  private readonly fetchCa: string | undefined;
  private readonly options: CrlSourceOptions;
  private readonly clock: () => Date;
  private held = new Map<string, Held>();
  private validators: { etag?: string; lastModified?: string; fileStamp?: string } = {};
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private closed = false;
  private readonly first: Promise<void>;

  constructor(options: CrlSourceOptions) {
    if (!options || typeof options.crl !== "string" || options.crl.length === 0) throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", "crl must be a file path or URL");
    if (options.onStale !== undefined && options.onStale !== "reject" && options.onStale !== "accept") {
      throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", 'onStale must be "reject" or "accept"');
    }
    this.options = options;
    this.location = options.crl;
    const given = options.issuers;
    this.issuers = Array.isArray(given) && given.length > 0 && typeof given[0] !== "string" ? (given as readonly ParsedCertificate[]) : loadCertificates(given as PemSource, "issuers");
    this.refreshMs = positive("refreshMs", options.refreshMs, 300_000) || 300_000;
    this.staleGraceMs = positive("staleGraceMs", options.staleGraceMs, 3_600_000);
    this.onStale = options.onStale ?? "reject";
    this.fetchCa = options.fetchCa === undefined ? undefined : loadCertificates(options.fetchCa, "fetchCa").map((c) => pemEncode("CERTIFICATE", c.der)).join("");
    this.clock = options.clock ?? (() => new Date());
    this.first = this.load().finally(() => this.schedule());
    // ready() may never be awaited; the failure is also reported through onError.
    this.first.catch(() => {});
  }

  /** Settles after the first load attempt: resolves if a CRL was loaded, rejects with its error otherwise. */
  ready(): Promise<void> {
    return this.first;
  }

  /** Reloads now (joins a load already under way); rejects on failure and keeps the CRLs held. */
  refresh(): Promise<void> {
    return this.load();
  }

  /** The CRLs currently held, one per issuer. */
  get crls(): ParsedCrl[] {
    return [...this.held.values()].map((h) => h.crl);
  }

  /** Stops refreshing. The CRLs held stay readable. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Revocation status of `certificate` by the CRL of `issuer`, if one is held (see RevocationSource.check). */
  check(certificate: ParsedCertificate, issuer: ParsedCertificate, at: Date): RevocationStatus {
    const h = this.held.get(certificate.issuer.toString("hex"));
    // The CRL must come from the very CA that signed this chain, not merely one with the same name.
    if (!h || !h.signer.spki.equals(issuer.spki)) return { status: "not-covered" };
    const next = h.crl.nextUpdate?.getTime();
    if (next !== undefined && at.getTime() > next + this.staleGraceMs && this.onStale === "reject") {
      return { status: "unknown", detail: `CRL expired at ${h.crl.nextUpdate!.toISOString()}` };
    }
    const entry = h.crl.revoked.get(certificate.serialHex);
    // removeFromCRL only appears in delta CRLs, where it lifts a hold: not revoked.
    if (!entry || entry.reason === "removeFromCRL") return { status: "good" };
    return { status: "revoked", revokedAt: entry.revokedAt, reason: entry.reason };
  }

  private load(): Promise<void> {
    if (!this.inflight) {
      this.inflight = this.loadOnce().finally(() => {
        this.inflight = undefined;
      });
    }
    return this.inflight;
  }

  private async loadOnce(): Promise<void> {
    try {
      const bytes = await this.read();
      if (!bytes) return;
      const next = this.accept(bytes);
      this.held = next;
      this.options.onUpdate?.(this.crls);
    } catch (err) {
      const e = err instanceof MtlsError ? err : invalid(`CRL ${this.location}: ${String(err)}`, err);
      try {
        this.options.onError?.(e);
      } catch {
        /* a throwing callback must not break the refresh loop */
      }
      throw e;
    }
  }

  /** The CRL bytes, or undefined when they have not changed since the last load. */
  private async read(): Promise<Buffer | undefined> {
    if (/^https?:\/\//i.test(this.location)) {
      const r = await fetchBytes(this.location, { ca: this.fetchCa, timeoutMs: this.options.timeoutMs, ...(this.held.size ? this.validators : {}) });
      if (r.notModified) return undefined;
      this.validators = { etag: r.etag, lastModified: r.lastModified };
      return r.body;
    }
    try {
      const st = await fs.stat(this.location);
      const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
      if (this.held.size && stamp === this.validators.fileStamp) return undefined;
      const body = await fs.readFile(this.location);
      this.validators = { fileStamp: stamp };
      return body;
    } catch (err) {
      throw new MtlsError("TESSERA_ERR_MTLS_CRL_UNAVAILABLE", `CRL ${this.location}: cannot read file`, { cause: err });
    }
  }

  /** Parses and checks every CRL in `bytes`; all must pass or none is taken. */
  private accept(bytes: Buffer): Map<string, Held> {
    const head = bytes.subarray(0, 64).toString("latin1");
    const ders = head.includes("-----BEGIN ") ? pemDecodeAll(bytes.toString("latin1")).filter((b) => b.label === "X509 CRL").map((b) => b.der) : [bytes];
    if (ders.length === 0) throw invalid(`CRL ${this.location}: no X509 CRL block`);
    const out = new Map<string, Held>();
    for (const der of ders) {
      let crl: ParsedCrl;
      try {
        crl = parseCrl(der);
      } catch (err) {
        throw invalid(`CRL ${this.location}: malformed`, err);
      }
      const signer = this.issuers.find((c) => c.subject.equals(crl.issuer) && verifyCrlSignature(crl, certificatePublicKey(c)));
      if (!signer) throw invalid(`CRL ${this.location}: signature does not verify against any configured issuer`);
      // RFC 5280 §5.2: a critical extension we cannot process (delta CRL, partitioned CRL…) makes the CRL unusable.
      if (crl.unhandledCritical.length) throw invalid(`CRL ${this.location}: unsupported critical extension ${crl.unhandledCritical.join(", ")}`);
      const key = crl.issuer.toString("hex");
      const old = this.held.get(key)?.crl;
      if (old && older(crl, old)) throw invalid(`CRL ${this.location}: older than the CRL held (replay?)`);
      out.set(key, { crl, signer });
    }
    return out;
  }

  private schedule(): void {
    if (this.closed) return;
    let delay = this.held.size ? this.refreshMs : Math.min(this.refreshMs, RETRY_WITHOUT_CRL_MS);
    const now = this.clock().getTime();
    for (const { crl } of this.held.values()) {
      const next = crl.nextUpdate?.getTime();
      // Fetch soon after a publisher is due to replace the CRL, but never spin on an overdue one.
      if (next !== undefined && next > now) delay = Math.min(delay, next - now + 1000);
    }
    this.timer = setTimeout(() => {
      this.load().catch(() => {}).finally(() => this.schedule());
    }, Math.min(delay, MAX_TIMER_MS));
    this.timer.unref();
  }
}

/** True if `crl` is older than `held` (by CRL number when both have one, else by thisUpdate). */
function older(crl: ParsedCrl, held: ParsedCrl): boolean {
  if (crl.crlNumber !== undefined && held.crlNumber !== undefined) return crl.crlNumber < held.crlNumber;
  return crl.thisUpdate.getTime() < held.thisUpdate.getTime();
}

