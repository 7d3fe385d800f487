/**
 * ReloadableTls: a device's TLS identity (client.key, client.crt, ca.crt in
 * its store directory) that follows renewals without a restart. It feeds
 * https.Agent, undici (fetch) and TLS servers; after a change, new handshakes
 * use the new certificate and idle keep-alive connections holding the old one
 * are closed, which the original did not do (imprint spec §8, weakness W18).
 * A changed key/certificate pair is adopted only when the key matches the
 * certificate, so a half-written or mixed store never replaces a working one.
 */
import { STORE_FILES } from "../keystore/store-dir.js";
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as https from "node:https";
import * as path from "node:path";
import * as tls from "node:tls";
import type { Duplex } from "node:stream";
import { Agent as UndiciAgent, Dispatcher } from "undici";
import { certificatePublicKey, importPrivateKey, keysMatch, parseCertificate, pemDecodeAll, PkiError, type ParsedCertificate } from "@tessera/pki";

/** File names inside a store directory (imprint spec §8: client/store.go). */
/** The three files a TLS identity needs, named as in the store directory (keystore/store-dir.ts). */
const TLS_FILES = { key: STORE_FILES.key, cert: STORE_FILES.certificate, ca: STORE_FILES.ca } as const;

/** Options of ReloadableTls.open; give `dir`, or all three `files` as paths. */
export interface ReloadableTlsOptions {
  /** Store directory holding the three files. */
  dir?: string;
  /** File names or paths overriding the store directory names; relative ones are resolved against `dir` (or the working directory). */
  files?: { key?: string; cert?: string; ca?: string };
  /** Passphrase of an encrypted private key. */
  passphrase?: string;
  /** Polling interval in milliseconds, the fallback when file events are missed (default 30 000; 0 turns polling off). */
  pollMs?: number;
  /** Watch the directories with fs.watch (default true). */
  watch?: boolean;
  /** Lowest TLS version offered or accepted (default "TLSv1.2", as the original's LoadTLS). */
  minVersion?: tls.SecureVersion;
  /** Extra attempts when a read finds a missing, unparsable or mismatched set, e.g. mid-replacement (default 4). */
  retries?: number;
  /** Delay before the first extra attempt in milliseconds, doubling each time (default 20). */
  retryDelayMs?: number;
}

/** The identity currently in use. */
export interface TlsIdentity {
  /** Increases by one with every adopted change (1 for the first load). */
  generation: number;
  /** The leaf certificate from the cert file. */
  certificate: ParsedCertificate;
  /** Its serial, lowercase hex without leading zeros. */
  serialHex: string;
  /** End of the certificate's validity. */
  notAfter: Date;
}

/** undici Agent options for undiciDispatcher; `connect` must be an options object (the TLS part is ours). */
export type UndiciDispatcherOptions = Omit<UndiciAgent.Options, "connect"> & { connect?: Exclude<UndiciAgent.Options["connect"], Function> };

/** Payload of the "reload" event. */
export interface ReloadEvent {
  /** The identity replaced. */
  previous: TlsIdentity;
  /** The identity now in use. */
  current: TlsIdentity;
}

interface Raw { key: Buffer; cert: Buffer; ca: Buffer }
interface Loaded extends Raw { context: tls.SecureContext; identity: TlsIdentity }

// File events arrive in bursts (one per rename); wait for the burst to end before reading.
const SETTLE_MS = 50;

const sameRaw = (a: Raw | undefined, b: Raw) => !!a && a.key.equals(b.key) && a.cert.equals(b.cert) && a.ca.equals(b.ca);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const generationOf = new WeakMap<object, number>();

function inodeOf(p: string): number | undefined {
  try {
    return fs.statSync(p).ino;
  } catch {
    return undefined;
  }
}

/**
 * A TLS identity loaded from files and reloaded when they change. Events:
 * "reload" (ReloadEvent) after a change was adopted; "warning" (Error) when a
 * change was seen but not adopted, or a server could not take it; the
 * previous identity then stays in use.
 */
