import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  exportPrivateKey,
  GENERATABLE_KEY_TYPES,
  generateKeyPair,
  generateKeyPairAsync,
  importPrivateKey,
  keyInfo,
  keysMatch,
  keyTypeName,
  parseKeyType,
  signAsync,
  signatureAlgorithmFor,
  signSync,
  spkiDer,
  type KeyInfo,
  type KeyType,
} from "./keys.js";
import { readChildren, readWhole, Tag, tlvBytes } from "./der.js";
import { pemDecodeFirst } from "./pem.js";
import { webCryptoPrivateKey, webCryptoPublicKey } from "./webcrypto.js";
import { PkiError, type PkiErrorCode } from "./errors.js";

function pkiCode(code: PkiErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, code, `detail: ${err.detail}`);
    return true;
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pki-keys-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, data?: string | Uint8Array) => {
  const p = path.join(dir, name);
  if (data !== undefined) fs.writeFileSync(p, data);
  return p;
};
const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" }).toString();

const EXPECTED_INFO: Record<KeyType, KeyInfo> = {
  "ec-p256": { family: "ec", curve: "P-256", bits: 256 },
  "ec-p384": { family: "ec", curve: "P-384", bits: 384 },
  "ec-p521": { family: "ec", curve: "P-521", bits: 521 },
  "ec-p224": { family: "ec", curve: "P-224", bits: 224 },
  ed25519: { family: "ed25519", bits: 256 },
  "rsa-2048": { family: "rsa", bits: 2048 },
  "rsa-3072": { family: "rsa", bits: 3072 },
  "rsa-4096": { family: "rsa", bits: 4096 },
};

const EXPECTED_SIG: Record<KeyType, { oid: string; hash: string | null; algId: string }> = {
  "ec-p256": { oid: "1.2.840.10045.4.3.2", hash: "sha256", algId: "300a06082a8648ce3d040302" },
  "ec-p384": { oid: "1.2.840.10045.4.3.3", hash: "sha384", algId: "300a06082a8648ce3d040303" },
  "ec-p521": { oid: "1.2.840.10045.4.3.4", hash: "sha512", algId: "300a06082a8648ce3d040304" },
  "ec-p224": { oid: "1.2.840.10045.4.3.2", hash: "sha256", algId: "300a06082a8648ce3d040302" },
  ed25519: { oid: "1.3.101.112", hash: null, algId: "300506032b6570" },
  "rsa-2048": { oid: "1.2.840.113549.1.1.11", hash: "sha256", algId: "300d06092a864886f70d01010b0500" },
  "rsa-3072": { oid: "1.2.840.113549.1.1.11", hash: "sha256", algId: "300d06092a864886f70d01010b0500" },
  "rsa-4096": { oid: "1.2.840.113549.1.1.11", hash: "sha256", algId: "300d06092a864886f70d01010b0500" },
};

// Generated once: RSA 3072/4096 are slow.
const keys = new Map<KeyType, { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject }>();
async function keyOf(type: KeyType) {
  let k = keys.get(type);
  if (!k) {
    k = type === "rsa-4096" ? await generateKeyPairAsync(type) : generateKeyPair(type);
    keys.set(type, k);
  }
  return k;
}

test("GENERATABLE_KEY_TYPES lists every key type", () => {
  assert.deepEqual([...GENERATABLE_KEY_TYPES].sort(), Object.keys(EXPECTED_INFO).sort());
});

