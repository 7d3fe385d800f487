/**
 * Who is calling the admin API (docs/admin-api.md): an operator bearer token
 * on each request (scripts), or a console session opened with one (cookie
 * `tessera_session`, HttpOnly, Secure, SameSite=Strict). A session's
 * state-changing requests must echo its CSRF token in `X-CSRF-Token`; bearer
 * requests carry no ambient credential, so they need none. The token behind a
 * session is re-checked on every request: revoking it ends its sessions.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { parse as parseCookies, serialize as serializeCookie } from "cookie";
import type { AdminSessionRecord, Store } from "../authority/ports.js";
import { hasRole, type OperatorTokens, type Role } from "../authority/operator-tokens.js";
import { TesseraError } from "../errors.js";

/** Name of the console's session cookie. */
export const SESSION_COOKIE = "tessera_session";
/** Path the cookie is sent on: the console and its API. */
const COOKIE_PATH = "/admin";

/** An authenticated operator. */
export interface Operator {
  name: string;
  role: string;
  /** The audit actor, "token:<name>". */
  actor: string;
  /** The session, when signed in through the console (null for a bearer token). */
  session: AdminSessionRecord | null;
}

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");
const unauthenticated = (detail: string) => new TesseraError("TESSERA_ERR_ADMIN_UNAUTHENTICATED", { detail });

/** Methods that change nothing, exempt from the CSRF check. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Authenticates admin API requests and manages console sessions. */
export class AdminAuth {
  constructor(
    private readonly tokens: OperatorTokens,
    private readonly store: Pick<Store, "createAdminSession" | "getAdminSession" | "deleteAdminSession" | "pruneAdminSessions" | "appendAudit">,
    private readonly now: () => Date,
    /** Session lifetime in seconds (default 12 hours). */
    private readonly ttlSeconds = 12 * 3600,
  ) {}

  /** Opens a session for a live token: returns the cookie to set and the session. */
  async signIn(tokenValue: unknown): Promise<{ cookie: string; session: AdminSessionRecord }> {
    if (typeof tokenValue !== "string" || tokenValue === "") throw unauthenticated("no token given");
    const token = await this.tokens.identify(tokenValue);
    if (!token) throw unauthenticated("unknown, revoked or expired token");
    const at = this.now();
    const id = randomBytes(32).toString("base64url");
    const session: AdminSessionRecord = {
      idHash: sha256(id), tokenId: token.id, tokenName: token.name, role: token.role,
      csrfToken: randomBytes(32).toString("base64url"), createdAt: at, expiresAt: new Date(at.getTime() + this.ttlSeconds * 1000),
    };
    // Expired sessions are swept here, where sessions are made, rather than by a timer.
    await this.store.pruneAdminSessions(at);
    await this.store.createAdminSession(session);
    await this.store.appendAudit({ at, actor: `token:${token.name}`, action: "session.opened", target: token.name, detail: { expiresAt: session.expiresAt.toISOString() } });
    const cookie = serializeCookie(SESSION_COOKIE, id, { httpOnly: true, secure: true, sameSite: "strict", path: COOKIE_PATH, maxAge: this.ttlSeconds });
    return { cookie, session };
  }

  /** Ends the operator's session (a no-op for bearer tokens); returns the cookie that clears it. */
  async signOut(op: Operator): Promise<string> {
    if (op.session) await this.store.deleteAdminSession(op.session.idHash);
    return serializeCookie(SESSION_COOKIE, "", { httpOnly: true, secure: true, sameSite: "strict", path: COOKIE_PATH, maxAge: 0 });
  }

  /**
   * The operator behind a request, checked for `needed` role and, for
   * session requests that change state, the CSRF token. Throws
   * ADMIN_UNAUTHENTICATED (401), ADMIN_FORBIDDEN or ADMIN_CSRF (403).
   */
  async authenticate(method: string, headers: IncomingHttpHeaders, needed: Role): Promise<Operator> {
    const op = await this.identify(headers);
    if (op.session && !SAFE_METHODS.has(method.toUpperCase())) {
      const sent = headers["x-csrf-token"];
      const given = Buffer.from(typeof sent === "string" ? sent : "");
      const expected = Buffer.from(op.session.csrfToken);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new TesseraError("TESSERA_ERR_ADMIN_CSRF", { detail: `${op.actor} ${method}` });
    }
    if (!hasRole(op.role, needed)) throw new TesseraError("TESSERA_ERR_ADMIN_FORBIDDEN", { detail: `${op.actor} is ${op.role}, ${needed} needed` });
    return op;
  }

  private async identify(headers: IncomingHttpHeaders): Promise<Operator> {
    const authorization = headers.authorization;
    if (authorization !== undefined) {
      // An Authorization header decides alone: a script's token is never mixed with a browser's cookie.
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!m) throw unauthenticated("Authorization is not a Bearer token");
      const token = await this.tokens.identify(m[1]!);
      if (!token) throw unauthenticated("unknown, revoked or expired token");
      return { name: token.name, role: token.role, actor: `token:${token.name}`, session: null };
    }
    const id = headers.cookie ? parseCookies(headers.cookie)[SESSION_COOKIE] : undefined;
    if (!id) throw unauthenticated("no token and no session");
    const session = await this.store.getAdminSession(sha256(id), this.now());
    if (!session) throw unauthenticated("session unknown or expired");
    const token = await this.tokens.byId(session.tokenId);
    if (!token) throw unauthenticated(`token ${session.tokenName} was revoked`);
    // The role is the token's current one: changing a token's role applies to its open sessions.
    return { name: token.name, role: token.role, actor: `token:${token.name}`, session };
  }
}
