/**
 * Revocations as a stream of events, for the live feed relying parties
 * subscribe to (GET /tessera/v1/revocations/events) and for keeping the CRL
 * cache honest. A revocation made by this process is announced at once; one
 * made elsewhere (the CLI, another replica on the same PostgreSQL) is found
 * by polling the store for rows revoked since the last poll. Each serial is
 * announced once per process.
 */
import { EventEmitter } from "node:events";
import type { Clock } from "./runtime.js";
import type { Store } from "./ports.js";

/** One revocation. */
export interface RevocationEvent {
  /** Monotonic per process; used as the SSE id. */
  id: number;
  serial: string;
  revokedAt: Date;
  reason: string | null;
}

/** How far back a poll looks past the last one: revocations committed late by other writers still get seen. */
const POLL_OVERLAP_MS = 60_000;
/** How many recent events are kept for subscribers that reconnect with Last-Event-ID. */
const HISTORY = 1000;

/** Emits "revoked" events (RevocationEvent). */
export class RevocationEvents extends EventEmitter {
  private nextId = 1;
  private readonly seen = new Map<string, number>();
  private readonly history: RevocationEvent[] = [];
  private pollFrom: Date;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;

  constructor(
    private readonly store: Pick<Store, "listRevokedSince">,
    private readonly clock: Clock,
    /** Called whenever a revocation is learnt (the CRL cache drops its copy). */
    private readonly onRevoked: () => void,
  ) {
    super();
    this.setMaxListeners(0);
    this.pollFrom = new Date(clock.now().getTime() - POLL_OVERLAP_MS);
  }

  /** Announces revocations this process just committed. */
  revokedHere(serials: readonly string[], at: Date, reason: string | null): void {
    let any = false;
    for (const serial of serials) any = this.announce(serial, at, reason) || any;
    if (any) this.onRevoked();
  }

  private announce(serial: string, revokedAt: Date, reason: string | null): boolean {
    if (this.seen.has(serial)) return false;
    const event: RevocationEvent = { id: this.nextId++, serial, revokedAt, reason };
    this.seen.set(serial, event.id);
    this.history.push(event);
    if (this.history.length > HISTORY) {
      const dropped = this.history.shift()!;
      // Forget serials old enough to have left the overlap window; keeps `seen` bounded.
      if (dropped.revokedAt.getTime() < this.pollFrom.getTime() - POLL_OVERLAP_MS) this.seen.delete(dropped.serial);
    }
    this.emit("revoked", event);
    return true;
  }

  /** Events after `lastId` still in memory (for a reconnecting subscriber). */
  since(lastId: number): RevocationEvent[] {
    return this.history.filter((e) => e.id > lastId);
  }

  /** Looks for revocations made by other processes once. */
  poll(): Promise<void> {
    this.polling ??= (async () => {
      try {
        const started = this.clock.now();
        const rows = await this.store.listRevokedSince(new Date(this.pollFrom.getTime() - POLL_OVERLAP_MS));
        let any = false;
        for (const r of rows) any = this.announce(r.serial, r.revokedAt, r.reason) || any;
        if (any) this.onRevoked();
        this.pollFrom = started;
      } finally {
        this.polling = undefined;
      }
    })();
    return this.polling;
  }

  /** Polls every `intervalMs` until stop(); errors go to `onError`. */
  start(intervalMs: number, onError: (err: unknown) => void): void {
    this.stop();
    this.timer = setInterval(() => void this.poll().catch(onError), intervalMs).unref();
  }

  /** Stops polling. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
