/**
 * The current CRL as a PEM file (`[revocation] crl_file`), for brokers and
 * proxies that read revocations from a file (Mosquitto's `crlfile`, nginx's
 * `ssl_crl`, HAProxy's `crl-file`). The file follows the CRL cache: it is
 * written at start and whenever a CRL is built — after every revocation
 * (this process at once, others when RevocationEvents' poll finds them) and
 * before nextUpdate (the server's refresh timer). Writes are atomic
 * (temporary file + rename, mode 0644), so a reader never sees half a CRL,
 * and never go backwards (a CRL with a lower number than the file's is not
 * written).
 */
import { EventEmitter } from "node:events";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { CrlSnapshot } from "./crl-service.js";
import type { RevocationEvent } from "./revocation-events.js";

/** Options of the CRL file writer. */
export interface CrlFileOptions {
  /** Absolute path of the PEM file. */
  file: string;
  /** The CRL cache (CrlService). */
  crl: { get(): Promise<CrlSnapshot>; onBuilt(listener: (crl: CrlSnapshot) => void): () => void };
  /** Revocations as they happen (RevocationEvents): each one makes a new CRL, hence a new file. */
  revocations: { on(event: "revoked", l: (e: RevocationEvent) => void): unknown; off(event: "revoked", l: (e: RevocationEvent) => void): unknown };
  /** Where failures are reported. */
  onError?: (message: string, err: unknown) => void;
}

/** Keeps a PEM copy of the current CRL on disk; emits "written" (CrlSnapshot) after each write. */
export class CrlFile extends EventEmitter {
  private written: bigint | undefined;
  private queue: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;
  private pending: NodeJS.Immediate | undefined;
  private readonly onRevoked = () => {
    // RevocationEvents invalidates the CRL cache right after it emits, so ask on the next turn;
    // a burst of revocations (a device's certificates) makes one CRL.
    this.pending ??= setImmediate(() => {
      this.pending = undefined;
      this.opts.crl.get().catch((err) => this.report("CRL rebuild for the CRL file failed", err));
    });
  };

  constructor(private readonly opts: CrlFileOptions) {
    super();
  }

  /** Writes the current CRL and follows every later one until stop(). */
  async start(): Promise<void> {
    this.unsubscribe = this.opts.crl.onBuilt((crl) => void this.write(crl));
    this.opts.revocations.on("revoked", this.onRevoked);
    await this.write(await this.opts.crl.get());
  }

  /** Stops following; waits for a write under way. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.opts.revocations.off("revoked", this.onRevoked);
    if (this.pending) clearImmediate(this.pending);
    this.pending = undefined;
    await this.queue;
  }

  /** Queues a write of `crl` (writes run one at a time, in order). */
  write(crl: CrlSnapshot): Promise<void> {
    this.queue = this.queue.then(async () => {
      if (this.written !== undefined && crl.number <= this.written) return;
      try {
        await writeAtomic(this.opts.file, crl.pem);
        this.written = crl.number;
        this.emit("written", crl);
      } catch (err) {
        this.report(`cannot write the CRL file ${this.opts.file}`, err);
      }
    });
    return this.queue;
  }

  private report(message: string, err: unknown): void {
    this.opts.onError?.(message, err);
  }
}

async function writeAtomic(file: string, data: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    await fs.writeFile(tmp, data, { mode: 0o644 });
    // The mode given to writeFile is filtered by the umask; relying parties (a broker user) must read it.
    await fs.chmod(tmp, 0o644);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}
