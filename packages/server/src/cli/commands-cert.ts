/**
 * Certificate and bootstrap-secret commands. Signing goes through the same
 * authority pipeline as every protocol (credential kind "operator").
 */
import * as fs from "node:fs";
import pino from "pino";
import { parseNameString, parseSan, parseSerialInput, serialToHex, serialHexToDecimal } from "@tessera/pki";
import { openAuthority } from "../server.js";
import { BootstrapCredentials, credentialState, describe, type BootstrapKind } from "../authority/bootstrap-credentials.js";
import type { Authority } from "../authority/authority.js";
import type { CertificateRecord, CertificateStatus, CredentialKind, CredentialRecord, Store } from "../authority/ports.js";
import { TesseraError } from "../errors.js";
import { parseDuration } from "../config/duration.js";
import { EXIT, UsageError } from "./output.js";
import type { Invocation } from "./main.js";
import type { Command } from "./commands.js";

/** Opens the store and authority for one command and closes them after. */
export async function withAuthority<T>(inv: Invocation, fn: (a: Authority, store: Store) => Promise<T>): Promise<T> {
  const config = await inv.config();
  const { authority, store } = await openAuthority(config, pino({ level: "warn" }, pino.destination(2)), inv.env);
  try {
    return await fn(authority, store);
  } finally {
    await authority.flush();
    await store.close();
  }
}

/** A string flag's value, or undefined. */
export function flag(inv: Invocation, name: string): string | undefined {
  const v = inv.flags[name];
  return typeof v === "string" ? v : undefined;
}

/** Finds a certificate by any textual serial form (decimal tried first for digits-only input). */
async function findBySerial(authority: Authority, text: string | undefined): Promise<CertificateRecord> {
  if (!text) throw new UsageError("a SERIAL argument is needed");
  let candidates: bigint[];
  try {
    candidates = parseSerialInput(text);
  } catch {
    throw new UsageError(`not a serial number: ${text}`);
  }
  for (const c of candidates) {
    const rec = await authority.getCertificate(serialToHex(c));
    if (rec) return rec;
  }
  throw new TesseraError("TESSERA_ERR_CERT_NOT_FOUND", { detail: text });
}

function view(r: CertificateRecord) {
  return {
    serial: r.serial,
    serialDecimal: serialHexToDecimal(r.serial),
    subject: r.subject,
    sans: r.sans,
    profile: r.profile,
    protocol: r.protocol,
    deviceId: r.deviceId,
    keyType: r.keyType,
    status: r.status === "valid" && r.notAfter.getTime() < Date.now() ? "expired" : r.status,
    notBefore: r.notBefore.toISOString(),
    notAfter: r.notAfter.toISOString(),
    revokedAt: r.revokedAt?.toISOString() ?? null,
    revocationReason: r.revocationReason,
    sha256: r.fingerprint,
  };
}

const certSign: Command = (inv) =>
  withAuthority(inv, async (authority) => {
    const file = flag(inv, "csr");
    if (!file) throw new UsageError("--csr FILE is required");
    if (!fs.existsSync(file)) throw new UsageError(`CSR file not found: ${file}`);
    const subject = flag(inv, "subject");
    const sans = (inv.flags.san as string[] | undefined) ?? [];
    const issued = await authority.issue({
      csr: fs.readFileSync(file),
      profile: flag(inv, "profile"),
      protocol: "cli",
      credential: { kind: "operator", actor: "cli" },
      subject: subject ? parseNameString(subject) : undefined,
      sans: sans.length ? sans.map(parseSan) : undefined,
    });
    if (inv.io.json) inv.io.out(JSON.stringify({ ...view(issued.record), pem: issued.pem }));
    else inv.io.out(issued.pem.trimEnd());
    return EXIT.ok;
  });

const certList: Command = (inv) =>
  withAuthority(inv, async (authority) => {
    const status = flag(inv, "status");
    if (status && !["valid", "revoked", "superseded"].includes(status)) throw new UsageError(`--status must be valid, revoked or superseded`);
    const limit = Number(flag(inv, "limit") ?? 100);
    if (!Number.isInteger(limit) || limit <= 0) throw new UsageError("--limit must be a positive integer");
    const rows = await authority.listCertificates({ deviceId: flag(inv, "device"), status: status as CertificateStatus | undefined, limit });
    if (inv.io.json) inv.io.out(JSON.stringify(rows.map(view)));
    else for (const r of rows.map(view)) inv.io.out(`${r.serial}  ${r.status.padEnd(10)}  ${r.notAfter}  ${r.subject}`);
    return EXIT.ok;
  });

const certShow: Command = (inv) =>
  withAuthority(inv, async (authority) => {
    const r = await findBySerial(authority, inv.args[0]);
    if (inv.io.json) inv.io.out(JSON.stringify({ ...view(r), pem: r.der.toString("base64") }));
    else for (const [k, v] of Object.entries(view(r))) inv.io.out(`${k.padEnd(17)} ${Array.isArray(v) ? v.join(", ") : v ?? "-"}`);
    return EXIT.ok;
  });

