/**
 * Live revocation feed: a Server-Sent Events client for Tessera's
 * `GET /tessera/v1/revocations/events`, so a revoked device is refused within
 * moments instead of at the next CRL refresh. It reconnects with capped
 * exponential backoff and resumes with Last-Event-ID; the CRL stays the
 * source of truth and the feed only adds revocations to it.
 */
import * as http from "node:http";
import * as https from "node:https";
import { StringDecoder } from "node:string_decoder";
import { pemEncode, type ParsedCertificate } from "@tessera/pki";
import { MtlsError } from "./errors.js";
import type { RevocationSource, RevocationStatus } from "./revocation.js";
import { SseParser, type SseEvent } from "./sse.js";
import { loadCertificates } from "./trust.js";

/** One revocation announced by the feed. */
export interface FeedRevocation {
  /** Serial in canonical lowercase hex (no leading zeros), as ParsedCertificate.serialHex. */
  serial: string;
  revokedAt: Date;
  /** CRL reason name, e.g. "keyCompromise", when sent. */
  reason?: string;
  /** The SSE event id, when sent. */
  id?: string;
}

/** Options of a RevocationFeed. */
export interface RevocationFeedOptions {
  /** Full URL of the event stream, e.g. `https://tessera.example/tessera/v1/revocations/events`. */
  url: string;
  /** Extra trusted CA certificates (PEM text or file path) for an https URL; the system roots otherwise. */
  ca?: string;
  /** Client certificate and key (PEM) if the feed requires mTLS. */
  cert?: string;
  key?: string;
  /** Extra request headers, e.g. `authorization`. */
  headers?: Record<string, string>;
  /** Event ID to resume after (sent as Last-Event-ID on the first connection). */
  lastEventId?: string;
  /** First reconnect delay in milliseconds (default 1 000); doubles per failed attempt. A `retry:` field from the server raises it. */
  minBackoffMs?: number;
  /** Largest reconnect delay in milliseconds (default 60 000). */
  maxBackoffMs?: number;
  /** Reconnect when nothing (not even a `: ping`) arrives for this long, in milliseconds (default 90 000). */
  idleTimeoutMs?: number;
  /** Called for each revocation received (after it is recorded). */
  onRevoked?: (revocation: FeedRevocation) => void;
  /** Called each time the stream is (re)opened with HTTP 200. */
  onOpen?: () => void;
  /** Called with connection failures and unreadable events; the feed keeps reconnecting. */
  onError?: (err: MtlsError) => void;
}

const SERIAL = /^[0-9a-f]{1,80}$/;

function feedError(message: string, cause?: unknown): MtlsError {
  return new MtlsError("TESSERA_ERR_MTLS_FEED", message, { cause });
}

/**
 * Subscribes to a revocation event stream and keeps the serials it announces.
 * Connects as soon as it is constructed; `close()` stops it. Implements
 * RevocationSource: listed serials are "revoked", all others "not-covered".
 */
export class RevocationFeed implements RevocationSource {
  /** Not authoritative: a serial it does not list may still be revoked. */
  readonly authoritative = false;
  private readonly url: URL;
  private readonly opts: RevocationFeedOptions;
  private readonly ca: string | undefined;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;
  private readonly revokedSerials = new Map<string, FeedRevocation>();
  private readonly parser: SseParser;
  private base: number;
  private attempt = 0;
  private req: http.ClientRequest | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private open = false;
  private resolveFirst!: () => void;
  private readonly first = new Promise<void>((resolve) => (this.resolveFirst = resolve));

