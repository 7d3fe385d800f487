/**
 * OCSP client side (RFC 6960): building an OCSPRequest for serials of one
 * issuer, its GET form (Appendix A.1), and reading and checking an
 * OCSPResponse. A lean DER walk like the CRL reader; relying parties and
 * tests use it.
 */
import * as crypto from "node:crypto";
import { decodeOid, decodeTime, encodeOid, encodeUnsignedInteger, readChildren, readWhole, Tag, tlv, tlvBytes, tlvValue, type Tlv } from "./der.js";
import { PkiError } from "./errors.js";
import { certificatePublicKey, extendedKeyUsages, keyIdentifier, parseCertificate, verifyCertificateSignature, verifySignature, type ParsedCertificate } from "./certificate.js";
import { CRL_REASONS } from "./crl.js";
import {
  decodeOcspCertId, OCSP_HASH_OIDS, OCSP_RESPONSE_STATUS, OcspOid, ocspIssuerHashes, type OcspCertId, type OcspHash, type OcspResponseStatus,
} from "./ocsp.js";

/** Options of an OCSP request. */
export interface OcspRequestOptions {
  /** The CA that issued the certificates asked about. */
  issuer: ParsedCertificate;
  /** Serials: unsigned big-endian bytes or hex text. */
  serials: readonly (Uint8Array | string)[];
  /** CertID hash algorithm (default "sha1", what OpenSSL and most responders use). */
  hash?: OcspHash;
  /** Nonce value (RFC 8954: 1 to 32 octets; 16 or more recommended), sent as an OCTET STRING in extnValue. */
  nonce?: Uint8Array;
}

/** Builds an unsigned DER OCSPRequest (RFC 6960 §4.1.1) with one CertID per serial. */
export function buildOcspRequest(opts: OcspRequestOptions): Buffer {
  const hash = opts.hash ?? "sha1";
  const { nameHash, keyHash } = ocspIssuerHashes(opts.issuer, hash);
  const alg = tlv(Tag.SEQUENCE, encodeOid(OCSP_HASH_OIDS[hash]), Uint8Array.of(Tag.NULL, 0));
  const requests = opts.serials.map((s) => {
    const bytes = typeof s === "string" ? Buffer.from(s.length % 2 ? "0" + s : s, "hex") : s;
    return tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, alg, tlv(Tag.OCTET_STRING, nameHash), tlv(Tag.OCTET_STRING, keyHash), encodeUnsignedInteger(bytes)));
  });
  const parts: Uint8Array[] = [tlv(Tag.SEQUENCE, ...requests)];
  if (opts.nonce) {
    const ext = tlv(Tag.SEQUENCE, encodeOid(OcspOid.nonce), tlv(Tag.OCTET_STRING, tlv(Tag.OCTET_STRING, opts.nonce)));
    parts.push(tlv(0xa2, tlv(Tag.SEQUENCE, ext)));
  }
  return tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, ...parts));
}

/** The GET URL of a request (RFC 6960 Appendix A.1): `<responderUrl>/<percent-encoded base64 of the DER>`. */
export function ocspGetUrl(responderUrl: string, request: Uint8Array): string {
  return `${responderUrl.replace(/\/+$/, "")}/${encodeURIComponent(Buffer.from(request).toString("base64"))}`;
}

/** One SingleResponse of a parsed response. */
export interface ParsedOcspSingleResponse {
  certId: OcspCertId;
  status: "good" | "revoked" | "unknown";
  /** revocationTime, when revoked. */
  revokedAt?: Date;
  /** Reason name as in CRL_REASONS, "reasonCode(N)" for an undefined code; absent when the response has none. */
  reason?: string;
  thisUpdate: Date;
  nextUpdate?: Date;
}

