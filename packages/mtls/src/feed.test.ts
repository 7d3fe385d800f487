import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as http from "node:http";
import * as https from "node:https";
import { MtlsError, RevocationFeed, SseParser, type FeedRevocation, type SseEvent } from "./index.js";
import { listen, makeTestPki, stop, waitFor, type TestPki } from "./test-support.js";

let pki: TestPki;
before(async () => {
  pki = await makeTestPki();
});
after(() => pki.cleanup());

function parse(chunks: string[]): { events: SseEvent[]; retries: number[]; parser: SseParser } {
  const events: SseEvent[] = [];
  const retries: number[] = [];
  const parser = new SseParser((e) => events.push(e), (ms) => retries.push(ms));
  for (const c of chunks) parser.push(c);
  return { events, retries, parser };
}

test("SSE parser: fields, comments, multi-line data, default type, ids, retry", () => {
  const { events, retries, parser } = parse([
    ": ping\n\n",
    "event: revoked\nid: 1\ndata: {\"serial\":\"ab\"}\n\n",
    "data: line one\ndata: line two\n\n",
    "data:no-space\nid\n\n",
    "retry: 1500\nretry: soon\n: only a comment\n\n",
    "event: empty\n\n",
    "data\n\n",
    "unknown: field\ndata: x\n\n",
  ]);
  assert.deepEqual(events, [
    { type: "revoked", data: '{"serial":"ab"}', lastEventId: "1" },
    { type: "message", data: "line one\nline two", lastEventId: "1" },
    { type: "message", data: "no-space", lastEventId: "" },
    { type: "message", data: "", lastEventId: "" },
    { type: "message", data: "x", lastEventId: "" },
  ]);
  assert.deepEqual(retries, [1500]);
  assert.equal(parser.lastEventId, "");
});

test("SSE parser: CRLF, CR and LF endings split anywhere across chunks, a BOM, an unfinished event is not dispatched", () => {
  const stream = "\uFEFFevent: revoked\r\nid: 42\r\ndata: a\r\rdata: b\n\nevent: revoked\ndata: cut";
  for (let cut = 1; cut < stream.length; cut++) {
    const { events, parser } = parse([stream.slice(0, cut), stream.slice(cut)]);
    assert.deepEqual(events, [{ type: "revoked", data: "a", lastEventId: "42" }, { type: "message", data: "b", lastEventId: "42" }], `cut at ${cut}`);
    assert.equal(parser.lastEventId, "42");
  }
  const oneByOne = parse([..."event: revoked\r\ndata: z\r\n\r\n"]);
  assert.deepEqual(oneByOne.events, [{ type: "revoked", data: "z", lastEventId: "" }]);
});

/** An SSE server whose handler the test controls per connection. */
async function sse(onConnect: (res: http.ServerResponse, req: http.IncomingMessage, n: number) => void, tls = false) {
  let n = 0;
  const requests: http.IncomingMessage[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    requests.push(req);
    onConnect(res, req, n++);
  };
  const server = tls ? https.createServer({ key: pki.server.key, cert: pki.server.cert }, handler) : http.createServer(handler);
  const port = await listen(server);
  return { url: `${tls ? "https://localhost" : "http://127.0.0.1"}:${port}/tessera/v1/revocations/events`, requests, close: () => stop(server) };
}

const event = (id: string, serial: string, extra: Record<string, unknown> = {}) =>
  `event: revoked\nid: ${id}\ndata: ${JSON.stringify({ serial, revokedAt: "2026-03-01T10:00:00.000Z", reason: "keyCompromise", ...extra })}\n\n`;