export class ReloadableTls extends EventEmitter<{ reload: [ReloadEvent]; warning: [Error] }> {
  /** Absolute paths of the key, certificate and CA files. */
  readonly paths: { key: string; cert: string; ca: string };
  private current!: Loaded;
  private rejected: Raw | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly hooks = new Set<() => void>();
  private readonly watchers = new Map<string, { watcher: fs.FSWatcher; ino: number }>();
  private readonly watchTargets = new Map<string, Set<string>>();
  private settleTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(private readonly opts: ReloadableTlsOptions) {
    super();
    const base = opts.dir ?? ".";
    const f = { ...TLS_FILES, ...opts.files };
    if (!opts.dir && !(opts.files?.key && opts.files.cert && opts.files.ca)) {
      throw new TypeError("ReloadableTls: give dir, or files.key, files.cert and files.ca");
    }
    this.paths = { key: path.resolve(base, f.key), cert: path.resolve(base, f.cert), ca: path.resolve(base, f.ca) };
    // Watch each file's directory for the files, and that directory's parent for the
    // directory itself: a writer may stage a new directory and rename it into place,
    // which leaves a watch on the old directory deaf.
    for (const file of Object.values(this.paths)) {
      const dir = path.dirname(file);
      for (const [where, name] of [[dir, path.basename(file)], [path.dirname(dir), path.basename(dir)]] as const) {
        if (name) this.watchTargets.set(where, (this.watchTargets.get(where) ?? new Set<string>()).add(name));
      }
    }
  }

