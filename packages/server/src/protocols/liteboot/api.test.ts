/**
 * liteboot's REST API against the compatibility checklist (spec §12): cr in
 * JSON and CBOR with exact bytes, ds/cs/cc/ccs, errors in the original's
 * form, routing, keep-alive, response sizes, and the real kur/krr.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tls from "node:tls";
import { after, before, describe, test } from "node:test";
import {
  buildCsr, decodeName, extendedKeyUsages, generateKeyPair, parseCertificate, pemEncode, serialToHex, type ParsedCertificate,
} from "@tessera/pki";
import type { RunningServer } from "../../server.js";
import { header, tempDir, type RawResponse } from "../../test-support.js";
import { crCbor, issueBootstrap, lb, litebootServer, newDevice, type PemIdentity } from "./test-kit.js";

let server: RunningServer;
let base: string;
let ca: string;
let boot: PemIdentity;

before(async () => {
  ({ server, base, ca, boot } = await litebootServer());
});
after(() => server.close(100));

const call = (route: string, opts: Parameters<typeof lb>[3] = {}) => lb(base, ca, route, { as: boot, ...opts });
const json = (r: RawResponse) => r.body.toString("utf8");

/** Enrolls a device over cr (CBOR); returns its certificate. */
async function enrollCbor(dev = newDevice()): Promise<{ cert: ParsedCertificate; response: RawResponse; dev: ReturnType<typeof newDevice> }> {
  const response = await call("/api/v1/cr", { contentType: "application/cbor", body: crCbor(dev.csr) });
  assert.equal(response.status, 200, json(response));
  const len = response.body.readUInt16BE(5);
  return { cert: parseCertificate(response.body.subarray(7, 7 + len)), response, dev };
}

