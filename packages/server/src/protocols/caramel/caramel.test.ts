/**
 * Caramel's server side against the spec's compatibility checklist (items
 * 1–21 and the admin commands of 24), plus Tessera's additions: 304 for an
 * unchanged certificate, auto signing of new UUIDs, renewal over the current
 * certificate, the refresh scheduler, and a restart between post and poll.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { createHash, randomUUID, type KeyObject } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  basicConstraints, buildCsr, certificateSans, certificatePublicKey, extendedKeyUsages, formatSan, generateKeyPair, keysMatch, parseCertificate,
  pemEncode, verifyCertificateSignature, type NameAttribute,
} from "@tessera/pki";
import type { RunningServer } from "../../server.js";
import { header, rawRequest, startTestServer, TestClock, type RawResponse } from "../../test-support.js";
import type { TesseraConfig } from "../../config/types.js";

const HOUR = 3600_000;

async function caramelServer(configure?: (c: TesseraConfig) => void, env: Record<string, string> = {}) {
  const clock = new TestClock();
  const { server, dataDir } = await startTestServer(env, { clock, configure });
  return { server, clock, dataDir, base: server.url.replace("://localhost", "://127.0.0.1"), ca: pemEncode("CERTIFICATE", server.authority.ca.root.der) };
}

/** A CSR as the clients make it: the CA's subject with CN = client id (here O=Tessera, CN=<id>), canonical PEM. */
function csrPem(cn: string | null, opts: { key?: KeyObject; subject?: NameAttribute[] } = {}): { pem: string; sha: string; key: KeyObject } {
  const key = opts.key ?? generateKeyPair("rsa-2048").privateKey;
  const subject = opts.subject ?? [{ type: "O", value: "Tessera" }, ...(cn === null ? [] : [{ type: "CN", value: cn }])];
  const pem = pemEncode("CERTIFICATE REQUEST", buildCsr({ subject, privateKey: key }));
  return { pem, sha: createHash("sha256").update(pem).digest("hex"), key };
}

