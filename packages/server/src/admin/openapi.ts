/**
 * The admin API's part of GET /openapi.json (docs/admin-api.md is the prose
 * version). A test checks that its paths and methods are exactly the routes
 * the module registers.
 */
import type { OpenApiFragment } from "../http/openapi.js";

const P = "/admin/api/v1";
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const jsonBody = (schema: unknown, required = true) => ({ required, content: { "application/json": { schema } } });
const ok = (description: string, schema: unknown, status = "200") => ({ [status]: { description, content: { "application/json": { schema } } } });
const err = (description: string) => ({ description, content: { "application/json": { schema: ref("AdminError") } } });
const pageOf = (item: string) => ({ type: "object", required: ["items", "total"], properties: { items: { type: "array", items: ref(item) }, total: { type: "integer" } } });
const str = (description?: string) => ({ type: "string", ...(description ? { description } : {}) });
const q = (name: string, description: string, schema: Record<string, unknown> = { type: "string" }) => ({ name, in: "query", description, schema });
const pathParam = (name: string, description: string) => ({ name, in: "path", required: true, description, schema: { type: "string" } });
const paging = [q("limit", "Page size", { type: "integer", minimum: 1, maximum: 500, default: 50 }), q("offset", "Rows to skip", { type: "integer", minimum: 0, default: 0 }), q("order", "Sort order", { type: "string", enum: ["asc", "desc"] })];
const security = [{ bearer: [] }, { session: [] }];

/** An operation: role in the summary, the usual refusals added. */
function op(id: string, summary: string, role: string, responses: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const changes = role !== "viewer";
  return {
    operationId: id,
    summary: `${summary} (${role})`,
    security,
    ...extra,
    responses: {
      ...responses,
      "400": err("Malformed query or body (TESSERA_ERR_INPUT_MALFORMED)"),
      "401": err("No valid token or session (TESSERA_ERR_ADMIN_UNAUTHENTICATED)"),
      "403": err(changes ? "Role too weak (TESSERA_ERR_ADMIN_FORBIDDEN) or, with a session, missing X-CSRF-Token (TESSERA_ERR_ADMIN_CSRF)" : "Role too weak (TESSERA_ERR_ADMIN_FORBIDDEN)"),
      ...(changes ? { "404": err("No such object"), "409": err("Changed meanwhile (already decided, already revoked)") } : {}),
    },
  };
}

const reasonBody = jsonBody({ type: "object", properties: { reason: str("CRL reason name (revocations) or free text (rejections)") } }, false);
const credentialCommon = { name: str(), scope: str("Protocol, label or bootstrap scope; * for any (default)"), expiresIn: str("Duration such as 90d"), maxUses: { type: "integer", minimum: 1 } };

