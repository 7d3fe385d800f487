/**
 * What both modes of `tessera-agent caramel` share: settings from flags and
 * environment, key and certificate files, CSR building, and how results and
 * failures are reported.
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

export const KEY_MODE = 0o600;
export const PUBLIC_MODE = 0o644;

/** True when `argv` runs `caramel --embedded`: then a usage error exits 127 too (main.ts). */
export function isEmbeddedCaramel(argv: readonly string[]): boolean {
  return argv.includes("--embedded") && argv.includes("caramel");
}

/** Everything both modes read from the command line and the environment. */
export interface Settings {
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

export function settings(inv: Invocation): Settings {
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
export function fsReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message;
}

export async function readKey(file: string): Promise<crypto.KeyObject | undefined> {
  const data = await readOptional(file);
  if (data === undefined) return undefined;
  try {
    return importPrivateKey(data.toString("latin1"));
  } catch (err) {
    throw new CaramelAgentError(`${file} holds no usable private key (${(err as Error).message}): move it away to make a new one`);
  }
}

/** A failure of the command that is not the server's (a damaged file…): exit 1, or 127 embedded. */
export class CaramelAgentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CaramelAgentError";
  }
}

/** A certificate in `pem` that is ours and may be presented: for our key and valid now. */
export function usableCertificate(cert: ParsedCertificate | undefined, key: crypto.KeyObject, now = new Date()): boolean {
  return cert !== undefined && now >= cert.notBefore && now <= cert.notAfter && keysMatch(key, certificatePublicKey(cert));
}

export function describe(cert: ParsedCertificate): Record<string, unknown> {
  return { subject: formatName(cert.subject), serial: cert.serialHex, notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString() };
}

/** What a successful run prints. */
export function reportDone(io: AgentIo, doc: { status: "signed" | "unchanged"; id: string; file: string; sha256: string; certificate: ParsedCertificate; posted: boolean }): void {
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
export function reportFailure(io: AgentIo, err: unknown, code: number): number {
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
export function explain(err: CaramelError, files: { csr: string; key: string }): string {
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


export function buildCsr(key: crypto.KeyObject, ca: CaramelCa, id: string): CaramelCsr {
  return buildCaramelCsr(key, ca.certificate, id);
}

export async function currentCertificate(file: string): Promise<{ pem: string; certificate: ParsedCertificate; mtime: Date } | undefined> {
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
