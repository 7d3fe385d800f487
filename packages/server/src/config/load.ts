/**
 * Loads the server configuration from built-in defaults, an optional TOML
 * file, environment variables and command-line flags (docs/configuration.md).
 * Every problem is collected and returned together, so an operator fixes a
 * broken setup in one pass instead of one error per restart.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parse as parseToml } from "smol-toml";
import { GENERATABLE_KEY_TYPES, type KeyUsage } from "@tessera/pki";
import { cloneProfile, defaultCaPassphraseFile, defaultConfig, defaultDatabaseUrl, defaultListener, defaultProfiles } from "./defaults.js";
import { existsSync } from "node:fs";
import { formatDuration } from "./duration.js";
import { Address, Parser, Table, address, bool, byteSize, databaseUrl, duration, extKeyUsage, filePath, formatAddress, hint, hostname, httpListen, int, isTable, list, listenerName, oneOf, show, text, validHost } from "./values.js";
import type { EstCsrAttrConfig, EstLabelConfig, ListenerConfig, ProfileConfig, TesseraConfig } from "./types.js";

/** One thing wrong with the configuration. */
export interface ConfigProblem {
  /**
   * Where: the dotted key in the TOML file (array entries as `listeners[1]`),
   * the setting an env var or flag sets ("data_dir", "listeners.main.address"),
   * or "config" for the file itself.
   */
  key: string;
  /** What is wrong, with a suggestion when a close match exists. */
  message: string;
  /** "file", "env TESSERA_…", "flag --…", or "config" for a check across settings. */
  source: string;
}

/** Inputs of loadConfig. Process state is passed in, never read, so loading stays testable. */
export interface LoadConfigOptions {
  /** Parsed flags by kebab-case name: config, data-dir, listen, http-listen, hostname, database-url, ca-passphrase-file, log-level. Others are ignored. */
  flags: Record<string, string | boolean | undefined>;
  /** Environment (the TESSERA_* variables); empty values count as unset. */
  env: Record<string, string | undefined>;
  /** Directory that relative flag and env paths resolve against, and where tessera.toml is looked for. */
  cwd: string;
  /** The machine's host name (os.hostname()); the last choice before "localhost". */
  systemHostname: () => string | undefined;
}

/** What loadConfig found. */
export interface LoadConfigResult {
  /** The configuration; present only when there are no problems. */
  config?: TesseraConfig;
  /** Every problem found (file, environment, flags and cross-checks); empty when the configuration is valid. */
  problems: ConfigProblem[];
  /** Absolute path of the TOML file used or named, if any. */
  file?: string;
}

type Source = "default" | "file" | "env" | "flag";
type Candidate<T> = { value: T; source: Source } | undefined;
/** Checks one raw value (TOML value or env/flag string): returns it converted, or reports and returns undefined. `base` resolves relative paths. */

const TOP_KEYS = ["data_dir", "hostname", "database_url", "ca_passphrase_file", "listen", "listeners", "http_listen", "body_limit",
  "log_level", "default_profile", "issuance_batch_max", "ca", "crl", "server_certificate", "sqlite", "profiles", "imprint", "est", "liteboot", "webhook"];
const LITEBOOT_KEYS = ["listen", "mtls_listen", "profile", "verify_csr_signature", "subject_policy", "hubname", "mqtt_port", "append_hub_to_cr", "ccs"];
const WEBHOOK_KEYS = ["url", "secret_file", "events", "max_attempts", "timeout"];
const LISTENER_KEYS = ["name", "address", "client_cert", "client_ca_names", "protocols", "max_tls"];
const EST_LABEL_KEYS = ["profile", "auth", "bootstrap_ca", "mode", "retry_after", "csr_attrs", "tls_unique", "serverkeygen_key_type",
  "revoke_superseded", "realm"];
