/**
 * The CSR's public key is imported (and its self-signature verified) once
 * per issuance: a CSR the protocol checked with authority.checkCsr flows into
 * authority.issue as is. Observed by counting node:crypto's createPublicKey
 * calls for the CSR's SubjectPublicKeyInfo (the ESM namespace of a builtin
 * follows its CommonJS exports after syncBuiltinESMExports).
 */
import "reflect-metadata";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { buildCsr, encodeBase64Lines, generateKeyPair, parseCsr, spkiDer, type ParsedCsr } from "@tessera/pki";
import pino from "pino";
import { openAuthority } from "../server.js";
import type { Authority } from "./authority.js";
import type { Store } from "./ports.js";
import { request, tempDir, testConfig } from "../test-support.js";
import { estServer } from "../protocols/est/test-kit.js";

const cjsCrypto = createRequire(import.meta.url)("node:crypto") as typeof import("node:crypto");

/** Runs `fn` counting createPublicKey calls whose input is `spki` (DER), i.e. imports of that key. */
async function countImports<T>(spki: Buffer, fn: () => Promise<T>): Promise<{ result: T; imports: number }> {
  const original = cjsCrypto.createPublicKey;
  let imports = 0;
  cjsCrypto.createPublicKey = ((input: Parameters<typeof original>[0]) => {
    const key = typeof input === "object" && input !== null && "key" in input ? (input as { key: unknown }).key : input;
    if (Buffer.isBuffer(key) && key.equals(spki)) imports++;
    return original(input);
  }) as typeof original;
  syncBuiltinESMExports();
  try {
    return { result: await fn(), imports };
  } finally {
    cjsCrypto.createPublicKey = original;
    syncBuiltinESMExports();
  }
}

let authority: Authority;
let store: Store;
before(async () => {
  const config = await testConfig({ TESSERA_DATA_DIR: tempDir(), TESSERA_LOG_LEVEL: "silent" });
  ({ authority, store } = await openAuthority(config, pino({ level: "silent" }), {}));
});
after(() => store.close());

const operator = { kind: "operator", actor: "test" } as const;

function newCsr(cn: string): { der: Buffer; spki: Buffer } {
  const { privateKey } = generateKeyPair("ec-p256");
  return { der: buildCsr({ subject: [{ type: "CN", value: cn }], privateKey }), spki: spkiDer(privateKey) };
}

test("checkCsr then issue: the key is imported once in all, not again by the pipeline", async () => {
  const { der, spki } = newCsr("once");
  const { result: checked, imports: atCheck } = await countImports(spki, () => authority.checkCsr(der));
  assert.equal(atCheck, 1);
  const { result: issued, imports: atIssue } = await countImports(spki, () => authority.issue({ csr: checked, protocol: "test", credential: operator }));
  assert.equal(atIssue, 0, "issue reused the verified CSR");
  assert.ok(issued.record.keyFingerprint && (await store.getCertificate(issued.record.serial))?.der.equals(issued.der));
  // Bytes in: the pipeline parses and verifies itself, once.
  const { imports: fromBytes } = await countImports(spki, () => authority.issue({ csr: der, protocol: "test", credential: operator }));
  assert.equal(fromBytes, 1);
});

test("a parsed CSR that was never verified is verified again; a bad signature is refused", async () => {
  const { der, spki } = newCsr("unverified");
  const { imports } = await countImports(spki, () => authority.issue({ csr: parseCsr(der), protocol: "test", credential: operator }));
  assert.equal(imports, 2, "parseCsr imported it, then issue verified it from the DER");
  // Flip a bit in the signature: parseCsr accepts it, issue must not.
  const bad = Buffer.from(der);
  bad[bad.length - 5]! ^= 0x01;
  await assert.rejects(authority.issue({ csr: parseCsr(bad), protocol: "test", credential: operator }), { code: "TESSERA_ERR_CSR_SIGNATURE" });
  // A copy of a verified CSR is not verified (it could carry another key).
  const checked = await authority.checkCsr(der);
  const copy: ParsedCsr = { ...checked };
  const again = await countImports(spki, () => authority.issue({ csr: copy, protocol: "test", credential: operator }));
  assert.equal(again.imports, 1);
});

test("a verified CSR is frozen: its key cannot be swapped after the check", async () => {
  const { der } = newCsr("frozen");
  const checked = await authority.checkCsr(der);
  assert.throws(() => {
    (checked as { spki: Buffer }).spki = newCsr("other").spki;
  }, TypeError);
  assert.throws(() => (checked.extensions as unknown[]).push({}), TypeError);
});

test("the issuing profile's key policy still applies to a CSR verified under another", async () => {
  const { privateKey } = generateKeyPair("rsa-2048");
  const der = buildCsr({ subject: [{ type: "CN", value: "rsa" }], privateKey });
  const checked = await authority.checkCsr(der); // default profile "device": RSA 2048 allowed
  const ok = await authority.issue({ csr: checked, protocol: "test", credential: operator });
  assert.equal(ok.record.keyType, "rsa-2048");
  // "imprint" refuses RSA keys: the check under "device" does not carry over.
  await assert.rejects(
    authority.issue({ csr: checked, profile: "imprint", protocol: "test", credential: operator, subject: [{ type: "CN", value: "rsa" }] }),
    { code: "TESSERA_ERR_CSR_WEAK_KEY" },
  );
});

test("EST simpleenroll over HTTPS imports the CSR's key exactly once", async () => {
  const { server, user, password } = await estServer();
  try {
    const auth = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
    const post = (der: Buffer) =>
      request(server, "/.well-known/est/simpleenroll", { method: "POST", headers: { "content-type": "application/pkcs10", authorization: auth }, body: encodeBase64Lines(der) });
    const warm = newCsr("est-warm");
    assert.equal((await post(warm.der)).status, 200); // the first request pays the password check
    for (const cn of ["est-once-1", "est-once-2", "est-once-3"]) {
      const { der, spki } = newCsr(cn);
      const { result, imports } = await countImports(spki, () => post(der));
      assert.equal(result.status, 200, result.text);
      assert.equal(imports, 1, `${cn}: CSR key imports during one enrollment`);
    }
  } finally {
    await server.close(100);
  }
});
