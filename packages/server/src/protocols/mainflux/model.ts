/**
 * The Mainflux certs service's vocabulary (spec mainflux.md §1–§3): its error
 * texts, the request and answer shapes as the original names their fields,
 * the rotation event, and the key types its API generates.
 */
import type { KeyType } from "@tessera/pki";

/** The `error` texts of the original (spec §1.3). */
export const ERR = {
  bearer: "missing or invalid bearer user token",
  thingKeyType: "invalid thing key type",
  entityKey: "missing or invalid bearer entity key",
  contentType: "unsupported content type",
  query: "invalid query parameters",
  limit: "invalid limit size",
  authz: "failed to perform authorization over the entity",
  downloaded: "certificate already downloaded",
  notFound: "entity not found",
  revoke: "failed to revoke certificate",
  notEligible: "certificate not eligible for renewal yet",
  create: "failed to create client certificate",
  missingThing: "missing thing id",
  missingData: "missing certificate data",
  malformed: "malformed entity specification",
  retrieve: "failed to retrieve entity",
} as const;

/** A refusal in the certs service's terms: status and `error` text; `reason` goes to the log only. */
export class MainfluxFailure extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly reason: string = error,
  ) {
    super(reason);
  }
}

/** A key the API generates: `key_type` rsa (2048, 4096) or ecdsa (224, 256, 384, 521). */
export interface KeySpec {
  type: "rsa" | "ecdsa";
  bits: number;
}

/** POST /certs and /certs/{serial}/rotate bodies, decoded. */
export interface CertRequest {
  thingId: string;
  ttl: string;
  keyType: string;
  keyBits: number;
}

/** IssueRes (E1, E2, E4); `private_key` only when [mainflux] return_private_key. */
export interface IssueAnswer {
  certificate: string;
  issuing_ca: string;
  ca_chain: string[];
  private_key?: string;
  private_key_type: "rsa" | "ecdsa";
  serial: string;
  expires_at: string;
}

/** ViewRes (E3). */
export interface ViewAnswer {
  certificate: string;
  serial: string;
  expires_at: string;
  thing_id: string;
  downloaded: boolean;
  key_type: "rsa" | "ecdsa";
  key_bits: number;
}

/** DownloadRes (E7). */
export interface DownloadAnswer {
  certificate: string;
  issuing_ca: string;
  ca_chain: string[];
  private_key: string;
  private_key_type: "rsa" | "ecdsa";
  serial: string;
  thing_id: string;
  expires_at: string;
}

/** Page (E6). */
export interface PageAnswer {
  total: number;
  offset: number;
  limit: number;
  certs: Array<{ thing_id: string; cert_serial: string; expires_at: string; downloaded: boolean }>;
}

/** E6 query, decoded. */
export interface ListQuery {
  offset: number;
  limit: number;
  serial?: string;
  /** Milliseconds, inclusive. */
  from?: number;
  /** Milliseconds, exclusive. */
  to?: number;
}

/** The CertEvent payload a rotation publishes (spec §3), `client_key` only with [mainflux.events] include_private_key. */
export interface CertEvent {
  thing_id: string;
  client_cert: string;
  client_key?: string;
  issuing_ca: string;
  ca_chain: string[];
  serial: string;
  expires_at: string;
}

/** One certificate replaced by rotateExpiring; serials in decimal, as the API shows them. */
export interface Rotation {
  thingId: string;
  oldSerial: string;
  newSerial: string;
  event: CertEvent;
}

const RSA_BITS = [2048, 4096];
const EC_BITS = [224, 256, 384, 521];

/** The key spec a request asks for, or undefined (400 missing certificate data). `ec` is accepted as well as `ecdsa`. */
export function keySpecOf(keyType: string, keyBits: number): KeySpec | undefined {
  if (keyType === "rsa" && RSA_BITS.includes(keyBits)) return { type: "rsa", bits: keyBits };
  if ((keyType === "ecdsa" || keyType === "ec") && EC_BITS.includes(keyBits)) return { type: "ecdsa", bits: keyBits };
  return undefined;
}

/** The key spec of a stored certificate ("rsa-2048", "ec-p384"); rsa/2048 when unknown, as the original falls back. */
export function storedKeySpec(keyType: string): KeySpec {
  const m = /^(rsa|ec)-p?(\d+)$/.exec(keyType);
  if (m) return { type: m[1] === "rsa" ? "rsa" : "ecdsa", bits: Number(m[2]) };
  return { type: "rsa", bits: 2048 };
}

/** The pki key type to generate for a spec. */
export function pkiKeyType(spec: KeySpec): KeyType {
  return (spec.type === "rsa" ? `rsa-${spec.bits}` : `ec-p${spec.bits}`) as KeyType;
}
