/**
 * The CRL, built from the store and cached. It is rebuilt after each
 * revocation (lazily, on the next read) and before nextUpdate, and
 * concurrent readers share one build.
 */
import { buildCrl, CrlEntryList, type CrlReason, type Issuer, issuerSkiOf, pemEncode } from "@tessera/pki";
import type { Clock } from "./runtime.js";
import type { Store } from "./ports.js";

/** A built CRL. */
export interface CrlSnapshot {
  der: Buffer;
  pem: string;
  thisUpdate: Date;
  nextUpdate: Date;
  number: bigint;
  entries: number;
}

/** Entries read from the store per page: a few milliseconds of work each, so requests keep being served between pages. */
export const CRL_PAGE_SIZE = 10_000;

/** Builds and caches the issuing CA's CRL. */
export class CrlService {
  private current: CrlSnapshot | undefined;
  private building: Promise<CrlSnapshot> | undefined;
  private stale = true;
  private readonly listeners = new Set<(crl: CrlSnapshot) => void>();

  constructor(
    private readonly store: Pick<Store, "listRevokedPage" | "nextCrlNumber">,
    private readonly issuer: Issuer,
    private readonly clock: Clock,
    /** thisUpdate → nextUpdate, seconds. */
    private readonly validitySeconds: number,
    /** Rebuild this long before nextUpdate, seconds. */
    private readonly refreshBeforeSeconds: number,
    /** Entries per store read. */
    private readonly pageSize = CRL_PAGE_SIZE,
  ) {}

  /**
   * Calls `listener` with every CRL built from now on, whatever asked for it
   * (a revocation, the refresh timer, a reload, a download), so that copies
   * such as the CRL file follow the cache. Returns the unsubscribe function.
   */
  onBuilt(listener: (crl: CrlSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Marks the cached CRL out of date (called after a revocation). */
  invalidate(): void {
    this.stale = true;
  }

  /** The current CRL, rebuilding it first if stale or near nextUpdate. */
  async get(): Promise<CrlSnapshot> {
    const now = this.clock.now().getTime();
    const c = this.current;
    if (c && !this.stale && now < c.nextUpdate.getTime() - this.refreshBeforeSeconds * 1000) return c;
    return this.rebuild();
  }

  /** Builds a new CRL now (shared by concurrent callers). */
  rebuild(): Promise<CrlSnapshot> {
    if (this.building) return this.building;
    this.stale = false;
    this.building = this.build().finally(() => {
      this.building = undefined;
    });
    return this.building;
  }

  private async build(): Promise<CrlSnapshot> {
    const now = this.clock.now();
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.validitySeconds * 1000);
    // Entries may leave the CRL once their certificate has expired (RFC 5280 §3.3).
    const entries = new CrlEntryList();
    for (let after: string | undefined; ; ) {
      const page = await this.store.listRevokedPage(thisUpdate, after, this.pageSize);
      for (const r of page) entries.add({ serialHex: r.serial, revokedAt: r.revokedAt, reason: (r.reason ?? undefined) as CrlReason | undefined });
      if (page.length < this.pageSize) break;
      after = page[page.length - 1]!.serial;
    }
    const number = await this.store.nextCrlNumber();
    const der = await buildCrl({
      issuer: this.issuer.certificate.subject,
      issuerKeyId: issuerSkiOf(this.issuer.certificate),
      privateKey: this.issuer.privateKey,
      thisUpdate,
      nextUpdate,
      crlNumber: number,
      entries,
    });
    // The PEM (a third more bytes than the DER: 60 MB for a million entries) is made when first asked for.
    let pem: string | undefined;
    const snapshot: CrlSnapshot = {
      der,
      get pem() {
        return (pem ??= pemEncode("X509 CRL", der));
      },
      thisUpdate,
      nextUpdate,
      number,
      entries: entries.count,
    };
    this.current = snapshot;
    for (const l of this.listeners) {
      try {
        l(snapshot);
      } catch {
        // A listener's failure is its own; the CRL is built.
      }
    }
    return snapshot;
  }
}