describe("manual signing", () => {
  let server: RunningServer;
  let base: string;
  let ca: string;
  let dataDir: string;
  before(async () => {
    ({ server, base, ca, dataDir } = await caramelServer());
  });
  after(() => server.close(100));

  const req = (path: string, opts: Partial<Parameters<typeof rawRequest>[1]> = {}) => rawRequest(base, { path, ca, ...opts });
  const post = (sha: string, body: string | Buffer, headers: Record<string, string> = {}) => req(`/${sha}`, { method: "POST", body, headers });
  const cli = async (args: string[]) => {
    const { main } = await import("../../cli/main.js");
    const out: string[] = [];
    const code = await main([...args, "--json"], { out: (t) => out.push(t), err: (t) => out.push(t) }, { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "silent", TESSERA_LITEBOOT_LISTEN: "off" });
    return { code, out: out.join("\n") };
  };
  const problem = (r: RawResponse) => ({ status: r.status, type: header(r, "Content-Type"), body: JSON.parse(r.body.toString()) as { status: number; title: string; detail: string | null } });

  test("root.crt and bundle.crt: the self-signed root, text/plain, cached an hour; GET / answers over TLS", async () => {
    const root = await req("/root.crt");
    assert.equal(root.status, 200);
    assert.equal(header(root, "Content-Type"), "text/plain; charset=UTF-8");
    assert.equal(header(root, "Cache-Control"), "max-age=3600");
    assert.ok(Math.abs(Date.parse(header(root, "Expires")!) - Date.now() - HOUR) < 5000);
    const cert = parseCertificate(root.body.toString());
    assert.ok(cert.subject.equals(cert.issuer));
    assert.ok((await req("/bundle.crt")).body.equals(root.body));
    assert.ok((await req("/root.crt", { method: "HEAD" })).headers.some(([n, v]) => n === "Content-Length" && v === String(root.body.length)), "HEAD mirrors GET headers");
    assert.deepEqual(problem(await req("/")), { status: 404, type: "application/problem+json", body: { status: 404, title: "Not Found", detail: "/" } });
  });

  test("post → 202 pending body; duplicate, hash mismatch, lengths, non-canonical PEM, bad signature, subject prefix", async () => {
    const c = csrPem("client-1");
    const r = await post(c.sha, c.pem, { "Content-Type": "application/x-www-form-urlencoded" });
    assert.equal(r.status, 202);
    assert.equal(header(r, "Content-Type"), "application/json");
    assert.equal(r.body.toString(), `{"sha256": "${c.sha}", "url": "https://${new URL(base).host}/${c.sha}"}`);
    const detail = async (p: Promise<RawResponse>) => {
      const x = problem(await p);
      return [x.status, x.body.detail, x.type];
    };
    assert.deepEqual(await detail(post(c.sha, c.pem)), [400, "duplicate request", "application/problem+json"]);
    const other = csrPem("client-2");
    assert.deepEqual(await detail(post(c.sha.replace(/^./, "0"), other.pem)), [400, `hash mismatch (${other.sha})`, "application/problem+json"]);
    const shaOf = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");
    for (const bad of [other.pem + "\n", other.pem.replace(/\n/g, "\r\n"), "x" + other.pem, other.pem + other.pem]) {
      assert.deepEqual(await detail(post(shaOf(bad), bad)), [400, "crypto error: invalid PEM reqtext", "application/problem+json"], JSON.stringify(bad.slice(0, 20)));
    }
    const der = Buffer.from(other.pem.split("\n").slice(1, -2).join(""), "base64");
    assert.deepEqual(await detail(post(shaOf(der), der)), [400, "crypto error: invalid PEM reqtext", "application/problem+json"]);
    der[der.length - 1] = der[der.length - 1]! ^ 0x33;
    const badSig = pemEncode("CERTIFICATE REQUEST", der);
    assert.deepEqual(await detail(post(shaOf(badSig), badSig)), [400, "crypto error: Invalid Request", "application/problem+json"]);
    const wrongOrg = csrPem("x", { subject: [{ type: "O", value: "Other AB" }, { type: "CN", value: "x" }] });
    assert.deepEqual(await detail(post(wrongOrg.sha, wrongOrg.pem)), [400, "Bad subject: (('O', 'Other AB'),) do not match (('O', 'Tessera'),)", "application/problem+json"]);
    const tooFew = csrPem(null, { subject: [] });
    assert.deepEqual(await detail(post(tooFew.sha, tooFew.pem)), [400, "Bad subject: Too few subject components", "application/problem+json"]);
    // Matching prefix with any OU, extra RDNs or no CN: accepted.
    for (const subject of [[{ type: "O", value: "Tessera" }, { type: "OU", value: "x" }, { type: "CN", value: "y" }, { type: "L", value: "z" }], [{ type: "O", value: "Tessera" }]]) {
      const ok = csrPem(null, { subject });
      assert.equal((await post(ok.sha, ok.pem)).status, 202);
    }
    // Lengths: none → 411, 2049 → 413, 2048 → not 413.
    const noLength = await new Promise<RawResponse>((resolve, reject) => {
      rawRequest(base, { method: "POST", path: `/${c.sha}`, ca, body: "", headers: {} }).then(resolve, reject);
    });
    assert.ok([411, 400].includes(noLength.status));
    const big = "A".repeat(2049);
    assert.deepEqual(await detail(post(shaOf(big), big)), [413, "Max size: 2.0 kB", "application/problem+json"]);
    const edge = "A".repeat(2048);
    assert.equal((await post(shaOf(edge), edge)).status, 400, "2048 bytes pass the size check (and fail as PEM)");
  });

  test("every canonical PEM is accepted, whatever its length (a last line of exactly 64 characters included)", async () => {
    const key = generateKeyPair("ec-p256").privateKey;
    const lastLines = new Set<number>();
    for (let n = 1; n <= 48; n++) {
      const c = csrPem("c".repeat(n), { key });
      lastLines.add(c.pem.split("\n").at(-3)!.length);
      const r = await post(c.sha, c.pem);
      assert.equal(r.status, 202, `CN of ${n}: ${r.body}`);
    }
    assert.ok(lastLines.has(64), "the lengths tried include a full last line");
  });

  test("polling: unknown 404, pending 202, signed 200 (exact PEM, Last-Modified, 304 when unchanged), rejected 403; paths", async () => {
    const c = csrPem("client-poll");
    const unknown = problem(await req(`/${c.sha}`));
    assert.deepEqual(unknown, { status: 404, type: "application/problem+json", body: { status: 404, title: "Not Found", detail: null } });
    assert.equal((await post(c.sha, c.pem)).status, 202);
    assert.equal((await req(`/${c.sha}`)).status, 202);
    assert.equal((await req(`/${c.sha.toUpperCase()}`)).status, 404, "uppercase hex is not a hash");
    assert.equal((await req(`/${c.sha}/`)).status, 404, "trailing slash");
    assert.equal((await cli(["caramel", "sign", c.sha])).code, 0);
    const signed = await req(`//${c.sha}?x=1`);
    assert.equal(signed.status, 200);
    assert.equal(header(signed, "Content-Type"), "application/octet-stream");
    const again = await req(`/${c.sha}`);
    assert.ok(again.body.equals(signed.body), "repeated GETs are byte-identical");
    const lastModified = header(signed, "Last-Modified")!;
    const unchanged = await req(`/${c.sha}`, { headers: { "If-Modified-Since": lastModified } });
    assert.deepEqual([unchanged.status, unchanged.body.length], [304, 0], "nothing transferred when unchanged");
    const older = await req(`/${c.sha}`, { headers: { "If-Modified-Since": new Date(Date.parse(lastModified) - 60_000).toUTCString() } });
    assert.equal(older.status, 200);
    // Certificate as spec §4: subject from the CSR, issuer the root, CA:FALSE critical, EKU client+server, SAN DNS:<CN>, no KU, exact lifetime.
    const cert = parseCertificate(signed.body.toString());
    assert.ok(cert.issuer.equals(server.authority.ca.root.subject));
    assert.ok(verifyCertificateSignature(cert, certificatePublicKey(server.authority.ca.root)), "signed by the root the clients trust");
    assert.ok(keysMatch(c.key, certificatePublicKey(cert)));
    assert.equal(basicConstraints(cert)?.ca, false);
    assert.deepEqual(extendedKeyUsages(cert), ["1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.1"]);
    assert.deepEqual(certificateSans(cert).map(formatSan), ["DNS:client-poll"]);
    assert.equal(cert.extensions.some((e) => e.oid === "2.5.29.15"), false, "no keyUsage");
    assert.equal(cert.notAfter.getTime() - cert.notBefore.getTime(), 48 * HOUR);

    const r = csrPem("client-rejected");
    await post(r.sha, r.pem);
    assert.equal((await cli(["caramel", "reject", r.sha])).code, 0);
    assert.deepEqual(problem(await req(`/${r.sha}`)), { status: 403, type: "application/problem+json", body: { status: 403, title: "Forbidden", detail: null } });
    assert.equal((await cli(["caramel", "sign", r.sha])).code, 5, "refusing to sign a rejected request");
  });

  test("caramel list shows ID, CN, SHA-256 and the newest notAfter, signed first; --long signs for the long lifetime", async () => {
    const c = csrPem("client-long");
    await post(c.sha, c.pem);
    const listed = JSON.parse((await cli(["caramel", "list"])).out) as Array<{ sha256: string; notAfter: string | null; commonName: string }>;
    const row = listed.find((x) => x.sha256 === c.sha)!;
    assert.deepEqual([row.commonName, row.notAfter], ["client-long", null]);
    assert.ok(listed.findIndex((x) => x.notAfter === null) > listed.findLastIndex((x) => x.notAfter !== null), "signed first");
    const signed = JSON.parse((await cli(["caramel", "sign", c.sha, "--long"])).out) as { notAfter: string };
    assert.ok(Math.abs(Date.parse(signed.notAfter) - Date.now() - 30 * 24 * HOUR) < 10_000);
  });
});

