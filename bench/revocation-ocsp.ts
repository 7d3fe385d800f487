/**
 * The OCSP half of the "revocation" section (revocation-scale.ts): the real
 * server (its plain-HTTP listener, GET /ocsp/<base64>) on the loaded SQLite
 * store; the cache is warmed for a set of serials (90 % revoked, 10 % good,
 * every answer checked: HTTP 200, OCSP successful, the expected status, the
 * signature on a sample), then wrk drives GET requests rotating among those
 * pre-encoded URLs over keep-alive connections, checking every response (200,
 * OCSPResponseStatus successful), with the revocation poll on and then off.
 * Target ≥ 20,000 responses/s. The service alone (OcspService.respond from
 * cache, no HTTP) is timed too, to show what HTTP costs; a CPU profile is
 * taken when the target is missed (or BENCH_PROFILE=1).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildOcspRequest, ocspGetUrl, parseOcspResponse, verifyOcspResponse, type Issuer } from "@tessera/pki";
import type { startTestServer } from "../packages/server/src/test-support.js";
import type { CertificateRecord } from "../packages/server/src/authority/ports.js";
import { serialOf, type LoadPlan } from "./lib/bulk-load.js";
import type { BenchOptions } from "./lib/section.js";
import { OcspService } from "../packages/server/src/authority/ocsp-service.js";
import { readPassphrase } from "../packages/server/src/ca/ca-files.js";
import { systemClock } from "../packages/server/src/authority/runtime.js";
import { profiled, type SelfTime } from "./lib/inspector-profile.js";
import { runWrk, writeWrkScript } from "./lib/wrk.js";

/** The target, responses per second. */
export const OCSP_TARGET = 20_000;
const PROFILE = process.env.BENCH_PROFILE === "1";
const fmt = (x: number) => Math.round(x).toLocaleString("en-US");


export interface WrkOutcome {
  requests: number;
  perSecond: number;
  ok: number;
  bad: number;
  socketErrors: number;
  p50ms: number;
  p99ms: number;
  firstBad: string;
}

/** wrk's check of an OCSP answer: OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED (0 = successful), … }. */
const OCSP_SUCCESSFUL = `function(b)
  if #b < 5 or b:byte(1) ~= 0x30 then return false end
  local l = b:byte(2)
  local p = 3
  if l >= 0x80 then p = 3 + (l - 0x80) end
  return b:byte(p) == 0x0a and b:byte(p + 1) == 0x01 and b:byte(p + 2) == 0x00
end`;

/** A wrk script that rotates among pre-encoded GET paths and checks each answer: 200 and OCSPResponseStatus successful. */
function writeOcspScript(file: string, paths: string[]): void {
  writeWrkScript(file, { method: "GET", headers: {}, paths, bodyCheck: OCSP_SUCCESSFUL });
}

/** One wrk run in this section's terms. */
async function wrk(url: string, script: string, seconds: number, connections: number, threads: number): Promise<WrkOutcome> {
  const r = await runWrk({ url, script, seconds, connections, threads });
  return {
    requests: r.requests, perSecond: r.reqPerSec, ok: r.requests - r.badResponses, bad: r.badResponses, socketErrors: r.socketErrors,
    p50ms: r.p50ms, p99ms: r.p99ms, firstBad: r.firstError,
  };
}

