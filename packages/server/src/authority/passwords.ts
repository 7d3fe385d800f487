/**
 * Password hashing for HTTP Basic users (EST, RFC 7030 §3.2.3): scrypt with
 * a random salt, stored as `scrypt$N$r$p$salt$hash` (base64url), compared in
 * constant time. Unlike bootstrap secrets, passwords are chosen by people and
 * need a slow hash.
 *
 * EST clients send their Basic credentials with every request, and one
 * scrypt costs tens of milliseconds of CPU: far more than issuing the
 * certificate. So a successful verification is remembered, per stored hash,
 * as an HMAC of the password under a key that lives only in this process's
 * memory; the same password against the same stored hash then costs one
 * HMAC. Only successes are remembered, so every wrong guess still pays a full
 * scrypt; a new password is a new stored hash (new salt), so it misses; the
 * caller still checks revocation, expiry and scope on every request.
 * Concurrent verifications of the same pair share one scrypt.
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** scrypt cost: N = 2^14, r = 8, p = 1 (16 MiB, tens of milliseconds). */
const PARAMS = { N: 16384, r: 8, p: 1 } as const;
const KEY_LEN = 32;

function derive(password: string, salt: Buffer, p: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFC"), salt, KEY_LEN, { N: p.N, r: p.r, p: p.p, maxmem: 128 * p.N * p.r * 2 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** Hashes a password for storage. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, PARAMS);
  return `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

/** Successful verifications remembered (a few hundred bytes each), least recently used dropped first. */
const VERIFIED_MAX = 4096;
/** Per-process key of the remembered HMACs: never stored, never leaves this process. */
const VERIFIED_KEY = randomBytes(32);
/** stored hash → HMAC-SHA256(VERIFIED_KEY, NFC(password)) of a password that matched it. */
const verified = new Map<string, Buffer>();
/** Verifications under way, by stored hash and HMAC, so a burst of requests with one credential costs one scrypt. */
const inFlight = new Map<string, Promise<boolean>>();

function passwordTag(password: string): Buffer {
  return createHmac("sha256", VERIFIED_KEY).update(password.normalize("NFC"), "utf8").digest();
}

/** True if `password` matches a stored hashPassword() value; false for any other stored form. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const tag = passwordTag(password);
  const known = verified.get(stored);
  if (known && timingSafeEqual(known, tag)) {
    // Most recently used last: Map keeps insertion order.
    verified.delete(stored);
    verified.set(stored, known);
    return true;
  }
  const key = `${stored}\0${tag.toString("base64")}`;
  const pending = inFlight.get(key);
  if (pending) return pending;
  const check = verifySlow(password, stored).then(
    (ok) => {
      inFlight.delete(key);
      if (ok) {
        verified.delete(stored);
        verified.set(stored, tag);
        if (verified.size > VERIFIED_MAX) verified.delete(verified.keys().next().value!);
      }
      return ok;
    },
    (err: unknown) => {
      inFlight.delete(key);
      throw err;
    },
  );
  inFlight.set(key, check);
  return check;
}

async function verifySlow(password: string, stored: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  // Refuse parameters that would let a tampered row exhaust memory or CPU.
  if (![N, r, p].every(Number.isSafeInteger) || N < 2 || N > 1 << 20 || (N & (N - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const expected = Buffer.from(parts[5]!, "base64url");
  if (expected.length !== KEY_LEN) return false;
  const key = await derive(password, Buffer.from(parts[4]!, "base64url"), { N, r, p });
  return timingSafeEqual(key, expected);
}
