/**
 * Test support (not exported from the package): a small imprint server
 * (spec §3–§5) over node:https that also checks what the client sends — key
 * order, CSR subject, proof — and can be told to answer anything else.
 */
import * as crypto from "node:crypto";
import * as https from "node:https";
import type * as http from "node:http";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { certificatePublicKey, decodeName, nameAttribute, parseAndVerifyCsr, parseCertificate, pemDecodeAll, verifyCertificateSignature } from "@tessera/pki";
import { challengeMessage, verifyProof } from "./proof.js";
import type { TestPki } from "./test-pki.js";

/** A device record, as imprint stores it (the parts the tests need). */
export interface FakeDevice {
  serverId: string;
  fingerprint: string;
  /** Serial of the current certificate, lowercase hex. */
  serial: string;
  revoked?: boolean;
}

/** One request the fake received. */
export interface SeenRequest {
  path: string;
  raw: string;
  /** CN of the TLS client certificate, if one was sent. */
  peerCn?: string;
  /** Whether that certificate chained to the CA. */
  peerAuthorized?: boolean;
}

/** An answer forced by a test: a status and body, "hang" (never answer) or undefined (behave normally). */
export type Override = { status: number; body: string; contentType?: string } | "hang" | undefined;

const ENROLL_KEYS = ["build_secret", "fingerprint", "hostname", "os", "arch", "csr"];
const CHALLENGE_KEYS = ["server_id", "fingerprint", "expired_cert", "csr", "proof"];
const DAY = 86_400_000;

/** The fake imprint server. */
export class FakeImprintServer {
  /** Devices by server_id. */
  readonly devices = new Map<string, FakeDevice>();
  /** Every request, in order. */
  readonly seen: SeenRequest[] = [];
  /** Checks the client failed (key order, CN, labels…); tests assert it stays empty. */
  readonly problems: string[] = [];
  /** Accepted build secrets. */
  buildSecrets = ["build-secret"];
  /** Decides an answer before the normal handling (may be async, e.g. to issue for the request's CSR). */
  override: (path: string, body: Record<string, unknown>) => Override | Promise<Override> = () => undefined;
  /** Validity of the next certificates issued (default −5 min … +365 d). */
  validity: { notBefore?: Date; notAfter?: Date } = {};
  /** Tier 2 window in milliseconds (imprint default 30 days). */
  challengeWindowMs = 30 * DAY;
  /** Accept a challenge for a certificate that has not expired yet (imprint refuses it). */
  allowUnexpiredChallenge = false;

  private constructor(private readonly pki: TestPki, private readonly server: https.Server, readonly url: string) {}

