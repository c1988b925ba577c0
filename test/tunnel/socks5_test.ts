// SPDX-License-Identifier: Apache-2.0
// SOCKS5 through a tunnel: a Tunnel pair in memory, A's SOCKS server on a
// loopback port, a client doing the RFC 1928 handshake over Deno.connect.
import assert from "node:assert/strict";
import { bytes, readN, tunnelPair } from "./_pair.ts";
import {
  readSocksRequest,
  REP_COMMAND_NOT_SUPPORTED,
  REP_CONNECTION_REFUSED,
  REP_HOST_UNREACHABLE,
  REP_SUCCEEDED,
  serveSocks5,
  type Socks5Options,
  socksReply,
} from "../../src/tunnel/socks5.ts";
import { parseIPv4, parseIPv6 } from "../../src/ip.ts";
import { parseAuthFile } from "../../src/tunnel/proxy_auth.ts";

/** Greets, sends CONNECT for `addr` (4/16 bytes, or a name), returns the reply code. */
async function socksConnect(
  port: number,
  addr: Uint8Array | string,
  dport: number,
  cmd = 1,
): Promise<{ conn: Deno.Conn; rep: number; bound: Uint8Array }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new Uint8Array([5, 1, 0]));
  assert.deepEqual(await readN(conn, 2), new Uint8Array([5, 0]));
  const a = typeof addr === "string" ? new TextEncoder().encode(addr) : addr;
  const atyp = typeof addr === "string" ? 3 : a.length === 4 ? 1 : 4;
  const head = typeof addr === "string" ? [5, cmd, 0, atyp, a.length] : [5, cmd, 0, atyp];
  await conn.write(new Uint8Array([...head, ...a, dport >> 8, dport & 255]));
  const fixed = await readN(conn, 4);
  assert.equal(fixed[0], 5);
  const rest = await readN(conn, (fixed[3] === 4 ? 16 : 4) + 2);
  return { conn, rep: fixed[1], bound: rest };
}

async function withProxy(
  fn: (port: number, pair: Awaited<ReturnType<typeof tunnelPair>>) => Promise<void>,
  opts: Socks5Options = {},
) {
  const pair = await tunnelPair();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = serveSocks5(listener, pair.a, { connectTimeoutMs: 500, ...opts });
  try {
    await fn(listener.addr.port, pair);
  } finally {
    listener.close();
    await served;
    pair.close();
  }
}

Deno.test("socks5: request parsing and replies (RFC 1928 §4-6)", () => {
  assert.equal(readSocksRequest(new Uint8Array([5, 1, 0, 1, 10, 0])), null);
  const r = readSocksRequest(new Uint8Array([5, 1, 0, 1, 10, 9, 0, 2, 0x1f, 0x90, 99]))!;
  assert.deepEqual(r.address, parseIPv4("10.9.0.2"));
  assert.equal(r.port, 8080);
  assert.equal(r.length, 10);
  const d = readSocksRequest(new Uint8Array([5, 1, 0, 3, 3, 0x61, 0x62, 0x63, 0, 80]))!;
  assert.equal(d.name, "abc");
  assert.equal(d.address, null);
  assert.throws(() => readSocksRequest(new Uint8Array([4, 1, 0, 1, 0, 0, 0, 0, 0, 0])));
  assert.throws(() => readSocksRequest(new Uint8Array([5, 1, 0, 9, 0, 0, 0, 0, 0, 0])));
  assert.deepEqual(socksReply(5), new Uint8Array([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]));
  assert.equal(socksReply(0, parseIPv6("fd09::1"), 1234).length, 22);
});

for (const family of [4, 6] as const) {
  Deno.test(`socks5: CONNECT to IPv${family} inside the tunnel, 1 MB each way byte-exact`, () =>
    withProxy(async (port, pair) => {
      const lis = pair.b.listen({ port: 8080 });
      const size = 1 << 20;
      const up = bytes(size, 5), down = bytes(size, 6);
      const server = (async () => {
        const s = await lis.accept();
        const w = s.writable.getWriter();
        const got = new Uint8Array(size);
        let n = 0;
        const writing = (async () => {
          for (let off = 0; off < size; off += 50_000) {
            await w.write(down.subarray(off, off + 50_000));
          }
          await w.close();
        })();
        for await (const chunk of s.readable) {
          got.set(chunk, n);
          n += chunk.length;
        }
        await writing;
        assert.equal(n, size);
        return got;
      })();
      const dst = family === 4 ? parseIPv4("10.9.0.2")! : parseIPv6("fd09::2")!;
      const { conn, rep, bound } = await socksConnect(port, dst, 8080);
      assert.equal(rep, REP_SUCCEEDED);
      assert.deepEqual(
        bound.subarray(0, dst.length),
        family === 4 ? parseIPv4("10.9.0.1") : parseIPv6("fd09::1"),
      );
      const reading = readN(conn, size);
      for (let off = 0; off < size; off += 60_000) await conn.write(up.subarray(off, off + 60_000));
      await conn.closeWrite();
      const got = await reading;
      assert.equal(await conn.read(new Uint8Array(1)), null);
      conn.close();
      assert.ok(got.every((b, i) => b === down[i]), "tunnel to client byte-exact");
      const fromClient = await server;
      assert.ok(fromClient.every((b, i) => b === up[i]), "client to tunnel byte-exact");
      lis.close();
    }));
}

