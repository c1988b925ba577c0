// SPDX-License-Identifier: Apache-2.0
// The HTTP proxy through a tunnel: a Tunnel pair in memory, A's proxy on a
// loopback port, origins on B's stack; clients speak HTTP/1.1 over
// Deno.connect, and fetch() goes through Tunnel.httpClient().
import assert from "node:assert/strict";
import { bytes, readAll, type TunnelPair, tunnelPair } from "./_pair.ts";
import { type HttpProxyOptions, serveHttpProxy } from "../../src/tunnel/http_proxy.ts";
import { MAX_HEAD_BYTES } from "../../src/tunnel/http_message.ts";
import { parseAuthFile } from "../../src/tunnel/proxy_auth.ts";
import type { Tunnel } from "../../src/tunnel/tunnel.ts";
import { serveSocks5 } from "../../src/tunnel/socks5.ts";
import { ignoreUnless } from "../_util/needs.ts";
import { answer, serveDns } from "./_dns_server.ts";

const enc = new TextEncoder(), dec = new TextDecoder();

async function withProxy(
  opts: HttpProxyOptions,
  fn: (port: number, pair: TunnelPair) => Promise<void>,
) {
  const pair = await tunnelPair();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = serveHttpProxy(listener, pair.a, { connectTimeoutMs: 500, ...opts });
  try {
    await fn(listener.addr.port, pair);
  } finally {
    listener.close();
    await served;
    pair.close();
  }
}

/** Sends `request` (in pieces of `piece` bytes) and reads everything until the proxy closes. */
async function exchange(port: number, request: string | Uint8Array, piece = 1 << 20) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const data = typeof request === "string" ? enc.encode(request) : request;
  const reading = readAll(conn.readable);
  try {
    for (let off = 0; off < data.length; off += piece) {
      await conn.write(data.subarray(off, off + piece));
    }
  } catch {
    // the proxy may answer and close before reading everything
  }
  return dec.decode(await reading);
}

/** The index of the end of an HTTP head in `b`, or -1. */
function headEnd(b: Uint8Array): number {
  for (let i = 3; i < b.length; i++) {
    if (b[i - 3] === 13 && b[i - 2] === 10 && b[i - 1] === 13 && b[i] === 10) return i + 1;
  }
  return -1;
}

/**
 * An origin on `tunnel` port `port` serving one request at a time: it reads
 * a head and the body its framing says (Content-Length or chunked up to
 * "0\r\n\r\n"), records what it got, answers `reply` and closes.
 */
function origin(tunnel: Tunnel, port: number, reply: string | Uint8Array) {
  const lis = tunnel.listen({ port });
  const requests: string[] = [];
  const loop = (async () => {
    for await (const c of lis) {
      const reader = c.readable.getReader();
      let got = new Uint8Array(0);
      const complete = () => {
        const end = headEnd(got);
        if (end < 0) return false;
        const text = dec.decode(got);
        const cl = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
        if (cl) return got.length >= end + Number(cl[1]);
        if (/\r\ntransfer-encoding: *chunked/i.test(text.slice(0, end))) {
          // The last chunk, then trailer fields and the empty line.
          return /\r\n0\r\n(?:[^\r\n]+\r\n)*\r\n$/.test("\r\n" + text.slice(end));
        }
        return true;
      };
      while (!complete()) {
        const { value, done } = await reader.read();
        if (done) break;
        const next = new Uint8Array(got.length + value.length);
        next.set(got);
        next.set(value, got.length);
        got = next;
      }
      reader.releaseLock();
      requests.push(dec.decode(got));
      const w = c.writable.getWriter();
      await w.write(typeof reply === "string" ? enc.encode(reply) : reply);
      await w.close();
    }
  })();
  return {
    requests,
    async close() {
      lis.close();
      await loop;
    },
  };
}

