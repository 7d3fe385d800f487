/**
 * Factory bootstrap certificates for liteboot devices: `tessera bootstrap
 * issue|list|revoke`. A bootstrap certificate carries liteboot's OU marker
 * (spec §1, §4.4) and is a "certificate" credential (found by the
 * certificate's SHA-256) with a name, scope, expiry and use count: each
 * device certificate issued over it uses it once.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { pemEncode } from "@tessera/pki";
import { EXIT, UsageError } from "./output.js";
import { durationFlag, flag, listCredentialsCommand, positiveIntFlag, revokeCredentialCommand, withCredentials } from "./commands-cert.js";
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
  const maxUses = positiveIntFlag(inv, "max-uses");
  const expiresInSeconds = durationFlag(inv, "expires");
  const files = ["BOOTSTRAP.crt", "BOOTSTRAP.key", "bootstrap_crt.txt", "bootstrap_key.txt", "CA.crt"].map((f) => path.join(out, f));
  const existing = files.find((f) => fs.existsSync(f));
  if (existing) throw new UsageError(`${existing} exists: choose an empty --out directory`);
  return withCredentials(inv, async (credentials, authority) => {
    const { issued, privateKey } = await credentials.issueBootstrapCertificate({ name, scope: flag(inv, "scope"), expiresInSeconds, maxUses }, "cli");
    fs.mkdirSync(out, { recursive: true, mode: 0o700 });
    const keyPem = privateKey.export({ type: "sec1", format: "pem" }) as string;
    fs.writeFileSync(files[0]!, issued.pem, { flag: "wx" });
    fs.writeFileSync(files[1]!, keyPem, { flag: "wx", mode: 0o600 });
    fs.writeFileSync(files[2]!, cStringLines(issued.pem), { flag: "wx" });
    fs.writeFileSync(files[3]!, xxd("bootstrap_key", privateKey.export({ type: "sec1", format: "der" }) as Buffer), { flag: "wx", mode: 0o600 });
    fs.writeFileSync(files[4]!, pemEncode("CERTIFICATE", authority.ca.issuer.certificate.der) + pemEncode("CERTIFICATE", authority.ca.root.der), { flag: "wx" });
    const view = { name, scope: flag(inv, "scope") ?? "*", serial: issued.record.serial, notAfter: issued.record.notAfter.toISOString(), maxUses: maxUses ?? null, files };
    if (inv.io.json) inv.io.out(JSON.stringify(view));
    else {
      inv.io.out(`bootstrap certificate '${name}' issued (serial ${view.serial}, valid until ${view.notAfter}${view.maxUses ? `, ${view.maxUses} uses` : ""})`);
      for (const f of files) inv.io.out(`  ${f}`);
    }
    return EXIT.ok;
  });
};

const bootstrapList: Command = listCredentialsCommand("certificate", (c) => ({ sha256: c.hash }));

const bootstrapRevoke: Command = revokeCredentialCommand("certificate");

/** Bootstrap-certificate commands for the command table. */
export const bootstrapCommands: Record<string, Command> = {
  "bootstrap issue": bootstrapIssue,
  "bootstrap list": bootstrapList,
  "bootstrap revoke": bootstrapRevoke,
};
