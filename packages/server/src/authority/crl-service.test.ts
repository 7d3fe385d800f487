/**
 * CrlService reads the store a page at a time (keyset paging on serial) and
 * encodes each page as it arrives: these tests check that every page lands
 * in the CRL once, in order, and that expired entries stay out.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { test } from "node:test";
import { certificatePublicKey, createCaCertificate, generateKeyPair, parseCrl, verifyCrlSignature, type Issuer } from "@tessera/pki";
import { CrlService } from "./crl-service.js";
import type { RevokedEntry } from "./ports.js";
import { TestClock } from "../test-support.js";

const DAY = 86_400_000;

async function issuer(): Promise<Issuer> {
  const { publicKey, privateKey } = generateKeyPair();
  const certificate = await createCaCertificate({
    subject: [{ type: "CN", value: "CRL test CA" }],
    publicKey,
    privateKey,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 365 * DAY),
  });
  return { certificate, privateKey };
}

/** An in-memory store port: revoked rows with their notAfter, answered a page at a time like the SQL store. */
function fakeStore(rows: Array<RevokedEntry & { notAfter: Date }>) {
  const sorted = [...rows].sort((a, b) => (a.serial < b.serial ? -1 : 1));
  const calls: Array<{ after: string | undefined; limit: number; returned: number }> = [];
  let crlNumber = 0n;
  return {
    calls,
    async listRevokedPage(notAfterSince: Date, after: string | undefined, limit: number): Promise<RevokedEntry[]> {
      const page = sorted
        .filter((r) => r.notAfter >= notAfterSince && (after === undefined || r.serial > after))
        .slice(0, limit)
        .map(({ serial, revokedAt, reason }) => ({ serial, revokedAt, reason }));
      calls.push({ after, limit, returned: page.length });
      return page;
    },
    async nextCrlNumber(): Promise<bigint> {
      return ++crlNumber;
    },
  };
}

test("the CRL holds every unexpired revoked entry, read in pages, each once, with its date and reason", async () => {
  const ca = await issuer();
  const now = Date.now();
  const reasons = ["keyCompromise", null, "superseded", "cessationOfOperation"] as const;
  const live = Array.from({ length: 10 }, (_, i) => ({
    serial: (0x1000 + i * 7).toString(16),
    revokedAt: new Date(Math.floor(now / 1000) * 1000 - i * DAY),
    reason: reasons[i % reasons.length]!,
    notAfter: new Date(now + 30 * DAY),
  }));
  const expired = { serial: "1003", revokedAt: new Date(now - 40 * DAY), reason: "keyCompromise", notAfter: new Date(now - DAY) };
  const store = fakeStore([...live, expired]);
  const service = new CrlService(store, ca, new TestClock(), 86_400, 3_600, 3);

  const crl = await service.get();
  const parsed = parseCrl(crl.der);
  assert.ok(verifyCrlSignature(parsed, certificatePublicKey(ca.certificate)));
  assert.equal(crl.entries, 10);
  assert.deepEqual([...parsed.revoked.keys()], live.map((r) => r.serial).sort());
  for (const r of live) {
    const entry = parsed.revoked.get(r.serial);
    assert.deepEqual(entry?.revokedAt, r.revokedAt);
    assert.equal(entry?.reason, r.reason ?? undefined);
  }
  assert.ok(!parsed.revoked.has(expired.serial));
  // Pages of 3: 3 + 3 + 3 + 1, each starting after the previous page's last serial.
  assert.deepEqual(store.calls.map((c) => c.returned), [3, 3, 3, 1]);
  assert.equal(store.calls[0]!.after, undefined);
  const sortedSerials = live.map((r) => r.serial).sort();
  assert.deepEqual(store.calls.slice(1).map((c) => c.after), [sortedSerials[2], sortedSerials[5], sortedSerials[8]]);
});

test("an exact multiple of the page size ends with one empty page; an empty store gives a CRL without entries", async () => {
  const ca = await issuer();
  const rows = Array.from({ length: 6 }, (_, i) => ({ serial: `0${i + 1}`, revokedAt: new Date(), reason: null, notAfter: new Date(Date.now() + DAY) }));
  const store = fakeStore(rows);
  const crl = await new CrlService(store, ca, new TestClock(), 86_400, 3_600, 3).get();
  assert.equal(parseCrl(crl.der).revoked.size, 6);
  assert.deepEqual(store.calls.map((c) => c.returned), [3, 3, 0]);

  const none = await new CrlService(fakeStore([]), ca, new TestClock(), 86_400, 3_600, 3).get();
  assert.equal(none.entries, 0);
  assert.equal(parseCrl(none.der).revoked.size, 0);
});
