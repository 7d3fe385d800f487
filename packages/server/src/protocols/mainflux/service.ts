/**
 * The Mainflux certs service's decisions (spec mainflux.md §2, docs/protocols/
 * mainflux.md): per-thing certificates with server-generated keys, issued,
 * renewed, rotated and revoked through the authority; the device's one
 * download of its key; listing; and the rotation of certificates nearing
 * expiry that a scheduler calls. Renewal and rotation store the new
 * certificate and revoke the old one in ONE transaction, under the device's
 * lineage compare-and-set, so one certificate is never replaced twice (several
 * replicas, a manual renew racing the scheduler).
 */
import { buildCsr, generateKeyPairAsync, pemEncode, sha256Hex, spkiDer } from "@tessera/pki";
import type { Authority, IssuedCertificate } from "../../authority/authority.js";
import type { CertificateRecord, OutboxMessage, Store } from "../../authority/ports.js";
import type { MainfluxConfig } from "../../config/types.js";
import { TesseraError } from "../../errors.js";
import { hasRole, MAINFLUX_PROTOCOL, MainfluxRegistry, type Role } from "./registry.js";
import {
  ERR, MainfluxFailure, pkiKeyType, storedKeySpec, type CertEvent, type CertRequest, type DownloadAnswer, type IssueAnswer, type KeySpec, type ListQuery,
  type PageAnswer, type Rotation, type ViewAnswer,
} from "./model.js";
import type { KeySealer } from "./sealer.js";
import { goTime, parseTtl, serialFromDecimal, serialToDecimal } from "./wire.js";

/** The slice of the authority this front-end uses. */
export type MainfluxAuthority = Pick<Authority, "issue" | "revoke" | "revokeDevice" | "getCertificate" | "listCertificates" | "ca" | "devices" | "profileNames">;
/** The store operations this front-end uses (its own tables and the registry's). */
export type MainfluxStore = Pick<Store, "getIssuedKey" | "listIssuedKeys" | "markIssuedKeyDownloaded" | "eraseIssuedKeys"> & ConstructorParameters<typeof MainfluxRegistry>[0];

/** How often a replacement is retried when the thing's lineage moved under it (another issuance for the thing). */
const LINEAGE_RETRIES = 4;

/** The Mainflux certs service on the authority. */
export class MainfluxService {
  readonly registry: MainfluxRegistry;

  constructor(
    private readonly authority: MainfluxAuthority,
    private readonly store: MainfluxStore,
    private readonly config: MainfluxConfig,
    private readonly sealer: () => Promise<KeySealer>,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.registry = new MainfluxRegistry(store, sealer, now);
  }

  /** PEM of the issuing CA and the chain clients get: [issuing CA, root] (the root alone when it issues). */
  private caPems(): { issuing: string; chain: string[] } {
    const { issuer, root } = this.authority.ca;
    const issuing = pemEncode("CERTIFICATE", issuer.certificate.der);
    return { issuing, chain: issuer.certificate.der.equals(root.der) ? [issuing] : [issuing, pemEncode("CERTIFICATE", root.der)] };
  }

  /** The token's audit actor, if it is live, has `role` and (when given) the thing exists; else 403 (spec §1.3). */
  private async authorize(token: string, thingId: string | null, role: Role): Promise<string> {
    const t = await this.registry.identifyToken(token);
    if (!t) throw new MainfluxFailure(403, ERR.authz, "unknown, revoked or expired token");
    if (!hasRole(t.role, role)) throw new MainfluxFailure(403, ERR.authz, `token ${t.name} is ${t.role}, ${role} needed`);
    if (thingId !== null && !(await this.registry.thingExists(thingId))) throw new MainfluxFailure(403, ERR.authz, `no thing ${JSON.stringify(thingId)}`);
    return `token:${t.name}`;
  }

  /** One of this API's current certificates by decimal serial (revoked ones are gone, as the original deletes them), else `missing`. */
  private async find(serial: string, missing: MainfluxFailure): Promise<CertificateRecord & { deviceId: string }> {
    const hex = serialFromDecimal(serial);
    const cert = hex === undefined ? undefined : await this.authority.getCertificate(hex);
    if (!cert || cert.protocol !== MAINFLUX_PROTOCOL || cert.status !== "valid" || cert.deviceId === null) throw missing;
    return cert as CertificateRecord & { deviceId: string };
  }

  private ttlSeconds(ttl: string): number {
    const seconds = parseTtl(ttl);
    if (seconds === undefined) throw new MainfluxFailure(400, ERR.create, `unparsable ttl ${JSON.stringify(ttl)}`);
    if (seconds < 1) throw new MainfluxFailure(400, ERR.create, `ttl ${JSON.stringify(ttl)} is not positive`);
    return seconds;
  }

