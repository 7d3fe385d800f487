/**
 * CRL reader (RFC 5280 §5): a lean DER walk of a CertificateList into the
 * fields a relying party needs (issuer, times, CRL number, revoked serials
 * with their dates and reasons) plus the signed bytes, so that a CRL with a
 * hundred thousand entries parses without an ASN.1 object tree.
 */
import type * as crypto from "node:crypto";
import { decodeOid, decodeTime, encodeOid, readChildren, readTlv, readWhole, Tag, tlvValue, type Tlv } from "./der.js";
import { ExtOid, verifySignature } from "./certificate.js";
import { CRL_REASONS } from "./crl.js";
import { PkiError } from "./errors.js";
import { toDer } from "./pem.js";

/** One revoked certificate of a parsed CRL. */
export interface ParsedCrlEntry {
  revokedAt: Date;
  /** Reason name as in CRL_REASONS (e.g. "keyCompromise"); "reasonCode(N)" for a code RFC 5280 does not define; absent when the entry has none. */
  reason?: string;
}

/** A parsed CRL; byte fields are views of the input DER. */
export interface ParsedCrl {
  /** The whole DER CertificateList. */
  der: Buffer;
  /** CRL version: 1 (no version field) or 2. */
  version: number;
  /** DER of the issuer Name. */
  issuer: Buffer;
  thisUpdate: Date;
  /** Absent when the CRL has none (RFC 5280 requires it, but v1 CRLs in the wild omit it). */
  nextUpdate?: Date;
  /** cRLNumber extension (RFC 5280 §5.2.3), when present. */
  crlNumber?: bigint;
  /** keyIdentifier of the authorityKeyIdentifier extension, when present. */
  authorityKeyId?: Buffer;
  /** Revoked certificates keyed by serial in canonical lowercase hex (as serialToHex). */
  revoked: Map<string, ParsedCrlEntry>;
  /**
   * OIDs of critical CRL or entry extensions this reader does not process
   * (e.g. deltaCRLIndicator, issuingDistributionPoint, certificateIssuer).
   * RFC 5280 §5.2 says such a CRL must not be used to decide revocation status.
   */
  unhandledCritical: string[];
  /** DER of tbsCertList (what the issuer signed). */
  tbs: Buffer;
  /** Dotted OID of the outer signature algorithm. */
  signatureOid: string;
  /** Signature bytes (BIT STRING content without the unused-bits octet). */
  signature: Buffer;
}

const REASON_NAMES = new Map<number, string>(Object.entries(CRL_REASONS).map(([name, code]) => [code, name]));
// Extensions whose meaning we take into account (or that are harmless when ignored).
const HANDLED_CRL_EXTENSIONS = new Set<string>([ExtOid.crlNumber, ExtOid.authorityKeyIdentifier]);
const HANDLED_ENTRY_EXTENSIONS = new Set<string>([ExtOid.crlReason]);
const INVALIDITY_DATE = "2.5.29.24";

function malformed(detail: string, cause?: unknown): PkiError {
  return new PkiError("TESSERA_ERR_PKI_MALFORMED_DER", "malformed CRL", detail, { cause });
}

interface RawExtension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

function readExtensions(der: Buffer, seq: Tlv): RawExtension[] {
  if (seq.tag !== Tag.SEQUENCE) throw malformed("bad extensions");
  return readChildren(der, seq).map((e) => {
    const parts = readChildren(der, e);
    const oidT = parts[0];
    const val = parts[parts.length - 1];
    if (e.tag !== Tag.SEQUENCE || !oidT || oidT.tag !== Tag.OID || !val || val.tag !== Tag.OCTET_STRING || parts.length > 3) throw malformed("bad extension");
    const critical = parts.length === 3 && parts[1]!.tag === Tag.BOOLEAN && der[parts[1]!.valueStart] !== 0;
    return { oid: decodeOid(tlvValue(der, oidT)), critical, value: der.subarray(val.valueStart, val.end) };
  });
}

function unsignedInteger(buf: Buffer, t: Tlv): bigint {
  if (t.tag !== Tag.INTEGER || t.end === t.valueStart) throw malformed("bad INTEGER");
  return BigInt("0x" + buf.subarray(t.valueStart, t.end).toString("hex"));
}

