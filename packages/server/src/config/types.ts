/**
 * The validated configuration the server runs on. Produced by loadConfig()
 * (config/load.ts) from defaults, the TOML file, environment and flags.
 */
import type { KeyUsage, SerialForm } from "@tessera/pki";

/** Client-certificate handling of a TLS listener. */
export type ClientCertMode = "none" | "request" | "require";

/** One HTTPS listener. */
export interface ListenerConfig {
  /** Name used in logs and config ("main" for the default one). */
  name: string;
  /** Bind host (IPv4, IPv6 without brackets, or a name). */
  host: string;
  port: number;
  /** Whether the TLS handshake asks for / requires a client certificate. */
  clientCert: ClientCertMode;
  /**
   * Which CA names the CertificateRequest lists: "issuing" (our issuing CA;
   * what Go and Java clients need to send a certificate), "none" (empty list),
   * or "all" (root and issuing CA).
   */
  clientCaNames: "issuing" | "none" | "all";
  /** Protocols mounted on it; ["*"] mounts every protocol. */
  protocols: string[];
  /**
   * Highest TLS version offered: "1.3" (default) or "1.2". EST's tls-unique
   * channel binding (RFC 7030 §3.5) is defined only up to TLS 1.2.
   */
  maxTls: "1.2" | "1.3";
}

/** A certificate profile as configured. */
export interface ProfileConfig {
  /** Certificate lifetime in seconds. */
  validity: number;
  /** How far notBefore is set back, in seconds (clock skew on devices). */
  backdate: number;
  keyUsage: KeyUsage[];
  /** EKU names or OIDs. */
  extKeyUsage: string[];
  /** Write basicConstraints CA:FALSE. */
  basicConstraints: boolean;
  subjectKeyIdentifier: boolean;
  authorityKeyIdentifier: boolean;
  serial: SerialForm;
  /** Where the subject comes from: the CSR as sent, or the request (the authorizer decides). */
  subject: "csr" | "request";
  /** Where SANs come from: the CSR's extensionRequest, the request, or none. */
  sans: "csr" | "request" | "none";
  /** Key policy: minimum RSA bits, allowed curves, Ed25519. */
  minRsaBits: number;
  ecCurves: string[];
  allowEd25519: boolean;
  allowRsa: boolean;
  /** Which CA signs: "issuing" (default) or "root" (for clients that trust one self-signed CA, like Caramel's). */
  issuer: "issuing" | "root";
}

/** The imprint-compatible front-end (docs/protocols/imprint.md). */
export interface ImprintConfig {
  /** "auto" signs at once; "manual" answers 202 until an operator approves (`tessera enroll approve`). */
  mode: "auto" | "manual";
  /** Profile its certificates use (default "imprint": CN = server id, URI SAN, clientAuth). */
  profile: string;
  /** How long after expiry a certificate may still challenge-renew, seconds; 0 disables challenge renewal. */
  challengeWindow: number;
  /** Revoke (not only supersede) the previous certificate on renewal. */
  revokeSuperseded: boolean;
  /** Let a revoked device enroll again (the original's behaviour; off by default). */
  allowRevokedReenroll: boolean;
  /** Revoke the previous lineage's certificate when a known fingerprint re-enrolls (else supersede it). */
  reenrollRevokesPrevious: boolean;
}

/** One entry of EST's /csrattrs answer: an OID, or an attribute whose values are OIDs (RFC 7030 §4.5.2). */
export type EstCsrAttrConfig = { oid: string } | { type: string; values: string[] };

/** How one EST label (or the label-less path) authenticates and issues (docs/protocols/est.md). */
export interface EstLabelConfig {
  /** Profile its certificates use (default "device": subject and SANs from the CSR, clientAuth). */
  profile: string;
  /**
   * simpleenroll/serverkeygen authentication: "basic" (HTTP Basic with an EST
   * user), "certificate" (a client certificate from Tessera's CA or a
   * bootstrap CA), "either" (default) or "both".
   */
  auth: "basic" | "certificate" | "either" | "both";
  /** PEM files of CAs whose certificates may authenticate enrollment (factory bootstrap certificates, RFC 7030 §2.2.1). */
  bootstrapCa: string[];
  /** "auto" issues at once; "manual" answers 202 + Retry-After until an operator approves. */
  mode: "auto" | "manual";
  /** Retry-After of a 202, whole seconds. */
  retryAfter: number;
  /** What /csrattrs announces; empty answers 204. */
  csrAttrs: EstCsrAttrConfig[];
  /** Require the CSR's challengePassword to carry base64(tls-unique) (RFC 7030 §3.5); needs a TLS 1.2 listener. */
  tlsUnique: boolean;
  /** Key type /serverkeygen generates. */
  serverKeygenKeyType: string;
  /** Revoke (not only supersede) the previous certificate on re-enrollment. */
  revokeSuperseded: boolean;
  /** HTTP Basic realm in WWW-Authenticate. */
  realm: string;
}

