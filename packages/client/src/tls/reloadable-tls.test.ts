import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import * as fs from "node:fs/promises";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { fetch as undiciFetch } from "undici";
import { CertificateTemplate, encodeGeneralNames, encodeName, generateKeyPair, generateSerial, pemEncode, spkiDer, type Issuer } from "@tessera/pki";
import { makeTestCa } from "../../../pki/src/test-helpers.js";
import { ReloadableTls, type ReloadEvent } from "./reloadable-tls.js";

interface Identity {
  key: string;
  cert: string;
  serial: bigint;
}

let caPem: string;
let A: Identity, B: Identity, S: Identity, foreign: Identity;
let tmp: string;

async function issue(issuer: Issuer, cn: string, keyForm: "sec1" | "pkcs8"): Promise<Identity> {
  const tpl = await CertificateTemplate.create({ keyUsage: ["digitalSignature"], extKeyUsage: ["serverAuth", "clientAuth"] }, issuer);
  const k = generateKeyPair("ec-p256");
  const serial = generateSerial();
  const der = await tpl.issue({
    serial, notBefore: new Date(Date.now() - 3_600_000), notAfter: new Date(Date.now() + 86_400_000),
    subject: encodeName([{ type: "CN", value: cn }]), spki: spkiDer(k.publicKey),
    subjectAltNames: encodeGeneralNames([{ type: "dns", value: "localhost" }, { type: "ip", value: "127.0.0.1" }]),
  });
  return { key: k.privateKey.export({ format: "pem", type: keyForm }) as string, cert: pemEncode("CERTIFICATE", der), serial: BigInt("0x" + serial.toString("hex")) };
}

before(async () => {
  const ca = await makeTestCa();
  const other = await makeTestCa();
  const issuer = { certificate: ca.root, privateKey: ca.rootKey };
  caPem = pemEncode("CERTIFICATE", ca.root.der);
  // A's key in SEC1 ("EC PRIVATE KEY", as the original writes it), B's in PKCS#8.
  [A, B, S, foreign] = await Promise.all([
    issue(issuer, "device-a", "sec1"), issue(issuer, "device-b", "pkcs8"), issue(issuer, "server", "pkcs8"),
    issue({ certificate: other.root, privateKey: other.rootKey }, "impostor", "pkcs8"),
  ]);
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "tessera-tls-"));
});

after(() => fs.rm(tmp, { recursive: true, force: true }));

let dirCount = 0;
async function storeWith(id: Identity): Promise<string> {
  const dir = path.join(tmp, `store-${++dirCount}`, "store");
  await writeFiles(dir, id);
  return dir;
}

async function writeFiles(dir: string, id: Identity, ca = caPem): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, "client.key"), id.key, { mode: 0o600 });
  await fs.writeFile(path.join(dir, "client.crt"), id.cert);
  await fs.writeFile(path.join(dir, "ca.crt"), ca);
}

let swaps = 0;
/**
 * Stages a complete new directory and renames it over the old one, as a
 * set-atomic writer does. The old directory is kept as a backup, so nothing
 * stirs inside the directory that was watched before.
 */
async function swapDirectory(dir: string, id: Identity): Promise<void> {
  await writeFiles(dir + ".new", id);
  await fs.rename(dir, `${dir}.old-${++swaps}`);
  await fs.rename(dir + ".new", dir);
}

/** Replaces one file by write-then-rename, as the original's SaveEnrollment does for each file. */
async function renameInto(file: string, text: string): Promise<void> {
  await fs.writeFile(file + ".tmp", text);
  await fs.rename(file + ".tmp", file);
}

/** The next "reload" event; the timer is ref'd because the watcher and the poll timer are not. */
function nextReload(rt: ReloadableTls): Promise<ReloadEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no reload within 3 s")), 3_000);
    rt.once("reload", (e) => {
      clearTimeout(timer);
      resolve(e);
    });
  });
}