/** BC's label charset (RFC 7030 §3.2.2 allows one path segment); operation names cannot be labels. */
const EST_LABEL_RE = /^[0-9A-Za-z_\-.~!$&'()*+,;:=]+$/;
const EST_OPERATIONS = ["cacerts", "simpleenroll", "simplereenroll", "csrattrs", "serverkeygen", "fullcmc"];
const OID_RE = /^[0-2](\.(0|[1-9][0-9]*))+$/;
const PROFILE_KEYS = ["validity", "backdate", "key_usage", "ext_key_usage", "basic_constraints", "subject_key_identifier",
  "authority_key_identifier", "serial", "serial_bytes", "subject", "sans", "min_rsa_bits", "ec_curves", "allow_ed25519", "allow_rsa"];
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const satisfies readonly TesseraConfig["logLevel"][];
// A Record keyed by KeyUsage makes the compiler flag a usage added to the pki type but missing here.
const KEY_USAGES = Object.keys({ digitalSignature: 1, nonRepudiation: 1, keyEncipherment: 1, dataEncipherment: 1, keyAgreement: 1,
  keyCertSign: 1, cRLSign: 1, encipherOnly: 1, decipherOnly: 1 } satisfies Record<KeyUsage, 1>) as KeyUsage[];
const EC_CURVES = ["P-256", "P-384", "P-521", "P-224"];
/** Listener and profile names end up in dotted keys, logs and URLs; keep them plain. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** Collects problems and records where each setting came from. */
class Context {
  readonly problems: ConfigProblem[] = [];
  readonly sources: Record<string, Source> = {};
  problem(key: string, source: string, message: string): void {
    this.problems.push({ key, message, source });
  }
}

/** A TOML table being read: reports keys it does not know (with a close match) and parses the ones it does. */
class TableReader {
  constructor(readonly ctx: Context, readonly table: Table, readonly prefix: string, known: readonly string[] | null, readonly base: string) {
    for (const k of known ? Object.keys(table) : []) {
      if (!known!.includes(k)) ctx.problem(this.key(k), "file", `unknown key${hint(k, known!)}`);
    }
  }
  key(k: string): string {
    return this.prefix ? `${this.prefix}.${k}` : k;
  }
  /** Reports a problem with this file at dotted `key`. */
  problem(key: string, message: string): void {
    this.ctx.problem(key, "file", message);
  }
  /** Parses key `k`; undefined when absent or bad (bad values are reported). */
  get<T>(k: string, parser: Parser<T>): T | undefined {
    const raw = this.table[k];
    return raw === undefined ? undefined : parser(raw, (m) => this.ctx.problem(this.key(k), "file", m), this.base);
  }
  /** Parses key `k` and, when good, applies it and records setting `sourceKey` as set by the file. */
  set<T>(k: string, parser: Parser<T>, apply: (v: T) => void, sourceKey = this.key(k)): void {
    const v = this.get(k, parser);
    if (v === undefined) return;
    apply(v);
    this.ctx.sources[sourceKey] = "file";
  }
  /** The sub-table under `k` (null `known` allows any key), or undefined when absent or not a table (reported). */
  sub(k: string, known: readonly string[] | null): TableReader | undefined {
    const raw = this.table[k];
    if (raw === undefined) return undefined;
    if (isTable(raw)) return new TableReader(this.ctx, raw, this.key(k), known, this.base);
    this.ctx.problem(this.key(k), "file", `expected a table, got ${show(raw)}`);
    return undefined;
  }
}

/**
 * Builds the configuration: flags > environment > TOML file > defaults for
 * every setting, except `hostname`: `--hostname` > file > TESSERA_HOSTNAME >
 * systemHostname() > "localhost". The file is `--config`, else
 * TESSERA_CONFIG, else `<cwd>/tessera.toml` when it exists. Never throws on
 * bad input: every problem (unknown keys, bad types, durations, addresses,
 * names, cross-setting conflicts) is returned in `problems`, and `config` is
 * set only when there are none.
 */
export async function loadConfig(opts: LoadConfigOptions): Promise<LoadConfigResult> {
  const ctx = new Context();
  const { cwd } = opts;
  const { file, doc } = await readConfigFile(opts, ctx);
  const top = doc ? new TableReader(ctx, doc, "", TOP_KEYS, path.dirname(file!)) : undefined;

  const fromFlag = <T>(name: string, key: string, parser: Parser<T>): Candidate<T> => {
    const raw = opts.flags[name];
    if (raw === undefined || raw === false) return undefined;
    const report = (m: string) => ctx.problem(key, `flag --${name}`, m);
    if (raw === true) return void report("needs a value");
    const value = parser(raw, report, cwd);
    return value === undefined ? undefined : { value, source: "flag" };
  };
  const fromEnv = <T>(name: string, key: string, parser: Parser<T>): Candidate<T> => {
    const raw = opts.env[name]?.trim();
    if (!raw) return undefined;
    const value = parser(raw, (m) => ctx.problem(key, `env ${name}`, m), cwd);
    return value === undefined ? undefined : { value, source: "env" };
  };
  const fromFile = <T>(key: string, parser: Parser<T>): Candidate<T> => {
    const value = top?.get(key, parser);
    return value === undefined ? undefined : { value, source: "file" };
  };
  // All candidates are parsed before one is picked, so a bad value is reported even when a higher layer overrides it.
  const first = <T>(key: string, ...candidates: Candidate<T>[]): T | undefined => {
    const c = candidates.find((x) => x !== undefined);
    if (c) ctx.sources[key] = c.source;
    return c?.value;
  };

  /** flag (`data-dir`) > env (`TESSERA_DATA_DIR`) > file (`data_dir`); the names follow from the key. */
  const layered = <T>(key: string, parser: Parser<T>, hasFlag = true): T | undefined =>
    first(key, hasFlag ? fromFlag(key.replaceAll("_", "-"), key, parser) : undefined,
      fromEnv(`TESSERA_${key.toUpperCase()}`, key, parser), fromFile(key, parser));

  const cfg = defaultConfig(cwd);
  cfg.dataDir = layered("data_dir", filePath) ?? cfg.dataDir;
  // These two default to paths inside the data directory, whichever layer chose it.
  cfg.databaseUrl = layered("database_url", databaseUrl) ?? defaultDatabaseUrl(cfg.dataDir);
  cfg.caPassphraseFile = layered("ca_passphrase_file", filePath) ?? defaultCaPassphraseFile(cfg.dataDir);
  cfg.logLevel = layered("log_level", oneOf(LOG_LEVELS)) ?? cfg.logLevel;
  const http = layered("http_listen", httpListen);
  if (http !== undefined) cfg.httpListen = http;
  cfg.bodyLimit = layered("body_limit", byteSize, false) ?? cfg.bodyLimit;
  cfg.issuanceBatchMax = first("issuance_batch_max", fromFile("issuance_batch_max", int(1))) ?? cfg.issuanceBatchMax;
  // The file outranks TESSERA_HOSTNAME: container platforms often set a generic one that a deliberate file value should beat.
  cfg.hostname = first("hostname", fromFlag("hostname", "hostname", hostname), fromFile("hostname", hostname),
    fromEnv("TESSERA_HOSTNAME", "hostname", hostname)) ?? systemHostname(opts);

  readSections(top, cfg);
  // liteboot's two listeners: env > file (set by readSections) > default.
  const lbListen = fromEnv("TESSERA_LITEBOOT_LISTEN", "liteboot.listen", httpListen);
  if (lbListen) ((cfg.liteboot.listen = lbListen.value), (ctx.sources["liteboot.listen"] = "env"));
  const lbMtls = fromEnv("TESSERA_LITEBOOT_MTLS_LISTEN", "liteboot.mtls_listen", httpListen);
  if (lbMtls) ((cfg.liteboot.mtlsListen = lbMtls.value), (ctx.sources["liteboot.mtls_listen"] = "env"));
  cfg.listeners = readListeners(ctx, top) ?? cfg.listeners;
  const main = cfg.listeners[0]!;
  const mainKey = `listeners.${main.name}.address`;
  const mainAddress = first(mainKey, fromFlag("listen", mainKey, address), fromEnv("TESSERA_LISTEN", mainKey, address));
  if (mainAddress) Object.assign(main, mainAddress);
  cfg.profiles = readProfiles(ctx, top);
  cfg.defaultProfile = first("default_profile", fromFile("default_profile", text)) ?? cfg.defaultProfile;

  crossCheck(ctx, cfg);
  if (ctx.problems.length > 0) return { problems: ctx.problems, file };
  cfg.sources = sourcesOf(cfg, ctx.sources);
  return { config: cfg, problems: [], file };
}

/** Finds, reads and parses the TOML file; a named file that is missing is a problem, a missing default one is not. */
async function readConfigFile(opts: LoadConfigOptions, ctx: Context): Promise<{ file?: string; doc?: Table }> {
  const flag = opts.flags["config"];
  const env = opts.env["TESSERA_CONFIG"]?.trim();
  if (flag === true || flag === "") ctx.problem("config", "flag --config", "needs a value");
  const [named, source] = typeof flag === "string" && flag !== "" ? [flag, "flag --config"] : env ? [env, "env TESSERA_CONFIG"] : [undefined, "file"];
  const file = path.resolve(opts.cwd, named ?? "tessera.toml");
  let content: string;
  try {
    content = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && named === undefined) return {};
    ctx.problem("config", source, code === "ENOENT" ? `config file ${file} does not exist` : `cannot read config file ${file}: ${(err as Error).message}`);
    return { file };
  }
  try {
    return { file, doc: parseToml(content) };
  } catch (err) {
    ctx.problem("config", "file", `${file} is not valid TOML: ${(err as Error).message}`);
    return { file };
  }
}

