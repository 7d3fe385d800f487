/**
 * simplereenroll (RFC 7030 §4.2.2, est.md checklist 18): the current
 * certificate over mTLS renews itself with the same subject and SANs, with
 * the same key or a new one; only the newest certificate of a device renews;
 * anything else is refused with EST's status and nothing is stored.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import type { KeyObject } from "node:crypto";
import { after, before, test } from "node:test";
import {
  buildCsr, certificateSans, encodeBase64Lines, encodeGeneralNames, ExtOid, formatSan, generateKeyPair, parseCertificate, pemEncode,
  readCmsCertificates, decodeBase64Lenient, type ParsedCertificate, type SubjectAltName,
} from "@tessera/pki";
import { issueTestLeaf, makeTestCa } from "../../../../pki/src/test-helpers.js";
import type { RunningServer } from "../../server.js";
import type { TestClock } from "../../test-support.js";
import { estServer, rawRequest, type RawResponse } from "./test-kit.js";

let server: RunningServer;
let clock: TestClock;
let base: string;
let ca: string;
const AUTH = { Authorization: "Basic " + Buffer.from("alice:s3cret-pass").toString("base64") };

before(async () => {
  ({ server, clock, base } = await estServer((c) => {
    c.est.labels["other"] = { ...c.est.default };
  }));
  ca = server.authority.chainPem();
});
after(() => server.close(100));

interface Identity {
  cert: ParsedCertificate;
  certPem: string;
  key: KeyObject;
  keyPem: string;
}

function csr(key: KeyObject, cn: string, sans: SubjectAltName[] = [], extra: Parameters<typeof buildCsr>[0]["extensions"] = []): string {
  const extensions = [...(sans.length ? [{ oid: ExtOid.subjectAltName, critical: false, value: encodeGeneralNames(sans) }] : []), ...(extra ?? [])];
  return encodeBase64Lines(buildCsr({ subject: cn ? [{ type: "CN", value: cn }] : [], privateKey: key, extensions }));
}

function post(op: string, body: string, opts: { as?: Identity; headers?: Record<string, string>; label?: string } = {}): Promise<RawResponse> {
  return rawRequest(base, {
    method: "POST",
    path: `/.well-known/est/${opts.label ? opts.label + "/" : ""}${op}`,
    ca,
    body,
    headers: { "Content-Type": "application/pkcs10", ...opts.headers },
    cert: opts.as?.certPem,
    key: opts.as?.keyPem,
  });
}

function issued(r: RawResponse, key: KeyObject): Identity {
  assert.equal(r.status, 200, `${r.statusLine} ${r.body}`);
  const certs = readCmsCertificates(decodeBase64Lenient(r.body));
  assert.equal(certs.length, 1);
  const cert = parseCertificate(certs[0]!);
  return { cert, certPem: pemEncode("CERTIFICATE", cert.der), key, keyPem: key.export({ type: "pkcs8", format: "pem" }) as string };
}

async function enroll(cn: string, sans: SubjectAltName[] = [], label?: string): Promise<Identity> {
  const { privateKey } = generateKeyPair("ec-p256");
  return issued(await post("simpleenroll", csr(privateKey, cn, sans), { headers: AUTH, label }), privateKey);
}

const status = async (id: Identity) => (await server.authority.getCertificate(id.cert.serialHex))?.status;

test("renew with the same key, then rekey: new serials, same subject and SANs, the old certificates superseded", async () => {
  const sans: SubjectAltName[] = [{ type: "dns", value: "dev-1.example" }, { type: "ip", value: "10.0.0.7" }];
  const first = await enroll("dev-1", sans);
  const second = issued(await post("simplereenroll", csr(first.key, "dev-1", [...sans].reverse()), { as: first }), first.key);
  assert.notEqual(second.cert.serialHex, first.cert.serialHex);
  assert.ok(second.cert.spki.equals(first.cert.spki), "same key");
  assert.ok(second.cert.subject.equals(first.cert.subject));
  assert.deepEqual(certificateSans(second.cert).map(formatSan).sort(), certificateSans(first.cert).map(formatSan).sort());
  const { privateKey: newKey } = generateKeyPair("ec-p384");
  const third = issued(await post("simplereenroll", csr(newKey, "dev-1", sans), { as: second }), newKey);
  assert.ok(!third.cert.spki.equals(second.cert.spki), "rekeyed");
  assert.deepEqual([await status(first), await status(second), await status(third)], ["superseded", "superseded", "valid"]);
  const devices = await server.authority.devices.list();
  const device = devices.find((d) => d.currentSerial === third.cert.serialHex);
  assert.ok(device, "one device whose current certificate is the newest");
  assert.equal(device.protocol, "est");
});

test("a CSR like libest's (the old certificate's key and every extension it carries) renews; the extra extensions are not copied", async () => {
  const first = await enroll("libest-like", [{ type: "dns", value: "le.example" }]);
  // libest: X509_to_X509_REQ of the current certificate plus all its extensions (AKI, SKI, basicConstraints, KU, EKU, SAN).
  // An extension outside the profile (here a private OID) must not reach the new certificate.
  const copied = [...first.cert.extensions.map((e) => ({ oid: e.oid, critical: e.critical, value: e.value })), { oid: "1.3.6.1.4.1.99999.1", critical: false, value: Buffer.from("0c0378797a", "hex") }];
  const body = encodeBase64Lines(buildCsr({ subject: first.cert.subject, privateKey: first.key, extensions: copied }));
  const next = issued(await post("simplereenroll", body, { as: first }), first.key);
  assert.deepEqual(next.cert.extensions.map((e) => e.oid).sort(), first.cert.extensions.map((e) => e.oid).sort(), "the profile's extensions, not the CSR's");
  assert.ok(!next.cert.extensions.some((e) => e.oid === "1.3.6.1.4.1.99999.1"));
});

test("refusals: no certificate 403, other subject or SANs 400, an older certificate of the lineage 403 — nothing stored", async () => {
  const first = await enroll("dev-2", [{ type: "dns", value: "dev-2.example" }]);
  const before = (await server.authority.listCertificates()).length;
  const cases: Array<[string, Promise<RawResponse>, number]> = [
    ["no client certificate", post("simplereenroll", csr(first.key, "dev-2", [{ type: "dns", value: "dev-2.example" }]), { headers: AUTH }), 403],
    ["other subject", post("simplereenroll", csr(first.key, "dev-2-other", [{ type: "dns", value: "dev-2.example" }]), { as: first }), 400],
    ["other SAN", post("simplereenroll", csr(first.key, "dev-2", [{ type: "dns", value: "evil.example" }]), { as: first }), 400],
    ["SAN dropped", post("simplereenroll", csr(first.key, "dev-2"), { as: first }), 400],
    ["another label", post("simplereenroll", csr(first.key, "dev-2", [{ type: "dns", value: "dev-2.example" }]), { as: first, label: "other" }), 403],
  ];
  for (const [name, pending, want] of cases) {
    const r = await pending;
    assert.equal(r.status, want, `${name}: ${r.body}`);
    assert.match(r.body.toString(), /\S/, `${name} explains itself`);
  }
  assert.equal((await server.authority.listCertificates()).length, before, "nothing stored by a refusal");
  const second = issued(await post("simplereenroll", csr(first.key, "dev-2", [{ type: "dns", value: "dev-2.example" }]), { as: first }), first.key);
  const stale = await post("simplereenroll", csr(first.key, "dev-2", [{ type: "dns", value: "dev-2.example" }]), { as: first });
  assert.equal(stale.status, 403, "only the newest certificate renews");
  assert.equal(await status(second), "valid");
});

test("revoked, expired, foreign-CA and non-EST certificates cannot re-enroll", async () => {
  const revoked = await enroll("dev-3");
  await server.authority.revoke(revoked.cert.serialHex, "keyCompromise", "test");
  assert.equal((await post("simplereenroll", csr(revoked.key, "dev-3"), { as: revoked })).status, 403);

  const foreign = await makeTestCa();
  const { privateKey } = generateKeyPair("ec-p256");
  const leaf = await issueTestLeaf(foreign, "dev-4", privateKey);
  const outsider: Identity = { cert: leaf, certPem: pemEncode("CERTIFICATE", leaf.der), key: privateKey, keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string };
  assert.equal((await post("simplereenroll", csr(privateKey, "dev-4"), { as: outsider })).status, 403);

  // A certificate from Tessera's CA that was not enrolled over EST (tessera cert sign) is not an EST device.
  const signed = await server.authority.issue({ csr: buildCsr({ subject: [{ type: "CN", value: "dev-5" }], privateKey }), protocol: "cli", credential: { kind: "operator" } });
  const cliCert: Identity = { cert: parseCertificate(signed.der), certPem: signed.pem, key: privateKey, keyPem: outsider.keyPem };
  assert.equal((await post("simplereenroll", csr(privateKey, "dev-5"), { as: cliCert })).status, 403);

  const expiring = await enroll("dev-6");
  clock.advance(400 * 86_400_000);
  try {
    assert.equal((await post("simplereenroll", csr(expiring.key, "dev-6"), { as: expiring })).status, 403);
  } finally {
    clock.advance(-400 * 86_400_000);
  }
});