  /** Starts on 127.0.0.1 with a server certificate from `pki` (so it chains to ca.crt) and optional client certificates. */
  static async start(pki: TestPki): Promise<FakeImprintServer> {
    const { cert, key } = await pki.issueServer();
    const server = https.createServer({ cert, key, ca: pki.caPem, requestCert: true, rejectUnauthorized: false });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const fake = new FakeImprintServer(pki, server, `https://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => void fake.handle(req, res));
    return fake;
  }

  /** Forgets overrides, forced validity and what was seen, between tests (devices stay). */
  reset(): void {
    this.override = () => undefined;
    this.validity = {};
    this.seen.length = 0;
    this.problems.length = 0;
  }

  /** Stops listening and drops open connections (including hung ones). */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Adds a device whose current certificate is `certificatePem`. */
  register(serverId: string, fingerprint: string, certificatePem: string): void {
    this.devices.set(serverId, { serverId, fingerprint, serial: parseCertificate(certificatePem).serialHex });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    const path = req.url ?? "";
    const seen: SeenRequest = { path, raw };
    if (peer && peer.raw) {
      seen.peerCn = nameAttribute(parseCertificate(peer.raw).subject, "CN");
      seen.peerAuthorized = socket.authorized;
    }
    this.seen.push(seen);
    const text = (status: number, body: string) => {
      res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" });
      res.end(body + "\n");
    };
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return text(400, "invalid request body");
    }
    const forced = await this.override(path, body);
    if (forced === "hang") return;
    if (forced) {
      res.writeHead(forced.status, { "Content-Type": forced.contentType ?? "application/json" });
      return void res.end(forced.body);
    }
    try {
      if (req.method !== "POST") return text(405, "method not allowed");
      if (path === "/api/v1/enroll") return await this.enroll(body, res, text);
      if (path === "/api/v1/renew") return await this.renew(body, socket, res, text);
      if (path === "/api/v1/renew/challenge") return await this.challenge(body, res, text);
      text(404, "404 page not found");
    } catch (err) {
      this.problems.push(`handler threw: ${(err as Error).message}`);
      text(500, "internal error");
    }
  }

  private expect(ok: boolean, problem: string): void {
    if (!ok) this.problems.push(problem);
  }

  /** Parses the CSR, checks it is a PEM "CERTIFICATE REQUEST" with an EC P-256 key and subject CN = `cn` only. */
  private async csr(pem: string, cn: string): Promise<Buffer | undefined> {
    const blocks = pemDecodeAll(pem);
    this.expect(blocks.length === 1 && blocks[0]!.label === "CERTIFICATE REQUEST" && pem.endsWith("-----\n"), "CSR is not one PEM CERTIFICATE REQUEST");
    try {
      const csr = await parseAndVerifyCsr(pem);
      this.expect(csr.key.family === "ec" && csr.key.curve === "P-256", "CSR key is not EC P-256");
      const expected = cn === "" ? [] : [{ type: "CN", value: cn }];
      this.expect(JSON.stringify(decodeName(csr.subject)) === JSON.stringify(expected), `CSR subject is not CN=${cn}`);
      this.expect(csr.extensions.length === 0 && csr.attributes.length === 0, "CSR has extensions or attributes");
      return csr.spki;
    } catch {
      return undefined;
    }
  }

  private async issue(spki: Buffer, device: FakeDevice, res: http.ServerResponse): Promise<void> {
    const issued = await this.pki.issueClient(spki, device.serverId, this.validity);
    device.serial = issued.certificate.serialHex;
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ server_id: device.serverId, certificate: issued.pem, ca_certificate: this.pki.caPem }) + "\n");
  }

  private async enroll(body: Record<string, unknown>, res: http.ServerResponse, text: (s: number, b: string) => void): Promise<void> {
    this.expect(JSON.stringify(Object.keys(body)) === JSON.stringify(ENROLL_KEYS), `enroll keys ${Object.keys(body).join(",")}`);
    const s = (k: string) => (typeof body[k] === "string" ? (body[k] as string) : "");
    if (!s("build_secret") || !s("fingerprint") || !s("csr")) return text(400, "missing required fields: build_secret, fingerprint, csr");
    if (!this.buildSecrets.includes(s("build_secret"))) return text(401, "unauthorized");
    const spki = await this.csr(s("csr"), s("hostname"));
    if (!spki) return text(400, "invalid CSR");
    let device = [...this.devices.values()].find((d) => d.fingerprint === s("fingerprint"));
    if (!device) {
      const b = crypto.randomBytes(16);
      b[6] = (b[6]! & 0x0f) | 0x40;
      b[8] = (b[8]! & 0x3f) | 0x80;
      device = { serverId: "srv_" + b.toString("hex"), fingerprint: s("fingerprint"), serial: "" };
      this.devices.set(device.serverId, device);
    }
    device.revoked = false;
    await this.issue(spki, device, res);
  }

  private async renew(body: Record<string, unknown>, socket: TLSSocket, res: http.ServerResponse, text: (s: number, b: string) => void): Promise<void> {
    const peer = socket.getPeerCertificate();
    if (!peer || !peer.raw) return text(401, "client certificate required");
    const leaf = parseCertificate(peer.raw);
    const cn = nameAttribute(leaf.subject, "CN") ?? "";
    const device = this.devices.get(cn);
    // RequireMTLS (§9) plus what a verifying listener adds: the chain must verify.
    if (!socket.authorized || !device || device.revoked || device.serial !== leaf.serialHex) return text(401, "unauthorized");
    this.expect(JSON.stringify(Object.keys(body)) === '["csr"]', "renew body is not exactly {csr}");
    if (typeof body.csr !== "string" || body.csr === "") return text(400, "missing required field: csr");
    const spki = await this.csr(body.csr, cn);
    if (!spki) return text(400, "invalid CSR");
    await this.issue(spki, device, res);
  }

  private async challenge(body: Record<string, unknown>, res: http.ServerResponse, text: (s: number, b: string) => void): Promise<void> {
    this.expect(JSON.stringify(Object.keys(body)) === JSON.stringify(CHALLENGE_KEYS), `challenge keys ${Object.keys(body).join(",")}`);
    const f = Object.fromEntries(CHALLENGE_KEYS.map((k) => [k, typeof body[k] === "string" ? (body[k] as string) : ""]));
    if (CHALLENGE_KEYS.some((k) => f[k] === "")) return text(400, "missing required fields");
    const deny = () => text(401, "challenge renewal failed");
    let cert;
    try {
      cert = parseCertificate(pemDecodeAll(f.expired_cert!)[0]!.der);
    } catch {
      return deny();
    }
    const now = Date.now();
    const device = this.devices.get(f.server_id!);
    if (!verifyCertificateSignature(cert, certificatePublicKey(this.pki.ca))) return deny();
    if (now < cert.notAfter.getTime() && !this.allowUnexpiredChallenge) return deny();
    if (nameAttribute(cert.subject, "CN") !== f.server_id || !device || device.revoked) return deny();
    if (cert.serialHex !== device.serial || device.fingerprint !== f.fingerprint) return deny();
    if (now - cert.notAfter.getTime() > this.challengeWindowMs) return deny();
    if (!verifyProof(certificatePublicKey(cert), challengeMessage(f.server_id!, f.fingerprint!, f.csr!), f.proof!)) {
      this.problems.push("proof did not verify");
      return deny();
    }
    const spki = await this.csr(f.csr!, f.server_id!);
    if (!spki) return deny();
    await this.issue(spki, device, res);
  }
}

/** An https URL on a port that was just free, so connecting to it is refused. */
export async function refusedUrl(): Promise<string> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const url = `https://127.0.0.1:${(probe.address() as AddressInfo).port}`;
  await new Promise<void>((r) => probe.close(() => r()));
  return url;
}
