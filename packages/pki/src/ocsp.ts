/**
 * OCSP responder side (RFC 6960): reading an OCSPRequest, matching its
 * CertIDs against an issuing CA, and building a signed BasicOCSPResponse in
 * DER with node:crypto (the hot path: no ASN.1 object tree), plus the
 * delegated OCSP-signing certificate (§4.2.2.2), which is rare and made with
 * @peculiar/x509's generator. The client side (building requests, reading
 * responses) is in ocsp-client.ts.
 */
import "reflect-metadata";
import * as crypto from "node:crypto";
import * as x509 from "@peculiar/x509";
import { decodeOid, encodeOid, readChildren, readWhole, Tag, tlv, tlvBytes, tlvValue, toArrayBuffer, type Tlv } from "./der.js";
import { PkiError } from "./errors.js";
import { extendedKeyUsages, keyIdentifier, parseCertificate, type ParsedCertificate } from "./certificate.js";
import { CRL_REASONS, type CrlReason } from "./crl.js";
import { signAsync, signatureAlgorithmFor, spkiDer } from "./keys.js";
import { serialToHex, generateSerial } from "./serial.js";
import { encodeName, type NameAttribute } from "./name.js";
import { issuerSkiOf, libraryExtensions, librarySigningAlgorithm, type Issuer } from "./template.js";
import { webCryptoPrivateKey } from "./webcrypto.js";

/** OIDs of OCSP (RFC 6960 §4.4, Appendix B). */
export const OcspOid = {
  /** id-pkix-ocsp-basic: the response type of a BasicOCSPResponse. */
  basic: "1.3.6.1.5.5.7.48.1.1",
  /** id-pkix-ocsp-nonce (§4.4.1). */
  nonce: "1.3.6.1.5.5.7.48.1.2",
  /** id-pkix-ocsp-nocheck (§4.2.2.2.1): relying parties need not check the signer certificate's status. */
  noCheck: "1.3.6.1.5.5.7.48.1.5",
  /** id-kp-OCSPSigning extended key usage. */
  ocspSigning: "1.3.6.1.5.5.7.3.9",
} as const;

/** OCSPResponseStatus (RFC 6960 §4.2.1); 4 is not used. */
export const OCSP_RESPONSE_STATUS = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;

/** An OCSPResponseStatus name. */
export type OcspResponseStatus = keyof typeof OCSP_RESPONSE_STATUS;

/** Hash algorithms accepted in a CertID (SHA-1 is what most clients send; RFC 5019bis recommends SHA-256). */
export type OcspHash = "sha1" | "sha256" | "sha384" | "sha512";

/** Dotted OIDs of the CertID hash algorithms. */
export const OCSP_HASH_OIDS: Record<OcspHash, string> = {
  sha1: "1.3.14.3.2.26",
  sha256: "2.16.840.1.101.3.4.2.1",
  sha384: "2.16.840.1.101.3.4.2.2",
  sha512: "2.16.840.1.101.3.4.2.3",
};
const HASH_BY_OID = new Map<string, OcspHash>(Object.entries(OCSP_HASH_OIDS).map(([name, oid]) => [oid, name as OcspHash]));

/** One CertID of a request (RFC 6960 §4.1.1). */
export interface OcspCertId {
  /** The hash algorithm, or undefined for one this module does not know (such a CertID matches no issuer). */
  hash: OcspHash | undefined;
  /** Dotted OID of the hash algorithm. */
  hashOid: string;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** Serial in canonical lowercase hex (as serialToHex); prefixed with "-" when the INTEGER is negative (never ours). */
  serialHex: string;
  /** The CertID's DER, echoed verbatim in the response (§4.2.1 wants the request's CertID back). */
  der: Buffer;
}

/** A parsed OCSPRequest. */
export interface OcspRequest {
  certIds: OcspCertId[];
  /**
   * The nonce extension's extnValue, to echo byte for byte (§4.4.1), when it
   * is 1 to 32 octets (RFC 8954 §2.1); undefined without a nonce or with one
   * outside those bounds (RFC 8954 lets a responder then answer without it).
   */
  nonce?: Buffer;
  /** True when the request carried a nonce this module chose not to echo (RFC 8954 bounds). */
  nonceIgnored: boolean;
  /** True when the request is signed (§4.1.2); the signature is not checked: this responder does not require one. */
  signed: boolean;
}

