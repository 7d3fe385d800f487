/**
 * PKCS#10 (RFC 2986) certification requests: parse and verify on the hot
 * path with a DER walk plus node:crypto (no object tree), and build CSRs for
 * devices and tests.
 */
import * as crypto from "node:crypto";
import { decodeOid, readChildren, readTlv, readWhole, Tag, tlv, tlvBytes, tlvValue, encodeOid } from "./der.js";
import { PkiError } from "./errors.js";
import { keyInfo, type KeyInfo, signatureAlgorithmFor, spkiDer } from "./keys.js";
import { encodeName, type NameAttribute } from "./name.js";
import { toDer } from "./pem.js";

/** An extension requested in the CSR's extensionRequest attribute (RFC 2985 §5.4.2). */
export interface RequestedExtension {
  oid: string;
  critical: boolean;
  /** Content of the extnValue OCTET STRING (the DER of the extension's value). */
  value: Buffer;
}

/** A parsed, signature-checked CSR. Byte fields are views of `der`. */
export interface ParsedCsr {
  /** The whole CSR, DER. */
  der: Buffer;
  /** DER of the subject Name. */
  subject: Buffer;
  /** DER SubjectPublicKeyInfo. */
  spki: Buffer;
  /** The public key. */
  publicKey: crypto.KeyObject;
  /** Family, curve, size of the public key. */
  key: KeyInfo;
  /** Dotted OID of the signature algorithm. */
  signatureOid: string;
  /** Extensions from the extensionRequest attribute (empty if none). */
  extensions: RequestedExtension[];
  /** Other attributes by OID, each as its DER values (e.g. challengePassword). */
  attributes: { oid: string; values: Buffer[] }[];
}

/** Policy for what a CSR may carry; defaults: RSA ≥ 2048, EC P-256/P-384/P-521, Ed25519. */
export interface CsrPolicy {
  /** Minimum RSA modulus in bits (default 2048). */
  minRsaBits?: number;
  /** Allowed EC curves (default P-256, P-384, P-521). */
  ecCurves?: readonly string[];
  /** Allow Ed25519 keys (default true). */
  allowEd25519?: boolean;
  /** Allow RSA keys (default true). */
  allowRsa?: boolean;
}

// Signature algorithms accepted on CSRs: SHA-2 with ECDSA or RSA PKCS#1 v1.5, and Ed25519.
// SHA-1 and MD5 are refused (not collision resistant); RSA-PSS is not supported yet.
const SIG_ALGS: Record<string, { family: KeyInfo["family"]; hash: string | null }> = {
  "1.2.840.10045.4.3.2": { family: "ec", hash: "sha256" },
  "1.2.840.10045.4.3.3": { family: "ec", hash: "sha384" },
  "1.2.840.10045.4.3.4": { family: "ec", hash: "sha512" },
  "1.2.840.113549.1.1.11": { family: "rsa", hash: "sha256" },
  "1.2.840.113549.1.1.12": { family: "rsa", hash: "sha384" },
  "1.2.840.113549.1.1.13": { family: "rsa", hash: "sha512" },
  "1.3.101.112": { family: "ed25519", hash: null },
};

const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14";

interface CsrParts {
  der: Buffer;
  info: Buffer;
  subject: Buffer;
  spki: Buffer;
  attributes: { oid: string; values: Buffer[] }[];
  sigOid: string;
  signature: Buffer;
}

function badCsr(detail: string, cause?: unknown): PkiError {
  return new PkiError("TESSERA_ERR_PKI_MALFORMED_DER", "malformed certificate request", detail, { cause });
}