test("feed: reconnects after the server drops the stream, sending Last-Event-ID, and keeps earlier revocations", async () => {
  const server = await sse((res, _req, n) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    if (n === 0) {
      res.write(event("e-1", "0A1B"));
      res.write(event("e-2", "c0ffee"));
      setTimeout(() => res.destroy(), 20); // the server drops the connection
    } else res.write(event("e-3", "d00d"));
  });
  const got: FeedRevocation[] = [];
  let opens = 0;
  const errors: string[] = [];
  const feed = new RevocationFeed({ url: server.url, minBackoffMs: 10, onRevoked: (r) => got.push(r), onOpen: () => opens++, onError: (e) => errors.push(e.message) });
  try {
    await waitFor(() => got.length === 3, 3000);
    assert.deepEqual(got.map((r) => [r.serial, r.id]), [["a1b", "e-1"], ["c0ffee", "e-2"], ["d00d", "e-3"]]);
    assert.deepEqual(got[0], { serial: "a1b", revokedAt: new Date("2026-03-01T10:00:00.000Z"), reason: "keyCompromise", id: "e-1" });
    assert.equal(opens, 2);
    assert.equal(server.requests[0]!.headers["last-event-id"], undefined);
    assert.equal(server.requests[1]!.headers["last-event-id"], "e-2");
    assert.equal(server.requests[1]!.headers.accept, "text/event-stream");
    assert.deepEqual([...feed.revoked.keys()], ["a1b", "c0ffee", "d00d"]);
    assert.equal(feed.lastEventId, "e-3");
    assert.equal(feed.connected, true);
    assert.ok(errors.length >= 1, "the drop was reported");
  } finally {
    feed.close();
    await server.close();
  }
});

test("feed: capped exponential backoff while the server refuses, then recovery; bad events are reported and skipped", async () => {
  const times: number[] = [];
  const server = await sse((res, _req, n) => {
    times.push(Date.now());
    if (n < 6) {
      res.statusCode = 503;
      return res.end();
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write("event: revoked\ndata: not json\n\n");
    res.write(event("x", "zz-not-hex"));
    res.write("event: other\ndata: {}\n\n");
    res.write(event("y", "42", { revokedAt: "garbage" }));
    res.write(event("z", "43", { reason: "removeFromCRL" }));
  });
  const errors: MtlsError[] = [];
  const feed = new RevocationFeed({ url: server.url, minBackoffMs: 40, maxBackoffMs: 100, onError: (e) => errors.push(e) });
  try {
    await feed.ready();
    await waitFor(() => feed.revoked.has("42"), 2000);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // 40·2^k capped at 100, each 50–100 % of that: ≥20, ≥40, then ≥50 and never above 100 (+ slack);
    // without the cap the sixth gap would be 640–1280 ms.
    [20, 40, 50, 50, 50, 50].forEach((min, i) => assert.ok(gaps[i]! >= min - 5, `gap ${i} = ${gaps[i]} ms ≥ ${min}`));
    assert.ok(gaps.every((g) => g < 400), `gaps ${gaps}`);
    assert.ok(errors.some((e) => e.code === "TESSERA_ERR_MTLS_FEED" && /HTTP 503/.test(e.message)));
    assert.ok(errors.some((e) => /not JSON/.test(e.message)));
    assert.ok(errors.some((e) => /no valid serial/.test(e.message)));
    assert.equal(feed.revoked.size, 1, "only 42; 43 was a removeFromCRL");
    assert.ok(Math.abs(feed.revoked.get("42")!.revokedAt.getTime() - Date.now()) < 5000, "unreadable time → now");
  } finally {
    feed.close();
    await server.close();
  }
});

test("feed over https with a private CA; idle timeout reconnects a silent stream; close() ends it for good", async () => {
  const server = await sse((res, _req, n) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    if (n === 0) res.write(": hello\n\n"); // then silence: the idle timeout must fire
    else res.write(event(`n${n}`, "beef"));
  }, true);
  const feed = new RevocationFeed({ url: server.url, ca: pki.rootPem, idleTimeoutMs: 150, minBackoffMs: 10 });
  try {
    await waitFor(() => feed.revoked.has("beef"), 3000);
    assert.ok(server.requests.length >= 2);
  } finally {
    feed.close();
  }
  const count = server.requests.length;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(server.requests.length, count, "no reconnect after close()");
  assert.equal(feed.connected, false);
  await server.close();
  assert.throws(() => new RevocationFeed({ url: "ftp://x/" }), (e: MtlsError) => e.code === "TESSERA_ERR_MTLS_CONFIG");
  assert.throws(() => new RevocationFeed({ url: "not a url" }), (e: MtlsError) => e.code === "TESSERA_ERR_MTLS_CONFIG");
});
