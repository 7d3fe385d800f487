/**
 * The authority: the one place certificates are made. Every protocol and the
 * CLI go through `issue`: authorize → validate the CSR against the profile's
 * policy → build from the profile's template → sign → store certificate and
 * audit event in one (group-committed) transaction → return. Nothing is
 * returned before it is stored.
 */
import {
  encodeGeneralNames, encodeName, ExtOid, formatName, formatSan, decodeGeneralNames, generateSerial, isEmptyName,
  keyTypeName, isVerifiedCsr, parseAndVerifyCsr, parseCsr, checkCsrPolicy, parseCrlReason, pemEncode, sha256Hex, type Issuer, type NameAttribute,
  serialToHex, type ParsedCertificate, type ParsedCsr, type SubjectAltName,
} from "@tessera/pki";
import type { KeyObject } from "node:crypto";
import { TesseraError, toTesseraError } from "../errors.js";
import type { Authorizer, Credential } from "./authorizers.js";
import { BatchWriter } from "./batch-writer.js";
import { CrlService, type CrlSnapshot } from "./crl-service.js";
import type { CompiledProfile } from "./profiles.js";
import type { Clock, RandomSource } from "./runtime.js";
import { DeviceRegistry } from "./devices.js";
import { RevocationEvents } from "./revocation-events.js";
import type { AuditRecord, CertificateQuery, CertificateRecord, CredentialRecord, IssuedWrite, Store } from "./ports.js";

/** A request for a certificate, as a protocol decoded it. */
export interface IssueRequest {
  /**
   * The CSR: DER bytes, PEM text/bytes, or a CSR this process already parsed.
   * A CSR from checkCsr (parseAndVerifyCsr: see isVerifiedCsr) is used as is,
   * its key imported and its signature verified once per request; only the
   * issuing profile's key policy is checked again (no key import). Any other
   * parsed CSR is verified again from its DER unless verifySignature is false.
   */
  csr: Uint8Array | string | ParsedCsr;
  /** Profile name (default: the configured default profile); an authorizer may override it. */
  profile?: string;
  /** Front-end name for the record and audit ("cli", "est", "imprint", …). */
  protocol: string;
  credential: Credential;
  /** Subject, for profiles whose subject comes from the request (the authorizer's wins). */
  subject?: readonly NameAttribute[];
  /** SANs, for profiles whose SANs come from the request (the authorizer's win). */
  sans?: readonly SubjectAltName[];
  /** Device to attach the certificate to (the authorizer's wins); see IssuedWrite.device for setStatus and the lineage compare-and-set. */
  device?: Omit<NonNullable<IssuedWrite["device"]>, "protocol">;
  /** Serials this certificate replaces (marked superseded in the same transaction). */
  supersedes?: string[];
  /** Revoke the replaced serials (reason "superseded") instead of only superseding them. */
  revokeSuperseded?: boolean;
  /** Enrollment request this answers. */
  requestId?: string;
  /** Shorter lifetime than the profile's, seconds (never longer). */
  validitySeconds?: number;
  /**
   * Outbox messages stored with the certificate (see IssuedWrite.outbox), or
   * a function that makes them from the certificate just built (for events
   * that carry it), called before anything is written.
   */
  outbox?: IssuedWrite["outbox"] | ((issued: { der: Buffer; pem: string; record: CertificateRecord }) => IssuedWrite["outbox"]);
  /** The certificate's server-generated private key, encrypted, stored in the same transaction (see IssuedWrite.sealedKey). */
  sealedKey?: IssuedWrite["sealedKey"];
  /**
   * Verify the CSR's self-signature (proof of possession; default true).
   * false only where a protocol's configuration says its clients sign badly
   * (liteboot's verify_csr_signature); the key policy still applies.
   */
  verifySignature?: boolean;
}

/** What `issue` returns: the stored record plus encodings. */
export interface IssuedCertificate {
  record: CertificateRecord;
  der: Buffer;
  pem: string;
  /** The issuing CA (when it is not the root), up to (not including) the root. */
  chain: ParsedCertificate[];
}