  /**
   * Generates a key, and issues and stores a certificate for it (with the key
   * encrypted, in the same transaction): CN = the thing's key, profile
   * [mainflux] profile (its "-rsa" sibling for RSA keys when configured).
   * `replace` makes it a renewal of that certificate under the lineage
   * compare-and-set (the old one revoked in the same transaction).
   */
  private async issueFor(
    thingId: string,
    spec: KeySpec,
    validitySeconds: number,
    actor: string,
    replace?: { serial: string; expectCurrentSerial: string | null },
    event?: (e: CertEvent) => OutboxMessage[],
  ): Promise<{ issued: IssuedCertificate; keyPem: string }> {
    const thingKey = await this.registry.thingKey(thingId);
    if (thingKey === undefined) throw new MainfluxFailure(403, ERR.authz, `thing ${thingId} has no key (removed?)`);
    const device = await this.authority.devices.get(thingId);
    if (device && device.status !== "active") throw new MainfluxFailure(403, ERR.authz, `device ${thingId} is ${device.status}`);
    const { privateKey, publicKey } = await generateKeyPairAsync(pkiKeyType(spec));
    const keyPem = String(privateKey.export(spec.type === "rsa" ? { type: "pkcs1", format: "pem" } : { type: "sec1", format: "pem" }));
    const subject = [{ type: "CN", value: thingKey }];
    const sealer = await this.sealer();
    const rsaProfile = `${this.config.profile}-rsa`;
    const profile = spec.type === "rsa" && this.authority.profileNames().includes(rsaProfile) ? rsaProfile : this.config.profile;
    const caPems = this.caPems();
    const issued = await this.authority.issue({
      csr: buildCsr({ subject, privateKey }),
      profile,
      protocol: MAINFLUX_PROTOCOL,
      credential: { kind: "operator", actor },
      subject,
      validitySeconds,
      device: { id: thingId, fingerprint: null, attributes: {}, status: "active", ...(replace ? { expectCurrentSerial: replace.expectCurrentSerial } : {}) },
      ...(replace ? { supersedes: [replace.serial], revokeSuperseded: true } : {}),
      sealedKey: { ownerId: thingId, ciphertext: sealer.seal(Buffer.from(keyPem, "utf8"), issuedKeyContext(sha256Hex(spkiDer(publicKey)))) },
      outbox: event && (({ pem, record }) => event(this.certEvent(thingId, pem, keyPem, record, caPems))),
    });
    return { issued, keyPem };
  }

  private certEvent(thingId: string, pem: string, keyPem: string, record: CertificateRecord, ca: { issuing: string; chain: string[] }): CertEvent {
    return {
      thing_id: thingId,
      client_cert: pem,
      ...(this.config.events.includePrivateKey ? { client_key: keyPem } : {}),
      issuing_ca: ca.issuing,
      ca_chain: ca.chain,
      serial: serialToDecimal(record.serial),
      expires_at: goTime(record.notAfter),
    };
  }

  /**
   * Replaces `old` with a new certificate (new serial and key, `spec`,
   * `validitySeconds`), revoking `old` in the same transaction. The device's
   * current serial is read before the certificate's state, and the write
   * expects it unchanged: any other issuance or replacement for the thing in
   * between makes it fail and be retried on fresh state, so a certificate
   * already replaced (or revoked) by someone else answers 404.
   */
  private async replace(old: CertificateRecord & { deviceId: string }, spec: KeySpec, validitySeconds: number, actor: string, event?: (e: CertEvent) => OutboxMessage[]) {
    for (let attempt = 1; ; attempt++) {
      const device = await this.authority.devices.get(old.deviceId);
      const current = await this.authority.getCertificate(old.serial);
      if (!current || current.status !== "valid") throw new MainfluxFailure(404, ERR.notFound, `certificate ${old.serial} was replaced or revoked meanwhile`);
      try {
        const r = await this.issueFor(old.deviceId, spec, validitySeconds, actor, { serial: old.serial, expectCurrentSerial: device?.currentSerial ?? null }, event);
        // The old key can no longer be downloaded (its certificate is revoked); drop its ciphertext too.
        await this.store.eraseIssuedKeys([old.serial]).catch(() => undefined);
        return r;
      } catch (err) {
        if (!(err instanceof TesseraError && err.code === "TESSERA_ERR_LINEAGE_CONFLICT") || attempt >= LINEAGE_RETRIES) throw err;
      }
    }
  }

  private answer(r: { issued: IssuedCertificate; keyPem: string }, spec: KeySpec): IssueAnswer {
    const ca = this.caPems();
    return {
      certificate: r.issued.pem,
      issuing_ca: ca.issuing,
      ca_chain: ca.chain,
      ...(this.config.returnPrivateKey ? { private_key: r.keyPem } : {}),
      private_key_type: spec.type,
      serial: serialToDecimal(r.issued.record.serial),
      expires_at: goTime(r.issued.record.notAfter),
    };
  }

