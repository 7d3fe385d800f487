/**
 * CRL v2 builder (RFC 5280 §5). Encoded directly in DER, the entries into one
 * buffer, so that a list of a million entries builds in well under a second; a test checks that the
 * library (@peculiar/x509) reads it back and that OpenSSL verifies it.
 */
import type * as crypto from "node:crypto";
import { encodeOid, encodeSmallInteger, encodeTime, encodeUnsignedInteger, Tag, tlv } from "./der.js";
import { ExtOid } from "./certificate.js";
import { PkiError } from "./errors.js";
import { signAsync, signatureAlgorithmFor } from "./keys.js";

/** CRL reason codes (RFC 5280 §5.3.1). 7 is unused by the standard. */
export const CRL_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

/** A CRL reason name. */
export type CrlReason = keyof typeof CRL_REASONS;

/** Parses a reason name (case-insensitive, also kebab/snake case) or code. */
export function parseCrlReason(text: string): CrlReason {
  const norm = text.trim().toLowerCase().replace(/[-_ ]/g, "");
  for (const [name, code] of Object.entries(CRL_REASONS)) {
    if (name.toLowerCase() === norm || String(code) === norm) return name as CrlReason;
  }
  throw new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "unknown revocation reason", text);
}

/** One revoked certificate. */
export interface CrlEntry {
  /** Serial as lowercase hex. */
  serialHex: string;
  revokedAt: Date;
  reason?: CrlReason;
}

/** Inputs of a CRL; times are parameters so tests and replicas agree. */
export interface CrlInput {
  /** DER subject of the issuing CA (becomes the CRL issuer). */
  issuer: Uint8Array;
  /** The issuing CA's subjectKeyIdentifier (for authorityKeyIdentifier). */
  issuerKeyId: Uint8Array;
  /** The CA's private key. */
  privateKey: crypto.KeyObject;
  thisUpdate: Date;
  nextUpdate: Date;
  /** Monotonic CRL number (RFC 5280 §5.2.3). */
  crlNumber: bigint;
  /** The entries, or a CrlEntryList already filled with them. */
  entries: Iterable<CrlEntry> | CrlEntryList;
}

const OID_REASON = encodeOid(ExtOid.crlReason);

/** An entry's crlEntryExtensions (the reason code), built once per reason text. */
const reasonExtensions = new Map<string, Buffer>();
function reasonExtension(reason: CrlReason): Buffer {
  let ext = reasonExtensions.get(reason);
  if (!ext) {
    const r = tlv(Tag.SEQUENCE, OID_REASON, tlv(Tag.OCTET_STRING, tlv(Tag.ENUMERATED, Uint8Array.of(CRL_REASONS[reason]))));
    ext = tlv(Tag.SEQUENCE, r);
    reasonExtensions.set(reason, ext);
  }
  return ext;
}

/** UTC calendar fields of a time value, reused (one at a time); year NaN for an invalid date. */
const fields = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
const DAY_MS = 86_400_000;

/**
 * Date.getUTC* by arithmetic (H. Hinnant's days-to-civil): six Date method
 * calls per entry cost more than the rest of the entry's encoding.
 */
function civil(ms: number): typeof fields {
  if (!Number.isFinite(ms)) {
    fields.year = NaN;
    return fields;
  }
  const days = Math.floor(ms / DAY_MS);
  const inDay = ms - days * DAY_MS;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  fields.day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  fields.month = mp < 10 ? mp + 3 : mp - 9;
  fields.year = yoe + era * 400 + (fields.month <= 2 ? 1 : 0);
  const secs = Math.floor(inDay / 1000);
  fields.hour = Math.floor(secs / 3600);
  fields.minute = Math.floor(secs / 60) % 60;
  fields.second = secs % 60;
  return fields;
}

const lengthSize = (n: number) => (n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 5);

/**
 * The revokedCertificates entries, written straight into one growing buffer:
 * a million entries would otherwise make several million small Buffers
 * (tlv per field), and the garbage collector would cost more than the
 * encoding. Byte for byte what composing encodeUnsignedInteger, encodeTime
 * and tlv gives (crl.test.ts checks it against that composition).
 *
 * Exported so that a caller reading entries a page at a time (a store) can
 * encode each page as it arrives and drop it, then hand the list to
 * buildCrl: no array of every entry is ever held.
 */
export class CrlEntryList {
  count = 0;
  private out: Buffer;
  private pos = 0;
  private serial = Buffer.allocUnsafe(32);

  constructor(expected = 1024) {
    this.out = Buffer.allocUnsafe(Math.max(1024, expected * 48));
  }

  /** The DER of the entries so far, back to back (a view, not a copy). */
  get bytes(): Buffer {
    return this.out.subarray(0, this.pos);
  }

