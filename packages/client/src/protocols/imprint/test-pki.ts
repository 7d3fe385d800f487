/**
 * Test support (not exported from the package): a throwaway imprint-style CA
 * made at run time that issues client certificates (spec §6 profile) and a
 * TLS server certificate for 127.0.0.1 / localhost.
 */
import type * as crypto from "node:crypto";
import {
  CertificateTemplate, createCaCertificate, encodeGeneralNames, encodeName, exportPrivateKey, generateKeyPair, generateSerial,
  parseCertificate, pemEncode, spkiDer, type ParsedCertificate,
} from "@tessera/pki";

const DAY = 86_400_000;

/** A certificate as the server would send it. */
export interface IssuedCertificate {
  pem: string;
  certificate: ParsedCertificate;
}

/** A CA for tests: the imprint client profile plus a server profile. */
export class TestPki {
  private constructor(
    /** ca.crt content. */
    readonly caPem: string,
    readonly ca: ParsedCertificate,
    readonly caKey: crypto.KeyObject,
    private readonly clientTemplate: CertificateTemplate,
    private readonly serverTemplate: CertificateTemplate,
  ) {}

  /** Makes a self-signed EC P-256 CA named like imprint's default (`O=Imprint CA, CN=<name>`). */
  static async create(name = "Imprint CA"): Promise<TestPki> {
    const { privateKey, publicKey } = generateKeyPair("ec-p256");
    const now = Date.now();
    const ca = await createCaCertificate({
      subject: [{ type: "O", value: "Imprint CA" }, { type: "CN", value: name }],
      publicKey,
      privateKey,
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + 3650 * DAY),
    });
    const issuer = { certificate: ca, privateKey };
    const clientTemplate = await CertificateTemplate.create(
      { keyUsage: ["digitalSignature"], extKeyUsage: ["clientAuth"], subjectKeyIdentifier: false, authorityKeyIdentifier: true },
      issuer,
    );
    const serverTemplate = await CertificateTemplate.create({ keyUsage: ["digitalSignature"], extKeyUsage: ["serverAuth"] }, issuer);
    return new TestPki(pemEncode("CERTIFICATE", ca.der), ca, privateKey, clientTemplate, serverTemplate);
  }

  /** Issues a client certificate `O=Imprint CA, CN=<serverId>` for `publicKey` (a KeyObject or DER SPKI); valid −5 min … +365 d unless given. */
  async issueClient(publicKey: crypto.KeyObject | Uint8Array, serverId: string, validity: { notBefore?: Date; notAfter?: Date } = {}): Promise<IssuedCertificate> {
    const now = Date.now();
    const der = await this.clientTemplate.issue({
      serial: generateSerial({ kind: "random", bytes: 8 }),
      notBefore: validity.notBefore ?? new Date(now - 5 * 60_000),
      notAfter: validity.notAfter ?? new Date(now + 365 * DAY),
      subject: encodeName([{ type: "O", value: "Imprint CA" }, { type: "CN", value: serverId }]),
      spki: publicKey instanceof Uint8Array ? publicKey : spkiDer(publicKey),
      subjectAltNames: encodeGeneralNames([{ type: "uri", value: `imprint://server/${serverId}` }]),
    });
    return { pem: pemEncode("CERTIFICATE", der), certificate: parseCertificate(der) };
  }

  /** Issues a TLS server certificate for 127.0.0.1 and localhost; returns PEM cert and PKCS#8 key. */
  async issueServer(): Promise<{ cert: string; key: string }> {
    const { privateKey, publicKey } = generateKeyPair("ec-p256");
    const now = Date.now();
    const der = await this.serverTemplate.issue({
      serial: generateSerial({ kind: "random", bytes: 8 }),
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + 30 * DAY),
      subject: encodeName([{ type: "CN", value: "localhost" }]),
      spki: spkiDer(publicKey),
      subjectAltNames: encodeGeneralNames([{ type: "dns", value: "localhost" }, { type: "ip", value: "127.0.0.1" }]),
    });
    return { cert: pemEncode("CERTIFICATE", der), key: exportPrivateKey(privateKey) };
  }
}