function splitCsr(input: Uint8Array | string): CsrParts {
  const der = toDer(input, "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST");
  try {
    const outer = readWhole(der, Tag.SEQUENCE);
    const [infoT, algT, sigT] = readChildren(der, outer);
    if (!infoT || !algT || !sigT || infoT.tag !== Tag.SEQUENCE || algT.tag !== Tag.SEQUENCE || sigT.tag !== Tag.BIT_STRING) {
      throw badCsr("not a CertificationRequest");
    }
    const [verT, subjT, spkiT, attrsT] = readChildren(der, infoT);
    if (!verT || verT.tag !== Tag.INTEGER || !subjT || subjT.tag !== Tag.SEQUENCE || !spkiT || spkiT.tag !== Tag.SEQUENCE) {
      throw badCsr("bad CertificationRequestInfo");
    }
    const version = tlvValue(der, verT);
    if (version.length !== 1 || version[0] !== 0) throw badCsr("CSR version is not 1");
    const attributes: { oid: string; values: Buffer[] }[] = [];
    if (attrsT) {
      if (attrsT.tag !== 0xa0) throw badCsr("bad attributes tag");
      for (const a of readChildren(der, attrsT)) {
        const [oidT, setT] = readChildren(der, a);
        if (!oidT || oidT.tag !== Tag.OID || !setT || setT.tag !== Tag.SET) throw badCsr("bad attribute");
        attributes.push({ oid: decodeOid(tlvValue(der, oidT)), values: readChildren(der, setT).map((v) => Buffer.from(tlvBytes(der, v))) });
      }
    }
    const [algOid] = readChildren(der, algT);
    if (!algOid || algOid.tag !== Tag.OID) throw badCsr("bad signature algorithm");
    const sigBits = tlvValue(der, sigT);
    if (sigBits.length < 1 || sigBits[0] !== 0) throw badCsr("signature BIT STRING has unused bits");
    return {
      der,
      info: der.subarray(infoT.start, infoT.end),
      subject: der.subarray(subjT.start, subjT.end),
      spki: der.subarray(spkiT.start, spkiT.end),
      attributes,
      sigOid: decodeOid(tlvValue(der, algOid)),
      signature: Buffer.from(sigBits.subarray(1)),
    };
  } catch (err) {
    if (err instanceof PkiError) throw err.code === "TESSERA_ERR_PKI_MALFORMED_DER" ? badCsr(err.detail ?? "", err) : err;
    throw badCsr(String(err), err);
  }
}

function extensionsOf(attributes: { oid: string; values: Buffer[] }[]): RequestedExtension[] {
  const req = attributes.find((a) => a.oid === OID_EXTENSION_REQUEST);
  if (!req || req.values.length === 0) return [];
  const buf = req.values[0]!;
  const seq = readWhole(buf, Tag.SEQUENCE);
  return readChildren(buf, seq).map((ext) => {
    const parts = readChildren(buf, ext);
    const oidT = parts[0];
    const last = parts[parts.length - 1];
    if (!oidT || oidT.tag !== Tag.OID || !last || last.tag !== Tag.OCTET_STRING) throw badCsr("bad requested extension");
    const critical = parts.length === 3 && parts[1]!.tag === Tag.BOOLEAN && tlvValue(buf, parts[1]!)[0] !== 0;
    return { oid: decodeOid(tlvValue(buf, oidT)), critical, value: Buffer.from(tlvValue(buf, last)) };
  });
}

function checkKey(key: KeyInfo, policy: CsrPolicy): void {
  const weak = (detail: string) => new PkiError("TESSERA_ERR_PKI_WEAK_KEY", "key type or size not allowed", detail);
  if (key.family === "rsa") {
    if (policy.allowRsa === false) throw weak("RSA keys are not allowed");
    if (key.bits < (policy.minRsaBits ?? 2048)) throw weak(`RSA ${key.bits} < ${policy.minRsaBits ?? 2048} bits`);
  } else if (key.family === "ec") {
    if (!(policy.ecCurves ?? ["P-256", "P-384", "P-521"]).includes(key.curve!)) throw weak(`EC curve ${key.curve} not allowed`);
  } else if (key.family === "ed25519" && policy.allowEd25519 === false) {
    throw weak("Ed25519 keys are not allowed");
  }
}

