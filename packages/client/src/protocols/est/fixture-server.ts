/**
 * Test support (not exported from the package): an EST server (RFC 7030)
 * over node:https that can answer in every form the spec (est.md §2–§6) says
 * servers send — with or without Content-Transfer-Encoding, base64 in LF,
 * CRLF or no lines, raw DER, 202 with Retry-After as seconds or HTTP-date, a
 * Basic challenge, a rollover /cacerts bag, multipart with a quoted or bare
 * boundary, /csrattrs 200/204/404, text errors — and that records and checks
 * what the client sends.
 */
import * as https from "node:https";
import type * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import {
  buildCertsOnly, decodeBase64Lenient, encodeBase64Lines, encodeCsrAttrs, ExtOid, exportPrivateKey, formatName, generateKeyPair, keyInfo,
  keyTypeName, parseAndVerifyCsr, parseCertificate, parseKeyType, pemDecodeAll, spkiDer, type CsrAttr, type ParsedCertificate, type ParsedCsr,
} from "@tessera/pki";
import { EstFixturePki, type FixtureServerIdentity } from "./fixture-pki.js";

/** How a base64 body is laid out: 64-char LF lines, CRLF lines, one unbroken line, or raw DER (no base64 at all). */
export type FixtureEncoding = "lines" | "crlf" | "unbroken" | "der";

/** One request the fixture received. */
export interface SeenEstRequest {
  method: string;
  /** Path as sent (with the query). */
  path: string;
  /** The label in the path, if any. */
  label?: string;
  /** The operation (last path segment). */
  op: string;
  headers: http.IncomingHttpHeaders;
  /** Body as received (latin1). */
  body: string;
  /** Subject of the TLS client certificate, if one was sent. */
  peerSubject?: string;
  /** Whether that certificate chained to the fixture's CA. */
  peerAuthorized?: boolean;
}

/** An answer forced by a test. */
export interface FixtureAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

const OPS = new Set(["cacerts", "simpleenroll", "simplereenroll", "csrattrs", "serverkeygen", "fullcmc"]);
const PATH = /^\/\.well-known\/est(?:\/([^/?]+))?\/([^/?]+)(?:\?.*)?$/;

/** The fixture EST server. Knobs are public fields; reset() restores the defaults between tests. */
export class EstFixtureServer {
  /** Every request, in order. */
  readonly seen: SeenEstRequest[] = [];
  /** What the client got wrong (media type, CTE, line layout…); tests assert it stays empty. */
  readonly problems: string[] = [];
  /** Certificates issued, in order. */
  readonly issued: ParsedCertificate[] = [];
  /** Labels that exist besides the default CA. */
  labels = new Set(["tenant-a"]);
  /** Layout of base64 bodies (default "lines", what Tessera sends). */
  encoding: FixtureEncoding = "lines";
  /** Send `Content-Transfer-Encoding: base64` on single-part answers (default true). */
  sendCte = true;
  /** When set, enroll and serverkeygen without a verified client certificate need these Basic credentials (401 challenge first). */
  basic: { username: string; password: string } | undefined = undefined;
  /** The WWW-Authenticate value of the challenge. */
  challenge = 'Basic realm="tessera"';
  /** Answer the next `count` enroll/reenroll/serverkeygen requests 202 with this Retry-After value. */
  pending: { count: number; retryAfter: string } = { count: 0, retryAfter: "1" };
  /** /cacerts holds the rollover certificates too. */
  rollover = false;
  /** /csrattrs answer: 200 with `attrs`, or 204/404 empty. */
  csrattrs: { status: 200 | 204 | 404; attrs?: CsrAttr[] } = { status: 204 };
  /** serverkeygen: quote the boundary (and use characters that need it). */
  boundaryQuoted = false;
  /** serverkeygen: line ends of the multipart framing. */
  multipartNewline: "\r\n" | "\n" = "\r\n";
  /** serverkeygen: put the certificate part before the key part. */
  certPartFirst = false;
  /** Decides an answer before the normal handling. */
  override: (req: SeenEstRequest) => FixtureAnswer | undefined = () => undefined;

  private constructor(readonly pki: EstFixturePki, private readonly server: https.Server, readonly url: string, readonly serverCertificate: ParsedCertificate) {}