function reasonOf(value: Buffer): string {
  const t = readWhole(value, Tag.ENUMERATED);
  const code = unsignedInteger(value, { ...t, tag: Tag.INTEGER });
  return REASON_NAMES.get(Number(code)) ?? `reasonCode(${code})`;
}

// Per-entry work dominates large CRLs, so entries are walked with readTlv and
// decoded by hand (no child arrays, regexes or BigInt per entry).

// The usual entry extensions: exactly one non-critical reasonCode, `SEQUENCE { SEQUENCE { OID, OCTET STRING { ENUMERATED } } }`.
const LONE_REASON = Buffer.concat([Buffer.of(Tag.SEQUENCE, 0x0c, Tag.SEQUENCE, 0x0a), encodeOid(ExtOid.crlReason), Buffer.of(Tag.OCTET_STRING, 3, Tag.ENUMERATED, 1)]);

function twoDigits(b: Buffer, at: number): number {
  const hi = b[at]! - 48;
  const lo = b[at + 1]! - 48;
  if (hi < 0 || hi > 9 || lo < 0 || lo > 9) return NaN;
  return hi * 10 + lo;
}

/** decodeTime's fast path for the plain `YYMMDDHHMMSSZ` / `YYYYMMDDHHMMSSZ` forms; anything else goes to decodeTime. */
function entryTime(der: Buffer, t: Tlv): Date {
  const n = t.end - t.valueStart;
  const v = t.valueStart;
  if ((t.tag === Tag.UTC_TIME && n === 13) || (t.tag === Tag.GENERALIZED_TIME && n === 15)) {
    const o = n === 13 ? v : v + 2;
    const yy = twoDigits(der, v);
    const year = n === 13 ? (yy < 50 ? 2000 + yy : 1900 + yy) : yy * 100 + twoDigits(der, v + 2);
    const ms = Date.UTC(year, twoDigits(der, o + 2) - 1, twoDigits(der, o + 4), twoDigits(der, o + 6), twoDigits(der, o + 8), twoDigits(der, o + 10));
    if (der[t.end - 1] === 0x5a && !Number.isNaN(ms)) return new Date(ms);
  }
  return decodeTime(der, t);
}

function serialHexAt(der: Buffer, t: Tlv): string {
  if (t.tag !== Tag.INTEGER || t.end === t.valueStart) throw malformed("bad serial number");
  let i = t.valueStart;
  while (i < t.end - 1 && der[i] === 0) i++;
  const hex = der.toString("hex", i, t.end);
  return hex[0] === "0" ? hex.slice(1) : hex;
}

function readEntries(der: Buffer, list: Tlv, unhandled: Set<string>): Map<string, ParsedCrlEntry> {
  const revoked = new Map<string, ParsedCrlEntry>();
  let pos = list.valueStart;
  while (pos < list.end) {
    const entry = readTlv(der, pos, list.end);
    pos = entry.end;
    if (entry.tag !== Tag.SEQUENCE || entry.valueStart === entry.end) throw malformed("bad revoked certificate entry");
    const serialT = readTlv(der, entry.valueStart, entry.end);
    if (serialT.end === entry.end) throw malformed("revoked certificate entry without a date");
    const dateT = readTlv(der, serialT.end, entry.end);
    const item: ParsedCrlEntry = { revokedAt: entryTime(der, dateT) };
    if (dateT.end < entry.end) {
      const extT = readTlv(der, dateT.end, entry.end);
      if (extT.end !== entry.end) throw malformed("trailing fields in revoked certificate entry");
      if (extT.end - extT.start === LONE_REASON.length + 1 && der.compare(LONE_REASON, 0, LONE_REASON.length, extT.start, extT.end - 1) === 0) {
        item.reason = REASON_NAMES.get(der[extT.end - 1]!) ?? `reasonCode(${der[extT.end - 1]})`;
      } else for (const ext of readExtensions(der, extT)) {
        if (ext.oid === ExtOid.crlReason) item.reason = reasonOf(ext.value);
        else if (ext.critical && !HANDLED_ENTRY_EXTENSIONS.has(ext.oid) && ext.oid !== INVALIDITY_DATE) unhandled.add(ext.oid);
      }
    }
    revoked.set(serialHexAt(der, serialT), item);
  }
  return revoked;
}

/**
 * Parses a CRL (DER, or PEM text/bytes: the first X509 CRL block), v1 or v2,
 * with UTCTime or GeneralizedTime dates. Throws TESSERA_ERR_PKI_MALFORMED_DER
 * (or _PEM) for anything that is not a well-formed CertificateList; the
 * signature is not checked here (see verifyCrlSignature).
 */