Deno.test("http proxy: absolute-form GET reaches the origin in origin-form, response passed on", () =>
  withProxy({}, async (port, pair) => {
    const o = origin(
      pair.b,
      8000,
      "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive\r\n" +
        "Content-Length: 5\r\nX-Origin: b\r\n\r\nhello",
    );
    const res = await exchange(
      port,
      "GET http://10.9.0.2:8000/path?q=1 HTTP/1.1\r\nHost: wrong.example\r\n" +
        "Proxy-Connection: keep-alive\r\nUser-Agent: t\r\n\r\n",
    );
    assert.equal(
      res,
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Origin: b\r\nVia: 1.1 gotatun\r\n" +
        "Connection: close\r\n\r\nhello",
    );
    assert.deepEqual(o.requests, [
      "GET /path?q=1 HTTP/1.1\r\nHost: 10.9.0.2:8000\r\nUser-Agent: t\r\nVia: 1.1 gotatun\r\n" +
      "Connection: close\r\n\r\n",
    ]);
    // IPv6 origin, and a large close-delimited response copied byte-exact.
    await o.close();
    const big = bytes(300_000, 3);
    const head = enc.encode("HTTP/1.0 200 OK\r\n\r\n");
    const o6 = origin(pair.b, 8001, new Uint8Array([...head, ...big]));
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(enc.encode("GET http://[fd09::2]:8001/ HTTP/1.0\r\n\r\n"));
    const all = await readAll(conn.readable);
    const end = headEnd(all);
    assert.equal(
      dec.decode(all.subarray(0, end)),
      "HTTP/1.1 200 OK\r\nVia: 1.1 gotatun\r\n" +
        "Connection: close\r\n\r\n",
    );
    assert.deepEqual(all.subarray(end), big);
    assert.match(o6.requests[0], /^GET \/ HTTP\/1\.0\r\nHost: \[fd09::2\]:8001\r\n/);
    await o6.close();
  }));

