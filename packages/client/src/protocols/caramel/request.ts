/**
 * What a Caramel client builds and checks besides the HTTP exchange (spec
 * caramel.md §2.1, §2.3, §6.1): the CA certificate, the request subject made
 * from the CA's subject, the canonical PEM request whose SHA-256 names it,
 * and the checks on the certificate the server serves.
 */
import type * as crypto from "node:crypto";
import {
  buildCsr, certificatePublicKey, decodeName, decodeOid, encodeOid, nameAttribute, parseAndVerifyCsrSync, parseCertificate,
  pemDecodeAll, pemEncode, readChildren, readWhole, sha256Hex, spkiDer, Tag, tlv, tlvBytes, tlvValue, verifyCertificateSignature,
  type ParsedCertificate, type ParsedCsr,
} from "@tessera/pki";
import { CaramelError } from "./errors.js";

/** Longest client id: the CN upper bound of RFC 5280 (ub-common-name), which the Rust client checks too. */
export const MAX_CLIENT_ID_LENGTH = 64;

const OID_CN = "2.5.4.3";
const CSR_LABEL = "CERTIFICATE REQUEST";

/** The CA certificate a client works with: parsed, as canonical PEM, and its key. */
export interface CaramelCa {
  certificate: ParsedCertificate;
  /** The certificate as OpenSSL PEM (one block). */
  pem: string;
  publicKey: crypto.KeyObject;
}

/**
 * Reads the CA certificate (the first CERTIFICATE block of `pem`) and checks
 * that it is self-signed, as the Rust client does (spec §6.1 step 2).
 * Throws CaramelError "bad-ca".
 */
export function readCaramelCa(pem: string | Uint8Array): CaramelCa {
  const text = typeof pem === "string" ? pem : Buffer.from(pem).toString("latin1");
  let certificate: ParsedCertificate;
  try {
    const block = pemDecodeAll(text).find((b) => b.label === "CERTIFICATE");
    if (!block) throw new Error("no PEM CERTIFICATE block");
    certificate = parseCertificate(block.der);
  } catch (err) {
    throw new CaramelError("bad-ca", `the CA certificate does not parse: ${(err as Error).message}`, { cause: err });
  }
  const publicKey = certificatePublicKey(certificate);
  if (!certificate.issuer.equals(certificate.subject) || !verifyCertificateSignature(certificate, publicKey)) {
    throw new CaramelError("bad-ca", "the CA certificate is not self-signed");
  }
  return { certificate, pem: pemEncode("CERTIFICATE", certificate.der), publicKey };
}

/** Problems with a client id (empty when fine): 1 to 64 characters, no control characters. */
export function clientIdProblems(id: unknown): string[] {
  if (typeof id !== "string" || id.length === 0) return ["clientId must be a non-empty string"];
  const problems: string[] = [];
  if ([...id].length > MAX_CLIENT_ID_LENGTH) problems.push(`clientId must be at most ${MAX_CLIENT_ID_LENGTH} characters (it becomes the CN)`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) problems.push("clientId must not contain control characters");
  return problems;
}

// The Modio CA whose subject order the clients repair (rs `workaround_subject`, py): exactly these RDNs in this order.
const MODIO_CA = [
  ["C", "SE"], ["OU", "Caramel"], ["L", "Linköping"], ["O", "Modio AB"], ["ST", "Östergötland"], ["CN", "Caramel Signing Certificate"],
] as const;
// Its RDNs reordered C, ST, L, O, OU, CN (indexes into MODIO_CA).
const MODIO_ORDER = [0, 4, 2, 3, 1, 5] as const;

/**
 * The subject of a request to a Caramel CA (spec §6.1 step 3): the CA's RDNs
 * in the CA's order, copied byte for byte (the server compares C, ST, L and
 * O as raw bytes, §2.3), with every CN replaced by `clientId` as a
 * UTF8String (as OpenSSL writes it for both reference clients); a CA without
 * a CN gets one appended (as the Python client does). The one CA whose
 * subject is exactly C=SE, OU=Caramel, L=Linköping, O=Modio AB,
 * ST=Östergötland, CN=Caramel Signing Certificate has its RDNs reordered C,
 * ST, L, O, OU, CN, the workaround both reference clients carry (its order
 * does not start with C, ST, L, O). Returns the DER Name.
 */
export function caramelSubject(caSubject: Uint8Array, clientId: string): Buffer {
  const der = Buffer.from(caSubject);
  const rdns = readChildren(der, readWhole(der, Tag.SEQUENCE));
  const attrs = decodeName(der);
  const modio = rdns.length === MODIO_CA.length && attrs.length === MODIO_CA.length && MODIO_CA.every(([t, v], i) => attrs[i]!.type === t && attrs[i]!.value === v);
  const ordered = modio ? MODIO_ORDER.map((i) => rdns[i]!) : rdns;
  // The CN as a UTF8String, as both reference clients write it (OpenSSL with string_mask utf8only).
  const cnAtv = tlv(Tag.SEQUENCE, encodeOid(OID_CN), tlv(Tag.UTF8_STRING, Buffer.from(clientId, "utf8")));
  const cnRdn = tlv(Tag.SET, cnAtv);
  let sawCn = false;
  const out = ordered.map((rdn) => {
    const atvs = readChildren(der, rdn);
    const isCn = atvs.map((atv) => decodeOid(tlvValue(der, readChildren(der, atv)[0]!)) === OID_CN);
    if (!isCn.includes(true)) return Buffer.from(tlvBytes(der, rdn));
    sawCn = true;
    if (atvs.length === 1) return cnRdn;
    return tlv(Tag.SET, ...atvs.map((atv, i) => (isCn[i] ? cnAtv : tlvBytes(der, atv))));
  });
  if (!sawCn) out.push(cnRdn);
  return tlv(Tag.SEQUENCE, ...out);
}

