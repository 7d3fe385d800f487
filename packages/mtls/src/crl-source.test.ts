import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import { pemEncode, type ParsedCertificate } from "@tessera/pki";
import { CrlRevocationSource, MtlsError, type MtlsErrorCode } from "./index.js";
import { listen, makeTestPki, stop, waitFor, type Issued, type TestPki } from "./test-support.js";

let pki: TestPki;
let device: Issued;

before(async () => {
  pki = await makeTestPki();
  device = await pki.device();
});
after(() => pki.cleanup());

const code = (c: MtlsErrorCode) => (e: unknown) => e instanceof MtlsError && e.code === c;
const status = (s: CrlRevocationSource, cert: ParsedCertificate = device.certificate, at = new Date()) => s.check(cert, pki.ca.intermediate, at).status;

test("a refresh that fails (bad signature, garbage, older CRL, missing file) keeps the last good CRL and reports the error", async () => {
  const file = path.join(pki.dir, "keep.crl");
  fs.writeFileSync(file, await pki.crl([{ serialHex: device.certificate.serialHex, revokedAt: new Date() }], { crlNumber: 5n }));
  const errors: MtlsError[] = [];
  const src = new CrlRevocationSource({ crl: file, issuers: [pki.ca.root, pki.ca.intermediate], onError: (e) => errors.push(e) });
  try {
    await src.ready();
    assert.equal(status(src), "revoked");

    const foreign = await makeTestPki();
    fs.writeFileSync(file, await foreign.crl([])); // same shape, signed by a CA we do not trust
    foreign.cleanup();
    await assert.rejects(src.refresh(), code("TESSERA_ERR_MTLS_CRL_INVALID"));
    fs.writeFileSync(file, "this is not a CRL at all");
    await assert.rejects(src.refresh(), code("TESSERA_ERR_MTLS_CRL_INVALID"));
    fs.writeFileSync(file, await pki.crl([], { crlNumber: 4n }));
    await assert.rejects(src.refresh(), (e) => code("TESSERA_ERR_MTLS_CRL_INVALID")(e) && /older/.test((e as Error).message));
    fs.rmSync(file);
    await assert.rejects(src.refresh(), code("TESSERA_ERR_MTLS_CRL_UNAVAILABLE"));
    assert.equal(status(src), "revoked", "still the CRL number 5 list");
    assert.equal(src.crls[0]?.crlNumber, 5n);
    assert.equal(errors.length, 4, "refresh() failures also reach onError");

    fs.writeFileSync(file, pemEncode("X509 CRL", await pki.crl([], { crlNumber: 6n })));
    await src.refresh();
    assert.equal(status(src), "good", "a newer PEM CRL replaces it");
  } finally {
    src.close();
  }
});

test("check: not-covered for another issuer or a same-named CA with another key; removeFromCRL is not revoked; certificateHold is", async () => {
  const file = path.join(pki.dir, "check.crl");
  const held = await pki.device();
  const lifted = await pki.device();
  fs.writeFileSync(file, await pki.crl([
    { serialHex: held.certificate.serialHex, revokedAt: new Date(), reason: "certificateHold" },
    { serialHex: lifted.certificate.serialHex, revokedAt: new Date(), reason: "removeFromCRL" },
  ]));
  const src = new CrlRevocationSource({ crl: file, issuers: pki.bundlePem });
  try {
    await src.ready();
    assert.deepEqual(src.check(held.certificate, pki.ca.intermediate, new Date()), { status: "revoked", revokedAt: src.crls[0]!.revoked.get(held.certificate.serialHex)!.revokedAt, reason: "certificateHold" });
    assert.equal(status(src, lifted.certificate), "good");
    assert.equal(src.check(pki.ca.intermediate, pki.ca.root, new Date()).status, "not-covered", "no CRL from the root");
    const impostor = { ...pki.ca.intermediate, spki: pki.ca.root.spki };
    assert.equal(src.check(device.certificate, impostor, new Date()).status, "not-covered");
  } finally {
    src.close();
  }
});

