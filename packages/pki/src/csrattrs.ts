/**
 * EST CSR attributes (RFC 7030 §4.5.2, ASN.1 as corrected by RFC 8951 §4):
 * `CsrAttrs ::= SEQUENCE OF AttrOrOID`, `AttrOrOID ::= CHOICE { oid OBJECT
 * IDENTIFIER, attribute Attribute }`. The server tells clients what to put in
 * their CSR: an OID alone (e.g. challengePassword, a signature algorithm) or
 * an attribute with values (e.g. id-ecPublicKey with the curve).
 */
import { decodeOid, encodeOid, readChildren, readWhole, Tag, tlv, tlvBytes, tlvValue } from "./der.js";
import { PkiError } from "./errors.js";

/** One CsrAttrs entry: an OID, or an attribute whose values are DER (often OIDs: see oidValue). */
export type CsrAttr = { oid: string } | { type: string; values: Buffer[] };

/** OIDs used in CSR attributes. */
export const CsrAttrOid = {
  challengePassword: "1.2.840.113549.1.9.7",
  extensionRequest: "1.2.840.113549.1.9.14",
  ecPublicKey: "1.2.840.10045.2.1",
} as const;

/** The DER of an OBJECT IDENTIFIER, for attribute values. */
export function oidValue(oid: string): Buffer {
  return encodeOid(oid);
}

/** Encodes a CsrAttrs SEQUENCE (DER). An empty list is a valid, empty SEQUENCE. */
export function encodeCsrAttrs(attrs: readonly CsrAttr[]): Buffer {
  return tlv(
    Tag.SEQUENCE,
    ...attrs.map((a) => {
      if ("oid" in a) return encodeOid(a.oid);
      if (a.values.length === 0) throw new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "attribute needs a value", a.type);
      return tlv(Tag.SEQUENCE, encodeOid(a.type), tlv(Tag.SET, ...a.values));
    }),
  );
}

/** Decodes CsrAttrs DER. Throws TESSERA_ERR_PKI_MALFORMED_DER. */
export function decodeCsrAttrs(der: Uint8Array): CsrAttr[] {
  const buf = Buffer.from(der);
  try {
    const seq = readWhole(buf, Tag.SEQUENCE);
    return readChildren(buf, seq).map((item) => {
      if (item.tag === Tag.OID) return { oid: decodeOid(tlvValue(buf, item)) };
      if (item.tag !== Tag.SEQUENCE) throw new Error(`unexpected tag 0x${item.tag.toString(16)}`);
      const [typeT, setT] = readChildren(buf, item);
      if (!typeT || typeT.tag !== Tag.OID || !setT || setT.tag !== Tag.SET) throw new Error("bad Attribute");
      return { type: decodeOid(tlvValue(buf, typeT)), values: readChildren(buf, setT).map((v) => Buffer.from(tlvBytes(buf, v))) };
    });
  } catch (err) {
    throw new PkiError("TESSERA_ERR_PKI_MALFORMED_DER", "malformed CSR attributes", String((err as Error).message), { cause: err });
  }
}