/** A request in the form Caramel stores and names it. */
export interface CaramelCsr {
  /** Canonical PEM (OpenSSL's: one block, 64-character base64 lines, LF, nothing else): exactly what is posted. */
  pem: string;
  /** Lowercase hex SHA-256 of the PEM bytes: the request's name on the server (spec §2.1). */
  sha256: string;
  der: Buffer;
  parsed: ParsedCsr;
}

/** Lowercase hex SHA-256 of PEM text's bytes (the URL path of a request). */
export function caramelHash(pem: string): string {
  return sha256Hex(Buffer.from(pem, "latin1"));
}

/**
 * Builds a request for `clientId` to the CA (subject from caramelSubject,
 * version 1, no attributes, signed with SHA-256 or the key's own scheme) as
 * canonical PEM.
 */
export function buildCaramelCsr(privateKey: crypto.KeyObject, ca: ParsedCertificate, clientId: string): CaramelCsr {
  const der = buildCsr({ subject: caramelSubject(ca.subject, clientId), privateKey });
  return readCaramelCsr(pemEncode(CSR_LABEL, der));
}

/**
 * Reads a request as PEM and checks that it is canonical (re-encoding it
 * reproduces the text exactly, which the server demands, spec §2.1 check 4)
 * and self-signed. Throws TypeError naming the problem.
 */
export function readCaramelCsr(pem: string | Uint8Array): CaramelCsr {
  const text = typeof pem === "string" ? pem : Buffer.from(pem).toString("latin1");
  const blocks = pemDecodeAll(text);
  if (blocks.length !== 1 || blocks[0]!.label !== CSR_LABEL) throw new TypeError("not exactly one PEM CERTIFICATE REQUEST block");
  const der = blocks[0]!.der;
  if (pemEncode(CSR_LABEL, der) !== text) {
    throw new TypeError("the request is not canonical PEM (one block, 64-character lines, LF line ends, nothing before or after)");
  }
  let parsed: ParsedCsr;
  try {
    parsed = parseAndVerifyCsrSync(der, { minRsaBits: 1024, ecCurves: ["P-256", "P-384", "P-521"] });
  } catch (err) {
    throw new TypeError(`the request does not parse or verify: ${(err as Error).message}`);
  }
  return { pem: text, sha256: caramelHash(text), der, parsed };
}

/** True when the request carries the public half of `privateKey`. */
export function csrMatchesKey(csr: CaramelCsr, privateKey: crypto.KeyObject): boolean {
  return csr.parsed.spki.equals(spkiDer(privateKey));
}

/** The first CN of a DER name, or undefined. */
export function commonName(name: Uint8Array): string | undefined {
  return nameAttribute(name, "CN");
}

/**
 * Checks a certificate the server served for a request (spec §6.1 step 6):
 * it carries the request's public key, is signed by the CA (issuer = CA
 * subject) and its CN is the client id. Returns it parsed and as canonical
 * PEM. Throws CaramelError "protocol" when the body is not a PEM
 * certificate, "bad-certificate" when a check fails.
 */
export function verifyCaramelCertificate(body: string | Uint8Array, csr: Pick<CaramelCsr, "parsed" | "sha256">, ca: CaramelCa, clientId: string): { certificate: ParsedCertificate; pem: string } {
  const text = typeof body === "string" ? body : Buffer.from(body).toString("latin1");
  let certificate: ParsedCertificate;
  try {
    const block = pemDecodeAll(text).find((b) => b.label === "CERTIFICATE");
    if (!block) throw new Error("no PEM CERTIFICATE block");
    certificate = parseCertificate(block.der);
  } catch (err) {
    throw new CaramelError("protocol", `the certificate served for ${csr.sha256} does not parse: ${(err as Error).message}`, { status: 200, sha256: csr.sha256, cause: err });
  }
  const bad = (why: string) => new CaramelError("bad-certificate", `the certificate served for ${csr.sha256} ${why}`, { status: 200, sha256: csr.sha256 });
  if (!certificate.spki.equals(csr.parsed.spki)) throw bad("is not for our key");
  if (!certificate.issuer.equals(ca.certificate.subject) || !verifyCertificateSignature(certificate, ca.publicKey)) throw bad("is not signed by the CA");
  const cn = commonName(certificate.subject);
  if (cn !== clientId) throw bad(`names CN ${cn === undefined ? "(none)" : JSON.stringify(cn)}, not ${JSON.stringify(clientId)}`);
  return { certificate, pem: pemEncode("CERTIFICATE", certificate.der) };
}
