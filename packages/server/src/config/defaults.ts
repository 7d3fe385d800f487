/**
 * Built-in defaults: what the server runs with when nothing is configured.
 * docs/configuration.md lists the same values; keep the two in step.
 */
import path from "node:path";
import type { EstLabelConfig, ListenerConfig, ProfileConfig, TesseraConfig } from "./types.js";

const MINUTE = 60;
const DAY = 86_400;

/** Data directory before resolution, relative to the working directory. */
export const DEFAULT_DATA_DIR = "./data";

/** Key policy and extension defaults shared by the built-in profiles. */
const BASE_PROFILE: ProfileConfig = {
  validity: 365 * DAY,
  backdate: 5 * MINUTE,
  keyUsage: ["digitalSignature"],
  extKeyUsage: ["clientAuth"],
  basicConstraints: true,
  subjectKeyIdentifier: true,
  authorityKeyIdentifier: true,
  serial: { kind: "random", bytes: 16 },
  subject: "csr",
  sans: "csr",
  minRsaBits: 2048,
  ecCurves: ["P-256", "P-384", "P-521"],
  allowEd25519: true,
  allowRsa: true,
  issuer: "issuing",
};

/** Deep copy of a profile, so callers can change the copy without touching a shared default. */
export function cloneProfile(p: ProfileConfig): ProfileConfig {
  return { ...p, keyUsage: [...p.keyUsage], extKeyUsage: [...p.extKeyUsage], ecCurves: [...p.ecCurves], serial: { ...p.serial } };
}

/**
 * The built-in profiles, freshly copied: "device" (client certificates, 365
 * days, subject and SANs from the CSR) and "server" (TLS server certificates,
 * 90 days, digitalSignature + keyEncipherment, serverAuth, SANs from the
 * request), and "imprint" (imprint's client certificates: subject and URI SAN
 * from the server, no basicConstraints or SKI, no RSA keys). All backdate
 * notBefore by 5 minutes and use 16-byte random serials.
 */
export function defaultProfiles(): Record<string, ProfileConfig> {
  return {
    device: cloneProfile(BASE_PROFILE),
    server: {
      ...cloneProfile(BASE_PROFILE),
      validity: 90 * DAY,
      keyUsage: ["digitalSignature", "keyEncipherment"],
      extKeyUsage: ["serverAuth"],
      sans: "request",
    },
    // imprint's certificate (spec §6): subject O=<CA's O>, CN=<server id>, URI SAN, no basicConstraints or
    // SKI. Its clients prove possession for challenge renewal with ECDSA or Ed25519 only, so RSA is refused.
    imprint: {
      ...cloneProfile(BASE_PROFILE),
      basicConstraints: false,
      subjectKeyIdentifier: false,
      subject: "request",
      sans: "request",
      allowRsa: false,
    },
    // liteboot's device certificate (spec §4.1): subject re-encoded from the CSR by the front-end, no SAN,
    // 1 year, positive int64 serials, ECDSA keys only. KU, EKU clientAuth and CA:FALSE are added (spec §11.4).
    liteboot: {
      ...cloneProfile(BASE_PROFILE),
      subject: "request",
      sans: "none",
      serial: { kind: "int64" },
      allowRsa: false,
      allowEd25519: false,
    },
    // Caramel's certificate (spec §4): signed by the root (its clients trust one self-signed CA and verify
    // with its key), subject as in the CSR, SAN DNS:<CN>, EKU clientAuth + serverAuth, CA:FALSE, no keyUsage.
    // Lifetimes come from [caramel]; the validity here is only the upper bound.
    caramel: {
      ...cloneProfile(BASE_PROFILE),
      validity: 3650 * DAY,
      backdate: 0,
      keyUsage: [],
      extKeyUsage: ["clientAuth", "serverAuth"],
      sans: "request",
      issuer: "root",
    },
    // Mainflux certs service (spec §2): CN = the thing's key, no SANs, clientAuth, KU digitalSignature,
    // no backdating; ttl from the request (capped at this validity). Its API generates EC keys on P-224 too.
    mainflux: {
      ...cloneProfile(BASE_PROFILE),
      validity: 3650 * DAY,
      backdate: 0,
      subject: "request",
      sans: "none",
      subjectKeyIdentifier: true,
      ecCurves: ["P-224", "P-256", "P-384", "P-521"],
    },
    // The same for RSA keys, whose KeyUsage adds keyEncipherment (spec §2); the Mainflux API picks
    // "<[mainflux] profile>-rsa" for RSA keys when such a profile exists.
    "mainflux-rsa": {
      ...cloneProfile(BASE_PROFILE),
      validity: 3650 * DAY,
      backdate: 0,
      subject: "request",
      sans: "none",
      subjectKeyIdentifier: true,
      keyUsage: ["digitalSignature", "keyEncipherment"],
      allowEd25519: false,
      ecCurves: [],
    },
    // Factory bootstrap certificates (tessera bootstrap issue): liteboot's OU marks them (spec §1); clientAuth only.
    bootstrap: {
      ...cloneProfile(BASE_PROFILE),
      validity: 3650 * DAY,
      subject: "request",
      sans: "none",
    },
  };
}

