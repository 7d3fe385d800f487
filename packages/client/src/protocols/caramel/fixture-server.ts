/**
 * Test support (not exported from the package): a Caramel server (spec
 * caramel.md §2) over node:https with a throwaway CA made at run time, plus
 * Tessera's additions (Last-Modified, 304 for If-Modified-Since). Requests
 * go unknown → pending → signed or rejected, by a policy or by hand; every
 * request is recorded with its headers and TLS client certificate.
 */
import * as https from "node:https";
import type * as http from "node:http";
import type * as crypto from "node:crypto";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import {
  CertificateTemplate, createCaCertificate, decodeName, encodeGeneralNames, encodeName, exportPrivateKey, generateKeyPair, generateSerial,
  nameAttribute, parseAndVerifyCsr, parseCertificate, pemDecodeAll, pemEncode, sha256Hex, spkiDer, type KeyType, type NameAttribute,
  type ParsedCertificate,
} from "@tessera/pki";

const HOUR = 3_600_000;

/** The fixture CA's subject: Caramel's shape (generate_ca: C, ST, L, O, OU, CN). */
export const FIXTURE_CA_SUBJECT: NameAttribute[] = [
  { type: "C", value: "SE" }, { type: "ST", value: "Östergötland" }, { type: "L", value: "Linköping" },
  { type: "O", value: "Tessera Fixture AB" }, { type: "OU", value: "Caramel" }, { type: "CN", value: "Caramel Signing Certificate" },
];

/** A self-signed Caramel CA with its key, and what it issues. */
export class CaramelFixtureCa {
  private constructor(
    readonly certificate: ParsedCertificate,
    readonly privateKey: crypto.KeyObject,
    readonly pem: string,
    private readonly deviceTemplate: CertificateTemplate,
    private readonly serverTemplate: CertificateTemplate,
  ) {}

  /** Makes a CA (EC P-256 unless told) with `subject` (default FIXTURE_CA_SUBJECT). */
  static async create(subject: NameAttribute[] | Uint8Array = FIXTURE_CA_SUBJECT, keyType: KeyType = "ec-p256"): Promise<CaramelFixtureCa> {
    const { privateKey, publicKey } = generateKeyPair(keyType);
    const now = Date.now();
    const certificate = await createCaCertificate({
      subject, publicKey, privateKey, notBefore: new Date(now - HOUR), notAfter: new Date(now + 24 * 365 * 24 * HOUR), pathLength: 0,
    });
    const issuer = { certificate, privateKey };
    // Caramel's device profile (spec §4): CA:FALSE, EKU clientAuth+serverAuth, SAN DNS:<CN>, SKI, AKI, no keyUsage.
    const deviceTemplate = await CertificateTemplate.create({ basicConstraints: { ca: false }, extKeyUsage: ["clientAuth", "serverAuth"] }, issuer);
    const serverTemplate = await CertificateTemplate.create({ keyUsage: ["digitalSignature"], extKeyUsage: ["serverAuth"] }, issuer);
    return new CaramelFixtureCa(certificate, privateKey, pemEncode("CERTIFICATE", certificate.der), deviceTemplate, serverTemplate);
  }

  /** Issues a device certificate for a request's subject (verbatim) and key; valid from `notBefore` for `lifetimeMs` (default now − 1 min, 48 h). */
  async issue(subject: Uint8Array, spki: Uint8Array, validity: { notBefore?: Date; lifetimeMs?: number } = {}): Promise<ParsedCertificate> {
    const notBefore = validity.notBefore ?? new Date(Date.now() - 60_000);
    const cn = nameAttribute(subject, "CN");
    const der = await this.deviceTemplate.issue({
      serial: generateSerial({ kind: "random", bytes: 16 }), notBefore, notAfter: new Date(notBefore.getTime() + (validity.lifetimeMs ?? 48 * HOUR)),
      subject, spki, ...(cn !== undefined ? { subjectAltNames: encodeGeneralNames([{ type: "dns", value: cn }]) } : {}),
    });
    return parseCertificate(der);
  }