describe("auto signing, renewal, refresh, restart", () => {
  let server: RunningServer;
  let clock: TestClock;
  let base: string;
  let ca: string;
  let dataDir: string;
  before(async () => {
    ({ server, clock, base, ca, dataDir } = await caramelServer((c) => {
      c.caramel.mode = "auto";
    }));
  });
  after(() => server?.close(100));

  test("auto mode signs a UUID not seen before at once, but not a second CSR for it, nor a non-UUID", async () => {
    const id = randomUUID();
    const first = csrPem(id);
    await rawRequest(base, { method: "POST", path: `/${first.sha}`, ca, body: first.pem });
    assert.equal((await rawRequest(base, { path: `/${first.sha}`, ca })).status, 200);
    const second = csrPem(id);
    const p2 = await rawRequest(base, { method: "POST", path: `/${second.sha}`, ca, body: second.pem });
    assert.equal(p2.status, 202, p2.body.toString());
    assert.equal((await rawRequest(base, { path: `/${second.sha}`, ca })).status, 202, "a known id needs the operator (or its certificate)");
    const named = csrPem("not-a-uuid");
    const p3 = await rawRequest(base, { method: "POST", path: `/${named.sha}`, ca, body: named.pem });
    assert.equal(p3.status, 202, p3.body.toString());
    assert.equal((await rawRequest(base, { path: `/${named.sha}`, ca })).status, 202);
  });

  test("a device presenting its current certificate gets its new CSR signed at once", async () => {
    const id = randomUUID();
    const first = csrPem(id, { key: generateKeyPair("ec-p256").privateKey });
    await rawRequest(base, { method: "POST", path: `/${first.sha}`, ca, body: first.pem });
    const certPem = (await rawRequest(base, { path: `/${first.sha}`, ca })).body.toString();
    const next = csrPem(id, { key: generateKeyPair("ec-p256").privateKey });
    const keyPem = first.key.export({ type: "pkcs8", format: "pem" }) as string;
    await rawRequest(base, { method: "POST", path: `/${next.sha}`, ca, body: next.pem, cert: certPem, key: keyPem });
    const renewed = await rawRequest(base, { path: `/${next.sha}`, ca });
    assert.equal(renewed.status, 200);
    assert.ok(keysMatch(next.key, certificatePublicKey(parseCertificate(renewed.body.toString()))));
  });

  test("the scheduler re-signs ahead of expiry; an expired certificate alone answers 202; a restart loses nothing", async () => {
    const id = randomUUID();
    const c = csrPem(id);
    await rawRequest(base, { method: "POST", path: `/${c.sha}`, ca, body: c.pem });
    const first = (await rawRequest(base, { path: `/${c.sha}`, ca })).body.toString();
    // Past expiry, nothing re-signed yet: pending (spec §2.2).
    clock.advance(49 * HOUR);
    assert.equal((await rawRequest(base, { path: `/${c.sha}`, ca })).status, 202);
    clock.advance(-49 * HOUR);
    // 30 h later the certificate ends within the 24 h window: refresh gives a new one.
    clock.advance(30 * HOUR);
    const { CaramelService } = await import("./service.js");
    const refreshed = await new CaramelService(server.authority, { ...(await import("../../config/defaults.js")).defaultConfig("/").caramel, mode: "auto" }, () => clock.now()).refresh();
    assert.ok(refreshed >= 1);
    const second = (await rawRequest(base, { path: `/${c.sha}`, ca })).body.toString();
    assert.notEqual(second, first);
    assert.ok(parseCertificate(second).notAfter > parseCertificate(first).notAfter, "GET returns the newest certificate");
    clock.advance(-30 * HOUR);

    // Post, restart, poll: the request survives in the store.
    const pendingCsr = csrPem("survivor");
    await rawRequest(base, { method: "POST", path: `/${pendingCsr.sha}`, ca, body: pendingCsr.pem });
    await server.close(100);
    ({ server, base } = await caramelServer(undefined, { TESSERA_DATA_DIR: dataDir }));
    assert.equal((await rawRequest(base, { path: `/${pendingCsr.sha}`, ca })).status, 202);
    assert.equal((await rawRequest(base, { path: `/${c.sha}`, ca })).status, 200);
  });
});
