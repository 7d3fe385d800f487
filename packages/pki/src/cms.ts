/**
 * CMS (RFC 5652) certs-only SignedData, the "Simple PKI Response" of RFC 5272
 * §4.1 that EST (RFC 7030 §4.1.3, §4.2.3) returns: no content, no signers.
 */
import "reflect-metadata";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";
import { CertificateChoices, CertificateSet, ContentInfo, EncapsulatedContentInfo, SignedData, CMSVersion, id_data, id_signedData } from "@peculiar/asn1-cms";
import { PkiError } from "./errors.js";

/** Builds a DER certs-only CMS holding `certificates` (DER), in the given order. */
export function buildCertsOnly(certificates: readonly Uint8Array[]): Buffer {
  const signed = new SignedData({
    version: CMSVersion.v1,
    encapContentInfo: new EncapsulatedContentInfo({ eContentType: id_data }),
    certificates: new CertificateSet(
      certificates.map((der) => new CertificateChoices({ certificate: AsnConvert.parse(der, Certificate) })),
    ),
  });
  const info = new ContentInfo({ contentType: id_signedData, content: AsnConvert.serialize(signed) });
  return Buffer.from(AsnConvert.serialize(info));
}

/** Reads the certificates (DER, in order) out of a CMS SignedData, e.g. an EST response. */
export function readCmsCertificates(der: Uint8Array): Buffer[] {
  try {
    const info = AsnConvert.parse(der, ContentInfo);
    if (info.contentType !== id_signedData) throw new Error(`content type ${info.contentType}`);
    const signed = AsnConvert.parse(info.content, SignedData);
    // Array.from: CertificateSet is an Array subclass, and filter/map would keep that species.
    return Array.from(signed.certificates ?? [])
      .filter((c) => c.certificate)
      .map((c) => Buffer.from(AsnConvert.serialize(c.certificate!)));
  } catch (err) {
    throw new PkiError("TESSERA_ERR_PKI_MALFORMED_DER", "malformed CMS", String((err as Error).message), { cause: err });
  }
}