/** Applies [ca], [crl], [server_certificate] and [sqlite], which only the file sets. */
function readSections(top: TableReader | undefined, cfg: TesseraConfig): void {
  const ca = top?.sub("ca", ["key_type", "name", "organization"]);
  ca?.set("key_type", oneOf(GENERATABLE_KEY_TYPES), (v) => (cfg.ca.keyType = v));
  ca?.set("name", text, (v) => (cfg.ca.name = v));
  ca?.set("organization", text, (v) => (cfg.ca.organization = v));
  const crl = top?.sub("crl", ["validity", "refresh_before"]);
  crl?.set("validity", duration(1), (v) => (cfg.crl.validity = v));
  crl?.set("refresh_before", duration(0), (v) => (cfg.crl.refreshBefore = v));
  const sc = top?.sub("server_certificate", ["validity", "renew_before"]);
  sc?.set("validity", duration(1), (v) => (cfg.serverCertificate.validity = v));
  sc?.set("renew_before", duration(0), (v) => (cfg.serverCertificate.renewBefore = v));
  top?.sub("sqlite", ["synchronous"])?.set("synchronous", oneOf(["full", "normal"] as const), (v) => (cfg.sqlite.synchronous = v));
  const im = top?.sub("imprint", ["mode", "profile", "challenge_window", "revoke_superseded", "allow_revoked_reenroll", "reenroll_revokes_previous"]);
  im?.set("mode", oneOf(["auto", "manual"] as const), (v) => (cfg.imprint.mode = v));
  im?.set("profile", text, (v) => (cfg.imprint.profile = v));
  im?.set("challenge_window", duration(0), (v) => (cfg.imprint.challengeWindow = v));
  im?.set("revoke_superseded", bool, (v) => (cfg.imprint.revokeSuperseded = v));
  im?.set("allow_revoked_reenroll", bool, (v) => (cfg.imprint.allowRevokedReenroll = v));
  im?.set("reenroll_revokes_previous", bool, (v) => (cfg.imprint.reenrollRevokesPrevious = v));
  readEst(top, cfg);
  readLiteboot(top, cfg);
  const wh = top?.sub("webhook", WEBHOOK_KEYS);
  wh?.set("url", webhookUrl, (v) => (cfg.webhook.url = v));
  wh?.set("secret_file", filePath, (v) => (cfg.webhook.secretFile = v));
  wh?.set("events", list(oneOf(["device.created"] as const), "list at least one event"), (v) => (cfg.webhook.events = v));
  wh?.set("max_attempts", int(1, 1000), (v) => (cfg.webhook.maxAttempts = v));
  wh?.set("timeout", duration(1), (v) => (cfg.webhook.timeout = v));
}

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