/** The EST front-end: the label-less path's settings and the named labels (each starts from the former). */
export interface EstConfig {
  /** Settings of /.well-known/est/<op>. */
  default: EstLabelConfig;
  /** Settings of /.well-known/est/<label>/<op>. */
  labels: Record<string, EstLabelConfig>;
}

/** Cloud connectivity settings a device reads from liteboot's /api/v1/ccs. */
export interface LitebootCcs {
  /** Short IoT hub name (the device connects to <hubname>.azure-devices.net). */
  hubname: string;
  /** MQTT port (0 to 65535). */
  mqttPort: number;
}

/** The liteboot-compatible front-end (docs/protocols/liteboot.md). */
export interface LitebootConfig {
  /** Its own HTTPS listener, requiring a client certificate (default 127.0.0.1:1443); null turns liteboot off. */
  listen: { host: string; port: number } | null;
  /** The mTLS TCP test endpoint (liteboot's port 8443); null (default) leaves it off. */
  mtlsListen: { host: string; port: number } | null;
  /** Profile of the device certificates (default "liteboot"). */
  profile: string;
  /** Verify the CSR's self-signature (default true; false only for firmware known to sign badly). */
  verifyCsrSignature: boolean;
  /** "uuid" (default): CN must be a lower-case UUID and the bootstrap OU may not be asked for; "none": the original's (no) policy. */
  subjectPolicy: "uuid" | "none";
  /** /ccs answer for every device. */
  ccs: LitebootCcs;
  /** /ccs answers per bootstrap scope (the scope of the bootstrap certificate a device enrolled with). */
  ccsByScope: Record<string, LitebootCcs>;
  /** Append hub name (key 3) and port (key 4) to the cr answer, for the older firmware generation. */
  appendHubToCr: boolean;
}

/** The Caramel-compatible CSR-polling front-end (docs/protocols/caramel.md). */
export interface CaramelConfig {
  /** "manual" (default): an operator signs with `tessera caramel sign`; "auto": CSRs whose CN is a UUID not seen before are signed at once. */
  mode: "manual" | "auto";
  /** Profile of its certificates (default "caramel": signed by the root, EKU clientAuth + serverAuth, SAN DNS:<CN>). */
  profile: string;
  /** Lifetime of a normal signature, seconds (default 48 h). */
  lifetimeShort: number;
  /** Lifetime with `--long`, seconds (default 30 days). */
  lifetimeLong: number;
  /** The scheduler re-signs certificates this long before they expire, seconds (default 24 h); 0 turns refresh off. */
  refreshBefore: number;
  /** How often the scheduler looks, seconds (default 5 min). */
  refreshInterval: number;
  /** Sign at once when the poster presents its current valid certificate for the same subject (default true). */
  renewWithCertificate: boolean;
}

/** How relying parties learn of revocations: CRL file, URLs in certificates, OCSP (docs/revocation.md). */
export interface RevocationConfig {
  /**
   * Public base URL of this server for relying parties, e.g. "http://ca.example.com";
   * certificates then carry <url>/crl (CRL Distribution Points), <url>/ocsp and
   * <url>/ca.pem (Authority Information Access). Null: the plain-HTTP listener's URL when set, else none.
   */
  publicUrl: string | null;
  /** Write the current CRL (PEM) here after every revocation and before nextUpdate (for brokers that read a file); null: off. */
  crlFile: string | null;
  /** OCSP responder at /ocsp (RFC 6960). */
  ocsp: {
    enabled: boolean;
    /** nextUpdate − thisUpdate of a response, seconds (default 1 h); cached responses are re-signed before it. */
    validity: number;
    /** Lifetime of the delegated OCSP-signing certificate, seconds (default 7 days); rotated at half-life. */
    signerValidity: number;
  };
}