for (const type of GENERATABLE_KEY_TYPES) {
  test(`generate ${type}: keyInfo, keyTypeName, spkiDer, keysMatch, signatureAlgorithmFor, sign`, async () => {
    const { privateKey, publicKey } = await keyOf(type);
    assert.equal(privateKey.type, "private");
    assert.equal(publicKey.type, "public");
    assert.deepEqual(keyInfo(privateKey), EXPECTED_INFO[type]);
    assert.deepEqual(keyInfo(publicKey), EXPECTED_INFO[type]);
    assert.equal(keyTypeName(keyInfo(publicKey)), type);
    assert.equal(parseKeyType(type), type);

    const spki = spkiDer(privateKey);
    assert.ok(spki.equals(spkiDer(publicKey)));
    assert.ok(spki.equals(publicKey.export({ format: "der", type: "spki" })));
    assert.equal(keysMatch(privateKey, publicKey), true);

    const alg = signatureAlgorithmFor(privateKey);
    const want = EXPECTED_SIG[type];
    assert.equal(alg.oid, want.oid);
    assert.equal(alg.hash, want.hash);
    assert.equal(alg.algorithmIdentifier.toString("hex"), want.algId);
    assert.deepEqual(signatureAlgorithmFor(publicKey), alg);

    const data = Buffer.from(`message for ${type}`);
    const s1 = signSync(alg, data, privateKey);
    const s2 = await signAsync(alg, data, privateKey);
    assert.equal(crypto.verify(alg.hash, data, publicKey, s1), true);
    assert.equal(crypto.verify(alg.hash, data, publicKey, s2), true);
    assert.equal(crypto.verify(alg.hash, Buffer.from("other"), publicKey, s1), false);
  });
}

test("keysMatch is false for halves of different pairs (and across families)", async () => {
  const a = await keyOf("ec-p256");
  const b = generateKeyPair("ec-p256");
  assert.equal(keysMatch(a.privateKey, b.publicKey), false);
  assert.equal(keysMatch((await keyOf("ed25519")).privateKey, a.publicKey), false);
});

test("generateKeyPairAsync makes EC and Ed25519 keys; unknown types are refused", async () => {
  const ec = await generateKeyPairAsync();
  assert.deepEqual(keyInfo(ec.publicKey), EXPECTED_INFO["ec-p256"]);
  assert.equal(keysMatch(ec.privateKey, ec.publicKey), true);
  const ed = await generateKeyPairAsync("ed25519");
  assert.deepEqual(keyInfo(ed.privateKey), EXPECTED_INFO.ed25519);
  assert.deepEqual(keyInfo(generateKeyPair().publicKey), EXPECTED_INFO["ec-p256"], "default is EC P-256");
  await assert.rejects(generateKeyPairAsync("dsa-2048" as KeyType), pkiCode("TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM"));
  assert.throws(() => generateKeyPair("rsa-1024" as KeyType), pkiCode("TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM"));
});

test("parseKeyType aliases", () => {
  const cases: [string, KeyType][] = [
    ["P-256", "ec-p256"], ["p256", "ec-p256"], ["EC", "ec-p256"], ["ecdsa", "ec-p256"], ["prime256v1", "ec-p256"], [" ec_p256 ", "ec-p256"],
    ["P-384", "ec-p384"], ["secp384r1", "ec-p384"], ["P521", "ec-p521"], ["p-224", "ec-p224"],
    ["Ed25519", "ed25519"], ["RSA", "rsa-2048"], ["RSA_3072", "rsa-3072"], ["rsa-4096", "rsa-4096"],
  ];
  for (const [name, want] of cases) assert.equal(parseKeyType(name), want, name);
  for (const bad of ["", "rsa-1024", "x25519", "dsa", "secp256k1"]) {
    assert.throws(() => parseKeyType(bad), pkiCode("TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM"), bad);
  }
});

test("keyInfo refuses keys Tessera does not handle", () => {
  for (const k of [
    crypto.generateKeyPairSync("ec", { namedCurve: "secp256k1" }).publicKey,
    crypto.generateKeyPairSync("x25519").publicKey,
    crypto.generateKeyPairSync("ed448").privateKey,
  ]) {
    assert.throws(() => keyInfo(k), pkiCode("TESSERA_ERR_PKI_UNSUPPORTED_ALGORITHM"));
  }
});

test("keyTypeName formats", () => {
  assert.equal(keyTypeName({ family: "ec", curve: "P-521", bits: 521 }), "ec-p521");
  assert.equal(keyTypeName({ family: "rsa", bits: 1024 }), "rsa-1024");
  assert.equal(keyTypeName({ family: "ed25519", bits: 256 }), "ed25519");
});