/** Reads `[listen]` or `[[listeners]]`; undefined when the file has neither (the default listener stays). */
function readListeners(ctx: Context, top: TableReader | undefined): ListenerConfig[] | undefined {
  const single = top?.sub("listen", LISTENER_KEYS);
  const many = top?.table["listeners"];
  if (single && many !== undefined) ctx.problem("listeners", "file", "use either [listen] or [[listeners]], not both");
  if (many === undefined) return single ? [readListener(ctx, single, 0)] : undefined;
  if (!Array.isArray(many) || many.length === 0 || !many.every(isTable)) {
    ctx.problem("listeners", "file", "expected one or more [[listeners]] tables");
    return undefined;
  }
  return many.map((t, i) => readListener(ctx, new TableReader(ctx, t, `listeners[${i}]`, LISTENER_KEYS, top!.base), i));
}

/** One listener table; the first may omit name ("main") and address (127.0.0.1:8443), later ones must set both. */
function readListener(ctx: Context, r: TableReader, index: number): ListenerConfig {
  const l = defaultListener();
  const name = r.get("name", listenerName);
  if (name !== undefined) l.name = name;
  else if (index > 0 && r.table["name"] === undefined) ctx.problem(r.key("name"), "file", "every listener after the first needs a name");
  const key = (k: string) => `listeners.${l.name}.${k}`;
  r.set("address", address, (v) => Object.assign(l, v), key("address"));
  if (index > 0 && r.table["address"] === undefined) ctx.problem(r.key("address"), "file", "every listener after the first needs an address");
  r.set("client_cert", oneOf(["none", "request", "require"] as const), (v) => (l.clientCert = v), key("client_cert"));
  r.set("client_ca_names", oneOf(["issuing", "none", "all"] as const), (v) => (l.clientCaNames = v), key("client_ca_names"));
  r.set("protocols", list(text, 'list at least one protocol, or ["*"] for all'), (v) => (l.protocols = v), key("protocols"));
  r.set("max_tls", oneOf(["1.2", "1.3"] as const), (v) => (l.maxTls = v), key("max_tls"));
  return l;
}

