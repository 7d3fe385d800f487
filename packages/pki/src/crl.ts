/**
 * CRL v2 builder (RFC 5280 §5). Encoded directly in DER so that a list of a
 * million entries builds in well under a second; a test checks that the
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
  entries: Iterable<CrlEntry>;
}

const OID_REASON = encodeOid(ExtOid.crlReason);

function entryDer(e: CrlEntry): Buffer {
  const serial = Buffer.from(e.serialHex.length % 2 ? "0" + e.serialHex : e.serialHex, "hex");
  const parts: Uint8Array[] = [encodeUnsignedInteger(serial), encodeTime(e.revokedAt)];
  // RFC 5280 §5.3.1: the reason code "unspecified" SHOULD be absent.
  if (e.reason && e.reason !== "unspecified") {
    const reason = tlv(Tag.SEQUENCE, OID_REASON, tlv(Tag.OCTET_STRING, tlv(Tag.ENUMERATED, Uint8Array.of(CRL_REASONS[e.reason]))));
    parts.push(tlv(Tag.SEQUENCE, reason));
  }
  return tlv(Tag.SEQUENCE, ...parts);
}

/** Builds and signs a DER CRL v2 with authorityKeyIdentifier and cRLNumber. */
export async function buildCrl(input: CrlInput): Promise<Buffer> {
  const alg = signatureAlgorithmFor(input.privateKey);
  const entries: Buffer[] = [];
  for (const e of input.entries) entries.push(entryDer(e));
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
    // One concatenated part: spreading a huge entries array as arguments overflows the stack (~150k entries).
    ...(entries.length > 0 ? [tlv(Tag.SEQUENCE, Buffer.concat(entries))] : []),
    tlv(0xa0, tlv(Tag.SEQUENCE, aki, crlNumber)),
  );
  const sig = await signAsync(alg, tbs, input.privateKey);
  return tlv(Tag.SEQUENCE, tbs, alg.algorithmIdentifier, tlv(Tag.BIT_STRING, Uint8Array.of(0), sig));
}
