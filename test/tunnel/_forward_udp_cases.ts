// SPDX-License-Identifier: Apache-2.0
// UDP forwarding through a Tunnel pair in memory, with real loopback UDP
// sockets on this side. Deno.listenDatagram needs --unstable-net, which
// `deno test -A test/` does not give, so forward_udp_test.ts runs this file
// in a child `deno test --unstable-net`.
import assert from "node:assert/strict";
import { tunnelPair } from "./_pair.ts";
import { forwardLocalUdp, forwardRemoteUdp } from "../../src/tunnel/forward_udp.ts";
import type { UdpSocket } from "../../src/netstack/udp.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../../src/ip.ts";

const enc = new TextEncoder(), dec = new TextDecoder();

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([
    p,
    new Promise<never>((_, rej) => t = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms)),
  ]).finally(() => clearTimeout(t));
}

/** Answers "echo:<data>" to every datagram on a stack socket; records sender ports. */
function stackEcho(sock: UdpSocket): number[] {
  const senders: number[] = [];
  const buf = new Uint8Array(65535);
  sock.onReadable = () => {
    let n: number;
    while ((n = sock.receive(buf)) >= 0) {
      const f = sock.from;
      senders.push(f.port);
      const reply = new Uint8Array([...enc.encode("echo:"), ...buf.subarray(0, n)]);
      sock.sendTo(reply, f.address.slice(0, f.family === 4 ? 4 : 16), f.port);
    }
  };
  return senders;
}

/** The next datagram on a stack socket as text, with its sender. */
function stackReceive(sock: UdpSocket): Promise<{ text: string; from: string }> {
  const buf = new Uint8Array(65535);
  return withTimeout(
    new Promise((resolve) => {
      const take = () => {
        const n = sock.receive(buf);
        if (n < 0) return false;
        const a = sock.from.address;
        const host = sock.from.family === 4 ? formatIPv4(a.subarray(0, 4)) : formatIPv6(a);
        resolve({ text: dec.decode(buf.subarray(0, n)), from: `${host}:${sock.from.port}` });
        return true;
      };
      if (!take()) sock.onReadable = () => void take();
    }),
    3000,
    "datagram through the tunnel",
  );
}

function localSocket(hostname = "127.0.0.1"): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
}

async function ask(c: Deno.DatagramConn, to: Deno.NetAddr, text: string): Promise<string> {
  await c.send(enc.encode(text), to);
  const [d] = await withTimeout(c.receive(), 3000, `answer to ${text}`);
  return dec.decode(d);
}

for (const family of [4, 6] as const) {
  Deno.test(`forward -L udp: round trips to IPv${family} in the tunnel, one session per client`, async () => {
    const pair = await tunnelPair();
    const echo = pair.b.stack.udp(53);
    const senders = stackEcho(echo);
    const bind = family === 4 ? "127.0.0.1" : "::1";
    const socket = localSocket(bind);
    const to = socket.addr as Deno.NetAddr;
    const fwd = forwardLocalUdp(pair.a, socket, {
      hostname: family === 4 ? "10.9.0.2" : "fd09::2",
      port: 53,
    });
    const c1 = localSocket(bind), c2 = localSocket(bind);
    try {
      assert.equal(await ask(c1, to, "one"), "echo:one");
      assert.equal(await ask(c2, to, "two"), "echo:two");
      assert.equal(await ask(c1, to, "three"), "echo:three");
      assert.equal(fwd.active, 2);
      // Each client leaves the tunnel from its own port, the same one each time.
      assert.equal(new Set(senders).size, 2);
      assert.equal(senders[0], senders[2]);
      assert.equal(fwd.dropped, 0);
    } finally {
      c1.close();
      c2.close();
      fwd.close();
      await fwd.done;
      echo.close();
      pair.close();
    }
    assert.equal(fwd.active, 0);
  });
}

