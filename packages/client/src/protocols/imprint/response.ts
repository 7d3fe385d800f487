/**
 * Checks an EnrollmentResponse (the answer of all three endpoints) before any
 * stored credential is replaced — imprint stores whatever it gets (W19).
 */
import type * as crypto from "node:crypto";
import {
  certificatePublicKey, keysMatch, nameAttribute, parseCertificate, pemDecodeAll, verifyCertificateSignature, type ParsedCertificate,
} from "@tessera/pki";
import { ImprintError } from "./errors.js";

/** A checked answer: what the server issued. */
export interface ImprintIssued {
  /** The device's server_id (`srv_…` on imprint). */
  serverId: string;
  /** `certificate`, verbatim as it is stored in client.crt. */
  certificatePem: string;
  /** `ca_certificate`, verbatim as it is stored in ca.crt. */
  caPem: string;
  /** The parsed first block of certificatePem. */
  certificate: ParsedCertificate;
}

function invalid(detail: string, cause?: unknown): ImprintError {
  return new ImprintError("invalid-response", `invalid response: ${detail}`, { cause });
}

/**
 * Parses a 200 body and checks it: server_id non-empty (and unchanged when
 * `expectedServerId` is given), certificate parses, carries `newKey`'s public
 * key and CN = server_id, and is signed by a certificate in ca_certificate.
 * Throws ImprintError "invalid-response" otherwise.
 */
export function checkEnrollmentResponse(body: string, newKey: crypto.KeyObject, expectedServerId?: string): ImprintIssued {
  let obj: unknown;
  try {
    obj = JSON.parse(body);
  } catch (err) {
    throw new ImprintError("invalid-response", `decode response: ${(err as Error).message}`, { cause: err });
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw invalid("not a JSON object");
  const rec = obj as Record<string, unknown>;
  const field = (name: string): string => {
    const v = rec[name];
    if (v === undefined || v === null) return "";
    if (typeof v !== "string") throw invalid(`${name} is not a string`);
    return v;
  };
  const serverId = field("server_id");
  const certificatePem = field("certificate");
  const caPem = field("ca_certificate");
  if (serverId === "") throw invalid("empty server_id");
  if (expectedServerId !== undefined && serverId !== expectedServerId) {
    throw invalid(`server_id ${serverId} differs from the enrolled ${expectedServerId}`);
  }

  let certificate: ParsedCertificate;
  try {
    // client.crt is read back as its first PEM block, so that block must be the certificate.
    const first = pemDecodeAll(certificatePem)[0];
    if (!first) throw new Error("no PEM block");
    certificate = parseCertificate(first.der);
  } catch (err) {
    throw invalid(`certificate does not parse: ${(err as Error).message}`, err);
  }
  let ownKey = false;
  try {
    ownKey = keysMatch(newKey, certificatePublicKey(certificate));
  } catch {
    // an unreadable key is not ours
  }
  if (!ownKey) throw invalid("certificate is not for the key this request sent");
  let cn: string | undefined;
  try {
    cn = nameAttribute(certificate.subject, "CN");
  } catch {
    cn = undefined;
  }
  if (cn !== serverId) throw invalid(`certificate CN ${JSON.stringify(cn ?? "")} is not server_id ${serverId}`);

  let cas: ParsedCertificate[];
  try {
    cas = pemDecodeAll(caPem).filter((b) => b.label === "CERTIFICATE").map((b) => parseCertificate(b.der));
  } catch (err) {
    throw invalid(`ca_certificate does not parse: ${(err as Error).message}`, err);
  }
  if (cas.length === 0) throw invalid("ca_certificate holds no certificate");
  const chains = cas.some((ca) => {
    try {
      return verifyCertificateSignature(certificate, certificatePublicKey(ca));
    } catch {
      return false;
    }
  });
  if (!chains) throw invalid("certificate is not signed by a certificate in ca_certificate");
  return { serverId, certificatePem, caPem, certificate };
}