describe("cr", () => {
  test("CBOR: a2 01 00 02 59 <len16> <DER> and nothing after; the whole answer under 1 KiB with Content-Length", async () => {
    const { response, cert, dev } = await enrollCbor();
    assert.equal(header(response, "Content-Type"), "application/cbor");
    assert.ok(response.body.subarray(0, 5).equals(Buffer.from("a201000259", "hex")));
    assert.equal(response.body.length, 7 + response.body.readUInt16BE(5), "nothing after the certificate");
    const wire = Buffer.byteLength(response.headers.map(([n, v]) => `${n}: ${v}\r\n`).join("") + response.statusLine + "\r\n\r\n") + response.body.length;
    assert.ok(wire < 1024, `cr answer is ${wire} bytes`);
    // Issued as spec §4.1 (+ §11.4): Go's subject order O, OU, CN; positive int64 serial; ECDSA-SHA256; clientAuth.
    assert.deepEqual(decodeName(cert.subject), [{ type: "O", value: "Test Vendor" }, { type: "OU", value: "Signing" }, { type: "CN", value: dev.uuid }]);
    const serial = BigInt("0x" + cert.serialHex);
    assert.ok(serial > 0n && serial < 1n << 63n);
    assert.equal(cert.signatureOid, "1.2.840.10045.4.3.2");
    assert.deepEqual(extendedKeyUsages(cert), ["1.3.6.1.5.5.7.3.2"]);
    assert.equal((await server.authority.getCertificate(cert.serialHex))?.status, "valid", "stored before it was returned");
    // openssl verify -CAfile certs/CA.crt (here: Tessera's chain).
    const dir = tempDir("tessera-lb-verify-");
    fs.writeFileSync(path.join(dir, "ca.pem"), ca);
    fs.writeFileSync(path.join(dir, "dev.pem"), pemEncode("CERTIFICATE", cert.der));
    assert.equal(execFileSync("openssl", ["verify", "-CAfile", "ca.pem", "dev.pem"], { cwd: dir }).toString().trim(), "dev.pem: OK");
  });

  test("JSON, typed or untyped, key in any case: {\"Status\":0,\"Cert\":\"<base64 DER>\"}\\n", async () => {
    for (const [contentType, key] of [["application/json", "CSR"], [undefined, "csr"], ["", "Csr"]] as const) {
      const dev = newDevice();
      const r = await call("/api/v1/cr", { contentType, body: JSON.stringify({ [key]: dev.csr.toString("base64"), ignored: 1 }) });
      assert.equal(r.status, 200, json(r));
      assert.equal(header(r, "Content-Type"), "application/json");
      const m = /^\{"Status":0,"Cert":"([A-Za-z0-9+/=]+)"\}\n$/.exec(json(r));
      assert.ok(m, json(r));
      assert.ok(parseCertificate(Buffer.from(m[1]!, "base64")).spki.length > 0);
    }
  });

  test("errors in the original's form; nothing stored", async () => {
    const before = (await server.authority.listCertificates()).length;
    const rsaKey = generateKeyPair("rsa-2048").privateKey;
    const rsa = buildCsr({ subject: [{ type: "CN", value: "2b9f7e9c-6c4e-4d6b-9a8f-000000000001" }], privateKey: rsaKey });
    const badSig = Buffer.from(newDevice().csr);
    badSig[badSig.length - 1] = badSig[badSig.length - 1]! ^ 0x42;
    const cases: Array<[string, Promise<RawResponse>, number, string, string | RegExp]> = [
      ["text/plain", call("/api/v1/cr", { contentType: "text/plain", body: "x" }), 400, "text/plain; charset=utf-8", '{"error": "Bad request: Content-Type must be application/cbor or application/json"}'],
      ["json charset", call("/api/v1/cr", { contentType: "application/json; charset=utf-8", body: "{}" }), 400, "text/plain; charset=utf-8", /Content-Type must be/],
      ["CBOR map", call("/api/v1/cr", { contentType: "application/cbor", body: Buffer.from("a10102", "hex") }), 400, "application/cbor", '{"error": "Bad request: POST data did not match specified Content-Type"}'],
      ["CBOR 2-array", call("/api/v1/cr", { contentType: "application/cbor", body: Buffer.from("82410141 02", "hex") }), 400, "application/cbor", /did not match/],
      ["CBOR tstr", call("/api/v1/cr", { contentType: "application/cbor", body: Buffer.from("816161", "hex") }), 400, "application/cbor", /did not match/],
      ["malformed CBOR", call("/api/v1/cr", { contentType: "application/cbor", body: Buffer.from("9f5803", "hex") }), 400, "application/cbor", /did not match/],
      ["malformed JSON", call("/api/v1/cr", { contentType: "application/json", body: "{\"CSR\": " }), 400, "application/json", /did not match/],
      ["bad base64", call("/api/v1/cr", { contentType: "application/json", body: '{"CSR":"***"}' }), 400, "application/json", /did not match/],
      ["RSA key", call("/api/v1/cr", { contentType: "application/cbor", body: crCbor(rsa) }), 400, "application/cbor", "err: Expecting ECDSA key on CSR"],
      ["bad signature", call("/api/v1/cr", { contentType: "application/cbor", body: crCbor(badSig) }), 400, "application/cbor", /^err: /],
      ["CN not a UUID", call("/api/v1/cr", { contentType: "application/cbor", body: crCbor(newDevice({ uuid: "server.example.com" }).csr) }), 400, "application/cbor", "err: subject CN must be a lower-case UUID"],
      ["upper-case UUID", call("/api/v1/cr", { contentType: "application/cbor", body: crCbor(newDevice({ uuid: "2B9F7E9C-6C4E-4D6B-9A8F-000000000002" }).csr) }), 400, "application/cbor", /lower-case UUID/],
      ["bootstrap OU", call("/api/v1/cr", { contentType: "application/cbor", body: crCbor(newDevice({ ou: "LinaroCA Bootstrap Cert" }).csr) }), 400, "application/cbor", /reserved for bootstrap/],
      ["oversized", call("/api/v1/cr", { contentType: "application/cbor", body: Buffer.alloc(70_000, 0x41) }), 413, "text/plain; charset=utf-8", /too large/],
    ];
    for (const [name, pending, status, type, body] of cases) {
      const r = await pending;
      assert.equal(r.status, status, `${name}: ${json(r)}`);
      assert.equal(header(r, "Content-Type"), type, name);
      if (typeof body === "string") assert.equal(json(r), body, name);
      else assert.match(json(r), body, name);
      assert.ok(!(r.body[0] === 0xa2 && r.body[3] === 0x02), `${name}: no error looks like a cr answer to the firmware's parser (checklist 20)`);
    }
    assert.equal((await server.authority.listCertificates()).length, before);
  });

  test("a CSR without OU (which crashes the original) is answered", async () => {
    const { cert } = await enrollCbor(newDevice({ ou: null }));
    assert.deepEqual(decodeName(cert.subject).map((a) => a.type), ["O", "CN"]);
  });
});