test("signatureAlgorithmFor matches the AlgorithmIdentifier OpenSSL writes for the same key", async () => {
  const mdFor: Partial<Record<KeyType, string[]>> = { "ec-p256": ["-sha256"], "ec-p384": ["-sha384"], "ec-p521": ["-sha512"], ed25519: [], "rsa-2048": ["-sha256"] };
  for (const [type, md] of Object.entries(mdFor) as [KeyType, string[]][]) {
    const { privateKey } = await keyOf(type);
    file(`${type}.pem`, exportPrivateKey(privateKey));
    openssl("req", "-x509", "-new", "-key", `${type}.pem`, "-subj", "/CN=alg", "-days", "1", ...md, "-outform", "DER", "-out", `${type}.crt`);
    const der = fs.readFileSync(file(`${type}.crt`));
    const [, algT] = readChildren(der, readWhole(der, Tag.SEQUENCE));
    assert.equal(Buffer.from(tlvBytes(der, algT!)).toString("hex"), signatureAlgorithmFor(privateKey).algorithmIdentifier.toString("hex"), type);
  }
});

test("exportPrivateKey without a passphrase is plain PKCS#8 and imports back (PEM string, PEM bytes, DER)", async () => {
  for (const type of ["ec-p256", "ed25519", "rsa-2048"] as const) {
    const { privateKey, publicKey } = await keyOf(type);
    const pem = exportPrivateKey(privateKey);
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.ok(pem.endsWith("-----END PRIVATE KEY-----\n"));
    assert.equal(keysMatch(importPrivateKey(pem), publicKey), true);
    assert.equal(keysMatch(importPrivateKey(Buffer.from(pem)), publicKey), true);
    const der = pemDecodeFirst(pem, "PRIVATE KEY").der;
    assert.equal(keysMatch(importPrivateKey(der), publicKey), true);
    assert.equal(keysMatch(importPrivateKey(new Uint8Array(der)), publicKey), true);
  }
});

test("importPrivateKey reads SEC1 and PKCS#1 PEM", async () => {
  const ec = await keyOf("ec-p384");
  const sec1 = ec.privateKey.export({ format: "pem", type: "sec1" }) as string;
  assert.match(sec1, /BEGIN EC PRIVATE KEY/);
  assert.equal(keysMatch(importPrivateKey(sec1), ec.publicKey), true);
  const rsa = await keyOf("rsa-2048");
  const pkcs1 = rsa.privateKey.export({ format: "pem", type: "pkcs1" }) as string;
  assert.match(pkcs1, /BEGIN RSA PRIVATE KEY/);
  assert.equal(keysMatch(importPrivateKey(pkcs1), rsa.publicKey), true);
});

