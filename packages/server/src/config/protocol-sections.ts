/**
 * The protocol sections of the configuration file: `[est]` with
 * `[est.labels.NAME]`, `[liteboot]` with `[liteboot.ccs.SCOPE]`, and
 * `[webhook]`; their checks across settings; and their setting names for
 * `tessera config check`. docs/configuration.md describes the same keys.
 */
import { existsSync } from "node:fs";
import { GENERATABLE_KEY_TYPES } from "@tessera/pki";
import { bool, duration, filePath, hint, httpListen, int, isTable, list, oneOf, show, text, type Parser } from "./values.js";
import type { EstCsrAttrConfig, EstLabelConfig, TesseraConfig } from "./types.js";
import { TableReader, type Context } from "./table-reader.js";

export const EST_LABEL_KEYS = ["profile", "auth", "bootstrap_ca", "mode", "retry_after", "csr_attrs", "tls_unique", "serverkeygen_key_type",
  "revoke_superseded", "realm"];
/** BC's label charset (RFC 7030 §3.2.2 allows one path segment); operation names cannot be labels. */
const EST_LABEL_RE = /^[0-9A-Za-z_\-.~!$&'()*+,;:=]+$/;
const EST_OPERATIONS = ["cacerts", "simpleenroll", "simplereenroll", "csrattrs", "serverkeygen", "fullcmc"];
const OID_RE = /^[0-2](\.(0|[1-9][0-9]*))+$/;
const LITEBOOT_KEYS = ["listen", "mtls_listen", "profile", "verify_csr_signature", "subject_policy", "hubname", "mqtt_port", "append_hub_to_cr", "ccs"];
const WEBHOOK_KEYS = ["url", "secret_file", "events", "max_attempts", "timeout"];

const MAINFLUX_KEYS = ["profile", "renew_window", "return_private_key", "rotation", "events"];
const REVOCATION_KEYS = ["public_url", "crl_file", "ocsp"];
const CARAMEL_KEYS = ["mode", "profile", "lifetime_short", "lifetime_long", "refresh_before", "refresh_interval", "renew_with_certificate"];

/** Applies `[est]`, `[liteboot]`, `[caramel]` and `[webhook]`. */
export function readProtocolSections(top: TableReader | undefined, cfg: TesseraConfig): void {
  readEst(top, cfg);
  readLiteboot(top, cfg);
  const mf = top?.sub("mainflux", MAINFLUX_KEYS);
  mf?.set("profile", text, (v) => (cfg.mainflux.profile = v));
  mf?.set("renew_window", duration(0), (v) => (cfg.mainflux.renewWindow = v));
  mf?.set("return_private_key", bool, (v) => (cfg.mainflux.returnPrivateKey = v));
  const rot = mf?.sub("rotation", ["enabled", "before", "interval"]);
  rot?.set("enabled", bool, (v) => (cfg.mainflux.rotation.enabled = v));
  rot?.set("before", duration(1), (v) => (cfg.mainflux.rotation.before = v));
  rot?.set("interval", duration(1), (v) => (cfg.mainflux.rotation.interval = v));
  const ev = mf?.sub("events", ["bus", "url", "include_private_key"]);
  ev?.set("bus", oneOf(["none", "nats", "mqtt"] as const), (v) => (cfg.mainflux.events.bus = v));
  ev?.set("url", busUrl, (v) => (cfg.mainflux.events.url = v));
  ev?.set("include_private_key", bool, (v) => (cfg.mainflux.events.includePrivateKey = v));
  const rv = top?.sub("revocation", REVOCATION_KEYS);
  rv?.set("public_url", webhookUrl, (v) => (cfg.revocation.publicUrl = v.replace(/\/+$/, "")));
  rv?.set("crl_file", filePath, (v) => (cfg.revocation.crlFile = v));
  const oc = rv?.sub("ocsp", ["enabled", "validity", "signer_validity"]);
  oc?.set("enabled", bool, (v) => (cfg.revocation.ocsp.enabled = v));
  oc?.set("validity", duration(60), (v) => (cfg.revocation.ocsp.validity = v));
  oc?.set("signer_validity", duration(3600), (v) => (cfg.revocation.ocsp.signerValidity = v));
  const cm = top?.sub("caramel", CARAMEL_KEYS);
  cm?.set("mode", oneOf(["manual", "auto"] as const), (v) => (cfg.caramel.mode = v));
  cm?.set("profile", text, (v) => (cfg.caramel.profile = v));
  cm?.set("lifetime_short", duration(60), (v) => (cfg.caramel.lifetimeShort = v));
  cm?.set("lifetime_long", duration(60), (v) => (cfg.caramel.lifetimeLong = v));
  cm?.set("refresh_before", duration(0), (v) => (cfg.caramel.refreshBefore = v));
  cm?.set("refresh_interval", duration(1), (v) => (cfg.caramel.refreshInterval = v));
  cm?.set("renew_with_certificate", bool, (v) => (cfg.caramel.renewWithCertificate = v));
  const wh = top?.sub("webhook", WEBHOOK_KEYS);
  wh?.set("url", webhookUrl, (v) => (cfg.webhook.url = v));
  wh?.set("secret_file", filePath, (v) => (cfg.webhook.secretFile = v));
  wh?.set("events", list(oneOf(["device.created"] as const), "list at least one event"), (v) => (cfg.webhook.events = v));
  wh?.set("max_attempts", int(1, 1000), (v) => (cfg.webhook.maxAttempts = v));
  wh?.set("timeout", duration(1), (v) => (cfg.webhook.timeout = v));
}

/** A nats:// or mqtt(s):// broker URL. */
const busUrl: Parser<string> = (raw, report) => {
  try {
    const u = new URL(String(raw));
    if (typeof raw === "string" && ["nats:", "tls:", "mqtt:", "mqtts:"].includes(u.protocol)) return raw;
  } catch {} // reported below
  return void report(`expected a nats://, mqtt:// or mqtts:// URL, got ${show(raw)}`);
};

/** An http(s) URL for the webhook. */
const webhookUrl: Parser<string> = (raw, report) => {
  try {
    const u = new URL(String(raw));
    if (typeof raw === "string" && (u.protocol === "https:" || u.protocol === "http:")) return raw;
  } catch {} // reported below
  return void report(`expected an http:// or https:// URL, got ${show(raw)}`);
};

/** `[liteboot]` and `[liteboot.ccs.SCOPE]`. */
function readLiteboot(top: TableReader | undefined, cfg: TesseraConfig): void {
  const lb = top?.sub("liteboot", LITEBOOT_KEYS);
  if (!lb) return;
  const l = cfg.liteboot;
  lb.set("listen", httpListen, (v) => (l.listen = v));
  lb.set("mtls_listen", httpListen, (v) => (l.mtlsListen = v));
  lb.set("profile", text, (v) => (l.profile = v));
  lb.set("verify_csr_signature", bool, (v) => (l.verifyCsrSignature = v));
  lb.set("subject_policy", oneOf(["uuid", "none"] as const), (v) => (l.subjectPolicy = v));
  lb.set("hubname", text, (v) => (l.ccs.hubname = v));
  lb.set("mqtt_port", int(0, 65535), (v) => (l.ccs.mqttPort = v));
  lb.set("append_hub_to_cr", bool, (v) => (l.appendHubToCr = v));
  const scopes = lb.sub("ccs", null);
  for (const [scope, raw] of Object.entries(scopes?.table ?? {})) {
    const key = `liteboot.ccs.${scope}`;
    if (!isTable(raw)) {
      lb.problem(key, `expected a table [liteboot.ccs.${scope}] with hubname and mqtt_port, got ${show(raw)}`);
      continue;
    }
    const r = new TableReader(lb.ctx, raw, key, ["hubname", "mqtt_port"], lb.base);
    const ccs = { ...l.ccs };
    r.set("hubname", text, (v) => (ccs.hubname = v));
    r.set("mqtt_port", int(0, 65535), (v) => (ccs.mqttPort = v));
    l.ccsByScope[scope] = ccs;
  }
}

/** A csr_attrs entry: an OID string, or { type = OID, values = [OID, …] }. */
const csrAttr: Parser<EstCsrAttrConfig> = (raw, report) => {
  if (typeof raw === "string") return OID_RE.test(raw) ? { oid: raw } : void report(`${show(raw)} is not a dotted OID`);
  if (isTable(raw) && typeof raw["type"] === "string" && Array.isArray(raw["values"]) && raw["values"].length > 0 && Object.keys(raw).length === 2) {
    const values = raw["values"];
    const bad = [raw["type"], ...values].find((v) => typeof v !== "string" || !OID_RE.test(v));
    if (bad !== undefined) return void report(`${show(bad)} is not a dotted OID`);
    return { type: raw["type"], values: values as string[] };
  }
  return void report(`expected an OID string or { type = "OID", values = ["OID", …] }, got ${show(raw)}`);
};

/** Applies one EST label table over `l`. */
function readEstLabel(r: TableReader, l: EstLabelConfig): void {
  r.set("profile", text, (v) => (l.profile = v));
  r.set("auth", oneOf(["basic", "certificate", "either", "both"] as const), (v) => (l.auth = v));
  r.set("bootstrap_ca", list(filePath), (v) => (l.bootstrapCa = v));
  r.set("mode", oneOf(["auto", "manual"] as const), (v) => (l.mode = v));
  r.set("retry_after", duration(1), (v) => (l.retryAfter = v));
  r.set("csr_attrs", list(csrAttr), (v) => (l.csrAttrs = v));
  r.set("tls_unique", bool, (v) => (l.tlsUnique = v));
  r.set("serverkeygen_key_type", oneOf(GENERATABLE_KEY_TYPES), (v) => (l.serverKeygenKeyType = v));
  r.set("revoke_superseded", bool, (v) => (l.revokeSuperseded = v));
  r.set("realm", text, (v) => (l.realm = v));
}

/** `[est]` (the label-less path) and `[est.labels.NAME]`, each label starting from `[est]`'s values. */
function readEst(top: TableReader | undefined, cfg: TesseraConfig): void {
  const est = top?.sub("est", [...EST_LABEL_KEYS, "labels"]);
  if (!est) return;
  readEstLabel(est, cfg.est.default);
  const labels = est.sub("labels", null);
  for (const [name, raw] of Object.entries(labels?.table ?? {})) {
    const key = `est.labels.${name}`;
    const copy = (): EstLabelConfig => ({ ...cfg.est.default, bootstrapCa: [...cfg.est.default.bootstrapCa], csrAttrs: [...cfg.est.default.csrAttrs] });
    if (!EST_LABEL_RE.test(name) || EST_OPERATIONS.includes(name)) {
      est.problem(key, "EST labels are one path segment of [0-9A-Za-z_-.~!$&'()*+,;:=] and not an operation name");
    } else if (!isTable(raw)) est.problem(key, `expected a table [est.labels.${name}], got ${show(raw)}`);
    else {
      const l = copy();
      readEstLabel(new TableReader(est.ctx, raw, key, EST_LABEL_KEYS, est.base), l);
      cfg.est.labels[name] = l;
    }
  }
}

/** Checks of the protocol sections that involve other settings (profiles, listeners, files). */
export function crossCheckProtocols(ctx: Context, cfg: TesseraConfig): void {
  const estLabels: Array<[string, EstLabelConfig]> = [["est", cfg.est.default], ...Object.entries(cfg.est.labels).map(([n, l]): [string, EstLabelConfig] => [`est.labels.${n}`, l])];
  const estListeners = cfg.listeners.filter((l) => l.protocols.includes("*") || l.protocols.includes("est"));
  for (const [key, l] of estLabels) {
    if (!Object.hasOwn(cfg.profiles, l.profile)) ctx.problem(`${key}.profile`, "config", `no profile named ${JSON.stringify(l.profile)}${hint(l.profile, Object.keys(cfg.profiles))}`);
    for (const f of l.bootstrapCa) if (!existsSync(f)) ctx.problem(`${key}.bootstrap_ca`, "config", `${f} does not exist`);
    if (l.auth === "basic" && l.bootstrapCa.length > 0) ctx.problem(`${key}.bootstrap_ca`, "config", 'bootstrap certificates are not used with auth = "basic"');
    // tls-unique is undefined in TLS 1.3 (RFC 7030 §3.5, RFC 9266): clients that can use 1.3 will, and could never link.
    if (l.tlsUnique && !estListeners.some((x) => x.maxTls === "1.2")) {
      ctx.problem(`${key}.tls_unique`, "config", 'needs a listener with max_tls = "1.2" that mounts est (tls-unique is undefined in TLS 1.3)');
    }
  }
  if (!Object.hasOwn(cfg.profiles, cfg.mainflux.profile)) {
    ctx.problem("mainflux.profile", "config", `no profile named ${JSON.stringify(cfg.mainflux.profile)}${hint(cfg.mainflux.profile, Object.keys(cfg.profiles))}`);
  }
  if (cfg.mainflux.events.bus !== "none" && cfg.mainflux.events.url !== null && !cfg.mainflux.events.url.startsWith(cfg.mainflux.events.bus === "nats" ? "nats:" : "mqtt")) {
    if (!(cfg.mainflux.events.bus === "nats" && cfg.mainflux.events.url.startsWith("tls:"))) ctx.problem("mainflux.events.url", "config", `not a ${cfg.mainflux.events.bus} URL`);
  }
  if (!Object.hasOwn(cfg.profiles, cfg.caramel.profile)) {
    ctx.problem("caramel.profile", "config", `no profile named ${JSON.stringify(cfg.caramel.profile)}${hint(cfg.caramel.profile, Object.keys(cfg.profiles))}`);
  }
  if (cfg.caramel.lifetimeShort > cfg.caramel.lifetimeLong) ctx.problem("caramel.lifetime_short", "config", "must not be longer than caramel.lifetime_long");
  if (cfg.caramel.refreshBefore >= cfg.caramel.lifetimeShort && cfg.caramel.refreshBefore > 0) {
    ctx.problem("caramel.refresh_before", "config", "must be shorter than caramel.lifetime_short, or every certificate would be re-signed at once");
  }
  if (!Object.hasOwn(cfg.profiles, cfg.liteboot.profile)) {
    ctx.problem("liteboot.profile", "config", `no profile named ${JSON.stringify(cfg.liteboot.profile)}${hint(cfg.liteboot.profile, Object.keys(cfg.profiles))}`);
  }
  if (cfg.webhook.url !== null && cfg.webhook.secretFile === null) ctx.problem("webhook.secret_file", "config", "a webhook needs secret_file (the HMAC key that signs deliveries)");
  if (cfg.webhook.secretFile !== null && !existsSync(cfg.webhook.secretFile)) ctx.problem("webhook.secret_file", "config", `${cfg.webhook.secretFile} does not exist`);
}

/** The protocol sections' setting names, for sourcesOf. */
export function protocolSettingKeys(cfg: TesseraConfig): string[] {
  const keys: string[] = [];
  for (const k of EST_LABEL_KEYS) keys.push(`est.${k}`);
  for (const name of Object.keys(cfg.est.labels)) for (const k of EST_LABEL_KEYS) keys.push(`est.labels.${name}.${k}`);
  for (const k of LITEBOOT_KEYS) if (k !== "ccs") keys.push(`liteboot.${k}`);
  for (const k of WEBHOOK_KEYS) keys.push(`webhook.${k}`);
  for (const k of CARAMEL_KEYS) keys.push(`caramel.${k}`);
  for (const k of ["profile", "renew_window", "return_private_key", "rotation.enabled", "rotation.before", "rotation.interval", "events.bus", "events.url", "events.include_private_key"]) keys.push(`mainflux.${k}`);
  for (const k of ["public_url", "crl_file", "ocsp.enabled", "ocsp.validity", "ocsp.signer_validity"]) keys.push(`revocation.${k}`);
  return keys;
}
