/**
 * Test support (not exported from the package): a throwaway two-level CA
 * made at run time for the EST fixture server — root G1, an issuing CA under
 * it, TLS server certificates with or without a matching name and id-kp-cmcRA,
 * device certificates, and a second root G2 with the RFC 4210 §4.4 rollover
 * certificates (NewWithOld, OldWithNew) for /cacerts.
 */
import type * as crypto from "node:crypto";
import {
  CertificateTemplate, createCaCertificate, encodeGeneralNames, encodeName, exportPrivateKey, generateKeyPair, generateSerial, parseCertificate,
  pemEncode, spkiDer, type NameAttribute, type ParsedCertificate, type SubjectAltName,
} from "@tessera/pki";

const DAY = 86_400_000;

/** A CA certificate with its key. */
export interface FixtureCa {
  certificate: ParsedCertificate;
  privateKey: crypto.KeyObject;
  pem: string;
}

/**
 * Which TLS server certificate: "matching" (SAN 127.0.0.1 and localhost,
 * serverAuth), "cmc-ra" (SAN other.example only, serverAuth + cmcRA),
 * "mismatch" (SAN other.example only, serverAuth).
 */
export type FixtureServerIdentity = "matching" | "cmc-ra" | "mismatch";

/** The fixture's CAs and issuing profiles. */
export class EstFixturePki {
  private constructor(
    /** Current root (OldWithOld once G2 exists). */
    readonly root: FixtureCa,
    /** Issuing CA under root: signs device and server certificates. */
    readonly issuing: FixtureCa,
    /** Rollover: the new root G2 (NewWithNew, later notAfter). */
    readonly newRoot: FixtureCa,
    /** Rollover: G2's key and name signed by G1. */
    readonly newWithOld: ParsedCertificate,
    /** Rollover: G1's key and name signed by G2. */
    readonly oldWithNew: ParsedCertificate,
    private readonly clientTemplate: CertificateTemplate,
    private readonly serverTemplates: Record<FixtureServerIdentity, CertificateTemplate>,
  ) {}

  /** Makes the CAs (EC P-256); `name` prefixes every CA name. */
  static async create(name = "Tessera Fixture"): Promise<EstFixturePki> {
    const now = Date.now();
    const ca = async (subject: NameAttribute[], keys: { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject }, days: number, issuer?: FixtureCa) => {
      const certificate = await createCaCertificate({
        subject, publicKey: keys.publicKey, notBefore: new Date(now - DAY), notAfter: new Date(now + days * DAY),
        ...(issuer ? { issuer: { certificate: issuer.certificate, privateKey: issuer.privateKey } } : { privateKey: keys.privateKey }),
      });
      return certificate;
    };
    const g1Name = [{ type: "O", value: name }, { type: "CN", value: `${name} Root CA G1` }];
    const g2Name = [{ type: "O", value: name }, { type: "CN", value: `${name} Root CA G2` }];
    const g1Keys = generateKeyPair("ec-p256");
    const g2Keys = generateKeyPair("ec-p256");
    const g1 = await ca(g1Name, g1Keys, 3650);
    const root: FixtureCa = { certificate: g1, privateKey: g1Keys.privateKey, pem: pemEncode("CERTIFICATE", g1.der) };
    const g2 = await ca(g2Name, g2Keys, 7300);
    const newRoot: FixtureCa = { certificate: g2, privateKey: g2Keys.privateKey, pem: pemEncode("CERTIFICATE", g2.der) };
    const newWithOld = await ca(g2Name, g2Keys, 3650, root);
    const oldWithNew = await ca(g1Name, g1Keys, 3650, newRoot);
    const issuingKeys = generateKeyPair("ec-p256");
    const issuingCert = await ca([{ type: "O", value: name }, { type: "CN", value: `${name} Issuing CA` }], issuingKeys, 1825, root);
    const issuing: FixtureCa = { certificate: issuingCert, privateKey: issuingKeys.privateKey, pem: pemEncode("CERTIFICATE", issuingCert.der) };
    const by = { certificate: issuing.certificate, privateKey: issuing.privateKey };
    const clientTemplate = await CertificateTemplate.create({ keyUsage: ["digitalSignature"], extKeyUsage: ["clientAuth"] }, by);
    const serverTemplates = {
      matching: await CertificateTemplate.create({ keyUsage: ["digitalSignature"], extKeyUsage: ["serverAuth"] }, by),
      "cmc-ra": await CertificateTemplate.create({ keyUsage: ["digitalSignature"], extKeyUsage: ["serverAuth", "cmcRA"] }, by),
      mismatch: await CertificateTemplate.create({ keyUsage: ["digitalSignature"], extKeyUsage: ["serverAuth"] }, by),
    };
    return new EstFixturePki(root, issuing, newRoot, newWithOld, oldWithNew, clientTemplate, serverTemplates);
  }