test("a CRL with an unsupported critical extension (delta CRL) is refused", async () => {
  const { encodeOid, encodeSmallInteger, Tag, tlv, signatureAlgorithmFor } = await import("@tessera/pki");
  const crypto = await import("node:crypto");
  // buildCrl cannot add a deltaCRLIndicator, so assemble one by hand
  const alg = signatureAlgorithmFor(pki.ca.intermediateKey);
  const delta = tlv(Tag.SEQUENCE, encodeOid("2.5.29.27"), tlv(Tag.BOOLEAN, Uint8Array.of(0xff)), tlv(Tag.OCTET_STRING, encodeSmallInteger(1)));
  const time = (d: Date) => tlv(Tag.UTC_TIME, Buffer.from(d.toISOString().replace(/[-:T]/g, "").slice(2, 14) + "Z"));
  const tbs = tlv(Tag.SEQUENCE, encodeSmallInteger(1), alg.algorithmIdentifier, pki.ca.intermediate.subject, time(new Date()), time(new Date(Date.now() + 86400_000)), tlv(0xa0, tlv(Tag.SEQUENCE, delta)));
  const der = tlv(Tag.SEQUENCE, tbs, alg.algorithmIdentifier, tlv(Tag.BIT_STRING, Uint8Array.of(0), crypto.sign(alg.hash, tbs, pki.ca.intermediateKey)));
  const file = path.join(pki.dir, "delta.crl");
  fs.writeFileSync(file, der);
  const src = new CrlRevocationSource({ crl: file, issuers: pki.bundlePem, onError: () => {} });
  try {
    await assert.rejects(src.ready(), (e) => code("TESSERA_ERR_MTLS_CRL_INVALID")(e) && /2\.5\.29\.27/.test((e as Error).message));
    assert.equal(status(src), "not-covered");
  } finally {
    src.close();
  }
});

test("https CRL URL with fetchCa, through a redirect; the refresh timer keeps it current", async () => {
  let crl = await pki.crl([], { crlNumber: 1n });
  const server = https.createServer({ key: pki.server.key, cert: pki.server.cert }, (req, res) => {
    if (req.url === "/old") {
      res.writeHead(302, { location: "/ca.crl" });
      return res.end();
    }
    res.end(crl);
  });
  const port = await listen(server);
  const caFile = path.join(pki.dir, "fetch-ca.pem");
  fs.writeFileSync(caFile, pki.rootPem);
  let updates = 0;
  const src = new CrlRevocationSource({ crl: `https://localhost:${port}/old`, issuers: pki.bundlePem, fetchCa: caFile, refreshMs: 50, onUpdate: () => updates++ });
  const untrusting = new CrlRevocationSource({ crl: `https://localhost:${port}/ca.crl`, issuers: pki.bundlePem, onError: () => {} });
  try {
    await src.ready();
    assert.equal(status(src), "good");
    crl = await pki.crl([{ serialHex: device.certificate.serialHex, revokedAt: new Date() }], { crlNumber: 2n });
    await waitFor(() => status(src) === "revoked", 3000);
    assert.ok(updates >= 2);
    await assert.rejects(untrusting.ready(), code("TESSERA_ERR_MTLS_CRL_UNAVAILABLE"), "the system roots do not know our test CA");
  } finally {
    src.close();
    untrusting.close();
    await stop(server);
  }
});

test("HTTP errors and timeouts are CRL_UNAVAILABLE; close() stops the timer so no more fetches happen", async () => {
  let hits = 0;
  let mode: "404" | "hang" = "404";
  const server = http.createServer((_req, res) => {
    hits++;
    if (mode === "404") {
      res.statusCode = 404;
      res.end();
    }
    // "hang": never answer
  });
  const port = await listen(server);
  const url = `http://127.0.0.1:${port}/ca.crl`;
  const src = new CrlRevocationSource({ crl: url, issuers: pki.bundlePem, refreshMs: 40, timeoutMs: 100, onError: () => {} });
  try {
    await assert.rejects(src.ready(), (e) => code("TESSERA_ERR_MTLS_CRL_UNAVAILABLE")(e) && /HTTP 404/.test((e as Error).message));
    mode = "hang";
    await assert.rejects(src.refresh(), (e) => /timed out/.test((e as Error).message));
    await waitFor(() => hits >= 4, 3000);
    src.close();
    await new Promise((r) => setTimeout(r, 250));
    const settled = hits;
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(hits, settled, "no fetch after close()");
  } finally {
    src.close();
    await stop(server);
  }
});

test("options are validated on receipt", () => {
  assert.throws(() => new CrlRevocationSource({ crl: "", issuers: pki.bundlePem }), code("TESSERA_ERR_MTLS_CONFIG"));
  assert.throws(() => new CrlRevocationSource({ crl: "x.crl", issuers: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n" }), code("TESSERA_ERR_MTLS_CONFIG"));
  assert.throws(() => new CrlRevocationSource({ crl: "x.crl", issuers: pki.bundlePem, refreshMs: -1 }), code("TESSERA_ERR_MTLS_CONFIG"));
  assert.throws(() => new CrlRevocationSource({ crl: "x.crl", issuers: pki.bundlePem, onStale: "maybe" as "accept" }), code("TESSERA_ERR_MTLS_CONFIG"));
});