/** CA material the authority signs with. */
export interface CaMaterial {
  root: ParsedCertificate;
  /** Issuing CA certificate and key. */
  issuer: Issuer;
  /**
   * Root rollover certificates (RFC 4210 §4.4), present after `tessera ca
   * rollover`: the new self-signed root (NewWithNew), the old root's key
   * certified by the new root (OldWithNew) and the new root's key certified
   * by the old root (NewWithOld). EST /cacerts serves them (RFC 7030 §4.1.3).
   */
  rollover?: { newRoot: ParsedCertificate; oldWithNew: ParsedCertificate; newWithOld: ParsedCertificate };
  /** The root's private key, when available: profiles with `issuer = "root"` sign with it (Caramel). */
  rootKey?: KeyObject;
}

/** Everything the authority needs, injected by the composition root. */
export interface AuthorityDeps {
  store: Store;
  ca: CaMaterial;
  profiles: Map<string, CompiledProfile>;
  defaultProfile: string;
  authorizers: Record<string, Authorizer>;
  clock: Clock;
  random: RandomSource;
  crl: { validitySeconds: number; refreshBeforeSeconds: number };
  batchMax?: number;
}

/** The authority core. */
export class Authority {
  readonly writer: BatchWriter;
  readonly crl: CrlService;
  /** Devices and lineage rules. */
  readonly devices: DeviceRegistry;
  /** Revocations as they happen (this process at once, other processes by polling the store). */
  readonly revocations: RevocationEvents;

  constructor(private readonly deps: AuthorityDeps) {
    this.writer = new BatchWriter(deps.store, deps.batchMax ?? 256);
    this.crl = new CrlService(deps.store, deps.ca.issuer, deps.clock, deps.crl.validitySeconds, deps.crl.refreshBeforeSeconds);
    this.devices = new DeviceRegistry(deps.store, deps.clock);
    this.revocations = new RevocationEvents(deps.store, deps.clock, () => this.crl.invalidate());
  }

  /** The root and issuing CA certificates. */
  get ca(): CaMaterial {
    return this.deps.ca;
  }

  /** PEM chain served to clients: issuing CA, then root. */
  chainPem(): string {
    return pemEncode("CERTIFICATE", this.deps.ca.issuer.certificate.der) + pemEncode("CERTIFICATE", this.deps.ca.root.der);
  }

  /**
   * Every CA certificate a client needs to trust and build chains (EST
   * /cacerts, RFC 7030 §4.1.3): the root, the issuing CA, and the rollover
   * certificates when a rollover is configured. DER, root first.
   */
  caCertificates(): Buffer[] {
    const { root, issuer, rollover } = this.deps.ca;
    const out = [root.der, issuer.certificate.der];
    if (rollover) out.push(rollover.newRoot.der, rollover.oldWithNew.der, rollover.newWithOld.der);
    return out;
  }

  /** Names of the configured profiles. */
  profileNames(): string[] {
    return [...this.deps.profiles.keys()];
  }

  /** Registers an authorizer for a credential kind (protocols call this at start). */
  registerAuthorizer(kind: string, authorizer: Authorizer): void {
    this.deps.authorizers[kind] = authorizer;
  }

  /**
   * Checks a credential without using it up (e.g. a bootstrap secret's
   * validity before the request is examined further). Throws like issue().
   */
  async checkCredential(credential: Credential): Promise<void> {
    const authorizer = this.deps.authorizers[credential.kind];
    if (!authorizer) throw new TesseraError("TESSERA_ERR_AUTH_REQUIRED", { detail: `no authorizer for ${credential.kind}` });
    if (authorizer.check) await authorizer.check(credential);
  }

  /** The bootstrap-certificate credential (name, scope, uses) of a certificate by its SHA-256, if it is one. */
  async bootstrapCredential(fingerprint: string): Promise<Pick<CredentialRecord, "name" | "scope" | "useCount" | "maxUses" | "expiresAt" | "revokedAt"> | undefined> {
    return this.deps.store.findCredentialByHash("certificate", fingerprint);
  }