  /** Starts on 127.0.0.1 with a TLS certificate from `pki` (a new one by default) of the given identity. */
  static async start(opts: { pki?: EstFixturePki; identity?: FixtureServerIdentity } = {}): Promise<EstFixtureServer> {
    const pki = opts.pki ?? (await EstFixturePki.create());
    const { cert, key, certificate } = await pki.issueServer(opts.identity ?? "matching");
    const server = https.createServer({
      cert, key, ca: [pki.root.pem, pki.issuing.pem], requestCert: true, rejectUnauthorized: false, minVersion: "TLSv1.2", ALPNProtocols: ["http/1.1"],
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const fixture = new EstFixtureServer(pki, server, `https://127.0.0.1:${(server.address() as AddressInfo).port}`, certificate);
    server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => void fixture.handle(req, res));
    return fixture;
  }

  /** Restores every knob and forgets what was seen and issued. */
  reset(): void {
    this.seen.length = 0;
    this.problems.length = 0;
    this.issued.length = 0;
    this.labels = new Set(["tenant-a"]);
    this.encoding = "lines";
    this.sendCte = true;
    this.basic = undefined;
    this.challenge = 'Basic realm="tessera"';
    this.pending = { count: 0, retryAfter: "1" };
    this.rollover = false;
    this.csrattrs = { status: 204 };
    this.boundaryQuoted = false;
    this.multipartNewline = "\r\n";
    this.certPartFirst = false;
    this.override = () => undefined;
  }

  /** Stops listening and drops open connections. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Operations of the requests seen, in order (e.g. ["simpleenroll", "simpleenroll"]). */
  ops(): string[] {
    return this.seen.map((s) => s.op);
  }

  /** A base64 (or DER) body in the configured layout. */
  encode(der: Uint8Array, encoding: FixtureEncoding = this.encoding): Buffer {
    if (encoding === "der") return Buffer.from(der);
    if (encoding === "unbroken") return Buffer.from(Buffer.from(der).toString("base64"), "latin1");
    const lines = encodeBase64Lines(der);
    return Buffer.from(encoding === "crlf" ? lines.replace(/\n/g, "\r\n") : lines, "latin1");
  }

  private send(res: http.ServerResponse, status: number, headers: Record<string, string>, body: Buffer | string = ""): void {
    const buf = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    res.writeHead(status, { ...headers, "Content-Length": String(buf.length) });
    res.end(buf);
  }

  private text(res: http.ServerResponse, status: number, message: string): void {
    this.send(res, status, { "Content-Type": "text/plain; charset=utf-8" }, message + "\n");
  }

  private base64(res: http.ServerResponse, contentType: string, der: Uint8Array): void {
    const headers: Record<string, string> = { "Content-Type": contentType };
    if (this.sendCte && this.encoding !== "der") headers["Content-Transfer-Encoding"] = "base64";
    this.send(res, 200, headers, this.encode(der));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("latin1");
    const socket = req.socket as TLSSocket;
    const m = PATH.exec(req.url ?? "");
    const seen: SeenEstRequest = { method: req.method ?? "", path: req.url ?? "", op: m?.[2] ?? "", headers: req.headers, body };
    if (m?.[1] !== undefined) seen.label = m[1];
    const peer = socket.getPeerCertificate();
    let peerCert: ParsedCertificate | undefined;
    if (peer && peer.raw) {
      peerCert = parseCertificate(peer.raw);
      seen.peerSubject = formatName(peerCert.subject);
      seen.peerAuthorized = socket.authorized;
    }
    this.seen.push(seen);
    const forced = this.override(seen);
    if (forced) return this.send(res, forced.status, forced.headers ?? {}, forced.body ?? "");
    try {
      if (!m || !OPS.has(seen.op) || (seen.label !== undefined && !this.labels.has(seen.label))) return this.text(res, 404, "not found");
      const post = ["simpleenroll", "simplereenroll", "serverkeygen", "fullcmc"].includes(seen.op);
      if (req.method !== (post ? "POST" : "GET")) {
        res.setHeader("Allow", post ? "POST" : "GET");
        return this.text(res, 405, "method not allowed");
      }
      if (seen.op === "cacerts") return this.base64(res, "application/pkcs7-mime; smime-type=certs-only", buildCertsOnly(this.pki.bag(this.rollover)));
      if (seen.op === "csrattrs") {
        if (this.csrattrs.status !== 200) return this.send(res, this.csrattrs.status, {});
        return this.base64(res, "application/csrattrs", encodeCsrAttrs(this.csrattrs.attrs ?? []));
      }
      if (seen.op === "fullcmc") return this.text(res, 501, "fullcmc is not implemented");
      this.checkRequest(seen);
      const verifiedPeer = peerCert && socket.authorized ? peerCert : undefined;
      if (seen.op === "simplereenroll" && !verifiedPeer) return this.text(res, 403, "reenrollment needs the current certificate as TLS client certificate");
      if (seen.op !== "simplereenroll" && !verifiedPeer && this.basic) {
        const auth = req.headers.authorization;
        if (auth === undefined) return this.send(res, 401, { "WWW-Authenticate": this.challenge });
        const expected = "Basic " + Buffer.from(`${this.basic.username}:${this.basic.password}`, "utf8").toString("base64");
        if (auth !== expected) return this.send(res, 401, { "WWW-Authenticate": this.challenge });
      }
      if (this.pending.count > 0) {
        this.pending.count--;
        return this.send(res, 202, { "Retry-After": this.pending.retryAfter });
      }
      let csr: ParsedCsr;
      try {
        csr = await parseAndVerifyCsr(decodeBase64Lenient(body));
      } catch (err) {
        return this.text(res, 400, `invalid certificate request: ${(err as Error).message}`);
      }
      const san = csr.extensions.find((e) => e.oid === ExtOid.subjectAltName)?.value;
      if (seen.op === "simplereenroll") {
        const currentSan = verifiedPeer!.extensions.find((e) => e.oid === ExtOid.subjectAltName)?.value;
        if (!csr.subject.equals(verifiedPeer!.subject)) return this.text(res, 400, "the request's Subject differs from the certificate's");
        if (!(san === undefined ? currentSan === undefined : currentSan !== undefined && san.equals(currentSan))) {
          return this.text(res, 400, "the request's subjectAltName differs from the certificate's");
        }
      }
      if (seen.op === "serverkeygen") return await this.serverkeygen(res, csr, san);
      const cert = await this.pki.issueClient(csr.spki, csr.subject, san);
      this.issued.push(cert);
      return this.base64(res, "application/pkcs7-mime; smime-type=certs-only", buildCertsOnly([cert.der]));
    } catch (err) {
      this.problems.push(`handler threw: ${(err as Error).message}`);
      return this.text(res, 500, "internal error");
    }
  }

  /** What a Tessera client must send (spec §6): application/pkcs10, CTE base64, 64-character LF lines. */
  private checkRequest(seen: SeenEstRequest): void {
    const expect = (ok: boolean, problem: string) => {
      if (!ok) this.problems.push(`${seen.op}: ${problem}`);
    };
    expect(seen.headers["content-type"] === "application/pkcs10", `Content-Type is ${seen.headers["content-type"]}`);
    expect(seen.headers["content-transfer-encoding"] === "base64", `Content-Transfer-Encoding is ${seen.headers["content-transfer-encoding"]}`);
    const lines = seen.body.split("\n");
    expect(lines.at(-1) === "" && lines.slice(0, -1).every((l, i, all) => /^[A-Za-z0-9+/=]+$/.test(l) && (i === all.length - 1 ? l.length <= 64 : l.length === 64)), "body is not base64 in 64-character LF lines");
  }

  private async serverkeygen(res: http.ServerResponse, csr: ParsedCsr, san: Buffer | undefined): Promise<void> {
    // The server chooses the key; following the request's key type is what most servers do.
    const { privateKey, publicKey } = generateKeyPair(parseKeyType(keyTypeName(keyInfo(csr.publicKey))));
    const cert = await this.pki.issueClient(spkiDer(publicKey), csr.subject, san);
    this.issued.push(cert);
    const nl = this.multipartNewline;
    const boundary = this.boundaryQuoted ? "est:boundary=42 x" : "tessera-est-boundary";
    const b64 = (der: Uint8Array) => encodeBase64Lines(der).replace(/\n/g, nl);
    const keyDer = Buffer.from(pemDecodeAll(exportPrivateKey(privateKey))[0]!.der);
    const keyPart = `Content-Type: application/pkcs8${nl}Content-Transfer-Encoding: base64${nl}${nl}${b64(keyDer)}`;
    const certPart = `Content-Type: application/pkcs7-mime; smime-type=certs-only${nl}Content-Transfer-Encoding: base64${nl}${nl}${b64(buildCertsOnly([cert.der]))}`;
    const parts = this.certPartFirst ? [certPart, keyPart] : [keyPart, certPart];
    // Each part's base64 ends with a line break, which then belongs to the next delimiter.
    const body = `--${boundary}${nl}${parts.join(`--${boundary}${nl}`)}--${boundary}--${nl}`;
    const contentType = `multipart/mixed; boundary=${this.boundaryQuoted ? `"${boundary}"` : boundary}`;
    this.send(res, 200, { "Content-Type": contentType }, body);
  }
}
