/**
 * `tessera-agent caramel`: the Caramel client (spec caramel.md §6) on the
 * command line, in two modes.
 *
 * Administered host (default), the Rust client's behaviour with its gaps
 * closed: DIR/<id>.key (0600, made once), DIR/<id>.csr, the CA file
 * (downloaded once when absent), polling with backoff until signed or
 * --timeout, DIR/<id>.crt replaced atomically. Exit 0 or 1 (2 for usage).
 *
 * Embedded (--embedded), the Rust README's "embedded client" that 1.1.1 never
 * implemented: one request round, never a wait; key and certificate in one
 * PEM file; a lock next to it; a rejected request replaced by a new key and
 * request at once; exit 0, 1 (locked), 69 (pending) or 127 (anything else).
 */
import type * as crypto from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import {
  certificatePublicKey, exportPrivateKey, formatName, generateKeyPair, importPrivateKey, keysMatch, parseCertificate, parseKeyType, pemDecodeAll,
  pemEncode, type KeyType, type ParsedCertificate,
} from "@tessera/pki";
import { acquireFileLock, DEFAULT_LOCK_MAX_AGE_MS } from "../keystore/file-lock.js";
import { createNewFile, readOptional, writeFileAtomic } from "../keystore/atomic-file.js";
import { CARAMEL_CLIENT_VERSION, CaramelClient, DEFAULT_CARAMEL_TIMEOUT_MS, formatMs, type CaramelPollResult } from "../protocols/caramel/client.js";
import { DEFAULT_CARAMEL_KEY_TYPE } from "../protocols/caramel/enroll.js";
import { CaramelError } from "../protocols/caramel/errors.js";
import {
  buildCaramelCsr, caramelSubject, clientIdProblems, commonName, csrMatchesKey, readCaramelCa, readCaramelCsr, type CaramelCa, type CaramelCsr,
} from "../protocols/caramel/request.js";
import { caramelBaseUrl, userAgentWithId } from "../protocols/caramel/wire.js";
import { EXIT, exitCodeName, UsageError, type AgentIo } from "./output.js";
import { parseDuration, str, type Invocation, type OptionName } from "./options.js";
import type { Command } from "./shared.js";

/** Exit codes of `caramel --embedded` (the Rust README's contract): nothing else is ever returned. */
export const EMBEDDED_EXIT = { ok: EXIT.ok, locked: EXIT.failure, pending: EXIT.embeddedPending, error: EXIT.embeddedError } as const;

/** The agent's User-Agent product; the client id follows as a comment. */
export const CARAMEL_AGENT_PRODUCT = `tessera-agent-caramel/${CARAMEL_CLIENT_VERSION}`;

const KEY_MODE = 0o600;
const PUBLIC_MODE = 0o644;

/** True when `argv` runs `caramel --embedded`: then a usage error exits 127 too (main.ts). */
export function isEmbeddedCaramel(argv: readonly string[]): boolean {
  return argv.includes("--embedded") && argv.includes("caramel");
}

/** Everything both modes read from the command line and the environment. */
interface Settings {
  /** The server as given (host[:port] or URL) and its base URL. */
  server: string;
  baseUrl: string;
  id: string;
  dir: string;
  /** --ca or TESSERA_CA, if given. */
  caFile: string | undefined;
  keyType: KeyType;
  /** --timeout in ms: undefined when not given; 0 means "forever". */
  timeoutMs: number | undefined;
}

