/**
 * The Mainflux API's operators and things (docs/protocols/mainflux.md):
 * bearer tokens with a role (credentials of kind "token": SHA-256 of the
 * value, role in `scope`) and things (kind "thing" for the internal key,
 * "thing-external" for the optional external key, both named by the thing id
 * and stored as HMACs for lookup; the internal key itself encrypted in
 * thing_keys, since certificates carry it as CN; and a device with the
 * thing's id, which holds its certificates). Used by the HTTP front-end and by
 * `tessera token …` / `tessera thing …`.
 */
import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import type { Authority } from "../../authority/authority.js";
import { hashSecret } from "../../authority/authorizers.js";
import { OperatorTokens, type TokenView } from "../../authority/operator-tokens.js";
import type { CredentialRecord, Store } from "../../authority/ports.js";
import { TesseraError } from "../../errors.js";
import type { KeySealer } from "./sealer.js";

export { ROLES, hasRole, type Role } from "../../authority/operator-tokens.js";

/** Thing ids: URL-safe, as they appear in `/things/{id}/serials`. */
export const THING_ID = /^[A-Za-z0-9._~-]{1,128}$/;
/** Thing keys: visible ASCII; the internal one becomes the certificate's CN (at most 64 characters, X.520). */
const THING_KEY = /^[\x21-\x7e]{1,64}$/;
const EXTERNAL_KEY = /^[\x21-\x7e]{1,256}$/;

/** The protocol name the things' devices and certificates carry. */
export const MAINFLUX_PROTOCOL = "mainflux";

/** The store operations the registry needs. */
export type RegistryStore = Pick<
  Store,
  | "createCredential" | "findCredentialByName" | "findCredentialByHash" | "getCredential" | "listCredentials" | "deleteCredential" | "revokeCredential" | "appendAudit"
  | "putThingKey" | "getThingKey" | "deleteThingKey" | "getDevice" | "createDeviceIfAbsent" | "setDeviceStatus" | "listIssuedKeys" | "eraseIssuedKeys"
>;

/** A thing as listed (never its keys). */
export interface ThingView {
  id: string;
  externalKey: boolean;
  createdAt: Date;
}

const badInput = (message: string, detail?: string) => new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { message, detail });

/** Tokens and things over the store; `sealer` is derived from the CA passphrase (see sealer.ts). */
export class MainfluxRegistry {
  constructor(
    private readonly store: RegistryStore,
    private readonly sealer: () => Promise<KeySealer>,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.tokens = new OperatorTokens(store, now);
  }

  /** Operator tokens (shared with the admin API: authority/operator-tokens.ts). */
  readonly tokens: OperatorTokens;

  /** Creates a token (OperatorTokens.create). */
  createToken(name: string, role: string, value: string | undefined, actor: string): Promise<{ value: string; generated: boolean }> {
    return this.tokens.create(name, role, value, actor);
  }

  /** Every token, by name. */
  listTokens(): Promise<TokenView[]> {
    return this.tokens.list();
  }

  /** Revokes a token by name. */
  revokeToken(name: string, actor: string): Promise<void> {
    return this.tokens.revoke(name, actor);
  }

  /** The token's name and role if the value is a live token. */
  identifyToken(value: string): Promise<{ name: string; role: string } | undefined> {
    return this.tokens.identify(value);
  }

