/**
 * The Mainflux-compatible API's administration (docs/protocols/mainflux.md):
 * `tessera token create|list|revoke` for the operators' bearer tokens (roles
 * viewer < editor < admin, stored as SHA-256) and `tessera thing
 * add|list|remove` for the things whose certificates the API issues (keys
 * stored as HMACs for lookup and encrypted under the CA passphrase, since
 * certificates carry the key as CN). Removing a thing revokes its certificates.
 */
import { readPassphrase } from "../ca/ca-files.js";
import { MainfluxRegistry } from "../protocols/mainflux/registry.js";
import { lazySealer } from "../protocols/mainflux/sealer.js";
import { EXIT, UsageError } from "./output.js";
import { flag, withAuthority } from "./commands-cert.js";
import type { Invocation } from "./main.js";
import type { Command } from "./commands.js";

async function registry<T>(inv: Invocation, fn: (r: MainfluxRegistry, a: Parameters<Parameters<typeof withAuthority>[1]>[0]) => Promise<T>): Promise<T> {
  const config = await inv.config();
  const sealer = lazySealer(() => readPassphrase({ env: inv.env.TESSERA_CA_PASSPHRASE, file: config.caPassphraseFile }));
  return withAuthority(inv, (authority, store) => fn(new MainfluxRegistry(store, sealer), authority));
}

function oneArg(inv: Invocation, what: string): string {
  const [value, extra] = inv.args;
  if (value === undefined) throw new UsageError(`a ${what} argument is needed`);
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
  return value;
}

function noArgs(inv: Invocation): void {
  if (inv.args.length > 0) throw new UsageError(`unexpected argument '${inv.args[0]}'`);
}

const tokenCreate: Command = (inv) => {
  const name = oneArg(inv, "NAME");
  const role = flag(inv, "role");
  if (role === undefined) throw new UsageError("--role admin|editor|viewer is required");
  return registry(inv, async (r) => {
    const { value, generated } = await r.createToken(name, role, flag(inv, "value"), "cli");
    if (inv.io.json) inv.io.out(JSON.stringify({ name, role, token: generated ? value : undefined }));
    else inv.io.out(generated ? `${value}\n(token '${name}' (${role}) created; this is the only time it is shown)` : `token '${name}' (${role}) created`);
    return EXIT.ok;
  });
};

const tokenList: Command = (inv) => {
  noArgs(inv);
  return registry(inv, async (r) => {
    const rows = (await r.listTokens()).map((t) => ({ name: t.name, role: t.role, createdAt: t.createdAt.toISOString(), revokedAt: t.revokedAt?.toISOString() ?? null }));
    if (inv.io.json) inv.io.out(JSON.stringify(rows));
    else for (const t of rows) inv.io.out(`${t.name.padEnd(24)} ${t.role.padEnd(6)}  created ${t.createdAt}${t.revokedAt ? `  REVOKED ${t.revokedAt}` : ""}`);
    return EXIT.ok;
  });
};

const tokenRevoke: Command = (inv) => {
  const name = oneArg(inv, "NAME");
  return registry(inv, async (r) => {
    await r.revokeToken(name, "cli");
    if (inv.io.json) inv.io.out(JSON.stringify({ name, revoked: true }));
    else inv.io.out(`token '${name}' revoked`);
    return EXIT.ok;
  });
};

const thingAdd: Command = (inv) => {
  const id = oneArg(inv, "ID");
  const given = flag(inv, "key");
  if (given === "") throw new UsageError("--key must not be empty (omit it to generate one)");
  const external = flag(inv, "external-key");
  if (external === "") throw new UsageError("--external-key must not be empty");
  return registry(inv, async (r) => {
    const { key, generated } = await r.addThing(id, given, external, "cli");
    if (inv.io.json) inv.io.out(JSON.stringify({ id, key: generated ? key : undefined, externalKey: external !== undefined }));
    else inv.io.out(generated ? `${key}\n(thing '${id}' added; this is the only time its key is shown)` : `thing '${id}' added`);
    return EXIT.ok;
  });
};

const thingList: Command = (inv) => {
  noArgs(inv);
  return registry(inv, async (r) => {
    const rows = (await r.listThings()).map((t) => ({ id: t.id, externalKey: t.externalKey, createdAt: t.createdAt.toISOString() }));
    if (inv.io.json) inv.io.out(JSON.stringify(rows));
    else for (const t of rows) inv.io.out(`${t.id.padEnd(38)} created ${t.createdAt}${t.externalKey ? "  +external key" : ""}`);
    return EXIT.ok;
  });
};

const thingRemove: Command = (inv) => {
  const id = oneArg(inv, "ID");
  return registry(inv, async (r, authority) => {
    const { revoked } = await r.removeThing(id, authority, "cli");
    if (inv.io.json) inv.io.out(JSON.stringify({ id, removed: true, revoked }));
    else inv.io.out(`thing '${id}' removed; ${revoked.length} certificate(s) revoked`);
    return EXIT.ok;
  });
};

/** Token and thing commands for the command table. */
export const mainfluxCommands: Record<string, Command> = {
  "token create": tokenCreate,
  "token list": tokenList,
  "token revoke": tokenRevoke,
  "thing add": thingAdd,
  "thing list": thingList,
  "thing remove": thingRemove,
};
