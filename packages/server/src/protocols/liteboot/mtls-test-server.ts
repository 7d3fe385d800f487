/**
 * liteboot's mTLS TCP test endpoint (spec §5, the original's port 8443): a
 * TLS server that requires a client certificate chaining to our CA, logs the
 * certificates the client sent in the original's words, and closes without
 * exchanging application data. Bootstrap and revoked certificates are
 * refused through the `isAcceptable` hook (the caller knows the store).
 */
import * as tls from "node:tls";
import type { AddressInfo, Socket } from "node:net";
import type { Logger } from "pino";
import { attributeOid, decodeName, parseCertificate, serialToBigInt, sha256Hex, toDer } from "@tessera/pki";
import type { Authority } from "../../authority/authority.js";
import { BOOTSTRAP_OU } from "./service.js";

/** Options of {@link startMtlsTestServer}. */
export interface MtlsTestServerOptions {
  host: string;
  port: number;
  /** The server's TLS certificate (PEM, leaf first, chain after). */
  cert: string;
  /** Its private key (PEM). */
  key: string;
  /** Trust anchors for client certificates (PEM): Tessera's root and issuing CA. */
  ca: string;
  /**
   * Called with the leaf DER after a successful handshake. `true` lets the
   * connection be logged as the original does; anything else refuses it (a
   * string is the reason logged). Throwing refuses too.
   */
  isAcceptable?: (leafDer: Buffer) => Promise<boolean | string> | boolean | string;
  log: Logger;
}

/** A running test endpoint. */
export interface MtlsTestServer {
  server: tls.Server;
  address: AddressInfo;
  /** Replaces the server certificate, key or trust anchors (server certificate renewal, SIGHUP). */
  updateTls(material: { cert: string; key: string; ca: string }): void;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

function contextOptions(m: { cert: string; key: string; ca: string }): tls.SecureContextOptions {
  return { cert: m.cert, key: m.key, ca: m.ca, minVersion: "TLSv1.2" };
}

/** Starts the endpoint; resolves once it listens. */
export async function startMtlsTestServer(opts: MtlsTestServerOptions): Promise<MtlsTestServer> {
  const { log } = opts;
  const sockets = new Set<Socket>();
  let anchors = anchorSet(opts.ca);
  const server = tls.createServer({ ...contextOptions(opts), requestCert: true, rejectUnauthorized: true });

  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // The raw socket may see resets the TLS layer does not report.
    socket.on("error", () => undefined);
    log.info(`Connection accepted from ${peerOf(socket)}`);
  });
  server.on("tlsClientError", (err: Error, socket: tls.TLSSocket) => {
    log.info(`Client handshake error: ${handshakeError(err, socket)}`);
    socket.destroy();
  });
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    socket.on("error", () => undefined);
    void report(socket).finally(() => {
      socket.end();
      // A client that never reads its side of the close must not keep the connection.
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  });

  const report = async (socket: tls.TLSSocket) => {
    const sent = sentCertificates(socket, anchors);
    const leaf = sent[0];
    if (!leaf) {
      log.info("Client handshake error: no client certificate");
      return;
    }
    let verdict: boolean | string;
    try {
      verdict = opts.isAcceptable ? await opts.isAcceptable(leaf) : true;
    } catch (err) {
      verdict = (err as Error).message;
    }
    if (verdict !== true) {
      log.info(`Client certificate refused: ${describe(leaf)}: ${typeof verdict === "string" && verdict ? verdict : "not acceptable"}`);
      return;
    }
    sent.forEach((der, i) => {
      const cert = parseCertificate(der);
      log.info(`[Certificate ${i}]`);
      log.info(`  - Subject: ${goNameString(cert.subject)}`);
      log.info(`  - Serial:  ${signedSerial(cert.serial).toString()}`);
    });
  };

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    server,
    address: server.address() as AddressInfo,
    updateTls(material) {
      server.setSecureContext(contextOptions(material));
      anchors = anchorSet(material.ca);
    },
    close() {
      return new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}

/**
 * The check the server passes as `isAcceptable`: a bootstrap certificate
 * (a bootstrap credential's certificate, or a legacy one by its only OU) is
 * for the REST API's enrollment routes only, and a revoked certificate is
 * refused (the original has no store to ask).
 */