  /**
   * Loads the identity (retrying briefly, as during a replacement) and starts
   * watching. Rejects with "not enrolled: no certificates in <dir>" when a
   * file is missing, or with a PkiError when the set is unusable.
   */
  static async open(options: ReloadableTlsOptions): Promise<ReloadableTls> {
    const t = new ReloadableTls(options);
    try {
      t.current = (await t.readValid())!; // nothing loaded yet, so never "unchanged"
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        throw new Error(`not enrolled: no certificates in ${options.dir ?? path.dirname(t.paths.cert)}`, { cause: err });
      }
      throw err;
    }
    t.ensureWatches();
    const pollMs = options.pollMs ?? 30_000;
    if (pollMs > 0) t.pollTimer = setInterval(() => t.requestReload(), pollMs).unref();
    return t;
  }

  /** The identity in use now. */
  get identity(): TlsIdentity {
    return this.current.identity;
  }

  /** The current secure context (key, certificate, CA as the only trust anchor, minimum version). */
  secureContext(): tls.SecureContext {
    return this.current.context;
  }

  /**
   * Reads the files now and adopts them if they changed and are a valid set.
   * Resolves true if a change was adopted, false otherwise (never rejects:
   * a bad set is reported with a "warning" event). Calls are serialized.
   */
  reload(): Promise<boolean> {
    const p = this.queue.then(() => this.doReload());
    this.queue = p.catch(() => false);
    return p;
  }

  /**
   * An https.Agent (keep-alive by default) whose new connections present the
   * current certificate and trust only the CA file. After a reload its idle
   * sockets are closed and busy ones are not reused, so the next request
   * handshakes with the new certificate. Destroy it when done.
   */
  httpsAgent(options: https.AgentOptions = {}): https.Agent {
    return new ReloadingHttpsAgent(this, this.hooks, { keepAlive: true, ...options });
  }

  /**
   * An undici dispatcher for `fetch(url, { dispatcher })` that presents the
   * current certificate and trusts only the CA file. Each reload starts a
   * fresh connection pool and closes the old one once its requests finish.
   * `connect` options (timeouts etc.) may be given; close it when done.
   */
  undiciDispatcher(options: UndiciDispatcherOptions = {}): Dispatcher {
    return new ReloadingDispatcher(this, this.hooks, options);
  }

  /**
   * Options to spread into https.createServer / tls.createServer: the current
   * key, certificate and CA (used to verify client certificates when the
   * server sets requestCert), plus an SNICallback that gives every handshake
   * carrying SNI the current certificate. Handshakes without SNI (clients
   * connecting by IP) need attachServer too. `extra` adds context options
   * such as ciphers or a different client CA.
   */
  serverOptions(extra: tls.SecureContextOptions = {}): tls.TlsOptions {
    // Built at reload time, where a failure becomes a "warning", not a throw inside a handshake.
    let context = tls.createSecureContext(this.contextOptions(extra));
    this.hooks.add(() => (context = tls.createSecureContext(this.contextOptions(extra))));
    return { ...this.contextOptions(extra), SNICallback: (_servername, cb) => cb(null, context) };
  }

  /**
   * Keeps a TLS or HTTPS server's default context current: sets it now and
   * calls server.setSecureContext after each reload. Pass the same `extra`
   * as to serverOptions (setSecureContext resets options it is not given).
   * Returns a function that detaches the server.
   */
  attachServer(server: tls.Server, extra: tls.SecureContextOptions = {}): () => void {
    const hook = () => server.setSecureContext(this.contextOptions(extra));
    hook();
    this.hooks.add(hook);
    return () => void this.hooks.delete(hook);
  }

  /** Stops watching and polling. Agents and servers keep the last identity. */
  close(): void {
    this.closed = true;
    clearTimeout(this.settleTimer);
    clearInterval(this.pollTimer);
    for (const { watcher } of this.watchers.values()) watcher.close();
    this.watchers.clear();
    this.hooks.clear();
  }

  private contextOptions(extra: tls.SecureContextOptions): tls.SecureContextOptions {
    const c = this.current;
    return { minVersion: this.opts.minVersion ?? "TLSv1.2", ...extra, key: c.key, cert: c.cert, ca: extra.ca ?? c.ca, passphrase: this.opts.passphrase };
  }

  private async doReload(): Promise<boolean> {
    if (this.closed) return false;
    this.ensureWatches();
    let next: Loaded | undefined;
    try {
      next = await this.readValid();
    } catch (err) {
      if (!this.closed) this.emit("warning", err instanceof Error ? err : new Error(String(err)));
      return false;
    }
    if (!next || this.closed) return false;
    const previous = this.current.identity;
    this.current = next;
    this.rejected = undefined;
    for (const hook of this.hooks) {
      try {
        hook();
      } catch (err) {
        this.emit("warning", new Error(`applying the reloaded identity failed: ${(err as Error).message}`, { cause: err }));
      }
    }
    this.emit("reload", { previous, current: next.identity });
    return true;
  }

  // Undefined when the files equal the identity in use or a set already rejected. Retries
  // because a read can land between a writer's renames (new key, old certificate) or in
  // the moment a swapped directory is absent.
  private async readValid(): Promise<Loaded | undefined> {
    const retries = this.opts.retries ?? 4;
    for (let attempt = 0; ; attempt++) {
      let raw: Raw | undefined;
      try {
        const [key, cert, ca] = await Promise.all([this.paths.key, this.paths.cert, this.paths.ca].map((p) => fsp.readFile(p)));
        raw = { key: key!, cert: cert!, ca: ca! };
        if (sameRaw(this.current, raw) || sameRaw(this.rejected, raw)) return undefined;
        return this.validate(raw);
      } catch (err) {
        if (attempt >= retries || this.closed) {
          // Remember a bad set so polling does not retry and re-report it every time.
          if (raw) this.rejected = raw;
          throw err;
        }
        await sleep((this.opts.retryDelayMs ?? 20) * 2 ** attempt);
      }
    }
  }

  private validate(raw: Raw): Loaded {
    const certificate = parseCertificate(raw.cert);
    const key = importPrivateKey(raw.key, this.opts.passphrase);
    if (!keysMatch(key, certificatePublicKey(certificate))) {
      throw new PkiError("TESSERA_ERR_PKI_KEY_MISMATCH", "private key does not match the certificate", `${this.paths.key} / ${this.paths.cert}`);
    }
    if (!pemDecodeAll(raw.ca.toString("latin1")).some((b) => b.label === "CERTIFICATE")) {
      throw new PkiError("TESSERA_ERR_PKI_MALFORMED_PEM", "no CA certificate", this.paths.ca);
    }
    const context = tls.createSecureContext({ key: raw.key, cert: raw.cert, ca: raw.ca, passphrase: this.opts.passphrase, minVersion: this.opts.minVersion ?? "TLSv1.2" });
    const generation = (this.current?.identity.generation ?? 0) + 1;
    return { ...raw, context, identity: { generation, certificate, serialHex: certificate.serialHex, notAfter: certificate.notAfter } };
  }

  /** (Re)establishes a watch on every target whose directory is new or was replaced (its inode changed). */
  private ensureWatches(): void {
    if (this.opts.watch === false || this.closed) return;
    for (const [dir, names] of this.watchTargets) {
      // Absent (mid-swap) leaves no watch; the parent's watch or the poll brings us back.
      const ino = inodeOf(dir);
      const existing = this.watchers.get(dir);
      if (existing?.ino === ino) continue;
      existing?.watcher.close();
      this.watchers.delete(dir);
      if (ino === undefined) continue;
      try {
        // persistent: false, so a watch never keeps the process alive (like an unref'd timer).
        const watcher = fs.watch(dir, { persistent: false }, (_event, filename) => {
          if (filename === null || names.has(String(filename))) this.requestReload();
        });
        watcher.on("error", () => {
          watcher.close();
          this.watchers.delete(dir);
          this.requestReload();
        });
        this.watchers.set(dir, { watcher, ino });
      } catch {
        // Unwatchable (permissions, platform); polling still covers it.
      }
    }
  }

  private requestReload(): void {
    if (this.closed || this.settleTimer) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = undefined;
      void this.reload();
    }, SETTLE_MS).unref();
  }
}

