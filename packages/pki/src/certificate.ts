/**
 * X.509 certificates (RFC 5280): a lean DER parser for the fields Tessera
 * reads on hot paths, key identifiers, subjectAltName encoding, and signature
 * checks with node:crypto.
 */
import * as crypto from "node:crypto";
import { decodeOid, decodeTime, readChildren, readWhole, Tag, tlv, tlvValue, type Tlv } from "./der.js";
import { PkiError } from "./errors.js";
import { toDer } from "./pem.js";
import { serialToHex } from "./serial.js";

/** OIDs of the extensions Tessera writes or reads. */
export const ExtOid = {
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  crlNumber: "2.5.29.20",
  crlReason: "2.5.29.21",
  crlDistributionPoints: "2.5.29.31",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
} as const;

/** One extension of a parsed certificate. */
export interface CertExtension {
  oid: string;
  critical: boolean;
  /** Content of extnValue (the DER of the extension value). */
  value: Buffer;
}

/** The fields of a certificate Tessera needs, with byte fields as views of `der`. */
export interface ParsedCertificate {
  der: Buffer;
  /** DER of tbsCertificate (what the issuer signed). */
  tbs: Buffer;
  /** Serial in canonical lowercase hex (no leading zeros). */
  serialHex: string;
  /** Raw serial content bytes (may carry a leading 0x00 pad). */
  serial: Buffer;
  /** DER of the issuer Name. */
  issuer: Buffer;
  /** DER of the subject Name. */
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo. */
  spki: Buffer;
  extensions: CertExtension[];
  /** Dotted OID of the outer signature algorithm. */
  signatureOid: string;
  /** Signature bytes (BIT STRING content without the unused-bits octet). */
  signature: Buffer;
  /** X.509 version number (1 or 3). */
  version: number;
}

function malformed(detail: string, cause?: unknown): PkiError {
  return new PkiError("TESSERA_ERR_PKI_MALFORMED_DER", "malformed certificate", detail, { cause });
}

function extensionsFrom(der: Buffer, t: Tlv | undefined): CertExtension[] {
  if (!t) return [];
  const [seq] = readChildren(der, t);
  if (!seq || seq.tag !== Tag.SEQUENCE) throw malformed("bad extensions");
  return readChildren(der, seq).map((e) => {
    const parts = readChildren(der, e);
    const oidT = parts[0];
    const val = parts[parts.length - 1];
    if (!oidT || oidT.tag !== Tag.OID || !val || val.tag !== Tag.OCTET_STRING) throw malformed("bad extension");
    const critical = parts.length === 3 && parts[1]!.tag === Tag.BOOLEAN && tlvValue(der, parts[1]!)[0] !== 0;
    return { oid: decodeOid(tlvValue(der, oidT)), critical, value: der.subarray(val.valueStart, val.end) };
  });
}

/** Parses a certificate (DER, or PEM text/bytes: the first CERTIFICATE block). */
export function parseCertificate(input: Uint8Array | string): ParsedCertificate {
  const der = toDer(input, "CERTIFICATE");
  try {
    const outer = readWhole(der, Tag.SEQUENCE);
    const [tbsT, algT, sigT] = readChildren(der, outer);
    if (!tbsT || tbsT.tag !== Tag.SEQUENCE || !algT || !sigT || sigT.tag !== Tag.BIT_STRING) throw malformed("not a Certificate");
    const f = readChildren(der, tbsT);
    let i = 0;
    let version = 1;
    if (f[0]?.tag === 0xa0) {
      const [v] = readChildren(der, f[0]);
      version = (tlvValue(der, v!)[0] ?? 0) + 1;
      i = 1;
    }
    const [serialT, , issuerT, validityT, subjectT, spkiT] = f.slice(i, i + 6);
    if (!serialT || serialT.tag !== Tag.INTEGER || !issuerT || !validityT || !subjectT || !spkiT) throw malformed("bad TBSCertificate");
    const [nb, na] = readChildren(der, validityT);
    if (!nb || !na) throw malformed("bad validity");
    const extT = f.slice(i + 6).find((t) => t.tag === 0xa3);
    const [algOid] = readChildren(der, algT);
    const serial = der.subarray(serialT.valueStart, serialT.end);
    const sigBits = tlvValue(der, sigT);
    return {
      der,
      tbs: der.subarray(tbsT.start, tbsT.end),
      serial,
      serialHex: serialToHex(serial),
      issuer: der.subarray(issuerT.start, issuerT.end),
      subject: der.subarray(subjectT.start, subjectT.end),
      notBefore: decodeTime(der, nb),
      notAfter: decodeTime(der, na),
      spki: der.subarray(spkiT.start, spkiT.end),
      extensions: extensionsFrom(der, extT),
      signatureOid: decodeOid(tlvValue(der, algOid!)),
      signature: Buffer.from(sigBits.subarray(1)),
      version,
    };
  } catch (err) {
    if (err instanceof PkiError) throw err.code === "TESSERA_ERR_PKI_MALFORMED_DER" ? malformed(err.detail ?? "", err) : err;
    throw malformed(String(err), err);
  }
}