function importSpki(spki: Buffer): crypto.KeyObject {
  try {
    return crypto.createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch (err) {
    throw new PkiError("TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM", "unsupported public key", String((err as Error).message), { cause: err });
  }
}

function finish(parts: CsrParts, publicKey: crypto.KeyObject, key: KeyInfo): ParsedCsr {
  return {
    der: parts.der,
    subject: parts.subject,
    spki: parts.spki,
    publicKey,
    key,
    signatureOid: parts.sigOid,
    extensions: extensionsOf(parts.attributes),
    attributes: parts.attributes.filter((a) => a.oid !== OID_EXTENSION_REQUEST),
  };
}

/** Results of parseAndVerifyCsr(Sync): their self-signature verified. Held weakly, so they go with the request. */
const VERIFIED = new WeakSet<ParsedCsr>();

/**
 * Marks a parse result as verified. It is frozen first (its fields and
 * lists), so what was verified is what a later consumer reads: swapping in
 * another key or subject after the check is a TypeError, not a bypass.
 */
function verified(csr: ParsedCsr): ParsedCsr {
  Object.freeze(csr.extensions);
  Object.freeze(csr.attributes);
  Object.freeze(csr);
  VERIFIED.add(csr);
  return csr;
}

/**
 * True if `csr` is the very object parseAndVerifyCsr or parseAndVerifyCsrSync
 * returned, i.e. its self-signature (proof of possession) was verified. A
 * consumer handed a parsed CSR (the authority's issuance pipeline) uses it
 * as is instead of importing the key and verifying again; parseCsr results,
 * copies and objects built by hand are false. The key policy is not implied:
 * check it with checkCsrPolicy (no key import, microseconds).
 */
export function isVerifiedCsr(csr: ParsedCsr): boolean {
  return VERIFIED.has(csr);
}

function prepare(input: Uint8Array | string, policy: CsrPolicy) {
  const parts = splitCsr(input);
  const alg = SIG_ALGS[parts.sigOid];
  if (!alg) throw new PkiError("TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM", "unsupported signature algorithm", parts.sigOid);
  const publicKey = importSpki(parts.spki);
  const key = keyInfo(publicKey);
  if (key.family !== alg.family) {
    throw new PkiError("TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM", "signature algorithm does not match key", `${parts.sigOid} with ${key.family}`);
  }
  checkKey(key, policy);
  return { parts, alg, publicKey, key };
}

function badSignature(): PkiError {
  return new PkiError("TESSERA_ERR_PKI_CSR_SIGNATURE", "certificate request signature is invalid", "self-signature did not verify");
}

/**
 * Parses a CSR (DER, or PEM text/bytes) and verifies its self-signature and
 * key policy; async verification runs in the thread pool. The result is
 * frozen and recognised by isVerifiedCsr, so it can be handed on (e.g. to
 * the authority's issue) without a second key import and verification.
 * Throws PkiError: MALFORMED_DER, UNSUPPORTED_ALGORITHM, WEAK_KEY, CSR_SIGNATURE.
 */
export async function parseAndVerifyCsr(input: Uint8Array | string, policy: CsrPolicy = {}): Promise<ParsedCsr> {
  const { parts, alg, publicKey, key } = prepare(input, policy);
  const ok = await new Promise<boolean>((resolve) => {
    crypto.verify(alg.hash, parts.info, publicKey, parts.signature, (err, result) => resolve(!err && result));
  });
  if (!ok) throw badSignature();
  return verified(finish(parts, publicKey, key));
}

/** Synchronous parseAndVerifyCsr. */
export function parseAndVerifyCsrSync(input: Uint8Array | string, policy: CsrPolicy = {}): ParsedCsr {
  const { parts, alg, publicKey, key } = prepare(input, policy);
  let ok = false;
  try {
    ok = crypto.verify(alg.hash, parts.info, publicKey, parts.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw badSignature();
  return verified(finish(parts, publicKey, key));
}

/**
 * Parses a CSR without checking its signature or key policy: for requests
 * whose key is ignored by design (EST serverkeygen, RFC 7030 §4.4.1). Throws
 * MALFORMED_DER or UNSUPPORTED_ALGORITHM (a key node:crypto cannot import).
 */
export function parseCsr(input: Uint8Array | string): ParsedCsr {
  const parts = splitCsr(input);
  const publicKey = importSpki(parts.spki);
  return finish(parts, publicKey, keyInfo(publicKey));
}

/** Checks a parsed CSR's key against a policy (parseCsr does not). Throws WEAK_KEY. */
export function checkCsrPolicy(csr: ParsedCsr, policy: CsrPolicy = {}): ParsedCsr {
  checkKey(csr.key, policy);
  return csr;
}

const OID_CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7";
// DirectoryString choices a challengePassword may use (RFC 2985 §5.4.1): Printable, UTF8, BMP, Teletex, Universal.
const STRING_TAGS = new Set([0x13, 0x0c, 0x1e, 0x14, 0x1c]);

/**
 * The CSR's challengePassword (RFC 2985 §5.4.1) as text, or undefined when it
 * has none. EST puts base64(tls-unique) there (RFC 7030 §3.5). Throws
 * MALFORMED_DER if the attribute is present but not a single string.
 */
export function csrChallengePassword(csr: Pick<ParsedCsr, "attributes">): string | undefined {
  const attr = csr.attributes.find((a) => a.oid === OID_CHALLENGE_PASSWORD);
  if (!attr) return undefined;
  const value = attr.values[0];
  if (attr.values.length !== 1 || !value) throw badCsr("challengePassword must have exactly one value");
  const t = readWhole(value, value[0]!);
  if (!STRING_TAGS.has(t.tag)) throw badCsr(`challengePassword has tag 0x${t.tag.toString(16)}`);
  const bytes = Buffer.from(tlvValue(value, t));
  if (t.tag === 0x1e) return bytes.swap16().toString("utf16le");
  return bytes.toString(t.tag === 0x0c ? "utf8" : "latin1");
}

/** A challengePassword attribute for buildCsr (UTF8String, or PrintableString when the text allows it). */
export function challengePasswordAttribute(password: string): { oid: string; values: Buffer[] } {
  const printable = /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(password);
  return { oid: OID_CHALLENGE_PASSWORD, values: [tlv(printable ? 0x13 : 0x0c, Buffer.from(password, printable ? "latin1" : "utf8"))] };
}

/** Options for building a CSR. */
export interface BuildCsrOptions {
  /** Subject attributes in order (may be empty), or a Name already in DER (copied as is). */
  subject: readonly NameAttribute[] | Uint8Array;
  /** Private key that signs the request (its public half goes in). */
  privateKey: crypto.KeyObject;
  /** Extensions to request (DER values), e.g. from buildSubjectAltName. */
  extensions?: readonly RequestedExtension[];
  /** Extra attributes (DER values), e.g. challengePassword. */
  attributes?: readonly { oid: string; values: Uint8Array[] }[];
}

/** Builds and signs a DER PKCS#10 request. */
export function buildCsr(opts: BuildCsrOptions): Buffer {
  const attrs: Buffer[] = [];
  if (opts.extensions && opts.extensions.length > 0) {
    const exts = opts.extensions.map((e) =>
      tlv(Tag.SEQUENCE, encodeOid(e.oid), ...(e.critical ? [Uint8Array.of(Tag.BOOLEAN, 1, 0xff)] : []), tlv(Tag.OCTET_STRING, e.value)),
    );
    attrs.push(tlv(Tag.SEQUENCE, encodeOid(OID_EXTENSION_REQUEST), tlv(Tag.SET, tlv(Tag.SEQUENCE, ...exts))));
  }
  for (const a of opts.attributes ?? []) attrs.push(tlv(Tag.SEQUENCE, encodeOid(a.oid), tlv(Tag.SET, ...a.values)));
  const info = tlv(Tag.SEQUENCE, Uint8Array.of(Tag.INTEGER, 1, 0), opts.subject instanceof Uint8Array ? opts.subject : encodeName(opts.subject), spkiDer(opts.privateKey), tlv(0xa0, ...attrs));
  const alg = signatureAlgorithmFor(opts.privateKey);
  const sig = crypto.sign(alg.hash, info, opts.privateKey);
  return tlv(Tag.SEQUENCE, info, alg.algorithmIdentifier, tlv(Tag.BIT_STRING, Uint8Array.of(0), sig));
}

/** Reads the TLV header of a CSR quickly to tell if bytes are plausibly a DER CSR (used for content sniffing). */
export function isDerSequence(data: Uint8Array): boolean {
  try {
    return readTlv(data, 0).tag === Tag.SEQUENCE;
  } catch {
    return false;
  }
}
