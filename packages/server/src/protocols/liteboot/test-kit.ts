/**
 * Helpers for the liteboot tests: a server with its liteboot listener on a
 * free port and a bootstrap certificate issued by the CLI, devices that make
 * keys and CSRs the way new-device.sh does, and raw requests over TLS.
 */
import type { KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { buildCsr, generateKeyPair, type NameAttribute } from "@tessera/pki";
import type { RunningServer } from "../../server.js";
import type { TesseraConfig } from "../../config/types.js";
import { rawRequest, startTestServer, tempDir, TestClock, type RawResponse } from "../../test-support.js";

/** A TLS client identity in PEM. */
export interface PemIdentity {
  certPem: string;
  keyPem: string;
}

/** Issues a bootstrap certificate through `tessera bootstrap issue` on the server's data dir. */
export async function issueBootstrap(dataDir: string, name: string, extra: string[] = []): Promise<PemIdentity & { dir: string }> {
  const { main } = await import("../../cli/main.js");
  const dir = path.join(tempDir("tessera-bootstrap-"), name);
  const lines: string[] = [];
  const code = await main(["bootstrap", "issue", "--name", name, "--out", dir, ...extra, "--json"], { out: (t) => lines.push(t), err: (t) => lines.push(t) }, { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "silent", TESSERA_LITEBOOT_LISTEN: "off" });
  if (code !== 0) throw new Error(`bootstrap issue failed (${code}): ${lines.join("\n")}`);
  return { dir, certPem: fs.readFileSync(path.join(dir, "BOOTSTRAP.crt"), "utf8"), keyPem: fs.readFileSync(path.join(dir, "BOOTSTRAP.key"), "utf8") };
}

/** A server with liteboot on a free port (ccs hub "azure-hub-name":8883) and one bootstrap certificate "line-1". */
export async function litebootServer(configure?: (c: TesseraConfig) => void): Promise<{ server: RunningServer; clock: TestClock; dataDir: string; base: string; ca: string; boot: PemIdentity }> {
  const clock = new TestClock();
  const { server, dataDir } = await startTestServer({ TESSERA_LITEBOOT_LISTEN: "127.0.0.1:0" }, {
    clock,
    configure: (c) => {
      c.liteboot.ccs = { hubname: "azure-hub-name", mqttPort: 8883 };
      configure?.(c);
    },
  });
  const listener = server.listeners.find((l) => l.config.name === "liteboot")!;
  const base = `https://127.0.0.1:${(listener.server.address() as AddressInfo).port}`;
  const boot = await issueBootstrap(dataDir, "line-1");
  return { server, clock, dataDir, base, ca: server.authority.chainPem(), boot };
}

/** A device as new-device.sh makes one: P-256 key, CSR /O=Test Vendor/CN=<uuid>/OU=<ou>. */
export function newDevice(opts: { uuid?: string; ou?: string | null; subject?: NameAttribute[]; key?: KeyObject } = {}): { uuid: string; key: KeyObject; csr: Buffer } {
  const uuid = opts.uuid ?? randomUUID();
  const key = opts.key ?? generateKeyPair("ec-p256").privateKey;
  const subject = opts.subject ?? [{ type: "O", value: "Test Vendor" }, { type: "CN", value: uuid }, ...(opts.ou === null ? [] : [{ type: "OU", value: opts.ou ?? "Signing" }])];
  return { uuid, key, csr: buildCsr({ subject, privateKey: key }) };
}

/** One liteboot request on a fresh connection. */
export function lb(base: string, ca: string, route: string, opts: { method?: string; contentType?: string; headers?: Record<string, string>; body?: Buffer | string; as?: PemIdentity; hostname?: string } = {}): Promise<RawResponse> {
  return rawRequest(base, {
    method: opts.method ?? (opts.body !== undefined ? "POST" : "GET"),
    path: route,
    ca,
    body: opts.body,
    headers: { ...(opts.contentType !== undefined ? { "Content-Type": opts.contentType } : {}), ...opts.headers },
    cert: opts.as?.certPem,
    key: opts.as?.keyPem,
    hostname: opts.hostname,
  });
}

/** The CBOR body of a cr request: an array holding the CSR as one byte string (make_csr_cbor.go). */
export { crRequestCbor as crCbor } from "./codec.js";
