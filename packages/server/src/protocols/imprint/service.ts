/**
 * The imprint front-end's decisions, between the wire codec and the
 * authority: enrollment (build secret → CSR → device lineage → issue),
 * tier-1 renewal (verified client certificate, newest of its lineage) and
 * tier-2 challenge renewal (expired certificate + proof of its key). Every
 * refusal is an ImprintFailure carrying the original's status and text; the
 * reason goes to the log only.
 */
import { timingSafeEqual, createHash } from "node:crypto";
import {
  certificatePublicKey, formatName, nameAttribute, parseCertificate, type NameAttribute, type ParsedCertificate, type ParsedCsr,
} from "@tessera/pki";
import { verifyPeer, type PeerResult } from "@tessera/mtls";
import type { Authority } from "../../authority/authority.js";
import type { ImprintConfig } from "../../config/types.js";
import { TesseraError } from "../../errors.js";
import { IMPRINT_ERRORS as E, firstPemBlock, newServerId } from "./codec.js";
import { verifyChallengeProof } from "./proof.js";

/** A refusal in imprint's terms: HTTP status and plain-text body; `reason` is for the log. */
export class ImprintFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly reason: string,
    readonly code?: string,
  ) {
    super(reason);
  }
}

/** What a successful call answers. */
export interface ImprintIssued {
  serverId: string;
  certificate: string;
  caCertificate: string;
}

/** The slice of the authority this front-end uses. */
export type ImprintAuthority = Pick<Authority, "issue" | "checkCredential" | "checkCsr" | "devices" | "ca" | "chainPem">;

const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

