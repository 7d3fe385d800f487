/**
 * Helpers for the imprint tests: a server with build secrets, a device that
 * speaks the wire protocol by hand (raw JSON over HTTPS, like a client we do
 * not control), and proof signing as the spec defines it.
 */
import { createHash, randomUUID, sign, type KeyObject } from "node:crypto";
import { buildCsr, generateKeyPair, pemEncode, type KeyType } from "@tessera/pki";
import { hashSecret } from "../../authority/authorizers.js";
import type { CredentialRecord } from "../../authority/ports.js";
import type { RunningServer } from "../../server.js";
import { request, startTestServer, TestClock, type TestResponse } from "../../test-support.js";
import type { TesseraConfig } from "../../config/types.js";

/** Adds a build secret (scope "imprint" unless given). */
export async function addSecret(server: RunningServer, value: string, extra: Partial<CredentialRecord> = {}): Promise<CredentialRecord> {
  const c: CredentialRecord = {
    id: randomUUID(), kind: "secret", name: `s-${randomUUID().slice(0, 8)}`, scope: "imprint", hash: hashSecret(value),
    expiresAt: null, maxUses: null, useCount: 0, revokedAt: null, createdAt: new Date(), ...extra,
  };
  await server.store.createCredential(c);
  return c;
}

/** Starts a server with one build secret "build-secret-1" and a movable clock. */
export async function imprintServer(configure?: (c: TesseraConfig) => void): Promise<{ server: RunningServer; clock: TestClock; secret: string; dataDir: string }> {
  const clock = new TestClock();
  const { server, dataDir } = await startTestServer({}, { clock, configure });
  await addSecret(server, "build-secret-1");
  return { server, clock, secret: "build-secret-1", dataDir };
}

/** Runs the tessera CLI (`--json`) against a data directory; returns its exit code and output. */
export async function cli(dataDir: string, args: string[]): Promise<{ code: number; out: string }> {
  const { main } = await import("../../cli/main.js");
  const lines: string[] = [];
  const code = await main([...args, "--json"], { out: (t) => lines.push(t), err: (t) => lines.push(t) }, { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "silent" });
  return { code, out: lines.join("\n") };
}

/** A PEM CSR with CN only, as the Go client makes it. */
export function csrPem(key: KeyObject, cn: string): string {
  return pemEncode("CERTIFICATE REQUEST", buildCsr({ subject: cn ? [{ type: "CN", value: cn }] : [], privateKey: key }));
}

/** The spec's proof: DER ECDSA-SHA256 over M, or Ed25519 over SHA-256(M); standard padded base64. */
export function proofFor(key: KeyObject, serverId: string, fingerprint: string, csr: string): string {
  const m = Buffer.from(`${serverId}\n${fingerprint}\n${csr}`, "utf8");
  const sig = key.asymmetricKeyType === "ed25519" ? sign(null, createHash("sha256").update(m).digest(), key) : sign("sha256", m, { key, dsaEncoding: "der" });
  return sig.toString("base64");
}

/** POSTs JSON (a string is sent as is). */
export function post(server: RunningServer, path: string, body: unknown, tls?: { cert: string; key: KeyObject }): Promise<TestResponse> {
  return request(server, path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    cert: tls?.cert,
    key: tls ? (tls.key.export({ type: "pkcs8", format: "pem" }) as string) : undefined,
  });
}

/** A device speaking imprint by hand: its fingerprint, current key and certificate. */
export class HandDevice {
  key: KeyObject;
  cert = "";
  serverId = "";
  ca = "";
  constructor(
    readonly server: RunningServer,
    readonly fingerprint = `sha256:${randomUUID().replaceAll("-", "")}`,
    readonly keyType: KeyType = "ec-p256",
  ) {
    this.key = generateKeyPair(keyType).privateKey;
  }

  private adopt(r: TestResponse, key: KeyObject): TestResponse {
    if (r.status === 200) {
      const j = JSON.parse(r.text) as { server_id: string; certificate: string; ca_certificate: string };
      this.serverId = j.server_id;
      this.cert = j.certificate;
      this.ca = j.ca_certificate;
      this.key = key;
    }
    return r;
  }

  async enroll(secret: string, hostname = "host-1"): Promise<TestResponse> {
    const key = generateKeyPair(this.keyType).privateKey;
    const body = { build_secret: secret, fingerprint: this.fingerprint, hostname, os: "linux", arch: "amd64", csr: csrPem(key, hostname) };
    return this.adopt(await post(this.server, "/api/v1/enroll", body), key);
  }

  async renew(): Promise<TestResponse> {
    const key = generateKeyPair(this.keyType).privateKey;
    return this.adopt(await post(this.server, "/api/v1/renew", { csr: csrPem(key, this.serverId) }, { cert: this.cert, key: this.key }), key);
  }

  /** Tier 2; `tamper` may change the body before it is sent. */
  async challenge(tamper: (body: Record<string, string>) => void = () => undefined): Promise<TestResponse> {
    const key = generateKeyPair(this.keyType).privateKey;
    const csr = csrPem(key, this.serverId);
    const body: Record<string, string> = {
      server_id: this.serverId, fingerprint: this.fingerprint, expired_cert: this.cert, csr, proof: proofFor(this.key, this.serverId, this.fingerprint, csr),
    };
    tamper(body);
    return this.adopt(await post(this.server, "/api/v1/renew/challenge", body), key);
  }
}

/** Days in milliseconds. */
export const DAYS = 86_400_000;
