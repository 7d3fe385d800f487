/**
 * Bridges node:crypto KeyObjects to WebCrypto CryptoKeys, which
 * @peculiar/x509's generators require (used off the hot path only).
 */
import * as crypto from "node:crypto";
import { keyInfo } from "./keys.js";

/** Imports a node:crypto private key as a WebCrypto signing key. */
export async function webCryptoPrivateKey(key: crypto.KeyObject): Promise<CryptoKey> {
  const pkcs8 = key.export({ format: "der", type: "pkcs8" });
  const info = keyInfo(key);
  const subtle = crypto.webcrypto.subtle;
  if (info.family === "ec") return subtle.importKey("pkcs8", pkcs8, { name: "ECDSA", namedCurve: info.curve! }, false, ["sign"]) as Promise<CryptoKey>;
  if (info.family === "ed25519") return subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]) as Promise<CryptoKey>;
  return subtle.importKey("pkcs8", pkcs8, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["sign"]) as Promise<CryptoKey>;
}

/** Imports a node:crypto public key as a WebCrypto verification key. */
export async function webCryptoPublicKey(key: crypto.KeyObject): Promise<CryptoKey> {
  const pub = key.type === "private" ? crypto.createPublicKey(key) : key;
  const spki = pub.export({ format: "der", type: "spki" });
  const info = keyInfo(pub);
  const subtle = crypto.webcrypto.subtle;
  if (info.family === "ec") return subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: info.curve! }, true, ["verify"]) as Promise<CryptoKey>;
  if (info.family === "ed25519") return subtle.importKey("spki", spki, { name: "Ed25519" }, true, ["verify"]) as Promise<CryptoKey>;
  return subtle.importKey("spki", spki, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, true, ["verify"]) as Promise<CryptoKey>;
}