Deno.test("http proxy: request bodies by Content-Length and chunked; later bytes not forwarded", () =>
  withProxy({}, async (port, pair) => {
    const o = origin(pair.b, 8000, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    const body = "x".repeat(100_000);
    const res = await exchange(
      port,
      `POST http://10.9.0.2:8000/up HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        "GET http://10.9.0.2:8000/smuggled HTTP/1.1\r\n\r\n",
      7_000,
    );
    assert.match(res, /^HTTP\/1\.1 201 Created\r\n/);
    const chunked = "4\r\nWiki\r\n6;e=1\r\npedia \r\n0\r\nX-T: 1\r\n\r\n";
    const res2 = await exchange(
      port,
      "PUT http://10.9.0.2:8000/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked +
        "GET /smuggled HTTP/1.1\r\n\r\n",
      3,
    );
    assert.match(res2, /^HTTP\/1\.1 201 Created\r\n/);
    assert.equal(o.requests.length, 2);
    assert.equal(
      o.requests[0],
      `POST /up HTTP/1.1\r\nHost: 10.9.0.2:8000\r\nContent-Length: ${body.length}\r\n` +
        `Via: 1.1 gotatun\r\nConnection: close\r\n\r\n${body}`,
    );
    assert.equal(
      o.requests[1],
      "PUT /c HTTP/1.1\r\nHost: 10.9.0.2:8000\r\nTransfer-Encoding: chunked\r\n" +
        `Via: 1.1 gotatun\r\nConnection: close\r\n\r\n${chunked}`,
    );
    // A malformed chunked body: 400 before the origin answers.
    const bad = await exchange(
      port,
      "POST http://10.9.0.2:8000/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    );
    assert.match(bad, /^HTTP\/1\.1 400 Bad Request\r\n[^]*malformed chunk size\n$/);
    await o.close();
  }));

Deno.test("http proxy: CONNECT tunnels bytes both ways, early data included", () =>
  withProxy({}, async (port, pair) => {
    const lis = pair.b.listen({ port: 8443 });
    const size = 500_000;
    const up = bytes(size, 7), down = bytes(size, 8);
    const server = (async () => {
      const s = await lis.accept();
      const writing = (async () => {
        const w = s.writable.getWriter();
        await w.write(down);
        await w.close();
      })();
      const got = await readAll(s.readable);
      await writing;
      return got;
    })();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    // The head and the first client bytes in one write.
    const head = enc.encode("CONNECT 10.9.0.2:8443 HTTP/1.1\r\nHost: 10.9.0.2:8443\r\n\r\n");
    await conn.write(new Uint8Array([...head, ...up.subarray(0, 1000)]));
    const reading = readAll(conn.readable);
    for (let off = 1000; off < size; off += 60_000) {
      await conn.write(up.subarray(off, Math.min(size, off + 60_000)));
    }
    await conn.closeWrite();
    const all = await reading;
    const reply = "HTTP/1.1 200 Connection established\r\n\r\n";
    assert.equal(dec.decode(all.subarray(0, reply.length)), reply);
    assert.deepEqual(all.subarray(reply.length), down);
    assert.deepEqual(await server, up);
    lis.close();
  }));

Deno.test("http proxy: 502 refused, 504 silent, 502 for localhost, 400/431/505 for bad requests", () =>
  withProxy({ headTimeoutMs: 300 }, async (port) => {
    const first = (s: string) => s.split("\r\n")[0];
    assert.equal(
      first(await exchange(port, "CONNECT 10.9.0.2:9 HTTP/1.1\r\n\r\n")),
      "HTTP/1.1 502 Bad Gateway",
    );
    // 10.9.0.77 is routed to B, whose stack drops it: the connect times out.
    assert.equal(
      first(await exchange(port, "GET http://10.9.0.77/ HTTP/1.1\r\n\r\n")),
      "HTTP/1.1 504 Gateway Timeout",
    );
    // A special-use name is never sent to the tunnel's DNS: it fails at once.
    const name = await exchange(port, "CONNECT localhost:443 HTTP/1.1\r\n\r\n");
    assert.match(name, /^HTTP\/1\.1 502 Bad Gateway\r\n[^]*localhost/);
    assert.match(
      await exchange(port, "GET / HTTP/1.1\r\n\r\n"),
      /^HTTP\/1\.1 400 [^]*this is a proxy/,
    );
    assert.match(
      await exchange(port, "GET https://10.9.0.2/ HTTP/1.1\r\n\r\n"),
      /^HTTP\/1\.1 400 [^]*use CONNECT/,
    );
    assert.match(
      await exchange(
        port,
        "POST http://10.9.0.2/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      ),
      /^HTTP\/1\.1 400 /,
    );
    assert.match(await exchange(port, "GET http://10.9.0.2/ HTTP/3.0\r\n\r\n"), /^HTTP\/1\.1 505 /);
    assert.match(await exchange(port, "\x05\x01\x00\n\n"), /^HTTP\/1\.1 400 /);
    // An endless head: 431 once MAX_HEAD_BYTES are in, without reading the rest.
    const huge = "GET http://10.9.0.2/ HTTP/1.1\r\nX: " + "a".repeat(4 * MAX_HEAD_BYTES);
    assert.match(
      await exchange(port, huge, 1000),
      /^HTTP\/1\.1 431 Request Header Fields Too Large/,
    );
    // A client that stops mid-head is closed after headTimeoutMs, without a response.
    const stalled = await Deno.connect({ hostname: "127.0.0.1", port });
    await stalled.write(enc.encode("GET http://10.9.0.2/ HTTP/1.1\r\n"));
    const t0 = performance.now();
    assert.equal((await readAll(stalled.readable)).length, 0);
    assert.ok(performance.now() - t0 < 3000);
  }));

Deno.test("http proxy: with --auth, 407 unless Proxy-Authorization Basic matches; never forwarded", async () => {
  const auth = parseAuthFile("alice:wonder land\n", "test");
  await withProxy({ auth }, async (port, pair) => {
    const o = origin(pair.b, 8000, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    const req = (extra: string) =>
      exchange(port, `GET http://10.9.0.2:8000/ HTTP/1.1\r\n${extra}\r\n`);
    for (
      const extra of [
        "",
        `Proxy-Authorization: Basic ${btoa("alice:wonder")}\r\n`,
        `Proxy-Authorization: Basic ${btoa("bob:wonder land")}\r\n`,
        `Proxy-Authorization: Bearer ${btoa("alice:wonder land")}\r\n`,
        `Proxy-Authorization: Basic ${btoa("alice:wonder land")}\r\n`.repeat(2),
      ]
    ) {
      const res = await req(extra);
      assert.match(res, /^HTTP\/1\.1 407 Proxy Authentication Required\r\n/, extra);
      assert.match(res, /\r\nProxy-Authenticate: Basic realm="gotatun", charset="UTF-8"\r\n/);
    }
    assert.equal(o.requests.length, 0, "nothing reached the origin");
    const ok = await req(`proxy-authorization: basic ${btoa("alice:wonder land")}\r\n`);
    assert.match(ok, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok$/);
    assert.equal(o.requests.length, 1);
    assert.doesNotMatch(o.requests[0], /authorization/i);
    await o.close();
  });
});

Deno.test("Tunnel.httpClient(): fetch() through the tunnel, closed with the tunnel", async () => {
  const pair = await tunnelPair();
  try {
    const o = origin(
      pair.b,
      8000,
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello b-end",
    );
    const client = pair.a.httpClient();
    assert.equal(pair.a.httpClient(), client, "one shared client");
    const res = await fetch("http://10.9.0.2:8000/hi", { client });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("via"), "1.1 gotatun");
    assert.equal(await res.text(), "hello b-end");
    const posted = await fetch("http://10.9.0.2:8000/post", {
      client,
      method: "POST",
      body: "payload",
    });
    assert.equal(await posted.text(), "hello b-end");
    assert.match(o.requests[0], /^GET \/hi HTTP\/1\.1\r\n/);
    assert.doesNotMatch(o.requests[0], /proxy-authorization/i, "the random credentials stay local");
    assert.match(o.requests[1], /^POST \/post HTTP\/1\.1\r\n[^]*\r\n\r\npayload$/);
    // A refused port is a 502 from the proxy, not a network error.
    const refused = await fetch("http://10.9.0.2:8999/", { client });
    assert.equal(refused.status, 502);
    await refused.body?.cancel();
    await o.close();
  } finally {
    pair.close();
  }
  assert.throws(() => pair.a.httpClient(), /Tunnel closed/);
});

