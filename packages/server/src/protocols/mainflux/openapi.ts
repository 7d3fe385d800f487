/**
 * The OpenAPI 3.1 description of the Mainflux-compatible API as Tessera
 * serves it (GET /openapi.json, merged with the other JSON APIs of the
 * listener by http/openapi.ts). A test checks that its paths and methods are
 * exactly the routes the module registers.
 */
import { mergeOpenApi, type OpenApiFragment } from "../../http/openapi.js";

const pem = { type: "string", description: "PEM" } as const;
const serialParam = { name: "serial", in: "path", required: true, description: "Certificate serial number in decimal", schema: { type: "string", pattern: "^[0-9]{1,49}$" } } as const;
const thingParam = { name: "id", in: "path", required: true, description: "Thing id", schema: { type: "string" } } as const;
const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });
const json = (description: string, schema: string) => ({ description, content: { "application/json": { schema: { $ref: `#/components/schemas/${schema}` } } } });

const common = {
  "401": errorResponse("`missing or invalid bearer user token`"),
  "403": errorResponse("`failed to perform authorization over the entity`: invalid, revoked or expired token, role too weak, or unknown thing"),
};

const issueBody = { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/CertRequest" } } } };
const issueErrors = {
  ...common,
  "400": errorResponse("`missing thing id`, `missing certificate data` (ttl, key_type, key_bits), `failed to create client certificate` (ttl unparsable or not positive), `malformed entity specification` (JSON)"),
  "415": errorResponse("`unsupported content type`: not exactly application/json"),
  "500": errorResponse("`failed to create client certificate`"),
};

const listOperation = (operationId: string, summary: string) => ({
  operationId,
  summary,
  security: [{ bearer: [] }],
  parameters: [
    thingParam,
    { name: "offset", in: "query", schema: { type: "integer", minimum: 0, default: 0 } },
    { name: "limit", in: "query", schema: { type: "integer", minimum: 0, maximum: 200, default: 10 } },
    { name: "serial", in: "query", description: "Substring of the decimal serial", schema: { type: "string" } },
    { name: "from", in: "query", description: "RFC 3339; expires_at >= from", schema: { type: "string", format: "date-time" } },
    { name: "to", in: "query", description: "RFC 3339; expires_at < to", schema: { type: "string", format: "date-time" } },
  ],
  responses: {
    "200": json("The thing's current certificates, by expiry", "Page"),
    "400": errorResponse("`invalid query parameters` (unparsable or repeated), `invalid limit size` (over 200)"),
    ...common,
  },
});

/** The module's part of GET /openapi.json (a fresh object each call). */
export function openApiFragment(): OpenApiFragment {
  return {
    title: "Mainflux-compatible certificates API",
    description:
        "Per-thing client certificates with server-generated keys, compatible with the Mainflux certs service (v0.42). Operators authenticate with `Authorization: Bearer <token>` (roles viewer < editor < admin, `tessera token create`); a device downloads its key once with `Authorization: Thing <key>` or `External <key>`. See docs/protocols/mainflux.md.",
    paths: {
      "/certs": {
        post: {
          operationId: "issueCert",
          summary: "Issue a certificate and key for a thing (editor)",
          security: [{ bearer: [] }],
          requestBody: issueBody,
          responses: { "201": json("Issued", "IssueRes"), ...issueErrors },
        },
      },
      "/certs/{serial}": {
        parameters: [serialParam],
        get: {
          operationId: "viewCert",
          summary: "View a certificate (viewer)",
          security: [{ bearer: [] }],
          responses: { "200": json("The certificate, never its key", "ViewRes"), ...common, "404": errorResponse("`entity not found`") },
        },
        put: {
          operationId: "renewCert",
          summary: "Renew a certificate within the renewal window of its expiry (editor); the body is ignored",
          security: [{ bearer: [] }],
          responses: {
            "201": json("The new certificate (new serial; the old one is revoked)", "IssueRes"),
            "400": errorResponse("`certificate not eligible for renewal yet`"),
            ...common,
            "404": errorResponse("`entity not found`"),
          },
        },
        delete: {
          operationId: "revokeCert",
          summary: "Revoke a certificate (editor)",
          security: [{ bearer: [] }],
          responses: { "200": json("Revoked", "RevokeRes"), ...common, "404": errorResponse("`failed to revoke certificate`") },
        },
      },
      "/certs/{serial}/rotate": {
        parameters: [serialParam],
        post: {
          operationId: "rotateCert",
          summary: "Replace a certificate with one made to the body's parameters (editor); no time window",
          security: [{ bearer: [] }],
          requestBody: issueBody,
          responses: { "201": json("The new certificate (the old one is revoked)", "IssueRes"), ...issueErrors, "404": errorResponse("`entity not found`") },
        },
      },
      "/certs/{serial}/download": {
        parameters: [serialParam],
        get: {
          operationId: "downloadCert",
          summary: "The device's one download of its key, certificate and CA chain",
          security: [{ thingKey: [] }],
          responses: {
            "200": json("Key, certificate and chain; the key is erased from the server", "DownloadRes"),
            "401": errorResponse("`invalid thing key type` (neither `Thing ` nor `External `), `missing or invalid bearer entity key`"),
            "403": errorResponse("`certificate already downloaded`, or `failed to perform authorization over the entity` (another thing's key)"),
            "404": errorResponse("`entity not found` (unknown serial or key)"),
          },
        },
      },
      "/things/{id}/serials": { get: listOperation("listSerials", "List a thing's certificates (viewer)") },
      "/svccerts/things/{id}/serials": { get: listOperation("listSerialsSdk", "The same, at the path the Mainflux SDK uses") },
    },
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "An operator token (`tessera token create NAME --role R`)" },
        thingKey: { type: "apiKey", in: "header", name: "Authorization", description: "`Thing <thing key>` or `External <external key>`" },
      },
      schemas: {
        Error: { type: "object", required: ["error"], properties: { error: { type: "string" } } },
        CertRequest: {
          type: "object",
          required: ["thing_id", "ttl", "key_type", "key_bits"],
          properties: {
            thing_id: { type: "string" },
            ttl: { type: "string", description: "Go duration (`8760h`, `1h30m`) or whole hours (`720`); positive; capped by the profile's validity", examples: ["8760h"] },
            key_type: { type: "string", enum: ["rsa", "ecdsa", "ec"] },
            key_bits: { type: "integer", description: "rsa: 2048 or 4096; ecdsa: 224, 256, 384 or 521" },
          },
        },
        IssueRes: {
          type: "object",
          required: ["certificate", "issuing_ca", "ca_chain", "private_key_type", "serial", "expires_at"],
          properties: {
            certificate: pem,
            issuing_ca: pem,
            ca_chain: { type: "array", items: pem },
            private_key: { ...pem, description: "PEM `RSA PRIVATE KEY` or `EC PRIVATE KEY`; absent when [mainflux] return_private_key = false" },
            private_key_type: { type: "string", enum: ["rsa", "ecdsa"] },
            serial: { type: "string", description: "Decimal" },
            expires_at: { type: "string", format: "date-time" },
          },
        },
        ViewRes: {
          type: "object",
          required: ["certificate", "serial", "expires_at", "thing_id", "downloaded", "key_type", "key_bits"],
          properties: {
            certificate: pem,
            serial: { type: "string" },
            expires_at: { type: "string", format: "date-time" },
            thing_id: { type: "string" },
            downloaded: { type: "boolean" },
            key_type: { type: "string", enum: ["rsa", "ecdsa"] },
            key_bits: { type: "integer" },
          },
        },
        DownloadRes: {
          type: "object",
          required: ["certificate", "issuing_ca", "ca_chain", "private_key", "private_key_type", "serial", "thing_id", "expires_at"],
          properties: {
            certificate: pem,
            issuing_ca: pem,
            ca_chain: { type: "array", items: pem },
            private_key: pem,
            private_key_type: { type: "string", enum: ["rsa", "ecdsa"] },
            serial: { type: "string" },
            thing_id: { type: "string" },
            expires_at: { type: "string", format: "date-time" },
          },
        },
        RevokeRes: { type: "object", required: ["RevocationTime"], properties: { RevocationTime: { type: "string", format: "date-time" } } },
        Page: {
          type: "object",
          required: ["total", "offset", "limit", "certs"],
          properties: {
            total: { type: "integer" },
            offset: { type: "integer" },
            limit: { type: "integer" },
            certs: {
              type: "array",
              items: {
                type: "object",
                required: ["thing_id", "cert_serial", "expires_at", "downloaded"],
                properties: { thing_id: { type: "string" }, cert_serial: { type: "string" }, expires_at: { type: "string", format: "date-time" }, downloaded: { type: "boolean" } },
              },
            },
          },
        },
      },
    },
  };
}

/** The API's document on its own (as GET /openapi.json serves it where no other JSON API is mounted). */
export function openApiDocument(): Record<string, unknown> {
  return mergeOpenApi([openApiFragment()]);
}
