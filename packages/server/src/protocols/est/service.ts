/**
 * The EST front-end's decisions (RFC 7030), between the wire and the
 * authority: who the caller is (HTTP Basic user, client certificate from
 * Tessera's CA or a label's bootstrap CA, or both, per label), enrollment
 * with lineage and manual approval, re-enrollment (same subject and SANs as
 * the current certificate, same or new key, only the newest certificate),
 * server-side key generation, and tls-unique linking. Every refusal is an
 * EstFailure with EST's status and text; the reason goes to the log only.
 */
import { randomBytes } from "node:crypto";
import {
  buildCsr, certificateSans, csrChallengePassword, decodeGeneralNames, encodeCsrAttrs, ExtOid, formatName, formatSan, generateKeyPairAsync,
  oidValue, parseCsr, parseKeyType, type CsrAttr, type ParsedCertificate, type ParsedCsr,
} from "@tessera/pki";
import { verifyPeer, type PeerResult } from "@tessera/mtls";
import type { Authority } from "../../authority/authority.js";
import type { LineageWrite } from "../../authority/devices.js";
import type { EstLabelConfig } from "../../config/types.js";
import { TesseraError } from "../../errors.js";
import { EstFailure } from "./wire.js";

/** The slice of the authority this front-end uses. */
export type EstAuthority = Pick<Authority, "issue" | "checkCredential" | "checkCsr" | "devices" | "caCertificates" | "getCertificate">;

/** A label ready to serve: its settings, bootstrap trust anchors and encoded /csrattrs. */
export interface EstLabel {
  /** "" for the label-less path. */
  name: string;
  config: EstLabelConfig;
  /** Bootstrap CA certificates whose leaves may authenticate enrollment. */
  bootstrapRoots: ParsedCertificate[];
}

/** What the TLS connection and headers say about the caller. */
export interface EstRequestContext {
  /** Verification of the client certificate against Tessera's CA. */
  peer: PeerResult;
  /** The chain the client sent (leaf first), for bootstrap CAs. */
  chain: { leaf?: Buffer; rest: Buffer[] };
  /** The Authorization header, if any. */
  authorization: string | undefined;
  /** base64(tls-unique) of the connection, when it has one (TLS 1.2). */
  tlsUnique: string | undefined;
}

/** An authenticated enrollment caller. */
export interface EstCaller {
  /** For the audit trail: "est-user:alice", "certificate:<serial>", "bootstrap:<subject>", joined by "+". */
  via: string;
  user?: string;
  /** Set when only a certificate from Tessera's CA authenticated the caller: it may enroll only its own subject. */
  ownCertificate?: ParsedCertificate;
}

/** What an enrollment answers. */
export type EstEnrollResult = { certificate: Buffer } | { pending: { requestId: string; retryAfter: number } };

const OID_DECRYPT_KEY_ID = "1.2.840.113549.1.9.16.2.37";
const OID_ASYMMETRIC_DECRYPT_KEY_ID = "1.2.840.113549.1.9.16.2.54";
const CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7";

/** Parses `Authorization: Basic …` into user and password (the user may be empty, §3.2.3). */
export function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  const m = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
  if (!m) return undefined;
  const text = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon < 0) return undefined;
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Maps a core error to EST's answer (est.md §6). */
function failure(err: unknown): EstFailure {
  if (err instanceof EstFailure) return err;
  if (!(err instanceof TesseraError)) return new EstFailure(500, "internal error", err instanceof Error ? err.message : String(err));
  const why = `${err.code}${err.detail ? `: ${err.detail}` : ""}`;
  switch (err.kind) {
    case "bad_request":
      return new EstFailure(400, err.message, why);
    case "unauthorized":
    case "forbidden":
      return new EstFailure(403, err.message, why);
    case "conflict":
      return new EstFailure(409, err.message, why);
    case "unavailable":
      return new EstFailure(503, err.message, why, { "Retry-After": "5" });
    case "not_found":
      return new EstFailure(404, err.message, why);
    default:
      return new EstFailure(500, "internal error", why);
  }
}