Deno.test("forward -L udp: sessions expire after the idle time; stray sources and oversize datagrams are dropped", async () => {
  const pair = await tunnelPair();
  const echo = pair.b.stack.udp(53);
  const senders = stackEcho(echo);
  const socket = localSocket();
  const to = socket.addr as Deno.NetAddr;
  const fwd = forwardLocalUdp(pair.a, socket, { hostname: "10.9.0.2", port: 53 }, {
    idleTimeoutMs: 300,
  });
  const c = localSocket();
  try {
    assert.equal(await ask(c, to, "a"), "echo:a");
    assert.equal(fwd.active, 1);
    const firstPort = senders[0];
    // Something other than the target sends to the session's tunnel port: not passed on.
    const stray = pair.b.stack.udp(0);
    stray.sendTo(enc.encode("stray"), parseIPv4("10.9.0.1")!, firstPort);
    // Larger than the tunnel's MTU (1420): dropped and counted, the forward goes on.
    await c.send(new Uint8Array(2000), to);
    assert.equal(await ask(c, to, "b"), "echo:b", "the stray datagram did not reach the client");
    assert.equal(fwd.dropped, 1);
    stray.close();
    await sleep(700);
    assert.equal(fwd.active, 0, "the idle session ended");
    // The same client again: a new session, from a new tunnel port.
    assert.equal(await ask(c, to, "c"), "echo:c");
    assert.equal(fwd.active, 1);
    assert.notEqual(senders.at(-1), firstPort);
    // The old session's port is closed on A's stack: a datagram to it is refused.
    const before = pair.a.stack.stats.udpNoPort;
    const probe = pair.b.stack.udp(0);
    probe.sendTo(enc.encode("late"), parseIPv4("10.9.0.1")!, firstPort);
    for (let i = 0; i < 100 && pair.a.stack.stats.udpNoPort === before; i++) await sleep(10);
    assert.equal(pair.a.stack.stats.udpNoPort, before + 1);
    probe.close();
  } finally {
    c.close();
    fwd.close();
    await fwd.done;
    echo.close();
    pair.close();
  }
});

Deno.test("forward -L udp: at most maxSessions clients; a new one takes the oldest's place", async () => {
  const pair = await tunnelPair();
  const echo = pair.b.stack.udp(53);
  stackEcho(echo);
  const socket = localSocket();
  const to = socket.addr as Deno.NetAddr;
  const fwd = forwardLocalUdp(pair.a, socket, { hostname: "10.9.0.2", port: 53 }, {
    maxSessions: 2,
  });
  const clients = [localSocket(), localSocket(), localSocket()];
  try {
    for (const [i, c] of clients.entries()) assert.equal(await ask(c, to, `c${i}`), `echo:c${i}`);
    assert.equal(fwd.active, 2);
    // The evicted first client simply gets a new session.
    assert.equal(await ask(clients[0], to, "again"), "echo:again");
    assert.equal(fwd.active, 2);
  } finally {
    for (const c of clients) c.close();
    fwd.close();
    await fwd.done;
    echo.close();
    pair.close();
  }
});

for (const family of [4, 6] as const) {
  Deno.test(`forward -R udp: a datagram to A's stack reaches a loopback IPv${family} server and back`, async () => {
    const pair = await tunnelPair();
    const host = family === 4 ? "127.0.0.1" : "::1";
    const server = localSocket(host);
    const serverPort = (server.addr as Deno.NetAddr).port;
    const seen: number[] = [];
    const serving = (async () => {
      for (;;) {
        let d: Uint8Array, a: Deno.Addr;
        try {
          [d, a] = await server.receive();
        } catch {
          return;
        }
        seen.push((a as Deno.NetAddr).port);
        await server.send(new Uint8Array([...enc.encode("local:"), ...d]), a);
      }
    })();
    const fwd = forwardRemoteUdp(pair.a, 5353, { hostname: host, port: serverPort }, {
      idleTimeoutMs: 300,
    });
    const b1 = pair.b.stack.udp(0), b2 = pair.b.stack.udp(0);
    const a = family === 4 ? parseIPv4("10.9.0.1")! : parseIPv6("fd09::1")!;
    const aText = family === 4 ? "10.9.0.1:5353" : "fd09::1:5353";
    try {
      const r1 = stackReceive(b1);
      b1.sendTo(enc.encode("x"), a, 5353);
      assert.deepEqual(await r1, { text: "local:x", from: aText });
      const r2 = stackReceive(b2);
      b2.sendTo(enc.encode("y"), a, 5353);
      assert.deepEqual(await r2, { text: "local:y", from: aText });
      assert.equal(fwd.active, 2);
      assert.equal(new Set(seen).size, 2, "one local socket per tunnel client");
      await sleep(700);
      assert.equal(fwd.active, 0, "idle sessions ended");
      const r3 = stackReceive(b1);
      b1.sendTo(enc.encode("z"), a, 5353);
      assert.deepEqual(await r3, { text: "local:z", from: aText });
      assert.equal(new Set(seen).size, 3, "a new session, a new local socket");
      assert.equal(fwd.dropped, 0);
    } finally {
      b1.close();
      b2.close();
      fwd.close();
      await fwd.done;
      server.close();
      await serving;
      pair.close();
    }
  });
}

Deno.test("forward -R udp: a port the stack already uses is refused", async () => {
  const pair = await tunnelPair();
  const taken = pair.a.stack.udp(5353);
  try {
    assert.throws(
      () => forwardRemoteUdp(pair.a, 5353, { hostname: "127.0.0.1", port: 53 }),
      /5353/,
    );
    assert.throws(
      () => forwardRemoteUdp(pair.a, 5354, { hostname: "localhost", port: 53 }),
      TypeError,
    );
  } finally {
    taken.close();
    pair.close();
  }
});
