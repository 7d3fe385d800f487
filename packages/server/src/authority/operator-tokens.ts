/**
 * Operators' bearer tokens with a role (viewer < editor < admin): credentials
 * of kind "token" holding the SHA-256 of the value, the role in `scope`.
 * One set of tokens serves every operator-facing API: the Mainflux certs API
 * (docs/protocols/mainflux.md) and the admin API and console
 * (docs/admin-api.md); `tessera token create|list|revoke` manages them.
 */
import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { hashSecret } from "./authorizers.js";
import type { Store } from "./ports.js";
import { TesseraError } from "../errors.js";

/** Operator roles, weakest first: each one may do what the ones before it may. */
export const ROLES = ["viewer", "editor", "admin"] as const;
/** An operator role. */
export type Role = (typeof ROLES)[number];

/** True if `role` is at least `needed`. */
export function hasRole(role: string, needed: Role): boolean {
  const have = ROLES.indexOf(role as Role);
  return have >= 0 && have >= ROLES.indexOf(needed);
}

const TOKEN_NAME = /^[A-Za-z0-9._@-]{1,128}$/;

/** A token as listed (never its value). */
export interface TokenView {
  name: string;
  role: string;
  createdAt: Date;
  revokedAt: Date | null;
}

/** A live token's identity. */
export interface TokenIdentity {
  /** Credential id (sessions opened with the token refer to it). */
  id: string;
  name: string;
  role: string;
}

/** The store operations tokens need. */
export type TokenStore = Pick<Store, "createCredential" | "findCredentialByName" | "findCredentialByHash" | "getCredential" | "listCredentials" | "deleteCredential" | "revokeCredential" | "appendAudit">;

const badInput = (message: string, detail?: string) => new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { message, detail });

/** Creates, lists, revokes and identifies operator tokens. */
export class OperatorTokens {
  constructor(
    private readonly store: TokenStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Creates a token; returns its value (generated: 32 random bytes, base64url, unless given). */
  async create(name: string, role: string, value: string | undefined, actor: string): Promise<{ value: string; generated: boolean }> {
    if (!TOKEN_NAME.test(name)) throw badInput("a token name is 1-128 letters, digits, '.', '_', '@' or '-'", name);
    if (!ROLES.includes(role as Role)) throw badInput(`a role is ${ROLES.join(", ")}`, role);
    if (value !== undefined && value.length < 16) throw badInput("a token value needs at least 16 characters (tokens are stored as SHA-256: give high-entropy values)");
    const existing = await this.store.findCredentialByName("token", name);
    if (existing && existing.revokedAt === null) throw new TesseraError("TESSERA_ERR_STORE_CONFLICT", { message: "a token with this name exists", detail: name });
    // A revoked token's name may be used again; the audit log keeps the history.
    if (existing) await this.store.deleteCredential(existing.id);
    const token = value ?? randomBytes(32).toString("base64url");
    const at = this.now();
    await this.store.createCredential({
      id: randomUUID(), kind: "token", name, scope: role, hash: hashSecret(token), expiresAt: null, maxUses: null, useCount: 0, revokedAt: null, createdAt: at,
    });
    await this.store.appendAudit({ at, actor, action: "credential.created", target: name, detail: { kind: "token", role } });
    return { value: token, generated: value === undefined };
  }

  /** Every token, by name. */
  async list(): Promise<TokenView[]> {
    return (await this.store.listCredentials("token")).map((c) => ({ name: c.name, role: c.scope, createdAt: c.createdAt, revokedAt: c.revokedAt }));
  }

  /** Revokes a token by name (compare-and-set); throws NOT_FOUND if there is no unrevoked one. */
  async revoke(name: string, actor: string): Promise<void> {
    const c = await this.store.findCredentialByName("token", name);
    const at = this.now();
    if (!c || !(await this.store.revokeCredential(c.id, at))) throw new TesseraError("TESSERA_ERR_NOT_FOUND", { message: "no such token (or already revoked)", detail: name });
    await this.store.appendAudit({ at, actor, action: "credential.revoked", target: name, detail: { kind: "token" } });
  }

  /** The token's identity if the value is a live token. */
  async identify(value: string): Promise<TokenIdentity | undefined> {
    const hash = hashSecret(value);
    const found = await this.store.findCredentialByHash("token", hash);
    // Compare digests in constant time even though the lookup was by digest.
    if (!found || !timingSafeEqual(Buffer.from(found.hash), Buffer.from(hash))) return undefined;
    return this.live(found);
  }

  /** The identity of the token with this credential id, if it is still live (sessions re-check it on every request). */
  async byId(id: string): Promise<TokenIdentity | undefined> {
    const found = await this.store.getCredential(id);
    return found && found.kind === "token" ? this.live(found) : undefined;
  }

  private live(c: { id: string; name: string; scope: string; revokedAt: Date | null; expiresAt: Date | null }): TokenIdentity | undefined {
    if (c.revokedAt !== null || (c.expiresAt !== null && c.expiresAt <= this.now())) return undefined;
    return { id: c.id, name: c.name, role: c.scope };
  }
}