/** The default main listener: "main" on 127.0.0.1:8443, asking for (not requiring) a client certificate, every protocol. */
export function defaultListener(): ListenerConfig {
  return { name: "main", host: "127.0.0.1", port: 8443, clientCert: "request", clientCaNames: "issuing", protocols: ["*"], maxTls: "1.3" };
}

/** Defaults of an EST label: profile "device", Basic or client certificate, auto approval, no CSR attributes. */
export function defaultEstLabel(): EstLabelConfig {
  return {
    profile: "device",
    auth: "either",
    bootstrapCa: [],
    mode: "auto",
    retryAfter: 60,
    csrAttrs: [],
    tlsUnique: false,
    serverKeygenKeyType: "ec-p256",
    revokeSuperseded: false,
    realm: "tessera",
  };
}

/** Default database: the SQLite file `tessera.db` in the data directory, as a "sqlite:<absolute path>" URL. */
export function defaultDatabaseUrl(dataDir: string): string {
  return `sqlite:${path.join(dataDir, "tessera.db")}`;
}

/** Default CA key passphrase file: `<dataDir>/ca/passphrase`. */
export function defaultCaPassphraseFile(dataDir: string): string {
  return path.join(dataDir, "ca", "passphrase");
}

/**
 * The whole default configuration, with the data directory ("./data")
 * resolved against `cwd` and the database and passphrase paths inside it.
 * `sources` is left empty: loadConfig fills it.
 */
export function defaultConfig(cwd: string): TesseraConfig {
  const dataDir = path.resolve(cwd, DEFAULT_DATA_DIR);
  return {
    dataDir,
    hostname: "localhost",
    databaseUrl: defaultDatabaseUrl(dataDir),
    caPassphraseFile: defaultCaPassphraseFile(dataDir),
    listeners: [defaultListener()],
    httpListen: null,
    bodyLimit: 65_536,
    logLevel: "info",
    profiles: defaultProfiles(),
    defaultProfile: "device",
    ca: { keyType: "ec-p256", name: "Tessera", organization: "Tessera" },
    crl: { validity: DAY, refreshBefore: 3_600 },
    serverCertificate: { validity: 90 * DAY, renewBefore: 30 * DAY },
    sqlite: { synchronous: "full" },
    imprint: { mode: "auto", profile: "imprint", challengeWindow: 30 * DAY, revokeSuperseded: false, allowRevokedReenroll: false, reenrollRevokesPrevious: true },
    est: { default: defaultEstLabel(), labels: {} },
    liteboot: {
      listen: { host: "127.0.0.1", port: 1443 },
      mtlsListen: null,
      profile: "liteboot",
      verifyCsrSignature: true,
      subjectPolicy: "uuid",
      // The original's defaults when nothing is configured (liteboot.md §3.6).
      ccs: { hubname: "hubname", mqttPort: 0 },
      ccsByScope: {},
      appendHubToCr: false,
    },
    caramel: { mode: "manual", profile: "caramel", lifetimeShort: 48 * 3600, lifetimeLong: 30 * DAY, refreshBefore: DAY, refreshInterval: 5 * MINUTE, renewWithCertificate: true },
    mainflux: {
      profile: "mainflux", renewWindow: 30 * DAY, returnPrivateKey: true,
      rotation: { enabled: true, before: 30 * DAY, interval: 3600 },
      events: { bus: "none", url: null, includePrivateKey: false },
    },
    revocation: { publicUrl: null, crlFile: null, ocsp: { enabled: true, validity: 3600, signerValidity: 7 * DAY } },
    webhook: { url: null, secretFile: null, events: ["device.created"], maxAttempts: 20, timeout: 10 },
    issuanceBatchMax: 256,
    workers: 1,
    sources: {},
  };
}
