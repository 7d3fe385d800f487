/**
 * Bootstrap credentials, the things a device presents before it has a
 * certificate: build secrets (imprint, kind "secret"), factory bootstrap
 * certificates (liteboot, kind "certificate") and EST users (HTTP Basic, kind
 * "password"). One service creates, lists and revokes them for both the CLI
 * (`tessera secret|bootstrap|est user …`) and the admin API, each change with
 * its audit event.
 */
import { randomBytes, randomUUID, type KeyObject } from "node:crypto";
import { buildCsr, generateKeyPair, nameAttribute, sha256Hex } from "@tessera/pki";
import { hashSecret } from "./authorizers.js";
import { hashPassword } from "./passwords.js";
import type { CredentialKind, CredentialRecord, Store } from "./ports.js";
import type { Authority, IssuedCertificate } from "./authority.js";
import { TesseraError } from "../errors.js";

/** liteboot's marker of a bootstrap certificate: its only OU (liteboot spec §1). */
export const BOOTSTRAP_OU = "LinaroCA Bootstrap Cert";

/** Names of bootstrap certificates: they become the CN "bootstrap-NAME". */
const CERT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** The kinds of credential this service manages. */
export const BOOTSTRAP_KINDS = ["secret", "certificate", "password"] as const;
/** One of BOOTSTRAP_KINDS. */
export type BootstrapKind = (typeof BOOTSTRAP_KINDS)[number];

/** Whether a credential can still be used at `now`. */
export type CredentialState = "active" | "revoked" | "expired" | "exhausted";

/** The state of a credential at `now`. */
export function credentialState(c: Pick<CredentialRecord, "revokedAt" | "expiresAt" | "maxUses" | "useCount">, now: Date): CredentialState {
  if (c.revokedAt) return "revoked";
  if (c.expiresAt && c.expiresAt.getTime() <= now.getTime()) return "expired";
  if (c.maxUses !== null && c.useCount >= c.maxUses) return "exhausted";
  return "active";
}

const badInput = (message: string, detail?: string) => new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { message, detail });
const conflict = (message: string, detail: string) => new TesseraError("TESSERA_ERR_STORE_CONFLICT", { message, detail });

/** Common options of a new credential. */
export interface NewCredential {
  name: string;
  /** Protocol, label or bootstrap scope it is good for; "*" (default) for any. */
  scope?: string;
  /** Lifetime in seconds from now; none: no expiry. */
  expiresInSeconds?: number;
  /** Uses allowed; none: unlimited. */
  maxUses?: number;
}

