/**
 * Device-side imprint client (spec §3–§5, §8): enrollment, Tier 1 mTLS
 * renewal, Tier 2 challenge renewal and the renew-or-re-enroll decision,
 * wire-compatible with imprint servers and with Tessera's imprint front-end.
 */
import * as os from "node:os";
import type * as crypto from "node:crypto";
import { nameAttribute } from "@tessera/pki";
import { encodeStoredKey, loadIdentity, saveIdentity, StoreDirError, type StoredIdentity } from "../../keystore/store-dir.js";
import { ImprintError } from "./errors.js";
import { challengeMessage, signProof } from "./proof.js";
import { checkEnrollmentResponse } from "./response.js";
import { renewOrReenroll, type RenewOrReenrollOptions, type RenewOutcome } from "./renew-or-reenroll.js";
import { goArch, goOs, newKeyAndCsr, postJson, type TlsMaterial } from "./wire.js";

/** Options of ImprintClient. */
export interface ImprintClientOptions {
  /** Base URL of the service, e.g. "https://enroll.example.com"; endpoints are appended as "/api/v1/…" (as imprint does: no slash handling). */
  serviceUrl: string;
  /** Store directory (client.key, client.crt, ca.crt, enrollment.json). */
  storeDir: string;
  /** PEM roots trusted for the public endpoints (enroll, challenge); default Node's bundled roots. Tier 1 always trusts ca.crt alone. */
  trust?: string;
  /** Deadline of each HTTP exchange in milliseconds (default 30 000, imprint's). */
  timeoutMs?: number;
  /** Clock for the renewal decision (default () => new Date()). */
  now?: () => Date;
  /** Enrollment `hostname` and CSR CN (default os.hostname(); "" sends an empty subject). */
  hostname?: string;
  /** Enrollment `os` (default Go's GOOS name of process.platform: linux, darwin, windows…). */
  os?: string;
  /** Enrollment `arch` (default Go's GOARCH name of process.arch: amd64, arm64, arm, 386…). */
  arch?: string;
}

/** What a successful enroll, renew or challengeRenew stored. */
export interface ImprintResult {
  serverId: string;
  certificatePem: string;
  caPem: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** The three operations renewOrReenroll chooses between (a client, or a fake in tests). */
export interface ImprintOperations {
  enroll(args: { buildSecret: string; fingerprint: string }): Promise<ImprintResult>;
  renew(): Promise<ImprintResult>;
  challengeRenew(args: { fingerprint: string }): Promise<ImprintResult>;
}

/**
 * An imprint client bound to one service and one store directory. Every
 * operation makes a fresh EC P-256 key, checks the answer (W19) and only then
 * replaces the stored identity as one set; on any failure the store is untouched.
 */
export class ImprintClient implements ImprintOperations {
  private readonly serviceUrl: string;
  private readonly storeDir: string;
  private readonly trust: string | undefined;
  private readonly timeoutMs: number;
  private readonly now: () => Date;
  private readonly hostname: string;
  private readonly os: string;
  private readonly arch: string;

  constructor(opts: ImprintClientOptions) {
    const problems: string[] = [];
    if (typeof opts.serviceUrl !== "string" || !/^https?:\/\/[^/]/i.test(opts.serviceUrl)) problems.push("serviceUrl must be an http(s) URL");
    if (typeof opts.storeDir !== "string" || opts.storeDir === "") problems.push("storeDir is required");
    if (opts.timeoutMs !== undefined && !(Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0)) problems.push("timeoutMs must be a positive number");
    if (problems.length > 0) throw new TypeError(`invalid ImprintClient options: ${problems.join("; ")}`);
    this.serviceUrl = opts.serviceUrl;
    this.storeDir = opts.storeDir;
    this.trust = opts.trust;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.now = opts.now ?? (() => new Date());
    this.hostname = opts.hostname ?? os.hostname();
    this.os = opts.os ?? goOs();
    this.arch = opts.arch ?? goArch();
  }

  /**
   * Enrolls (POST /api/v1/enroll) with the build secret and fingerprint,
   * sending all six fields in imprint's order, and stores the identity with
   * that fingerprint.
   */
  async enroll(args: { buildSecret: string; fingerprint: string }): Promise<ImprintResult> {
    const { privateKey, csrPem } = newKeyAndCsr(this.hostname);
    const body = JSON.stringify({
      build_secret: args.buildSecret,
      fingerprint: args.fingerprint,
      hostname: this.hostname,
      os: this.os,
      arch: this.arch,
      csr: csrPem,
    });
    return this.exchange({
      path: "/api/v1/enroll", body, tls: this.publicTls(), what: "enrollment", privateKey, fingerprint: args.fingerprint,
    });
  }