function malformed(detail: string, cause?: unknown): PkiError {
  return new PkiError("TESSERA_ERR_PKI_MALFORMED_DER", "malformed OCSP request", detail, { cause });
}

interface RawExtension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

function readExtensions(der: Buffer, seq: Tlv | undefined): RawExtension[] {
  if (!seq || seq.tag !== Tag.SEQUENCE) throw malformed("bad extensions");
  return readChildren(der, seq).map((e) => {
    const parts = readChildren(der, e);
    const oidT = parts[0];
    const val = parts[parts.length - 1];
    if (e.tag !== Tag.SEQUENCE || !oidT || oidT.tag !== Tag.OID || !val || val.tag !== Tag.OCTET_STRING || parts.length > 3) throw malformed("bad extension");
    const critical = parts.length === 3 && parts[1]!.tag === Tag.BOOLEAN && der[parts[1]!.valueStart] !== 0;
    return { oid: decodeOid(tlvValue(der, oidT)), critical, value: Buffer.from(tlvValue(der, val)) };
  });
}

/** Decodes one DER CertID (RFC 6960 §4.1.1). Throws TESSERA_ERR_PKI_MALFORMED_DER. */
export function decodeOcspCertId(input: Uint8Array): OcspCertId {
  const der = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  return readCertId(der, readWhole(der, Tag.SEQUENCE));
}

function readCertId(der: Buffer, t: Tlv): OcspCertId {
  const [algT, nameT, keyT, serialT, extra] = t.tag === Tag.SEQUENCE ? readChildren(der, t) : [];
  if (!algT || algT.tag !== Tag.SEQUENCE || nameT?.tag !== Tag.OCTET_STRING || keyT?.tag !== Tag.OCTET_STRING || serialT?.tag !== Tag.INTEGER || extra) {
    throw malformed("bad CertID");
  }
  const [oidT] = readChildren(der, algT);
  if (!oidT || oidT.tag !== Tag.OID) throw malformed("bad CertID hash algorithm");
  const hashOid = decodeOid(tlvValue(der, oidT));
  const serial = tlvValue(der, serialT);
  if (serial.length === 0) throw malformed("empty serial number");
  const serialHex = serial[0]! & 0x80 ? "-" + Buffer.from(serial).toString("hex") : serialToHex(serial);
  return {
    hash: HASH_BY_OID.get(hashOid),
    hashOid,
    issuerNameHash: Buffer.from(tlvValue(der, nameT)),
    issuerKeyHash: Buffer.from(tlvValue(der, keyT)),
    serialHex,
    der: Buffer.from(tlvBytes(der, t)),
  };
}

/** The nonce to echo, per RFC 8954 §2.1 (1 to 32 octets); undefined to leave it out. */
function acceptableNonce(value: Buffer): Buffer | undefined {
  try {
    const inner = readWhole(value, Tag.OCTET_STRING);
    const n = inner.end - inner.valueStart;
    return n >= 1 && n <= 32 ? value : undefined;
  } catch {
    // Pre-RFC 6960 clients put the raw bytes in extnValue without the inner OCTET STRING.
    return value.length >= 1 && value.length <= 32 ? value : undefined;
  }
}

/**
 * Parses a DER OCSPRequest (RFC 6960 §4.1.1). Throws
 * TESSERA_ERR_PKI_MALFORMED_DER for anything that is not one, for an empty
 * requestList, a version other than v1, or a critical extension it does not
 * understand (§4.4: only non-critical unknown extensions may be ignored);
 * the responder answers those with malformedRequest.
 */
