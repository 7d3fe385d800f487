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
 *
 * The leaf alone is tried first: getPeerCertificate(true) turns every
 * certificate into an object and searches the TLS context's store for
 * issuers (about ten times the cost of the leaf alone, per handshake), while
 * a device usually sends just its leaf, issued by a CA we know. A chain that
 * verifies from the configured intermediates verifies identically with more
 * certificates after them (verifyPeer takes the first match, configured ones
 * first), so only a refusal is worth the full chain: then the answer is
 * exactly what the full chain gives.
 */
export function peerOf(socket: TLSSocket | undefined, options: () => VerifyOptions): Promise<PeerResult> {
  if (!socket || typeof socket.getPeerCertificate !== "function") return Promise.resolve({ status: "absent" });
  let p = cache.get(socket);
  if (!p) {
    const opts = options();
    p = verifyPeer(socket.getPeerCertificate()?.raw, [], opts).then((r) => {
      if (r.status !== "rejected") return r;
      const sent = sentChain(socket);
      return sent.rest.length === 0 ? r : verifyPeer(sent.leaf, sent.rest, opts);
    });
    cache.set(socket, p);
  }
  return p;
}