export function litebootMtlsAcceptance(authority: Pick<Authority, "bootstrapCredential" | "isRevoked">): (leafDer: Buffer) => Promise<true | string> {
  return async (leafDer) => {
    const cert = parseCertificate(leafDer);
    const ous = decodeName(cert.subject).filter((a) => a.type === "OU").map((a) => a.value);
    if ((ous.length === 1 && ous[0] === BOOTSTRAP_OU) || (await authority.bootstrapCredential(sha256Hex(leafDer)))) return "a bootstrap certificate is for enrollment only";
    if (await authority.isRevoked(cert.serialHex)) return "certificate revoked";
    return true;
  };
}

/**
 * OpenSSL's certificate verification messages (X509_verify_cert_error_string,
 * which Node uses for a client's verifyError) by the code Node leaves on a
 * server socket it drops for an unverified client certificate.
 */
const VERIFY_ERRORS: Record<string, string> = {
  UNABLE_TO_GET_ISSUER_CERT: "unable to get issuer certificate",
  UNABLE_TO_GET_CRL: "unable to get certificate CRL",
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: "unable to decrypt certificate's signature",
  UNABLE_TO_DECRYPT_CRL_SIGNATURE: "unable to decrypt CRL's signature",
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: "unable to decode issuer public key",
  CERT_SIGNATURE_FAILURE: "certificate signature failure",
  CRL_SIGNATURE_FAILURE: "CRL signature failure",
  CERT_NOT_YET_VALID: "certificate is not yet valid",
  CERT_HAS_EXPIRED: "certificate has expired",
  CRL_NOT_YET_VALID: "CRL is not yet valid",
  CRL_HAS_EXPIRED: "CRL has expired",
  ERROR_IN_CERT_NOT_BEFORE_FIELD: "format error in certificate's notBefore field",
  ERROR_IN_CERT_NOT_AFTER_FIELD: "format error in certificate's notAfter field",
  ERROR_IN_CRL_LAST_UPDATE_FIELD: "format error in CRL's lastUpdate field",
  ERROR_IN_CRL_NEXT_UPDATE_FIELD: "format error in CRL's nextUpdate field",
  OUT_OF_MEM: "out of memory",
  DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed certificate",
  SELF_SIGNED_CERT_IN_CHAIN: "self-signed certificate in certificate chain",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "unable to get local issuer certificate",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "unable to verify the first certificate",
  CERT_CHAIN_TOO_LONG: "certificate chain too long",
  CERT_REVOKED: "certificate revoked",
  INVALID_CA: "invalid CA certificate",
  PATH_LENGTH_EXCEEDED: "path length constraint exceeded",
  INVALID_PURPOSE: "unsupported certificate purpose",
  CERT_UNTRUSTED: "certificate not trusted",
  CERT_REJECTED: "certificate rejected",
};

/**
 * The text after "Client handshake error: ". Node completes the handshake and
 * then drops a client whose certificate failed verification, reporting only
 * "socket hang up" with the verification code on the socket: use that code's
 * message. Other failures are OpenSSL errors: their reason (e.g. "peer did not
 * return a certificate"), else the message's first line.
 */
function handshakeError(err: Error & { reason?: string }, socket: tls.TLSSocket): string {
  const code = socket.authorizationError as unknown as string | undefined;
  if (code) return VERIFY_ERRORS[code] ?? code;
  if (typeof err.reason === "string" && err.reason) return err.reason;
  return err.message.split("\n")[0]!;
}

function peerOf(socket: Socket): string {
  const ip = socket.remoteAddress ?? "?";
  return `${ip.includes(":") ? `[${ip}]` : ip}:${socket.remotePort ?? 0}`;
}

function describe(der: Buffer): string {
  try {
    const cert = parseCertificate(der);
    return `${goNameString(cert.subject)} (serial ${signedSerial(cert.serial).toString()})`;
  } catch {
    return "unparsable certificate";
  }
}

/** DER of every certificate in a PEM bundle, as hex, for lookups. */
function anchorSet(pem: string): Set<string> {
  const out = new Set<string>();
  for (const block of pem.split(/(?=-----BEGIN CERTIFICATE-----)/)) {
    if (!block.includes("-----BEGIN CERTIFICATE-----")) continue;
    try {
      out.add(toDer(block, "CERTIFICATE").toString("hex"));
    } catch {
      /* not a certificate: cannot match a peer's */
    }
  }
  return out;
}