export function parseOcspRequest(input: Uint8Array): OcspRequest {
  const der = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  try {
    const outer = readWhole(der, Tag.SEQUENCE);
    const [tbsT, sigT, extra] = readChildren(der, outer);
    if (!tbsT || tbsT.tag !== Tag.SEQUENCE || (sigT && sigT.tag !== 0xa0) || extra) throw malformed("not an OCSPRequest");
    const f = readChildren(der, tbsT);
    let i = 0;
    if (f[i]?.tag === 0xa0) {
      const [v] = readChildren(der, f[i++]!);
      if (!v || v.tag !== Tag.INTEGER || v.end - v.valueStart !== 1 || der[v.valueStart] !== 0) throw malformed("unsupported OCSP request version");
    }
    if (f[i]?.tag === 0xa1) i++; // requestorName: informative only
    const listT = f[i++];
    if (!listT || listT.tag !== Tag.SEQUENCE) throw malformed("missing requestList");
    const certIds: OcspCertId[] = [];
    for (const reqT of readChildren(der, listT)) {
      const [certT, extT, more] = reqT.tag === Tag.SEQUENCE ? readChildren(der, reqT) : [];
      if (!certT || (extT && extT.tag !== 0xa0) || more) throw malformed("bad Request");
      if (extT) {
        for (const e of readExtensions(der, readChildren(der, extT)[0])) if (e.critical) throw malformed(`critical singleRequestExtension ${e.oid}`);
      }
      certIds.push(readCertId(der, certT));
    }
    if (certIds.length === 0) throw malformed("empty requestList");
    let nonce: Buffer | undefined;
    let nonceIgnored = false;
    if (f[i]?.tag === 0xa2) {
      for (const e of readExtensions(der, readChildren(der, f[i++]!)[0])) {
        if (e.oid === OcspOid.nonce) {
          nonce = acceptableNonce(e.value);
          nonceIgnored = nonce === undefined;
        } else if (e.critical) throw malformed(`critical requestExtension ${e.oid}`);
      }
    }
    if (i !== f.length) throw malformed("unexpected fields in TBSRequest");
    return { certIds, nonce, nonceIgnored, signed: sigT !== undefined };
  } catch (err) {
    if (err instanceof PkiError) throw err.message === "malformed OCSP request" ? err : malformed(err.detail ?? err.message, err);
    throw malformed(String(err), err);
  }
}

/**
 * Decodes the path segment of an OCSP GET request (RFC 6960 Appendix A.1:
 * `{url}/{url-encoding of base64 encoding of the DER OCSPRequest}`), i.e.
 * everything after `/ocsp/`. Accepts percent-encoded or bare `+ / =`, and
 * the base64url alphabet, which some clients send. Throws
 * TESSERA_ERR_PKI_MALFORMED_DER.
 */
export function decodeOcspGetPath(segment: string): Buffer {
  let text: string;
  try {
    text = decodeURIComponent(segment);
  } catch (err) {
    throw malformed("bad percent-encoding", err);
  }
  text = text.replace(/[\r\n\t ]+/g, "").replace(/-/g, "+").replace(/_/g, "/");
  if (text.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 === 1) throw malformed("not base64");
  return Buffer.from(text, "base64");
}

/** The bits of a SubjectPublicKeyInfo's subjectPublicKey (what issuerKeyHash hashes, §4.1.1). */
function publicKeyBits(spki: Uint8Array): Uint8Array {
  const seq = readWhole(spki, Tag.SEQUENCE);
  const [, bits] = readChildren(spki, seq);
  if (!bits || bits.tag !== Tag.BIT_STRING) throw new PkiError("TESSERA_ERR_PKI_MALFORMED_DER", "malformed certificate", "bad SubjectPublicKeyInfo");
  return spki.subarray(bits.valueStart + 1, bits.end);
}

/** issuerNameHash and issuerKeyHash of a CA certificate for one hash algorithm (RFC 6960 §4.1.1). */
export function ocspIssuerHashes(issuer: ParsedCertificate, hash: OcspHash): { nameHash: Buffer; keyHash: Buffer } {
  return {
    nameHash: crypto.createHash(hash).update(issuer.subject).digest(),
    keyHash: crypto.createHash(hash).update(publicKeyBits(issuer.spki)).digest(),
  };
}

/**
 * A predicate that tells whether a CertID names `issuer` (both hashes equal
 * under the CertID's algorithm). Hashes are computed once per algorithm.
 */
export function ocspIssuerMatcher(issuer: ParsedCertificate): (certId: OcspCertId) => boolean {
  const table = new Map<OcspHash, { nameHash: Buffer; keyHash: Buffer }>();
  for (const h of Object.keys(OCSP_HASH_OIDS) as OcspHash[]) table.set(h, ocspIssuerHashes(issuer, h));
  return (certId) => {
    const h = certId.hash && table.get(certId.hash);
    return !!h && h.nameHash.equals(certId.issuerNameHash) && h.keyHash.equals(certId.issuerKeyHash);
  };
}

