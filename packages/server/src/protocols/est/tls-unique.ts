/**
 * The tls-unique channel binding (RFC 5929 §3.1) that EST uses to link a CSR
 * to the TLS session it arrives on (RFC 7030 §3.5): the first Finished
 * message of the latest handshake. In a full handshake the client finishes
 * first; in an abbreviated (resumed) one the server does. TLS 1.3 has no
 * tls-unique (RFC 9266), so there is none to offer.
 */
import type { TLSSocket } from "node:tls";

/** base64(tls-unique) of the connection, or undefined when it has none (TLS 1.3, plain TCP). */
export function tlsUnique(socket: TLSSocket | undefined): string | undefined {
  if (!socket || typeof socket.getProtocol !== "function") return undefined;
  const protocol = socket.getProtocol();
  if (protocol === null || protocol === "TLSv1.3") return undefined;
  const finished = socket.isSessionReused() ? socket.getFinished() : socket.getPeerFinished();
  return finished && finished.length > 0 ? finished.toString("base64") : undefined;
}