describe("ds, cs, cc, ccs", () => {
  test("after cr: ds lists the serials in issue order with exact digits, cs says 1, cc returns the same DER", async () => {
    const uuid = "6f1d7c2a-93b5-4c7e-8a41-5d0e9b3f2a10";
    const a = await enrollCbor(newDevice({ uuid, ou: "Device Client TLS" }));
    const b = await enrollCbor(newDevice({ uuid, ou: "Device COSE SIGN/Encrypt" }));
    const serials = [a.cert, b.cert].map((c) => BigInt("0x" + c.serialHex));
    for (const form of [uuid, uuid.toUpperCase(), `{${uuid}}`, `urn:uuid:${uuid}`, uuid.replace(/-/g, "")]) {
      const r = await call(`/api/v1/ds/${encodeURIComponent(form)}`);
      assert.equal(json(r), `{"Status":1,"Serials":[${serials.join(",")}]}\n`, form);
    }
    const cbor = await call(`/api/v1/ds/${uuid}`, { contentType: "application/cbor" });
    const want = Buffer.concat([Buffer.from("a201010282", "hex"), ...serials.map((s) => Buffer.concat([Buffer.from([0x1b]), Buffer.from(s.toString(16).padStart(16, "0"), "hex")]))]);
    assert.ok(cbor.body.equals(want), cbor.body.toString("hex"));
    const s = serials[0]!;
    assert.equal(json(await call(`/api/v1/cs/${s}`)), '{"Status":1}\n');
    assert.equal(json(await call(`/api/v1/cs/+000${s}`)), '{"Status":1}\n', "sign and leading zeros");
    assert.ok((await call(`/api/v1/cs/${s}`, { contentType: "application/cbor" })).body.equals(Buffer.from("a10101", "hex")));
    const cc = await call(`/api/v1/cc/${s}`);
    const pem = (JSON.parse(json(cc)) as { Status: number; Cert: string }).Cert;
    assert.match(json(cc), /^\{"Status":0,"Cert":"-----BEGIN CERTIFICATE-----\\n/);
    assert.ok(pem.endsWith("-----END CERTIFICATE-----\n"));
    assert.ok(parseCertificate(pem).der.equals(a.cert.der));
    const ccCbor = (await call(`/api/v1/cc/${s}`, { contentType: "application/cbor" })).body;
    assert.ok(ccCbor.subarray(0, 5).equals(Buffer.from("a201000279", "hex")), "Cert is a tstr in cc");
    assert.equal(ccCbor.subarray(7).toString("utf8"), pem);
  });

  test("ds of an unknown device, bad UUIDs and serials; GET with a foreign Content-Type", async () => {
    assert.equal(json(await call("/api/v1/ds/00000000-0000-4000-8000-000000000000")), '{"Status":0,"Serials":null}\n');
    assert.ok((await call("/api/v1/ds/00000000-0000-4000-8000-000000000000", { contentType: "application/cbor" })).body.equals(Buffer.from("a2010002f6", "hex")));
    const bad: Array<[string, number, string, Parameters<typeof lb>[3]?]> = [
      ["/api/v1/ds/xyz", 400, '{"error": "need a valid UUID"}'],
      ["/api/v1/cs/abc", 400, '{"error": "invalid request"}'],
      ["/api/v1/cc/abc", 400, '{"error": "invalid request"}'],
      ["/api/v1/cs/1234567890123456789", 400, '{"error": "invalid serial number"}'],
      ["/api/v1/cc/1234567890123456789", 400, '{"error": "invalid serial number"}'],
      ["/api/v1/ccs", 400, '{"error": "bad request: Content-Type must be application/cbor or application/json"}', { contentType: "application/xml" }],
      ["/api/v1/ds/00000000-0000-4000-8000-000000000000", 400, '{"error": "bad request: Content-Type must be application/cbor or application/json"}', { contentType: "application/xml" }],
    ];
    for (const [route, status, body, opts] of bad) {
      const r = await call(route, opts);
      assert.deepEqual([r.status, json(r), header(r, "Content-Type")], [status, body, "text/plain; charset=utf-8"], route);
    }
  });

  test("ccs: the configured hub in JSON and CBOR (checklist 13); Accept never matters", async () => {
    const r = await call("/api/v1/ccs", { headers: { Accept: "application/cbor" } });
    assert.equal(json(r), '{"Hubname":"azure-hub-name","Port":8883}\n');
    const c = await call("/api/v1/ccs", { contentType: "application/cbor", headers: { Accept: "application/cbor" } });
    assert.equal(c.body.toString("hex"), "a2016e617a7572652d6875622d6e616d65021922b3");
  });
});

describe("routing and connections", () => {
  test("/, /api/v1, unknown paths and wrong methods answer as gorilla/mux does", async () => {
    for (const method of ["GET", "POST", "DELETE"]) {
      const r = await call("/", { method, body: method === "GET" ? undefined : "" });
      assert.deepEqual([r.status, json(r)], [200, "Linaro CA HTTP server\n"], method);
    }
    const v1 = await call("/api/v1");
    assert.deepEqual([v1.status, json(v1), header(v1, "Content-Type")], [404, '{"message": "endpoint not found"}', "application/json"]);
    const nope = await call("/api/v1/nope");
    assert.deepEqual([nope.status, json(nope), header(nope, "Content-Type")], [404, "404 page not found\n", "text/plain; charset=utf-8"]);
    const get = await call("/api/v1/cr");
    assert.deepEqual([get.status, get.body.length, header(get, "Content-Length")], [405, 0, "0"]);
    assert.equal((await call("/api/v1/ccs", { method: "POST", body: "" })).status, 405);
  });

  test("two requests on one keep-alive connection (cr, then ccs) are both answered", async () => {
    const dev = newDevice();
    const u = new URL(base);
    const body = crCbor(dev.csr);
    const text = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: u.hostname, port: Number(u.port), ca, cert: boot.certPem, key: boot.keyPem, maxVersion: "TLSv1.2", ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256" }, () => {
        s.write(`POST /api/v1/cr HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/cbor\r\nContent-Length: ${body.length}\r\n\r\n`);
        s.write(body);
        s.write(`GET /api/v1/ccs HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/cbor\r\n\r\n`);
      });
      let all = "";
      s.on("data", (c: Buffer) => {
        all += c.toString("latin1");
        if ((all.match(/HTTP\/1\.1 200 OK/g) ?? []).length === 2 && all.endsWith(Buffer.from("021922b3", "hex").toString("latin1"))) {
          s.end();
          resolve(all);
        }
      });
      s.on("error", reject);
    });
    assert.equal((text.match(/HTTP\/1\.1 200 OK\r\n/g) ?? []).length, 2);
  });
});

