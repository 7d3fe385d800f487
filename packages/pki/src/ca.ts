/**
 * CA certificates: self-signed roots and intermediates, made with
 * @peculiar/x509's generator (rare, so the library's cost does not matter).
 */
import "reflect-metadata";
import * as crypto from "node:crypto";
import * as x509 from "@peculiar/x509";
import { keyIdentifier, parseCertificate, type ParsedCertificate } from "./certificate.js";
import { spkiDer } from "./keys.js";
import { toArrayBuffer } from "./der.js";
import { generateSerial } from "./serial.js";
import { issuerSkiOf, libraryExtensions, librarySigningAlgorithm } from "./template.js";
import { webCryptoPrivateKey } from "./webcrypto.js";
import { encodeName, type NameAttribute } from "./name.js";

/** Options for a CA certificate. */
export interface CaCertificateOptions {
  /**
   * Subject as attributes, or as DER taken verbatim from another certificate
   * (a cross certificate must repeat the certified CA's name byte for byte).
   */
  subject: readonly NameAttribute[] | Uint8Array;
  /** The CA's own key pair (its public half goes into the certificate). */
  publicKey: crypto.KeyObject;
  notBefore: Date;
  notAfter: Date;
  /** basicConstraints pathLenConstraint (omit for none). */
  pathLength?: number;
  /** Signing issuer; omit for a self-signed root (then `privateKey` signs). */
  issuer?: { certificate: ParsedCertificate; privateKey: crypto.KeyObject };
  /** Private key of a self-signed root. */
  privateKey?: crypto.KeyObject;
}

/** Creates a CA certificate (root when no issuer is given): keyCertSign+cRLSign, CA:TRUE, SKI, AKI. */
export async function createCaCertificate(opts: CaCertificateOptions): Promise<ParsedCertificate> {
  const spki = spkiDer(opts.publicKey);
  const signerKey = opts.issuer?.privateKey ?? opts.privateKey;
  if (!signerKey) throw new Error("a self-signed CA needs its private key");
  const subject = opts.subject instanceof Uint8Array ? Buffer.from(opts.subject) : encodeName(opts.subject as readonly NameAttribute[]);
  const issuerName = opts.issuer ? opts.issuer.certificate.subject : subject;
  const issuerSki = opts.issuer ? issuerSkiOf(opts.issuer.certificate) : keyIdentifier(spki);
  const extensions = libraryExtensions(
    { basicConstraints: { ca: true, pathLength: opts.pathLength }, keyUsage: ["digitalSignature", "keyCertSign", "cRLSign"] },
    issuerSki,
    keyIdentifier(spki),
    undefined,
    false,
  );
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: generateSerial({ kind: "random", bytes: 16 }).toString("hex"),
    subject: new x509.Name(toArrayBuffer(subject)),
    issuer: new x509.Name(toArrayBuffer(issuerName)),
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    publicKey: new x509.PublicKey(toArrayBuffer(spki)),
    signingKey: await webCryptoPrivateKey(signerKey),
    signingAlgorithm: librarySigningAlgorithm(signerKey),
    extensions,
  });
  return parseCertificate(Buffer.from(cert.rawData));
}