const HASH_OF_SIG: Record<string, string | null> = {
  "1.2.840.10045.4.3.2": "sha256", "1.2.840.10045.4.3.3": "sha384", "1.2.840.10045.4.3.4": "sha512",
  "1.2.840.113549.1.1.11": "sha256", "1.2.840.113549.1.1.12": "sha384", "1.2.840.113549.1.1.13": "sha512",
  "1.2.840.113549.1.1.5": "sha1", "1.2.840.10045.4.1": "sha1", "1.3.101.112": null,
};

/**
 * Verifies that `signed` (a certificate or CRL's to-be-signed bytes and
 * signature) was signed by `issuerKey`. Returns false on any mismatch.
 */
export function verifySignature(tbs: Uint8Array, signatureOid: string, signature: Uint8Array, issuerKey: crypto.KeyObject): boolean {
  if (!(signatureOid in HASH_OF_SIG)) return false;
  // node:crypto picks the scheme from the key, so check the OID's key type too (an ECDSA
  // signature labelled sha256WithRSAEncryption or Ed25519 must not verify).
  const keyType = signatureOid.startsWith("1.2.840.10045.") ? "ec" : signatureOid.startsWith("1.2.840.113549.") ? "rsa" : "ed25519";
  if (issuerKey.asymmetricKeyType !== keyType) return false;
  try {
    return crypto.verify(HASH_OF_SIG[signatureOid]!, tbs, issuerKey, signature);
  } catch {
    return false;
  }
}

/** Verifies a parsed certificate's signature against an issuer's public key. */
export function verifyCertificateSignature(cert: ParsedCertificate, issuerKey: crypto.KeyObject): boolean {
  return verifySignature(cert.tbs, cert.signatureOid, cert.signature, issuerKey);
}

/** The public key of a parsed certificate. */
export function certificatePublicKey(cert: ParsedCertificate): crypto.KeyObject {
  return crypto.createPublicKey({ key: cert.spki, format: "der", type: "spki" });
}

/**
 * Key identifier by RFC 5280 §4.2.1.2 method (1): SHA-1 of the
 * subjectPublicKey BIT STRING's bits (what OpenSSL and @peculiar/x509 compute).
 */
export function keyIdentifier(spki: Uint8Array): Buffer {
  const seq = readWhole(spki, Tag.SEQUENCE);
  const [, bits] = readChildren(spki, seq);
  if (!bits || bits.tag !== Tag.BIT_STRING) throw malformed("bad SubjectPublicKeyInfo");
  return crypto.createHash("sha1").update(spki.subarray(bits.valueStart + 1, bits.end)).digest();
}

/** SHA-256 fingerprint of DER bytes, lowercase hex (no colons). */
export function sha256Hex(der: Uint8Array): string {
  return crypto.createHash("sha256").update(der).digest("hex");
}

/** Formats hex as colon-separated uppercase pairs, as `openssl x509 -fingerprint` prints. */
export function colonHex(hex: string): string {
  return (hex.toUpperCase().match(/../g) ?? []).join(":");
}

/** One subjectAltName entry. */
export type SubjectAltName =
  | { type: "dns"; value: string }
  | { type: "ip"; value: string }
  | { type: "uri"; value: string }
  | { type: "email"; value: string };

