import "reflect-metadata";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import pino from "pino";
import {
  basicConstraints, certificatePublicKey, createCaCertificate, decodeName, formatName, generateKeyPairAsync, keyInfo, keyTypeName,
  parseCertificate, pemEncode, subjectKeyIdentifier, verifyCertificateSignature, type ParsedCertificate,
} from "@tessera/pki";
import { TesseraError } from "../errors.js";
import { openAuthority } from "../server.js";
import { tempDir, testConfig } from "../test-support.js";
import { caPaths, importCa, initCa, loadCa, type PassphraseSource } from "./ca-files.js";
import { createRollover, nextGenerationName } from "./rollover.js";

const SHA2_SIGNATURES = new Set([
  "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4", // ecdsa-with-SHA256/384/512
  "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13", // sha256/384/512WithRSAEncryption
]);

async function freshCa(keyType = "ec-p256"): Promise<{ dataDir: string; passphrase: PassphraseSource }> {
  const dataDir = path.join(tempDir(), "data");
  const passphrase = { file: path.join(dataDir, "ca-passphrase") };
  await initCa({ dataDir, passphrase, keyType, name: "Tessera", organization: "Tessera" });
  return { dataDir, passphrase };
}

function openssl(cwd: string, ...args: string[]): { ok: boolean; out: string } {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function isSelfSigned(c: ParsedCertificate): boolean {
  return c.subject.equals(c.issuer) && verifyCertificateSignature(c, certificatePublicKey(c));
}

/**
 * Sorts a /cacerts bag the way the Go estclient does (est.md §5.2): the
 * self-signed cert with the later notAfter is the trust anchor, the other
 * self-signed one OldWithOld; new key signed by old = NewWithOld, old key
 * signed by new = OldWithNew; the rest is chain.
 */
function classify(bag: ParsedCertificate[]) {
  const roots = bag.filter(isSelfSigned).sort((a, b) => b.notAfter.getTime() - a.notAfter.getTime());
  assert.equal(roots.length, 2, "two self-signed roots during a rollover");
  const [ta, oldWithOld] = roots as [ParsedCertificate, ParsedCertificate];
  assert.ok(ta.notAfter > oldWithOld.notAfter, "the trust anchor's notAfter is strictly later");
  const rest = bag.filter((c) => !roots.includes(c));
  const signedBy = (c: ParsedCertificate, by: ParsedCertificate) => c.issuer.equals(by.subject) && verifyCertificateSignature(c, certificatePublicKey(by));
  const newWithOld = rest.filter((c) => c.spki.equals(ta.spki) && signedBy(c, oldWithOld));
  const oldWithNew = rest.filter((c) => c.spki.equals(oldWithOld.spki) && signedBy(c, ta));
  const chain = rest.filter((c) => !newWithOld.includes(c) && !oldWithNew.includes(c));
  return { ta, oldWithOld, newWithOld, oldWithNew, chain };
}

test("createRollover: the four RFC 4210 §4.4 certificates classify as EST clients expect and verify with OpenSSL", async () => {
  const { dataDir, passphrase } = await freshCa();
  const before = loadCa(dataDir, passphrase);
  assert.equal(before.rollover, undefined);
  const { rollover, paths } = await createRollover({ dataDir, passphrase });
  const p = caPaths(dataDir);

  // Files: present, 0600, key encrypted with the CA passphrase.
  for (const f of [paths.newRoot, paths.newRootKey, paths.oldWithNew, paths.newWithOld]) {
    assert.equal(fs.statSync(f).mode & 0o777, 0o600, f);
  }
  assert.match(fs.readFileSync(paths.newRootKey, "utf8"), /BEGIN ENCRYPTED PRIVATE KEY/);
  assert.deepEqual(fs.readdirSync(p.dir).filter((n) => n.startsWith(".rollover")), [], "no temp directory left");

  // Names, keys, extensions.
  const { newRoot, oldWithNew, newWithOld } = rollover;
  const root = before.root;
  assert.equal(formatName(newRoot.subject), "CN=Tessera Root CA G2,O=Tessera");
  assert.ok(oldWithNew.subject.equals(root.subject) && oldWithNew.spki.equals(root.spki) && oldWithNew.issuer.equals(newRoot.subject));
  assert.ok(newWithOld.subject.equals(newRoot.subject) && newWithOld.spki.equals(newRoot.spki) && newWithOld.issuer.equals(root.subject));
  for (const c of [newRoot, oldWithNew, newWithOld]) {
    assert.equal(basicConstraints(c)?.ca, true);
    assert.ok(SHA2_SIGNATURES.has(c.signatureOid), `${formatName(c.subject)} signed with ${c.signatureOid}`);
    assert.ok(c.notBefore.getTime() <= Date.now() && c.notAfter.getTime() > Date.now(), "valid now");
    assert.ok(subjectKeyIdentifier(c)?.equals(subjectKeyIdentifier(c.spki.equals(root.spki) ? root : newRoot)!), "SKI follows the key");
  }
  assert.ok(oldWithNew.notAfter <= root.notAfter && newWithOld.notAfter <= root.notAfter, "cross certificates never outlive the old root");
  assert.ok(newRoot.notAfter.getTime() - newRoot.notBefore.getTime() >= 10 * 365 * 86_400_000, "new root: 10 years");
  assert.equal(keyTypeName(keyInfo(certificatePublicKey(newRoot))), "ec-p256", "same key type as the old root by default");

  // loadCa picks the set up; the authority's /cacerts bag has 5 certificates that classify per est.md §5.2.
  const after = loadCa(dataDir, passphrase);
  assert.ok(after.rollover?.newRoot.der.equals(newRoot.der));
  const config = await testConfig({ TESSERA_DATA_DIR: dataDir, TESSERA_CA_PASSPHRASE_FILE: passphrase.file, TESSERA_LOG_LEVEL: "silent" });
  const { authority, store } = await openAuthority(config, pino({ level: "silent" }), {});
  let bagDer: Buffer[];
  try {
    bagDer = authority.caCertificates();
  } finally {
    await store.close();
  }
  assert.equal(bagDer.length, 5);
  const bag = bagDer.map((d) => parseCertificate(d));
  const k = classify(bag);
  assert.ok(k.ta.der.equals(newRoot.der), "trust anchor = NewWithNew");
  assert.ok(k.oldWithOld.der.equals(root.der), "OldWithOld = the current root");
  assert.equal(k.newWithOld.length, 1);
  assert.ok(k.newWithOld[0]!.der.equals(newWithOld.der));
  assert.equal(k.oldWithNew.length, 1);
  assert.ok(k.oldWithNew[0]!.der.equals(oldWithNew.der));
  assert.equal(k.chain.length, 1);
  assert.ok(k.chain[0]!.der.equals(before.issuer.certificate.der));
  for (const c of bag) {
    assert.ok(SHA2_SIGNATURES.has(c.signatureOid), `${formatName(c.subject)}: SHA-2`);
    assert.ok(c.notAfter.getTime() > Date.now() && c.notBefore.getTime() <= Date.now(), `${formatName(c.subject)}: not expired`);
  }

  // OpenSSL: the issuing CA verifies against the NEW root alone through OldWithNew; NewWithOld under the old root.
  const v1 = openssl(p.dir, "verify", "-CAfile", "rollover/new-root.pem", "-untrusted", "rollover/old-with-new.pem", "intermediate.pem");
  assert.ok(v1.ok, v1.out);
  assert.match(v1.out, /intermediate\.pem: OK/);
  const v2 = openssl(p.dir, "verify", "-CAfile", "root.pem", "rollover/new-with-old.pem");
  assert.ok(v2.ok, v2.out);
  // And without the cross certificate the new root alone is not enough (the test is not vacuous).
  assert.equal(openssl(p.dir, "verify", "-CAfile", "rollover/new-root.pem", "intermediate.pem").ok, false);
  // libest-style: every cert of the bag verifies to a self-signed one in the bag.
  const bagFile = path.join(p.dir, "bag.pem");
  fs.writeFileSync(bagFile, bag.map((c) => pemEncode("CERTIFICATE", c.der)).join(""));
  const rootsFile = path.join(p.dir, "bag-roots.pem");
  fs.writeFileSync(rootsFile, [k.ta, k.oldWithOld].map((c) => pemEncode("CERTIFICATE", c.der)).join(""));
  for (const [i, c] of bag.entries()) {
    const f = path.join(p.dir, `bag-${i}.pem`);
    fs.writeFileSync(f, pemEncode("CERTIFICATE", c.der));
    const r = openssl(p.dir, "verify", "-x509_strict", "-CAfile", rootsFile, "-untrusted", bagFile, f);
    assert.ok(r.ok, `${formatName(c.subject)}: ${r.out}`);
  }
});

test("createRollover: a second rollover is refused and changes nothing", async () => {
  const { dataDir, passphrase } = await freshCa();
  const first = await createRollover({ dataDir, passphrase });
  const pem = fs.readFileSync(first.paths.newRoot, "utf8");
  await assert.rejects(createRollover({ dataDir, passphrase }), (err: unknown) => {
    assert.ok(err instanceof TesseraError);
    assert.equal(err.code, "TESSERA_ERR_CA_ROLLOVER");
    assert.match(err.message, /already exists/);
    return true;
  });
  assert.equal(fs.readFileSync(first.paths.newRoot, "utf8"), pem);
});

test("createRollover: an imported CA without the root key is refused clearly", async () => {
  const src = await freshCa();
  const srcPaths = caPaths(src.dataDir);
  const issuerKeyPem = fs.readFileSync(srcPaths.issuerKey, "utf8");
  const dataDir = path.join(tempDir(), "data");
  const passphrase = { file: path.join(dataDir, "ca-passphrase") };
  await importCa({
    dataDir,
    passphrase,
    certificatePem: fs.readFileSync(srcPaths.chain, "utf8"),
    keyPem: issuerKeyPem,
    keyPassphrase: fs.readFileSync(src.passphrase.file, "utf8").trim(),
  });
  await assert.rejects(createRollover({ dataDir, passphrase }), (err: unknown) => {
    assert.ok(err instanceof TesseraError);
    assert.equal(err.code, "TESSERA_ERR_CA_ROLLOVER");
    assert.match(err.message, /root CA's private key is not available/);
    return true;
  });
  assert.equal(fs.existsSync(caPaths(dataDir).rollover.dir), false);
});

test("createRollover: an imported CA that is its own root (liteboot's) rolls over with its one key", async () => {
  const keys = await generateKeyPairAsync("ec-p256");
  const now = Date.now();
  const root = await createCaCertificate({
    subject: [{ type: "O", value: "Linaro, LTD" }, { type: "CN", value: "LRC - 20220520043806" }], publicKey: keys.publicKey, privateKey: keys.privateKey,
    notBefore: new Date(now - 86_400_000), notAfter: new Date(now + 365 * 86_400_000),
  });
  const dataDir = path.join(tempDir(), "data");
  const passphrase = { file: path.join(dataDir, "ca-passphrase") };
  await importCa({ dataDir, passphrase, certificatePem: pemEncode("CERTIFICATE", root.der), keyPem: keys.privateKey.export({ type: "sec1", format: "pem" }) as string });
  const { rollover } = await createRollover({ dataDir, passphrase });
  assert.ok(verifyCertificateSignature(rollover.newWithOld, certificatePublicKey(root)), "NewWithOld signed with the imported CA's key");
  assert.ok(rollover.oldWithNew.spki.equals(root.spki));
  assert.equal(loadCa(dataDir, passphrase).rollover?.newRoot.der.equals(rollover.newRoot.der), true);
});

test("createRollover: --key-type picks the new root's key type; a wrong passphrase is a key error", async () => {
  const { dataDir, passphrase } = await freshCa();
  await assert.rejects(createRollover({ dataDir, passphrase: { env: "wrong", file: passphrase.file } }), (err: unknown) => err instanceof TesseraError && err.code === "TESSERA_ERR_CA_KEY");
  const { rollover } = await createRollover({ dataDir, passphrase, keyType: "ec-p384" });
  assert.equal(keyTypeName(keyInfo(certificatePublicKey(rollover.newRoot))), "ec-p384");
  assert.equal(rollover.newRoot.signatureOid, "1.2.840.10045.4.3.3", "self-signed with ecdsa-with-SHA384");
  assert.equal(rollover.newWithOld.signatureOid, "1.2.840.10045.4.3.2", "cross-signed by the P-256 old root");
});

test("loadCa: a partial or forged rollover set is an error, not ignored", async () => {
  const { dataDir, passphrase } = await freshCa();
  const { paths, rollover } = await createRollover({ dataDir, passphrase });
  const saved = fs.readFileSync(paths.newWithOld);
  fs.rmSync(paths.newWithOld);
  assert.throws(() => loadCa(dataDir, passphrase), (err: unknown) => err instanceof TesseraError && err.code === "TESSERA_ERR_CA_KEY" && /new-with-old\.pem/.test(err.detail ?? ""));
  // A NewWithOld signed by some other key (same names, same public key) must not pass.
  const stranger = await generateKeyPairAsync("ec-p256");
  const rootSubject = parseCertificate(fs.readFileSync(caPaths(dataDir).root, "utf8")).subject;
  const fakeIssuer = await createCaCertificate({ subject: rootSubject, publicKey: stranger.publicKey, privateKey: stranger.privateKey, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000) });
  const forged = await createCaCertificate({ subject: rollover.newRoot.subject, publicKey: certificatePublicKey(rollover.newRoot), notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000), issuer: { certificate: fakeIssuer, privateKey: stranger.privateKey } });
  fs.writeFileSync(paths.newWithOld, pemEncode("CERTIFICATE", forged.der), { mode: 0o600 });
  assert.throws(() => loadCa(dataDir, passphrase), (err: unknown) => err instanceof TesseraError && /not signed by the current root/.test(err.detail ?? ""));
  fs.writeFileSync(paths.newWithOld, saved);
  assert.ok(loadCa(dataDir, passphrase).rollover);
});

test("nextGenerationName: adds or bumps a generation suffix on the last CN", () => {
  const cn = (der: Buffer) => decodeName(der).find((a) => a.type === "CN")?.value;
  assert.equal(cn(nextGenerationName([{ type: "O", value: "Acme" }, { type: "CN", value: "Tessera Root CA" }])), "Tessera Root CA G2");
  assert.equal(cn(nextGenerationName([{ type: "CN", value: "Tessera Root CA G2" }])), "Tessera Root CA G3");
  assert.equal(cn(nextGenerationName([{ type: "CN", value: "Root G9" }])), "Root G10");
  assert.equal(cn(nextGenerationName([{ type: "O", value: "Acme" }])), "Root CA G2");
});