  /** A TLS server certificate (SAN localhost and 127.0.0.1) and its key, PEM. */
  async serverIdentity(): Promise<{ cert: string; key: string }> {
    const { privateKey, publicKey } = generateKeyPair("ec-p256");
    const der = await this.serverTemplate.issue({
      serial: generateSerial({ kind: "random", bytes: 16 }), notBefore: new Date(Date.now() - HOUR), notAfter: new Date(Date.now() + 30 * 24 * HOUR),
      subject: encodeName([{ type: "CN", value: "localhost" }]), spki: spkiDer(publicKey),
      subjectAltNames: encodeGeneralNames([{ type: "dns", value: "localhost" }, { type: "ip", value: "127.0.0.1" }]),
    });
    return { cert: pemEncode("CERTIFICATE", der), key: exportPrivateKey(privateKey) };
  }
}

/** One request the fixture received, and what it answered. */
export interface SeenCaramelRequest {
  method: string;
  /** Path as sent. */
  path: string;
  /** The request hash in the path, if the path is one. */
  sha256?: string;
  headers: http.IncomingHttpHeaders;
  /** Body as received (latin1). */
  body: string;
  /** The TLS client certificate, if one was sent. */
  peerCertificate?: ParsedCertificate;
  /** Whether it chained to the fixture CA. */
  peerAuthorized?: boolean;
  /** Status answered. */
  status?: number;
  /** Bytes of body answered. */
  answeredBytes?: number;
}

/** A stored request (spec §3) and its certificates, newest last. */
export interface FixtureCsr {
  sha256: string;
  pem: string;
  commonName: string | undefined;
  state: "pending" | "signed" | "rejected";
  /** GETs answered 202 so far. */
  pendingPolls: number;
  certificates: { certificate: ParsedCertificate; pem: string; lastModified: Date }[];
}

/** What happens to a pending request at a GET. */
export interface FixturePolicy {
  /** GETs answered 202 before the outcome applies (default 0). */
  pendingPolls: number;
  /** Then: sign it, reject it, or leave it pending (default "sign"). */
  outcome: "sign" | "reject" | "pending";
}

/** An answer forced by a test. */
export interface FixtureAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

const SHA_PATH = /^\/+([0-9a-f]{64})(?:\?.*)?$/;
const MAX_CSR_BYTES = 2048;

/** Python's repr of a (name, value) tuple list, as Caramel quotes subjects (spec §2.1 check 6). */
function pyTuples(attrs: { type: string; value: string }[]): string {
  const s = attrs.map((a) => `('${a.type}', '${a.value}')`).join(", ");
  return `(${s}${attrs.length === 1 ? "," : ""})`;
}

/** The fixture Caramel server. Knobs are public fields; reset() restores the defaults. */
export class CaramelFixtureServer {
  /** Every request, in order. */
  readonly seen: SeenCaramelRequest[] = [];
  /** Stored requests by hash. */
  readonly csrs = new Map<string, FixtureCsr>();
  /** What a pending request turns into. */
  policy: FixturePolicy = { pendingPolls: 0, outcome: "sign" };
  /** Tessera's additions: Last-Modified on 200 and 304 for a fresh If-Modified-Since (default true; false = Caramel 1.9.6). */
  conditional = true;
  /** Lifetime of issued certificates in milliseconds. */
  lifetimeMs = 48 * HOUR;
  /** Decides an answer before the normal handling. */
  override: (req: SeenCaramelRequest) => FixtureAnswer | undefined = () => undefined;

  private constructor(readonly ca: CaramelFixtureCa, private readonly server: https.Server, readonly url: string, readonly host: string) {}