/** The built-in profiles with `[profiles.NAME]` applied: a built-in name overrides only the keys it sets; a new name starts from "device". */
function readProfiles(ctx: Context, top: TableReader | undefined): Record<string, ProfileConfig> {
  const profiles = defaultProfiles();
  const section = top?.sub("profiles", null);
  for (const [name, raw] of Object.entries(section?.table ?? {})) {
    const key = `profiles.${name}`;
    if (!NAME_RE.test(name)) ctx.problem(key, "file", "profile names use letters, digits, '-' and '_' only");
    else if (!isTable(raw)) ctx.problem(key, "file", `expected a table [profiles.${name}], got ${show(raw)}`);
    else {
      const basis = Object.hasOwn(profiles, name) ? profiles[name]! : defaultProfiles()["device"]!;
      profiles[name] = readProfile(ctx, new TableReader(ctx, raw, key, PROFILE_KEYS, section!.base), basis);
    }
  }
  return profiles;
}

function readProfile(ctx: Context, r: TableReader, basis: ProfileConfig): ProfileConfig {
  const p = cloneProfile(basis);
  r.set("validity", duration(1), (v) => (p.validity = v));
  r.set("backdate", duration(0), (v) => (p.backdate = v));
  r.set("key_usage", list(oneOf(KEY_USAGES)), (v) => (p.keyUsage = v));
  r.set("ext_key_usage", list(extKeyUsage), (v) => (p.extKeyUsage = v));
  r.set("basic_constraints", bool, (v) => (p.basicConstraints = v));
  r.set("subject_key_identifier", bool, (v) => (p.subjectKeyIdentifier = v));
  r.set("authority_key_identifier", bool, (v) => (p.authorityKeyIdentifier = v));
  r.set("subject", oneOf(["csr", "request"] as const), (v) => (p.subject = v));
  r.set("sans", oneOf(["csr", "request", "none"] as const), (v) => (p.sans = v));
  r.set("min_rsa_bits", int(1024, 16384), (v) => (p.minRsaBits = v));
  r.set("ec_curves", list(oneOf(EC_CURVES)), (v) => (p.ecCurves = v));
  r.set("allow_ed25519", bool, (v) => (p.allowEd25519 = v));
  r.set("allow_rsa", bool, (v) => (p.allowRsa = v));
  const kind = r.get("serial", oneOf(["random", "int64"] as const)) ?? p.serial.kind;
  const bytes = r.get("serial_bytes", int(8, 20));
  if (kind === "int64" && bytes !== undefined) ctx.problem(r.key("serial_bytes"), "file", 'serial_bytes only applies to serial = "random"');
  else if (r.table["serial"] !== undefined || bytes !== undefined) {
    const inherited = p.serial.kind === "random" ? (p.serial.bytes ?? 16) : 16;
    p.serial = kind === "int64" ? { kind } : { kind, bytes: bytes ?? inherited };
    ctx.sources[r.key("serial")] = "file";
  }
  if (p.backdate >= p.validity) {
    const blame = r.table["validity"] !== undefined ? "validity" : "backdate";
    ctx.problem(r.key(blame), "file", `backdate (${formatDuration(p.backdate)}) must be shorter than validity (${formatDuration(p.validity)})`);
  }
  if (!p.allowRsa && !p.allowEd25519 && p.ecCurves.length === 0) {
    ctx.problem(r.prefix, "file", "accepts no key type: allow RSA or Ed25519, or list an EC curve");
  }
  return p;
}

