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
import { formatDuration } from "./duration.js";
import { Address, Parser, Table, address, bool, byteSize, databaseUrl, duration, extKeyUsage, filePath, formatAddress, hint, hostname, httpListen, int, isTable, list, listenerName, oneOf, show, text, validHost } from "./values.js";
import type { ListenerConfig, ProfileConfig, TesseraConfig } from "./types.js";
import { Context, TableReader, type Source } from "./table-reader.js";
import { crossCheckProtocols, protocolSettingKeys, readProtocolSections } from "./protocol-sections.js";

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
  /** Parsed flags by kebab-case name: config, data-dir, listen, http-listen, hostname, database-url, ca-passphrase-file, log-level, workers. Others are ignored. */
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

type Candidate<T> = { value: T; source: Source } | undefined;
/** Checks one raw value (TOML value or env/flag string): returns it converted, or reports and returns undefined. `base` resolves relative paths. */

const TOP_KEYS = ["data_dir", "hostname", "database_url", "ca_passphrase_file", "listen", "listeners", "http_listen", "body_limit",
  "log_level", "default_profile", "issuance_batch_max", "server", "ca", "crl", "server_certificate", "sqlite", "profiles", "imprint", "est", "liteboot", "caramel", "mainflux", "revocation", "webhook"];
const LISTENER_KEYS = ["name", "address", "client_cert", "client_ca_names", "protocols", "max_tls"];
const PROFILE_KEYS = ["validity", "backdate", "key_usage", "ext_key_usage", "basic_constraints", "subject_key_identifier",
  "authority_key_identifier", "serial", "serial_bytes", "subject", "sans", "min_rsa_bits", "ec_curves", "allow_ed25519", "allow_rsa", "issuer"];
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const satisfies readonly TesseraConfig["logLevel"][];
// A Record keyed by KeyUsage makes the compiler flag a usage added to the pki type but missing here.
const KEY_USAGES = Object.keys({ digitalSignature: 1, nonRepudiation: 1, keyEncipherment: 1, dataEncipherment: 1, keyAgreement: 1,
  keyCertSign: 1, cRLSign: 1, encipherOnly: 1, decipherOnly: 1 } satisfies Record<KeyUsage, 1>) as KeyUsage[];
const EC_CURVES = ["P-256", "P-384", "P-521", "P-224"];
/** TESSERA_WORKERS, --workers (`[server] workers` in the file): processes for `tessera serve`, a whole number 1–256 given as text. */
const workerCount: Parser<number> = (raw, report, base) => int(1, 256)(typeof raw === "string" && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw, report, base);
/** Listener and profile names end up in dotted keys, logs and URLs; keep them plain. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

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
  const fileWorkers = top?.sub("server", ["workers"])?.get("workers", int(1, 256));
  cfg.workers = first("server.workers", fromFlag("workers", "server.workers", workerCount), fromEnv("TESSERA_WORKERS", "server.workers", workerCount),
    fileWorkers === undefined ? undefined : { value: fileWorkers, source: "file" }) ?? cfg.workers;
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
  readProtocolSections(top, cfg);
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
  r.set("issuer", oneOf(["issuing", "root"] as const), (v) => (p.issuer = v));
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
  crossCheckProtocols(ctx, cfg);
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
    "issuance_batch_max", "server.workers", "ca.key_type", "ca.name", "ca.organization", "crl.validity", "crl.refresh_before",
    "server_certificate.validity", "server_certificate.renew_before", "sqlite.synchronous", "imprint.mode", "imprint.profile",
    "imprint.challenge_window", "imprint.revoke_superseded", "imprint.allow_revoked_reenroll", "imprint.reenroll_revokes_previous"];
  for (const l of cfg.listeners) for (const k of LISTENER_KEYS.slice(1)) keys.push(`listeners.${l.name}.${k}`);
  keys.push(...protocolSettingKeys(cfg));
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
