import "reflect-metadata";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as x509 from "@peculiar/x509";
import { CertificateTemplate, libraryExtensions, librarySigningAlgorithm, issuerSkiOf, type ExtensionSpec } from "./template.js";
import { makeTestCa } from "./test-helpers.js";
import { generateKeyPair, spkiDer } from "./keys.js";
import { encodeName } from "./name.js";
import { generateSerial } from "./serial.js";
import { encodeGeneralNames, keyIdentifier, parseCertificate, verifyCertificateSignature, certificatePublicKey, certificateSans } from "./certificate.js";
import { webCryptoPrivateKey } from "./webcrypto.js";
import { toArrayBuffer } from "./der.js";

const deviceSpec: ExtensionSpec = {
  basicConstraints: { ca: false },
  keyUsage: ["digitalSignature"],
  extKeyUsage: ["clientAuth"],
  crlDistributionPoints: ["http://127.0.0.1/crl"],
  ocspUrls: ["http://127.0.0.1/ocsp"],
};

async function libraryTbs(spec: ExtensionSpec, ca: Awaited<ReturnType<typeof makeTestCa>>, input: {
  serial: Buffer; notBefore: Date; notAfter: Date; subject: Buffer; spki: Buffer; sans?: Buffer;
}): Promise<Buffer> {
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: input.serial.toString("hex"),
    subject: new x509.Name(toArrayBuffer(input.subject)),
    issuer: new x509.Name(toArrayBuffer(ca.intermediate.subject)),
    notBefore: input.notBefore,
    notAfter: input.notAfter,
    publicKey: new x509.PublicKey(toArrayBuffer(input.spki)),
    signingKey: await webCryptoPrivateKey(ca.intermediateKey),
    signingAlgorithm: librarySigningAlgorithm(ca.intermediateKey),
    extensions: libraryExtensions(spec, issuerSkiOf(ca.intermediate), keyIdentifier(input.spki), input.sans, input.subject.length === 2),
  });
  return Buffer.from(cert.rawData);
}

for (const caType of ["ec-p256", "ec-p384", "rsa-2048"] as const) {
  test(`template TBS equals the library generator's (${caType} CA)`, async () => {
    const ca = await makeTestCa(caType);
    const tpl = await CertificateTemplate.create(deviceSpec, { certificate: ca.intermediate, privateKey: ca.intermediateKey });
    for (const subjectKey of ["ec-p256", "ed25519", "rsa-2048"] as const) {
      const spki = spkiDer(generateKeyPair(subjectKey).publicKey);
      const input = {
        serial: generateSerial(),
        notBefore: new Date("2026-01-02T03:04:05.678Z"),
        notAfter: new Date("2051-06-07T08:09:10Z"), // GeneralizedTime from 2050 on
        subject: encodeName([{ type: "O", value: "Acme" }, { type: "CN", value: "device-é1" }]),
        spki,
        sans: encodeGeneralNames([{ type: "dns", value: "d1.example" }, { type: "ip", value: "::1" }, { type: "uri", value: "imprint://server/x" }]),
      };
      const ours = parseCertificate(await tpl.issue({ ...input, subjectAltNames: input.sans }));
      const lib = parseCertificate(await libraryTbs(deviceSpec, ca, { ...input, notBefore: new Date("2026-01-02T03:04:05Z") }));
      assert.equal(ours.tbs.toString("hex"), lib.tbs.toString("hex"));
      assert.ok(verifyCertificateSignature(ours, certificatePublicKey(ca.intermediate)));
    }
  });
}

test("Ed25519 CA: whole certificate equals the library's (deterministic signatures)", async () => {
  const ca = await makeTestCa("ed25519");
  const spec: ExtensionSpec = { keyUsage: ["digitalSignature"], extKeyUsage: ["clientAuth", "serverAuth"] };
  const tpl = await CertificateTemplate.create(spec, { certificate: ca.intermediate, privateKey: ca.intermediateKey });
  const input = {
    serial: generateSerial({ kind: "int64" }),
    notBefore: new Date("2026-03-01T00:00:00Z"),
    notAfter: new Date("2027-03-01T00:00:00Z"),
    subject: encodeName([{ type: "CN", value: "x" }]),
    spki: spkiDer(generateKeyPair("ec-p256").publicKey),
  };
  const ours = await tpl.issue(input);
  const lib = await libraryTbs(spec, ca, input);
  assert.equal(ours.toString("hex"), lib.toString("hex"));
});

test("empty subject makes the SAN critical, and no SAN slot is written without SANs", async () => {
  const ca = await makeTestCa();
  const tpl = await CertificateTemplate.create(deviceSpec, { certificate: ca.intermediate, privateKey: ca.intermediateKey });
  const spki = spkiDer(generateKeyPair().publicKey);
  const base = { serial: generateSerial(), notBefore: new Date(), notAfter: new Date(Date.now() + 1e9), spki };
  const a = parseCertificate(tpl.issueSync({ ...base, subject: encodeName([]), subjectAltNames: encodeGeneralNames([{ type: "dns", value: "a" }]) }));
  const san = a.extensions.find((e) => e.oid === "2.5.29.17");
  assert.equal(san?.critical, true);
  assert.deepEqual(certificateSans(a), [{ type: "dns", value: "a" }]);
  const b = parseCertificate(tpl.issueSync({ ...base, subject: encodeName([{ type: "CN", value: "b" }]) }));
  assert.equal(b.extensions.some((e) => e.oid === "2.5.29.17"), false);
});