/** Serial of the certificate a server presents to a fresh handshake; servername undefined = no SNI (connect by IP). */
async function servedSerial(port: number, servername?: string): Promise<bigint> {
  const socket = tls.connect({ host: "127.0.0.1", port, ca: caPem, servername });
  try {
    await once(socket, "secureConnect");
    return BigInt("0x" + socket.getPeerCertificate().serialNumber);
  } finally {
    socket.destroy();
  }
}

async function listen(server: tls.Server | https.Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: https.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
}

/** An HTTPS server that requires a client certificate from our CA and answers with its serial (hex). */
function clientEchoServer(identity = S): https.Server {
  return https.createServer({ key: identity.key, cert: identity.cert, ca: caPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    res.end((req.socket as tls.TLSSocket).getPeerCertificate().serialNumber);
  });
}

function get(url: string, agent: https.Agent): Promise<{ body: string; socket: tls.TLSSocket }> {
  return new Promise((resolve, reject) => {
    https.get(url, { agent }, (res) => {
      let body = "";
      const socket = res.socket as tls.TLSSocket; // detached (null) once the response ends
      res.setEncoding("utf8").on("data", (c) => (body += c)).on("end", () => resolve({ body, socket }));
    }).on("error", reject);
  });
}

test("a server serves the new certificate after its store directory is swapped, with and without SNI", async () => {
  const dir = await storeWith(A);
  const rt = await ReloadableTls.open({ dir, pollMs: 0 }); // no polling: the watch alone must notice
  const server = https.createServer(rt.serverOptions(), (_req, res) => res.end());
  rt.attachServer(server);
  try {
    const port = await listen(server);
    assert.equal(await servedSerial(port), A.serial);
    assert.equal(await servedSerial(port, "localhost"), A.serial);
    const reloaded = nextReload(rt);
    await swapDirectory(dir, B);
    const e = await reloaded;
    assert.equal(BigInt("0x" + e.previous.serialHex), A.serial);
    assert.equal(BigInt("0x" + e.current.serialHex), B.serial);
    assert.equal(e.current.generation, 2);
    assert.equal(await servedSerial(port), B.serial);
    assert.equal(await servedSerial(port, "localhost"), B.serial);
    // The watch follows the new directory: a second swap is noticed too.
    const again = nextReload(rt);
    await swapDirectory(dir, A);
    await again;
    assert.equal(await servedSerial(port), A.serial);
  } finally {
    rt.close();
    await closeServer(server);
  }
});

test("per-file renames (key first, certificate later) adopt only the matching pair", async () => {
  const dir = await storeWith(A);
  const rt = await ReloadableTls.open({ dir, pollMs: 0 });
  const events: ReloadEvent[] = [];
  rt.on("reload", (e) => events.push(e));
  const server = https.createServer(rt.serverOptions(), (_req, res) => res.end());
  // No attachServer: the SNICallback from serverOptions alone must serve the current certificate.
  try {
    const port = await listen(server);
    const reloaded = nextReload(rt);
    await renameInto(path.join(dir, "client.key"), B.key);
    // Longer than the watch's settle time, so the reader sees the new key with the old certificate.
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(await servedSerial(port, "localhost"), A.serial, "the mixed state is not adopted");
    await renameInto(path.join(dir, "client.crt"), B.cert);
    await reloaded;
    assert.equal(await servedSerial(port, "localhost"), B.serial);
    assert.deepEqual(events.map((e) => BigInt("0x" + e.current.serialHex)), [B.serial]);
  } finally {
    rt.close();
    await closeServer(server);
  }
});

