/**
 * Authorizers decide whether a credential may obtain a certificate and on
 * what terms. They form a registry keyed by credential kind (ARCHITECTURE.md,
 * style rule 3); protocols add their own kinds. The foundation ships the
 * operator authorizer (trusted local callers such as `tessera cert sign`) and
 * the bootstrap-secret authorizer (hashed secrets with scope, expiry, uses).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { NameAttribute, SubjectAltName } from "@tessera/pki";
import { TesseraError } from "../errors.js";
import type { Clock } from "./runtime.js";
import { verifyPassword } from "./passwords.js";
import type { DeviceStatus, Store } from "./ports.js";

/** Who asks, as the protocol decoded it. */
export interface Credential {
  /** Selects the authorizer: "operator", "secret", or a protocol's own kind. */
  kind: string;
  /** Kind-specific fields: `actor` for operator; `secret` and `scope` for secret. */
  [field: string]: unknown;
}

/** What an authorizer grants: who the actor is and the terms of issuance. */
export interface Authorization {
  /** Audit actor, e.g. "cli", "secret:factory-2026". */
  actor: string;
  /** Profile to use (overrides the request's). */
  profile?: string;
  /** Subject to write when the profile takes it from the request. */
  subject?: readonly NameAttribute[];
  /** SANs to write when the profile takes them from the request. */
  sans?: readonly SubjectAltName[];
  /** Device the certificate belongs to. */
  device?: { id: string; fingerprint: string | null; attributes: Record<string, string>; status: DeviceStatus };
}

/** Decides on one credential kind. */
export interface Authorizer {
  authorize(credential: Credential): Promise<Authorization>;
  /** Checks the credential without using it up; throws as authorize() would. */
  check?(credential: Credential): Promise<void>;
}

/** Trusts the caller: for in-process operator commands only, never exposed to the network. */
export const operatorAuthorizer: Authorizer = {
  async authorize(credential) {
    return { actor: typeof credential.actor === "string" ? credential.actor : "operator" };
  },
};

/**
 * Authorizes a device a protocol front-end has already authenticated by
 * possession of its current key (a verified client certificate, or a
 * challenge proof); the lineage compare-and-set in the store still decides
 * whether its issuance lands. Credential: `{ kind: "device", deviceId }`.
 */
export const deviceAuthorizer: Authorizer = {
  async authorize(credential) {
    if (typeof credential.deviceId !== "string" || credential.deviceId === "") throw new TesseraError("TESSERA_ERR_AUTH_REQUIRED");
    // `via` names who the front-end authenticated (an EST user, a bootstrap certificate) for the audit trail.
    const via = typeof credential.via === "string" && credential.via !== "" ? ` via ${credential.via}` : "";
    return { actor: `device:${credential.deviceId}${via}` };
  },
};

/**
 * Authorizes an HTTP Basic user (EST): `{ kind: "password", username,
 * password, scope }`. The user is a "password" credential named `username`
 * whose scope is `scope` (an EST label, "" for the label-less path) or "*";
 * it must not be revoked or expired. Nothing is consumed.
 */
export function passwordAuthorizer(store: Pick<Store, "findCredentialByName">, clock: Clock): Authorizer {
  const check = async (credential: Credential) => {
    const { username, password } = credential;
    if (typeof username !== "string" || typeof password !== "string") throw new TesseraError("TESSERA_ERR_AUTH_REQUIRED");
    const found = await store.findCredentialByName("password", username);
    // An unknown user costs the same scrypt as a known one, so timing does not reveal user names.
    const ok = await verifyPassword(password, found?.hash ?? DUMMY_HASH);
    if (!found || !ok) throw new TesseraError("TESSERA_ERR_CREDENTIAL_INVALID", { detail: `user ${JSON.stringify(username)}` });
    if (found.scope !== "*" && found.scope !== String(credential.scope ?? "")) {
      throw new TesseraError("TESSERA_ERR_CREDENTIAL_INVALID", { detail: `user ${username} is for label ${JSON.stringify(found.scope)}` });
    }
    if (found.revokedAt !== null || (found.expiresAt !== null && found.expiresAt <= clock.now())) {
      throw new TesseraError("TESSERA_ERR_CREDENTIAL_INVALID", { detail: `user ${username} is revoked or expired` });
    }
    return found;
  };
  return {
    async check(credential) {
      await check(credential);
    },
    async authorize(credential) {
      const found = await check(credential);
      return { actor: `est-user:${found.name}` };
    },
  };
}