function settings(inv: Invocation): Settings {
  const server = str(inv, "server") ?? inv.env.TESSERA_SERVER;
  if (!server) throw new UsageError("no server: give --server HOST[:PORT] or set TESSERA_SERVER");
  let baseUrl: string;
  try {
    baseUrl = caramelBaseUrl(server);
  } catch (err) {
    throw new UsageError(`--${(err as Error).message}`);
  }
  const id = str(inv, "id") ?? inv.env.TESSERA_CN;
  if (!id) throw new UsageError("no client id: give --id CLIENT_ID or set TESSERA_CN");
  const problems = clientIdProblems(id);
  // The id names files (DIR/<id>.key…): it must be one path component.
  if (/[/\\]/.test(id) || id === "." || id === "..") problems.push("clientId must not contain '/' or '\\' or be '.' or '..' (it names files)");
  if (problems.length > 0) throw new UsageError(`--id: ${problems.map((p) => p.replace(/^clientId /, "")).join("; ")}`);
  const dir = str(inv, "dir") ?? (inv.env.TESSERA_CERT_DIR || ".");
  if (dir === "") throw new UsageError("--dir must not be empty");
  const caFile = str(inv, "ca") ?? (inv.env.TESSERA_CA || undefined);
  if (caFile === "") throw new UsageError("--ca must not be empty");
  const kt = str(inv, "key-type");
  let keyType = DEFAULT_CARAMEL_KEY_TYPE;
  if (kt !== undefined) {
    try {
      keyType = parseKeyType(kt);
    } catch {
      throw new UsageError(`--key-type: '${kt}' is not a key type (rsa-2048, ec-p256, …)`);
    }
  }
  const t = str(inv, "timeout");
  const timeoutMs = t === undefined ? undefined : /^0+(ms|s|m|h|d)?$/.test(t.trim()) ? 0 : parseDuration(t, "timeout");
  return { server, baseUrl, id, dir, caFile, keyType, timeoutMs };
}

/** The reason to show for a file-system error. */
function fsReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message;
}

async function readKey(file: string): Promise<crypto.KeyObject | undefined> {
  const data = await readOptional(file);
  if (data === undefined) return undefined;
  try {
    return importPrivateKey(data.toString("latin1"));
  } catch (err) {
    throw new CaramelAgentError(`${file} holds no usable private key (${(err as Error).message}): move it away to make a new one`);
  }
}

/** A failure of the command that is not the server's (a damaged file…): exit 1, or 127 embedded. */
class CaramelAgentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CaramelAgentError";
  }
}

/** A certificate in `pem` that is ours and may be presented: for our key and valid now. */
function usableCertificate(cert: ParsedCertificate | undefined, key: crypto.KeyObject, now = new Date()): boolean {
  return cert !== undefined && now >= cert.notBefore && now <= cert.notAfter && keysMatch(key, certificatePublicKey(cert));
}

function describe(cert: ParsedCertificate): Record<string, unknown> {
  return { subject: formatName(cert.subject), serial: cert.serialHex, notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString() };
}

/** What a successful run prints. */
function reportDone(io: AgentIo, doc: { status: "signed" | "unchanged"; id: string; file: string; sha256: string; certificate: ParsedCertificate; posted: boolean }): void {
  if (io.json) {
    io.out(JSON.stringify({ status: doc.status, id: doc.id, file: doc.file, sha256: doc.sha256, posted: doc.posted, ...describe(doc.certificate) }));
    return;
  }
  const c = doc.certificate;
  io.out(doc.status === "signed" ? `Certificate for ${doc.id} written to ${doc.file}` : `Certificate for ${doc.id} unchanged in ${doc.file}`);
  io.out(`  subject:      ${formatName(c.subject)}`);
  io.out(`  serial:       ${c.serialHex}`);
  io.out(`  valid until:  ${c.notAfter.toISOString()}`);
}

/** Prints an error as the agent does (JSON with --json) and returns `code`. */
function reportFailure(io: AgentIo, err: unknown, code: number): number {
  const message = err instanceof Error ? err.message.trimEnd() : String(err);
  if (io.json) {
    const e: Record<string, unknown> = { code: exitCodeName(code), message };
    if (err instanceof CaramelError) {
      e.kind = err.kind;
      if (err.status !== undefined) e.status = err.status;
      if (err.detail !== undefined) e.detail = err.detail;
      if (err.sha256 !== undefined) e.sha256 = err.sha256;
      if (err.causeCode !== undefined) e.causeCode = err.causeCode;
    } else if (err instanceof UsageError) {
      e.kind = "usage";
    }
    io.out(JSON.stringify({ error: e }));
  } else {
    io.err(`tessera-agent: ${message}`);
    if (err instanceof UsageError) io.err("Run 'tessera-agent caramel --help' for usage.");
  }
  return code;
}

