/**
 * Client-certificate verification once per TLS connection. The result rides
 * on each request as `request.peer` (verified | absent | rejected) and each
 * route states what it needs (ARCHITECTURE.md, request flow step 1).
 */
import type { TLSSocket } from "node:tls";
import { verifyPeer, type PeerResult, type VerifyOptions } from "@tessera/mtls";

const cache = new WeakMap<object, Promise<PeerResult>>();

/** Collects the DER chain the peer sent (leaf first); for checks against other trust anchors (e.g. bootstrap CAs). */
export function sentChain(socket: TLSSocket): { leaf?: Buffer; rest: Buffer[] } {
  const cert = socket.getPeerCertificate?.(true);
  if (!cert || !cert.raw) return { rest: [] };
  const rest: Buffer[] = [];
  let cur = cert.issuerCertificate;
  const seen = new Set<string>([cert.fingerprint256]);
  while (cur && cur.raw && !seen.has(cur.fingerprint256)) {
    seen.add(cur.fingerprint256);
    rest.push(cur.raw);
    cur = cur.issuerCertificate;
  }
  return { leaf: cert.raw, rest };
}

/**
 * The peer verification result for a connection, computed on first use and
 * cached for the connection's lifetime. `options()` is read at that moment so
 * a CA reload applies to new connections.
 */
export function peerOf(socket: TLSSocket | undefined, options: () => VerifyOptions): Promise<PeerResult> {
  if (!socket || typeof socket.getPeerCertificate !== "function") return Promise.resolve({ status: "absent" });
  let p = cache.get(socket);
  if (!p) {
    const { leaf, rest } = sentChain(socket);
    p = verifyPeer(leaf, rest, options());
    cache.set(socket, p);
  }
  return p;
}