  /**
   * Parses and verifies a CSR against a profile's key policy (before anything
   * is written). Pass the result to issue() as `csr`: the pipeline then does
   * not import the key and verify the signature a second time. Throws TesseraError.
   */
  async checkCsr(csr: Uint8Array | string, profileName?: string): Promise<ParsedCsr> {
    const name = profileName ?? this.deps.defaultProfile;
    const profile = this.deps.profiles.get(name);
    if (!profile) throw new TesseraError("TESSERA_ERR_PROFILE_UNKNOWN", { detail: name });
    try {
      return await parseAndVerifyCsr(csr, profile.policy);
    } catch (err) {
      throw toTesseraError(err);
    }
  }

  /** Issues a certificate through the one pipeline. Throws TesseraError. */
  async issue(req: IssueRequest): Promise<IssuedCertificate> {
    try {
      return await this.issueUnchecked(req);
    } catch (err) {
      throw toTesseraError(err);
    }
  }

  /**
   * The request's CSR, parsed, with proof of possession (unless the request
   * waives it) and the issuing profile's key policy checked. Importing the
   * key and verifying the signature was a quarter of an EST enrollment's CPU
   * when done twice (protocol check, then here); a CSR checkCsr verified is
   * reused, and its key policy checked again because the authorizer may
   * have picked another profile than the one it was checked against.
   */
  private async csrFor(req: IssueRequest, profile: CompiledProfile): Promise<ParsedCsr> {
    const input = req.csr;
    if (typeof input === "string" || input instanceof Uint8Array) {
      return req.verifySignature === false ? checkCsrPolicy(parseCsr(input), profile.policy) : await parseAndVerifyCsr(input, profile.policy);
    }
    if (req.verifySignature !== false && !isVerifiedCsr(input)) return await parseAndVerifyCsr(input.der, profile.policy);
    return checkCsrPolicy(input, profile.policy);
  }

  private async issueUnchecked(req: IssueRequest): Promise<IssuedCertificate> {
    const authorizer = this.deps.authorizers[req.credential.kind];
    if (!authorizer) throw new TesseraError("TESSERA_ERR_AUTH_REQUIRED", { detail: `no authorizer for ${req.credential.kind}` });
    const auth = await authorizer.authorize(req.credential);
    const profileName = auth.profile ?? req.profile ?? this.deps.defaultProfile;
    const profile = this.deps.profiles.get(profileName);
    if (!profile) throw new TesseraError("TESSERA_ERR_PROFILE_UNKNOWN", { detail: profileName });
    const cfg = profile.config;

    const csr = await this.csrFor(req, profile);

    let subject: Buffer;
    if (cfg.subject === "csr") subject = csr.subject;
    else {
      const attrs = auth.subject ?? req.subject;
      if (!attrs) throw new TesseraError("TESSERA_ERR_CSR_POLICY", { message: "profile needs a subject from the request", detail: profileName });
      subject = encodeName(attrs);
    }

    let sans: Buffer | undefined;
    if (cfg.sans === "csr") {
      const ext = csr.extensions.find((e) => e.oid === ExtOid.subjectAltName);
      if (ext) {
        decodeGeneralNames(ext.value); // refuses malformed GeneralNames before we sign them
        sans = ext.value;
      }
    } else if (cfg.sans === "request") {
      const list = auth.sans ?? req.sans;
      if (list && list.length > 0) sans = encodeGeneralNames(list);
    }
    if (isEmptyName(subject) && !sans) {
      throw new TesseraError("TESSERA_ERR_CSR_POLICY", { message: "certificate needs a subject or a subjectAltName" });
    }

    const now = this.deps.clock.now();
    const nowSec = Math.floor(now.getTime() / 1000) * 1000;
    const validity = Math.min(cfg.validity, req.validitySeconds ?? cfg.validity);
    const issuerCert = profile.issuer.certificate;
    const notBefore = new Date(Math.max(nowSec - cfg.backdate * 1000, issuerCert.notBefore.getTime()));
    // RFC 5280 §6.1.3: a certificate outliving its issuer fails validation after the issuer expires.
    const notAfter = new Date(Math.min(nowSec + validity * 1000, issuerCert.notAfter.getTime()));
    if (notAfter.getTime() <= nowSec) throw new TesseraError("TESSERA_ERR_CA_NOT_INITIALIZED", { message: "issuing CA has expired" });

    const serial = generateSerial(cfg.serial, this.deps.random);
    const der = await profile.template.issue({ serial, notBefore, notAfter, subject, spki: csr.spki, subjectAltNames: sans });

    const device = auth.device ?? req.device;
    const record: CertificateRecord = {
      serial: serialToHex(serial),
      deviceId: device?.id ?? null,
      profile: profileName,
      subject: formatName(subject),
      sans: sans ? decodeGeneralNames(sans).map(formatSan) : [],
      keyFingerprint: sha256Hex(csr.spki),
      keyType: keyTypeName(csr.key),
      notBefore,
      notAfter,
      status: "valid",
      revokedAt: null,
      revocationReason: null,
      issuedAt: now,
      protocol: req.protocol,
      requestId: req.requestId ?? null,
      fingerprint: sha256Hex(der),
      der,
    };
    await this.writer.write({
      certificate: record,
      audit: {
        at: now,
        actor: auth.actor,
        action: "certificate.issued",
        target: record.serial,
        detail: { profile: profileName, protocol: req.protocol, subject: record.subject, device: record.deviceId },
      },
      device: device ? { ...device, protocol: req.protocol } : undefined,
      supersedes: req.supersedes,
      revokeSuperseded: req.revokeSuperseded,
      requestId: req.requestId,
      outbox: typeof req.outbox === "function" ? req.outbox({ der, pem: pemEncode("CERTIFICATE", der), record }) : req.outbox,
      sealedKey: req.sealedKey,
    });
    if (req.revokeSuperseded && req.supersedes?.length) this.revocations.revokedHere(req.supersedes, now, "superseded");
    return { record, der, pem: pemEncode("CERTIFICATE", der), chain: issuerCert.der.equals(this.deps.ca.root.der) ? [] : [issuerCert] };
  }

