/**
 * The liteboot front-end's decisions, between the wire codec and the
 * authority (docs/protocols/liteboot.md): who is calling (a factory
 * bootstrap certificate, or a device's own certificate for kur/krr), the
 * subject policy the original lacked, issuance through the one pipeline, and
 * the read-only lookups (ds, cs, cc) over Tessera's store. Refusals are
 * LitebootFailure carrying the original's status and body.
 */
import {
  decodeName, encodeName, formatName, keyInfo, nameAttribute, parseAndVerifyCsr, parseCsr, pemEncode, serialToHex, sha256Hex,
  type NameAttribute, type ParsedCertificate, type ParsedCsr,
} from "@tessera/pki";
import type { PeerResult } from "@tessera/mtls";
import type { Authority, IssueRequest } from "../../authority/authority.js";
import type { CertificateRecord } from "../../authority/ports.js";
import type { LitebootConfig, LitebootCcs } from "../../config/types.js";
import { TesseraError } from "../../errors.js";

import { BOOTSTRAP_OU } from "../../authority/bootstrap-credentials.js";
export { BOOTSTRAP_OU };

/** A refusal in liteboot's terms: status, Content-Type and literal body; `reason` goes to the log. */
export class LitebootFailure extends Error {
  constructor(
    readonly status: number,
    readonly contentType: string,
    readonly body: string,
    readonly reason: string = body,
  ) {
    super(reason);
  }
}

/** Who holds the TLS connection, as the listener's gate classified it. */
export type LitebootCaller =
  | { kind: "bootstrap"; fingerprint: string; name: string; scope: string; legacy: boolean; certificate: ParsedCertificate }
  | { kind: "device"; deviceId: string; record: CertificateRecord; certificate: ParsedCertificate };

/** The slice of the authority this front-end uses. */
export type LitebootAuthority = Pick<Authority, "issue" | "checkCredential" | "bootstrapCredential" | "devices" | "getCertificate" | "listCertificates" | "revoke">;

/** Go's order for re-encoding a subject (crypto/x509 pkix.Name.ToRDNSequence); other attributes are dropped. */
const GO_ORDER = ["C", "ST", "L", "STREET", "POSTALCODE", "O", "OU", "CN", "SERIALNUMBER"];
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The subject liteboot writes: the CSR's attributes in Go's order, one RDN each (spec §4.1). */
export function goSubject(csrSubject: Buffer): NameAttribute[] {
  const attrs = decodeName(csrSubject);
  return GO_ORDER.flatMap((type) => attrs.filter((a) => a.type === type));
}

/** The liteboot service. */
export class LitebootService {
  constructor(
    private readonly authority: LitebootAuthority,
    private readonly config: LitebootConfig,
    /** Outbox events someone listens to (the webhook's); others are not queued. */
    private readonly events: readonly string[] = [],
  ) {}

  /**
   * Classifies a verified peer on the liteboot listener: a bootstrap
   * certificate (Tessera-issued with a usable credential, or legacy: from the
   * CA before Tessera, never stored here, with liteboot's OU), or a liteboot
   * device's own valid certificate. Anything else: undefined (the listener
   * drops the connection, as the original refuses at the handshake).
   */
  async classify(peer: PeerResult): Promise<{ caller?: LitebootCaller; reason: string }> {
    if (peer.status !== "verified") return { reason: peer.status === "rejected" ? peer.reason : "no client certificate" };
    const cert = peer.certificate;
    const fingerprint = sha256Hex(cert.der);
    const record = await this.authority.getCertificate(cert.serialHex);
    const ous = decodeName(cert.subject).filter((a) => a.type === "OU").map((a) => a.value);
    const name = nameAttribute(cert.subject, "CN") ?? formatName(cert.subject);
    if (!record || record.fingerprint !== fingerprint) {
      // Not issued through Tessera: only a legacy bootstrap certificate qualifies.
      if (record || ous.length !== 1 || ous[0] !== BOOTSTRAP_OU) return { reason: `certificate ${cert.serialHex} is neither a bootstrap nor a liteboot device certificate` };
      return this.bootstrap({ kind: "bootstrap", fingerprint, name, scope: "*", legacy: true, certificate: cert });
    }
    if (record.protocol === "bootstrap") {
      const credential = await this.authority.bootstrapCredential(fingerprint);
      if (!credential) return { reason: `bootstrap certificate ${cert.serialHex} has no credential` };
      return this.bootstrap({ kind: "bootstrap", fingerprint, name: credential.name, scope: credential.scope, legacy: false, certificate: cert });
    }
    if (record.protocol === "liteboot" && record.deviceId && record.status === "valid") {
      return { caller: { kind: "device", deviceId: record.deviceId, record, certificate: cert }, reason: "device certificate" };
    }
    return { reason: `certificate ${cert.serialHex} (${record.protocol}, ${record.status}) may not use the liteboot listener` };
  }