/** https.Agent whose pool is keyed by generation, so sockets of an older identity are never reused. */
class ReloadingHttpsAgent extends https.Agent {
  private readonly dropIdle = () => {
    for (const list of Object.values(this.freeSockets)) for (const s of list ?? []) s.destroy();
  };

  constructor(private readonly source: ReloadableTls, private readonly hooks: Set<() => void>, options: https.AgentOptions) {
    super(options);
    hooks.add(this.dropIdle);
  }

  override createConnection(options: https.RequestOptions, cb?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    // tls.connect uses options.secureContext instead of building one from key/cert/ca.
    const withContext = { ...options, secureContext: this.source.secureContext() };
    const socket = super.createConnection(withContext, cb);
    if (socket) generationOf.set(socket, this.source.identity.generation);
    return socket;
  }

  // The generation in the name also keeps TLS sessions of the old identity from being resumed.
  override getName(options?: https.RequestOptions): string {
    return `${super.getName(options)}:tessera-g${this.source.identity.generation}`;
  }

  override keepSocketAlive(socket: Duplex): boolean {
    if (generationOf.get(socket) !== this.source.identity.generation) return false;
    return (super.keepSocketAlive as (s: Duplex) => boolean)(socket);
  }

  override destroy(): void {
    this.hooks.delete(this.dropIdle);
    super.destroy();
  }
}

/** An undici dispatcher that forwards to one Agent per generation. */
class ReloadingDispatcher extends Dispatcher {
  private agent: UndiciAgent;
  private readonly swap = () => {
    const old = this.agent;
    this.agent = this.makeAgent();
    old.close().catch(() => {}); // the old pool closes once its requests finish
  };

  constructor(private readonly source: ReloadableTls, private readonly hooks: Set<() => void>, private readonly options: UndiciDispatcherOptions) {
    super();
    this.agent = this.makeAgent();
    hooks.add(this.swap);
  }

  private makeAgent(): UndiciAgent {
    // A fresh Agent also has a fresh TLS session cache: no resumption as the old identity.
    return new UndiciAgent({ ...this.options, connect: { ...this.options.connect, secureContext: this.source.secureContext() } });
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.agent.dispatch(options, handler);
  }

  // Dispatcher declares close/destroy as overload sets (a promise, or a callback and
  // void); one signature answering all of them needs the loose return type.
  override close(callback?: () => void): any {
    this.hooks.delete(this.swap);
    return callback ? void this.agent.close().then(callback, callback) : this.agent.close();
  }

  override destroy(a?: Error | null | (() => void), b?: () => void): any {
    this.hooks.delete(this.swap);
    const [err, callback] = typeof a === "function" ? [null, a] : [a ?? null, b];
    return callback ? void this.agent.destroy(err).then(callback, callback) : this.agent.destroy(err);
  }
}