  constructor(options: RevocationFeedOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch (err) {
      throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", "revocationFeed: not a URL", { cause: err });
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", "revocationFeed: URL must be http(s)");
    this.url = url;
    this.opts = options;
    this.ca = options.ca === undefined ? undefined : loadCertificates(options.ca, "revocationFeed ca").map((c) => pemEncode("CERTIFICATE", c.der)).join("");
    this.minBackoff = Math.max(0, options.minBackoffMs ?? 1000);
    this.maxBackoff = Math.max(this.minBackoff, options.maxBackoffMs ?? 60_000);
    this.base = this.minBackoff;
    this.parser = new SseParser(
      (e) => this.onEvent(e),
      (ms) => (this.base = Math.min(this.maxBackoff, Math.max(this.minBackoff, ms))),
      options.lastEventId ?? "",
    );
    this.connect();
  }

  /** Serials announced so far, with their revocation details. */
  get revoked(): ReadonlyMap<string, FeedRevocation> {
    return this.revokedSerials;
  }

  /** The last event ID received (sent as Last-Event-ID when reconnecting). */
  get lastEventId(): string {
    return this.parser.lastEventId;
  }

  /** True while the stream is open. */
  get connected(): boolean {
    return this.open;
  }

  /** Resolves when the stream has opened once (never rejects: the feed retries forever). */
  ready(): Promise<void> {
    return this.first;
  }

  /** "revoked" for a serial the feed announced, else "not-covered" (see RevocationSource.check). */
  check(certificate: ParsedCertificate): RevocationStatus {
    const r = this.revokedSerials.get(certificate.serialHex);
    return r ? { status: "revoked", revokedAt: r.revokedAt, reason: r.reason } : { status: "not-covered" };
  }

  /** Records a revocation as if the feed had announced it (for callers with another channel, and tests). */
  add(revocation: FeedRevocation): void {
    const serial = normalizeSerial(revocation.serial);
    if (!serial) throw new MtlsError("TESSERA_ERR_MTLS_CONFIG", "not a hex serial");
    // removeFromCRL lifts a certificateHold: the certificate is valid again.
    if (revocation.reason === "removeFromCRL") this.revokedSerials.delete(serial);
    else this.revokedSerials.set(serial, { ...revocation, serial });
  }

  /** Closes the stream and stops reconnecting. */
  close(): void {
    this.closed = true;
    this.open = false;
    if (this.timer) clearTimeout(this.timer);
    this.req?.destroy();
    this.req = undefined;
  }

  private report(err: MtlsError): void {
    try {
      this.opts.onError?.(err);
    } catch {
      /* a throwing callback must not stop the feed */
    }
  }

  private connect(): void {
    if (this.closed) return;
    this.parser.reset();
    const headers: Record<string, string> = { accept: "text/event-stream", "cache-control": "no-cache", ...this.opts.headers };
    if (this.parser.lastEventId) headers["last-event-id"] = this.parser.lastEventId;
    const common = { headers, agent: false as const };
    const req =
      this.url.protocol === "https:"
        ? https.get(this.url, { ...common, ca: this.ca, cert: this.opts.cert, key: this.opts.key })
        : http.get(this.url, common);
    this.req = req;
    let done = false;
    // Every way a connection can end comes here once, and schedules exactly one reconnect.
    const finish = (err?: MtlsError) => {
      if (done) return;
      done = true;
      this.open = false;
      if (this.req === req) this.req = undefined;
      req.destroy();
      if (this.closed) return;
      if (err) this.report(err);
      this.scheduleReconnect();
    };
    req.setTimeout(this.opts.idleTimeoutMs ?? 90_000, () => finish(feedError(`revocation feed ${this.url.href}: idle timeout`)));
    req.on("error", (err) => finish(feedError(`revocation feed ${this.url.href}: ${err.message}`, err)));
    req.on("response", (res) => {
      const type = String(res.headers["content-type"] ?? "");
      if (res.statusCode !== 200 || !type.toLowerCase().startsWith("text/event-stream")) {
        res.resume();
        return finish(feedError(`revocation feed ${this.url.href}: HTTP ${res.statusCode} ${type}`));
      }
      this.open = true;
      this.resolveFirst();
      try {
        this.opts.onOpen?.();
      } catch {
        /* ignore */
      }
      const decoder = new StringDecoder("utf8");
      res.on("data", (chunk: Buffer) => {
        // Data arriving means the connection is healthy: the next failure starts the backoff afresh.
        this.attempt = 0;
        this.parser.push(decoder.write(chunk));
      });
      res.on("end", () => finish(feedError(`revocation feed ${this.url.href}: stream ended`)));
      res.on("error", (err) => finish(feedError(`revocation feed ${this.url.href}: ${err.message}`, err)));
      res.on("close", () => finish());
    });
  }

  private scheduleReconnect(): void {
    const cap = Math.min(this.maxBackoff, this.base * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    // Jitter (50–100 % of the delay) keeps a fleet of services from reconnecting in step after a server restart.
    const delay = cap * (0.5 + Math.random() / 2);
    this.timer = setTimeout(() => this.connect(), delay);
    this.timer.unref();
  }

  private onEvent(e: SseEvent): void {
    if (e.type !== "revoked") return;
    let body: { serial?: unknown; revokedAt?: unknown; reason?: unknown };
    try {
      body = JSON.parse(e.data) as typeof body;
    } catch (err) {
      return this.report(feedError(`revocation feed: event ${e.lastEventId} is not JSON`, err));
    }
    const serial = typeof body?.serial === "string" ? normalizeSerial(body.serial) : undefined;
    if (!serial) return this.report(feedError(`revocation feed: event ${e.lastEventId} has no valid serial`));
    const at = typeof body.revokedAt === "string" ? new Date(body.revokedAt) : new Date(NaN);
    const revocation: FeedRevocation = {
      serial,
      // An unreadable time must not drop a revocation: the serial is what refuses the device.
      revokedAt: Number.isNaN(at.getTime()) ? new Date() : at,
      ...(typeof body.reason === "string" ? { reason: body.reason } : {}),
      ...(e.lastEventId ? { id: e.lastEventId } : {}),
    };
    this.add(revocation);
    try {
      this.opts.onRevoked?.(revocation);
    } catch {
      /* ignore */
    }
  }
}

/** Canonical form of a hex serial (lowercase, no leading zeros), or undefined if it is not hex. */
function normalizeSerial(text: string): string | undefined {
  const s = text.trim().toLowerCase().replace(/^0x/, "").replace(/:/g, "");
  if (!SERIAL.test(s)) return undefined;
  return s.replace(/^0+(?=.)/, "");
}