  /**
   * Registers a thing: its key (a new UUID unless given, as Mainflux makes
   * them), an optional external key, and a device with its id. Refuses an id
   * that a thing or another protocol's device already has; reactivates the
   * device of a thing removed before.
   */
  async addThing(id: string, key: string | undefined, externalKey: string | undefined, actor: string): Promise<{ key: string; generated: boolean }> {
    if (!THING_ID.test(id)) throw badInput("a thing id is 1-128 letters, digits, '.', '_', '~' or '-'", id);
    const thingKey = key ?? randomUUID();
    if (!THING_KEY.test(thingKey)) throw badInput("a thing key is 1-64 visible ASCII characters (it becomes the certificates' CN)");
    if (externalKey !== undefined && !EXTERNAL_KEY.test(externalKey)) throw badInput("an external key is 1-256 visible ASCII characters");
    if (externalKey !== undefined && externalKey === thingKey) throw badInput("the external key must differ from the thing key");
    const sealer = await this.sealer();
    if (await this.store.findCredentialByName("thing", id)) throw new TesseraError("TESSERA_ERR_STORE_CONFLICT", { message: "a thing with this id exists", detail: id });
    for (const [kind, k] of [["thing", thingKey], ["thing-external", externalKey]] as const) {
      if (k === undefined) continue;
      const clash = (await this.store.findCredentialByHash("thing", sealer.lookupHash(k))) ?? (await this.store.findCredentialByHash("thing-external", sealer.lookupHash(k)));
      if (clash) throw new TesseraError("TESSERA_ERR_STORE_CONFLICT", { message: `another thing has this ${kind === "thing" ? "" : "external "}key`, detail: clash.name });
    }
    const device = await this.store.getDevice(id);
    if (device && device.protocol !== MAINFLUX_PROTOCOL) throw new TesseraError("TESSERA_ERR_STORE_CONFLICT", { message: `a ${device.protocol} device has this id`, detail: id });
    const at = this.now();
    const credential = (kind: "thing" | "thing-external", k: string): CredentialRecord => ({
      id: randomUUID(), kind, name: id, scope: "*", hash: sealer.lookupHash(k), expiresAt: null, maxUses: null, useCount: 0, revokedAt: null, createdAt: at,
    });
    // The credential first: its unique (kind, name) decides between two concurrent adds of one id.
    await this.store.createCredential(credential("thing", thingKey));
    try {
      await this.store.putThingKey(id, sealer.seal(Buffer.from(thingKey, "utf8"), thingKeyContext(id)), at);
      if (externalKey !== undefined) await this.store.createCredential(credential("thing-external", externalKey));
    } catch (err) {
      await this.removeCredentials(id);
      await this.store.deleteThingKey(id);
      throw err;
    }
    if (!device) await this.store.createDeviceIfAbsent({ id, fingerprint: null, status: "active", protocol: MAINFLUX_PROTOCOL, attributes: {} }, at);
    else await this.store.setDeviceStatus(id, ["revoked", "disabled"], "active", at);
    await this.store.appendAudit({ at, actor, action: "thing.added", target: id, detail: { externalKey: externalKey !== undefined } });
    return { key: thingKey, generated: key === undefined };
  }

  /** Every thing, by id. */
  async listThings(): Promise<ThingView[]> {
    const external = new Set((await this.store.listCredentials("thing-external")).map((c) => c.name));
    return (await this.store.listCredentials("thing")).map((c) => ({ id: c.name, externalKey: external.has(c.name), createdAt: c.createdAt }));
  }

  /** True if a thing with this id is registered. */
  async thingExists(id: string): Promise<boolean> {
    return (await this.store.findCredentialByName("thing", id)) !== undefined;
  }

  /** The thing a key (internal, or external) belongs to. */
  async identifyThing(kind: "internal" | "external", key: string): Promise<string | undefined> {
    const sealer = await this.sealer();
    const hash = sealer.lookupHash(key);
    const found = await this.store.findCredentialByHash(kind === "internal" ? "thing" : "thing-external", hash);
    if (!found || !timingSafeEqual(Buffer.from(found.hash), Buffer.from(hash))) return undefined;
    return found.name;
  }

  /** A thing's key in clear (for the CN of its certificates), or undefined if it is not registered. */
  async thingKey(id: string): Promise<string | undefined> {
    const sealed = await this.store.getThingKey(id);
    if (!sealed) return undefined;
    return (await this.sealer()).open(sealed, thingKeyContext(id)).toString("utf8");
  }

  /**
   * Removes a thing (the spec's thing.remove event): its keys go first, so
   * nothing more is issued for it, then its device is revoked with every
   * unexpired certificate (reason cessationOfOperation) and the private keys
   * still waiting for a download are erased. Returns the revoked serials (hex).
   */
  async removeThing(id: string, authority: Pick<Authority, "revokeDevice">, actor: string): Promise<{ revoked: string[] }> {
    if (!(await this.thingExists(id))) throw new TesseraError("TESSERA_ERR_NOT_FOUND", { message: "no such thing", detail: id });
    await this.removeCredentials(id);
    await this.store.deleteThingKey(id);
    const at = this.now();
    await this.store.appendAudit({ at, actor, action: "thing.removed", target: id, detail: {} });
    const device = await this.store.getDevice(id);
    const { revoked } = device && device.protocol === MAINFLUX_PROTOCOL ? await authority.revokeDevice(id, "cessationOfOperation", actor) : { revoked: [] };
    await this.store.eraseIssuedKeys((await this.store.listIssuedKeys(id)).map((k) => k.serial));
    return { revoked };
  }

  private async removeCredentials(id: string): Promise<void> {
    for (const kind of ["thing", "thing-external"] as const) {
      const c = await this.store.findCredentialByName(kind, id);
      if (c) await this.store.deleteCredential(c.id);
    }
  }
}

/** Authenticated context of a thing key's ciphertext. */
function thingKeyContext(id: string): string {
  return `thing-key:${id}`;
}
