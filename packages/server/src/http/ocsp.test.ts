import "reflect-metadata";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import {
  buildCsr, buildOcspRequest, generateKeyPair, isOcspSigner, ocspGetUrl, ocspNonce, parseCertificate, parseOcspResponse, pemEncode, Tag, tlv,
  verifyOcspResponse,
} from "@tessera/pki";
import { startTestServer, request, tempDir, TestClock } from "../test-support.js";
import type { RunningServer } from "../server.js";
import type { TesseraConfig } from "../config/types.js";
import { ocspSignerPaths } from "../authority/ocsp-service.js";

const run = promisify(execFile);
const PUBLIC_URL = "http://pki.example.test:8080";

let server: RunningServer;
let config: TesseraConfig;
let dataDir: string;
let ocspUrl: string;
const clock = new TestClock();
const dir = tempDir("tessera-ocsp-");

/** Runs openssl in the test directory; resolves with stdout + stderr whatever the exit status. */
async function openssl(...args: string[]): Promise<string> {
  try {
    const r = await run("openssl", args, { cwd: dir });
    return r.stdout + r.stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ""}${e.stderr ?? ""}exit-failed`;
  }
}

/** Issues a device certificate through the authority and writes it as `<name>.pem`; returns its serial. */
async function issue(name: string): Promise<string> {
  const { privateKey } = generateKeyPair();
  const issued = await server.authority.issue({
    csr: buildCsr({ subject: [{ type: "CN", value: name }], privateKey }),
    protocol: "test",
    credential: { kind: "operator", actor: "test" },
    subject: [{ type: "CN", value: name }],
  });
  fs.writeFileSync(path.join(dir, `${name}.pem`), issued.pem);
  return issued.record.serial;
}

function post(body: Buffer, url = `${ocspUrl}`): Promise<Response> {
  return fetch(url, { method: "POST", headers: { "content-type": "application/ocsp-request" }, body: new Uint8Array(body) });
}

before(async () => {
  ({ server, config, dataDir } = await startTestServer({ TESSERA_HTTP_LISTEN: "127.0.0.1:0" }, { clock, configure: (c) => (c.revocation.publicUrl = PUBLIC_URL) }));
  ocspUrl = `${server.httpUrl!.replace("localhost", "127.0.0.1")}/ocsp`;
  fs.copyFileSync(path.join(dataDir, "ca", "intermediate.pem"), path.join(dir, "chain-issuing.pem"));
  fs.writeFileSync(path.join(dir, "root+issuing.pem"), fs.readFileSync(path.join(dataDir, "ca", "chain.pem")));
});
after(async () => {
  await server.close(500);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("openssl ocsp: good, then revoked with time and reason after a revocation; the nonce is echoed", async () => {
  await issue("dev");
  const ask = (...extra: string[]) => openssl("ocsp", "-issuer", "chain-issuing.pem", "-cert", "dev.pem", "-url", ocspUrl, "-CAfile", "root+issuing.pem", ...extra);
  const good = await ask("-resp_text");
  assert.match(good, /Response verify OK/);
  assert.match(good, /dev\.pem: good/);
  assert.match(good, /OCSP Nonce:/);
  assert.doesNotMatch(good, /WARNING/, "nonce echoed and checked");
  // A nonce-less answer is cached; the revocation must drop it.
  assert.match(await ask("-no_nonce"), /dev\.pem: good/);
  const serial = fs.readFileSync(path.join(dir, "dev.pem"), "utf8");
  await server.authority.revoke(parseCertificate(serial).serialHex, "keyCompromise", "test");
  for (const extra of [["-no_nonce"], []]) {
    const revoked = await ask(...extra);
    assert.match(revoked, /Response verify OK/);
    assert.match(revoked, /dev\.pem: revoked/);
    assert.match(revoked, /Reason: keyCompromise/);
    assert.match(revoked, /Revocation Time: /);
  }
});

test("a revocation by another replica (or the CLI) reaches the cached answer at the next poll", async () => {
  const serial = await issue("dev-replica");
  const issuing = parseCertificate(fs.readFileSync(path.join(dir, "chain-issuing.pem"), "utf8"));
  const ask = async () => parseOcspResponse(Buffer.from(await (await fetch(ocspGetUrl(ocspUrl, buildOcspRequest({ issuer: issuing, serials: [serial] })))).arrayBuffer())).responses[0]!;
  assert.equal((await ask()).status, "good");
  // Straight into the store, as another process would: this process has not heard of it yet.
  const at = clock.now();
  await server.store.revokeCertificate(serial, "cessationOfOperation", at, { at, actor: "other-replica", action: "certificate.revoked", target: serial, detail: {} });
  assert.equal((await ask()).status, "good", "served from the cache until the poll");
  await server.authority.revocations.poll();
  const r = await ask();
  assert.equal(r.status, "revoked");
  assert.equal(r.reason, "cessationOfOperation");
});

test("a foreign certificate's serial is unknown; a foreign issuer is unauthorized", async () => {
  await openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=foreign", "-keyout", "foreign.key", "-out", "foreign.pem", "-days", "1");
  // openssl takes a CertID's name hash from the certificate's issuer field, so give the foreign serial alone.
  const serial = parseCertificate(fs.readFileSync(path.join(dir, "foreign.pem"), "utf8")).serialHex;
  const unknown = await openssl("ocsp", "-issuer", "chain-issuing.pem", "-serial", `0x${serial}`, "-url", ocspUrl, "-CAfile", "root+issuing.pem");
  assert.match(unknown, /Response verify OK/);
  assert.match(unknown, new RegExp(`0x${serial}: unknown`));
  const foreignIssuer = await openssl("ocsp", "-issuer", "foreign.pem", "-cert", "foreign.pem", "-url", ocspUrl, "-CAfile", "root+issuing.pem");
  assert.match(foreignIssuer, /Responder Error: unauthorized \(6\)/);
});

test("GET form (RFC 6960 A.1): openssl -reqout + curl, cached with RFC 5019 headers; POST over the main TLS listener too", async () => {
  const serial = await issue("dev-get");
  await openssl("ocsp", "-issuer", "chain-issuing.pem", "-cert", "dev-get.pem", "-no_nonce", "-reqout", "get-req.der");
  const url = ocspGetUrl(ocspUrl, fs.readFileSync(path.join(dir, "get-req.der")));
  const { stdout: headers } = await run("curl", ["-s", "-D", "-", "-o", "get-resp.der", url], { cwd: dir });
  assert.match(headers, /^HTTP\/1\.1 200/);
  assert.match(headers, /content-type: application\/ocsp-response/i);
  assert.match(headers, /cache-control: max-age=\d+, public, no-transform, must-revalidate/i);
  assert.match(headers, /etag: "[0-9a-f]{40}"/i);
  const out = await openssl("ocsp", "-respin", "get-resp.der", "-issuer", "chain-issuing.pem", "-cert", "dev-get.pem", "-CAfile", "root+issuing.pem", "-no_nonce");
  assert.match(out, /Response verify OK/);
  assert.match(out, /dev-get\.pem: good/);
  // The same request again: the cached bytes.
  const again = Buffer.from(await (await fetch(url)).arrayBuffer());
  assert.deepEqual(again, fs.readFileSync(path.join(dir, "get-resp.der")));
  // Bare (not percent-encoded) base64 with "/" and "+" works too.
  const bare = await fetch(`${ocspUrl}/${fs.readFileSync(path.join(dir, "get-req.der")).toString("base64")}`);
  assert.equal(parseOcspResponse(Buffer.from(await bare.arrayBuffer())).responses[0]!.status, "good");
  // POST on the main (TLS) listener.
  const issuing = parseCertificate(fs.readFileSync(path.join(dir, "chain-issuing.pem"), "utf8"));
  const tls = await request(server, "/ocsp", { method: "POST", headers: { "content-type": "application/ocsp-request" }, body: buildOcspRequest({ issuer: issuing, serials: [serial] }) });
  assert.equal(tls.status, 200);
  assert.equal(tls.headers["content-type"], "application/ocsp-response");
  assert.equal(parseOcspResponse(tls.body).responses[0]!.status, "good");
});

test("nonce echoed byte for byte; SHA-256 CertIDs; several CertIDs in one request; answer times", async () => {
  const a = await issue("dev-multi-a");
  const b = await issue("dev-multi-b");
  const issuing = parseCertificate(fs.readFileSync(path.join(dir, "chain-issuing.pem"), "utf8"));
  const nonce = ocspNonce(32);
  const res = await post(buildOcspRequest({ issuer: issuing, serials: [a, b, "7e57"], hash: "sha256", nonce }));
  assert.equal(res.headers.get("cache-control"), "no-store", "a nonce answer is for one asker only");
  const parsed = parseOcspResponse(Buffer.from(await res.arrayBuffer()));
  assert.deepEqual(parsed.nonce, tlv(Tag.OCTET_STRING, nonce));
  assert.deepEqual(parsed.responses.map((r) => r.status), ["good", "good", "unknown"]);
  assert.ok(parsed.responses.every((r) => r.certId.hash === "sha256"));
  const signer = verifyOcspResponse(parsed, issuing, clock.now());
  assert.ok(signer && isOcspSigner(signer));
  const r0 = parsed.responses[0]!;
  assert.equal(r0.nextUpdate!.getTime() - r0.thisUpdate.getTime(), config.revocation.ocsp.validity * 1000);
  assert.ok(Math.abs(parsed.producedAt!.getTime() - clock.now().getTime()) < 5000);
});

test("malformed requests get malformedRequest (HTTP 200, OCSP status inside)", async () => {
  for (const res of [await post(Buffer.from("garbage")), await fetch(`${ocspUrl}/!!!`), await post(Buffer.alloc(0))]) {
    assert.equal(res.status, 200);
    assert.equal(parseOcspResponse(Buffer.from(await res.arrayBuffer())).status, "malformedRequest");
  }
  // No Content-Type at all still reads the body as a request.
  const issuing = parseCertificate(fs.readFileSync(path.join(dir, "chain-issuing.pem"), "utf8"));
  const bare = await fetch(ocspUrl, { method: "POST", body: new Uint8Array(buildOcspRequest({ issuer: issuing, serials: ["01"] })) });
  assert.equal(parseOcspResponse(Buffer.from(await bare.arrayBuffer())).status, "successful");
});

test("the delegated signer: OCSPSigning + nocheck, chains to the CA, files 0600 with the key encrypted", async () => {
  const p = ocspSignerPaths(dataDir);
  fs.copyFileSync(p.cert, path.join(dir, "signer.pem"));
  const text = await openssl("x509", "-in", "signer.pem", "-noout", "-text");
  assert.match(text, /OCSP Signing/);
  assert.match(text, /OCSP No Check/);
  assert.match(text, /Issuer: O\s?=\s?Tessera, CN\s?=\s?Tessera Issuing CA/);
  assert.match(await openssl("verify", "-CAfile", "root+issuing.pem", "-purpose", "ocsphelper", "signer.pem"), /signer\.pem: OK/);
  for (const f of [p.cert, p.key]) assert.equal(fs.statSync(f).mode & 0o777, 0o600, f);
  assert.match(fs.readFileSync(p.key, "utf8"), /BEGIN ENCRYPTED PRIVATE KEY/);
  const signer = parseCertificate(fs.readFileSync(p.cert, "utf8"));
  assert.equal((signer.notAfter.getTime() - signer.notBefore.getTime()) / 1000, config.revocation.ocsp.signerValidity + 300, "lifetime + 5 min backdate");
});

test("issued certificates carry CRL DP and AIA (OCSP, CA issuers) from public_url; /ca.der is the issuing CA in DER", async () => {
  await issue("dev-urls");
  const text = await openssl("x509", "-in", "dev-urls.pem", "-noout", "-text");
  assert.match(text, /X509v3 CRL Distribution Points:\s+Full Name:\s+URI:http:\/\/pki\.example\.test:8080\/crl/);
  assert.match(text, /Authority Information Access:\s+OCSP - URI:http:\/\/pki\.example\.test:8080\/ocsp\s+CA Issuers - URI:http:\/\/pki\.example\.test:8080\/ca\.der/);
  const der = await fetch(`${server.httpUrl!.replace("localhost", "127.0.0.1")}/ca.der`);
  assert.equal(der.headers.get("content-type"), "application/pkix-cert");
  assert.deepEqual(Buffer.from(await der.arrayBuffer()), server.authority.ca.issuer.certificate.der);
});

test("the signer rotates at half-life; a restart before then keeps it (replicas share it)", async () => {
  const p = ocspSignerPaths(dataDir);
  const first = parseCertificate(fs.readFileSync(p.cert, "utf8"));
  await server.close(500);
  ({ server } = await startTestServer({ TESSERA_DATA_DIR: dataDir, TESSERA_HTTP_LISTEN: "127.0.0.1:0" }, { clock, configure: (c) => (c.revocation.publicUrl = PUBLIC_URL) }));
  assert.equal(parseCertificate(fs.readFileSync(p.cert, "utf8")).serialHex, first.serialHex, "reused within its first half");
  // Past half-life: the running server issues a new signer on its next answer (in the background) or its timer.
  clock.advance((config.revocation.ocsp.signerValidity / 2 + 600) * 1000);
  ocspUrl = `${server.httpUrl!.replace("localhost", "127.0.0.1")}/ocsp`;
  const issuing = parseCertificate(fs.readFileSync(path.join(dir, "chain-issuing.pem"), "utf8"));
  const ask = async () => parseOcspResponse(Buffer.from(await (await post(buildOcspRequest({ issuer: issuing, serials: ["01"], nonce: ocspNonce() }))).arrayBuffer()));
  await ask();
  let signer = first;
  for (let i = 0; i < 100 && signer.serialHex === first.serialHex; i++) {
    await new Promise((r) => setTimeout(r, 20));
    signer = verifyOcspResponse(await ask(), issuing, clock.now())!;
  }
  assert.notEqual(signer.serialHex, first.serialHex, "answers are signed by the new signer");
  assert.equal(parseCertificate(fs.readFileSync(p.cert, "utf8")).serialHex, signer.serialHex, "and it is on disk for the other replicas");
  assert.ok(signer.notAfter > first.notAfter);
});
