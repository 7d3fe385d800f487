/**
 * EST's wire framing as strict clients read it (est.md §2, §6, checklist
 * items 1–7, 10, 11, 13–16, 19, 20, 23): raw bytes over TLS, so header case,
 * Content-Length, empty bodies and base64 lines are what the test sees.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import * as tls from "node:tls";
import { after, before, test } from "node:test";
import {
  buildCsr, decodeBase64Lenient, encodeBase64Lines, generateKeyPair, parseCertificate, pemEncode, readCmsCertificates, sha256Hex,
} from "@tessera/pki";
import type { RunningServer } from "../../server.js";
import { estServer, header, rawRequest, type RawResponse } from "./test-kit.js";

let server: RunningServer;
let base: string;
let ca: string;
const basic = (user: string, password: string) => "Basic " + Buffer.from(`${user}:${password}`).toString("base64");

before(async () => {
  ({ server, base } = await estServer());
  ca = server.authority.chainPem();
});
after(() => server.close(100));

const get = (path: string, extra: Partial<Parameters<typeof rawRequest>[1]> = {}) => rawRequest(base, { path, ca, ...extra });
const post = (path: string, body: Buffer | string, headers: Record<string, string> = {}, extra: Partial<Parameters<typeof rawRequest>[1]> = {}) =>
  rawRequest(base, { method: "POST", path, ca, body, headers: { "Content-Type": "application/pkcs10", ...headers }, ...extra });

function csrB64(cn: string): string {
  const { privateKey } = generateKeyPair("ec-p256");
  return encodeBase64Lines(buildCsr({ subject: [{ type: "CN", value: cn }], privateKey }));
}

/** Every response: exact Content-Length, never chunked, canonical header names, a reason phrase. */
function assertFraming(r: RawResponse): void {
  assert.match(r.statusLine, /^HTTP\/1\.1 \d{3} \S/, "status line has a reason phrase");
  assert.equal(header(r, "Transfer-Encoding"), undefined, "never chunked");
  const names = r.headers.map(([n]) => n);
  assert.ok(names.includes("Content-Length"), `Content-Length missing in ${names}`);
  assert.equal(Number(header(r, "Content-Length")), r.body.length, "Content-Length equals the body");
  for (const n of names) assert.match(n, /^[A-Z][a-z]*(-[A-Z][a-z]*)*$|^WWW-Authenticate$/, `header name ${n} in canonical case`);
  for (const [n, v] of r.headers) assert.ok(`${n}: ${v}`.length < 1024, "header lines < 1024 bytes");
}

/** Base64 as Tessera sends it: 64-character LF lines, the last terminated, nothing else. */
function assertBase64Lines(body: Buffer): Buffer {
  const text = body.toString("latin1");
  assert.match(text, /^([A-Za-z0-9+/]{64}\n)*[A-Za-z0-9+/]{0,63}={0,2}\n$/);
  return Buffer.from(text, "base64");
}

test("cacerts: certs-only CMS in base64 with Content-Transfer-Encoding, root and issuing CA", async () => {
  for (const path of ["/.well-known/est/cacerts", "/.well-known/est/cacerts?ignored=1"]) {
    const r = await get(path);
    assertFraming(r);
    assert.equal(r.status, 200);
    assert.equal(header(r, "Content-Type"), "application/pkcs7-mime; smime-type=certs-only");
    assert.equal(header(r, "Content-Transfer-Encoding"), "base64");
    const der = assertBase64Lines(r.body);
    // version 1, empty digestAlgorithms, encapContentInfo { id-data } without eContent, then [0] certificates.
    assert.ok(der.includes(Buffer.from("020101" + "3100" + "300b06092a864886f70d010701" + "a0", "hex")));
    assert.ok(der.subarray(-2).equals(Buffer.from("3100", "hex")), "empty signerInfos last");
    const certs = readCmsCertificates(der).map((c) => sha256Hex(c));
    assert.deepEqual(certs.sort(), [server.authority.ca.root.der, server.authority.ca.issuer.certificate.der].map((c) => sha256Hex(c)).sort());
  }
});