/** Creates and revokes bootstrap credentials. */
export class BootstrapCredentials {
  constructor(
    private readonly store: Pick<Store, "createCredential" | "findCredentialByName" | "getCredential" | "listCredentials" | "revokeCredential" | "appendAudit" | "searchCertificates">,
    private readonly authority: Pick<Authority, "issue" | "revoke" | "ca">,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Creates a build secret; the value is generated (24 random bytes,
   * base64url) unless given. A given value shorter than 16 characters is
   * accepted (a fleet moving from imprint keeps the secret its binaries
   * carry) and flagged `weak`: it is stored as plain SHA-256.
   */
  async createSecret(opts: NewCredential & { value?: string }, actor: string): Promise<{ credential: CredentialRecord; value: string; generated: boolean; weak: boolean }> {
    this.checkCommon(opts);
    if (opts.value === "") throw badInput("a secret value must not be empty");
    if (await this.store.findCredentialByName("secret", opts.name)) throw conflict("a secret with this name exists", opts.name);
    const value = opts.value ?? randomBytes(24).toString("base64url");
    const credential = await this.save("secret", opts, hashSecret(value), this.expiry(opts), actor, {});
    return { credential, value, generated: opts.value === undefined, weak: opts.value !== undefined && opts.value.length < 16 };
  }

  /**
   * Issues a factory bootstrap certificate (profile "bootstrap", subject O of
   * the CA, CN "bootstrap-NAME", liteboot's OU) for a new P-256 key and
   * records it as a "certificate" credential keyed by its SHA-256. The key is
   * returned, never stored.
   */
  async issueBootstrapCertificate(opts: NewCredential, actor: string): Promise<{ credential: CredentialRecord; issued: IssuedCertificate; privateKey: KeyObject }> {
    if (!CERT_NAME.test(opts.name)) throw badInput("a bootstrap certificate name is letters, digits, '.', '_', '-' (up to 63, not starting with a symbol)", opts.name);
    this.checkCommon(opts);
    if (await this.store.findCredentialByName("certificate", opts.name)) throw conflict("a bootstrap certificate with this name exists", opts.name);
    const { privateKey } = generateKeyPair("ec-p256");
    const organization = nameAttribute(this.authority.ca.issuer.certificate.subject, "O");
    // liteboot's order: O, CN, OU (its setup-bootstrap.sh).
    const subject = [...(organization ? [{ type: "O", value: organization }] : []), { type: "CN", value: `bootstrap-${opts.name}` }, { type: "OU", value: BOOTSTRAP_OU }];
    const issued = await this.authority.issue({
      csr: buildCsr({ subject, privateKey }), profile: "bootstrap", protocol: "bootstrap", credential: { kind: "operator", actor }, subject, validitySeconds: opts.expiresInSeconds,
    });
    const credential = await this.save("certificate", opts, sha256Hex(issued.der), issued.record.notAfter, actor, { serial: issued.record.serial });
    return { credential, issued, privateKey };
  }

  /** Creates an EST user for one label (`scope`) or every label ("*"); the password is generated unless given. */
  async createEstUser(opts: { name: string; label?: string; password?: string }, actor: string): Promise<{ credential: CredentialRecord; password: string; generated: boolean }> {
    // RFC 7030 §3.2.3 allows an empty user name; a colon would break HTTP Basic (RFC 7617 §2).
    if (opts.name.includes(":")) throw badInput("an EST user name cannot contain ':'");
    if (opts.password === "") throw badInput("a password must not be empty");
    if (opts.label === "") throw badInput("a label must not be empty (omit it for every label)");
    const password = opts.password ?? randomBytes(18).toString("base64url");
    const hash = await hashPassword(password);
    if (await this.store.findCredentialByName("password", opts.name)) throw conflict("an EST user with this name exists", opts.name);
    const credential = await this.save("password", { name: opts.name, scope: opts.label }, hash, null, actor, { label: opts.label ?? "*" });
    return { credential, password, generated: opts.password === undefined };
  }

  /** Credentials of the bootstrap kinds (one kind when given), by kind then name. */
  async list(kind?: BootstrapKind): Promise<CredentialRecord[]> {
    const kinds = kind ? [kind] : BOOTSTRAP_KINDS;
    const all = (await Promise.all(kinds.map((k) => this.store.listCredentials(k)))).flat();
    return all.sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
  }

  /** A bootstrap credential by kind and name. */
  async find(kind: BootstrapKind, name: string): Promise<CredentialRecord | undefined> {
    return this.store.findCredentialByName(kind, name);
  }

  /** A bootstrap credential by id (undefined for other kinds). */
  async get(id: string): Promise<CredentialRecord | undefined> {
    const c = await this.store.getCredential(id);
    return c && (BOOTSTRAP_KINDS as readonly string[]).includes(c.kind) ? c : undefined;
  }

  /**
   * Revokes a credential (compare-and-set: a second revoke is a conflict). A
   * bootstrap certificate is also revoked as a certificate, so it is on the
   * CRL for anyone else who checks it. Returns the credential as now stored
   * and the certificate serial revoked, if any.
   */
  async revoke(c: CredentialRecord, actor: string): Promise<{ credential: CredentialRecord; serial: string | null }> {
    const at = this.now();
    if (!(await this.store.revokeCredential(c.id, at))) throw conflict(`${describe(c.kind)} already revoked`, c.name);
    await this.store.appendAudit({ at, actor, action: "credential.revoked", target: c.name, detail: { kind: c.kind, id: c.id } });
    let serial: string | null = null;
    if (c.kind === "certificate") {
      const cert = (await this.store.searchCertificates({ q: c.hash, status: "valid", limit: 5 })).items.find((r) => r.fingerprint === c.hash);
      if (cert) serial = (await this.authority.revoke(cert.serial, "cessationOfOperation", actor)).serial;
    }
    return { credential: (await this.store.getCredential(c.id)) ?? { ...c, revokedAt: at }, serial };
  }

  private checkCommon(opts: NewCredential): void {
    if (opts.name === "" || opts.name.length > 128) throw badInput("a name is 1-128 characters");
    if (opts.maxUses !== undefined && (!Number.isSafeInteger(opts.maxUses) || opts.maxUses < 1)) throw badInput("maxUses must be a positive integer");
    if (opts.expiresInSeconds !== undefined && !(opts.expiresInSeconds > 0)) throw badInput("an expiry must be a positive duration");
    if (opts.scope === "") throw badInput("a scope must not be empty (omit it for any)");
  }

  private expiry(opts: NewCredential): Date | null {
    return opts.expiresInSeconds === undefined ? null : new Date(this.now().getTime() + opts.expiresInSeconds * 1000);
  }

  private async save(kind: CredentialKind, opts: Pick<NewCredential, "name" | "scope" | "maxUses">, hash: string, expiresAt: Date | null, actor: string, detail: Record<string, unknown>): Promise<CredentialRecord> {
    const credential: CredentialRecord = {
      id: randomUUID(), kind, name: opts.name, scope: opts.scope ?? "*", hash, expiresAt, maxUses: opts.maxUses ?? null, useCount: 0, revokedAt: null, createdAt: this.now(),
    };
    await this.store.createCredential(credential);
    await this.store.appendAudit({ at: credential.createdAt, actor, action: "credential.created", target: opts.name, detail: { kind, id: credential.id, ...detail } });
    return credential;
  }
}

/** What operators call a credential kind. */
export function describe(kind: CredentialKind): string {
  return kind === "secret" ? "build secret" : kind === "certificate" ? "bootstrap certificate" : kind === "password" ? "EST user" : kind;
}