test("a mismatched or half-written set is ignored and the old identity kept", async () => {
  const dir = await storeWith(A);
  const rt = await ReloadableTls.open({ dir, pollMs: 0, watch: false, retries: 1, retryDelayMs: 5 });
  const warnings: Error[] = [];
  rt.on("warning", (err) => warnings.push(err));
  const server = https.createServer(rt.serverOptions(), (_req, res) => res.end());
  rt.attachServer(server);
  try {
    const port = await listen(server);
    assert.equal(await rt.reload(), false, "nothing changed");
    await fs.writeFile(path.join(dir, "client.key"), B.key); // B's key, A's certificate
    assert.equal(await rt.reload(), false);
    assert.equal((warnings[0] as { code?: string }).code, "TESSERA_ERR_PKI_KEY_MISMATCH");
    assert.equal(await rt.reload(), false);
    assert.equal(warnings.length, 1, "a rejected set is not retried and reported again");
    await fs.writeFile(path.join(dir, "client.crt"), B.cert.slice(0, 200)); // torn write
    assert.equal(await rt.reload(), false);
    assert.equal(warnings.length, 2);
    assert.equal(rt.identity.generation, 1);
    assert.equal(await servedSerial(port), A.serial);
    await fs.writeFile(path.join(dir, "client.crt"), B.cert);
    assert.equal(await rt.reload(), true);
    assert.equal(await servedSerial(port), B.serial);
  } finally {
    rt.close();
    await closeServer(server);
  }
});

test("the https agent presents the new certificate after a reload and closes its idle keep-alive socket", async () => {
  const server = clientEchoServer();
  let handshakes = 0;
  server.on("secureConnection", () => handshakes++);
  const dir = await storeWith(A);
  const rt = await ReloadableTls.open({ dir, pollMs: 0, watch: false });
  const agent = rt.httpsAgent();
  try {
    const url = `https://localhost:${await listen(server)}/`;
    const first = await get(url, agent);
    assert.equal(BigInt("0x" + first.body), A.serial);
    const again = await get(url, agent);
    assert.equal(again.socket, first.socket, "keep-alive reuses the socket while nothing changed");
    assert.equal(handshakes, 1);
    await swapDirectory(dir, B);
    const closed = once(first.socket, "close", { signal: AbortSignal.timeout(2_000) });
    assert.equal(await rt.reload(), true);
    await closed; // the idle socket holding A is gone, not left to be reused
    const second = await get(url, agent);
    assert.equal(BigInt("0x" + second.body), B.serial);
    assert.equal(handshakes, 2);
  } finally {
    agent.destroy();
    rt.close();
    await closeServer(server);
  }
});

test("a socket busy during a reload is closed when its request ends, not pooled", async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const server = https.createServer({ key: S.key, cert: S.cert, ca: caPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    void held.then(() => res.end((req.socket as tls.TLSSocket).getPeerCertificate().serialNumber));
  });
  const dir = await storeWith(A);
  const rt = await ReloadableTls.open({ dir, pollMs: 0, watch: false });
  const agent = rt.httpsAgent();
  try {
    const url = `https://localhost:${await listen(server)}/`;
    const inFlight = get(url, agent);
    await once(server, "request");
    await writeFiles(dir, B);
    assert.equal(await rt.reload(), true);
    release();
    const first = await inFlight;
    assert.equal(BigInt("0x" + first.body), A.serial, "the request in flight finishes on its connection");
    await once(first.socket, "close", { signal: AbortSignal.timeout(2_000) });
    assert.equal(BigInt("0x" + (await get(url, agent)).body), B.serial);
  } finally {
    agent.destroy();
    rt.close();
    await closeServer(server);
  }
});

test("the https agent trusts only ca.crt", async () => {
  const server = clientEchoServer(foreign);
  const rt = await ReloadableTls.open({ dir: await storeWith(A), pollMs: 0, watch: false });
  const agent = rt.httpsAgent();
  try {
    const port = await listen(server);
    await assert.rejects(get(`https://localhost:${port}/`, agent), (err: NodeJS.ErrnoException) => /UNABLE_TO_VERIFY|CERT|SELF_SIGNED|ISSUER/.test(String(err.code)));
  } finally {
    agent.destroy();
    rt.close();
    await closeServer(server);
  }
});

