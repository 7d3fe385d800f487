/**
 * Long operations started from the console, run in the background with
 * progress kept in the store (any replica's console can follow a job):
 * "crl-rebuild" (sign a fresh CRL now) and "revoke-bootstrap-batch" (a
 * bootstrap credential leaked: revoke it, then every device enrolled with it
 * and their certificates). A job runs in the process that started it; one
 * interrupted by a restart stays "running" until an operator starts another
 * (its record says how far it got).
 */
import { randomUUID } from "node:crypto";
import { parseCrlReason } from "@tessera/pki";
import type { Logger } from "pino";
import type { Authority } from "../authority/authority.js";
import type { BootstrapCredentials } from "../authority/bootstrap-credentials.js";
import type { JobRecord, Store } from "../authority/ports.js";
import { TesseraError } from "../errors.js";

/** Kinds of job and what each needs. */
export type JobRequest = { kind: "crl-rebuild" } | { kind: "revoke-bootstrap-batch"; credentialId: string; reason: string };

/** Reports progress: `done` of `total`. */
type Progress = (done: number, total: number) => Promise<void>;

/** Starts and tracks jobs. */
export class JobRunner {
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly deps: {
      authority: Pick<Authority, "crl" | "revokeDevice">;
      credentials: BootstrapCredentials;
      store: Pick<Store, "createJob" | "getJob" | "listJobs" | "updateJobProgress" | "finishJob" | "devicesIssuedBy" | "appendAudit">;
      now: () => Date;
      log: Logger;
    },
  ) {}

  /** Validates and starts a job; resolves once it is recorded (not when it ends). */
  async start(req: JobRequest, actor: string): Promise<JobRecord> {
    const work = await this.plan(req, actor);
    const at = this.deps.now();
    const job: JobRecord = {
      id: randomUUID(), kind: req.kind, params: { ...req }, status: "running", done: 0, total: 0, createdBy: actor,
      createdAt: at, updatedAt: at, finishedAt: null, result: null, error: null,
    };
    await this.deps.store.createJob(job);
    await this.deps.store.appendAudit({ at, actor, action: "job.started", target: job.id, detail: { ...req } });
    const run = this.run(job, work).finally(() => this.running.delete(run));
    this.running.add(run);
    return job;
  }

  /** Jobs, newest first. */
  list(limit = 50): Promise<JobRecord[]> {
    return this.deps.store.listJobs(limit);
  }

  /** A job by id. */
  async get(id: string): Promise<JobRecord> {
    const job = await this.deps.store.getJob(id);
    if (!job) throw new TesseraError("TESSERA_ERR_NOT_FOUND", { message: "no such job", detail: id });
    return job;
  }

  /** Waits for the jobs this process is running (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private async run(job: JobRecord, work: (progress: Progress) => Promise<Record<string, unknown>>): Promise<void> {
    const { store, now, log } = this.deps;
    try {
      const result = await work((done, total) => store.updateJobProgress(job.id, done, total, now()));
      await store.finishJob(job.id, "succeeded", now(), result, null);
      log.info({ job: job.id, kind: job.kind, result }, "job finished");
    } catch (err) {
      log.error({ err, job: job.id, kind: job.kind }, "job failed");
      const message = err instanceof TesseraError ? `${err.code}: ${err.message}` : "internal error (see the server log)";
      await store.finishJob(job.id, "failed", now(), null, message).catch((e) => log.error({ err: e, job: job.id }, "cannot record the job's failure"));
    }
  }

  /** Checks a request before anything is recorded and returns the work to do. */
  private async plan(req: JobRequest, actor: string): Promise<(progress: Progress) => Promise<Record<string, unknown>>> {
    const { authority, credentials, store } = this.deps;
    if (req.kind === "crl-rebuild") {
      return async (progress) => {
        await progress(0, 1);
        const crl = await authority.crl.rebuild();
        await progress(1, 1);
        return { crlNumber: crl.number.toString(), entries: crl.entries, thisUpdate: crl.thisUpdate.toISOString(), nextUpdate: crl.nextUpdate.toISOString() };
      };
    }
    // The reason is checked before anything changes: the job revokes the credential first.
    try {
      parseCrlReason(req.reason);
    } catch {
      throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { message: "reason must be a CRL reason name (RFC 5280 §5.3.1)", detail: req.reason });
    }
    const credential = await credentials.get(req.credentialId);
    if (!credential || (credential.kind !== "certificate" && credential.kind !== "secret")) {
      throw new TesseraError("TESSERA_ERR_NOT_FOUND", { message: "no such bootstrap certificate or build secret", detail: req.credentialId });
    }
    return async (progress) => {
      // The credential first, so no new device can enroll with it while the others are revoked.
      const revokedCredential = credential.revokedAt === null ? (await credentials.revoke(credential, actor), true) : false;
      const devices = await store.devicesIssuedBy(`${credential.kind === "certificate" ? "bootstrap" : "secret"}:${credential.name}`);
      let certificates = 0;
      let done = 0;
      await progress(0, devices.length);
      for (const id of devices) {
        const { revoked } = await authority.revokeDevice(id, req.reason, actor);
        certificates += revoked.length;
        done += 1;
        // Progress every 25 devices (and at the end) keeps the console moving without a write per device.
        if (done % 25 === 0 || done === devices.length) await progress(done, devices.length);
      }
      return { credential: credential.name, credentialRevoked: revokedCredential, devices: devices.length, certificates };
    };
  }
}
