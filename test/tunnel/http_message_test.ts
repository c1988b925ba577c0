// SPDX-License-Identifier: Apache-2.0
// HTTP/1.x heads, targets, body framing and head rewriting for the proxy (RFC 9112).
import assert from "node:assert/strict";
import {
  ChunkedScanner,
  clientResponseHead,
  latin1,
  latin1Bytes,
  MAX_HEAD_BYTES,
  originRequestHead,
  proxyResponse,
  proxyTarget,
  readRequestHead,
  readResponseHead,
  requestBodyFraming,
  type RequestHead,
} from "../../src/tunnel/http_message.ts";
import { seededSource } from "../_util/fake_clock.ts";

const b = (s: string) => latin1Bytes(s);

function head(text: string): RequestHead {
  const r = readRequestHead(b(text));
  assert.ok(r && "head" in r, JSON.stringify(r));
  return r.head;
}

function status(text: string | Uint8Array): number | null {
  const r = readRequestHead(typeof text === "string" ? b(text) : text);
  return r === null ? null : "error" in r ? r.error.status : 200;
}

Deno.test("readRequestHead() parses a head and waits for its empty line", () => {
  const text = "GET http://10.0.0.2:8000/p?q HTTP/1.1\r\nHost: x\r\nX-A:  v v \r\n\r\nBODY";
  for (let n = 0; n < text.length - 4; n++) {
    assert.equal(readRequestHead(b(text.slice(0, n))), null);
  }
  const r = readRequestHead(b(text))!;
  assert.ok("head" in r);
  assert.equal(r.length, text.length - 4);
  assert.deepEqual(r.head, {
    method: "GET",
    target: "http://10.0.0.2:8000/p?q",
    minor: 1,
    fields: [["Host", "x"], ["X-A", "v v"]],
  });
  // Bare LF line ends and leading empty lines (RFC 9112 §2.2).
  assert.equal(head("\r\n\nCONNECT a:1 HTTP/1.0\nA: b\n\n").fields.length, 1);
});

