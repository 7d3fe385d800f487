/**
 * The server's own TLS certificate, issued by our CA through the authority
 * (profile "server"): DNS SANs for the hostname and localhost, IP SANs 127.0.0.1 and ::1.
 * Stored under <dataDir>/server/ and renewed when it nears expiry, when the
 * hostname changes, or when the issuing CA changed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { buildCsr, certificateSans, exportPrivateKey, formatSan, generateKeyPair, parseCertificate, pemEncode, type ParsedCertificate, type SubjectAltName } from "@tessera/pki";
import type { Authority } from "../authority/authority.js";

/** The server certificate files and their parsed leaf. */
export interface ServerCertificate {
  /** Leaf then issuing CA, PEM. */
  certPem: string;
  keyPem: string;
  leaf: ParsedCertificate;
  renewed: boolean;
}

function paths(dataDir: string) {
  const dir = path.join(dataDir, "server");
  return { dir, cert: path.join(dir, "tls.pem"), key: path.join(dir, "tls.key.pem") };
}

function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

function sanList(hostname: string): SubjectAltName[] {
  // localhost too, so local tools (curl https://localhost…) verify whatever the public name is.
  const names = hostname === "localhost" ? ["localhost"] : [hostname, "localhost"];
  return [...names.map((value) => ({ type: "dns" as const, value })), { type: "ip", value: "127.0.0.1" }, { type: "ip", value: "::1" }];
}

/** Loads the server certificate, issuing a new one if missing, expiring within `renewBeforeSeconds`, or stale. */
export async function ensureServerCertificate(opts: {
  dataDir: string;
  hostname: string;
  authority: Pick<Authority, "issue" | "ca">;
  renewBeforeSeconds: number;
  now: Date;
}): Promise<ServerCertificate> {
  const p = paths(opts.dataDir);
  if (fs.existsSync(p.cert) && fs.existsSync(p.key)) {
    try {
      const certPem = fs.readFileSync(p.cert, "utf8");
      const leaf = parseCertificate(certPem);
      const sans = new Set(certificateSans(leaf).map(formatSan));
      const fresh = leaf.notAfter.getTime() - opts.now.getTime() > opts.renewBeforeSeconds * 1000;
      const sameIssuer = leaf.issuer.equals(opts.authority.ca.issuer.certificate.subject);
      if (fresh && sameIssuer && sanList(opts.hostname).map(formatSan).every((s) => sans.has(s))) {
        return { certPem, keyPem: fs.readFileSync(p.key, "utf8"), leaf, renewed: false };
      }
    } catch {
      // unreadable files: issue a new certificate below
    }
  }
  const { privateKey } = generateKeyPair("ec-p256");
  const csr = buildCsr({ subject: [{ type: "CN", value: opts.hostname }], privateKey });
  const issued = await opts.authority.issue({
    csr,
    profile: "server",
    protocol: "system",
    credential: { kind: "operator", actor: "system" },
    subject: [{ type: "CN", value: opts.hostname }],
    sans: sanList(opts.hostname),
  });
  fs.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  const keyPem = exportPrivateKey(privateKey);
  const certPem = issued.pem + pemEncode("CERTIFICATE", opts.authority.ca.issuer.certificate.der);
  // Key first: a crash between the two writes leaves a cert/key mismatch that the next start repairs.
  writeAtomic(p.key, keyPem);
  writeAtomic(p.cert, certPem);
  return { certPem, keyPem, leaf: parseCertificate(issued.der), renewed: true };
}