/** The fragment. */
export function adminOpenApi(): OpenApiFragment {
  return {
    title: "Admin API",
    description:
      "Operators' API behind the web console (/admin): enrollment approvals, devices, certificates, bootstrap credentials, fleet health, audit log, jobs. `Authorization: Bearer <token>` (`tessera token create NAME --role viewer|editor|admin`) or the console's session cookie, whose state-changing requests need `X-CSRF-Token`. See docs/admin-api.md.",
    paths: {
      [`${P}/session`]: {
        post: {
          operationId: "adminSignIn", summary: "Open a console session with a token; sets the tessera_session cookie", security: [],
          requestBody: jsonBody({ type: "object", required: ["token"], properties: { token: str() } }),
          responses: { ...ok("Signed in", ref("Session")), "400": err("Malformed body"), "401": err("Unknown, revoked or expired token") },
        },
        get: op("adminSession", "The current session or token", "viewer", ok("Who is signed in", ref("Session"))),
        delete: op("adminSignOut", "Close the session", "viewer", { "204": { description: "Signed out; the cookie is cleared" } }),
      },
      [`${P}/overview`]: { get: op("adminOverview", "Counts of devices, certificates and pending requests; the CA", "viewer", ok("Overview", { type: "object" })) },
      [`${P}/requests`]: {
        get: op("adminListRequests", "Enrollment requests of every protocol, oldest first", "viewer", ok("A page", pageOf("Request")), {
          parameters: [q("status", "pending, approved or rejected", { type: "string", enum: ["pending", "approved", "rejected"] }), q("protocol", "imprint, est, caramel…"), ...paging.slice(0, 2)],
        }),
      },
      [`${P}/requests/{id}/approve`]: {
        parameters: [pathParam("id", "Request id")],
        post: op("adminApproveRequest", "Approve; a Caramel request is signed at once, imprint and EST devices collect theirs on the next attempt", "editor", ok("Approved", { type: "object", properties: { request: ref("Request"), certificate: { oneOf: [ref("Certificate"), { type: "null" }] } } })),
      },
      [`${P}/requests/{id}/reject`]: {
        parameters: [pathParam("id", "Request id")],
        post: op("adminRejectRequest", "Reject", "editor", ok("Rejected", { type: "object", properties: { request: ref("Request") } }), { requestBody: reasonBody }),
      },
      [`${P}/devices`]: {
        get: op("adminListDevices", "Search devices; sorted and paged on the server", "viewer", ok("A page", pageOf("Device")), {
          parameters: [
            q("q", "Device id, fingerprint, certificate serial, certificate or key SHA-256 (exact), or part of the subject"),
            q("status", "Device status", { type: "string", enum: ["active", "pending", "revoked", "disabled"] }), q("protocol", "Protocol"),
            q("expiresBefore", "Current certificate expires before", { type: "string", format: "date-time" }),
            q("sort", "Sort column", { type: "string", enum: ["id", "status", "protocol", "createdAt", "lastSeenAt", "notAfter"] }), ...paging,
          ],
        }),
      },
      [`${P}/devices/{id}`]: {
        parameters: [pathParam("id", "Device id")],
        get: op("adminGetDevice", "A device with its certificate lineage (newest first) and requests", "viewer", ok("The device", { type: "object", properties: { device: ref("Device"), certificates: { type: "array", items: ref("Certificate") }, requests: { type: "array", items: ref("Request") } } })),
      },
      ...Object.fromEntries((["disable", "enable"] as const).map((a) => [`${P}/devices/{id}/${a}`, {
        parameters: [pathParam("id", "Device id")],
        post: op(`admin${a === "disable" ? "Disable" : "Enable"}Device`, a === "disable" ? "Disable: no renewal or enrollment until enabled" : "Enable a disabled device", "editor", ok("Done", { type: "object", properties: { device: ref("Device") } })),
      }])),
      [`${P}/devices/{id}/revoke`]: {
        parameters: [pathParam("id", "Device id")],
        post: op("adminRevokeDevice", "Revoke a device and its unexpired certificates (reason default cessationOfOperation)", "editor", ok("Revoked", { type: "object", properties: { device: ref("Device"), revoked: { type: "array", items: str() } } }), { requestBody: reasonBody }),
      },
      [`${P}/certificates`]: {
        get: op("adminListCertificates", "Search certificates; sorted and paged on the server", "viewer", ok("A page", pageOf("Certificate")), {
          parameters: [
            q("q", "Serial, certificate or key SHA-256, device id (exact), or part of the subject"),
            q("status", "Status", { type: "string", enum: ["valid", "revoked", "superseded"] }), q("deviceId", "Device"), q("protocol", "Protocol"),
            q("expiresAfter", "notAfter on or after", { type: "string", format: "date-time" }), q("expiresBefore", "notAfter before", { type: "string", format: "date-time" }),
            q("sort", "Sort column", { type: "string", enum: ["issuedAt", "notAfter", "serial", "subject", "status"] }), ...paging,
          ],
        }),
      },
      [`${P}/certificates/{serial}`]: {
        parameters: [pathParam("serial", "Serial in hex (colons allowed)")],
        get: op("adminGetCertificate", "A certificate with its PEM", "viewer", ok("The certificate", { allOf: [ref("Certificate"), { type: "object", properties: { pem: str() } }] })),
      },
      [`${P}/certificates/{serial}/revoke`]: {
        parameters: [pathParam("serial", "Serial in hex (colons allowed)")],
        post: op("adminRevokeCertificate", "Revoke (reason: a CRL reason name, default unspecified)", "editor", ok("Revoked", ref("Certificate")), { requestBody: reasonBody }),
      },
      [`${P}/credentials`]: {
        get: op("adminListCredentials", "Build secrets, bootstrap certificates and EST users with use counts and state", "viewer", ok("Credentials", { type: "object", properties: { items: { type: "array", items: ref("Credential") } } }), {
          parameters: [q("kind", "One kind only", { type: "string", enum: ["secret", "certificate", "password"] })],
        }),
      },
      [`${P}/credentials/secrets`]: {
        post: op("adminCreateSecret", "Create a build secret (shown once)", "admin", ok("Created", { type: "object", properties: { credential: ref("Credential"), secret: str(), weak: { type: "boolean" } } }), {
          requestBody: jsonBody({ type: "object", required: ["name"], properties: { ...credentialCommon, value: str("Given value (imprint migration); generated when absent") } }),
        }),
      },
      [`${P}/credentials/bootstrap-certificates`]: {
        post: op("adminIssueBootstrapCertificate", "Issue a factory bootstrap certificate and key (the key is not kept)", "admin", ok("Issued", { type: "object", properties: { credential: ref("Credential"), serial: str(), certificatePem: str(), privateKeyPem: str(), caPem: str() } }), {
          requestBody: jsonBody({ type: "object", required: ["name"], properties: credentialCommon }),
        }),
      },
      [`${P}/credentials/est-users`]: {
        post: op("adminCreateEstUser", "Create an EST (HTTP Basic) user for one label or all", "admin", ok("Created", { type: "object", properties: { credential: ref("Credential"), password: { type: ["string", "null"], description: "The generated password, shown once (null when given)" } } }), {
          requestBody: jsonBody({ type: "object", required: ["name"], properties: { name: str(), label: str("EST label; every label when absent"), password: str() } }),
        }),
      },
      [`${P}/credentials/{id}/revoke`]: {
        parameters: [pathParam("id", "Credential id")],
        post: op("adminRevokeCredential", "Revoke; a bootstrap certificate also goes on the CRL", "admin", ok("Revoked", { type: "object", properties: { credential: ref("Credential"), serial: { type: ["string", "null"] } } })),
      },
      [`${P}/health`]: {
        get: op("adminHealth", "Expiry per day (every day of the window), activity and failed enrollments of the last 30 days", "viewer", ok("Fleet health", ref("Health")), {
          parameters: [q("days", "Expiry window in days", { type: "integer", minimum: 1, maximum: 366, default: 90 })],
        }),
      },
      [`${P}/audit`]: {
        get: op("adminAudit", "Audit events, newest first", "viewer", ok("A page", { type: "object", properties: { items: { type: "array", items: ref("AuditEvent") }, next: { type: ["integer", "null"] } } }), {
          parameters: [...auditParams(), q("before", "Cursor: the previous page's next", { type: "integer" }), q("limit", "Page size", { type: "integer", minimum: 1, maximum: 500, default: 50 })],
        }),
      },
      [`${P}/audit/export`]: {
        get: {
          ...op("adminAuditExport", "Every matching audit event as JSON lines", "viewer", {}, { parameters: auditParams() }),
          responses: { "200": { description: "application/x-ndjson, newest first", content: { "application/x-ndjson": { schema: str() } } }, "400": err("Malformed query"), "401": err("Not signed in"), "403": err("Role too weak") },
        },
      },
      [`${P}/jobs`]: {
        get: op("adminListJobs", "Jobs, newest first", "viewer", ok("Jobs", { type: "object", properties: { items: { type: "array", items: ref("Job") } } })),
        post: op("adminStartJob", "Start a CRL rebuild or the revocation of a compromised bootstrap batch", "editor", ok("Started", ref("Job"), "202"), {
          requestBody: jsonBody({ oneOf: [
            { type: "object", required: ["kind"], properties: { kind: { const: "crl-rebuild" } } },
            { type: "object", required: ["kind", "credentialId"], properties: { kind: { const: "revoke-bootstrap-batch" }, credentialId: str(), reason: str("CRL reason, default keyCompromise") } },
          ] }),
        }),
      },
      [`${P}/jobs/{id}`]: { parameters: [pathParam("id", "Job id")], get: op("adminGetJob", "A job and its progress", "viewer", ok("The job", ref("Job"))) },
    },
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "An operator token (`tessera token create NAME --role R`)" },
        session: { type: "apiKey", in: "cookie", name: "tessera_session", description: "The console's session (POST /admin/api/v1/session); state-changing requests also need X-CSRF-Token" },
      },
      schemas: SCHEMAS,
    },
  };
}