function sansOf(extensions: ParsedCsr["extensions"]): string[] {
  const ext = extensions.find((e) => e.oid === ExtOid.subjectAltName);
  return ext ? decodeGeneralNames(ext.value).map(formatSan).sort() : [];
}

/** RFC 5280 §7.1 comparison, approximated: byte-equal DER, or equal RFC 4514 text ignoring case. */
function sameName(a: Buffer, b: Buffer): boolean {
  return a.equals(b) || formatName(a).toLowerCase() === formatName(b).toLowerCase();
}

/** The EST service. */
export class EstService {
  constructor(
    private readonly authority: EstAuthority,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** /cacerts: root, issuing CA and rollover certificates (RFC 7030 §4.1.3). */
  cacerts(): Buffer[] {
    return this.authority.caCertificates();
  }

  /** /csrattrs as DER, or undefined when the label asks for nothing (→ 204). */
  csrattrs(label: EstLabel): Buffer | undefined {
    const attrs: CsrAttr[] = label.config.csrAttrs.map((a) => ("oid" in a ? { oid: a.oid } : { type: a.type, values: a.values.map(oidValue) }));
    // A label that links CSRs to the TLS session announces challengePassword (how libest learns to send it).
    if (label.config.tlsUnique && !attrs.some((a) => "oid" in a && a.oid === CHALLENGE_PASSWORD)) attrs.unshift({ oid: CHALLENGE_PASSWORD });
    return attrs.length === 0 ? undefined : encodeCsrAttrs(attrs);
  }

  /**
   * Authenticates an enrollment (simpleenroll, serverkeygen) by the label's
   * rule. Missing or bad Basic credentials where Basic would do → 401 with a
   * Basic challenge; a label that needs a certificate and got none → 403.
   */
  async authenticate(label: EstLabel, ctx: EstRequestContext): Promise<EstCaller> {
    const mode = label.config.auth;
    const challenge = (reason: string) => new EstFailure(401, "", reason, { "WWW-Authenticate": `Basic realm="${label.config.realm.replace(/["\\]/g, "")}"` });
    const certificate = mode === "basic" ? undefined : await this.certificateCaller(label, ctx);
    const certRequired = "a client certificate from Tessera's CA or this label's bootstrap CA is required";
    if (mode === "certificate" || mode === "both") {
      if (!certificate || !certificate.ok) throw new EstFailure(403, certRequired, certificate && !certificate.ok ? certificate.reason : "no certificate");
      if (mode === "certificate") return { via: certificate.via, ownCertificate: certificate.own };
    }
    if (mode === "either" && certificate?.ok) return { via: certificate.via, ownCertificate: certificate.own };
    const basic = parseBasic(ctx.authorization);
    if (!basic) throw challenge(ctx.authorization ? "Authorization is not Basic" : `no credentials${certificate && !certificate.ok ? ` (${certificate.reason})` : ""}`);
    try {
      await this.authority.checkCredential({ kind: "password", username: basic.username, password: basic.password, scope: label.name });
    } catch (err) {
      if (err instanceof TesseraError && (err.kind === "unauthorized" || err.kind === "forbidden")) throw challenge(`${err.code}: ${err.detail ?? ""}`);
      throw failure(err);
    }
    const via = `est-user:${basic.username}`;
    return { via: certificate?.ok ? `${via}+${certificate.via}` : via, user: basic.username };
  }

  private async certificateCaller(label: EstLabel, ctx: EstRequestContext): Promise<{ ok: true; via: string; own?: ParsedCertificate } | { ok: false; reason: string }> {
    if (ctx.peer.status === "verified") {
      // A certificate from Tessera's CA vouches for its holder only if it was enrolled over EST under this label.
      const own = ctx.peer.certificate;
      const record = await this.authority.getCertificate(own.serialHex);
      const device = record?.deviceId ? await this.authority.devices.get(record.deviceId) : undefined;
      if (!record || record.protocol !== "est" || (device?.attributes.label ?? "") !== label.name) {
        return { ok: false, reason: `client certificate ${own.serialHex} (${record?.protocol ?? "unknown"}) is not an EST certificate of this label` };
      }
      return { ok: true, via: `certificate:${own.serialHex}`, own };
    }
    if (!ctx.chain.leaf) return { ok: false, reason: "no client certificate" };
    if (label.bootstrapRoots.length > 0) {
      const r = await verifyPeer(ctx.chain.leaf, ctx.chain.rest, { roots: label.bootstrapRoots, at: this.now() });
      if (r.status === "verified") return { ok: true, via: `bootstrap:${formatName(r.certificate.subject)}` };
      return { ok: false, reason: `client certificate: ${ctx.peer.status === "rejected" ? ctx.peer.reason : "absent"}; bootstrap CA: ${r.status === "rejected" ? r.reason : "absent"}` };
    }
    return { ok: false, reason: `client certificate: ${ctx.peer.status === "rejected" ? ctx.peer.reason : "absent"}` };
  }

  /** Checks the CSR's challengePassword against the connection's tls-unique (RFC 7030 §3.5). */
  private checkLinking(label: EstLabel, csr: Pick<ParsedCsr, "attributes">, tlsUnique: string | undefined): void {
    let given: string | undefined;
    try {
      given = csrChallengePassword(csr);
    } catch (err) {
      throw new EstFailure(400, "challengePassword is malformed", (err as Error).message);
    }
    if (given === undefined) {
      if (label.config.tlsUnique) throw new EstFailure(400, "this label requires the CSR's challengePassword to hold base64(tls-unique) (RFC 7030 §3.5)");
      return;
    }
    if (tlsUnique === undefined) throw new EstFailure(400, "proof-of-possession linking needs TLS 1.2: this connection has no tls-unique", "challengePassword on a TLS 1.3 connection");
    if (given !== tlsUnique) throw new EstFailure(400, "proof-of-possession mismatch: challengePassword is not this connection's tls-unique");
  }

  private async verifiedCsr(label: EstLabel, der: Buffer): Promise<ParsedCsr> {
    try {
      return await this.authority.checkCsr(der, label.config.profile);
    } catch (err) {
      throw failure(err);
    }
  }

  /** POST simpleenroll (RFC 7030 §4.2.1): a new lineage for the CSR's subject within the label, or a pending notice. */
  async enroll(label: EstLabel, caller: EstCaller, der: Buffer, tlsUnique: string | undefined): Promise<EstEnrollResult> {
    const csr = await this.verifiedCsr(label, der);
    this.checkLinking(label, csr, tlsUnique);
    return this.enrollParsed(label, caller, csr);
  }

  /** A certificate from Tessera's CA vouches only for its holder: it may enroll its own subject again (a new lineage), not another name. */
  private checkOwnCertificate(own: ParsedCertificate, subject: Buffer): void {
    if (!sameName(subject, own.subject)) {
      throw new EstFailure(403, "a device certificate may enroll only its own subject", `${formatName(subject)} ≠ ${formatName(own.subject)}`);
    }
  }

  private async enrollParsed(label: EstLabel, caller: EstCaller, csr: ParsedCsr): Promise<EstEnrollResult> {
    if (caller.ownCertificate) this.checkOwnCertificate(caller.ownCertificate, csr.subject);
    const subject = formatName(csr.subject);
    const sans = sansOf(csr.extensions);
    // The device is the subject within the label (or its SANs when the subject is empty).
    const identity = subject !== "" ? subject : sans.join(",");
    const attributes: Record<string, string> = { label: label.name, subject };
    if (caller.user !== undefined) attributes.user = caller.user;
    try {
      const plan = await this.authority.devices.planEnrollment({
        fingerprint: `est:${label.name}:${identity}`,
        protocol: "est",
        newId: () => "est_" + randomBytes(12).toString("hex"),
        attributes,
        csr: csr.der,
        subject,
        profile: label.config.profile,
        policy: { approval: label.config.mode, allowRevoked: false, revokePrevious: label.config.revokeSuperseded },
      });
      if (plan.action === "pending") return { pending: { requestId: plan.requestId, retryAfter: label.config.retryAfter } };
      return { certificate: await this.issue(label, caller, csr, plan.deviceId, plan) };
    } catch (err) {
      throw failure(err);
    }
  }

  private async issue(label: EstLabel, caller: EstCaller, csr: ParsedCsr, deviceId: string, lineage: LineageWrite): Promise<Buffer> {
    const issued = await this.authority.issue({
      csr, // verified by checkCsr: the pipeline does not import its key again
      profile: label.config.profile,
      protocol: "est",
      credential: { kind: "device", deviceId, via: caller.via },
      device: lineage.device,
      supersedes: lineage.supersedes,
      revokeSuperseded: lineage.revokeSuperseded,
      requestId: lineage.requestId,
    });
    return issued.der;
  }

  /**
   * POST simplereenroll (RFC 7030 §4.2.2): the TLS client certificate must be
   * the newest certificate of an EST device of this label; the CSR keeps its
   * subject and SANs (other requested extensions are ignored, as libest
   * copies them all); a new key is a rekey.
   */
  async reenroll(label: EstLabel, ctx: EstRequestContext, der: Buffer): Promise<Buffer> {
    if (ctx.peer.status === "absent") throw new EstFailure(403, "simplereenroll needs the certificate being renewed as TLS client certificate");
    if (ctx.peer.status === "rejected") throw new EstFailure(403, "client certificate rejected", ctx.peer.reason);
    const current = ctx.peer.certificate;
    const record = await this.authority.getCertificate(current.serialHex);
    if (!record?.deviceId || record.protocol !== "est") throw new EstFailure(403, "the client certificate was not enrolled over EST", `serial ${current.serialHex}`);
    const csr = await this.verifiedCsr(label, der);
    this.checkLinking(label, csr, ctx.tlsUnique);
    if (!sameName(csr.subject, current.subject)) {
      throw new EstFailure(400, "the CSR's subject differs from the current certificate's (RFC 7030 §4.2.2)", `${formatName(csr.subject)} ≠ ${formatName(current.subject)}`);
    }
    const want = certificateSans(current).map(formatSan).sort();
    const got = sansOf(csr.extensions);
    if (want.join("\n") !== got.join("\n")) {
      throw new EstFailure(400, "the CSR's subjectAltName differs from the current certificate's (RFC 7030 §4.2.2)", `[${got}] ≠ [${want}]`);
    }
    try {
      const lineage = await this.authority.devices.planRenewal(record.deviceId, current.serialHex, { revokeSuperseded: label.config.revokeSuperseded });
      if ((lineage.record.attributes.label ?? "") !== label.name) {
        throw new EstFailure(403, "the client certificate belongs to another EST label", `device label ${JSON.stringify(lineage.record.attributes.label)}`);
      }
      return await this.issue(label, { via: `certificate:${current.serialHex}` }, csr, record.deviceId, lineage);
    } catch (err) {
      throw failure(err);
    }
  }

  /**
   * POST serverkeygen (RFC 7030 §4.4): the CSR's key and signature are
   * ignored; the server generates the label's key type, requests the
   * certificate for the CSR's subject and SANs with it, and returns both.
   * Encrypted key delivery (§4.4.1.1–2) is refused with 400.
   */
  async serverKeygen(label: EstLabel, caller: EstCaller, der: Buffer, tlsUnique: string | undefined): Promise<{ pkcs8: Buffer; certificate: Buffer } | { pending: { requestId: string; retryAfter: number } }> {
    let request: ParsedCsr;
    try {
      request = parseCsr(der);
    } catch (err) {
      throw failure(err);
    }
    if (request.attributes.some((a) => a.oid === OID_DECRYPT_KEY_ID || a.oid === OID_ASYMMETRIC_DECRYPT_KEY_ID)) {
      throw new EstFailure(400, "encrypted delivery of server-generated keys is not supported; ask without DecryptKeyIdentifier");
    }
    this.checkLinking(label, request, tlsUnique);
    const { privateKey } = await generateKeyPairAsync(parseKeyType(label.config.serverKeygenKeyType));
    const san = request.extensions.filter((e) => e.oid === ExtOid.subjectAltName);
    const csr = await this.verifiedCsr(label, buildCsr({ subject: request.subject, privateKey, extensions: san }));
    const r = await this.enrollParsed(label, caller, csr);
    if ("pending" in r) return r;
    return { pkcs8: privateKey.export({ type: "pkcs8", format: "der" }), certificate: r.certificate };
  }
}
