/**
 * /cacerts after `tessera ca rollover` (RFC 7030 §4.1.3, est.md §5.2): the
 * bag holds both roots, both cross certificates and the issuing CA, and a
 * client that trusts only the NEW root can still validate a device
 * certificate through OldWithNew.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { buildCsr, decodeBase64Lenient, formatName, generateKeyPair, parseCertificate, pemEncode, readCmsCertificates, type ParsedCertificate } from "@tessera/pki";
import { createRollover } from "../../ca/rollover.js";
import { defaultCaPassphraseFile } from "../../config/defaults.js";
import type { RunningServer } from "../../server.js";
import { startTestServer, tempDir } from "../../test-support.js";
import { rawRequest } from "./test-kit.js";

let server: RunningServer;
let dataDir: string;

before(async () => {
  dataDir = tempDir("tessera-est-rollover-");
  // First start creates the CA; the rollover is made offline; the second start serves it.
  const first = await startTestServer({ TESSERA_DATA_DIR: dataDir });
  await first.server.close(100);
  await createRollover({ dataDir, passphrase: { file: defaultCaPassphraseFile(dataDir) } });
  ({ server } = await startTestServer({ TESSERA_DATA_DIR: dataDir }));
});
after(() => server.close(100));

test("cacerts holds OldWithOld, NewWithNew, OldWithNew, NewWithOld and the issuing CA; the new root alone validates through OldWithNew", async () => {
  const r = await rawRequest(server.url.replace("://localhost", "://127.0.0.1"), { path: "/.well-known/est/cacerts", ca: server.authority.chainPem() });
  assert.equal(r.status, 200);
  const certs = readCmsCertificates(decodeBase64Lenient(r.body)).map((d) => parseCertificate(d));
  assert.equal(certs.length, 5);
  const selfSigned = certs.filter((c) => c.subject.equals(c.issuer));
  assert.equal(selfSigned.length, 2, "two self-signed roots");
  const [older, newer] = [...selfSigned].sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime()) as [ParsedCertificate, ParsedCertificate];
  assert.ok(older.der.equals(server.authority.ca.root.der), "the old root is OldWithOld");
  const crossed = (subject: ParsedCertificate, issuer: ParsedCertificate) => certs.filter((c) => c.subject.equals(subject.subject) && c.issuer.equals(issuer.subject) && c.spki.equals(subject.spki));
  assert.equal(crossed(older, newer).length, 1, "OldWithNew");
  assert.equal(crossed(newer, older).length, 1, "NewWithOld");
  const now = Date.now();
  for (const c of certs) assert.ok(c.notBefore.getTime() <= now && now < c.notAfter.getTime(), `${formatName(c.subject)} is valid now`);

  // A device certificate, validated by OpenSSL from the new root only, with the rest of the bag as untrusted.
  const dir = tempDir("tessera-est-rollover-verify-");
  const csr = buildCsr({ subject: [{ type: "CN", value: "rollover-device" }], privateKey: generateKeyPair("ec-p256").privateKey });
  const device = await server.authority.issue({ csr, protocol: "test", credential: { kind: "operator" } });
  fs.writeFileSync(path.join(dir, "new-root.pem"), pemEncode("CERTIFICATE", newer.der));
  fs.writeFileSync(path.join(dir, "bag.pem"), certs.filter((c) => c !== newer && c !== older).map((c) => pemEncode("CERTIFICATE", c.der)).join(""));
  fs.writeFileSync(path.join(dir, "device.pem"), device.pem);
  const out = execFileSync("openssl", ["verify", "-CAfile", "new-root.pem", "-untrusted", "bag.pem", "device.pem"], { cwd: dir }).toString();
  assert.equal(out.trim(), "device.pem: OK");
});
