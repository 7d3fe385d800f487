/**
 * Factory bootstrap certificates for liteboot devices: `tessera bootstrap
 * issue|list|revoke`. A bootstrap certificate carries liteboot's OU marker
 * (spec §1, §4.4) and is a "certificate" credential (found by the
 * certificate's SHA-256) with a name, scope, expiry and use count: each
 * device certificate issued over it uses it once.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomUUID } from "node:crypto";
import { buildCsr, generateKeyPair, nameAttribute, pemEncode, sha256Hex } from "@tessera/pki";
import { BOOTSTRAP_OU } from "../protocols/liteboot/service.js";
import { TesseraError } from "../errors.js";
import { parseDuration } from "../config/duration.js";
import { EXIT, UsageError } from "./output.js";
import { flag, listCredentialsCommand, withAuthority } from "./commands-cert.js";
import type { Command } from "./commands.js";

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** A PEM file as C string literals, one per line ("<line>\r\n"), as liteboot's setup scripts write for firmware. */
function cStringLines(pem: string): string {
  return pem.trimEnd().split("\n").map((l) => `"${l}\\r\\n"`).join("\n") + "\n";
}

/** `xxd -i` of bytes (the firmware embeds the key this way). */
function xxd(name: string, bytes: Buffer): string {
  const rows: string[] = [];
  for (let i = 0; i < bytes.length; i += 12) rows.push("  " + [...bytes.subarray(i, i + 12)].map((b) => `0x${b.toString(16).padStart(2, "0")}`).join(", "));
  return `unsigned char ${name}[] = {\n${rows.join(",\n")}\n};\nunsigned int ${name}_len = ${bytes.length};\n`;
}

const bootstrapIssue: Command = (inv) => {
  const name = flag(inv, "name");
  if (!name || !NAME_RE.test(name)) throw new UsageError("--name LINE is needed: letters, digits, '.', '_', '-' (up to 63)");
  const out = flag(inv, "out");
  if (!out) throw new UsageError("--out DIR is needed (where BOOTSTRAP.crt and BOOTSTRAP.key are written)");
  const maxUses = flag(inv, "max-uses");
  if (maxUses !== undefined && !/^[1-9]\d*$/.test(maxUses)) throw new UsageError("--max-uses must be a positive integer");
  const expires = flag(inv, "expires");
  const seconds = expires === undefined ? undefined : parseDuration(expires);
  if (expires !== undefined && (seconds === undefined || seconds <= 0)) throw new UsageError(`--expires: not a duration: ${expires}`);
  const files = ["BOOTSTRAP.crt", "BOOTSTRAP.key", "bootstrap_crt.txt", "bootstrap_key.txt", "CA.crt"].map((f) => path.join(out, f));
  const existing = files.find((f) => fs.existsSync(f));
  if (existing) throw new UsageError(`${existing} exists: choose an empty --out directory`);
  return withAuthority(inv, async (authority, store) => {
    if (await store.findCredentialByName("certificate", name)) throw new TesseraError("TESSERA_ERR_STORE_CONFLICT", { message: "a bootstrap certificate with this name exists", detail: name });
    const { privateKey } = generateKeyPair("ec-p256");
    const organization = nameAttribute(authority.ca.issuer.certificate.subject, "O");
    // The original's order: O, CN, OU (setup-bootstrap.sh).
    const subject = [...(organization ? [{ type: "O", value: organization }] : []), { type: "CN", value: `bootstrap-${name}` }, { type: "OU", value: BOOTSTRAP_OU }];
    const issued = await authority.issue({
      csr: buildCsr({ subject, privateKey }), profile: "bootstrap", protocol: "bootstrap", credential: { kind: "operator", actor: "cli" }, subject, validitySeconds: seconds,
    });
    const now = new Date();
    await store.createCredential({
      id: randomUUID(), kind: "certificate", name, scope: flag(inv, "scope") ?? "*", hash: sha256Hex(issued.der),
      expiresAt: issued.record.notAfter, maxUses: maxUses ? Number(maxUses) : null, useCount: 0, revokedAt: null, createdAt: now,
    });
    await store.appendAudit({ at: now, actor: "cli", action: "credential.created", target: name, detail: { kind: "certificate", serial: issued.record.serial } });
    fs.mkdirSync(out, { recursive: true, mode: 0o700 });
    const keyPem = privateKey.export({ type: "sec1", format: "pem" }) as string;
    fs.writeFileSync(files[0]!, issued.pem, { flag: "wx" });
    fs.writeFileSync(files[1]!, keyPem, { flag: "wx", mode: 0o600 });
    fs.writeFileSync(files[2]!, cStringLines(issued.pem), { flag: "wx" });
    fs.writeFileSync(files[3]!, xxd("bootstrap_key", privateKey.export({ type: "sec1", format: "der" }) as Buffer), { flag: "wx", mode: 0o600 });
    fs.writeFileSync(files[4]!, pemEncode("CERTIFICATE", authority.ca.issuer.certificate.der) + pemEncode("CERTIFICATE", authority.ca.root.der), { flag: "wx" });
    const view = { name, scope: flag(inv, "scope") ?? "*", serial: issued.record.serial, notAfter: issued.record.notAfter.toISOString(), maxUses: maxUses ? Number(maxUses) : null, files };
    if (inv.io.json) inv.io.out(JSON.stringify(view));
    else {
      inv.io.out(`bootstrap certificate '${name}' issued (serial ${view.serial}, valid until ${view.notAfter}${view.maxUses ? `, ${view.maxUses} uses` : ""})`);
      for (const f of files) inv.io.out(`  ${f}`);
    }
    return EXIT.ok;
  });
};

const bootstrapList: Command = listCredentialsCommand("certificate", (c) => ({ sha256: c.hash }));

const bootstrapRevoke: Command = (inv) =>
  withAuthority(inv, async (authority, store) => {
    const name = inv.args[0];
    if (!name) throw new UsageError("a NAME argument is needed");
    const c = await store.findCredentialByName("certificate", name);
    if (!c) throw new TesseraError("TESSERA_ERR_NOT_FOUND", { message: "no such bootstrap certificate", detail: name });
    const now = new Date();
    if (!(await store.revokeCredential(c.id, now))) throw new TesseraError("TESSERA_ERR_STORE_CONFLICT", { message: "bootstrap certificate already revoked", detail: name });
    await store.appendAudit({ at: now, actor: "cli", action: "credential.revoked", target: name, detail: { kind: "certificate" } });
    // Revoke the certificate too, so it is on the CRL for anyone else who checks it.
    const cert = (await authority.listCertificates({ status: "valid" })).find((r) => r.fingerprint === c.hash);
    if (cert) await authority.revoke(cert.serial, "cessationOfOperation", "cli");
    if (inv.io.json) inv.io.out(JSON.stringify({ name, revokedAt: now.toISOString(), serial: cert?.serial ?? null }));
    else inv.io.out(`bootstrap certificate '${name}' revoked`);
    return EXIT.ok;
  });

/** Bootstrap-certificate commands for the command table. */
export const bootstrapCommands: Record<string, Command> = {
  "bootstrap issue": bootstrapIssue,
  "bootstrap list": bootstrapList,
  "bootstrap revoke": bootstrapRevoke,
};