/** The Mainflux-compatible per-thing certificate API (docs/protocols/mainflux.md). */
export interface MainfluxConfig {
  /** Profile of its certificates (default "mainflux": CN = thing key, clientAuth). */
  profile: string;
  /** Renewal (PUT /certs/{serial}) is allowed only this close to expiry, seconds (default 30 days). */
  renewWindow: number;
  /** Include the server-generated private key in issue/renew/rotate answers (default true, as the original); false: only the device's one download returns it. */
  returnPrivateKey: boolean;
  rotation: {
    /** Rotate certificates approaching expiry (default true). */
    enabled: boolean;
    /** Rotate this long before expiry, seconds (default 30 days). */
    before: number;
    /** How often the scheduler looks, seconds (default 1 h). */
    interval: number;
  };
  events: {
    /** Where rotation events go: "none" (default), "nats" or "mqtt". */
    bus: "none" | "nats" | "mqtt";
    /** Broker URL (default nats://127.0.0.1:4222, or mqtt://127.0.0.1:1883 for mqtt). */
    url: string | null;
    /** Put the new private key in the event (the original always does; default false). */
    includePrivateKey: boolean;
  };
}

/** Webhook notifications (new devices), delivered from a persisted outbox. */
export interface WebhookConfig {
  /** Where to POST (http or https); null: no webhook. */
  url: string | null;
  /** File holding the HMAC-SHA256 key that signs each delivery. */
  secretFile: string | null;
  /** Events to deliver (default ["device.created"]). */
  events: string[];
  /** Give up on one event after this many attempts (default 20). */
  maxAttempts: number;
  /** Per-attempt timeout, seconds (default 10). */
  timeout: number;
}

/** The whole configuration. */
export interface TesseraConfig {
  /** Absolute path of the data directory (CA files, SQLite database). */
  dataDir: string;
  /** Public host name of this server (TLS certificate DNS SAN, printed URLs). */
  hostname: string;
  /** "sqlite:<absolute path>" or "postgres://…". */
  databaseUrl: string;
  /** File holding the CA key passphrase; default <dataDir>/ca/passphrase (generated 0600 on init). */
  caPassphraseFile: string;
  /** Listeners; the first is the main one. */
  listeners: ListenerConfig[];
  /** Plain-HTTP listener for CA/CRL download only, or null (off). */
  httpListen: { host: string; port: number } | null;
  /** Maximum request body in bytes (default 65536). */
  bodyLimit: number;
  /** pino level. */
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** Certificate profiles by name; "device" and "server" always exist. */
  profiles: Record<string, ProfileConfig>;
  /** Profile used when a request names none. */
  defaultProfile: string;
  ca: {
    /** Key type for a new CA: "ec-p256" (default), "ec-p384", "ed25519", "rsa-2048"/"rsa-3072"/"rsa-4096". */
    keyType: string;
    /** Subject common-name prefix for a new CA ("Tessera" → "Tessera Root CA", "Tessera Issuing CA"). */
    name: string;
    /** Organization of a new CA. */
    organization: string;
  };
  crl: {
    /** Seconds between thisUpdate and nextUpdate (default 86400). */
    validity: number;
    /** Rebuild this many seconds before nextUpdate (default 3600). */
    refreshBefore: number;
  };
  /** The server's own TLS certificate: lifetime and renewal window, seconds. */
  serverCertificate: { validity: number; renewBefore: number };
  sqlite: {
    /** SQLite synchronous pragma: "full" (default, durable on power loss) or "normal". */
    synchronous: "full" | "normal";
  };
  imprint: ImprintConfig;
  est: EstConfig;
  liteboot: LitebootConfig;
  caramel: CaramelConfig;
  mainflux: MainfluxConfig;
  revocation: RevocationConfig;
  webhook: WebhookConfig;
  /** Group commit: most issuances per transaction (default 256). */
  issuanceBatchMax: number;
  /**
   * `[server] workers` (env TESSERA_WORKERS, flag --workers): processes
   * `tessera serve` runs (node:cluster, sharing the listening sockets); 1
   * (default) is one process with no cluster. See packages/server/src/cluster.ts.
   */
  workers: number;
  /** Where each value came from (for `tessera config check`): key → "default" | "file" | "env" | "flag". */
  sources: Record<string, string>;
}