/** The status of one certificate (RFC 6960 §2.2). */
export type OcspCertStatus =
  | { status: "good" }
  /** `reason` omitted or "unspecified" leaves revocationReason out (as in the CRL, RFC 5280 §5.3.1). */
  | { status: "revoked"; revokedAt: Date; reason?: CrlReason }
  | { status: "unknown" };

/** One SingleResponse (RFC 6960 §4.2.1). */
export interface OcspSingleResponseInput {
  /** The request's CertID (its DER is echoed), or a CertID's DER. */
  certId: OcspCertId | Uint8Array;
  status: OcspCertStatus;
  /** When the status was known to be correct. */
  thisUpdate: Date;
  /** When newer information will be available; omit for "any time" (§4.2.2.1). */
  nextUpdate?: Date;
}

/** Inputs of a BasicOCSPResponse; times are parameters so tests and replicas agree. */
export interface OcspResponseInput {
  /** The responder: the delegated OCSP signer (or the CA itself) and its key. */
  signer: { certificate: ParsedCertificate; privateKey: crypto.KeyObject };
  /** When the response is signed. */
  producedAt: Date;
  responses: readonly OcspSingleResponseInput[];
  /** The request's nonce extnValue to echo (see OcspRequest.nonce). */
  nonce?: Uint8Array;
  /** Certificates for the `certs` field; default: the signer certificate (needed when it is a delegate, §4.2.2.2). */
  certs?: readonly ParsedCertificate[];
}

/** GeneralizedTime with whole seconds (RFC 6960 uses GeneralizedTime throughout; RFC 5280 §4.1.2.5.2 form). */
function generalizedTime(d: Date): Buffer {
  const iso = d.toISOString();
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + "Z", "latin1"));
}

const GOOD = Uint8Array.of(0x80, 0x00);
const UNKNOWN = Uint8Array.of(0x82, 0x00);
const OID_BASIC = encodeOid(OcspOid.basic);
const OID_NONCE = encodeOid(OcspOid.nonce);

function certStatusDer(s: OcspCertStatus): Uint8Array {
  if (s.status === "good") return GOOD;
  if (s.status === "unknown") return UNKNOWN;
  const parts: Uint8Array[] = [generalizedTime(s.revokedAt)];
  if (s.reason && s.reason !== "unspecified") {
    const code = CRL_REASONS[s.reason];
    if (code === undefined) throw new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "unknown revocation reason", String(s.reason));
    parts.push(tlv(0xa0, tlv(Tag.ENUMERATED, Uint8Array.of(code))));
  }
  return tlv(0xa1, ...parts);
}

/** DER of one SingleResponse. */
export function encodeSingleResponse(r: OcspSingleResponseInput): Buffer {
  const certId = r.certId instanceof Uint8Array ? r.certId : r.certId.der;
  const parts: Uint8Array[] = [certId, certStatusDer(r.status), generalizedTime(r.thisUpdate)];
  if (r.nextUpdate) parts.push(tlv(0xa0, generalizedTime(r.nextUpdate)));
  return tlv(Tag.SEQUENCE, ...parts);
}

/**
 * Builds and signs a successful OCSPResponse carrying a BasicOCSPResponse
 * (RFC 6960 §4.2.1): responderID byKey (SHA-1 of the signer's public key,
 * §4.2.2.3), producedAt, one SingleResponse per input, the nonce echoed in
 * responseExtensions, and the signer certificate in `certs`. Signs with
 * node:crypto using the signer key's algorithm (see signatureAlgorithmFor).
 */