/** The message of a CaramelError in terms of the files involved. */
function explain(err: CaramelError, files: { csr: string; key: string }): string {
  switch (err.kind) {
    case "rejected":
      return `the server rejected the request in ${files.csr} (HTTP 403): delete ${files.csr} and ${files.key} to request a new certificate`;
    case "refused":
      return `the server refused the request in ${files.csr} (HTTP ${err.status}): ${err.detail ?? err.message.replace(/^.*?: /, "")}`;
    case "pending":
      return `${err.message.replace(/the request [0-9a-f]{64}/, `the request in ${files.csr}`)}; an operator must sign it`;
    default:
      return err.message;
  }
}

// ---------------------------------------------------------------- administered host

async function administered(inv: Invocation, s: Settings): Promise<number> {
  const base = path.join(s.dir, s.id);
  const files = { key: `${base}.key`, csr: `${base}.csr`, crt: `${base}.crt` };
  const caFile = s.caFile ?? path.join(s.dir, "certs", `${new URL(s.baseUrl).host}.cacert`);
  const userAgent = userAgentWithId(CARAMEL_AGENT_PRODUCT, s.id);

  // 1. The key: made once (create-new, 0600), never replaced by this mode.
  let key = await readKey(files.key);
  if (!key) {
    key = generateKeyPair(s.keyType).privateKey;
    await createNewFile(files.key, exportPrivateKey(key), { mode: KEY_MODE });
  }

  // 2. The CA: the file, else downloaded once over the public roots (never trusted on first use).
  let ca: CaramelCa;
  const caData = await readOptional(caFile);
  if (caData !== undefined) {
    try {
      ca = readCaramelCa(caData);
    } catch (err) {
      throw new CaramelAgentError(`${caFile}: ${(err as Error).message}`);
    }
  } else {
    ca = await CaramelClient.fetchRootCertificate({ server: s.server, userAgent, timeoutMs: DEFAULT_CARAMEL_TIMEOUT_MS });
    await writeFileAtomic(caFile, ca.pem, { mode: PUBLIC_MODE });
  }

  // 3. The request: made once; an existing one must be ours (the hash of its exact bytes names it on the server).
  let csr: CaramelCsr;
  const csrData = await readOptional(files.csr);
  if (csrData !== undefined) {
    try {
      csr = readCaramelCsr(csrData);
    } catch (err) {
      throw new CaramelAgentError(`${files.csr}: ${(err as Error).message}; delete it to make a new one`);
    }
    if (!csrMatchesKey(csr, key)) throw new CaramelAgentError(`${files.csr} was not made with ${files.key}: delete it to make a new one`);
    if (commonName(csr.parsed.subject) !== s.id) throw new CaramelAgentError(`${files.csr} is not for client id ${s.id}: delete it to make a new one`);
  } else {
    csr = buildCsr(key, ca, s.id);
    await createNewFile(files.csr, csr.pem, { mode: PUBLIC_MODE });
  }

  // 4. The certificate held now: presented while valid, and its mtime sent as If-Modified-Since.
  const current = await currentCertificate(files.crt);
  const present = current && usableCertificate(current.certificate, key);
  const client = new CaramelClient({
    server: s.server, caCert: ca.pem, clientId: s.id, userAgent,
    ...(present ? { clientCertificate: { cert: current.pem, key: exportPrivateKey(key) } } : {}),
  });

  // 5. Poll until signed (or --timeout), posting the request when the server does not know it.
  let told = false;
  const r = await client.ensure({
    csr,
    ...(current ? { current: { certificatePem: current.pem, lastModified: current.mtime } } : {}),
    maxWaitMs: s.timeoutMs ? s.timeoutMs : Infinity,
    ...(inv.io.sleep ? { sleep: (ms: number) => inv.io.sleep!(ms) } : {}),
    onWait: (e) => {
      if (told || inv.io.json) return;
      told = true;
      inv.io.err(`Request ${e.sha256} (${files.csr}) is pending: waiting for an operator to sign it${s.timeoutMs ? ` (at most ${formatMs(s.timeoutMs)})` : ""}`);
    },
  }).catch((err: unknown) => {
    if (!(err instanceof CaramelError)) throw err;
    throw new CaramelError(err.kind, explain(err, files), {
      cause: err, ...(err.status !== undefined ? { status: err.status } : {}), ...(err.detail !== undefined ? { detail: err.detail } : {}),
      ...(err.sha256 !== undefined ? { sha256: err.sha256 } : {}), ...(err.causeCode !== undefined ? { causeCode: err.causeCode } : {}),
    });
  });

  // 6. Written only when it changed; mtime = Last-Modified, for the next If-Modified-Since.
  if (r.state === "signed") {
    await writeFileAtomic(files.crt, r.certificatePem, { mode: PUBLIC_MODE, ...(r.lastModified ? { mtime: r.lastModified } : {}) });
  }
  reportDone(inv.io, { status: r.state, id: s.id, file: files.crt, sha256: r.sha256, certificate: r.certificate, posted: r.posted });
  return EXIT.ok;
}