  /**
   * Tier 1 renewal (POST /api/v1/renew) over mTLS with the stored key and
   * certificate, trusting only ca.crt (like imprint's LoadTLS); needs
   * enrollment.json, whose fingerprint is kept.
   */
  async renew(): Promise<ImprintResult> {
    const id = await this.load();
    if (!id.serverId) {
      throw new ImprintError("not-enrolled", "load enrollment meta: enrollment.json is missing or has no server_id");
    }
    const { privateKey, csrPem } = newKeyAndCsr(id.serverId);
    const tls: TlsMaterial = { ca: id.caPem, cert: id.certificatePem, key: encodeStoredKey(id.privateKey) };
    return this.exchange({
      path: "/api/v1/renew", body: JSON.stringify({ csr: csrPem }), tls, what: "renewal", privateKey,
      fingerprint: id.fingerprint ?? "", expectServerId: id.serverId,
    });
  }

  /**
   * Tier 2 renewal (POST /api/v1/renew/challenge) for an expired certificate:
   * server_id from client.crt's CN, expired_cert = client.crt verbatim, and a
   * proof signed with the stored key; stores the identity with `fingerprint`.
   */
  async challengeRenew(args: { fingerprint: string }): Promise<ImprintResult> {
    const id = await this.load();
    let serverId = "";
    try {
      serverId = nameAttribute(id.certificate.subject, "CN") ?? "";
    } catch {
      // imprint sends an empty server_id and lets the server refuse it
    }
    const { privateKey, csrPem } = newKeyAndCsr(serverId);
    const proof = signProof(id.privateKey, challengeMessage(serverId, args.fingerprint, csrPem));
    const body = JSON.stringify({ server_id: serverId, fingerprint: args.fingerprint, expired_cert: id.certificatePem, csr: csrPem, proof });
    return this.exchange({
      path: "/api/v1/renew/challenge", body, tls: this.publicTls(), what: "challenge renewal", privateKey,
      fingerprint: args.fingerprint, expectServerId: serverId,
    });
  }

  /**
   * Keeps the identity current (spec §8 RenewOrReenroll, with Tessera's
   * safer fallbacks): see renewOrReenroll in renew-or-reenroll.ts.
   */
  renewOrReenroll(opts: RenewOrReenrollOptions): Promise<RenewOutcome> {
    return renewOrReenroll(this, { storeDir: this.storeDir, now: this.now }, opts);
  }

  private publicTls(): TlsMaterial | undefined {
    return this.trust === undefined ? undefined : { ca: this.trust };
  }

  private async load(): Promise<StoredIdentity> {
    try {
      return await loadIdentity(this.storeDir);
    } catch (err) {
      if (err instanceof StoreDirError) throw new ImprintError("not-enrolled", err.message, { cause: err });
      throw err;
    }
  }

  /** POSTs, requires 200, checks the answer, then saves; any failure leaves the store as it was. */
  private async exchange(x: {
    path: string;
    body: string;
    tls: TlsMaterial | undefined;
    what: "enrollment" | "renewal" | "challenge renewal";
    privateKey: crypto.KeyObject;
    fingerprint: string;
    expectServerId?: string;
  }): Promise<ImprintResult> {
    const answer = await postJson({ url: this.serviceUrl + x.path, body: x.body, timeoutMs: this.timeoutMs, tls: x.tls, what: `${x.what} request failed` });
    if (answer.status !== 200) {
      throw new ImprintError("http", `${x.what} failed (HTTP ${answer.status}): ${answer.body}`, { status: answer.status, body: answer.body });
    }
    const issued = checkEnrollmentResponse(answer.body, x.privateKey, x.expectServerId);
    try {
      await saveIdentity(this.storeDir, {
        privateKey: x.privateKey, certificatePem: issued.certificatePem, caPem: issued.caPem, serverId: issued.serverId, fingerprint: x.fingerprint,
      });
    } catch (err) {
      throw new ImprintError("storage", `save ${x.what === "enrollment" ? "enrollment" : "renewed enrollment"}: ${(err as Error).message}`, { cause: err });
    }
    return { serverId: issued.serverId, certificatePem: issued.certificatePem, caPem: issued.caPem };
  }
}