export async function buildOcspResponse(input: OcspResponseInput): Promise<Buffer> {
  if (input.responses.length === 0) throw new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "an OCSP response needs at least one SingleResponse");
  const alg = signatureAlgorithmFor(input.signer.privateKey);
  const responderId = tlv(0xa2, tlv(Tag.OCTET_STRING, keyIdentifier(input.signer.certificate.spki)));
  const parts: Uint8Array[] = [responderId, generalizedTime(input.producedAt), tlv(Tag.SEQUENCE, ...input.responses.map(encodeSingleResponse))];
  if (input.nonce) parts.push(tlv(0xa1, tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, OID_NONCE, tlv(Tag.OCTET_STRING, input.nonce)))));
  const tbs = tlv(Tag.SEQUENCE, ...parts);
  const sig = await signAsync(alg, tbs, input.signer.privateKey);
  const certs = input.certs ?? [input.signer.certificate];
  const basic = tlv(
    Tag.SEQUENCE,
    tbs,
    alg.algorithmIdentifier,
    tlv(Tag.BIT_STRING, Uint8Array.of(0), sig),
    ...(certs.length > 0 ? [tlv(0xa0, tlv(Tag.SEQUENCE, ...certs.map((c) => c.der)))] : []),
  );
  return tlv(Tag.SEQUENCE, tlv(Tag.ENUMERATED, Uint8Array.of(0)), tlv(0xa0, tlv(Tag.SEQUENCE, OID_BASIC, tlv(Tag.OCTET_STRING, basic))));
}

/**
 * An unsigned error OCSPResponse (RFC 6960 §2.3): the status alone, no
 * responseBytes. `malformedRequest` for requests that do not parse,
 * `internalError` when the responder failed, `tryLater` when it cannot
 * answer now, `unauthorized` when it may not answer for the certificate.
 */
export function ocspErrorResponse(status: Exclude<OcspResponseStatus, "successful">): Buffer {
  return tlv(Tag.SEQUENCE, tlv(Tag.ENUMERATED, Uint8Array.of(OCSP_RESPONSE_STATUS[status])));
}

/** Options of a delegated OCSP-signing certificate. */
export interface OcspSignerCertificateOptions {
  /** The CA whose certificates the signer answers for (it must issue the signer, §4.2.2.2). */
  issuer: Issuer;
  /** The signer's public key. */
  publicKey: crypto.KeyObject;
  subject: readonly NameAttribute[];
  notBefore: Date;
  notAfter: Date;
  /** Serial as unsigned big-endian bytes (default: 16 random octets). */
  serial?: Uint8Array;
}

/**
 * Creates a delegated OCSP-signing certificate (RFC 6960 §4.2.2.2): issued by
 * the CA, CA:FALSE, keyUsage digitalSignature, extKeyUsage id-kp-OCSPSigning,
 * SKI/AKI, and id-pkix-ocsp-nocheck (§4.2.2.2.1) so that relying parties do
 * not ask for the signer's own status; keep its lifetime short.
 */
export async function createOcspSignerCertificate(opts: OcspSignerCertificateOptions): Promise<ParsedCertificate> {
  const spki = spkiDer(opts.publicKey);
  const extensions = libraryExtensions(
    { basicConstraints: { ca: false }, keyUsage: ["digitalSignature"], extKeyUsage: ["OCSPSigning"] },
    issuerSkiOf(opts.issuer.certificate),
    keyIdentifier(spki),
    undefined,
    false,
  );
  extensions.push(new x509.Extension(OcspOid.noCheck, false, toArrayBuffer(Uint8Array.of(Tag.NULL, 0))));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: Buffer.from(opts.serial ?? generateSerial({ kind: "random", bytes: 16 })).toString("hex"),
    subject: new x509.Name(toArrayBuffer(encodeName(opts.subject))),
    issuer: new x509.Name(toArrayBuffer(opts.issuer.certificate.subject)),
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    publicKey: new x509.PublicKey(toArrayBuffer(spki)),
    signingKey: await webCryptoPrivateKey(opts.issuer.privateKey),
    signingAlgorithm: librarySigningAlgorithm(opts.issuer.privateKey),
    extensions,
  });
  const parsed = parseCertificate(Buffer.from(cert.rawData));
  // RFC 5280 §7.1 name chaining: the library must not have re-encoded the issuer's name.
  if (!parsed.issuer.equals(opts.issuer.certificate.subject)) throw new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "library re-encoded the issuer name", "issuer DN bytes differ");
  return parsed;
}

/** True if a certificate carries id-pkix-ocsp-nocheck and extKeyUsage id-kp-OCSPSigning. */
export function isOcspSigner(cert: ParsedCertificate): boolean {
  return cert.extensions.some((e) => e.oid === OcspOid.noCheck) && (extendedKeyUsages(cert) ?? []).includes(OcspOid.ocspSigning);
}