const certRevoke: Command = (inv) =>
  withAuthority(inv, async (authority) => {
    const r = await findBySerial(authority, inv.args[0]);
    let updated;
    try {
      updated = await authority.revoke(r.serial, flag(inv, "reason") ?? "unspecified", "cli");
    } catch (err) {
      if (err instanceof Error && "code" in err && err.code === "TESSERA_ERR_PKI_INVALID_ARGUMENT") throw new UsageError((err as Error).message + `: ${flag(inv, "reason")}`);
      throw err;
    }
    if (inv.io.json) inv.io.out(JSON.stringify(view(updated)));
    else inv.io.out(`revoked ${updated.serial} (${updated.revocationReason}) at ${updated.revokedAt?.toISOString()}`);
    return EXIT.ok;
  });

const secretCreate: Command = (inv) => {
  // Every argument is checked before the store (and, on a first run, the CA) is opened.
  const name = inv.args[0];
  if (!name) throw new UsageError("a NAME argument is needed");
  const given = flag(inv, "value");
  if (given === "") throw new UsageError("--value must not be empty");
  const maxUses = positiveIntFlag(inv, "max-uses");
  const expiresInSeconds = durationFlag(inv, "expires");
  return withCredentials(inv, async (credentials) => {
    const r = await credentials.createSecret({ name, value: given, scope: flag(inv, "scope"), expiresInSeconds, maxUses }, "cli");
    const warning = r.weak ? "this secret is shorter than 16 characters: anyone who can guess it can enroll; use it only to migrate an existing fleet" : undefined;
    if (inv.io.json) inv.io.out(JSON.stringify({ name, value: r.generated ? r.value : undefined, expiresAt: r.credential.expiresAt, maxUses: r.credential.maxUses, warning }));
    else {
      inv.io.out(r.generated ? `${r.value}\n(secret '${name}' created; this is the only time it is shown)` : `secret '${name}' created`);
      if (warning) inv.io.err(`warning: ${warning}`);
    }
    return EXIT.ok;
  });
};

/** Runs `fn` with the bootstrap-credential service over an opened authority. */
export function withCredentials<T>(inv: Invocation, fn: (c: BootstrapCredentials, a: Authority, store: Store) => Promise<T>): Promise<T> {
  return withAuthority(inv, (authority, store) => fn(new BootstrapCredentials(store, authority), authority, store));
}

/** A `--NAME N` flag that must be a positive integer, or undefined. */
export function positiveIntFlag(inv: Invocation, name: string): number | undefined {
  const v = flag(inv, name);
  if (v !== undefined && !/^[1-9]\d*$/.test(v)) throw new UsageError(`--${name} must be a positive integer`);
  return v === undefined ? undefined : Number(v);
}

/** A `--NAME 90d` duration flag in seconds, or undefined. */
export function durationFlag(inv: Invocation, name: string): number | undefined {
  const v = flag(inv, name);
  if (v === undefined) return undefined;
  const secs = parseDuration(v);
  if (secs === undefined || secs <= 0) throw new UsageError(`--${name}: not a duration: ${v}`);
  return secs;
}

/** `tessera secret|bootstrap revoke NAME`: revokes a bootstrap credential of `kind` by name. */
export function revokeCredentialCommand(kind: BootstrapKind): Command {
  return (inv) =>
    withCredentials(inv, async (credentials) => {
      const name = inv.args[0];
      if (!name) throw new UsageError("a NAME argument is needed");
      const c = await credentials.find(kind, name);
      if (!c) throw new TesseraError("TESSERA_ERR_NOT_FOUND", { message: `no such ${describe(kind)}`, detail: name });
      const { credential, serial } = await credentials.revoke(c, "cli");
      if (inv.io.json) inv.io.out(JSON.stringify({ name, revokedAt: credential.revokedAt?.toISOString() ?? null, ...(kind === "certificate" ? { serial } : {}) }));
      else inv.io.out(`${describe(kind)} '${name}' revoked`);
      return EXIT.ok;
    });
}

/**
 * Lists credentials of one kind (bootstrap secrets, bootstrap certificates):
 * name, scope, uses, expiry and state, never the stored hash unless `extra` adds it.
 */
export function listCredentialsCommand(kind: CredentialKind, extra: (c: CredentialRecord) => Record<string, unknown> = () => ({})): Command {
  return (inv) =>
    withAuthority(inv, async (_a, store) => {
      const now = new Date();
      const rows = (await store.listCredentials(kind)).map((c) => ({
        name: c.name, scope: c.scope, uses: c.useCount, maxUses: c.maxUses, expiresAt: c.expiresAt?.toISOString() ?? null,
        state: credentialState(c, now),
        ...extra(c),
      }));
      if (inv.io.json) inv.io.out(JSON.stringify(rows));
      else for (const r of rows) inv.io.out(`${r.name.padEnd(24)} ${r.state.padEnd(9)} uses ${r.uses}${r.maxUses !== null ? "/" + r.maxUses : ""}  scope ${r.scope}  expires ${r.expiresAt ?? "never"}`);
      return EXIT.ok;
    });
}

const secretList: Command = listCredentialsCommand("secret");

const secretRevoke: Command = revokeCredentialCommand("secret");

/** Certificate and secret commands for the command table. */
export const certCommands: Record<string, Command> = {
  "cert sign": certSign,
  "cert list": certList,
  "cert show": certShow,
  "cert revoke": certRevoke,
  "secret create": secretCreate,
  "secret list": secretList,
  "secret revoke": secretRevoke,
};
