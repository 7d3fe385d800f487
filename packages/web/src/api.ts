/**
 * The admin API client (docs/admin-api.md, `/admin/api/v1`). Every request of
 * the console goes through `call` below: same-origin cookie, the CSRF header
 * on state-changing methods, JSON in and out, Tessera's error form decoded
 * into ApiError, and a 401 sends the console back to sign-in.
 */

export const API_BASE = "/admin/api/v1";

export * from "./api-types";
import type { AuditFilter, AuditPage, BootstrapCredentialInput, Certificate, CertificateSort, CertificateStatus, CertificateWithPem, CreatedBootstrapCertificate, CreatedEstUser, CreatedSecret, Credential, CredentialKind, DeviceDetail, DeviceSort, DeviceStatus, DeviceSummary, EnrollmentRequest, EstUserInput, Health, Job, Overview, Page, RequestStatus, Role, Session, SortOrder, StartJob } from "./api-types";

/** CRL reason names (RFC 5280 §5.3.1) the console offers; removeFromCRL is for delta CRLs only. */
export const CRL_REASONS = [
  "unspecified",
  "keyCompromise",
  "cACompromise",
  "affiliationChanged",
  "superseded",
  "cessationOfOperation",
  "certificateHold",
  "privilegeWithdrawn",
  "aACompromise",
] as const;
export type CrlReasonName = (typeof CRL_REASONS)[number];

// ---------------------------------------------------------------------------
// Errors and the one fetch.

/** An error answer of the API (or a network failure, code TESSERA_CONSOLE_NETWORK). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Turns anything thrown into an ApiError (for display). */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof Error) return new ApiError(0, "TESSERA_CONSOLE_ERROR", e.message);
  return new ApiError(0, "TESSERA_CONSOLE_ERROR", String(e));
}

export function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === "AbortError";
}

let csrfToken: string | null = null;
let unauthenticatedHandler: (() => void) | null = null;

/** Called (once per 401) when the session has ended; the app shows sign-in. */
export function onUnauthenticated(handler: (() => void) | null): void {
  unauthenticatedHandler = handler;
}

type Query = Record<string, string | number | boolean | null | undefined>;

/** `?a=1&b=x` from the defined, non-empty values (or ""). */
export function queryString(query: Query | undefined): string {
  if (!query) return "";
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === "") continue;
    p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : "";
}

interface CallOptions {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
  /** Do not treat a 401 as "session ended" (sign-in and the session probe). */
  quiet401?: boolean;
}

const enc = encodeURIComponent;

async function call<T>(method: "GET" | "POST" | "DELETE", path: string, opts: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  let body: string | undefined;
  if (method !== "GET") {
    if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
    if (method === "POST") {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body ?? {});
    }
  }
  let res: Response;
  try {
    res = await fetch(API_BASE + path + queryString(opts.query), {
      method,
      headers,
      body,
      credentials: "same-origin",
      cache: "no-store",
      signal: opts.signal,
    });
  } catch (e) {
    if (isAbort(e)) throw e;
    throw new ApiError(0, "TESSERA_CONSOLE_NETWORK", `The server could not be reached (${e instanceof Error ? e.message : String(e)}).`);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = undefined;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  if (!res.ok) {
    const err = decodeError(res.status, json, text);
    if (res.status === 401 && !opts.quiet401) {
      csrfToken = null;
      unauthenticatedHandler?.();
    }
    throw err;
  }
  if (json === undefined && text) throw new ApiError(res.status, "TESSERA_CONSOLE_BAD_ANSWER", "The server answered with something that is not JSON.");
  return json as T;
}

function decodeError(status: number, json: unknown, text: string): ApiError {
  if (json && typeof json === "object" && "error" in json) {
    const e = (json as { error: unknown }).error;
    if (e && typeof e === "object") {
      const { code, message } = e as { code?: unknown; message?: unknown };
      if (typeof code === "string") return new ApiError(status, code, typeof message === "string" ? message : code);
    }
  }
  const msg = text && text.length < 300 && !text.trimStart().startsWith("<") ? text : `HTTP ${status}`;
  return new ApiError(status, `HTTP_${status}`, msg);
}

// ---------------------------------------------------------------------------
// Endpoints.

function remember(s: Session): Session {
  csrfToken = s.csrfToken;
  return s;
}

export interface DeviceQuery {
  q?: string;
  status?: DeviceStatus | "";
  protocol?: string;
  expiresBefore?: string;
  sort?: DeviceSort;
  order?: SortOrder;
  limit?: number;
  offset?: number;
}

