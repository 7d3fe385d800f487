/**
 * The device identity a verified request carries, how it is derived from the
 * client certificate, and how handlers read it back from any framework's
 * request object.
 */
import { certificateSans, formatName, nameAttribute, sha256Hex, type ParsedCertificate } from "@tessera/pki";

/** Who is on the other end of a verified mTLS connection. */
export interface DeviceIdentity {
  /** From a URI SAN `imprint://server/<id>` when present, else the subject CN, else "". */
  serverId: string;
  /** Certificate serial, canonical lowercase hex. */
  serial: string;
  /** SHA-256 of the certificate DER, lowercase hex. */
  fingerprint: string;
  /** Subject as an RFC 4514 string, e.g. "CN=device-1,O=Acme". */
  subject: string;
  notAfter: Date;
  /** The client certificate. */
  certificate: ParsedCertificate;
  /** The verified chain: leaf first, trust anchor last. */
  chain: readonly ParsedCertificate[];
}

const IMPRINT_PREFIX = "imprint://server/";

/** Builds the identity of a verified leaf and chain (the fingerprint is passed in when already known). */
export function identityOf(certificate: ParsedCertificate, chain: readonly ParsedCertificate[], fingerprint = sha256Hex(certificate.der)): DeviceIdentity {
  let serverId: string | undefined;
  let subject = "";
  try {
    const uri = certificateSans(certificate).find((s) => s.type === "uri" && s.value.startsWith(IMPRINT_PREFIX));
    if (uri) serverId = decodeOrRaw(uri.value.slice(IMPRINT_PREFIX.length).replace(/\/+$/, ""));
  } catch {
    /* an unreadable SAN leaves the CN to identify the device */
  }
  try {
    serverId ||= nameAttribute(certificate.subject, "CN");
    subject = formatName(certificate.subject);
  } catch {
    /* unusual subject encodings: keep what we have */
  }
  return Object.freeze({
    serverId: serverId ?? "",
    serial: certificate.serialHex,
    fingerprint,
    subject,
    notAfter: certificate.notAfter,
    certificate,
    chain: Object.freeze([...chain]),
  });
}

function decodeOrRaw(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// The source of truth: a property can be overwritten by other middleware, this map cannot.
const identities = new WeakMap<object, DeviceIdentity>();

/** Records `identity` on a request object (and sets `request.tessera`). */
export function attachIdentity(request: object, identity: DeviceIdentity): void {
  identities.set(request, identity);
  (request as { tessera?: DeviceIdentity }).tessera = identity;
}

/**
 * The identity of a request that passed the guard: node:http IncomingMessage,
 * Express Request or Fastify request. Throws if the request did not go
 * through the guard (a handler mounted without it is a programming error).
 */
export function deviceIdentity(request: object): DeviceIdentity {
  const id = identities.get(request) ?? identities.get((request as { raw?: object }).raw ?? request);
  if (!id) throw new Error("deviceIdentity: this request did not pass requireMTLS (is the guard mounted before this handler?)");
  return id;
}

/** Like deviceIdentity, but undefined instead of throwing. */
export function maybeDeviceIdentity(request: object): DeviceIdentity | undefined {
  return identities.get(request) ?? identities.get((request as { raw?: object }).raw ?? request);
}

declare global {
  // Express reads request properties from this global namespace, so the
  // augmentation needs no import of express (and no runtime dependency).
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by @tessera/mtls's guard on verified requests. */
      tessera?: DeviceIdentity;
    }
  }
}