function auditParams() {
  return [
    q("action", "e.g. certificate.revoked"), q("actor", "e.g. token:alice, or a prefix ending in *"), q("target", "Serial, device, request or credential"),
    q("since", "From", { type: "string", format: "date-time" }), q("until", "Until", { type: "string", format: "date-time" }),
  ];
}

const time = { type: "string", format: "date-time" };
const timeOrNull = { type: ["string", "null"], format: "date-time" };
const strOrNull = { type: ["string", "null"] };
const SCHEMAS: Record<string, unknown> = {
  AdminError: { type: "object", required: ["error"], properties: { error: { type: "object", required: ["code", "message"], properties: { code: str("TESSERA_ERR_…"), message: str() } } } },
  Session: { type: "object", properties: { name: str(), role: { type: "string", enum: ["viewer", "editor", "admin"] }, csrfToken: strOrNull, expiresAt: timeOrNull } },
  Request: {
    type: "object",
    properties: { id: str(), protocol: str(), deviceId: strOrNull, subject: str(), profile: str(), status: { type: "string", enum: ["pending", "approved", "rejected"] }, createdAt: time, decidedAt: timeOrNull, decidedBy: strOrNull, reason: strOrNull, certificateSerial: strOrNull, csrSha256: str(), attributes: { type: "object" } },
  },
  Device: {
    type: "object",
    properties: { id: str(), fingerprint: strOrNull, status: { type: "string", enum: ["active", "pending", "revoked", "disabled"] }, protocol: str(), attributes: { type: "object" }, createdAt: time, updatedAt: time, lastSeenAt: timeOrNull, lastIp: strOrNull, currentSerial: strOrNull, subject: strOrNull, notAfter: timeOrNull, certificateStatus: strOrNull },
  },
  Certificate: {
    type: "object",
    properties: { serial: str(), deviceId: strOrNull, profile: str(), subject: str(), sans: { type: "array", items: str() }, keyFingerprint: str(), keyType: str(), notBefore: time, notAfter: time, status: { type: "string", enum: ["valid", "revoked", "superseded"] }, revokedAt: timeOrNull, revocationReason: strOrNull, issuedAt: time, protocol: str(), requestId: strOrNull, fingerprint: str() },
  },
  Credential: {
    type: "object",
    properties: { id: str(), kind: { type: "string", enum: ["secret", "certificate", "password"] }, name: str(), scope: str(), useCount: { type: "integer" }, maxUses: { type: ["integer", "null"] }, expiresAt: timeOrNull, revokedAt: timeOrNull, createdAt: time, state: { type: "string", enum: ["active", "revoked", "expired", "exhausted"] } },
  },
  Health: {
    type: "object",
    properties: {
      expiry: { type: "array", items: { type: "object", properties: { day: str("YYYY-MM-DD"), count: { type: "integer" } } } },
      activity: { type: "array", items: { type: "object", properties: { day: str(), issued: { type: "integer" }, renewed: { type: "integer" }, revoked: { type: "integer" } } } },
      failures: { type: "array", items: { type: "object", properties: { day: str(), protocol: str(), code: str(), count: { type: "integer" } } } },
      failuresByCode: { type: "array", items: { type: "object", properties: { code: str(), count: { type: "integer" } } } },
    },
  },
  AuditEvent: { type: "object", properties: { id: { type: "integer" }, at: time, actor: str(), action: str(), target: str(), detail: { type: "object" } } },
  Job: {
    type: "object",
    properties: { id: str(), kind: str(), params: { type: "object" }, status: { type: "string", enum: ["running", "succeeded", "failed"] }, done: { type: "integer" }, total: { type: "integer" }, createdBy: str(), createdAt: time, updatedAt: time, finishedAt: timeOrNull, result: { type: ["object", "null"] }, error: strOrNull },
  },
};