describe("kur and krr", () => {
  test("kur renews with the device's own certificate (new key allowed), superseding it; krr revokes; bootstrap certificates cannot use them", async () => {
    const first = await enrollCbor(newDevice({ ou: "Device Client TLS" }));
    const device: PemIdentity = { certPem: pemEncode("CERTIFICATE", first.cert.der), keyPem: first.dev.key.export({ type: "pkcs8", format: "pem" }) as string };
    const rekey = newDevice({ uuid: first.dev.uuid, ou: "Device Client TLS" });
    const kur = await lb(base, ca, "/api/v1/kur", { as: device, contentType: "application/cbor", body: crCbor(rekey.csr) });
    assert.equal(kur.status, 200, json(kur));
    const second = parseCertificate(kur.body.subarray(7));
    assert.notEqual(second.serialHex, first.cert.serialHex);
    const s1 = BigInt("0x" + first.cert.serialHex);
    const s2 = BigInt("0x" + second.serialHex);
    assert.equal(json(await call(`/api/v1/cs/${s1}`)), '{"Status":0}\n', "the old certificate is superseded");
    assert.equal(json(await call(`/api/v1/ds/${first.dev.uuid}`)), `{"Status":1,"Serials":[${s2}]}\n`);
    // Another subject is refused; a bootstrap certificate cannot call kur/krr.
    const other = await lb(base, ca, "/api/v1/kur", { as: { certPem: pemEncode("CERTIFICATE", second.der), keyPem: rekey.key.export({ type: "pkcs8", format: "pem" }) as string }, contentType: "application/cbor", body: crCbor(newDevice({ ou: "Device Client TLS" }).csr) });
    assert.equal(other.status, 400);
    assert.equal((await call("/api/v1/kur", { contentType: "application/cbor", body: crCbor(rekey.csr) })).status, 403);
    assert.equal((await call("/api/v1/krr", { contentType: "application/json", body: "{}" })).status, 403);
    // krr: the device revokes its current certificate.
    const current: PemIdentity = { certPem: pemEncode("CERTIFICATE", second.der), keyPem: rekey.key.export({ type: "pkcs8", format: "pem" }) as string };
    const krr = await lb(base, ca, "/api/v1/krr", { as: current, contentType: "application/json", body: JSON.stringify({ Serial: String(s2), Reason: "keyCompromise" }) });
    assert.deepEqual([krr.status, json(krr)], [200, '{"Status":0}\n']);
    const rec = await server.authority.getCertificate(serialToHex(s2));
    assert.deepEqual([rec?.status, rec?.revocationReason], ["revoked", "keyCompromise"]);
    assert.equal(json(await call(`/api/v1/cs/${s2}`)), '{"Status":0}\n');
    assert.equal(json(await call(`/api/v1/ds/${first.dev.uuid}`)), '{"Status":0,"Serials":null}\n');
  });
});

