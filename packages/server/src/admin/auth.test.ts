/**
 * Admin API authentication: bearer tokens per role, console sessions with
 * their cookie attributes, CSRF on every state-changing session request,
 * revocation ending sessions, and refusals of malformed input, each in the
 * generic JSON error form with nothing changed.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { RunningServer } from "../server.js";
import { adminServer, api, signIn, type Session } from "./test-kit.js";
import { HandDevice } from "../protocols/imprint/test-kit.js";
import type { OperatorTokens } from "../authority/operator-tokens.js";

describe("admin API authentication", () => {
  let server: RunningServer;
  let tokens: { admin: string; editor: string; viewer: string };
  let operatorTokens: OperatorTokens;
  let secret: string;
  before(async () => ({ server, tokens, operatorTokens, secret } = await adminServer()));
  after(() => server.close(100));

  const pendingRequest = async () => {
    const d = new HandDevice(server);
    const r = await d.enroll(secret);
    assert.equal(r.status, 202, r.text);
    return (JSON.parse(r.text) as { request_id: string }).request_id;
  };

  test("no token, a malformed header or an unknown token: 401 ADMIN_UNAUTHENTICATED", async () => {
    for (const headers of [{}, { authorization: "Basic dTpw" }, { authorization: "Bearer nope-nope-nope-nope" }] as Record<string, string>[]) {
      const r = await api(server, "GET", "/overview", { headers });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(r.json.error.code, "TESSERA_ERR_ADMIN_UNAUTHENTICATED");
      assert.equal(r.headers["cache-control"], "no-store");
    }
  });

  test("roles: a viewer reads but changes nothing; an editor decides but cannot create credentials; an admin can", async () => {
    assert.equal((await api(server, "GET", "/overview", { auth: { token: tokens.viewer } })).status, 200);
    const id = await pendingRequest();
    const byViewer = await api(server, "POST", `/requests/${id}/approve`, { auth: { token: tokens.viewer } });
    assert.equal(byViewer.status, 403);
    assert.equal(byViewer.json.error.code, "TESSERA_ERR_ADMIN_FORBIDDEN");
    assert.equal((await server.store.getRequest(id))?.status, "pending", "nothing changed");
    const secretByEditor = await api(server, "POST", "/credentials/secrets", { auth: { token: tokens.editor }, body: { name: "line-9" } });
    assert.equal(secretByEditor.status, 403);
    assert.equal(await server.store.findCredentialByName("secret", "line-9"), undefined);
    const jobByViewer = await api(server, "POST", "/jobs", { auth: { token: tokens.viewer }, body: { kind: "crl-rebuild" } });
    assert.equal(jobByViewer.status, 403);
    const decided = await api(server, "POST", `/requests/${id}/reject`, { auth: { token: tokens.editor }, body: { reason: "unknown hardware" } });
    assert.equal(decided.status, 200, decided.text);
    assert.equal(decided.json.request.decidedBy, "token:eddie");
    const created = await api(server, "POST", "/credentials/secrets", { auth: { token: tokens.admin }, body: { name: "line-9" } });
    assert.equal(created.status, 200, created.text);
  });

  test("a session: cookie HttpOnly, Secure, SameSite=Strict, Path=/admin; GET /session gives the CSRF token again", async () => {
    const r = await api(server, "POST", "/session", { body: { token: tokens.editor } });
    assert.equal(r.status, 200, r.text);
    const cookie = [r.headers["set-cookie"]].flat()[0]!;
    assert.match(cookie, /^tessera_session=[A-Za-z0-9_-]{43};/);
    for (const attr of ["HttpOnly", "Secure", "SameSite=Strict", "Path=/admin", "Max-Age=43200"]) assert.ok(cookie.split("; ").includes(attr), `${attr} in ${cookie}`);
    assert.equal(r.json.role, "editor");
    const session: Session = { cookie: cookie.split(";", 1)[0]!, csrfToken: r.json.csrfToken };
    const again = await api(server, "GET", "/session", { auth: { session } });
    assert.deepEqual([again.status, again.json.name, again.json.csrfToken], [200, "eddie", session.csrfToken]);
    const bad = await api(server, "POST", "/session", { body: { token: "not-a-token-at-all" } });
    assert.deepEqual([bad.status, bad.json.error.code, bad.headers["set-cookie"]], [401, "TESSERA_ERR_ADMIN_UNAUTHENTICATED", undefined]);
  });

  test("CSRF: a session's POST without or with a wrong X-CSRF-Token is refused and changes nothing", async () => {
    const session = await signIn(server, tokens.editor);
    const id = await pendingRequest();
    for (const csrf of [null, "", "x".repeat(43)]) {
      const r = await api(server, "POST", `/requests/${id}/approve`, { auth: { session }, csrf });
      assert.equal(r.status, 403, String(csrf));
      assert.equal(r.json.error.code, "TESSERA_ERR_ADMIN_CSRF");
    }
    assert.equal((await server.store.getRequest(id))?.status, "pending");
    const other = await signIn(server, tokens.editor);
    assert.equal((await api(server, "POST", `/requests/${id}/approve`, { auth: { session }, csrf: other.csrfToken })).status, 403, "another session's token");
    const ok = await api(server, "POST", `/requests/${id}/approve`, { auth: { session } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.request.status, "approved");
    // A bearer request carries no ambient credential, so it needs no CSRF token.
    const id2 = await pendingRequest();
    assert.equal((await api(server, "POST", `/requests/${id2}/approve`, { auth: { token: tokens.editor } })).status, 200);
  });

  test("revoking the token ends its sessions; signing out ends one session", async () => {
    await operatorTokens.create("temp", "admin", undefined, "test").then(async ({ value }) => {
      const session = await signIn(server, value);
      assert.equal((await api(server, "GET", "/overview", { auth: { session } })).status, 200);
      await operatorTokens.revoke("temp", "test");
      const r = await api(server, "GET", "/overview", { auth: { session } });
      assert.deepEqual([r.status, r.json.error.code], [401, "TESSERA_ERR_ADMIN_UNAUTHENTICATED"]);
    });
    const session = await signIn(server, tokens.viewer);
    const out = await api(server, "DELETE", "/session", { auth: { session } });
    assert.equal(out.status, 204);
    assert.match([out.headers["set-cookie"]].flat()[0]!, /^tessera_session=; Max-Age=0;/);
    assert.equal((await api(server, "GET", "/overview", { auth: { session } })).status, 401);
  });

  test("an expired session is refused", async () => {
    const { server: s2, clock, tokens: t2 } = await adminServer();
    try {
      const session = await signIn(s2, t2.viewer);
      assert.equal((await api(s2, "GET", "/overview", { auth: { session } })).status, 200);
      clock.advance(12 * 3600_000 + 1000);
      assert.equal((await api(s2, "GET", "/overview", { auth: { session } })).status, 401);
    } finally {
      await s2.close(100);
    }
  });

  test("malformed input: wrong content type 415, bad JSON 400, oversized 413, bad query 400; nothing stored", async () => {
    const auth = { token: tokens.admin };
    const typed = await api(server, "POST", "/credentials/secrets", { auth, body: "name=x", headers: { "content-type": "application/x-www-form-urlencoded" } });
    assert.deepEqual([typed.status, typed.json.error.code], [415, "TESSERA_ERR_INPUT_CONTENT_TYPE"]);
    const broken = await api(server, "POST", "/credentials/secrets", { auth, body: "{\"name\":" });
    assert.deepEqual([broken.status, broken.json.error.code], [400, "TESSERA_ERR_INPUT_MALFORMED"]);
    const array = await api(server, "POST", "/credentials/secrets", { auth, body: "[1]" });
    assert.equal(array.status, 400);
    const huge = await api(server, "POST", "/credentials/secrets", { auth, body: { name: "big", value: "v".repeat(70_000) } });
    assert.deepEqual([huge.status, huge.json.error.code], [413, "TESSERA_ERR_INPUT_TOO_LARGE"]);
    assert.equal(await server.store.findCredentialByName("secret", "big"), undefined);
    for (const qs of ["limit=0", "limit=501", "status=bogus", "sort=password", "offset=-1", "q=a&q=b", "expiresBefore=yesterday"]) {
      const r = await api(server, "GET", `/devices?${qs}`, { auth });
      assert.equal(r.status, 400, qs);
    }
    const unknown = await api(server, "GET", "/nothing-here", { auth });
    assert.deepEqual([unknown.status, unknown.json.error.code], [404, "TESSERA_ERR_NOT_FOUND"]);
  });
});
