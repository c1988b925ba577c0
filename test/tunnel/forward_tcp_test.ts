// SPDX-License-Identifier: Apache-2.0
// TCP forwarding through a Tunnel pair in memory: -L from a loopback port
// of this process to a server on B's stack, -R from A's stack to a loopback
// server of this process, B's stack playing the client.
import assert from "node:assert/strict";
import { bytes, readAll, tunnelPair, writeAll } from "./_pair.ts";
import { forwardLocalTcp, forwardRemoteTcp } from "../../src/tunnel/forward.ts";
import type { Logger } from "../../src/log.ts";

async function sha256(b: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Reads a Deno.Conn to its end (not through conn.readable, which closes the conn at EOF). */
async function readConn(conn: Deno.Conn): Promise<Uint8Array> {
  return await readAll(
    new ReadableStream<Uint8Array>({
      async pull(c) {
        const buf = new Uint8Array(65536);
        const n = await conn.read(buf);
        if (n === null) c.close();
        else c.enqueue(buf.subarray(0, n));
      },
    }),
  );
}

async function writeConn(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off, off + 60_000));
}

function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    verbose: (m) => lines.push(`DEBUG ${m}`),
    error: (m) => lines.push(`ERROR ${m}`),
  };
}

for (const family of [4, 6] as const) {
  Deno.test(`forward -L tcp: 1 MiB each way to IPv${family} in the tunnel, sha256 equal`, async () => {
    const pair = await tunnelPair();
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const target = family === 4 ? "10.9.0.2" : "fd09::2";
    const fwd = forwardLocalTcp(pair.a, listener, { hostname: target, port: 8080 });
    const lis = pair.b.listen({ port: 8080 });
    try {
      const size = 1 << 20;
      const up = bytes(size, 11), down = bytes(size, 12);
      const server = (async () => {
        const s = await lis.accept();
        const [got] = await Promise.all([readAll(s.readable), writeAll(s.writable, down)]);
        return got;
      })();
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      const reading = readConn(conn);
      await writeConn(conn, up);
      await conn.closeWrite();
      const got = await reading;
      conn.close();
      assert.equal(got.length, size);
      assert.equal(await sha256(got), await sha256(down), "tunnel to client");
      const atServer = await server;
      assert.equal(atServer.length, size);
      assert.equal(await sha256(atServer), await sha256(up), "client to tunnel");
    } finally {
      fwd.close();
      await fwd.done;
      lis.close();
      pair.close();
    }
    assert.equal(fwd.active, 0);
  });
}

Deno.test("forward -L tcp: half-close, the answer comes after the client's FIN", async () => {
  const pair = await tunnelPair();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const fwd = forwardLocalTcp(pair.a, listener, { hostname: "10.9.0.2", port: 7 });
  const lis = pair.b.listen({ port: 7 });
  try {
    // The server answers only once it has read the request to its end.
    const server = (async () => {
      const s = await lis.accept();
      const req = await readAll(s.readable);
      const w = s.writable.getWriter();
      await w.write(new TextEncoder().encode(`got ${req.length} bytes`));
      await w.close();
    })();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    await writeConn(conn, bytes(5000));
    await conn.closeWrite();
    const answer = new TextDecoder().decode(await readConn(conn));
    assert.equal(answer, "got 5000 bytes");
    conn.close();
    await server;
  } finally {
    fwd.close();
    await fwd.done;
    lis.close();
    pair.close();
  }
});

Deno.test("forward -L tcp: a refused target closes the client, logs it, and the forward goes on", async () => {
  const pair = await tunnelPair();
  const log = memoryLogger();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const fwd = forwardLocalTcp(pair.a, listener, { hostname: "10.9.0.2", port: 9 }, {
    logger: log,
  });
  try {
    const c1 = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    await c1.write(new Uint8Array([1, 2, 3]));
    assert.deepEqual(await readConn(c1), new Uint8Array(0));
    c1.close();
    assert.ok(log.lines.some((l) => /^DEBUG .*10\.9\.0\.2:9.*refused/.test(l)), log.lines.join());
    assert.ok(!log.lines.some((l) => l.startsWith("ERROR")), log.lines.join());
    // Now a server is there: the same forward carries the next connection.
    const lis = pair.b.listen({ port: 9 });
    const served = (async () => {
      const s = await lis.accept();
      await writeAll(s.writable, new TextEncoder().encode("hello"));
      await readAll(s.readable);
    })();
    const c2 = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    await c2.closeWrite();
    assert.equal(new TextDecoder().decode(await readConn(c2)), "hello");
    c2.close();
    await served;
    lis.close();
  } finally {
    fwd.close();
    await fwd.done;
    pair.close();
  }
});