  /**
   * Revokes a certificate (compare-and-set in the store) and invalidates the
   * CRL. `reason` is a CRL reason name or code.
   */
  async revoke(serial: string, reason: string, actor: string): Promise<CertificateRecord> {
    const reasonName = parseCrlReason(reason);
    const at = this.deps.clock.now();
    const updated = await this.deps.store.revokeCertificate(serial, reasonName, at, {
      at,
      actor,
      action: "certificate.revoked",
      target: serial,
      detail: { reason: reasonName },
    });
    if (!updated) throw new TesseraError("TESSERA_ERR_CERT_NOT_FOUND", { detail: serial });
    this.revocations.revokedHere([serial], at, reasonName);
    return updated;
  }

  /**
   * Revokes a device: it can no longer renew or (by default) re-enroll, and
   * its unexpired certificates are revoked with `reason`.
   */
  async revokeDevice(id: string, reason: string, actor: string): Promise<{ revoked: string[] }> {
    const { serials } = await this.devices.markRevoked(id, actor);
    const revoked: string[] = [];
    for (const serial of serials) {
      try {
        await this.revoke(serial, reason, actor);
        revoked.push(serial);
      } catch (err) {
        // Revoked concurrently by someone else: the outcome is the same.
        if (!(err instanceof TesseraError && err.code === "TESSERA_ERR_CERT_ALREADY_REVOKED")) throw err;
      }
    }
    return { revoked };
  }

  /** The current CRL (cached; rebuilt after revocations and before nextUpdate). */
  currentCrl(): Promise<CrlSnapshot> {
    return this.crl.get();
  }

  /** A stored certificate by lowercase hex serial. */
  getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    return this.deps.store.getCertificate(serial);
  }

  /** Stored certificates matching a query. */
  listCertificates(query?: CertificateQuery): Promise<CertificateRecord[]> {
    return this.deps.store.listCertificates(query);
  }

  /** True if the serial is known and revoked (used by peer verification). */
  async isRevoked(serial: string): Promise<boolean> {
    const c = await this.deps.store.getCertificate(serial);
    return c?.status === "revoked";
  }

  /** Recent audit events. */
  listAudit(query?: { action?: string; target?: string; limit?: number }): Promise<AuditRecord[]> {
    return this.deps.store.listAudit(query);
  }

  /** Waits for queued writes (shutdown). */
  flush(): Promise<void> {
    return this.writer.flush();
  }
}