Deno.test("http proxy: 504 when the origin sends no response head in time, 503 past maxClients", () =>
  withProxy({ responseTimeoutMs: 300, maxClients: 1, headTimeoutMs: 5000 }, async (port, pair) => {
    const lis = pair.b.listen({ port: 8000 });
    const accepted = lis.accept(); // accepts, reads nothing, never answers
    const t0 = performance.now();
    const res = await exchange(port, "GET http://10.9.0.2:8000/ HTTP/1.1\r\n\r\n");
    assert.match(res, /^HTTP\/1\.1 504 Gateway Timeout\r\n[^]*no response in time/);
    assert.ok(performance.now() - t0 < 3000);
    (await accepted).close();
    // One client holds the only slot (its head is incomplete); the next is turned away.
    const holder = await Deno.connect({ hostname: "127.0.0.1", port });
    await holder.write(enc.encode("GET http://10.9.0.2:8000/ HTTP/1.1\r\n"));
    await new Promise((r) => setTimeout(r, 50));
    assert.match(
      await exchange(port, "GET http://10.9.0.2:8000/ HTTP/1.1\r\n\r\n"),
      /^HTTP\/1\.1 503 Service Unavailable\r\n/,
    );
    holder.close();
    lis.close();
  }));

Deno.test({
  name:
    "curl through both proxies with --auth users: -x, -p (CONNECT), --socks5 -U, chunked upload",
  ignore: ignoreUnless("curl interop", { tools: ["curl"] }),
  fn: async () => {
    const auth = parseAuthFile("alice:open sesame\n", "test");
    const pair = await tunnelPair();
    const httpL = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const socksL = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const served = [serveHttpProxy(httpL, pair.a, { auth }), serveSocks5(socksL, pair.a, { auth })];
    const o = origin(pair.b, 8000, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfrom-b");
    const curl = async (...args: string[]) => {
      const out = await new Deno.Command("curl", {
        args: ["-sS", "--max-time", "10", "-w", " %{http_code}", ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, text: dec.decode(out.stdout), err: dec.decode(out.stderr) };
    };
    try {
      const url = "http://10.9.0.2:8000/x";
      const user = ["-U", "alice:open sesame"];
      const http = `http://127.0.0.1:${httpL.addr.port}`;
      const socks = `127.0.0.1:${socksL.addr.port}`;
      assert.deepEqual(await curl("-x", http, ...user, url), {
        code: 0,
        text: "from-b 200",
        err: "",
      });
      assert.equal((await curl("-p", "-x", http, ...user, url)).text, "from-b 200");
      assert.equal((await curl("--socks5", socks, ...user, url)).text, "from-b 200");
      const up = await curl(
        "-x",
        http,
        ...user,
        "-H",
        "Transfer-Encoding: chunked",
        "-d",
        "abc",
        url,
      );
      assert.equal(up.text, "from-b 200");
      assert.match(
        o.requests.at(-1)!,
        /^POST \/x HTTP\/1\.1\r\n[^]*\r\n\r\n3\r\nabc\r\n0\r\n\r\n$/,
      );
      assert.match(o.requests[1], /^GET \/x HTTP\/1\.1\r\n/, "-p sends its GET inside CONNECT");
      assert.equal(o.requests.length, 4);
      // Wrong or missing credentials.
      const denied = "proxy authentication required\n";
      assert.equal((await curl("-x", http, "-U", "alice:wrong", url)).text, `${denied} 407`);
      assert.equal((await curl("-x", http, url)).text, `${denied} 407`);
      const s = await curl("--socks5", socks, "-U", "alice:wrong", url);
      assert.notEqual(s.code, 0);
      assert.equal(o.requests.length, 4);
    } finally {
      await o.close();
      httpL.close();
      socksL.close();
      await Promise.all(served);
      pair.close();
    }
  },
});

Deno.test("http proxy and httpClient(): names resolved through the tunnel's DNS", async () => {
  const pair = await tunnelPair({ dns: "10.9.0.2, example.org" });
  const dns = serveDns(
    pair.b,
    (name, qtype, q) =>
      name === "intranet.example.org" && qtype === 1
        ? answer(q, [{ name: "intranet.example.org", type: 1, data: "10.9.0.2" }])
        : answer(q, [], { rcode: name === "intranet.example.org" ? 0 : 3 }),
  );
  const o = origin(pair.b, 8000, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = serveHttpProxy(listener, pair.a, { connectTimeoutMs: 2000 });
  try {
    const port = listener.addr.port;
    const res = await exchange(port, "GET http://intranet:8000/a HTTP/1.1\r\n\r\n");
    assert.match(res, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok$/);
    assert.match(o.requests[0], /^GET \/a HTTP\/1\.1\r\nHost: intranet:8000\r\n/);
    const missing = await exchange(port, "CONNECT nowhere.example.org:80 HTTP/1.1\r\n\r\n");
    assert.match(missing, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    const fetched = await fetch("http://intranet.example.org:8000/b", {
      client: pair.a.httpClient(),
    });
    assert.equal(await fetched.text(), "ok");
    assert.match(o.requests[1], /^GET \/b HTTP\/1\.1\r\nHost: intranet\.example\.org:8000\r\n/);
    assert.ok(dns.queries.includes("intranet.example.org/1"), dns.queries.join(" "));
  } finally {
    listener.close();
    await served;
    await o.close();
    await dns.stop();
    pair.close();
  }
});