  /** Appends one entry (entries keep the order they are added in). */
  add(e: CrlEntry): void {
    // The serial's magnitude: hex → bytes (as Buffer.from(hex, "hex")), leading zeros stripped, 0x00 pad for a high bit.
    const hex = e.serialHex.length % 2 ? "0" + e.serialHex : e.serialHex;
    if (this.serial.length < hex.length / 2) this.serial = Buffer.allocUnsafe(hex.length);
    const n = this.serial.write(hex, 0, "hex");
    let skip = 0;
    while (skip < n - 1 && this.serial[skip] === 0) skip++;
    const pad = n === 0 || this.serial[skip]! & 0x80 ? 1 : 0;
    const intLen = n === 0 ? 1 : n - skip + pad;
    // RFC 5280 time: UTCTime through 2049, GeneralizedTime from 2050; anything encodeTime treats specially goes through it.
    const t = civil(e.revokedAt.getTime());
    const year = t.year;
    const utc = year >= 1950 && year < 2050;
    const other = utc || (year >= 0 && year <= 9999) ? undefined : encodeTime(e.revokedAt);
    const timeLen = other ? other.length : utc ? 15 : 17;
    const ext = e.reason && e.reason !== "unspecified" ? reasonExtension(e.reason) : undefined;
    const body = 1 + lengthSize(intLen) + intLen + timeLen + (ext ? ext.length : 0);
    this.reserve(1 + lengthSize(body) + body);
    const out = this.out;
    out[this.pos++] = Tag.SEQUENCE;
    this.length(body);
    out[this.pos++] = Tag.INTEGER;
    this.length(intLen);
    if (n === 0) out[this.pos++] = 0;
    else {
      if (pad) out[this.pos++] = 0;
      this.pos += this.serial.copy(out, this.pos, skip, n);
    }
    if (other) this.pos += other.copy(out, this.pos);
    else {
      out[this.pos++] = utc ? Tag.UTC_TIME : Tag.GENERALIZED_TIME;
      out[this.pos++] = utc ? 13 : 15;
      if (!utc) this.two(Math.floor(year / 100));
      this.two(year % 100);
      this.two(t.month);
      this.two(t.day);
      this.two(t.hour);
      this.two(t.minute);
      this.two(t.second);
      out[this.pos++] = 0x5a; // "Z"
    }
    if (ext) this.pos += ext.copy(out, this.pos);
    this.count++;
  }

  private two(v: number): void {
    this.out[this.pos++] = 0x30 + Math.floor(v / 10);
    this.out[this.pos++] = 0x30 + (v % 10);
  }

  private length(n: number): void {
    const size = lengthSize(n);
    if (size === 1) this.out[this.pos++] = n;
    else {
      this.out[this.pos++] = 0x80 | (size - 1);
      for (let i = size - 2; i >= 0; i--) this.out[this.pos++] = Math.floor(n / 2 ** (8 * i)) & 0xff;
    }
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.pos + n));
    this.out.copy(bigger, 0, 0, this.pos);
    this.out = bigger;
  }
}

/** Builds and signs a DER CRL v2 with authorityKeyIdentifier and cRLNumber. */
export async function buildCrl(input: CrlInput): Promise<Buffer> {
  const alg = signatureAlgorithmFor(input.privateKey);
  let entries: CrlEntryList;
  if (input.entries instanceof CrlEntryList) entries = input.entries;
  else {
    entries = new CrlEntryList(Array.isArray(input.entries) ? input.entries.length : 1024);
    for (const e of input.entries) entries.add(e);
  }
  let number = input.crlNumber.toString(16);
  if (number.length % 2) number = "0" + number;
  const aki = tlv(Tag.SEQUENCE, encodeOid(ExtOid.authorityKeyIdentifier), tlv(Tag.OCTET_STRING, tlv(Tag.SEQUENCE, tlv(0x80, input.issuerKeyId))));
  const crlNumber = tlv(Tag.SEQUENCE, encodeOid(ExtOid.crlNumber), tlv(Tag.OCTET_STRING, encodeUnsignedInteger(Buffer.from(number, "hex"))));
  const tbs = tlv(
    Tag.SEQUENCE,
    encodeSmallInteger(1),
    alg.algorithmIdentifier,
    input.issuer,
    encodeTime(input.thisUpdate),
    encodeTime(input.nextUpdate),
    ...(entries.count > 0 ? [tlv(Tag.SEQUENCE, entries.bytes)] : []),
    tlv(0xa0, tlv(Tag.SEQUENCE, aki, crlNumber)),
  );
  const sig = await signAsync(alg, tbs, input.privateKey);
  return tlv(Tag.SEQUENCE, tbs, alg.algorithmIdentifier, tlv(Tag.BIT_STRING, Uint8Array.of(0), sig));
}