/** Checks that involve more than one setting. */
function crossCheck(ctx: Context, cfg: TesseraConfig): void {
  if (!Object.hasOwn(cfg.profiles, cfg.defaultProfile)) {
    const names = Object.keys(cfg.profiles);
    ctx.problem("default_profile", "config", `no profile named ${JSON.stringify(cfg.defaultProfile)} (profiles: ${names.join(", ")})${hint(cfg.defaultProfile, names)}`);
  }
  if (!Object.hasOwn(cfg.profiles, cfg.imprint.profile)) {
    ctx.problem("imprint.profile", "config", `no profile named ${JSON.stringify(cfg.imprint.profile)}${hint(cfg.imprint.profile, Object.keys(cfg.profiles))}`);
  }
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
  if (!Object.hasOwn(cfg.profiles, cfg.liteboot.profile)) {
    ctx.problem("liteboot.profile", "config", `no profile named ${JSON.stringify(cfg.liteboot.profile)}${hint(cfg.liteboot.profile, Object.keys(cfg.profiles))}`);
  }
  if (cfg.webhook.url !== null && cfg.webhook.secretFile === null) ctx.problem("webhook.secret_file", "config", "a webhook needs secret_file (the HMAC key that signs deliveries)");
  if (cfg.webhook.secretFile !== null && !existsSync(cfg.webhook.secretFile)) ctx.problem("webhook.secret_file", "config", `${cfg.webhook.secretFile} does not exist`);
  if (cfg.crl.refreshBefore >= cfg.crl.validity) ctx.problem("crl.refresh_before", "config", "must be shorter than crl.validity");
  if (cfg.serverCertificate.renewBefore >= cfg.serverCertificate.validity) {
    ctx.problem("server_certificate.renew_before", "config", "must be shorter than server_certificate.validity");
  }
  const bound: Array<{ key: string; label: string; at: Address }> = [];
  const seen = new Set<string>();
  for (const l of cfg.listeners) {
    if (seen.has(l.name)) ctx.problem(`listeners.${l.name}`, "config", `listener name ${JSON.stringify(l.name)} is used more than once`);
    seen.add(l.name);
    bound.push({ key: `listeners.${l.name}.address`, label: `listener "${l.name}"`, at: l });
  }
  if (cfg.httpListen) bound.push({ key: "http_listen", label: "http_listen", at: cfg.httpListen });
  if (cfg.liteboot.listen) bound.push({ key: "liteboot.listen", label: "liteboot.listen", at: cfg.liteboot.listen });
  if (cfg.liteboot.mtlsListen) bound.push({ key: "liteboot.mtls_listen", label: "liteboot.mtls_listen", at: cfg.liteboot.mtlsListen });
  const wildcard = (h: string) => h === "0.0.0.0" || h === "::";
  for (const [i, b] of bound.entries()) {
    // Port 0 means "any free port", so it never collides; a wildcard host collides with every host on its port.
    const other = bound.slice(0, i).find((a) => b.at.port !== 0 && a.at.port === b.at.port
      && (a.at.host === b.at.host || wildcard(a.at.host) || wildcard(b.at.host)));
    if (other) ctx.problem(b.key, "config", `${formatAddress(b.at)} is already used by ${other.label} (${formatAddress(other.at)})`);
  }
}