  /** E1: a new certificate for a thing (editor). `spec` was validated by the edge. */
  async issue(token: string, req: CertRequest, spec: KeySpec): Promise<IssueAnswer> {
    const actor = await this.authorize(token, req.thingId, "editor");
    const seconds = this.ttlSeconds(req.ttl);
    return this.answer(await this.issueFor(req.thingId, spec, seconds, actor), spec);
  }

  /** E2: replaces a certificate with one made to the body's parameters, any time before its revocation (editor). */
  async rotate(token: string, serial: string, req: CertRequest, spec: KeySpec): Promise<IssueAnswer> {
    const old = await this.find(serial, new MainfluxFailure(404, ERR.notFound));
    if (old.deviceId !== req.thingId) throw new MainfluxFailure(403, ERR.authz, `certificate belongs to ${old.deviceId}, not ${req.thingId}`);
    const actor = await this.authorize(token, old.deviceId, "editor");
    const seconds = this.ttlSeconds(req.ttl);
    return this.answer(await this.replace(old, spec, seconds, actor), spec);
  }

  /** E4: renews a certificate within [mainflux] renew_window of its expiry (expired ones too), keeping its key type, size and validity (editor). */
  async renew(token: string, serial: string): Promise<IssueAnswer> {
    const old = await this.find(serial, new MainfluxFailure(404, ERR.notFound));
    const actor = await this.authorize(token, old.deviceId, "editor");
    const left = old.notAfter.getTime() - this.now().getTime();
    if (left > this.config.renewWindow * 1000) throw new MainfluxFailure(400, ERR.notEligible, `expires in ${Math.round(left / 1000)} s`);
    const spec = storedKeySpec(old.keyType);
    return this.answer(await this.replace(old, spec, lifetimeSeconds(old), actor), spec);
  }

  /** E5: revokes a certificate (editor); the time is the revocation's. */
  async revoke(token: string, serial: string): Promise<{ RevocationTime: string }> {
    const cert = await this.find(serial, new MainfluxFailure(404, ERR.revoke));
    const actor = await this.authorize(token, cert.deviceId, "editor");
    let revoked: CertificateRecord;
    try {
      revoked = await this.authority.revoke(cert.serial, "unspecified", actor);
    } catch (err) {
      if (err instanceof TesseraError && (err.code === "TESSERA_ERR_CERT_ALREADY_REVOKED" || err.code === "TESSERA_ERR_CERT_NOT_FOUND")) throw new MainfluxFailure(404, ERR.revoke, err.code);
      throw err;
    }
    await this.store.eraseIssuedKeys([cert.serial]).catch(() => undefined);
    return { RevocationTime: goTime(revoked.revokedAt ?? this.now()) };
  }

  /** E3: one certificate, without its key (viewer). */
  async view(token: string, serial: string): Promise<ViewAnswer> {
    const cert = await this.find(serial, new MainfluxFailure(404, ERR.notFound));
    await this.authorize(token, cert.deviceId, "viewer");
    const key = await this.store.getIssuedKey(cert.serial);
    const spec = storedKeySpec(cert.keyType);
    return {
      certificate: pemEncode("CERTIFICATE", cert.der),
      serial: serialToDecimal(cert.serial),
      expires_at: goTime(cert.notAfter),
      thing_id: cert.deviceId,
      downloaded: key?.downloadedAt != null,
      key_type: spec.type,
      key_bits: spec.bits,
    };
  }

  /** E6: a thing's current certificates by expiry, filtered and paged (viewer). */
  async list(token: string, thingId: string, q: ListQuery): Promise<PageAnswer> {
    await this.authorize(token, thingId, "viewer");
    const downloaded = new Set((await this.store.listIssuedKeys(thingId)).filter((k) => k.downloadedAt !== null).map((k) => k.serial));
    const rows = (await this.authority.listCertificates({ deviceId: thingId, status: "valid" }))
      .filter((c) => c.protocol === MAINFLUX_PROTOCOL)
      .map((c) => ({ c, decimal: serialToDecimal(c.serial) }))
      .filter(({ c, decimal }) => (q.serial === undefined || decimal.includes(q.serial.toLowerCase())) && (q.from === undefined || c.notAfter.getTime() >= q.from) && (q.to === undefined || c.notAfter.getTime() < q.to))
      .sort((a, b) => a.c.notAfter.getTime() - b.c.notAfter.getTime() || (a.decimal.length - b.decimal.length || (a.decimal < b.decimal ? -1 : a.decimal > b.decimal ? 1 : 0)));
    return {
      total: rows.length,
      offset: q.offset,
      limit: q.limit,
      certs: rows.slice(q.offset, q.offset + q.limit).map(({ c, decimal }) => ({ thing_id: thingId, cert_serial: decimal, expires_at: goTime(c.notAfter), downloaded: downloaded.has(c.serial) })),
    };
  }