/** Maps a core error to imprint's answer for an endpoint. */
function failure(err: unknown, fallback: { status: number; body: string }): ImprintFailure {
  if (err instanceof ImprintFailure) return err;
  if (!(err instanceof TesseraError)) return new ImprintFailure(500, E.internal, err instanceof Error ? err.message : String(err));
  const why = `${err.code}${err.detail ? `: ${err.detail}` : ""}`;
  switch (err.kind) {
    case "internal":
      return new ImprintFailure(500, E.internal, why, err.code);
    case "unavailable":
      return new ImprintFailure(503, E.unavailable, why, err.code);
    case "conflict":
      return new ImprintFailure(409, E.conflict, why, err.code);
    case "bad_request":
      return err.code.startsWith("TESSERA_ERR_CSR_") ? new ImprintFailure(400, E.invalidCsr, why, err.code) : new ImprintFailure(fallback.status, fallback.body, why, err.code);
    default:
      return new ImprintFailure(fallback.status, fallback.body, why, err.code);
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** The imprint service. */
export class ImprintService {
  constructor(
    private readonly authority: ImprintAuthority,
    private readonly config: ImprintConfig,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Subject of an imprint certificate: O = the issuing CA's organization, CN = server id (spec §6). */
  private subjectFor(serverId: string): NameAttribute[] {
    const o = nameAttribute(this.authority.ca.issuer.certificate.subject, "O");
    return [...(o ? [{ type: "O", value: o }] : []), { type: "CN", value: serverId }];
  }

  private async issue(serverId: string, csr: ParsedCsr, credential: Parameters<Authority["issue"]>[0]["credential"], lineage: {
    device: NonNullable<Parameters<Authority["issue"]>[0]["device"]>;
    supersedes: string[];
    revokeSuperseded: boolean;
    requestId?: string;
  }): Promise<ImprintIssued> {
    const issued = await this.authority.issue({
      csr, // verified by checkCsr: the pipeline does not import its key again
      profile: this.config.profile,
      protocol: "imprint",
      credential,
      subject: this.subjectFor(serverId),
      sans: [{ type: "uri", value: `imprint://server/${serverId}` }],
      device: lineage.device,
      supersedes: lineage.supersedes,
      revokeSuperseded: lineage.revokeSuperseded,
      requestId: lineage.requestId,
    });
    return { serverId, certificate: issued.pem, caCertificate: this.authority.chainPem() };
  }

  /** Checks a CSR (first PEM block, any label) against the profile; invalid → 400 "invalid CSR". */
  private async csr(text: string, unparsable: { status: number; body: string } = { status: 400, body: E.invalidCsr }): Promise<{ der: Buffer; parsed: ParsedCsr }> {
    const der = firstPemBlock(text);
    if (!der) throw new ImprintFailure(unparsable.status, unparsable.body, "csr: no PEM block");
    try {
      return { der, parsed: await this.authority.checkCsr(der, this.config.profile) };
    } catch (err) {
      // Only a CSR that parses but fails its signature or key policy is "invalid CSR" everywhere (W9).
      const e = failure(err, unparsable);
      if (e.code === "TESSERA_ERR_CSR_MALFORMED") throw new ImprintFailure(unparsable.status, unparsable.body, e.reason, e.code);
      throw e;
    }
  }

  /** POST /api/v1/enroll (spec §3), with approval, lineage and revocation rules. Returns the certificate or a pending notice. */
  async enroll(req: { buildSecret: string; fingerprint: string; hostname: string; os: string; arch: string; csr: string; ip: string | null }): Promise<
    { issued: ImprintIssued } | { pending: { serverId: string; requestId: string } }
  > {
    const credential = { kind: "secret", secret: req.buildSecret, scope: "imprint" };
    try {
      await this.authority.checkCredential(credential);
    } catch (err) {
      throw failure(err, { status: 401, body: E.unauthorized });
    }
    const csr = await this.csr(req.csr);
    const attributes = Object.fromEntries(Object.entries({ hostname: req.hostname, os: req.os, arch: req.arch }).filter(([, v]) => v !== ""));
    try {
      const plan = await this.authority.devices.planEnrollment({
        fingerprint: req.fingerprint,
        protocol: "imprint",
        newId: () => newServerId(),
        attributes,
        csr: csr.der,
        subject: formatName(csr.parsed.subject),
        profile: this.config.profile,
        policy: {
          approval: this.config.mode,
          allowRevoked: this.config.allowRevokedReenroll,
          revokePrevious: this.config.reenrollRevokesPrevious,
        },
      });
      if (plan.action === "pending") return { pending: { serverId: plan.deviceId, requestId: plan.requestId } };
      const issued = await this.issue(plan.deviceId, csr.parsed, credential, plan);
      await this.authority.devices.touch(plan.deviceId, req.ip);
      return { issued };
    } catch (err) {
      if (err instanceof TesseraError && err.code === "TESSERA_ERR_DEVICE_REVOKED") throw new ImprintFailure(403, E.enrollmentDenied, err.detail ?? err.code, err.code);
      if (err instanceof TesseraError && err.code === "TESSERA_ERR_REQUEST_REJECTED") throw new ImprintFailure(403, E.enrollmentRejected, err.detail ?? err.code, err.code);
      throw failure(err, { status: 401, body: E.unauthorized });
    }
  }

  /**
   * Who may call /renew: a verified client certificate (our chain, valid now,
   * not revoked) whose CN names an active device holding it as its newest.
   * Returns the server id and the certificate; refusals are 401 as spec §9.
   */
  async renewer(peer: PeerResult): Promise<{ serverId: string; certificate: ParsedCertificate; lineage: Awaited<ReturnType<ImprintAuthority["devices"]["planRenewal"]>> }> {
    if (peer.status === "absent") throw new ImprintFailure(401, E.clientCertRequired, "no client certificate");
    if (peer.status === "rejected") throw new ImprintFailure(401, E.unauthorized, `client certificate: ${peer.reason}`);
    const cn = nameAttribute(peer.certificate.subject, "CN") ?? "";
    if (cn === "") throw new ImprintFailure(401, E.unauthorized, "client certificate has no CN");
    try {
      const lineage = await this.authority.devices.planRenewal(cn, peer.certificate.serialHex, { revokeSuperseded: this.config.revokeSuperseded });
      return { serverId: cn, certificate: peer.certificate, lineage };
    } catch (err) {
      throw failure(err, { status: 401, body: E.unauthorized });
    }
  }

  /** POST /api/v1/renew (tier 1) after renewer() accepted the caller. */
  async renew(who: Awaited<ReturnType<ImprintService["renewer"]>>, csrText: string, ip: string | null): Promise<ImprintIssued> {
    const csr = await this.csr(csrText);
    try {
      const issued = await this.issue(who.serverId, csr.parsed, { kind: "device", deviceId: who.serverId }, who.lineage);
      await this.authority.devices.touch(who.serverId, ip);
      return issued;
    } catch (err) {
      throw failure(err, { status: 401, body: E.unauthorized });
    }
  }

  /** POST /api/v1/renew/challenge (tier 2, spec §5). Every authentication failure is the same 401. */
  async challenge(req: { serverId: string; fingerprint: string; expiredCert: string; csr: string; proof: string; ip: string | null }): Promise<ImprintIssued> {
    const fail = (reason: string) => new ImprintFailure(401, E.challengeFailed, reason);
    const window = this.config.challengeWindow;
    if (window === 0) throw fail("challenge renewal is disabled (challenge_window = 0)");
    const der = firstPemBlock(req.expiredCert);
    let cert: ParsedCertificate;
    try {
      if (!der) throw new Error("no PEM block");
      cert = parseCertificate(der);
    } catch (err) {
      throw fail(`expired_cert: ${(err as Error).message}`);
    }
    // Verify the chain at the middle of the certificate's life: it is expected to have expired.
    const mid = new Date((cert.notBefore.getTime() + cert.notAfter.getTime()) / 2);
    const ca = this.authority.ca;
    const chain = await verifyPeer(cert.der, [], { roots: [ca.root], intermediates: [ca.issuer.certificate], requiredEku: CLIENT_AUTH, at: mid });
    if (chain.status !== "verified") throw fail(`expired_cert: ${chain.status === "rejected" ? chain.reason : "absent"}`);
    if (nameAttribute(cert.subject, "CN") !== req.serverId) throw fail("expired_cert CN differs from server_id");
    const now = this.now();
    if (now.getTime() - cert.notAfter.getTime() > window * 1000) throw fail("expired beyond the challenge window");
    let lineage;
    try {
      lineage = await this.authority.devices.planRenewal(req.serverId, cert.serialHex, { revokeSuperseded: this.config.revokeSuperseded });
    } catch (err) {
      throw failure(err, { status: 401, body: E.challengeFailed });
    }
    const stored = lineage.record.fingerprint ?? "";
    if (!timingSafeEqual(sha256(stored), sha256(req.fingerprint))) throw fail("fingerprint differs");
    if (!verifyChallengeProof(certificatePublicKey(cert), req.serverId, req.fingerprint, req.csr, req.proof)) throw fail("proof does not verify");
    const csr = await this.csr(req.csr, { status: 401, body: E.challengeFailed });
    try {
      const issued = await this.issue(req.serverId, csr.parsed, { kind: "device", deviceId: req.serverId }, lineage);
      await this.authority.devices.touch(req.serverId, req.ip);
      return issued;
    } catch (err) {
      // Losing the lineage compare-and-set means this proof was already used (a replay).
      if (err instanceof TesseraError && err.code === "TESSERA_ERR_LINEAGE_CONFLICT") throw fail("lineage changed concurrently (replay?)");
      throw failure(err, { status: 401, body: E.challengeFailed });
    }
  }
}