// A valid hash of a random password, verified against when the user does not exist.
const DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/** Stored form of a bootstrap secret: "sha256:" + hex digest (secrets are high-entropy; see docs). */
export function hashSecret(secret: string): string {
  return "sha256:" + createHash("sha256").update(secret, "utf8").digest("hex");
}

/**
 * Authorizes a bootstrap secret: finds it by hash, checks scope, and consumes
 * one use atomically (the store refuses expired, exhausted or revoked ones).
 */
export function secretAuthorizer(store: Pick<Store, "findCredentialByHash" | "consumeCredential">, clock: Clock): Authorizer {
  const find = async (credential: Credential) => {
    if (typeof credential.secret !== "string" || credential.secret.length === 0) {
      throw new TesseraError("TESSERA_ERR_AUTH_REQUIRED");
    }
    const hash = hashSecret(credential.secret);
    const found = await store.findCredentialByHash("secret", hash);
    // Compare digests in constant time even though the lookup was by digest, so timing says nothing.
    if (!found || !timingSafeEqual(Buffer.from(found.hash), Buffer.from(hash))) throw new TesseraError("TESSERA_ERR_CREDENTIAL_INVALID");
    if (found.scope !== "*" && found.scope !== String(credential.scope)) throw new TesseraError("TESSERA_ERR_CREDENTIAL_INVALID", { detail: `scope ${found.scope}` });
    return found;
  };
  return {
    async check(credential) {
      const found = await find(credential);
      const now = clock.now();
      const usable =
        found.revokedAt === null && (found.expiresAt === null || found.expiresAt > now) && (found.maxUses === null || found.useCount < found.maxUses);
      if (!usable) throw new TesseraError("TESSERA_ERR_CREDENTIAL_INVALID", { detail: `${found.name}: expired, exhausted or revoked` });
    },
    async authorize(credential) {
      const found = await find(credential);
      const consumed = await store.consumeCredential(found.id, clock.now());
      if (!consumed) throw new TesseraError("TESSERA_ERR_CREDENTIAL_INVALID", { detail: "expired, exhausted or revoked" });
      return { actor: `secret:${found.name}` };
    },
  };
}

/**
 * Authorizes a factory bootstrap certificate that the liteboot listener
 * verified: `{ kind: "bootstrap", fingerprint, legacy, name }` with the
 * certificate's SHA-256 (hex). One issued by `tessera bootstrap issue` is a
 * "certificate" credential: it must not be revoked, expired or exhausted,
 * and each issuance uses it once. A legacy one (made by an imported liteboot
 * CA before Tessera, so never stored here) has no credential row and is
 * trusted as the edge verified it (chain and liteboot's OU marker).
 */
export function bootstrapAuthorizer(store: Pick<Store, "findCredentialByHash" | "consumeCredential">, clock: Clock): Authorizer {
  const find = async (credential: Credential) => {
    if (typeof credential.fingerprint !== "string" || !/^[0-9a-f]{64}$/.test(credential.fingerprint)) throw new TesseraError("TESSERA_ERR_AUTH_REQUIRED");
    const found = await store.findCredentialByHash("certificate", credential.fingerprint);
    if (!found && credential.legacy !== true) throw new TesseraError("TESSERA_ERR_CREDENTIAL_INVALID", { detail: "not a bootstrap certificate" });
    return found;
  };
  const name = (credential: Credential) => (typeof credential.name === "string" ? credential.name : "?");
  return {
    async check(credential) {
      const found = await find(credential);
      if (!found) return;
      const now = clock.now();
      const usable = found.revokedAt === null && (found.expiresAt === null || found.expiresAt > now) && (found.maxUses === null || found.useCount < found.maxUses);
      if (!usable) throw new TesseraError("TESSERA_ERR_CREDENTIAL_INVALID", { detail: `bootstrap ${found.name}: expired, exhausted or revoked` });
    },
    async authorize(credential) {
      const found = await find(credential);
      if (!found) return { actor: `bootstrap:legacy:${name(credential)}` };
      const consumed = await store.consumeCredential(found.id, clock.now());
      if (!consumed) throw new TesseraError("TESSERA_ERR_CREDENTIAL_INVALID", { detail: `bootstrap ${found.name}: expired, exhausted or revoked` });
      return { actor: `bootstrap:${found.name}` };
    },
  };
}
