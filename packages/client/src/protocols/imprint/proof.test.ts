import { test } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import { generateKeyPair } from "@tessera/pki";
import { challengeDigest, challengeMessage, signProof, verifyProof } from "./proof.js";
import { ImprintError } from "./errors.js";

const M = challengeMessage("srv_0123456789abcdef0123456789abcdef", "sha256:abc", "CSR-PEM\n");

test("§5 vector: M and D", () => {
  assert.equal(M.toString("utf8"), "srv_0123456789abcdef0123456789abcdef\nsha256:abc\nCSR-PEM\n");
  assert.equal(challengeDigest(M).toString("hex"), "3e9319866d971439ccadf0150979c925c84a87b3be24a69e78fceac364dee0e9");
});

test("ECDSA proof: padded standard base64 of a DER signature over M with SHA-256", () => {
  const { privateKey, publicKey } = generateKeyPair("ec-p256");
  const proof = signProof(privateKey, M);
  assert.match(proof, /^[A-Za-z0-9+/]+={0,2}$/);
  assert.equal(proof.length % 4, 0);
  const sig = Buffer.from(proof, "base64");
  assert.equal(sig[0], 0x30, "DER SEQUENCE, not raw r||s");
  assert.ok(crypto.verify("sha256", M, { key: publicKey, dsaEncoding: "der" }, sig));
  assert.equal(verifyProof(publicKey, M, proof), true);
  assert.equal(verifyProof(publicKey, challengeMessage("srv_0123456789abcdef0123456789abcdef", "sha256:abd", "CSR-PEM\n"), proof), false);
  assert.equal(verifyProof(generateKeyPair("ec-p256").publicKey, M, proof), false);
});

test("Ed25519 proof signs the 32-byte digest D, not M", () => {
  const { privateKey, publicKey } = generateKeyPair("ed25519");
  const proof = signProof(privateKey, M);
  const sig = Buffer.from(proof, "base64");
  assert.equal(sig.length, 64);
  assert.ok(crypto.verify(null, challengeDigest(M), publicKey, sig));
  assert.equal(crypto.verify(null, M, publicKey, sig), false);
  assert.equal(verifyProof(publicKey, M, proof), true);
});

test("other key types are refused with imprint's message", () => {
  const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 1024 });
  assert.throws(
    () => signProof(privateKey, M),
    (e: unknown) => e instanceof ImprintError && e.kind === "unsupported-key" && e.message === "unsupported key type for proof signing: rsa",
  );
  assert.equal(verifyProof(crypto.createPublicKey(privateKey), M, crypto.sign("sha256", M, privateKey).toString("base64")), false);
});

test("verifyProof refuses unpadded, URL-safe, P1363 and malformed proofs", () => {
  const { privateKey, publicKey } = generateKeyPair("ec-p256");
  // Find a signature whose base64 has padding and a '+' or '/', so both variants differ from it.
  let proof = "";
  for (let i = 0; i < 200 && !(proof.endsWith("=") && /[+/]/.test(proof)); i++) proof = signProof(privateKey, M);
  assert.ok(proof.endsWith("=") && /[+/]/.test(proof), "test needs a padded signature with + or /");
  assert.equal(verifyProof(publicKey, M, proof), true);
  assert.equal(verifyProof(publicKey, M, proof.replace(/=+$/, "")), false, "unpadded");
  assert.equal(verifyProof(publicKey, M, proof.replace(/\+/g, "-").replace(/\//g, "_")), false, "URL-safe");
  const p1363 = crypto.sign("sha256", M, { key: privateKey, dsaEncoding: "ieee-p1363" }).toString("base64");
  assert.equal(verifyProof(publicKey, M, p1363), false, "raw r||s");
  for (const bad of ["", " " + proof, proof + "\n", "!!!!", "AAAA"]) assert.equal(verifyProof(publicKey, M, bad), false, JSON.stringify(bad));
});