test("simpleenroll: bare request gets a 401 Basic challenge with an empty body, the Basic retry gets exactly one certificate", async () => {
  const body = csrB64("framing-1");
  const challenge = await post("/.well-known/est/simpleenroll", body, { "Content-Transfer-Encoding": "base64" });
  assertFraming(challenge);
  assert.equal(challenge.status, 401);
  assert.equal(challenge.body.length, 0);
  assert.deepEqual(challenge.headers.filter(([n]) => n === "WWW-Authenticate"), [["WWW-Authenticate", 'Basic realm="tessera"']]);
  const r = await post("/.well-known/est/simpleenroll", body, { Authorization: basic("alice", "s3cret-pass") });
  assertFraming(r);
  assert.equal(r.status, 200);
  assert.equal(header(r, "Content-Type"), "application/pkcs7-mime; smime-type=certs-only");
  assert.equal(header(r, "Content-Transfer-Encoding"), "base64");
  const certs = readCmsCertificates(assertBase64Lines(r.body));
  assert.equal(certs.length, 1);
  const cert = parseCertificate(certs[0]!);
  assert.equal((await server.authority.getCertificate(cert.serialHex))?.status, "valid", "stored before it was returned");
});

test("request bodies in every form: unbroken, CRLF lines, spaces and tabs, PEM armour, any CTE, any Accept", async () => {
  const auth = { Authorization: basic("alice", "s3cret-pass") };
  const { privateKey } = generateKeyPair("ec-p256");
  const der = buildCsr({ subject: [{ type: "CN", value: "forms" }], privateKey });
  const forms: Array<[string, string, Record<string, string>]> = [
    ["unbroken", der.toString("base64"), { Accept: "text/plain" }],
    ["CRLF", encodeBase64Lines(der).replace(/\n/g, "\r\n"), { "Content-Transfer-Encoding": "base64" }],
    ["spaces", der.toString("base64").replace(/(.{16})/g, "$1 \t"), { "Content-Transfer-Encoding": "binary", Accept: "*/*" }],
    ["PEM", pemEncode("CERTIFICATE REQUEST", der), {}],
  ];
  for (const [name, body, headers] of forms) {
    const r = await post("/.well-known/est/simpleenroll", body, { ...auth, ...headers });
    assert.equal(r.status, 200, `${name}: ${r.body}`);
  }
});

test("pre-emptive Basic works; a wrong password or unknown user is 401 again with an empty body; an empty user name is a user name", async () => {
  const body = csrB64("framing-2");
  for (const auth of [basic("alice", "wrong"), basic("mallory", "s3cret-pass"), basic("", "s3cret-pass"), "Bearer abc"]) {
    const r = await post("/.well-known/est/simpleenroll", body, { Authorization: auth });
    assert.equal(r.status, 401, auth);
    assert.equal(r.body.length, 0);
    assert.equal(header(r, "WWW-Authenticate"), 'Basic realm="tessera"');
  }
  const { addEstUser } = await import("./test-kit.js");
  await addEstUser(server, "", "empty-user-pass");
  assert.equal((await post("/.well-known/est/simpleenroll", body, { Authorization: basic("", "empty-user-pass") })).status, 200);
});