test("importPrivateKey rejects garbage with TESSERA_ERR_PKI_MALFORMED_PEM", () => {
  const bad = pkiCode("TESSERA_ERR_PKI_MALFORMED_PEM");
  assert.throws(() => importPrivateKey("not a key"), bad);
  assert.throws(() => importPrivateKey("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), bad);
  assert.throws(() => importPrivateKey(crypto.randomBytes(64)), bad);
  assert.throws(() => importPrivateKey(Buffer.from("300302010a", "hex")), bad);
});

test("encrypted export: right passphrase imports, wrong or missing passphrase is TESSERA_ERR_PKI_BAD_PASSPHRASE", async () => {
  const badPass = pkiCode("TESSERA_ERR_PKI_BAD_PASSPHRASE");
  for (const type of ["ec-p256", "ed25519", "rsa-2048"] as const) {
    const { privateKey, publicKey } = await keyOf(type);
    const pem = exportPrivateKey(privateKey, "correct horse");
    assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    assert.ok(!pem.includes(exportPrivateKey(privateKey).split("\n")[1]!), "body is not the plaintext key");
    assert.equal(keysMatch(importPrivateKey(pem, "correct horse"), publicKey), true);
    assert.equal(keysMatch(importPrivateKey(Buffer.from(pem), "correct horse"), publicKey), true);
    assert.throws(() => importPrivateKey(pem, "battery staple"), badPass);
    assert.throws(() => importPrivateKey(pem, ""), badPass);
    assert.throws(() => importPrivateKey(pem), badPass);
    // DER EncryptedPrivateKeyInfo too
    const der = pemDecodeFirst(pem, "ENCRYPTED PRIVATE KEY").der;
    assert.equal(keysMatch(importPrivateKey(der, "correct horse"), publicKey), true);
    assert.throws(() => importPrivateKey(der, "wrong"), badPass);
  }
});

test("a wrong passphrase is always BAD_PASSPHRASE, even when the CBC padding happens to check out", async () => {
  // About 1 wrong passphrase in 256 yields valid padding; the garbage then fails to decode.
  const { privateKey } = await keyOf("ec-p256");
  const pem = exportPrivateKey(privateKey, "right");
  const der = pemDecodeFirst(pem).der;
  const codes = new Map<string, number>();
  for (let i = 0; i < 800; i++) {
    try {
      importPrivateKey(i % 2 ? pem : der, `wrong-${i}`);
      codes.set("imported", (codes.get("imported") ?? 0) + 1);
    } catch (err) {
      const code = err instanceof PkiError ? err.code : String(err);
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
  }
  assert.deepEqual([...codes], [["TESSERA_ERR_PKI_BAD_PASSPHRASE", 800]]);
});

test("OpenSSL reads our encrypted PKCS#8 (PBES2, AES-256-CBC) and we read OpenSSL's", async () => {
  for (const type of ["ec-p256", "ed25519", "rsa-2048"] as const) {
    const { privateKey, publicKey } = await keyOf(type);
    file(`enc-${type}.pem`, exportPrivateKey(privateKey, "s3cret pass"));
    openssl("pkey", "-passin", "pass:s3cret pass", "-in", `enc-${type}.pem`, "-noout");
    const pub = openssl("pkey", "-passin", "pass:s3cret pass", "-in", `enc-${type}.pem`, "-pubout");
    assert.equal(pub, publicKey.export({ format: "pem", type: "spki" }));
    assert.throws(() => openssl("pkey", "-passin", "pass:nope", "-in", `enc-${type}.pem`, "-noout"));
  }
  const parsed = openssl("asn1parse", "-in", "enc-ec-p256.pem");
  assert.match(parsed, /:PBES2/);
  assert.match(parsed, /:PBKDF2/);
  assert.match(parsed, /:aes-256-cbc/);

  openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes-256-cbc", "-pass", "pass:pw", "-out", "ossl-enc.pem");
  const osslPem = fs.readFileSync(file("ossl-enc.pem"), "utf8");
  const imported = importPrivateKey(osslPem, "pw");
  assert.deepEqual(keyInfo(imported), EXPECTED_INFO["ec-p256"]);
  assert.throws(() => importPrivateKey(osslPem, "px"), pkiCode("TESSERA_ERR_PKI_BAD_PASSPHRASE"));

  // legacy "Proc-Type: 4,ENCRYPTED" SEC1 PEM
  openssl("ec", "-in", "ossl-enc.pem", "-passin", "pass:pw", "-aes256", "-passout", "pass:legacy", "-out", "legacy.pem");
  const legacy = fs.readFileSync(file("legacy.pem"), "utf8");
  assert.match(legacy, /Proc-Type: 4,ENCRYPTED/);
  assert.equal(keysMatch(importPrivateKey(legacy, "legacy"), imported), true);
  assert.throws(() => importPrivateKey(legacy, "wrong"), pkiCode("TESSERA_ERR_PKI_BAD_PASSPHRASE"));
});

test("webCryptoPrivateKey/webCryptoPublicKey bridge each family", async () => {
  const subtle = crypto.webcrypto.subtle;
  const params: Record<string, AlgorithmIdentifier | EcdsaParams> = {
    "ec-p256": { name: "ECDSA", hash: "SHA-256" } as EcdsaParams,
    "ec-p384": { name: "ECDSA", hash: "SHA-384" } as EcdsaParams,
    ed25519: { name: "Ed25519" },
    "rsa-2048": { name: "RSASSA-PKCS1-v1_5" },
  };
  const data = Buffer.from("bridge");
  for (const [type, alg] of Object.entries(params) as [KeyType, AlgorithmIdentifier][]) {
    const { privateKey, publicKey } = await keyOf(type);
    const sig = await subtle.sign(alg, await webCryptoPrivateKey(privateKey), data);
    assert.equal(await subtle.verify(alg, await webCryptoPublicKey(publicKey), sig, data), true, type);
    assert.equal(await subtle.verify(alg, await webCryptoPublicKey(privateKey), sig, data), true, type);
  }
});