  private async bootstrap(caller: Extract<LitebootCaller, { kind: "bootstrap" }>): Promise<{ caller?: LitebootCaller; reason: string }> {
    try {
      await this.authority.checkCredential({ kind: "bootstrap", fingerprint: caller.fingerprint, legacy: caller.legacy, name: caller.name });
    } catch (err) {
      return { reason: err instanceof TesseraError ? `${err.code}: ${err.detail ?? ""}` : String(err) };
    }
    return { caller, reason: caller.legacy ? "legacy bootstrap certificate" : "bootstrap certificate" };
  }

  /** The cloud connectivity settings for a caller: its bootstrap certificate's scope's, else the global ones. */
  ccs(caller: LitebootCaller): LitebootCcs {
    return (caller.kind === "bootstrap" ? this.config.ccsByScope[caller.scope] : undefined) ?? this.config.ccs;
  }

  /** Parses a CSR as the listener's policy says: signature verified (default) or not; ECDSA keys only. */
  private async csr(der: Buffer): Promise<ParsedCsr> {
    const fail = (msg: string) => new LitebootFailure(400, "", `err: ${msg}`);
    let csr: ParsedCsr;
    try {
      csr = this.config.verifyCsrSignature ? await parseAndVerifyCsr(der, { allowRsa: false, allowEd25519: false, ecCurves: ["P-256", "P-384", "P-521"] }) : parseCsr(der);
    } catch (err) {
      const e = err as { code?: string; message: string };
      if (e.code === "TESSERA_ERR_PKI_WEAK_KEY") throw fail("Expecting ECDSA key on CSR");
      throw fail(e.message);
    }
    if (keyInfo(csr.publicKey).family !== "ec") throw fail("Expecting ECDSA key on CSR");
    return csr;
  }

  /** Subject policy (spec §11.2): CN a lower-case UUID, no bootstrap OU. Returns the subject to write and the device id. */
  private subject(csr: ParsedCsr): { subject: NameAttribute[]; deviceId: string; ou: string } {
    const subject = goSubject(csr.subject);
    const cn = subject.find((a) => a.type === "CN")?.value ?? "";
    const ous = subject.filter((a) => a.type === "OU").map((a) => a.value);
    if (this.config.subjectPolicy === "uuid") {
      if (!UUID_RE.test(cn)) throw new LitebootFailure(400, "", "err: subject CN must be a lower-case UUID", `CN ${JSON.stringify(cn)}`);
      if (ous.includes(BOOTSTRAP_OU)) throw new LitebootFailure(400, "", `err: subject OU ${BOOTSTRAP_OU} is reserved for bootstrap certificates`);
    }
    if (cn === "") throw new LitebootFailure(400, "", "err: subject has no CN");
    return { subject, deviceId: cn, ou: ous[0] ?? "" };
  }

  /** POST /api/v1/cr and /p10cr: a certificate for the CSR's subject, authorised by a bootstrap certificate. */
  async enroll(caller: Extract<LitebootCaller, { kind: "bootstrap" }>, der: Buffer, ip: string | null): Promise<Buffer> {
    const csr = await this.csr(der);
    const { subject, deviceId, ou } = this.subject(csr);
    const existing = await this.authority.devices.get(deviceId);
    if (existing && (existing.status === "revoked" || existing.status === "disabled")) {
      throw new LitebootFailure(403, "", `err: device ${deviceId} is ${existing.status}`);
    }
    return this.issue(csr, subject, deviceId, ip, {
      credential: { kind: "bootstrap", fingerprint: caller.fingerprint, legacy: caller.legacy, name: caller.name },
      attributes: { ou, bootstrap: caller.name },
      outbox: existing || !this.events.includes("device.created") ? undefined : [{ topic: "device.created", payload: { device: deviceId, protocol: "liteboot", subject: formatName(encodeName(subject)), bootstrap: caller.name, ou } }],
    });
  }

