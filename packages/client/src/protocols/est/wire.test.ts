import { test } from "node:test";
import assert from "node:assert/strict";
import { buildCertsOnly, encodeBase64Lines } from "@tessera/pki";
import { EstError } from "./errors.js";
import { multipartBoundary, parseMultipart } from "./multipart.js";
import { basicAuthorization, decodeEstBody, encodeEstBody, estUrl, offersBasic, retryAfterMs, urlProblems } from "./wire.js";

test("retryAfterMs: whole seconds, IMF-fixdate, obsolete date forms; a past date is 0; junk is undefined", () => {
  const now = new Date("2030-03-04T05:06:07Z");
  assert.equal(retryAfterMs("120", now), 120_000);
  assert.equal(retryAfterMs(" 0 ", now), 0);
  assert.equal(retryAfterMs("Mon, 04 Mar 2030 05:07:07 GMT", now), 60_000);
  assert.equal(retryAfterMs("Monday, 04-Mar-30 05:06:17 GMT", now), 10_000);
  assert.equal(retryAfterMs("Sun, 03 Mar 2030 05:06:07 GMT", now), 0);
  for (const bad of [undefined, "", "-5", "1.5", "soon", "12abc"]) assert.equal(retryAfterMs(bad, now), undefined, String(bad));
});

test("decodeEstBody: base64 in any layout, raw DER, PEM; anything else is a protocol error", () => {
  const der = buildCertsOnly([]);
  const lines = encodeBase64Lines(der);
  for (const body of [lines, lines.replace(/\n/g, "\r\n"), der.toString("base64"), ` ${lines}\t`]) {
    assert.ok(decodeEstBody(Buffer.from(body, "latin1"), "x").equals(der), JSON.stringify(body));
  }
  assert.ok(decodeEstBody(der, "x").equals(der));
  assert.ok(decodeEstBody(Buffer.from(`-----BEGIN PKCS7-----\n${lines}-----END PKCS7-----\n`), "x").equals(der));
  assert.throws(() => decodeEstBody(Buffer.from("%%%"), "cacerts"), (e: unknown) => e instanceof EstError && e.kind === "protocol" && /cacerts/.test(e.message));
  assert.throws(() => decodeEstBody(Buffer.alloc(0), "x"), EstError);
  assert.equal(encodeEstBody(Buffer.alloc(100, 1)).toString("latin1"), encodeBase64Lines(Buffer.alloc(100, 1)));
});

test("Basic: the header value, and which challenges offer it", () => {
  assert.equal(basicAuthorization("", "pw"), "Basic OnB3");
  assert.equal(basicAuthorization("ü", "p:w"), "Basic " + Buffer.from("ü:p:w", "utf8").toString("base64"));
  const h = (v: string | string[]) => ({ headers: { "www-authenticate": v } });
  assert.ok(offersBasic(h('Basic realm="x"')));
  assert.ok(offersBasic(h("basic")));
  assert.ok(offersBasic(h(['Digest realm="x", nonce="n"', 'Basic realm="x"'])));
  assert.ok(offersBasic(h('Digest realm="x", nonce="n", Basic realm="y"')));
  assert.ok(!offersBasic(h('Digest realm="x", qop="auth"')));
  assert.ok(!offersBasic(h('Bearer realm="basic"')));
  assert.ok(!offersBasic({ headers: {} }));
});

test("estUrl and urlProblems: label-less and labelled paths; https only; BC's label characters", () => {
  assert.equal(estUrl("https://h:8443/", undefined, "cacerts"), "https://h:8443/.well-known/est/cacerts");
  assert.equal(estUrl("https://h/prefix", "t-1", "simpleenroll"), "https://h/prefix/.well-known/est/t-1/simpleenroll");
  assert.deepEqual(urlProblems("https://h", "a.b~c!$&'()*+,;:=_-9"), []);
  assert.equal(urlProblems("http://h", undefined).length, 1);
  assert.equal(urlProblems("https://h?x=1", undefined).length, 1);
  for (const bad of ["", "a/b", "a b", "ä", "serverkeygen", "fullcmc"]) assert.equal(urlProblems("https://h", bad).length, 1, bad);
});

test("multipart: boundary quoted or bare; CRLF or LF; preamble, epilogue and folded headers", () => {
  assert.equal(multipartBoundary("multipart/mixed; boundary=est-b"), "est-b");
  assert.equal(multipartBoundary('multipart/mixed;boundary="a b:=c"; charset=x'), "a b:=c");
  assert.equal(multipartBoundary("Multipart/Mixed; Boundary=X; other=1"), "X");
  assert.equal(multipartBoundary("application/pkcs7-mime"), undefined);
  assert.equal(multipartBoundary("multipart/mixed"), undefined);
  for (const nl of ["\r\n", "\n"]) {
    const body = [
      "preamble to ignore", "--b", "Content-Type: application/pkcs8", "Content-Transfer-Encoding:", " base64", "", "AAAA", "BBBB",
      "--b", "Content-Type: application/pkcs7-mime; smime-type=certs-only", "", "CCCC", "--b--", "epilogue",
    ].join(nl);
    const parts = parseMultipart(Buffer.from(body, "latin1"), "b");
    assert.equal(parts.length, 2);
    assert.deepEqual(parts[0]!.headers, { "content-type": "application/pkcs8", "content-transfer-encoding": "base64" });
    assert.equal(parts[0]!.body.toString(), `AAAA${nl}BBBB`);
    assert.equal(parts[1]!.headers["content-type"], "application/pkcs7-mime; smime-type=certs-only");
    assert.equal(parts[1]!.body.toString(), "CCCC");
  }
  // "--b" inside a line is data, not a delimiter.
  const inline = parseMultipart(Buffer.from("--b\r\n\r\nx--b y\r\n--b--\r\n"), "b");
  assert.deepEqual(inline.map((p) => p.body.toString()), ["x--b y"]);
  assert.throws(() => parseMultipart(Buffer.from("no delimiter"), "b"), /delimiter/);
});