function buildCsr(key: crypto.KeyObject, ca: CaramelCa, id: string): CaramelCsr {
  return buildCaramelCsr(key, ca.certificate, id);
}

async function currentCertificate(file: string): Promise<{ pem: string; certificate: ParsedCertificate; mtime: Date } | undefined> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch {
    return undefined;
  }
  const data = await readOptional(file);
  if (data === undefined) return undefined;
  try {
    const certificate = parseCertificate(data.toString("latin1"));
    return { pem: pemEncode("CERTIFICATE", certificate.der), certificate, mtime: stat.mtime };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- embedded

/** --mode: octal permission bits (default 0600). */
function fileMode(inv: Invocation): number {
  const m = str(inv, "mode");
  if (m === undefined) return KEY_MODE;
  if (!/^0?[0-7]{3}$/.test(m.trim())) throw new UsageError(`--mode: '${m}' is not octal permission bits such as 0600 or 640`);
  return parseInt(m.trim(), 8);
}

/** --owner UID[:GID], numeric. */
function fileOwner(inv: Invocation): { uid?: number; gid?: number } {
  const o = str(inv, "owner");
  if (o === undefined) return {};
  const m = /^(\d+)(?::(\d+))?$/.exec(o.trim());
  if (!m) throw new UsageError(`--owner: '${o}' is not UID or UID:GID (numbers)`);
  return { uid: Number(m[1]), ...(m[2] !== undefined ? { gid: Number(m[2]) } : {}) };
}

/** The embedded identity file: a private key, then (once signed) its certificate. */
interface PemFile {
  key: crypto.KeyObject | undefined;
  certificate: ParsedCertificate | undefined;
  mtime: Date | undefined;
}

async function readPemFile(file: string): Promise<PemFile> {
  const data = await readOptional(file);
  if (data === undefined || data.toString("latin1").trim() === "") return { key: undefined, certificate: undefined, mtime: undefined };
  const text = data.toString("latin1");
  let key: crypto.KeyObject | undefined;
  let certificate: ParsedCertificate | undefined;
  try {
    const blocks = pemDecodeAll(text);
    const keyBlock = blocks.find((b) => /PRIVATE KEY$/.test(b.label));
    if (!keyBlock) throw new Error("no PEM private key");
    key = importPrivateKey(pemEncode(keyBlock.label, keyBlock.der));
    const certBlock = blocks.find((b) => b.label === "CERTIFICATE");
    certificate = certBlock ? parseCertificate(certBlock.der) : undefined;
  } catch (err) {
    throw new CaramelAgentError(`${file} is not a private key (and certificate) PEM file (${(err as Error).message}): move it away to start over`);
  }
  const mtime = (await fs.stat(file)).mtime;
  // A certificate for another key (left from before a rekey) is not ours.
  if (certificate && !keysMatch(key, certificatePublicKey(certificate))) certificate = undefined;
  return { key, certificate, mtime };
}

async function embedded(inv: Invocation, s: Settings): Promise<number> {
  if (s.caFile === undefined) throw new UsageError("--embedded needs the CA certificate file: give --ca FILE or set TESSERA_CA (it is never downloaded)");
  const mode = fileMode(inv);
  const owner = fileOwner(inv);
  const pemFile = str(inv, "pem") ?? path.join(s.dir, `${s.id}.pem`);
  if (pemFile === "") throw new UsageError("--pem must not be empty");
  const csrFile = `${pemFile.replace(/\.pem$/i, "")}.csr`;
  const lockFile = `${pemFile}.lock`;
  const requestTimeoutMs = s.timeoutMs || DEFAULT_CARAMEL_TIMEOUT_MS;

  const caData = await readOptional(s.caFile).catch((err: unknown) => {
    throw new CaramelAgentError(`cannot read the CA certificate ${s.caFile}: ${fsReason(err)}`);
  });
  if (caData === undefined) throw new CaramelAgentError(`the CA certificate ${s.caFile} does not exist (--embedded never downloads it)`);
  let ca: CaramelCa;
  try {
    ca = readCaramelCa(caData);
  } catch (err) {
    throw new CaramelAgentError(`${s.caFile}: ${(err as Error).message}`);
  }

  await fs.mkdir(path.dirname(pemFile), { recursive: true, mode: 0o755 });
  // A run makes at most three requests (GET, POST, GET); the lock must outlive the longest run, key generation included.
  const lock = await acquireFileLock(lockFile, { maxAgeMs: Math.max(DEFAULT_LOCK_MAX_AGE_MS, 4 * requestTimeoutMs) });
  if (!lock) {
    if (inv.io.json) inv.io.out(JSON.stringify({ status: "locked", id: s.id, lock: lockFile }));
    else inv.io.err(`tessera-agent: another run holds the lock ${lockFile}`);
    return EMBEDDED_EXIT.locked;
  }
  try {
    const write = (key: crypto.KeyObject, cert?: { pem: string; lastModified?: Date }) =>
      writeFileAtomic(pemFile, exportPrivateKey(key) + (cert?.pem ?? ""), { mode, ...owner, ...(cert?.lastModified ? { mtime: cert.lastModified } : {}) });
    const freshKey = async (): Promise<crypto.KeyObject> => {
      const key = generateKeyPair(s.keyType).privateKey;
      await fs.rm(csrFile, { force: true });
      await write(key);
      return key;
    };
    const stored = await readPemFile(pemFile);
    let key = stored.key ?? (await freshKey());
    let held = stored.key ? stored.certificate : undefined;

    // The request: reused while it is this key's and this CA's (its bytes name it), else made anew.
    const wanted = caramelSubject(ca.certificate.subject, s.id);
    const csrFor = async (k: crypto.KeyObject): Promise<CaramelCsr> => {
      const data = await readOptional(csrFile);
      if (data !== undefined) {
        try {
          const csr = readCaramelCsr(data);
          if (csrMatchesKey(csr, k) && csr.parsed.subject.equals(wanted)) return csr;
        } catch {
          // not canonical, not ours: replaced below
        }
      }
      const csr = buildCsr(k, ca, s.id);
      await writeFileAtomic(csrFile, csr.pem, { mode: PUBLIC_MODE, ...owner });
      return csr;
    };
    let csr = await csrFor(key);

    const clientFor = (k: crypto.KeyObject, cert: ParsedCertificate | undefined) => new CaramelClient({
      server: s.server, caCert: ca.pem, clientId: s.id, userAgent: userAgentWithId(CARAMEL_AGENT_PRODUCT, s.id), timeoutMs: requestTimeoutMs,
      ...(cert && usableCertificate(cert, k) ? { clientCertificate: { cert: pemEncode("CERTIFICATE", cert.der), key: exportPrivateKey(k) } } : {}),
    });
    let client = clientFor(key, held);
    let posted = false;
    let rekeyed = false;

    const signed = async (r: Extract<CaramelPollResult, { state: "signed" }>): Promise<number> => {
      const unchanged = held !== undefined && held.der.equals(r.certificate.der);
      if (!unchanged) await write(key, { pem: r.certificatePem, ...(r.lastModified ? { lastModified: r.lastModified } : {}) });
      reportDone(inv.io, { status: unchanged ? "unchanged" : "signed", id: s.id, file: pemFile, sha256: csr.sha256, certificate: r.certificate, posted });
      return EMBEDDED_EXIT.ok;
    };
    const pending = (): number => {
      if (inv.io.json) inv.io.out(JSON.stringify({ status: "pending", id: s.id, sha256: csr.sha256, csr: csrFile, posted, rekeyed }));
      else inv.io.out(`Request ${csr.sha256} (${csrFile}) for ${s.id} is pending${rekeyed ? " (new key: the previous request was rejected)" : ""}; run again later`);
      return EMBEDDED_EXIT.pending;
    };
    // After a POST, one more GET: Tessera signs at once for a device presenting its current certificate.
    const postThenLook = async (): Promise<number> => {
      try {
        await client.submit(csr);
      } catch (err) {
        if (!(err instanceof CaramelError && err.kind === "refused" && err.detail === "duplicate request")) throw err;
      }
      posted = true;
      const again = await client.poll(csr);
      if (again.state === "signed") return signed(again);
      if (again.state === "pending" || again.state === "unchanged") return pending();
      throw new CaramelError("protocol", `the server answered "${again.state}" for the request ${csr.sha256} right after it was posted`, { sha256: csr.sha256 });
    };

    const r = await client.poll(csr, held ? { ifModifiedSince: stored.mtime! } : {});
    switch (r.state) {
      case "signed":
        return await signed(r);
      case "unchanged":
        if (held) {
          reportDone(inv.io, { status: "unchanged", id: s.id, file: pemFile, sha256: csr.sha256, certificate: held, posted });
          return EMBEDDED_EXIT.ok;
        }
        return pending();
      case "pending":
        return pending();
      case "unknown":
        return await postThenLook();
      case "rejected": {
        // Rejected for good (spec §3: no un-reject): wipe key and request, start over with new ones in this run.
        if (!inv.io.json) inv.io.err(`Request ${csr.sha256} was rejected: replacing the key in ${pemFile} and the request ${csrFile}`);
        key = await freshKey();
        held = undefined;
        csr = await csrFor(key);
        client = clientFor(key, undefined);
        rekeyed = true;
        return await postThenLook();
      }
    }
  } finally {
    await lock.release();
  }
}

// ---------------------------------------------------------------- the command

/** `tessera-agent caramel`: parses the settings, runs one mode, maps every failure to that mode's exit code. */
export const caramel: Command = async (inv) => {
  const isEmbedded = inv.flags.embedded === true;
  try {
    if (!isEmbedded) {
      for (const o of ["pem", "owner", "mode"] as const) if (inv.flags[o] !== undefined) throw new UsageError(`--${o} needs --embedded`);
    }
    const s = settings(inv);
    return isEmbedded ? await embedded(inv, s) : await administered(inv, s);
  } catch (err) {
    if (err instanceof UsageError) return reportFailure(inv.io, err, isEmbedded ? EMBEDDED_EXIT.error : EXIT.usage);
    if (err instanceof CaramelError || err instanceof CaramelAgentError) return reportFailure(inv.io, err, isEmbedded ? EMBEDDED_EXIT.error : EXIT.failure);
    const e = err as NodeJS.ErrnoException;
    if (typeof e?.code === "string" && typeof e.syscall === "string") {
      // File-system failures (EACCES, ENOSPC, EPERM from --owner…): one line, not a stack.
      return reportFailure(inv.io, new Error(`${e.syscall}${e.path ? ` ${e.path}` : ""} failed: ${e.code}`), isEmbedded ? EMBEDDED_EXIT.error : EXIT.failure);
    }
    if (isEmbedded) {
      reportFailure(inv.io, err, EMBEDDED_EXIT.error);
      if (!inv.io.json && err instanceof Error && err.stack) inv.io.err(err.stack);
      return EMBEDDED_EXIT.error;
    }
    throw err;
  }
};

/** Options of `caramel` (besides --json and --help). */
export const CARAMEL_OPTIONS: readonly OptionName[] = ["server", "id", "dir", "ca", "timeout", "key-type", "embedded", "pem", "owner", "mode"];

/** The caramel command for the command table. */
export const CARAMEL_COMMANDS: Record<string, { run: Command; options: readonly OptionName[] }> = {
  caramel: { run: caramel, options: CARAMEL_OPTIONS },
};
