/**
 * The Mainflux certs API against the spec's checklist (mainflux.md §8, items
 * 1–13, 15, 19–21) and Tessera's deviations: issue, view, renew, revoke,
 * rotate and list, their status codes, error texts, field names and check
 * order, the certificate's profile, operator roles.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { certificatePublicKey, certificateSans, extendedKeyUsages, keyInfo, keysMatch, parseCrl, serialHexToDecimal } from "@tessera/pki";
import { certOf, DAY, HOUR, keyUsages, mainfluxServer, type MainfluxKit } from "./test-kit.js";

const ISSUE_KEYS = ["certificate", "issuing_ca", "ca_chain", "private_key", "private_key_type", "serial", "expires_at"];
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d*[1-9])?Z$/;

describe("mainflux API: issue (E1)", () => {
  let k: MainfluxKit;
  before(async () => {
    k = await mainfluxServer();
  });
  after(() => k.close());

  test("1-3: rsa/2048 → 201 IssueRes; CN = thing key only, no SAN, clientAuth, KU digitalSignature+keyEncipherment, ~8760h; decimal serial", async () => {
    const r = await k.req("POST", "/certs", { token: k.tokens.editor, body: { thing_id: k.things.a.id, ttl: "8760h", key_type: "rsa", key_bits: 2048 } });
    assert.equal(r.status, 201);
    assert.equal(r.headers["content-type"], "application/json");
    assert.ok(r.text.endsWith("}\n"), "Go's encoder ends with a newline");
    assert.deepEqual(Object.keys(r.json), ISSUE_KEYS);
    assert.equal(r.json.private_key_type, "rsa");
    assert.match(r.json.private_key, /^-----BEGIN RSA PRIVATE KEY-----\n/);
    const { cert, cn } = certOf(r.json.certificate);
    assert.equal(cn, k.things.a.key);
    assert.equal(cert.subject.length, certOf(r.json.certificate).cert.subject.length);
    assert.deepEqual(certificateSans(cert), []);
    assert.deepEqual(extendedKeyUsages(cert), ["1.3.6.1.5.5.7.3.2"]);
    assert.deepEqual(keyUsages(cert), ["digitalSignature", "keyEncipherment"]);
    assert.ok(Math.abs(cert.notAfter.getTime() - k.clock.now().getTime() - 8760 * HOUR) < 5000);
    assert.ok(Math.abs(cert.notBefore.getTime() - k.clock.now().getTime()) < 5000, "no backdating");
    assert.match(r.json.serial, /^[0-9]{1,39}$/);
    assert.equal(r.json.serial, serialHexToDecimal(cert.serialHex));
    assert.equal(r.json.expires_at, cert.notAfter.toISOString().replace(".000Z", "Z"));
    assert.match(r.json.expires_at, TIME);
    const key = createPrivateKey(r.json.private_key);
    assert.ok(keysMatch(key, certificatePublicKey(cert)));
    assert.equal(keyInfo(key).bits, 2048);
    // The chain: issuing CA, then root; the certificate chains to it.
    assert.equal(r.json.issuing_ca, r.json.ca_chain[0]);
    assert.equal(r.json.ca_chain.length, 2);
    assert.ok(certOf(r.json.issuing_ca).cert.subject.equals(cert.issuer));
  });

  test("4: ecdsa/384 → P-384, EC PRIVATE KEY, ecdsa; ec (as the README says) and every curve and RSA size are accepted; EC KU is digitalSignature only", async () => {
    const r = await k.issue(k.things.b, { key_type: "ecdsa", key_bits: 384 });
    assert.equal(r.private_key_type, "ecdsa");
    assert.match(r.private_key, /^-----BEGIN EC PRIVATE KEY-----\n/);
    assert.equal(keyInfo(createPrivateKey(r.private_key)).curve, "P-384");
    assert.deepEqual(keyUsages(certOf(r.certificate).cert), ["digitalSignature"]);
    for (const [type, bits, curve] of [["ec", 256, "P-256"], ["ecdsa", 224, "P-224"], ["ecdsa", 521, "P-521"]] as const) {
      const x = await k.issue(k.things.b, { key_type: type, key_bits: bits });
      assert.equal(x.private_key_type, "ecdsa");
      assert.equal(keyInfo(certificatePublicKey(certOf(x.certificate).cert)).curve, curve);
    }
    const rsa = await k.issue(k.things.b, { key_type: "rsa", key_bits: 4096 });
    assert.equal(keyInfo(certificatePublicKey(certOf(rsa.certificate).cert)).bits, 4096);
  });

  test("5: 400 missing certificate data for key_type RSA, key_bits 1024, missing key_bits, ecdsa/512, missing ttl, missing key_type", async () => {
    const bodies = [
      { key_type: "RSA", key_bits: 2048 },
      { key_type: "rsa", key_bits: 1024 },
      { key_type: "rsa" },
      { key_type: "ecdsa", key_bits: 512 },
      { key_type: "rsa", key_bits: 2048, ttl: undefined },
      { key_bits: 256 },
      { key_type: "ed25519", key_bits: 256 },
    ];
    for (const b of bodies) {
      const r = await k.req("POST", "/certs", { token: k.tokens.editor, body: { thing_id: k.things.a.id, ttl: "8760h", ...b } });
      assert.deepEqual([r.status, r.text], [400, '{"error":"missing certificate data"}\n'], JSON.stringify(b));
    }
  });

  test("6: ttl abc → 400 failed to create client certificate (the original: 500); 720 → 720 hours; 1h30m; not positive → 400", async () => {
    const bad = await k.req("POST", "/certs", { token: k.tokens.editor, body: { thing_id: k.things.a.id, ttl: "abc", key_type: "ecdsa", key_bits: 256 } });
    assert.deepEqual([bad.status, bad.json], [400, { error: "failed to create client certificate" }]);
    const hours = await k.issue(k.things.a, { ttl: "720" });
    const c = certOf(hours.certificate).cert;
    assert.equal(c.notAfter.getTime() - c.notBefore.getTime(), 720 * HOUR);
    const mixed = certOf((await k.issue(k.things.a, { ttl: "1h30m" })).certificate).cert;
    assert.equal(mixed.notAfter.getTime() - mixed.notBefore.getTime(), 90 * 60_000);
    for (const ttl of ["0", "-1h", "-5", "500ms"]) {
      const r = await k.req("POST", "/certs", { token: k.tokens.editor, body: { thing_id: k.things.a.id, ttl, key_type: "ecdsa", key_bits: 256 } });
      assert.deepEqual([r.status, r.json], [400, { error: "failed to create client certificate" }], ttl);
    }
    // Longer than the profile (10 years) or the issuing CA is capped.
    const long = certOf((await k.issue(k.things.a, { ttl: "200000h" })).certificate).cert;
    const cap = Math.min(long.notBefore.getTime() + 3650 * DAY, k.server.authority.ca.issuer.certificate.notAfter.getTime());
    assert.equal(long.notAfter.getTime(), cap);
  });

  test("7: missing thing_id → 400; text/plain or no Content-Type → 415; malformed JSON, wrong types, empty body → 400 (the original: 500)", async () => {
    const noThing = await k.req("POST", "/certs", { token: k.tokens.editor, body: { ttl: "1h", key_type: "rsa", key_bits: 2048 } });
    assert.deepEqual([noThing.status, noThing.json], [400, { error: "missing thing id" }]);
    for (const contentType of ["text/plain", "application/json; charset=utf-8", null]) {
      const r = await k.req("POST", "/certs", { token: k.tokens.editor, body: { thing_id: k.things.a.id, ttl: "1h", key_type: "rsa", key_bits: 2048 }, contentType });
      assert.deepEqual([r.status, r.json], [415, { error: "unsupported content type" }], String(contentType));
    }
    for (const raw of ["{", "", '{"thing_id":"thing-a","ttl":"1h","key_type":"rsa","key_bits":"2048"}', "[]", '{"thing_id":5}']) {
      const r = await k.req("POST", "/certs", { token: k.tokens.editor, raw });
      assert.deepEqual([r.status, r.json], [400, { error: "malformed entity specification" }], raw);
    }
    // Decoding comes before the token (spec §1.1): a malformed body without a token is still 400; 415 before 401.
    assert.equal((await k.req("POST", "/certs", { raw: "{" })).status, 400);
    assert.equal((await k.req("POST", "/certs", { raw: "{}", contentType: "text/plain" })).status, 415);
    // encoding/json matches field names case-insensitively, ignores unknown ones, and null is the zero value.
    const folded = await k.req("POST", "/certs", { token: k.tokens.editor, body: { Thing_ID: k.things.a.id, TTL: "1h", key_type: "ecdsa", Key_Bits: 256, extra: [1] } });
    assert.equal(folded.status, 201);
    const nulls = await k.req("POST", "/certs", { token: k.tokens.editor, raw: "null" });
    assert.deepEqual([nulls.status, nulls.json], [400, { error: "missing thing id" }]);
  });

  test("8: no Authorization or not Bearer on every user route → 401 missing or invalid bearer user token", async () => {
    const issued = await k.issue(k.things.a);
    const body = { thing_id: k.things.a.id, ttl: "1h", key_type: "rsa", key_bits: 2048 };
    const routes: Array<[string, string, unknown?]> = [
      ["POST", "/certs", body],
      ["POST", `/certs/${issued.serial}/rotate`, body],
      ["GET", `/certs/${issued.serial}`],
      ["PUT", `/certs/${issued.serial}`],
      ["DELETE", `/certs/${issued.serial}`],
      ["GET", `/things/${k.things.a.id}/serials`],
      ["GET", `/svccerts/things/${k.things.a.id}/serials`],
    ];
    for (const [method, path, b] of routes) {
      for (const auth of [undefined, "Token x", "bearer " + k.tokens.admin, "Bearer "]) {
        const r = await k.req(method, path, { auth, body: b });
        assert.deepEqual([r.status, r.text], [401, '{"error":"missing or invalid bearer user token"}\n'], `${method} ${path} ${auth}`);
      }
    }
  });

  test("9: invalid or revoked token, too weak a role, unknown thing → 403 failed to perform authorization over the entity", async () => {
    const body = { thing_id: k.things.a.id, ttl: "1h", key_type: "ecdsa", key_bits: 256 };
    const authz = { error: "failed to perform authorization over the entity" };
    for (const token of ["nope", k.tokens.viewer]) {
      const r = await k.req("POST", "/certs", { token, body });
      assert.deepEqual([r.status, r.json], [403, authz]);
    }
    const unknown = await k.req("POST", "/certs", { token: k.tokens.admin, body: { ...body, thing_id: "no-such-thing" } });
    assert.deepEqual([unknown.status, unknown.json], [403, authz]);
    assert.equal((await k.req("POST", "/certs", { token: k.tokens.admin, body })).status, 201, "admin ≥ editor");
    const temp = (await k.registry.createToken("temp", "admin", undefined, "test")).value;
    assert.equal((await k.req("POST", "/certs", { token: temp, body })).status, 201);
    await k.registry.revokeToken("temp", "test");
    assert.deepEqual((await k.req("POST", "/certs", { token: temp, body })).status, 403);
    // A bad token with a bad ttl: authorization comes first (the ttl is parsed when issuing).
    assert.equal((await k.req("POST", "/certs", { token: "nope", body: { ...body, ttl: "abc" } })).status, 403);
  });
});

describe("mainflux API: view, renew, revoke, rotate (E2–E5)", () => {
  let k: MainfluxKit;
  before(async () => {
    k = await mainfluxServer();
  });
  after(() => k.close());

  test("10: view → 200 ViewRes without the key; unknown serial → 404 with any token (before auth); viewer may view", async () => {
    const issued = await k.issue(k.things.a, { key_type: "rsa", key_bits: 2048 });
    const r = await k.req("GET", `/certs/${issued.serial}`, { token: k.tokens.viewer });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { certificate: issued.certificate, serial: issued.serial, expires_at: issued.expires_at, thing_id: k.things.a.id, downloaded: false, key_type: "rsa", key_bits: 2048 });
    for (const token of ["anything", k.tokens.viewer]) {
      for (const serial of ["999", "abc", "0999", "1".repeat(60)]) {
        const missing = await k.req("GET", `/certs/${serial}`, { token });
        assert.deepEqual([missing.status, missing.text], [404, '{"error":"entity not found"}\n'], serial);
      }
    }
    assert.deepEqual((await k.req("GET", `/certs/${issued.serial}`, { token: "wrong" })).status, 403);
  });

  test("11: renew 60 days before expiry → 400 certificate not eligible for renewal yet (the original: 500)", async () => {
    const issued = await k.issue(k.things.a, { ttl: `${60 * 24}h` });
    const r = await k.req("PUT", `/certs/${issued.serial}`, { token: k.tokens.editor });
    assert.deepEqual([r.status, r.json], [400, { error: "certificate not eligible for renewal yet" }]);
    assert.equal((await k.req("PUT", `/certs/${issued.serial}`, { token: k.tokens.viewer })).status, 403, "auth before the window");
    assert.equal((await k.req("PUT", "/certs/12345", { token: k.tokens.editor })).status, 404);
  });

  test("12: renew within the window → 201, new serial, same key type and validity; the old one is gone (404) and on the CRL", async () => {
    const issued = await k.issue(k.things.b, { ttl: "8760h", key_type: "ecdsa", key_bits: 384 });
    k.clock.advance(8760 * HOUR - 10 * DAY);
    try {
      const r = await k.req("PUT", `/certs/${issued.serial}`, { token: k.tokens.editor, raw: "ignored", contentType: "text/plain" });
      assert.equal(r.status, 201);
      assert.deepEqual(Object.keys(r.json), ISSUE_KEYS);
      assert.notEqual(r.json.serial, issued.serial);
      assert.equal(r.json.private_key_type, "ecdsa");
      const { cert, cn } = certOf(r.json.certificate);
      assert.equal(cn, k.things.b.key);
      assert.equal(keyInfo(certificatePublicKey(cert)).curve, "P-384");
      assert.equal(cert.notAfter.getTime() - cert.notBefore.getTime(), 8760 * HOUR, "keeps the old validity");
      assert.ok(Math.abs(cert.notBefore.getTime() - k.clock.now().getTime()) < 5000);
      assert.equal((await k.req("GET", `/certs/${issued.serial}`, { token: k.tokens.viewer })).status, 404);
      const old = await k.server.authority.getCertificate(BigInt(issued.serial).toString(16));
      assert.equal(old?.status, "revoked");
      assert.equal(old?.revocationReason, "superseded");
      const crl = parseCrl((await k.server.authority.currentCrl()).der);
      assert.ok(crl.revoked.has(BigInt(issued.serial).toString(16)));
      // Expired certificates may be renewed too.
      const short = await k.issue(k.things.b, { ttl: "1h" });
      k.clock.advance(2 * HOUR);
      assert.equal((await k.req("PUT", `/certs/${short.serial}`, { token: k.tokens.editor })).status, 201);
    } finally {
      k.clock.offsetMs = 0;
    }
  });

  test("13: revoke → 200 {RevocationTime}; again → 404 failed to revoke certificate; viewer → 403; the certificate is gone", async () => {
    const issued = await k.issue(k.things.a);
    assert.equal((await k.req("DELETE", `/certs/${issued.serial}`, { token: k.tokens.viewer })).status, 403);
    const r = await k.req("DELETE", `/certs/${issued.serial}`, { token: k.tokens.editor });
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json), ["RevocationTime"]);
    assert.match(r.json.RevocationTime, TIME);
    assert.ok(Math.abs(Date.parse(r.json.RevocationTime) - Date.now()) < 5000);
    const again = await k.req("DELETE", `/certs/${issued.serial}`, { token: k.tokens.editor });
    assert.deepEqual([again.status, again.text], [404, '{"error":"failed to revoke certificate"}\n']);
    assert.deepEqual((await k.req("DELETE", "/certs/1", { token: "x" })).json, { error: "failed to revoke certificate" });
    assert.equal((await k.req("GET", `/certs/${issued.serial}`, { token: k.tokens.viewer })).status, 404);
    assert.equal((await k.server.store.getIssuedKey(BigInt(issued.serial).toString(16)))?.ciphertext, null, "the revoked certificate's key is erased");
  });

  test("15: rotate: foreign thing_id → 403; unknown serial → 404; valid → 201 with the body's parameters, old revoked", async () => {
    const issued = await k.issue(k.things.a, { key_type: "rsa", key_bits: 2048 });
    const body = { thing_id: k.things.a.id, ttl: "2h", key_type: "ecdsa", key_bits: 256 };
    const foreign = await k.req("POST", `/certs/${issued.serial}/rotate`, { token: k.tokens.editor, body: { ...body, thing_id: k.things.b.id } });
    assert.deepEqual([foreign.status, foreign.json], [403, { error: "failed to perform authorization over the entity" }]);
    const unknown = await k.req("POST", "/certs/4242/rotate", { token: k.tokens.editor, body });
    assert.deepEqual([unknown.status, unknown.json], [404, { error: "entity not found" }]);
    assert.equal((await k.req("POST", `/certs/${issued.serial}/rotate`, { token: k.tokens.viewer, body })).status, 403);
    assert.deepEqual((await k.req("POST", `/certs/${issued.serial}/rotate`, { token: k.tokens.editor, body: { ...body, key_bits: 1 } })).json, { error: "missing certificate data" });
    const r = await k.req("POST", `/certs/${issued.serial}/rotate`, { token: k.tokens.editor, body });
    assert.equal(r.status, 201);
    assert.equal(r.json.private_key_type, "ecdsa");
    const c = certOf(r.json.certificate).cert;
    assert.equal(c.notAfter.getTime() - c.notBefore.getTime(), 2 * HOUR);
    assert.equal((await k.server.authority.getCertificate(BigInt(issued.serial).toString(16)))?.status, "revoked");
    assert.equal((await k.req("POST", `/certs/${issued.serial}/rotate`, { token: k.tokens.editor, body })).status, 404, "a replaced certificate cannot be rotated again");
  });

  test("concurrent renewals of one certificate: exactly one new certificate", async () => {
    const issued = await k.issue(k.things.a, { ttl: "24h" });
    const answers = await Promise.all(Array.from({ length: 6 }, () => k.req("PUT", `/certs/${issued.serial}`, { token: k.tokens.editor })));
    const statuses = answers.map((a) => a.status).sort();
    assert.deepEqual(statuses.filter((s) => s === 201).length, 1, JSON.stringify(statuses));
    assert.ok(statuses.every((s) => s === 201 || s === 404), JSON.stringify(answers.map((a) => a.text)));
  });
});

describe("mainflux API: list (E6)", () => {
  let k: MainfluxKit;
  const serials: string[] = [];
  before(async () => {
    k = await mainfluxServer();
    // Issued out of expiry order: 300h, 100h, 200h.
    for (const ttl of ["300h", "100h", "200h"]) serials.push((await k.issue(k.things.a, { ttl })).serial);
    await k.issue(k.things.b);
  });
  after(() => k.close());

  const list = (path: string, token?: string) => k.req("GET", path, { token: token ?? k.tokens.viewer });

  test("19: the page, sorted by expiry; empty list is []; /svccerts answers the same", async () => {
    const r = await list(`/things/${k.things.a.id}/serials`);
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json), ["total", "offset", "limit", "certs"]);
    assert.deepEqual([r.json.total, r.json.offset, r.json.limit], [3, 0, 10]);
    assert.deepEqual(r.json.certs.map((c: { cert_serial: string }) => c.cert_serial), [serials[1], serials[2], serials[0]]);
    assert.deepEqual(Object.keys(r.json.certs[0]), ["thing_id", "cert_serial", "expires_at", "downloaded"]);
    assert.deepEqual([r.json.certs[0].thing_id, r.json.certs[0].downloaded], [k.things.a.id, false]);
    const empty = await list(`/things/${k.things.empty.id}/serials`);
    assert.equal(empty.text, '{"total":0,"offset":0,"limit":10,"certs":[]}\n');
    assert.equal((await list(`/svccerts/things/${k.things.a.id}/serials`)).text, r.text);
    assert.equal((await list(`/things/no-such-thing/serials`)).status, 403);
    assert.equal((await list(`/things/${k.things.a.id}/serials`, "bad-token")).status, 403);
  });

  test("19: paging: offset and limit echo the request; limit 0 gives the real total", async () => {
    const r = await list(`/things/${k.things.a.id}/serials?offset=1&limit=1`);
    assert.deepEqual([r.json.total, r.json.offset, r.json.limit, r.json.certs.map((c: { cert_serial: string }) => c.cert_serial)], [3, 1, 1, [serials[2]]]);
    const zero = await list(`/things/${k.things.a.id}/serials?limit=0`);
    assert.deepEqual([zero.json.total, zero.json.certs], [3, []]);
    const far = await list(`/things/${k.things.a.id}/serials?offset=99`);
    assert.deepEqual([far.json.total, far.json.offset, far.json.certs], [3, 99, []]);
    assert.equal((await list(`/things/${k.things.a.id}/serials?limit=200`)).status, 200);
  });

  test("20: limit 201 → 400 invalid limit size (after the token); bad or repeated parameters → 400 invalid query parameters (before it)", async () => {
    const big = await list(`/things/${k.things.a.id}/serials?limit=201`);
    assert.deepEqual([big.status, big.text], [400, '{"error":"invalid limit size"}\n']);
    assert.equal((await k.req("GET", `/things/${k.things.a.id}/serials?limit=201`)).status, 401);
    for (const q of ["limit=-1", "from=2026-01-01", "offset=1&offset=2", "limit=abc", "limit=", "to=2026-02-30T00:00:00Z", "offset=+1"]) {
      const r = await list(`/things/${k.things.a.id}/serials?${q}`);
      assert.deepEqual([r.status, r.json], [400, { error: "invalid query parameters" }], q);
      assert.equal((await k.req("GET", `/things/${k.things.a.id}/serials?${q}`)).status, 400, `${q}: before the token`);
    }
  });

  test("21: serial, from and to narrow both certs and total", async () => {
    const target = serials[2]!;
    const part = target.slice(5, 17);
    const bySerial = await list(`/things/${k.things.a.id}/serials?serial=${part}`);
    assert.deepEqual([bySerial.json.total, bySerial.json.certs.map((c: { cert_serial: string }) => c.cert_serial)], [1, [target]]);
    const all = (await list(`/things/${k.things.a.id}/serials`)).json.certs as Array<{ expires_at: string }>;
    const from = encodeURIComponent(all[1]!.expires_at);
    const to = encodeURIComponent(all[2]!.expires_at);
    const window = await list(`/things/${k.things.a.id}/serials?from=${from}&to=${to}`);
    assert.deepEqual([window.json.total, window.json.certs.map((c: { cert_serial: string }) => c.cert_serial)], [1, [serials[2]]], "from inclusive, to exclusive");
    const after = await list(`/svccerts/things/${k.things.a.id}/serials?from=${from}`);
    assert.equal(after.json.total, 2);
    const offset = new Date(Date.parse(all[1]!.expires_at) + 2 * HOUR).toISOString().replace(/\.\d+Z$/, "+02:00");
    assert.equal((await list(`/things/${k.things.a.id}/serials?from=${encodeURIComponent(offset)}`)).json.total, 2, "offsets are honoured");
  });
});
