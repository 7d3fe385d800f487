/**
 * `tessera-agent caramel --embedded`: the Rust README's "embedded client"
 * that 1.1.1 never implemented. One request round, never a wait; key and
 * certificate in one PEM file; a lock next to it; a rejected request replaced
 * by a new key and request at once; exit 0, 1 (locked), 69 (pending) or 127.
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

/** --mode: octal permission bits (default 0600). */
export function fileMode(inv: Invocation): number {
  const m = str(inv, "mode");
  if (m === undefined) return KEY_MODE;
  if (!/^0?[0-7]{3}$/.test(m.trim())) throw new UsageError(`--mode: '${m}' is not octal permission bits such as 0600 or 640`);
  return parseInt(m.trim(), 8);
}

/** --owner UID[:GID], numeric. */
export function fileOwner(inv: Invocation): { uid?: number; gid?: number } {
  const o = str(inv, "owner");
  if (o === undefined) return {};
  const m = /^(\d+)(?::(\d+))?$/.exec(o.trim());
  if (!m) throw new UsageError(`--owner: '${o}' is not UID or UID:GID (numbers)`);
  return { uid: Number(m[1]), ...(m[2] !== undefined ? { gid: Number(m[2]) } : {}) };
}

/** The embedded identity file: a private key, then (once signed) its certificate. */
export interface PemFile {
  key: crypto.KeyObject | undefined;
  certificate: ParsedCertificate | undefined;
  mtime: Date | undefined;
}

export async function readPemFile(file: string): Promise<PemFile> {
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

export async function embedded(inv: Invocation, s: Settings): Promise<number> {
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