/** A parsed OCSPResponse; the basic fields are present only when `status` is "successful". */
export interface ParsedOcspResponse {
  /** OCSPResponseStatus name, or "status(N)" for a value RFC 6960 does not define. */
  status: OcspResponseStatus | `status(${number})`;
  /** SHA-1 of the responder's public key (responderID byKey). */
  responderKeyHash?: Buffer;
  /** DER Name of the responder (responderID byName). */
  responderName?: Buffer;
  producedAt?: Date;
  responses: ParsedOcspSingleResponse[];
  /** The nonce extension's extnValue, as the responder echoed it. */
  nonce?: Buffer;
  /** Certificates in the `certs` field. */
  certs: ParsedCertificate[];
  /** DER of tbsResponseData (what the responder signed). */
  tbs?: Buffer;
  signatureOid?: string;
  signature?: Buffer;
}

const STATUS_NAMES = new Map<number, OcspResponseStatus>(Object.entries(OCSP_RESPONSE_STATUS).map(([n, c]) => [c, n as OcspResponseStatus]));
const REASON_NAMES = new Map<number, string>(Object.entries(CRL_REASONS).map(([name, code]) => [code, name]));

function malformed(detail: string, cause?: unknown): PkiError {
  return new PkiError("TESSERA_ERR_PKI_MALFORMED_DER", "malformed OCSP response", detail, { cause });
}

function smallInt(der: Buffer, t: Tlv): number {
  const v = tlvValue(der, t);
  if (v.length === 0 || v.length > 4) throw malformed("bad ENUMERATED");
  return v.reduce((acc, b) => acc * 256 + b, 0);
}

function readSingle(der: Buffer, t: Tlv): ParsedOcspSingleResponse {
  const f = readChildren(der, t);
  const [certT, statusT, thisT] = f;
  if (!certT || !statusT || !thisT) throw malformed("bad SingleResponse");
  const out: ParsedOcspSingleResponse = { certId: decodeOcspCertId(tlvBytes(der, certT)), status: "unknown", thisUpdate: decodeTime(der, thisT) };
  if (statusT.tag === 0x80) out.status = "good";
  else if (statusT.tag === 0x82) out.status = "unknown";
  else if (statusT.tag === 0xa1) {
    out.status = "revoked";
    const [timeT, reasonT] = readChildren(der, statusT);
    if (!timeT) throw malformed("bad RevokedInfo");
    out.revokedAt = decodeTime(der, timeT);
    if (reasonT) {
      const [e] = readChildren(der, reasonT);
      if (!e || e.tag !== Tag.ENUMERATED) throw malformed("bad revocationReason");
      const code = smallInt(der, e);
      out.reason = REASON_NAMES.get(code) ?? `reasonCode(${code})`;
    }
  } else throw malformed("bad CertStatus");
  const next = f.slice(3).find((x) => x.tag === 0xa0);
  if (next) out.nextUpdate = decodeTime(der, readChildren(der, next)[0]!);
  return out;
}

/**
 * Parses a DER OCSPResponse (RFC 6960 §4.2.1). Error responses give the
 * status alone. The signature is not checked here (see verifyOcspResponse).
 * Throws TESSERA_ERR_PKI_MALFORMED_DER.
 */