export interface CertificateQuery {
  q?: string;
  status?: CertificateStatus | "";
  deviceId?: string;
  sort?: CertificateSort;
  order?: SortOrder;
  limit?: number;
  offset?: number;
}

export interface RequestQuery {
  status?: RequestStatus | "";
  protocol?: string;
  limit?: number;
  offset?: number;
}

export interface AuditQuery extends AuditFilter {
  before?: number | string;
  limit?: number;
}

export const api = {
  /** Signs in with an operator token; the cookie is HttpOnly, the CSRF token is kept here. */
  async signIn(token: string): Promise<Session> {
    return remember(await call<Session>("POST", "/session", { body: { token }, quiet401: true }));
  },
  /** The current session (after a reload); rejects with 401 when there is none. */
  async session(signal?: AbortSignal): Promise<Session> {
    return remember(await call<Session>("GET", "/session", { signal, quiet401: true }));
  },
  async signOut(): Promise<void> {
    try {
      await call<void>("DELETE", "/session", { quiet401: true });
    } finally {
      csrfToken = null;
    }
  },

  overview: (signal?: AbortSignal) => call<Overview>("GET", "/overview", { signal }),
  health: (days = 90, signal?: AbortSignal) => call<Health>("GET", "/health", { query: { days }, signal }),

  requests: (q: RequestQuery, signal?: AbortSignal) => call<Page<EnrollmentRequest>>("GET", "/requests", { query: { ...q }, signal }),
  approveRequest: (id: string) =>
    call<{ request: EnrollmentRequest; certificate: Certificate | null }>("POST", `/requests/${enc(id)}/approve`),
  rejectRequest: (id: string, reason?: string) =>
    call<{ request: EnrollmentRequest }>("POST", `/requests/${enc(id)}/reject`, { body: reason ? { reason } : {} }),

  devices: (q: DeviceQuery, signal?: AbortSignal) => call<Page<DeviceSummary>>("GET", "/devices", { query: { ...q }, signal }),
  device: (id: string, signal?: AbortSignal) => call<DeviceDetail>("GET", `/devices/${enc(id)}`, { signal }),
  disableDevice: (id: string) => call<{ device: DeviceSummary }>("POST", `/devices/${enc(id)}/disable`),
  enableDevice: (id: string) => call<{ device: DeviceSummary }>("POST", `/devices/${enc(id)}/enable`),
  revokeDevice: (id: string, reason?: string) =>
    call<{ device: DeviceSummary; revoked: string[] }>("POST", `/devices/${enc(id)}/revoke`, { body: reason ? { reason } : {} }),

  certificates: (q: CertificateQuery, signal?: AbortSignal) =>
    call<Page<Certificate>>("GET", "/certificates", { query: { ...q }, signal }),
  certificate: (serial: string, signal?: AbortSignal) => call<CertificateWithPem>("GET", `/certificates/${enc(serial)}`, { signal }),
  revokeCertificate: (serial: string, reason?: string) =>
    call<Certificate>("POST", `/certificates/${enc(serial)}/revoke`, { body: reason ? { reason } : {} }),

  credentials: (kind: CredentialKind, signal?: AbortSignal) => call<{ items: Credential[] }>("GET", "/credentials", { query: { kind }, signal }),
  createSecret: (input: BootstrapCredentialInput) => call<CreatedSecret>("POST", "/credentials/secrets", { body: input }),
  createBootstrapCertificate: (input: BootstrapCredentialInput) =>
    call<CreatedBootstrapCertificate>("POST", "/credentials/bootstrap-certificates", { body: input }),
  createEstUser: (input: EstUserInput) => call<CreatedEstUser>("POST", "/credentials/est-users", { body: input }),
  revokeCredential: (id: string) => call<{ credential: Credential }>("POST", `/credentials/${enc(id)}/revoke`),

  audit: (q: AuditQuery, signal?: AbortSignal) => call<AuditPage>("GET", "/audit", { query: { ...q }, signal }),
  /** The export link (a plain GET the browser downloads with the session cookie). */
  auditExportUrl: (f: AuditFilter) => `${API_BASE}/audit/export${queryString({ ...f })}`,

  jobs: (signal?: AbortSignal) => call<{ items: Job[] }>("GET", "/jobs", { signal }),
  job: (id: string, signal?: AbortSignal) => call<Job>("GET", `/jobs/${enc(id)}`, { signal }),
  startJob: (body: StartJob) => call<Job>("POST", "/jobs", { body }),
};

/** What a role may do (docs/admin-api.md, "Signing in"). */
export function canEdit(role: Role | undefined): boolean {
  return role === "editor" || role === "admin";
}
export function canAdmin(role: Role | undefined): boolean {
  return role === "admin";
}