Deno.test("forward -L tcp: connections beyond maxConnections are closed at once", async () => {
  const pair = await tunnelPair();
  const log = memoryLogger();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const fwd = forwardLocalTcp(pair.a, listener, { hostname: "10.9.0.2", port: 80 }, {
    logger: log,
    maxConnections: 1,
  });
  const lis = pair.b.listen({ port: 80 });
  try {
    const first = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const s = await lis.accept();
    assert.equal(fwd.active, 1);
    const second = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    assert.deepEqual(await readConn(second), new Uint8Array(0));
    second.close();
    assert.ok(log.lines.some((l) => /too many connections/.test(l)), log.lines.join());
    // The first still works.
    await first.write(new TextEncoder().encode("x"));
    await first.closeWrite();
    assert.equal(new TextDecoder().decode(await readAll(s.readable)), "x");
    await writeAll(s.writable, new Uint8Array(0));
    assert.deepEqual(await readConn(first), new Uint8Array(0));
    first.close();
  } finally {
    fwd.close();
    await fwd.done;
    lis.close();
    pair.close();
  }
});

Deno.test("forward -R tcp: a connection to A's stack reaches a loopback server, 1 MiB each way", async () => {
  const pair = await tunnelPair();
  const local = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const fwd = forwardRemoteTcp(pair.a.listen({ port: 2222 }), {
    hostname: "127.0.0.1",
    port: local.addr.port,
  });
  try {
    const size = 1 << 20;
    const up = bytes(size, 21), down = bytes(size, 22);
    const server = (async () => {
      const c = await local.accept();
      const [got] = await Promise.all([
        readConn(c),
        (async () => {
          await writeConn(c, down);
          await c.closeWrite();
        })(),
      ]);
      c.close();
      return got;
    })();
    const t = await pair.b.connect({ hostname: "10.9.0.1", port: 2222, timeoutMs: 5000 });
    const [got] = await Promise.all([readAll(t.readable), writeAll(t.writable, up)]);
    t.close();
    assert.equal(await sha256(got), await sha256(down), "loopback server to tunnel client");
    assert.equal(await sha256(await server), await sha256(up), "tunnel client to loopback server");
  } finally {
    fwd.close();
    await fwd.done;
    local.close();
    pair.close();
  }
});

Deno.test("forward -R tcp: a refused local port resets the tunnel's connection", async () => {
  const pair = await tunnelPair();
  const log = memoryLogger();
  // A port nobody listens on: bind one, note it, close it.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = probe.addr.port;
  probe.close();
  const fwd = forwardRemoteTcp(pair.a.listen({ port: 2223 }), {
    hostname: "127.0.0.1",
    port: deadPort,
  }, { logger: log });
  try {
    const t = await pair.b.connect({ hostname: "10.9.0.1", port: 2223, timeoutMs: 5000 });
    await assert.rejects(readAll(t.readable), /reset/);
    t.close();
    assert.ok(log.lines.some((l) => /^DEBUG .*refused/i.test(l)), log.lines.join());
  } finally {
    fwd.close();
    await fwd.done;
    pair.close();
  }
});

Deno.test("forward -L tcp: close() does not wait for a connect that hangs", async () => {
  const pair = await tunnelPair();
  const log = memoryLogger();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // 10.9.0.77 is routed to B, whose stack drops it: the connect would take the full timeout.
  const fwd = forwardLocalTcp(pair.a, listener, { hostname: "10.9.0.77", port: 80 }, {
    logger: log,
    connectTimeoutMs: 60_000,
  });
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    for (let i = 0; i < 100 && fwd.active === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(fwd.active, 1);
    const t0 = performance.now();
    fwd.close();
    await fwd.done;
    assert.ok(performance.now() - t0 < 1000, `done after ${performance.now() - t0} ms`);
    assert.equal(fwd.active, 0);
    assert.deepEqual(await readConn(c), new Uint8Array(0));
    c.close();
    assert.ok(!log.lines.some((l) => l.startsWith("ERROR")), log.lines.join());
  } finally {
    fwd.close();
    pair.close();
  }
});
