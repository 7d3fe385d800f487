/**
 * Test fixtures for the mTLS tests: a CA made at run time, a TLS server
 * certificate, device certificates with chosen validity and purposes, CRLs,
 * and an HTTPS client that presents a device certificate. Nothing checked in.
 */
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import type { AddressInfo } from "node:net";
import type { Server } from "node:net";
import {
  buildCrl, CertificateTemplate, encodeGeneralNames, encodeName, exportPrivateKey, generateKeyPair, generateSerial, issuerSkiOf,
  parseCertificate, pemEncode, spkiDer, type CrlEntry, type ExtensionSpec, type ParsedCertificate, type SubjectAltName,
} from "@tessera/pki";
import { makeTestCa, type TestCa } from "../../pki/src/test-helpers.js";

/** A device (or server) certificate with its key, as PEM. */
export interface Issued {
  certificate: ParsedCertificate;
  cert: string;
  key: string;
}

/** Options of a device certificate. */
export interface DeviceOptions {
  cn?: string;
  sans?: SubjectAltName[];
  /** Validity relative to now, in milliseconds (default −1 h … +1 day). */
  notBefore?: number;
  notAfter?: number;
  /** extKeyUsage names (default ["clientAuth"]). */
  eku?: string[];
}

/** A throwaway PKI for one test file. */
export interface TestPki {
  ca: TestCa;
  /** Root + intermediate, PEM. */
  bundlePem: string;
  rootPem: string;
  intermediatePem: string;
  /** TLS server certificate for localhost / 127.0.0.1 (cert is leaf + intermediate). */
  server: Issued;
  device(opts?: DeviceOptions): Promise<Issued>;
  /** A DER CRL signed by the intermediate. */
  crl(entries: CrlEntry[], opts?: { thisUpdate?: Date; nextUpdate?: Date; crlNumber?: bigint; signer?: "intermediate" | "root" }): Promise<Buffer>;
  /** A temporary directory removed by cleanup(). */
  dir: string;
  cleanup(): void;
}

/** Makes a TestPki: root, intermediate, a server certificate and a device factory. */
export async function makeTestPki(): Promise<TestPki> {
  const ca = await makeTestCa("ec-p256");
  const issuer = { certificate: ca.intermediate, privateKey: ca.intermediateKey };
  const templates = new Map<string, Promise<CertificateTemplate>>();
  const template = (eku: string[]) => {
    const key = eku.join(",");
    let t = templates.get(key);
    if (!t) {
      const spec: ExtensionSpec = { basicConstraints: { ca: false }, keyUsage: ["digitalSignature"], extKeyUsage: eku };
      t = CertificateTemplate.create(spec, issuer);
      templates.set(key, t);
    }
    return t;
  };
  const issue = async (o: DeviceOptions): Promise<Issued> => {
    const kp = generateKeyPair("ec-p256");
    const now = Date.now();
    const der = await (await template(o.eku ?? ["clientAuth"])).issue({
      serial: generateSerial(),
      notBefore: new Date(now + (o.notBefore ?? -3600_000)),
      notAfter: new Date(now + (o.notAfter ?? 86400_000)),
      subject: encodeName([{ type: "O", value: "Tessera Test" }, { type: "CN", value: o.cn ?? "device" }]),
      spki: spkiDer(kp.publicKey),
      subjectAltNames: o.sans && o.sans.length ? encodeGeneralNames(o.sans) : undefined,
    });
    return { certificate: parseCertificate(der), cert: pemEncode("CERTIFICATE", der), key: exportPrivateKey(kp.privateKey) };
  };
  const server = await issue({ cn: "localhost", sans: [{ type: "dns", value: "localhost" }, { type: "ip", value: "127.0.0.1" }], eku: ["serverAuth"] });
  const intermediatePem = pemEncode("CERTIFICATE", ca.intermediate.der);
  const rootPem = pemEncode("CERTIFICATE", ca.root.der);
  server.cert += intermediatePem;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mtls-test-"));
  return {
    ca,
    bundlePem: rootPem + intermediatePem,
    rootPem,
    intermediatePem,
    server,
    device: (o = {}) => issue(o),
    crl: (entries, o = {}) => {
      const signer = o.signer === "root" ? { cert: ca.root, key: ca.rootKey } : { cert: ca.intermediate, key: ca.intermediateKey };
      return buildCrl({
        issuer: signer.cert.subject,
        issuerKeyId: issuerSkiOf(signer.cert),
        privateKey: signer.key,
        thisUpdate: o.thisUpdate ?? new Date(Date.now() - 60_000),
        nextUpdate: o.nextUpdate ?? new Date(Date.now() + 86400_000),
        crlNumber: o.crlNumber ?? BigInt(Date.now()),
        entries,
      });
    },
    dir,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Starts a server on 127.0.0.1 and an ephemeral port; returns the port. */
export function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

/** Closes a server and every connection still open on it. */
export function stop(server: Server & { closeAllConnections?: () => void }): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

/** A response as the tests read it. */
export interface Reply {
  status: number;
  contentType: string | undefined;
  body: string;
  json(): { error?: { code: string; message: string } } & Record<string, unknown>;
}

/** GETs https://localhost:<port><path> trusting `rootPem`, presenting `device` when given (through `agent` when given). */
export function get(port: number, rootPem: string, opts: { device?: { cert: string; key: string }; agent?: https.Agent; path?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: "127.0.0.1",
        servername: "localhost",
        port,
        path: opts.path ?? "/",
        ca: rootPem,
        ...(opts.agent ? { agent: opts.agent } : { agent: false, cert: opts.device?.cert, key: opts.device?.key }),
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"], body, json: () => JSON.parse(body) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
  });
}

/** A keep-alive agent with one socket, presenting `device`. */
export function keepAliveAgent(rootPem: string, device: { cert: string; key: string }): https.Agent {
  return new https.Agent({ keepAlive: true, maxSockets: 1, ca: rootPem, cert: device.cert, key: device.key, servername: "localhost" });
}

/** Polls `probe` every 25 ms until it returns true or `ms` pass. */
export async function waitFor(probe: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error("waitFor: timed out");
    await new Promise((r) => setTimeout(r, 25));
  }
}