/** Every setting in `cfg` mapped to its source, "default" unless a layer set it. */
function sourcesOf(cfg: TesseraConfig, set: Record<string, Source>): Record<string, string> {
  const keys = ["data_dir", "hostname", "database_url", "ca_passphrase_file", "http_listen", "body_limit", "log_level", "default_profile",
    "issuance_batch_max", "ca.key_type", "ca.name", "ca.organization", "crl.validity", "crl.refresh_before",
    "server_certificate.validity", "server_certificate.renew_before", "sqlite.synchronous", "imprint.mode", "imprint.profile",
    "imprint.challenge_window", "imprint.revoke_superseded", "imprint.allow_revoked_reenroll", "imprint.reenroll_revokes_previous"];
  for (const l of cfg.listeners) for (const k of LISTENER_KEYS.slice(1)) keys.push(`listeners.${l.name}.${k}`);
  for (const k of EST_LABEL_KEYS) keys.push(`est.${k}`);
  for (const k of LITEBOOT_KEYS) if (k !== "ccs") keys.push(`liteboot.${k}`);
  for (const k of WEBHOOK_KEYS) keys.push(`webhook.${k}`);
  for (const name of Object.keys(cfg.est.labels)) for (const k of EST_LABEL_KEYS) keys.push(`est.labels.${name}.${k}`);
  for (const name of Object.keys(cfg.profiles)) for (const k of PROFILE_KEYS) if (k !== "serial_bytes") keys.push(`profiles.${name}.${k}`);
  return Object.fromEntries(keys.map((k) => [k, set[k] ?? "default"]));
}

/** The machine's name if it is a valid DNS name, else "localhost" (a name like "my_laptop" makes a bad certificate SAN). */
function systemHostname(opts: LoadConfigOptions): string {
  let name: string | undefined;
  try {
    name = opts.systemHostname()?.trim().toLowerCase();
  } catch {} // no name: fall back
  return name && validHost(name) ? name : "localhost";
}