Deno.test("socks5: refused port 0x05, silent address 0x04, localhost 0x04, BIND 0x07, no-auth only", () =>
  withProxy(async (port) => {
    const refused = await socksConnect(port, parseIPv4("10.9.0.2")!, 9);
    assert.equal(refused.rep, REP_CONNECTION_REFUSED);
    refused.conn.close();
    // 10.9.0.77 is routed to B, whose stack drops it: the connect times out.
    const silent = await socksConnect(port, parseIPv4("10.9.0.77")!, 80);
    assert.equal(silent.rep, REP_HOST_UNREACHABLE);
    silent.conn.close();
    // A special-use name is not sent to the tunnel's DNS (src/tunnel/resolver.ts).
    const name = await socksConnect(port, "localhost", 80);
    assert.equal(name.rep, REP_HOST_UNREACHABLE);
    name.conn.close();
    const bind = await socksConnect(port, parseIPv4("10.9.0.2")!, 80, 2);
    assert.equal(bind.rep, REP_COMMAND_NOT_SUPPORTED);
    bind.conn.close();
    // Only username/password offered: no acceptable method.
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    await c.write(new Uint8Array([5, 1, 2]));
    assert.deepEqual(await readN(c, 2), new Uint8Array([5, 0xff]));
    c.close();
  }));

/** Reads until the server closes; the bytes it sent. */
async function readToEnd(conn: Deno.Conn): Promise<number[]> {
  const out: number[] = [];
  const buf = new Uint8Array(64);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return out;
    out.push(...buf.subarray(0, n));
  }
}

Deno.test("socks5: with auth only username/password (RFC 1929); a wrong password is closed", () => {
  const auth = parseAuthFile("alice:wonder land\nbob:x\n", "test");
  return withProxy(async (port, pair) => {
    const lis = pair.b.listen({ port: 8080 });
    const served = (async () => {
      for await (const s of lis) {
        const w = s.writable.getWriter();
        await w.write(new TextEncoder().encode("hi"));
        await w.close();
      }
    })();
    const enc = new TextEncoder();
    const login = (user: string, pass: string) => {
      const u = enc.encode(user), p = enc.encode(pass);
      return new Uint8Array([1, u.length, ...u, p.length, ...p]);
    };
    // No auth offered (method 0 only): 0xFF, then closed.
    const none = await Deno.connect({ hostname: "127.0.0.1", port });
    await none.write(new Uint8Array([5, 1, 0]));
    assert.deepEqual(await readToEnd(none), [5, 0xff]);
    none.close();
    // A wrong password: status 1, then closed before any request.
    const wrong = await Deno.connect({ hostname: "127.0.0.1", port });
    await wrong.write(new Uint8Array([5, 2, 0, 2, ...login("alice", "wonder")]));
    assert.deepEqual(await readToEnd(wrong), [5, 2, 1, 1]);
    wrong.close();
    // Another user's password.
    const swapped = await Deno.connect({ hostname: "127.0.0.1", port });
    await swapped.write(new Uint8Array([5, 1, 2, ...login("bob", "wonder land")]));
    assert.deepEqual(await readToEnd(swapped), [5, 2, 1, 1]);
    swapped.close();
    // The right one, in pieces: status 0, then CONNECT works.
    const ok = await Deno.connect({ hostname: "127.0.0.1", port });
    await ok.write(new Uint8Array([5, 3, 0, 1, 2]));
    assert.deepEqual(await readN(ok, 2), new Uint8Array([5, 2]));
    const msg = login("alice", "wonder land");
    await ok.write(msg.subarray(0, 4));
    await new Promise((r) => setTimeout(r, 20));
    await ok.write(msg.subarray(4));
    assert.deepEqual(await readN(ok, 2), new Uint8Array([1, 0]));
    await ok.write(new Uint8Array([5, 1, 0, 1, ...parseIPv4("10.9.0.2")!, 0x1f, 0x90]));
    const reply = await readN(ok, 10);
    assert.equal(reply[1], REP_SUCCEEDED);
    assert.deepEqual(await readToEnd(ok), [...new TextEncoder().encode("hi")]);
    ok.close();
    lis.close();
    await served;
  }, { auth });
});

Deno.test("socks5: a client that stalls in the negotiation is closed after negotiationTimeoutMs", () =>
  withProxy(async (port) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new Uint8Array([5, 1])); // NMETHODS 1, the method never comes
    const t0 = performance.now();
    assert.deepEqual(await readToEnd(conn), []);
    const took = performance.now() - t0;
    assert.ok(took >= 150 && took < 3000, `${took} ms`);
    conn.close();
  }, { negotiationTimeoutMs: 200 }));

Deno.test("socks5: past maxClients a new client is closed at once; a freed slot serves again", () =>
  withProxy(async (port) => {
    // Two clients hold both slots: connected, greeting not sent yet.
    const holders = [
      await Deno.connect({ hostname: "127.0.0.1", port }),
      await Deno.connect({ hostname: "127.0.0.1", port }),
    ];
    await new Promise((r) => setTimeout(r, 50));
    const third = await Deno.connect({ hostname: "127.0.0.1", port });
    // Closed at once: without the cap it would wait for its greeting until the 60 s timeout.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      third.read(new Uint8Array(8)).catch(() => null),
      new Promise<string>((r) => timer = setTimeout(() => r("still open after 2 s"), 2000)),
    ]);
    clearTimeout(timer);
    assert.equal(n, null, "the third client is closed without an answer");
    third.close();
    holders.pop()!.close();
    await new Promise((r) => setTimeout(r, 50));
    // The freed slot takes a client again: its greeting is answered.
    const next = await Deno.connect({ hostname: "127.0.0.1", port });
    await next.write(new Uint8Array([5, 1, 0]));
    assert.deepEqual([...await readN(next, 2)], [5, 0]);
    next.close();
    for (const h of holders) h.close();
  }, { maxClients: 2, negotiationTimeoutMs: 60_000 }));
