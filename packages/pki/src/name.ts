/**
 * X.501 distinguished names: encode from attribute lists, decode to lists,
 * format as RFC 4514 strings. DER-level so the hot path can read a CN or
 * build a subject without the ASN.1 object model.
 */
import { decodeOid, encodeOid, readChildren, readTlv, readWhole, Tag, tlv, tlvValue } from "./der.js";
import { PkiError } from "./errors.js";

/** One attribute of a name, e.g. { type: "CN", value: "device-1" }. */
export interface NameAttribute {
  /** Short name (C, ST, L, STREET, O, OU, CN, SERIALNUMBER, DC, UID, E) or a dotted OID. */
  type: string;
  value: string;
}

const SHORT_TO_OID: Record<string, string> = {
  C: "2.5.4.6", ST: "2.5.4.8", L: "2.5.4.7", STREET: "2.5.4.9", O: "2.5.4.10", OU: "2.5.4.11",
  CN: "2.5.4.3", SERIALNUMBER: "2.5.4.5", POSTALCODE: "2.5.4.17", DC: "0.9.2342.19200300.100.1.25",
  UID: "0.9.2342.19200300.100.1.1", E: "1.2.840.113549.1.9.1", TITLE: "2.5.4.12", GN: "2.5.4.42", SN: "2.5.4.4",
};
const OID_TO_SHORT: Record<string, string> = Object.fromEntries(Object.entries(SHORT_TO_OID).map(([k, v]) => [v, k]));

/** Dotted OID of a short attribute name (or the OID itself). */
export function attributeOid(type: string): string {
  const oid = SHORT_TO_OID[type.toUpperCase()] ?? (/^\d+(\.\d+)+$/.test(type) ? type : undefined);
  if (!oid) throw new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "unknown name attribute", type);
  return oid;
}

/** Short name of an attribute OID, or the dotted OID if it has none. */
export function attributeShortName(oid: string): string {
  return OID_TO_SHORT[oid] ?? oid;
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/**
 * Encodes a name, one attribute per RDN in the given order. Values use
 * PrintableString where they fit (as Go and OpenSSL do), else UTF8String;
 * country codes and emails use the types RFC 5280 requires.
 */
export function encodeName(attrs: readonly NameAttribute[]): Buffer {
  const rdns = attrs.map((a) => {
    const oid = attributeOid(a.type);
    let tag: number = PRINTABLE.test(a.value) ? Tag.PRINTABLE_STRING : Tag.UTF8_STRING;
    if (oid === "1.2.840.113549.1.9.1" || oid === "0.9.2342.19200300.100.1.25") tag = Tag.IA5_STRING;
    return tlv(Tag.SET, tlv(Tag.SEQUENCE, encodeOid(oid), tlv(tag, Buffer.from(a.value, "utf8"))));
  });
  return tlv(Tag.SEQUENCE, ...rdns);
}

/** Decodes a DER Name into its attributes, in order (multi-valued RDNs are flattened). */
export function decodeName(der: Uint8Array): NameAttribute[] {
  const seq = readWhole(der, Tag.SEQUENCE);
  const out: NameAttribute[] = [];
  for (const rdn of readChildren(der, seq)) {
    if (rdn.tag !== Tag.SET) throw new PkiError("TESSERA_ERR_PKI_MALFORMED_DER", "malformed DER", "RDN is not a SET");
    for (const atv of readChildren(der, rdn)) {
      const [t, v] = readChildren(der, atv);
      if (!t || !v || t.tag !== Tag.OID) throw new PkiError("TESSERA_ERR_PKI_MALFORMED_DER", "malformed DER", "bad AttributeTypeAndValue");
      const raw = tlvValue(der, v);
      // BMPString (0x1e) is UTF-16BE; everything else X.509 uses is a byte string read as UTF-8.
      const value = v.tag === 0x1e ? Buffer.from(raw).swap16().toString("utf16le") : Buffer.from(raw).toString("utf8");
      out.push({ type: attributeShortName(decodeOid(tlvValue(der, t))), value });
    }
  }
  return out;
}

/** The value of the first attribute of `type` in a DER name (e.g. the first CN), or undefined. */
export function nameAttribute(der: Uint8Array, type: string): string | undefined {
  const short = attributeShortName(attributeOid(type));
  return decodeName(der).find((a) => a.type === short)?.value;
}

/** Formats a DER name as an RFC 4514 string (most significant RDN last, as OpenSSL's -nameopt RFC2253). */
export function formatName(der: Uint8Array): string {
  return decodeName(der)
    .reverse()
    .map((a) => `${a.type}=${a.value.replace(/([,+"\\<>;])/g, "\\$1").replace(/^([ #])/, "\\$1").replace(/ $/, "\\ ")}`)
    .join(",");
}

/** Parses "CN=x, O=y" or "/O=y/CN=x" (OpenSSL -subj form) into attributes in written order. */
export function parseNameString(text: string): NameAttribute[] {
  // Separators and trailing spaces count only when not escaped (preceded by an even number of
  // backslashes), so formatName output such as `CN=x\ ` or `O=a\\` reads back.
  const trim = (t: string) => t.replace(/^\s+/, "").replace(/(?<=(?:^|[^\\])(?:\\\\)*)\s+$/, "");
  const s = trim(text);
  const parts = s.startsWith("/") ? s.slice(1).split(/(?<=(?:^|[^\\])(?:\\\\)*)\//) : s.split(/(?<=(?:^|[^\\])(?:\\\\)*),/);
  return parts
    .map((p) => trim(p))
    .filter((p) => p.length > 0)
    .map((p) => {
      const eq = p.indexOf("=");
      if (eq <= 0) throw new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "bad distinguished name", text);
      const type = p.slice(0, eq).trim();
      attributeOid(type);
      return { type: type.toUpperCase() in SHORT_TO_OID ? type.toUpperCase() : type, value: trim(p.slice(eq + 1)).replace(/\\(.)/g, "$1") };
    });
}

/** True if the DER name is the empty SEQUENCE. */
export function isEmptyName(der: Uint8Array): boolean {
  const t = readTlv(der, 0);
  return t.valueStart === t.end;
}