export interface OcspOutcome {
  urls: number;
  revoked: number;
  good: number;
  warmPerSecond: number;
  checked: number;
  verified: number;
  wrk: WrkOutcome;
  threads: number;
  connections: number;
  inProcessPerSecond: number;
  /** CPU time of this process (the server) per response during the wrk run: the cost, whatever else the machine runs. */
  serverCpuUs: number;
  /** The same wrk run with the server's revocation poll (RevocationEvents, every 2 s) stopped. */
  noPoll: { wrk: WrkOutcome; serverCpuUs: number };
  /** 1-minute load average as wrk started (this machine has few cores: other work shows up here). */
  loadAvg: number;
  profile?: { top: SelfTime[]; file: string; idlePct: number; perSecond: number };
}
/** Measures the OCSP responder over HTTP and in process. */
export async function measureOcsp(
  base: string,
  server: Awaited<ReturnType<typeof startTestServer>>["server"],
  config: Awaited<ReturnType<typeof startTestServer>>["config"],
  issuer: Issuer,
  plan: LoadPlan,
  loaded: number,
  good: CertificateRecord[],
  urlsN: number,
  opts: BenchOptions,
): Promise<OcspOutcome> {
  const log = (msg: string) => console.error(`  revocation: ${msg}`);
  // 90 % revoked serials from the load, 10 % good ones issued by the authority, shuffled.
  const nGood = Math.min(good.length, Math.round(urlsN / 10));
  const picked = new Set<number>();
  while (picked.size < urlsN - nGood) picked.add(Math.floor(Math.random() * loaded));
  const items = [
    ...[...picked].map((n) => ({ serial: serialOf(plan.seed, n), expect: "revoked" as const })),
    ...good.slice(0, nGood).map((r) => ({ serial: r.serial, expect: "good" as const })),
  ].sort(() => Math.random() - 0.5);
  const requests = items.map((it) => buildOcspRequest({ issuer: issuer.certificate, serials: [it.serial] }));
  const paths = requests.map((der) => ocspGetUrl("/ocsp", der));

  // Warm the cache (each of these is a miss: store lookup + signature), checking every answer.
  let next = 0;
  let checked = 0;
  let verified = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < items.length) {
        const i = next++;
        const res = await fetch(base + paths[i]!);
        const body = Buffer.from(await res.arrayBuffer());
        if (res.status !== 200) throw new Error(`OCSP GET: HTTP ${res.status}`);
        const parsed = parseOcspResponse(body);
        const single = parsed.responses[0];
        if (parsed.status !== "successful" || !single || single.certId.serialHex !== items[i]!.serial || single.status !== items[i]!.expect) {
          throw new Error(`OCSP answer for ${items[i]!.serial}: ${parsed.status} ${single?.status} (expected ${items[i]!.expect})`);
        }
        if (i % 100 === 0) {
          verifyOcspResponse(parsed, issuer.certificate);
          verified++;
        }
        checked++;
      }
    }),
  );
  const warmPerSecond = items.length / ((performance.now() - t0) / 1000);
  log(`OCSP cache warmed: ${fmt(items.length)} answers checked (${fmt(warmPerSecond)}/s signing)`);

  // wrk over loopback: one thread (this machine's other core runs the server's event loop).
  const script = path.join(opts.workDir, "ocsp.lua");
  writeOcspScript(script, paths);
  const threads = Number(process.env.BENCH_WRK_THREADS ?? 1);
  const connections = Number(process.env.BENCH_WRK_CONNECTIONS ?? 64);
  const [load0 = 0] = os.loadavg();
  const cpu0 = process.cpuUsage();
  const w = await wrk(base, script, opts.seconds, connections, threads);
  const cpu = process.cpuUsage(cpu0);
  const serverCpuUs = (cpu.user + cpu.system) / Math.max(1, w.requests);
  log(`OCSP over HTTP (wrk): ${fmt(w.perSecond)} responses/s, ${w.bad} bad, ${w.socketErrors} socket errors`);

  // The service alone, from cache: a second OcspService on the same signer files, warmed the same way.
  const local = await OcspService.open({
    dataDir: config.dataDir,
    passphrase: readPassphrase({ env: process.env.TESSERA_CA_PASSPHRASE, file: config.caPassphraseFile }) ?? "",
    issuer,
    certificates: server.authority,
    revocations: server.authority.revocations,
    clock: systemClock,
    validitySeconds: config.revocation.ocsp.validity,
    signerValiditySeconds: config.revocation.ocsp.signerValidity,
  });
  let inProcessPerSecond = 0;
  try {
    for (const der of requests) await local.respond(der);
    let n = 0;
    const t = performance.now();
    const until = t + Math.min(5, opts.seconds) * 1000;
    while (performance.now() < until) {
      for (let i = 0; i < 1000; i++) {
        const a = await local.respond(requests[(n + i) % requests.length]!);
        if (a.status !== "successful" || !a.cacheable) throw new Error(`in-process OCSP: ${a.status}`);
      }
      n += 1000;
    }
    inProcessPerSecond = n / ((performance.now() - t) / 1000);
  } finally {
    local.stop();
  }
  let profile: OcspOutcome["profile"];
  if (PROFILE || w.perSecond < OCSP_TARGET) {
    const p = await profiled("ocsp-http", () => wrk(base, script, Math.min(5, opts.seconds), connections, threads), 12);
    profile = { top: p.top, file: p.file, idlePct: p.idlePct, perSecond: p.result.perSecond };
  }
  // What the server's own 2 s revocation poll costs the responder: the same run with the poll stopped.
  server.authority.revocations.stop();
  const c1 = process.cpuUsage();
  const noPoll = await wrk(base, script, opts.seconds, connections, threads);
  const cpuNoPoll = process.cpuUsage(c1);
  log(`OCSP over HTTP, revocation poll stopped: ${fmt(noPoll.perSecond)} responses/s`);
  fs.rmSync(script, { force: true });
  return {
    noPoll: { wrk: noPoll, serverCpuUs: (cpuNoPoll.user + cpuNoPoll.system) / Math.max(1, noPoll.requests) },
    urls: items.length, revoked: items.length - nGood, good: nGood, warmPerSecond, checked, verified, wrk: w, threads, connections, inProcessPerSecond, serverCpuUs, loadAvg: load0, profile };
}
