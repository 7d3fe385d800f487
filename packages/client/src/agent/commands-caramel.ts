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

import { CaramelAgentError, EMBEDDED_EXIT, CARAMEL_AGENT_PRODUCT, KEY_MODE, PUBLIC_MODE, isEmbeddedCaramel, type Settings, settings, fsReason, readKey, usableCertificate, describe, reportDone, reportFailure, explain, buildCsr, currentCertificate } from "./caramel-shared.js";
import { embedded } from "./commands-caramel-embedded.js";

export { CARAMEL_AGENT_PRODUCT, EMBEDDED_EXIT, isEmbeddedCaramel } from "./caramel-shared.js";

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