describe("options", () => {
  let other: RunningServer;
  let otherBase: string;
  let otherBoot: PemIdentity;
  let otherDataDir: string;
  before(async () => {
    ({ server: other, base: otherBase, boot: otherBoot, dataDir: otherDataDir } = await litebootServer((c) => {
      c.liteboot.appendHubToCr = true;
      c.liteboot.verifyCsrSignature = false;
      c.liteboot.ccsByScope = { eu: { hubname: "eu-hub", mqttPort: 8884 } };
    }));
  });
  after(() => other.close(100));

  test("append_hub_to_cr adds hub name (3) and port (4) for the older firmware; an unverified CSR signature passes when switched off", async () => {
    const dev = newDevice();
    const badSig = Buffer.from(dev.csr);
    badSig[badSig.length - 1] = badSig[badSig.length - 1]! ^ 0x42;
    const r = await lb(otherBase, other.authority.chainPem(), "/api/v1/cr", { as: otherBoot, contentType: "application/cbor", body: crCbor(badSig) });
    assert.equal(r.status, 200, json(r));
    const len = r.body.readUInt16BE(5);
    assert.equal(r.body.subarray(7 + len).toString("hex"), "036e617a7572652d6875622d6e616d65041922b3");
    assert.equal(r.body[0], 0xa4, "a map of four entries");
    const j = await lb(otherBase, other.authority.chainPem(), "/api/v1/cr", { as: otherBoot, contentType: "application/json", body: JSON.stringify({ CSR: newDevice().csr.toString("base64") }) });
    assert.match(json(j), /^\{"Status":0,"Cert":"[^"]+","Hubname":"azure-hub-name","Port":8883\}\n$/);
  });

  test("ccs per bootstrap scope: a device on an \"eu\" bootstrap certificate gets the eu hub, others the global one", async () => {
    const eu = await issueBootstrap(otherDataDir, "eu-line", ["--scope", "eu"]);
    const ccs = (as: PemIdentity) => lb(otherBase, other.authority.chainPem(), "/api/v1/ccs", { as });
    assert.equal(json(await ccs(eu)), '{"Hubname":"eu-hub","Port":8884}\n');
    assert.equal(json(await ccs(otherBoot)), '{"Hubname":"azure-hub-name","Port":8883}\n');
  });
});
