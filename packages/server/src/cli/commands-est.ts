/**
 * EST user commands: `tessera est user add|list|remove`. An EST user is a
 * "password" credential (scrypt-hashed) that HTTP Basic authenticates on
 * simpleenroll and serverkeygen (RFC 7030 §3.2.3), for one label or all.
 */
import { TesseraError } from "../errors.js";
import { EXIT, UsageError } from "./output.js";
import { flag, withAuthority, withCredentials } from "./commands-cert.js";
import type { Invocation } from "./main.js";
import type { Command } from "./commands.js";

const userAdd = async (inv: Invocation, name: string): Promise<number> => {
  // RFC 7030 §3.2.3 allows an empty user name; a colon would break HTTP Basic (RFC 7617 §2).
  if (name.includes(":")) throw new UsageError("an EST user name cannot contain ':'");
  const given = flag(inv, "password");
  if (given === "") throw new UsageError("--password must not be empty");
  const label = flag(inv, "label");
  if (label === "") throw new UsageError("--label must not be empty (omit it for every label)");
  const config = await inv.config();
  if (label !== undefined && !Object.hasOwn(config.est.labels, label)) {
    inv.io.err(`warning: no EST label ${JSON.stringify(label)} is configured yet ([est.labels.${label}] in tessera.toml)`);
  }
  return withCredentials(inv, async (credentials) => {
    const { password, generated } = await credentials.createEstUser({ name, label, password: given }, "cli");
    if (inv.io.json) inv.io.out(JSON.stringify({ name, label: label ?? "*", password: generated ? password : undefined }));
    else inv.io.out(generated ? `${password}\n(EST user '${name}' created; this is the only time the password is shown)` : `EST user '${name}' created (${label === undefined ? "every label" : `label ${label}`})`);
    return EXIT.ok;
  });
};

const userList = (inv: Invocation): Promise<number> =>
  withAuthority(inv, async (_a, store) => {
    const rows = (await store.listCredentials("password")).map((c) => ({ name: c.name, label: c.scope, createdAt: c.createdAt.toISOString(), revoked: c.revokedAt !== null }));
    if (inv.io.json) inv.io.out(JSON.stringify(rows));
    else for (const r of rows) inv.io.out(`${JSON.stringify(r.name).padEnd(24)} label ${r.label === "*" ? "(all)" : r.label}  created ${r.createdAt}${r.revoked ? "  REVOKED" : ""}`);
    return EXIT.ok;
  });

const userRemove = (inv: Invocation, name: string): Promise<number> =>
  withAuthority(inv, async (_a, store) => {
    const c = await store.findCredentialByName("password", name);
    if (!c || !(await store.deleteCredential(c.id))) throw new TesseraError("TESSERA_ERR_NOT_FOUND", { message: "no such EST user", detail: name });
    await store.appendAudit({ at: new Date(), actor: "cli", action: "credential.deleted", target: name, detail: { kind: "password" } });
    if (inv.io.json) inv.io.out(JSON.stringify({ name, removed: true }));
    else inv.io.out(`EST user '${name}' removed`);
    return EXIT.ok;
  });

const estUser: Command = async (inv) => {
  const [action, name, ...extra] = inv.args;
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (action === "list") {
    if (name !== undefined) throw new UsageError(`unexpected argument '${name}'`);
    return userList(inv);
  }
  if (action !== "add" && action !== "remove") throw new UsageError("usage: tessera est user add|list|remove …");
  if (name === undefined) throw new UsageError("a NAME argument is needed");
  return action === "add" ? userAdd(inv, name) : userRemove(inv, name);
};

/** EST commands for the command table. */
export const estCommands: Record<string, Command> = {
  "est user": estUser,
};