export function parseCrl(input: Uint8Array | string): ParsedCrl {
  const der = toDer(input, "X509 CRL");
  try {
    const outer = readWhole(der, Tag.SEQUENCE);
    const [tbsT, algT, sigT, extra] = readChildren(der, outer);
    if (!tbsT || tbsT.tag !== Tag.SEQUENCE || !algT || algT.tag !== Tag.SEQUENCE || !sigT || sigT.tag !== Tag.BIT_STRING || extra) {
      throw malformed("not a CertificateList");
    }
    const f = readChildren(der, tbsT);
    let i = 0;
    let version = 1;
    if (f[0]?.tag === Tag.INTEGER) {
      version = Number(unsignedInteger(der, f[0])) + 1;
      if (version !== 2) throw malformed(`unsupported CRL version ${version}`);
      i = 1;
    }
    const innerAlg = f[i++];
    const issuerT = f[i++];
    const thisT = f[i++];
    if (!innerAlg || innerAlg.tag !== Tag.SEQUENCE || !issuerT || issuerT.tag !== Tag.SEQUENCE || !thisT) throw malformed("bad TBSCertList");
    // RFC 5280 §5.1.1.2: the inner and outer algorithm must be identical, or a signature could be re-labelled.
    if (!der.subarray(innerAlg.start, innerAlg.end).equals(der.subarray(algT.start, algT.end))) throw malformed("signature algorithm mismatch");
    const thisUpdate = decodeTime(der, thisT);
    let nextUpdate: Date | undefined;
    if (f[i]?.tag === Tag.UTC_TIME || f[i]?.tag === Tag.GENERALIZED_TIME) nextUpdate = decodeTime(der, f[i++]!);
    const unhandled = new Set<string>();
    let revoked = new Map<string, ParsedCrlEntry>();
    if (f[i]?.tag === Tag.SEQUENCE) revoked = readEntries(der, f[i++]!, unhandled);
    let crlNumber: bigint | undefined;
    let authorityKeyId: Buffer | undefined;
    if (f[i]?.tag === 0xa0) {
      if (version < 2) throw malformed("extensions in a v1 CRL");
      const [seq] = readChildren(der, f[i++]!);
      if (!seq) throw malformed("empty crlExtensions");
      for (const ext of readExtensions(der, seq)) {
        if (ext.oid === ExtOid.crlNumber) crlNumber = unsignedInteger(ext.value, readWhole(ext.value, Tag.INTEGER));
        else if (ext.oid === ExtOid.authorityKeyIdentifier) {
          const keyId = readChildren(ext.value, readWhole(ext.value, Tag.SEQUENCE)).find((t) => t.tag === 0x80);
          if (keyId) authorityKeyId = Buffer.from(tlvValue(ext.value, keyId));
        } else if (ext.critical && !HANDLED_CRL_EXTENSIONS.has(ext.oid)) unhandled.add(ext.oid);
      }
    }
    if (i !== f.length) throw malformed("unexpected fields in TBSCertList");
    const [algOid] = readChildren(der, algT);
    if (!algOid || algOid.tag !== Tag.OID) throw malformed("bad signature algorithm");
    const sigBits = tlvValue(der, sigT);
    if (sigBits.length < 1 || sigBits[0] !== 0) throw malformed("bad signature BIT STRING");
    return {
      der,
      version,
      issuer: der.subarray(issuerT.start, issuerT.end),
      thisUpdate,
      nextUpdate,
      crlNumber,
      authorityKeyId,
      revoked,
      unhandledCritical: [...unhandled],
      tbs: der.subarray(tbsT.start, tbsT.end),
      signatureOid: decodeOid(tlvValue(der, algOid)),
      signature: Buffer.from(sigBits.subarray(1)),
    };
  } catch (err) {
    if (err instanceof PkiError) throw err.message === "malformed CRL" ? err : malformed(err.detail ?? err.message, err);
    throw malformed(String(err), err);
  }
}

/** Verifies a parsed CRL's signature against its issuer's public key; false on any mismatch (never throws). */
export function verifyCrlSignature(crl: ParsedCrl, issuerKey: crypto.KeyObject): boolean {
  return verifySignature(crl.tbs, crl.signatureOid, crl.signature, issuerKey);
}
