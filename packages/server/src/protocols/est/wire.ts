/**
 * EST's HTTP framing and encodings (RFC 7030 §4, RFC 8951; spec est.md §2,
 * §5, §6). Real clients are strict about bytes that HTTP itself leaves open:
 * libest compares header names case-sensitively, Bouncy Castle and libest
 * need an exact Content-Length (never chunked) and Bouncy Castle closes some
 * answers unread, so they must be empty. Every EST answer goes through
 * sendRaw (http/raw-reply.ts), which writes canonical header names.
 */
import type { FastifyReply } from "fastify";
import { decodeBase64Lenient, encodeBase64Lines, encodeOid, encodeSmallInteger, looksLikePem, pemDecodeFirst, readWhole, Tag, tlv } from "@tessera/pki";
import { sendRaw } from "../../http/raw-reply.js";

export { sendRaw };

/** Content types EST answers with (est.md §1, §3). */
export const EST_TYPES = {
  certsOnly: "application/pkcs7-mime; smime-type=certs-only",
  csrattrs: "application/csrattrs",
  pkcs8: "application/pkcs8",
  text: "text/plain; charset=utf-8",
} as const;

/** Boundary of /serverkeygen answers: unquoted, last parameter, [A-Za-z0-9-] (libest reads to the end of the line). */
export const MULTIPART_BOUNDARY = "tessera-est-boundary";

/** A refusal in EST's form: status, one line of text (or an empty body), extra headers; `reason` is for the log. */
export class EstFailure extends Error {
  constructor(
    readonly status: number,
    readonly text: string,
    readonly reason: string = text,
    readonly headers: Record<string, string> = {},
  ) {
    super(reason);
  }
}

/** A single-part base64 answer with `Content-Transfer-Encoding: base64` (Bouncy Castle decodes base64 only then). */
export function sendBase64(reply: FastifyReply, contentType: string, der: Uint8Array): FastifyReply {
  return sendRaw(reply, 200, { "Content-Type": contentType, "Content-Transfer-Encoding": "base64" }, encodeBase64Lines(der));
}

const ID_SIGNED_DATA = encodeOid("1.2.840.113549.1.7.2");
const SIGNED_DATA_HEAD = Buffer.concat([
  encodeSmallInteger(1), // CMSVersion v1
  tlv(Tag.SET), // digestAlgorithms: none
  tlv(Tag.SEQUENCE, encodeOid("1.2.840.113549.1.7.1")), // encapContentInfo: id-data, no content
]);
const EMPTY_SET = tlv(Tag.SET); // signerInfos: none

/**
 * DER of a certs-only CMS (RFC 5652 SignedData, degenerate: no content, no
 * signers) holding `certificates` (DER, each one SEQUENCE) in the given
 * order; the same bytes as @tessera/pki's buildCertsOnly, which parses and
 * re-serialises every certificate through an ASN.1 object model: a quarter
 * of the main thread's time per EST enrollment. The certificates come from
 * the CA; each is still checked to be exactly one DER SEQUENCE.
 */
export function certsOnlyDer(certificates: readonly Uint8Array[]): Buffer {
  for (const der of certificates) readWhole(der, Tag.SEQUENCE);
  const signedData = tlv(Tag.SEQUENCE, SIGNED_DATA_HEAD, tlv(0xa0, ...certificates), EMPTY_SET);
  return tlv(Tag.SEQUENCE, ID_SIGNED_DATA, tlv(0xa0, signedData));
}

/** A certs-only CMS answer (RFC 7030 §4.1.3, §4.2.3) holding `certificates` (DER). */
export function sendCertsOnly(reply: FastifyReply, certificates: readonly Uint8Array[]): FastifyReply {
  return sendBase64(reply, EST_TYPES.certsOnly, certsOnlyDer(certificates));
}

/** An error or empty answer: text/plain for a body, nothing but Content-Length for an empty one. */
export function sendFailure(reply: FastifyReply, f: EstFailure): FastifyReply {
  const headers = f.text === "" ? { ...f.headers } : { "Content-Type": EST_TYPES.text, ...f.headers };
  // One line, at most 8 KiB: Bouncy Castle reads no more of an error body.
  const text = f.text === "" ? "" : f.text.replace(/[\r\n]+/g, " ").slice(0, 8000) + "\n";
  return sendRaw(reply, f.status, headers, text);
}

/**
 * The /serverkeygen answer (RFC 7030 §4.4.2, est.md §5.4): multipart/mixed,
 * key part first, CRLF lines, each part base64 with its own CTE; none on the
 * outer response.
 */
export function sendServerKeygen(reply: FastifyReply, pkcs8: Uint8Array, certificate: Uint8Array): FastifyReply {
  const crlf = (s: string) => s.replace(/\n/g, "\r\n");
  const part = (type: string, der: Uint8Array) =>
    `--${MULTIPART_BOUNDARY}\r\nContent-Type: ${type}\r\nContent-Transfer-Encoding: base64\r\n\r\n${crlf(encodeBase64Lines(der))}`;
  const body = part(EST_TYPES.pkcs8, pkcs8) + part(EST_TYPES.certsOnly, certsOnlyDer([certificate])) + `--${MULTIPART_BOUNDARY}--\r\n`;
  return sendRaw(reply, 200, { "Content-Type": `multipart/mixed; boundary=${MULTIPART_BOUNDARY}` }, body);
}

/** The media type of a Content-Type header, lower case, without parameters. */
export function mediaType(header: string | undefined): string {
  return (header ?? "").split(";")[0]!.trim().toLowerCase();
}

/**
 * Decodes a PKCS#10 request body: base64 in any line form (RFC 8951 §3.1,
 * whatever Content-Transfer-Encoding says), or PEM armour. Returns the DER,
 * or throws EstFailure 400.
 */
export function decodeCsrBody(body: Buffer | undefined): Buffer {
  if (!body || body.length === 0) throw new EstFailure(400, "empty request body: expected a base64 PKCS#10 request");
  try {
    if (looksLikePem(body)) return pemDecodeFirst(body.toString("latin1"), "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST").der;
    return decodeBase64Lenient(body);
  } catch (err) {
    throw new EstFailure(400, "request body is not a base64 PKCS#10 request", (err as Error).message);
  }
}