function ipBytes(ip: string): Buffer {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(ip)) {
    const parts = ip.split(".").map(Number);
    if (parts.some((p) => p > 255)) throw new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "bad IP address", ip);
    return Buffer.from(parts);
  }
  // IPv6, including :: compression and an embedded IPv4 tail.
  let text = ip.replace(/^\[|\]$/g, "");
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipBytes(v4[1]!);
    text = text.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) throw new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "bad IP address", ip);
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array(fill).fill("0"), ...tail];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) {
    throw new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "bad IP address", ip);
  }
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** DER GeneralNames for a subjectAltName extension value (RFC 5280 §4.2.1.6). */
export function encodeGeneralNames(names: readonly SubjectAltName[]): Buffer {
  return tlv(
    Tag.SEQUENCE,
    ...names.map((n) => {
      switch (n.type) {
        case "email": return tlv(0x81, Buffer.from(n.value, "latin1"));
        case "dns": return tlv(0x82, Buffer.from(n.value, "latin1"));
        case "uri": return tlv(0x86, Buffer.from(n.value, "latin1"));
        case "ip": return tlv(0x87, ipBytes(n.value));
      }
    }),
  );
}

function formatIp(b: Buffer): string {
  if (b.length === 4) return [...b].join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::").replace(/:{3,}/, "::");
}

/** Decodes DER GeneralNames; entries of other types (directoryName, otherName…) are skipped. */
export function decodeGeneralNames(der: Uint8Array): SubjectAltName[] {
  const buf = Buffer.from(der);
  const seq = readWhole(buf, Tag.SEQUENCE);
  const out: SubjectAltName[] = [];
  for (const n of readChildren(buf, seq)) {
    const v = Buffer.from(tlvValue(buf, n));
    if (n.tag === 0x81) out.push({ type: "email", value: v.toString("latin1") });
    else if (n.tag === 0x82) out.push({ type: "dns", value: v.toString("latin1") });
    else if (n.tag === 0x86) out.push({ type: "uri", value: v.toString("latin1") });
    else if (n.tag === 0x87 && (v.length === 4 || v.length === 16)) out.push({ type: "ip", value: formatIp(v) });
  }
  return out;
}

/** The subjectAltName entries of a parsed certificate (empty if it has none). */
export function certificateSans(cert: ParsedCertificate): SubjectAltName[] {
  const ext = cert.extensions.find((e) => e.oid === ExtOid.subjectAltName);
  return ext ? decodeGeneralNames(ext.value) : [];
}

/** Formats a SAN as OpenSSL prints it (DNS:…, IP Address:…, URI:…, email:…). */
export function formatSan(n: SubjectAltName): string {
  return { dns: "DNS", ip: "IP Address", uri: "URI", email: "email" }[n.type] + ":" + n.value;
}

/** Parses "dns:x", "ip:1.2.3.4", "uri:…", "email:…" (as on the command line). A bare value is a DNS name or an IP. */
export function parseSan(text: string): SubjectAltName {
  const m = /^(dns|ip|uri|email):(.+)$/i.exec(text.trim());
  if (m) return { type: m[1]!.toLowerCase() as SubjectAltName["type"], value: m[2]! };
  return /^[\d.]+$|:/.test(text) ? { type: "ip", value: text.trim() } : { type: "dns", value: text.trim() };
}

/** basicConstraints of a parsed certificate: whether it is a CA and its path length. */
export function basicConstraints(cert: ParsedCertificate): { ca: boolean; pathLen?: number } | undefined {
  const ext = cert.extensions.find((e) => e.oid === ExtOid.basicConstraints);
  if (!ext) return undefined;
  const seq = readWhole(ext.value, Tag.SEQUENCE);
  let ca = false;
  let pathLen: number | undefined;
  for (const c of readChildren(ext.value, seq)) {
    if (c.tag === Tag.BOOLEAN) ca = ext.value[c.valueStart] !== 0;
    if (c.tag === Tag.INTEGER) pathLen = Number(BigInt("0x" + ext.value.subarray(c.valueStart, c.end).toString("hex")));
  }
  return { ca, pathLen };
}

/** extKeyUsage OIDs of a parsed certificate (undefined when it has no such extension). */
export function extendedKeyUsages(cert: ParsedCertificate): string[] | undefined {
  const ext = cert.extensions.find((e) => e.oid === ExtOid.extKeyUsage);
  if (!ext) return undefined;
  const seq = readWhole(ext.value, Tag.SEQUENCE);
  return readChildren(ext.value, seq).map((t) => decodeOid(tlvValue(ext.value, t)));
}

/** subjectKeyIdentifier of a parsed certificate, or undefined. */
export function subjectKeyIdentifier(cert: ParsedCertificate): Buffer | undefined {
  const ext = cert.extensions.find((e) => e.oid === ExtOid.subjectKeyIdentifier);
  if (!ext) return undefined;
  const t = readWhole(ext.value, Tag.OCTET_STRING);
  return Buffer.from(tlvValue(ext.value, t));
}