  /**
   * E7: the device's one download of its key, certificate and CA chain,
   * authenticated by its thing key (internal or external). The key is
   * decrypted first, then the compare-and-set marks the download and erases
   * the ciphertext in one statement, so of racing downloads exactly one
   * answers and nothing can return the key afterwards.
   */
  async download(kind: "internal" | "external", key: string, serial: string): Promise<DownloadAnswer> {
    const cert = await this.find(serial, new MainfluxFailure(404, ERR.notFound));
    const thingId = await this.registry.identifyThing(kind, key);
    if (thingId === undefined) throw new MainfluxFailure(404, ERR.notFound, "unknown thing key");
    if (thingId !== cert.deviceId) throw new MainfluxFailure(403, ERR.authz, `the key is ${thingId}'s, the certificate ${cert.deviceId}'s`);
    const row = await this.store.getIssuedKey(cert.serial);
    if (row?.downloadedAt) throw new MainfluxFailure(403, ERR.downloaded);
    if (!row?.ciphertext) throw new MainfluxFailure(404, ERR.notFound, "no key stored for this certificate");
    const keyPem = (await this.sealer()).open(row.ciphertext, issuedKeyContext(cert.keyFingerprint)).toString("utf8");
    if (!(await this.store.markIssuedKeyDownloaded(cert.serial, thingId, this.now()))) {
      const again = await this.store.getIssuedKey(cert.serial);
      throw again?.downloadedAt ? new MainfluxFailure(403, ERR.downloaded) : new MainfluxFailure(404, ERR.notFound, "key erased meanwhile");
    }
    const ca = this.caPems();
    return {
      certificate: pemEncode("CERTIFICATE", cert.der),
      issuing_ca: ca.issuing,
      ca_chain: ca.chain,
      private_key: keyPem,
      private_key_type: storedKeySpec(cert.keyType).type,
      serial: serialToDecimal(cert.serial),
      thing_id: thingId,
      expires_at: goTime(cert.notAfter),
    };
  }

  /**
   * Rotates this API's certificates that are unexpired and expire within
   * [mainflux.rotation] before of `now`, but never before half their lifetime
   * has passed (so a certificate shorter-lived than `before` is not replaced
   * at every run), as spec §3 without its flaws: each is
   * renewed with its key type, size and validity, and revoked in the same
   * transaction; a certificate another replica (or a manual renew) replaced
   * meanwhile is skipped, so none is rotated twice. `outbox` turns each event
   * into outbox messages stored in that same transaction (e.g. for the event
   * bus), so an event is never lost nor sent for a rotation that did not
   * happen. Does not look at rotation.enabled: the caller schedules. Errors of
   * one certificate are passed to `onError` and the loop goes on.
   */
  async rotateExpiring(
    now: Date = this.now(),
    opts: { outbox?: (event: CertEvent) => OutboxMessage[]; onError?: (serial: string, err: unknown) => void } = {},
  ): Promise<Rotation[]> {
    const horizon = now.getTime() + this.config.rotation.before * 1000;
    const due = (await this.authority.listCertificates({ status: "valid", expiresAfter: now, expiresBefore: new Date(horizon + 1) }))
      .filter((c): c is CertificateRecord & { deviceId: string } => c.protocol === MAINFLUX_PROTOCOL && c.deviceId !== null && c.notAfter.getTime() > now.getTime())
      .filter((c) => c.notAfter.getTime() - now.getTime() <= Math.min(horizon - now.getTime(), (c.notAfter.getTime() - c.notBefore.getTime()) / 2))
      .sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime());
    const out: Rotation[] = [];
    for (const old of due) {
      try {
        const r = await this.replace(old, storedKeySpec(old.keyType), lifetimeSeconds(old), "mainflux:rotation", opts.outbox);
        out.push({
          thingId: old.deviceId,
          oldSerial: serialToDecimal(old.serial),
          newSerial: serialToDecimal(r.issued.record.serial),
          event: this.certEvent(old.deviceId, r.issued.pem, r.keyPem, r.issued.record, this.caPems()),
        });
      } catch (err) {
        // Replaced or revoked by someone else since the listing: nothing to do.
        if (err instanceof MainfluxFailure && err.status === 404) continue;
        opts.onError?.(old.serial, err);
      }
    }
    return out;
  }
}

/** A certificate's lifetime in whole seconds (notAfter − notBefore), at least 1. */
function lifetimeSeconds(c: CertificateRecord): number {
  return Math.max(1, Math.round((c.notAfter.getTime() - c.notBefore.getTime()) / 1000));
}

/** Authenticated context of an issued key's ciphertext: the SHA-256 of the certificate's public key. */
function issuedKeyContext(spkiSha256: string): string {
  return `issued-key:${spkiSha256}`;
}
