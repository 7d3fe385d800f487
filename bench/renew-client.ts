/**
 * Load generator of the "renew" and "footprint" sections, run as a child
 * process (child_process.fork) so its TLS handshakes do not use the server's
 * CPU time. It enrolls devices through imprint (build secret), then renews
 * them with tier 1: every request on a NEW TLS connection (no keep-alive, no
 * session resumption), the device's current certificate as client
 * certificate, the next request of that device with the certificate just
 * returned. A device renews sequentially (only its newest certificate
 * renews); `concurrency` devices are in flight at once.
 *
 * Every answer is checked: status 200, JSON, a certificate that parses, names
 * the device (CN = server id) and has a serial the device never had.
 *
 * CSRs come from a pool of pre-generated keys (the server ignores the CSR's
 * subject), so the generator's CPU goes to handshakes, not key generation:
 * on a small machine client and server share the cores.
 *
 * Messages (IPC): in {type:"enroll",url,ca,secret,devices} → out {type:"enrolled"};
 * in {type:"target",url} → out {type:"targeted"}; in {type:"run",path,concurrency,seconds}
 * → out {type:"result",…}; in {type:"exit"}.
 */
import { randomUUID, X509Certificate } from "node:crypto";
import * as tls from "node:tls";
import { buildCsr, generateKeyPair, pemEncode } from "@tessera/pki";
// Type only: erased, so the forked client does not load the section's modules.
import type { RunResult } from "./renew.js";

interface Device {
  serverId: string;
  cert: string;
  key: string;
  serial: string;
  serials: Set<string>;
}

interface Key {
  pem: string;
  csr: string;
}

interface Reply {
  status: number;
  body: string;
}

let target = { host: "127.0.0.1", port: 0, ca: "" };
const devices: Device[] = [];
const POOL = 512;
const keys: Key[] = [];
let nextKey = 0;

function keyFromPool(): Key {
  while (keys.length < POOL) {
    const k = generateKeyPair("ec-p256").privateKey;
    keys.push({ pem: k.export({ type: "pkcs8", format: "pem" }) as string, csr: pemEncode("CERTIFICATE REQUEST", buildCsr({ subject: [{ type: "CN", value: "bench" }], privateKey: k })) });
  }
  return keys[nextKey++ % POOL]!;
}

/** One HTTP/1.1 request on a fresh TLS connection (Connection: close); resolves when the whole body is in. */
function request(method: string, path: string, body: string | undefined, client?: { cert: string; key: string }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: target.host,
      port: target.port,
      servername: "localhost",
      ca: target.ca,
      cert: client?.cert,
      key: client?.key,
      // No `session`: a full handshake every time.
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | undefined, reply?: Reply) => {
      if (done) return;
      done = true;
      socket.end();
      if (err) reject(err);
      else resolve(reply!);
    };
    const parse = (final: boolean) => {
      const buf = Buffer.concat(chunks, size);
      const head = buf.indexOf("\r\n\r\n");
      if (head < 0) return final ? finish(new Error("truncated response")) : undefined;
      const headers = buf.subarray(0, head).toString("latin1");
      const m = /content-length:\s*(\d+)/i.exec(headers);
      const length = m ? Number(m[1]) : undefined;
      if (length !== undefined && buf.length - head - 4 < length) return final ? finish(new Error("truncated body")) : undefined;
      if (length === undefined && !final) return undefined;
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1] ?? 0);
      finish(undefined, { status, body: buf.subarray(head + 4, length === undefined ? undefined : head + 4 + length).toString("utf8") });
    };
    socket.on("secureConnect", () => {
      const b = body === undefined ? undefined : Buffer.from(body);
      socket.write(
        `${method} ${path} HTTP/1.1\r\nHost: localhost:${target.port}\r\nConnection: close\r\n` +
          (b ? `Content-Type: application/json\r\nContent-Length: ${b.length}\r\n` : "") +
          "\r\n",
      );
      if (b) socket.write(b);
    });
    socket.on("data", (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      parse(false);
    });
    socket.on("end", () => parse(true));
    socket.on("error", (err) => finish(err));
  });
}

