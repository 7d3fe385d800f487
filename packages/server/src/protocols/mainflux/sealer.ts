/**
 * Encryption at rest for the Mainflux API's secrets (docs/protocols/mainflux.md,
 * "Keys at rest"): server-generated private keys waiting for their download and
 * the things' keys (certificates carry them as CN, so Tessera must be able to
 * read them back). AES-256-GCM with a key derived from the CA key passphrase
 * (scrypt, then HKDF per purpose), so every replica and the CLI, which already
 * share that passphrase, derive the same key and nothing new has to be
 * distributed or backed up. Thing keys are looked up by an HMAC-SHA256 under a
 * second derived key, so the store alone does not allow guessing them offline.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, scrypt } from "node:crypto";

/** Format byte of the ciphertexts: 1 = AES-256-GCM, 4-byte key id, 12-byte nonce, 16-byte tag, ciphertext. */
const VERSION = 1;
/** scrypt cost for the passphrase: N = 2^15, r = 8, p = 1 (32 MiB, once per process). */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const SALT = "tessera/mainflux/keys-at-rest/v1";

/** Seals and opens the API's secrets; see the file comment. */
export class KeySealer {
  private readonly keyId: Buffer;

  private constructor(
    private readonly encryptionKey: Buffer,
    private readonly lookupKey: Buffer,
  ) {
    this.keyId = createHash("sha256").update(encryptionKey).digest().subarray(0, 4);
  }

  /** Derives the keys from the CA key passphrase (tens of milliseconds: do it once). */
  static async fromPassphrase(passphrase: string): Promise<KeySealer> {
    const master = await new Promise<Buffer>((resolve, reject) =>
      scrypt(passphrase.normalize("NFC"), SALT, 32, SCRYPT, (err, key) => (err ? reject(err) : resolve(key))),
    );
    const sub = (info: string) => Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), info, 32));
    return new KeySealer(sub("aes-256-gcm"), sub("thing-key-lookup"));
  }

  /**
   * Encrypts `plain`; `context` (e.g. "issued-key:<SPKI SHA-256>") is
   * authenticated, so a ciphertext moved to another row does not open.
   */
  seal(plain: Buffer, context: string): Buffer {
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.encryptionKey, nonce);
    cipher.setAAD(Buffer.from(context, "utf8"));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), this.keyId, nonce, cipher.getAuthTag(), body]);
  }

  /** Decrypts what seal() made for the same context; throws when the key or the context differs or the data was altered. */
  open(sealed: Buffer, context: string): Buffer {
    if (sealed.length < 33 || sealed[0] !== VERSION) throw new Error("sealed key: unknown format");
    if (!sealed.subarray(1, 5).equals(this.keyId)) throw new Error("sealed key: encrypted under another key (was the CA passphrase changed?)");
    const decipher = createDecipheriv("aes-256-gcm", this.encryptionKey, sealed.subarray(5, 17));
    decipher.setAAD(Buffer.from(context, "utf8"));
    decipher.setAuthTag(sealed.subarray(17, 33));
    return Buffer.concat([decipher.update(sealed.subarray(33)), decipher.final()]);
  }

  /** Stored lookup form of a thing key (internal or external): "hmac-sha256:" + hex. */
  lookupHash(key: string): string {
    return "hmac-sha256:" + createHmac("sha256", this.lookupKey).update(key, "utf8").digest("hex");
  }
}

/** A sealer derived on first use (and once) from the passphrase `read` returns; rejects when there is none. */
export function lazySealer(read: () => string | undefined): () => Promise<KeySealer> {
  let sealer: Promise<KeySealer> | undefined;
  return () =>
    (sealer ??= (async () => {
      const passphrase = read();
      if (passphrase === undefined) throw new Error("the CA key passphrase is not available: the Mainflux API's keys at rest are encrypted under it");
      return KeySealer.fromPassphrase(passphrase);
    })());
}
