/**
 * Test fixtures shared by pki tests: a throwaway root + intermediate made at
 * run time (nothing checked in).
 */
import type * as crypto from "node:crypto";
import { createCaCertificate } from "./ca.js";
import { generateKeyPair, spkiDer, type KeyType } from "./keys.js";
import { parseCertificate, type ParsedCertificate } from "./certificate.js";
import { CertificateTemplate } from "./template.js";
import { generateSerial } from "./serial.js";
import { encodeName } from "./name.js";

/** A CA made for a test. */
export interface TestCa {
  root: ParsedCertificate;
  rootKey: crypto.KeyObject;
  intermediate: ParsedCertificate;
  intermediateKey: crypto.KeyObject;
}

/** Makes a root and an intermediate of the given key type, valid from a day ago for ten years. */
export async function makeTestCa(type: KeyType = "ec-p256"): Promise<TestCa> {
  const now = Date.now();
  const r = generateKeyPair(type);
  const root = await createCaCertificate({
    subject: [{ type: "O", value: "Tessera Test" }, { type: "CN", value: "Test Root" }],
    publicKey: r.publicKey,
    privateKey: r.privateKey,
    notBefore: new Date(now - 86400_000),
    notAfter: new Date(now + 10 * 365 * 86400_000),
  });
  const i = generateKeyPair(type);
  const intermediate = await createCaCertificate({
    subject: [{ type: "O", value: "Tessera Test" }, { type: "CN", value: "Test Issuing CA" }],
    publicKey: i.publicKey,
    notBefore: new Date(now - 86400_000),
    notAfter: new Date(now + 5 * 365 * 86400_000),
    pathLength: 0,
    issuer: { certificate: root, privateKey: r.privateKey },
  });
  return { root, rootKey: r.privateKey, intermediate, intermediateKey: i.privateKey };
}

/** Issues a client leaf (CN only, clientAuth) from a test CA's intermediate for `privateKey`'s public half; valid from a minute ago for `days` (default 30). */
export async function issueTestLeaf(ca: TestCa, cn: string, privateKey: crypto.KeyObject, days = 30): Promise<ParsedCertificate> {
  const tpl = await CertificateTemplate.create({ keyUsage: ["digitalSignature"], extKeyUsage: ["clientAuth"], authorityKeyIdentifier: true }, { certificate: ca.intermediate, privateKey: ca.intermediateKey });
  const now = Date.now();
  const der = await tpl.issue({
    serial: generateSerial({ kind: "random" }), notBefore: new Date(now - 60_000), notAfter: new Date(now + days * 86_400_000),
    subject: encodeName([{ type: "CN", value: cn }]), spki: spkiDer(privateKey),
  });
  return parseCertificate(der);
}