/** Checks an imprint answer and adopts its certificate; throws on anything wrong. */
function adopt(d: Device, r: Reply, key: Key): void {
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body.trim().slice(0, 200)}`);
  const j = JSON.parse(r.body) as { server_id?: string; certificate?: string };
  if (!j.certificate) throw new Error("no certificate in the answer");
  const x = new X509Certificate(j.certificate);
  const serial = x.serialNumber.toLowerCase();
  if (d.serials.has(serial)) throw new Error(`serial ${serial} seen before`);
  const id = d.serverId || j.server_id || "";
  if (!x.subject.split("\n").includes(`CN=${id}`)) throw new Error(`certificate names ${x.subject.replace(/\n/g, ", ")}, not ${id}`);
  d.serverId = id;
  d.cert = j.certificate;
  d.key = key.pem;
  d.serial = serial;
  d.serials.add(serial);
}

async function enroll(secret: string, n: number): Promise<void> {
  let i = devices.length;
  const end = devices.length + n;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (i < end) {
        i++;
        const key = keyFromPool();
        const d: Device = { serverId: "", cert: "", key: "", serial: "", serials: new Set() };
        const body = JSON.stringify({ build_secret: secret, fingerprint: `sha256:${randomUUID().replaceAll("-", "")}`, hostname: "bench", os: "linux", arch: "amd64", csr: key.csr });
        adopt(d, await request("POST", "/api/v1/enroll", body), key);
        devices.push(d);
      }
    }),
  );
}

/** What a run reports to the parent (renew.ts's RunResult, tagged for the IPC reply). */
type RunReply = RunResult & { type: "result" };

/** Renews (path "renew") or fetches `path` over a fresh mTLS connection per request, `concurrency` devices in flight, for `seconds`. */
async function run(path: string, concurrency: number, seconds: number): Promise<RunReply> {
  if (devices.length < concurrency) throw new Error(`${devices.length} devices enrolled, ${concurrency} needed`);
  const idle = [...devices];
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const d = idle.shift()!;
        const s = performance.now();
        try {
          if (path === "renew") {
            const key = keyFromPool();
            adopt(d, await request("POST", "/api/v1/renew", JSON.stringify({ csr: key.csr }), { cert: d.cert, key: d.key }), key);
          } else {
            const r = await request("GET", path, undefined, { cert: d.cert, key: d.key });
            if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body.trim().slice(0, 200)}`);
          }
          latencies.push(performance.now() - s);
        } catch (err) {
          errors++;
          firstError ??= (err as Error).message;
        }
        idle.push(d);
      }
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  const q = (p: number) => +(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0).toFixed(1);
  return {
    type: "result", count: latencies.length, errors, firstError, wallS,
    p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1),
    clientCpuUs: latencies.length ? Math.round((cpu.user + cpu.system) / latencies.length) : 0,
  };
}

process.on("message", (m: { type: string; [k: string]: unknown }) => {
  const reply = (x: unknown) => process.send!(x);
  const fail = (err: unknown) => reply({ type: "error", message: (err as Error).stack ?? String(err) });
  if (m.type === "enroll") {
    const u = new URL(m.url as string);
    target = { host: u.hostname, port: Number(u.port), ca: m.ca as string };
    const t0 = performance.now();
    enroll(m.secret as string, m.devices as number).then(() => reply({ type: "enrolled", devices: devices.length, ms: Math.round(performance.now() - t0) }), fail);
  } else if (m.type === "target") {
    // Another server with the same CA and listener certificate (the bare-Node floor); the devices stay.
    const u = new URL(m.url as string);
    target = { ...target, host: u.hostname, port: Number(u.port) };
    reply({ type: "targeted" });
  } else if (m.type === "run") {
    run(m.path as string, m.concurrency as number, m.seconds as number).then(reply, fail);
  } else if (m.type === "exit") {
    process.disconnect();
  }
});
process.send!({ type: "ready" });
