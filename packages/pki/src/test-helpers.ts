/**
 * Test fixtures shared by pki tests: a throwaway root + intermediate made at
 * run time (nothing checked in).
 */
import type * as crypto from "node:crypto";
import { createCaCertificate } from "./ca.js";
import { generateKeyPair, type KeyType } from "./keys.js";
import type { ParsedCertificate } from "./certificate.js";

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
