/**
 * Helpers for the EST tests: a server with an EST user; raw HTTPS requests
 * (test-support.ts) show the exact bytes a strict client would see.
 */
import { randomUUID } from "node:crypto";
import { hashPassword } from "../../authority/passwords.js";
import type { CredentialRecord } from "../../authority/ports.js";
import type { RunningServer } from "../../server.js";
import { startTestServer, TestClock } from "../../test-support.js";
import type { TesseraConfig } from "../../config/types.js";

/** Adds an EST (HTTP Basic) user; `label` "*" (default) allows every label. */
export async function addEstUser(server: RunningServer, name: string, password: string, label = "*"): Promise<CredentialRecord> {
  const c: CredentialRecord = {
    id: randomUUID(), kind: "password", name, scope: label, hash: await hashPassword(password),
    expiresAt: null, maxUses: null, useCount: 0, revokedAt: null, createdAt: new Date(),
  };
  await server.store.createCredential(c);
  return c;
}

/** Starts a server with EST user alice / "s3cret-pass" and a movable clock. */
export async function estServer(configure?: (c: TesseraConfig) => void): Promise<{ server: RunningServer; clock: TestClock; dataDir: string; user: string; password: string; base: string }> {
  const clock = new TestClock();
  const { server, dataDir } = await startTestServer({}, { clock, configure });
  await addEstUser(server, "alice", "s3cret-pass");
  // Dial the IP literal: the server certificate carries IP SANs, as EST clients check (est.md §4).
  return { server, clock, dataDir, user: "alice", password: "s3cret-pass", base: server.url.replace("://localhost", "://127.0.0.1") };
}

export { header, rawRequest, type RawResponse } from "../../test-support.js";