export function parseOcspResponse(input: Uint8Array): ParsedOcspResponse {
  const der = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  try {
    const outer = readWhole(der, Tag.SEQUENCE);
    const [statusT, bytesT] = readChildren(der, outer);
    if (!statusT || statusT.tag !== Tag.ENUMERATED) throw malformed("not an OCSPResponse");
    const code = smallInt(der, statusT);
    const out: ParsedOcspResponse = { status: STATUS_NAMES.get(code) ?? `status(${code})`, responses: [], certs: [] };
    if (!bytesT) return out;
    const [rbT] = readChildren(der, bytesT);
    const [typeT, octT] = rbT ? readChildren(der, rbT) : [];
    if (!typeT || typeT.tag !== Tag.OID || !octT || octT.tag !== Tag.OCTET_STRING) throw malformed("bad ResponseBytes");
    if (decodeOid(tlvValue(der, typeT)) !== OcspOid.basic) throw malformed("not a BasicOCSPResponse");
    const basic = Buffer.from(tlvValue(der, octT));
    const [tbsT, algT, sigT, certsT] = readChildren(basic, readWhole(basic, Tag.SEQUENCE));
    if (!tbsT || tbsT.tag !== Tag.SEQUENCE || !algT || !sigT || sigT.tag !== Tag.BIT_STRING) throw malformed("bad BasicOCSPResponse");
    out.tbs = Buffer.from(tlvBytes(basic, tbsT));
    out.signatureOid = decodeOid(tlvValue(basic, readChildren(basic, algT)[0]!));
    out.signature = Buffer.from(tlvValue(basic, sigT).subarray(1));
    if (certsT) out.certs = readChildren(basic, readChildren(basic, certsT)[0]!).map((c) => parseCertificate(Buffer.from(tlvBytes(basic, c))));
    const f = readChildren(basic, tbsT);
    let i = f[0]?.tag === 0xa0 ? 1 : 0;
    const rid = f[i++];
    const [ridValue] = rid ? readChildren(basic, rid) : [];
    if (!rid || !ridValue) throw malformed("bad responderID");
    if (rid.tag === 0xa2) out.responderKeyHash = Buffer.from(tlvValue(basic, ridValue));
    else if (rid.tag === 0xa1) out.responderName = Buffer.from(tlvBytes(basic, ridValue));
    else throw malformed("bad responderID");
    out.producedAt = decodeTime(basic, f[i++]!);
    const listT = f[i++];
    if (!listT || listT.tag !== Tag.SEQUENCE) throw malformed("missing responses");
    out.responses = readChildren(basic, listT).map((s) => readSingle(basic, s));
    const extT = f[i];
    if (extT?.tag === 0xa1) {
      for (const e of readChildren(basic, readChildren(basic, extT)[0]!)) {
        const parts = readChildren(basic, e);
        if (decodeOid(tlvValue(basic, parts[0]!)) === OcspOid.nonce) out.nonce = Buffer.from(tlvValue(basic, parts[parts.length - 1]!));
      }
    }
    return out;
  } catch (err) {
    if (err instanceof PkiError) throw err.message === "malformed OCSP response" ? err : malformed(err.detail ?? err.message, err);
    throw malformed(String(err), err);
  }
}

/**
 * Checks who signed a successful response (RFC 6960 §4.2.2.2): the issuer
 * itself, or a delegate in `certs` that the issuer signed, with
 * id-kp-OCSPSigning and valid at `at` (default now). Returns the signer
 * certificate (undefined when the issuer signed directly), or throws
 * TESSERA_ERR_PKI_INVALID_ARGUMENT saying what is wrong.
 */
export function verifyOcspResponse(parsed: ParsedOcspResponse, issuer: ParsedCertificate, at: Date = new Date()): ParsedCertificate | undefined {
  const fail = (detail: string) => new PkiError("TESSERA_ERR_PKI_INVALID_ARGUMENT", "OCSP response does not verify", detail);
  if (parsed.status !== "successful" || !parsed.tbs || !parsed.signatureOid || !parsed.signature) throw fail(`status ${parsed.status}`);
  const byKey = (c: ParsedCertificate) => (parsed.responderKeyHash ? keyIdentifier(c.spki).equals(parsed.responderKeyHash) : !!parsed.responderName?.equals(c.subject));
  if (byKey(issuer)) {
    if (!verifySignature(parsed.tbs, parsed.signatureOid, parsed.signature, certificatePublicKey(issuer))) throw fail("bad signature by the issuer");
    return undefined;
  }
  const signer = parsed.certs.find(byKey);
  if (!signer) throw fail("responder certificate not included");
  if (!signer.issuer.equals(issuer.subject) || !verifyCertificateSignature(signer, certificatePublicKey(issuer))) throw fail("responder certificate not issued by the CA");
  if (!(extendedKeyUsages(signer) ?? []).includes(OcspOid.ocspSigning)) throw fail("responder certificate lacks id-kp-OCSPSigning");
  if (at < signer.notBefore || at > signer.notAfter) throw fail("responder certificate not valid now");
  if (!verifySignature(parsed.tbs, parsed.signatureOid, parsed.signature, certificatePublicKey(signer))) throw fail("bad signature by the responder");
  return signer;
}

/** A random nonce of `bytes` octets (default 16, as RFC 8954 §2.1 recommends at least). */
export function ocspNonce(bytes = 16): Buffer {
  return crypto.randomBytes(bytes);
}