  /** The /cacerts bag (DER): root and issuing CA, plus G2 and both rollover certificates when `rollover`, in a mixed order. */
  bag(rollover: boolean): Buffer[] {
    if (!rollover) return [this.issuing.certificate.der, this.root.certificate.der];
    return [this.oldWithNew.der, this.issuing.certificate.der, this.newRoot.certificate.der, this.root.certificate.der, this.newWithOld.der];
  }

  /** Issues a device certificate (clientAuth) for a DER SPKI with a DER subject and optional DER GeneralNames; −5 min … +365 d unless given. */
  async issueClient(
    spki: Uint8Array, subject: Uint8Array, subjectAltNames?: Uint8Array, validity: { notBefore?: Date; notAfter?: Date } = {},
  ): Promise<ParsedCertificate> {
    const now = Date.now();
    const der = await this.clientTemplate.issue({
      serial: generateSerial({ kind: "random", bytes: 8 }),
      notBefore: validity.notBefore ?? new Date(now - 5 * 60_000),
      notAfter: validity.notAfter ?? new Date(now + 365 * DAY),
      subject,
      spki,
      ...(subjectAltNames ? { subjectAltNames } : {}),
    });
    return parseCertificate(der);
  }

  /** A device key and certificate for `cn` (and SANs), as PEM, for seeding stores and bootstrap client certificates. */
  async device(cn: string, sans: SubjectAltName[] = []): Promise<{ privateKey: crypto.KeyObject; certificate: ParsedCertificate; certPem: string; keyPem: string }> {
    const { privateKey, publicKey } = generateKeyPair("ec-p256");
    const certificate = await this.issueClient(spkiDer(publicKey), encodeName([{ type: "CN", value: cn }]), sans.length ? encodeGeneralNames(sans) : undefined);
    return { privateKey, certificate, certPem: pemEncode("CERTIFICATE", certificate.der), keyPem: exportPrivateKey(privateKey) };
  }

  /** A TLS server certificate chain (leaf + issuing CA, PEM) and its PKCS#8 key. */
  async issueServer(identity: FixtureServerIdentity = "matching"): Promise<{ cert: string; key: string; certificate: ParsedCertificate }> {
    const { privateKey, publicKey } = generateKeyPair("ec-p256");
    const now = Date.now();
    const sans: SubjectAltName[] = identity === "matching"
      ? [{ type: "dns", value: "localhost" }, { type: "ip", value: "127.0.0.1" }]
      : [{ type: "dns", value: "other.example" }];
    const der = await this.serverTemplates[identity].issue({
      serial: generateSerial({ kind: "random", bytes: 8 }),
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + 30 * DAY),
      subject: encodeName([{ type: "CN", value: identity === "matching" ? "localhost" : "other.example" }]),
      spki: spkiDer(publicKey),
      subjectAltNames: encodeGeneralNames(sans),
    });
    return { cert: pemEncode("CERTIFICATE", der) + this.issuing.pem, key: exportPrivateKey(privateKey), certificate: parseCertificate(der) };
  }
}