test("the undici dispatcher presents the new certificate after a reload and closes the old connection", async () => {
  const server = clientEchoServer();
  const serverSockets: tls.TLSSocket[] = [];
  server.on("secureConnection", (s) => serverSockets.push(s));
  const dir = await storeWith(A);
  const rt = await ReloadableTls.open({ dir, pollMs: 0, watch: false });
  const dispatcher = rt.undiciDispatcher();
  const impostor = clientEchoServer(foreign);
  try {
    const url = `https://localhost:${await listen(server)}/`;
    assert.equal(BigInt("0x" + (await (await undiciFetch(url, { dispatcher })).text())), A.serial);
    assert.equal(BigInt("0x" + (await (await undiciFetch(url, { dispatcher })).text())), A.serial);
    // undici may open a second connection for back-to-back requests; every one of them holds A.
    const old = [...serverSockets];
    assert.ok(old.every((s) => !s.destroyed));
    const allClosed = Promise.all(old.map((s) => once(s, "close", { signal: AbortSignal.timeout(2_000) })));
    await writeFiles(dir, B);
    assert.equal(await rt.reload(), true);
    await allClosed;
    assert.equal(BigInt("0x" + (await (await undiciFetch(url, { dispatcher })).text())), B.serial);
    assert.equal(serverSockets.length, old.length + 1, "a new connection for the new certificate");
    // Trust is ca.crt only: a server certified by another CA is refused.
    await assert.rejects(undiciFetch(`https://localhost:${await listen(impostor)}/`, { dispatcher }), (err: Error) => /UNABLE_TO_VERIFY|CERT|SELF_SIGNED|ISSUER/.test(String((err.cause as NodeJS.ErrnoException)?.code)));
  } finally {
    await dispatcher.close();
    rt.close();
    await closeServer(server);
    await closeServer(impostor);
  }
});

test("the undici dispatcher's close and destroy take a callback or return a promise", async () => {
  const rt = await ReloadableTls.open({ dir: await storeWith(A), pollMs: 0, watch: false });
  try {
    await new Promise<void>((resolve) => rt.undiciDispatcher().close(resolve));
    await new Promise<void>((resolve) => rt.undiciDispatcher().destroy(resolve));
    await rt.undiciDispatcher().destroy(new Error("shutting down"));
    await rt.undiciDispatcher().close();
  } finally {
    rt.close();
  }
});

test("polling picks up a change when file events are off", async () => {
  const dir = await storeWith(A);
  const rt = await ReloadableTls.open({ dir, pollMs: 20, watch: false });
  try {
    const reloaded = nextReload(rt);
    await writeFiles(dir, B);
    assert.equal(BigInt("0x" + (await reloaded).current.serialHex), B.serial);
    assert.equal(rt.identity.serialHex, (await reloaded).current.serialHex);
  } finally {
    rt.close();
  }
});

test("open() reports a missing store as not enrolled, a mismatched one as a key mismatch, and honours file overrides", async () => {
  const empty = path.join(tmp, "empty");
  await assert.rejects(ReloadableTls.open({ dir: empty, retries: 0 }), /^Error: not enrolled: no certificates in /);
  const dir = await storeWith(A);
  await fs.writeFile(path.join(dir, "client.key"), B.key);
  await assert.rejects(ReloadableTls.open({ dir, retries: 0, watch: false }), { code: "TESSERA_ERR_PKI_KEY_MISMATCH" });
  await fs.writeFile(path.join(dir, "device.pem"), A.key);
  const rt = await ReloadableTls.open({ dir, files: { key: "device.pem" }, pollMs: 0, watch: false });
  assert.equal(BigInt("0x" + rt.identity.serialHex), A.serial);
  assert.equal(rt.paths.key, path.join(dir, "device.pem"));
  rt.close();
  await assert.rejects(ReloadableTls.open({ files: { key: "k" } }), TypeError);
});