/**
 * The certificates the client sent, leaf first, as near as Node lets us see
 * them: the peer chain Node reports is what the client sent, completed from
 * our trust store, so it stops at the first of our own CA certificates (a
 * client that sends its issuing CA too is shown with its leaf only).
 */
function sentCertificates(socket: tls.TLSSocket, anchors: Set<string>): Buffer[] {
  const out: Buffer[] = [];
  let cur: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (cur && cur.raw && cur.raw.length > 0) {
    const hex = cur.raw.toString("hex");
    if (seen.has(hex) || (out.length > 0 && anchors.has(hex))) break;
    seen.add(hex);
    out.push(cur.raw);
    cur = cur.issuerCertificate;
  }
  return out;
}

/** The serial as Go's big.Int reads it: two's complement, so a malformed negative serial prints negative. */
function signedSerial(raw: Buffer): bigint {
  const value = serialToBigInt(raw);
  return raw.length > 0 && (raw[0]! & 0x80) !== 0 ? value - (1n << BigInt(raw.length * 8)) : value;
}

/** Attributes Go parses into named pkix.Name fields, in the order Name.ToRDNSequence writes them. */
const GO_FIELDS: ReadonlyArray<readonly [oid: string, name: string]> = [
  ["2.5.4.6", "C"], ["2.5.4.8", "ST"], ["2.5.4.7", "L"], ["2.5.4.9", "STREET"], ["2.5.4.17", "POSTALCODE"],
  ["2.5.4.10", "O"], ["2.5.4.11", "OU"], ["2.5.4.3", "CN"], ["2.5.4.5", "SERIALNUMBER"],
];

function goEscape(v: string): string {
  const chars = [...v];
  return chars
    .map((c, k) => {
      const esc = ",+\"\\<>;".includes(c) || (c === " " && (k === 0 || k === chars.length - 1)) || (c === "#" && k === 0);
      return esc ? `\\${c}` : c;
    })
    .join("");
}

/** asn1.Marshal of a Go string: PrintableString when it fits, else UTF8String. */
function goMarshalString(v: string): Buffer {
  const bytes = Buffer.from(v, "utf8");
  const tag = /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(v) ? 0x13 : 0x0c;
  const len = bytes.length;
  const head = len < 0x80 ? [len] : len < 0x100 ? [0x81, len] : [0x82, len >> 8, len & 0xff];
  return Buffer.concat([Buffer.from([tag, ...head]), bytes]);
}

/**
 * A subject as Go's pkix.Name.String() prints it (what the original logs):
 * the parsed fields C, ST, L, STREET, POSTALCODE, O, OU, CN, SERIALNUMBER
 * (CN and SERIALNUMBER: the last value; several values of one field joined
 * with "+"), other attributes as OID=#hex, everything reversed as RFC 4514
 * writes it; e.g. `CN=…,OU=Signing,O=Linaro\, LTD`.
 */
export function goNameString(subjectDer: Uint8Array): string {
  const attrs = decodeName(subjectDer).map((a) => {
    let oid: string;
    try {
      oid = attributeOid(a.type);
    } catch {
      oid = a.type;
    }
    return { oid, value: a.value };
  });
  const known = new Map(GO_FIELDS);
  // Name.String(): attributes without a named field first (so they print last), then ToRDNSequence's.
  const rdns: string[][] = attrs.filter((a) => !known.has(a.oid)).map((a) => [`${a.oid}=#${goMarshalString(a.value).toString("hex")}`]);
  for (const [oid, name] of GO_FIELDS) {
    let values = attrs.filter((a) => a.oid === oid).map((a) => a.value);
    if ((name === "CN" || name === "SERIALNUMBER") && values.length > 0) values = [values[values.length - 1]!];
    if (name === "CN" || name === "SERIALNUMBER") values = values.filter((v) => v.length > 0);
    if (values.length > 0) rdns.push(values.map((v) => `${name}=${goEscape(v)}`));
  }
  return rdns
    .reverse()
    .map((rdn) => rdn.join("+"))
    .join(",");
}