  /** Starts on 127.0.0.1 with a TLS certificate from `ca` (a new CA by default). */
  static async start(opts: { ca?: CaramelFixtureCa } = {}): Promise<CaramelFixtureServer> {
    const ca = opts.ca ?? (await CaramelFixtureCa.create());
    const { cert, key } = await ca.serverIdentity();
    // Client certificates are asked for, never required (spec §1).
    const server = https.createServer({ cert, key, ca: [ca.pem], requestCert: true, rejectUnauthorized: false, minVersion: "TLSv1.2" });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const fixture = new CaramelFixtureServer(ca, server, `https://${host}`, host);
    server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => void fixture.handle(req, res));
    return fixture;
  }

  /** Restores every knob and forgets every request and certificate. */
  reset(): void {
    this.seen.length = 0;
    this.csrs.clear();
    this.policy = { pendingPolls: 0, outcome: "sign" };
    this.conditional = true;
    this.lifetimeMs = 48 * HOUR;
    this.override = () => undefined;
  }

  /** Stops listening and drops open connections. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** "METHOD status" of every request, e.g. ["GET 404", "POST 202", "GET 202"]. */
  log(): string[] {
    return this.seen.map((s) => `${s.method} ${s.status ?? "-"}`);
  }

  /** Signs a stored request now (another certificate if it has one), as `caramel_tool --sign` or `--refresh`. */
  async sign(sha256: string, validity: { notBefore?: Date; lifetimeMs?: number } = {}): Promise<ParsedCertificate> {
    const csr = this.csrs.get(sha256);
    if (!csr) throw new Error(`no request ${sha256}`);
    const parsed = await parseAndVerifyCsr(pemDecodeAll(csr.pem)[0]!.der, { minRsaBits: 1024 });
    const certificate = await this.ca.issue(parsed.subject, parsed.spki, { lifetimeMs: this.lifetimeMs, ...validity });
    // Last-Modified has one-second resolution; a certificate signed within the same second as the previous one still counts as newer.
    const last = csr.certificates.at(-1)?.lastModified.getTime() ?? 0;
    const lastModified = new Date(Math.max(Math.floor(Date.now() / 1000) * 1000, last + 1000));
    csr.certificates.push({ certificate, pem: pemEncode("CERTIFICATE", certificate.der), lastModified });
    csr.state = "signed";
    return certificate;
  }

  /** Rejects a stored request (`caramel_tool --reject`). */
  reject(sha256: string): void {
    const csr = this.csrs.get(sha256);
    if (!csr) throw new Error(`no request ${sha256}`);
    csr.state = "rejected";
  }

  private send(res: http.ServerResponse, seen: SeenCaramelRequest, status: number, headers: Record<string, string>, body: Buffer | string = ""): void {
    const buf = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    seen.status = status;
    seen.answeredBytes = buf.length;
    res.writeHead(status, status === 304 ? headers : { ...headers, "Content-Length": String(buf.length) });
    res.end(status === 304 ? undefined : buf);
  }

  private problem(res: http.ServerResponse, seen: SeenCaramelRequest, status: number, title: string, detail: string | null): void {
    const body = JSON.stringify({ status, title, detail }).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
    this.send(res, seen, status, { "Content-Type": "application/problem+json" }, body);
  }

  private pendingBody(req: http.IncomingMessage, sha256: string): string {
    return `{"sha256": "${sha256}", "url": "https://${req.headers.host ?? this.host}/${sha256}"}`;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const socket = req.socket as TLSSocket;
    const path = req.url ?? "";
    const m = SHA_PATH.exec(path);
    const seen: SeenCaramelRequest = { method: req.method ?? "", path, headers: req.headers, body: raw.toString("latin1") };
    if (m) seen.sha256 = m[1]!;
    const peer = socket.getPeerCertificate();
    if (peer && peer.raw) {
      seen.peerCertificate = parseCertificate(peer.raw);
      seen.peerAuthorized = socket.authorized;
    }
    this.seen.push(seen);
    const forced = this.override(seen);
    if (forced) return this.send(res, seen, forced.status, forced.headers ?? {}, forced.body ?? "");
    try {
      if (req.method === "GET" && /^\/+(root|bundle)\.crt$/.test(path.split("?")[0]!)) {
        return this.send(res, seen, 200, { "Content-Type": "text/plain; charset=UTF-8", "Cache-Control": "max-age=3600" }, this.ca.pem);
      }
      if (m && req.method === "POST") return await this.post(req, res, seen, m[1]!, raw);
      if (m && req.method === "GET") return await this.get(req, res, seen, m[1]!);
      return this.problem(res, seen, 404, "Not Found", path);
    } catch (err) {
      return this.problem(res, seen, 500, "Internal Server Error", (err as Error).message);
    }
  }

  // Spec §2.1: the first failing check wins.
  private async post(req: http.IncomingMessage, res: http.ServerResponse, seen: SeenCaramelRequest, sha256: string, body: Buffer): Promise<void> {
    if (req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined) return this.problem(res, seen, 411, "Length Required", null);
    if (body.length > MAX_CSR_BYTES) return this.problem(res, seen, 413, "Request Entity Too Large", "Max size: 2.0 kB");
    const computed = sha256Hex(body);
    if (computed !== sha256) return this.problem(res, seen, 400, "Bad Request", `hash mismatch (${computed})`);
    const text = body.toString("latin1");
    const blocks = (() => {
      try {
        return pemDecodeAll(text);
      } catch {
        return [];
      }
    })();
    if (blocks.length !== 1 || blocks[0]!.label !== "CERTIFICATE REQUEST" || pemEncode("CERTIFICATE REQUEST", blocks[0]!.der) !== text) {
      return this.problem(res, seen, 400, "Bad Request", "crypto error: invalid PEM reqtext");
    }
    let subject: NameAttribute[];
    try {
      subject = decodeName((await parseAndVerifyCsr(blocks[0]!.der, { minRsaBits: 1024 })).subject);
    } catch {
      return this.problem(res, seen, 400, "Bad Request", "crypto error: Invalid Request");
    }
    const ca = decodeName(this.ca.certificate.subject);
    const prefix = ["C", "ST", "L", "O"].flatMap((t) => ca.filter((a) => a.type === t).slice(0, 1));
    if (subject.length < prefix.length) return this.problem(res, seen, 400, "Bad Request", "Bad subject: Too few subject components");
    const given = subject.slice(0, prefix.length);
    if (given.some((a, i) => a.type !== prefix[i]!.type || a.value !== prefix[i]!.value)) {
      return this.problem(res, seen, 400, "Bad Request", `Bad subject: ${pyTuples(given)} do not match ${pyTuples(prefix)}`);
    }
    if (this.csrs.has(sha256)) return this.problem(res, seen, 400, "Bad Request", "duplicate request");
    this.csrs.set(sha256, { sha256, pem: text, commonName: subject.find((a) => a.type === "CN")?.value, state: "pending", pendingPolls: 0, certificates: [] });
    return this.send(res, seen, 202, { "Content-Type": "application/json" }, this.pendingBody(req, sha256));
  }

  // Spec §2.2, with Tessera's Last-Modified / 304.
  private async get(req: http.IncomingMessage, res: http.ServerResponse, seen: SeenCaramelRequest, sha256: string): Promise<void> {
    const csr = this.csrs.get(sha256);
    if (!csr) return this.problem(res, seen, 404, "Not Found", null);
    if (csr.state === "pending") {
      if (csr.pendingPolls < this.policy.pendingPolls || this.policy.outcome === "pending") {
        csr.pendingPolls++;
      } else if (this.policy.outcome === "reject") {
        csr.state = "rejected";
      } else {
        await this.sign(sha256);
      }
    }
    if (csr.state === "rejected") return this.problem(res, seen, 403, "Forbidden", null);
    const newest = csr.certificates.reduce<FixtureCsr["certificates"][number] | undefined>(
      (best, c) => (best === undefined || c.certificate.notAfter >= best.certificate.notAfter ? c : best), undefined);
    if (!newest || newest.certificate.notAfter.getTime() <= Date.now()) {
      return this.send(res, seen, 202, { "Content-Type": "application/json" }, this.pendingBody(req, sha256));
    }
    if (this.conditional) {
      const ims = Date.parse(String(req.headers["if-modified-since"] ?? ""));
      if (!Number.isNaN(ims) && ims >= newest.lastModified.getTime()) return this.send(res, seen, 304, { "Last-Modified": newest.lastModified.toUTCString() });
      return this.send(res, seen, 200, { "Content-Type": "application/octet-stream", "Last-Modified": newest.lastModified.toUTCString() }, newest.pem);
    }
    return this.send(res, seen, 200, { "Content-Type": "application/octet-stream" }, newest.pem);
  }
}