Deno.test("readRequestHead() refuses malformed and oversized heads with 400/431/505", () => {
  assert.equal(status("GET / HTTP/1.1\r\n\r\n"), 200, "parses (the target is judged later)");
  assert.equal(status("GET  / HTTP/1.1\r\n\r\n"), 400);
  assert.equal(status("GET / HTTP/1.1 x\r\n\r\n"), 400);
  assert.equal(status("G(T / HTTP/1.1\r\n\r\n"), 400);
  assert.equal(status("GET /\x01 HTTP/1.1\r\n\r\n"), 400);
  assert.equal(status("GET / HTTP/2.0\r\n\r\n"), 505);
  assert.equal(status("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
  assert.equal(status("GET / HTTP/1.1\r\nA : b\r\n\r\n"), 400, "space before the colon");
  assert.equal(status("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"), 400, "obs-fold");
  assert.equal(status("GET / HTTP/1.1\r\nnocolon\r\n\r\n"), 400);
  assert.equal(status("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"), 400, "bare CR in a value");
  assert.equal(status("GET / HTTP/1.1\r\nA: b\x00\r\n\r\n"), 400);
  assert.equal(status("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n"), 400, "TLS hello");
  const many = "GET / HTTP/1.1\r\n" + "A: b\r\n".repeat(101) + "\r\n";
  assert.equal(status(many), 431, "too many fields");
  // Past MAX_HEAD_BYTES without an empty line: 431, without waiting for more.
  const big = b("GET / HTTP/1.1\r\nA: " + "x".repeat(MAX_HEAD_BYTES));
  assert.equal(status(big), 431);
  assert.equal(status(big.subarray(0, MAX_HEAD_BYTES - 1)), null);
  assert.equal(status(new Uint8Array(MAX_HEAD_BYTES).fill(10)), 431, "only empty lines");
});

Deno.test("proxyTarget() takes CONNECT authority-form and http absolute-form", () => {
  const t = (line: string) => proxyTarget(head(`${line}\r\n\r\n`));
  assert.deepEqual(t("CONNECT 10.0.0.2:443 HTTP/1.1"), {
    kind: "connect",
    host: "10.0.0.2",
    port: 443,
    authority: "10.0.0.2:443",
    path: "",
  });
  assert.deepEqual(t("CONNECT [FD09::2]:22 HTTP/1.1"), {
    kind: "connect",
    host: "fd09::2",
    port: 22,
    authority: "[FD09::2]:22",
    path: "",
  });
  assert.deepEqual(t("GET HTTP://Example.ORG HTTP/1.1"), {
    kind: "forward",
    host: "example.org",
    port: 80,
    authority: "Example.ORG",
    path: "/",
  });
  assert.deepEqual(t("POST http://10.0.0.2:8000?x=1 HTTP/1.0"), {
    kind: "forward",
    host: "10.0.0.2",
    port: 8000,
    authority: "10.0.0.2:8000",
    path: "/?x=1",
  });
  for (
    const bad of [
      "CONNECT 10.0.0.2 HTTP/1.1", // no port
      "CONNECT 10.0.0.2:0 HTTP/1.1",
      "CONNECT 10.0.0.2:65536 HTTP/1.1",
      "CONNECT user@host:1 HTTP/1.1",
      "GET / HTTP/1.1", // origin-form: not a proxy request
      "GET https://10.0.0.2/ HTTP/1.1",
      "GET ftp://10.0.0.2/ HTTP/1.1",
      "GET http://u:p@10.0.0.2/ HTTP/1.1",
      "GET http://10.0.0.2/#frag HTTP/1.1",
      "GET http:///x HTTP/1.1",
    ]
  ) {
    assert.equal(typeof t(bad), "string", bad);
  }
  assert.match(t("GET / HTTP/1.1") as string, /this is a proxy/);
  assert.match(t("GET https://a/ HTTP/1.1") as string, /use CONNECT/);
});

Deno.test("requestBodyFraming() follows RFC 9112 §6 and refuses ambiguous framing", () => {
  const f = (fields: string, version = "1.1") =>
    requestBodyFraming(head(`POST http://a/ HTTP/${version}\r\n${fields}\r\n`));
  assert.deepEqual(f(""), { kind: "length", length: 0 });
  assert.deepEqual(f("Content-Length: 42\r\n"), { kind: "length", length: 42 });
  assert.deepEqual(f("Content-Length: 42\r\ncontent-length: 42, 42\r\n"), {
    kind: "length",
    length: 42,
  });
  assert.deepEqual(f("Transfer-Encoding: gzip, Chunked\r\n"), { kind: "chunked" });
  assert.deepEqual(f("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), {
    kind: "chunked",
  });
  for (
    const [fields, version] of [
      ["Content-Length: 42\r\nContent-Length: 43\r\n", "1.1"],
      ["Content-Length: -1\r\n", "1.1"],
      ["Content-Length: 0x10\r\n", "1.1"],
      ["Content-Length: 1234567890123456\r\n", "1.1"],
      ["Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", "1.1"],
      ["Transfer-Encoding: chunked, gzip\r\n", "1.1"],
      ["Transfer-Encoding: chunked, chunked\r\n", "1.1"],
      ["Transfer-Encoding: chunked\r\n", "1.0"],
    ]
  ) {
    assert.equal(typeof f(fields, version), "string", fields);
  }
});

Deno.test("ChunkedScanner finds the end of a chunked body fed in any pieces", () => {
  const body = "5\r\nhello\r\nA;ext=1\r\n0123456789\r\n0\r\nTrailer-A: x\r\n\r\n";
  const all = b(body + "NEXT REQUEST");
  for (const piece of [1, 2, 3, 7, 1000]) {
    const s = new ChunkedScanner();
    let used = 0;
    for (let off = 0; off < all.length && !s.done; off += piece) {
      const chunk = all.subarray(off, off + piece);
      const n = s.feed(chunk);
      assert.equal(s.error, null);
      used += n;
      if (!s.done) assert.equal(n, chunk.length);
    }
    assert.ok(s.done);
    assert.equal(used, body.length, `piece ${piece}`);
  }
  for (
    const bad of [
      "5\r\nhelloX\r\n", // longer than its size
      "5\nhello\r\n", // bare LF
      "-1\r\n",
      "zz\r\n",
      "1234567890123\r\n", // more than 12 hex digits
      `${"1;".padEnd(5000, "x")}\r\n`,
      "0\r\nnot a field\r\n\r\n",
    ]
  ) {
    const s = new ChunkedScanner();
    assert.equal(s.feed(b(bad)), 0, bad.slice(0, 20));
    assert.notEqual(s.error, null, bad.slice(0, 20));
    assert.ok(!s.done);
  }
});

Deno.test("originRequestHead() sends origin-form, Host from the URI, no hop-by-hop fields", () => {
  const h = head(
    "POST http://10.0.0.2:8000/up?x HTTP/1.1\r\nHost: evil.example\r\n" +
      "Proxy-Authorization: Basic c2VjcmV0\r\nConnection: keep-alive, X-Hop, Content-Length\r\n" +
      "Keep-Alive: 5\r\nX-Hop: 1\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Connection: x\r\n" +
      "Content-Length: 3\r\nX-End: é\r\n\r\n",
  );
  const target = proxyTarget(h);
  assert.ok(typeof target !== "string");
  assert.equal(
    latin1(originRequestHead(h, target)),
    "POST /up?x HTTP/1.1\r\nHost: 10.0.0.2:8000\r\nContent-Length: 3\r\nX-End: é\r\n" +
      "Via: 1.1 gotatun\r\nConnection: close\r\n\r\n",
  );
});

Deno.test("readResponseHead() and clientResponseHead() pass a response on with Connection: close", () => {
  const text = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n" +
    "Transfer-Encoding: chunked\r\nSet-Cookie: a=b\r\n\r\n5\r\n";
  assert.equal(readResponseHead(b(text.slice(0, 60))), null);
  const r = readResponseHead(b(text))!;
  assert.ok("head" in r);
  assert.equal(r.length, text.length - 3);
  assert.equal(
    latin1(clientResponseHead(r.head)),
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=b\r\n" +
      "Via: 1.1 gotatun\r\nConnection: close\r\n\r\n",
  );
  const noReason = readResponseHead(b("HTTP/1.0 204\r\n\r\n"))!;
  assert.ok("head" in noReason);
  assert.equal(noReason.head.status, 204);
  for (const bad of ["HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "SSH-2.0-x\r\n\r\n"]) {
    const e = readResponseHead(b(bad));
    assert.ok(e && "error" in e, bad);
  }
  const big = readResponseHead(b("HTTP/1.1 200 OK\r\nA: " + "x".repeat(100)), 64);
  assert.ok(big && "error" in big);
});

Deno.test("proxyResponse() is a complete response with a text body", () => {
  assert.equal(
    latin1(proxyResponse(407, "auth", [["Proxy-Authenticate", 'Basic realm="gotatun"']])),
    'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="gotatun"\r\n' +
      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\nConnection: close\r\n\r\n" +
      "auth\n",
  );
  assert.equal(latin1(proxyResponse(200, "")), "HTTP/1.1 200 Connection established\r\n\r\n");
});

Deno.test("HTTP parsers never throw on mutated heads and bodies (seeded)", () => {
  const src = seededSource(11);
  const seeds = [
    "POST http://10.0.0.2:8000/a?b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    "CONNECT [fd09::2]:443 HTTP/1.0\r\nProxy-Authorization: Basic YTpi\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: x, y\r\n\r\nabc",
    "5\r\nhello\r\n0\r\nA: b\r\n\r\n",
  ].map(b);
  let heads = 0, errors = 0;
  for (let i = 0; i < 20_000; i++) {
    const input = seeds[src.int(seeds.length - 1)].slice();
    for (let k = src.int(3) + 1; k > 0; k--) input[src.int(input.length - 1)] = src.int(255);
    const cut = src.int(3) === 0 ? input.subarray(0, src.int(input.length)) : input;
    const req = readRequestHead(cut, 80);
    if (req && "head" in req) {
      heads++;
      assert.ok(req.length <= cut.length);
      const t = proxyTarget(req.head);
      requestBodyFraming(req.head);
      if (typeof t !== "string") {
        const out = latin1(originRequestHead(req.head, t));
        assert.ok(out.endsWith("Connection: close\r\n\r\n"));
        assert.equal(out.indexOf("\r\n\r\n"), out.length - 4, "one head, no injected lines");
      }
    } else if (req) errors++;
    const res = readResponseHead(cut, 80);
    if (res && "head" in res) {
      const out = latin1(clientResponseHead(res.head));
      assert.equal(out.indexOf("\r\n\r\n"), out.length - 4, "one head, no injected lines");
    }
    const s = new ChunkedScanner();
    const n = s.feed(cut);
    assert.ok(n >= 0 && n <= cut.length);
  }
  // The mutations reach both outcomes.
  assert.ok(heads > 500 && errors > 500, `${heads} heads, ${errors} refusals`);
});