  /** Issues through the pipeline for a liteboot device (no lineage compare-and-set: a device holds one certificate per OU). */
  private async issue(csr: ParsedCsr, subject: NameAttribute[], deviceId: string, ip: string | null, extra: Pick<IssueRequest, "credential" | "supersedes" | "outbox"> & { attributes: Record<string, string> }): Promise<Buffer> {
    try {
      const issued = await this.authority.issue({
        csr, // parsed (and verified, unless verify_csr_signature = false) above: not imported again
        profile: this.config.profile,
        protocol: "liteboot",
        verifySignature: this.config.verifyCsrSignature,
        credential: extra.credential,
        subject,
        device: { id: deviceId, fingerprint: null, status: "active", attributes: extra.attributes },
        supersedes: extra.supersedes,
        outbox: extra.outbox,
      });
      await this.authority.devices.touch(deviceId, ip);
      return issued.der;
    } catch (err) {
      throw this.failure(err);
    }
  }

  private failure(err: unknown): LitebootFailure {
    if (err instanceof LitebootFailure) return err;
    if (err instanceof TesseraError) {
      const status = err.kind === "internal" ? 500 : err.kind === "unavailable" ? 503 : err.kind === "unauthorized" || err.kind === "forbidden" ? 403 : 400;
      return new LitebootFailure(status, "", `err: ${err.message}`, `${err.code}: ${err.detail ?? ""}`);
    }
    return new LitebootFailure(500, "", "err: internal error", err instanceof Error ? err.message : String(err));
  }

  /**
   * POST /api/v1/kur (key update): the device's current certificate asks for
   * a new one with the same subject; the old one is superseded.
   */
  async keyUpdate(caller: Extract<LitebootCaller, { kind: "device" }>, der: Buffer, ip: string | null): Promise<Buffer> {
    const csr = await this.csr(der);
    const { subject, deviceId } = this.subject(csr);
    if (deviceId !== caller.deviceId || !encodeName(subject).equals(encodeName(goSubject(caller.certificate.subject)))) {
      throw new LitebootFailure(400, "", "err: kur must keep the current certificate's subject", `${formatName(encodeName(subject))} ≠ ${formatName(caller.certificate.subject)}`);
    }
    return this.issue(csr, subject, deviceId, ip, {
      credential: { kind: "device", deviceId, via: `certificate:${caller.certificate.serialHex}` },
      attributes: {},
      supersedes: [caller.certificate.serialHex],
    });
  }

  /** POST /api/v1/krr (key revocation): revokes `serial` (default: the presenting certificate) if it belongs to the same device. */
  async revoke(caller: Extract<LitebootCaller, { kind: "device" }>, serial: bigint | undefined, reason: string): Promise<void> {
    const hex = serial === undefined ? caller.certificate.serialHex : serialToHex(serial);
    const record = await this.authority.getCertificate(hex);
    if (!record || record.deviceId !== caller.deviceId) throw new LitebootFailure(400, "", '{"error": "invalid serial number"}', `serial ${hex} is not device ${caller.deviceId}'s`);
    try {
      await this.authority.revoke(hex, reason, `device:${caller.deviceId}`);
    } catch (err) {
      if (err instanceof TesseraError && err.code === "TESSERA_ERR_CERT_ALREADY_REVOKED") return;
      throw this.failure(err);
    }
  }

  /** GET /api/v1/ds/{uuid}: serials of the device's valid certificates, in issue order. */
  async serials(deviceId: string): Promise<bigint[]> {
    const certs = await this.authority.listCertificates({ deviceId, status: "valid" });
    return certs.filter((c) => c.protocol === "liteboot").map((c) => BigInt("0x" + c.serial));
  }

  /** A liteboot certificate by serial, or undefined (unknown serials and other protocols' look the same). */
  async certificate(serial: bigint): Promise<CertificateRecord | undefined> {
    if (serial <= 0n || serial >= 1n << 160n) return undefined;
    const record = await this.authority.getCertificate(serialToHex(serial));
    return record?.protocol === "liteboot" ? record : undefined;
  }

  /** PEM of a certificate, as Go's pem.EncodeToMemory writes it. */
  static pem(der: Buffer): string {
    return pemEncode("CERTIFICATE", der);
  }
}