test("refusals in EST's form: text/plain one line, no CTE, the right status", async () => {
  const auth = { Authorization: basic("alice", "s3cret-pass") };
  const { privateKey } = generateKeyPair("ec-p256");
  const der = buildCsr({ subject: [{ type: "CN", value: "bad" }], privateKey });
  const badSig = Buffer.from(der);
  badSig[badSig.length - 1] = badSig[badSig.length - 1]! ^ 0x55;
  const cases: Array<[string, Promise<RawResponse>, number]> = [
    ["malformed base64", post("/.well-known/est/simpleenroll", "not*base64!", auth), 400],
    ["not a CSR", post("/.well-known/est/simpleenroll", encodeBase64Lines(Buffer.from("3003020101", "hex")), auth), 400],
    ["bad signature", post("/.well-known/est/simpleenroll", encodeBase64Lines(badSig), auth), 400],
    ["empty body", post("/.well-known/est/simpleenroll", "", auth), 400],
    ["wrong content type", post("/.well-known/est/simpleenroll", encodeBase64Lines(der), { ...auth, "Content-Type": "application/json" }), 415],
    ["no content type", rawRequest(base, { method: "POST", path: "/.well-known/est/simpleenroll", ca, body: encodeBase64Lines(der), headers: auth }), 415],
    ["oversized", post("/.well-known/est/simpleenroll", "A".repeat(70_000), auth), 413],
    ["unknown label", get("/.well-known/est/nosuchlabel/cacerts"), 404],
    ["unknown operation", get("/.well-known/est/nosuchop"), 404],
    ["three segments", get("/.well-known/est/a/b/cacerts"), 404],
    ["GET on simpleenroll", get("/.well-known/est/simpleenroll"), 405],
    ["POST on cacerts", post("/.well-known/est/cacerts", "x"), 405],
    ["fullcmc", post("/.well-known/est/fullcmc", "x", { "Content-Type": "application/pkcs7-mime; smime-type=CMC-request" }), 501],
  ];
  for (const [name, pending, status] of cases) {
    const r = await pending;
    assertFraming(r);
    assert.equal(r.status, status, `${name}: ${r.statusLine} ${r.body}`);
    assert.equal(header(r, "Content-Type"), "text/plain; charset=utf-8", name);
    assert.equal(header(r, "Content-Transfer-Encoding"), undefined, name);
    assert.match(r.body.toString("utf8"), /^[^\n]{1,8000}\n$/, name);
  }
  assert.equal(header(await get("/.well-known/est/simpleenroll"), "Allow"), "POST");
  assert.equal(header(await post("/.well-known/est/cacerts", "x"), "Allow"), "GET");
  // Nothing half-written: none of those requests left a certificate for CN=bad.
  assert.equal((await server.authority.listCertificates()).filter((c) => c.subject === "CN=bad").length, 0);
});

test("csrattrs: none configured is 204 with Content-Length 0", async () => {
  const r = await get("/.well-known/est/csrattrs");
  assertFraming(r);
  assert.equal(r.status, 204);
  assert.equal(r.body.length, 0);
});

test("TLS: 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 and 1.3 work, 1.1 is refused, h2 is never chosen", async () => {
  const r12 = await get("/.well-known/est/cacerts", { maxVersion: "TLSv1.2" });
  assert.equal(r12.protocol, "TLSv1.2");
  assert.equal(r12.status, 200);
  const r13 = await get("/.well-known/est/cacerts", { alpn: ["h2", "http/1.1"] });
  assert.equal(r13.protocol, "TLSv1.3");
  assert.equal(r13.status, 200);
  const u = new URL(base);
  const cipher = await new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: u.hostname, port: Number(u.port), ca, maxVersion: "TLSv1.2", ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256", ALPNProtocols: ["h2", "http/1.1"] }, () => {
      assert.equal(s.alpnProtocol, "http/1.1", "curl offers h2 and http/1.1: it must get http/1.1");
      resolve(s.getCipher().name);
      s.destroy();
    });
    s.on("error", reject);
  });
  assert.equal(cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
  await assert.rejects(
    new Promise((resolve, reject) => {
      const s = tls.connect({ host: u.hostname, port: Number(u.port), ca, minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" }, () => resolve(s));
      s.on("error", reject);
    }),
  );
  // A client that offers only h2 is refused at the handshake rather than spoken to in HTTP/2.
  await assert.rejects(
    new Promise((resolve, reject) => {
      const s = tls.connect({ host: u.hostname, port: Number(u.port), ca, ALPNProtocols: ["h2"] }, () => resolve(s));
      s.on("error", reject);
    }),
    /no application protocol/,
  );
});

test("the server certificate verifies for https://127.0.0.1 (IP SAN) and the label-less and labelled paths answer alike", async () => {
  // rawRequest dials 127.0.0.1 with the CA as only trust anchor and Node's hostname check: an IP SAN is needed.
  const r = await get("/.well-known/est/cacerts");
  assert.equal(r.status, 200);
  assert.ok(decodeBase64Lenient(r.body).length > 0);
});
