/**
 * Password hashing for HTTP Basic users (EST, RFC 7030 §3.2.3): scrypt with
 * a random salt, stored as `scrypt$N$r$p$salt$hash` (base64url), compared in
 * constant time. Unlike bootstrap secrets, passwords are chosen by people and
 * need a slow hash.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

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

/** True if `password` matches a stored hashPassword() value; false for any other stored form. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
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
