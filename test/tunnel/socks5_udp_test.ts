// SPDX-License-Identifier: Apache-2.0
// SOCKS5 with names (socks5h) and UDP ASSOCIATE (RFC 1928 §7): a Tunnel pair
// in memory with a DNS server on B, A's SOCKS server on a loopback port, and
// a client doing the RFC 1928 exchange over Deno.connect and a loopback UDP
// socket. UDP ASSOCIATE needs Deno.listenDatagram (--unstable-net); without
// it this file runs itself again in a `deno test --unstable-net` child.
import assert from "node:assert/strict";
import { readN, tunnelPair } from "./_pair.ts";
import { denoTestChild } from "../_util/proc.ts";
import { answer, PTR_QNAME, serveDns } from "./_dns_server.ts";
import {
  REP_COMMAND_NOT_SUPPORTED,
  REP_HOST_UNREACHABLE,
  REP_SUCCEEDED,
  serveSocks5,
} from "../../src/tunnel/socks5.ts";
import { formatSocksUdp, parseSocksUdp } from "../../src/tunnel/socks5_udp.ts";
import { TYPE_A } from "../../src/tunnel/dns.ts";
import { formatIPv4, parseIPv4, parseIPv6 } from "../../src/ip.ts";

/** Greets, sends command `cmd` for `addr` (4/16 bytes, or a name); the reply. */
async function socksRequest(
  port: number,
  cmd: number,
  addr: Uint8Array | string,
  dport: number,
): Promise<{ conn: Deno.Conn; rep: number; bound: string; bport: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new Uint8Array([5, 1, 0]));
  assert.deepEqual(await readN(conn, 2), new Uint8Array([5, 0]));
  const a = typeof addr === "string" ? new TextEncoder().encode(addr) : addr;
  const head = typeof addr === "string"
    ? [5, cmd, 0, 3, a.length]
    : [5, cmd, 0, a.length === 4 ? 1 : 4];
  await conn.write(new Uint8Array([...head, ...a, dport >> 8, dport & 255]));
  const fixed = await readN(conn, 4);
  assert.equal(fixed[0], 5);
  const rest = await readN(conn, (fixed[3] === 4 ? 16 : 4) + 2);
  const bound = formatIPv4(rest.subarray(0, 4));
  return {
    conn,
    rep: fixed[1],
    bound,
    bport: (rest[rest.length - 2] << 8) | rest[rest.length - 1],
  };
}

/** B's zone: host.example.org is 10.9.0.2; everything else NXDOMAIN. */
function zone(name: string, qtype: number, q: Uint8Array): Uint8Array {
  if (name === "host.example.org") {
    return answer(
      q,
      qtype === TYPE_A ? [{ name: PTR_QNAME, type: qtype, data: "10.9.0.2" }] : [
        { name: PTR_QNAME, type: qtype, data: "fd09::2" },
      ],
    );
  }
  return answer(q, [], { rcode: 3 });
}

async function withProxy(
  fn: (port: number, pair: Awaited<ReturnType<typeof tunnelPair>>) => Promise<void>,
) {
  const pair = await tunnelPair({
    dns: "10.9.0.2, example.org",
    tunnel: { dns: { timeoutMs: 500 } },
  });
  const dns = serveDns(pair.b, zone);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = serveSocks5(listener, pair.a, { connectTimeoutMs: 2000 });
  // MemoryNetwork on the real clock keeps nothing alive by itself.
  const keep = setInterval(() => {}, 1000);
  try {
    await fn(listener.addr.port, pair);
  } finally {
    clearInterval(keep);
    listener.close();
    await served;
    await dns.stop();
    pair.close();
  }
}

Deno.test("socks5_udp: the §7 header parses and formats; short or odd headers are null", () => {
  const d = parseSocksUdp(
    new Uint8Array([0, 0, 0, 3, 4, 0x68, 0x6f, 0x73, 0x74, 0, 53, 9, 8, 7]),
  )!;
  assert.equal(d.name, "host");
  assert.equal(d.port, 53);
  assert.deepEqual(d.data, new Uint8Array([9, 8, 7]));
  const v6 = formatSocksUdp(parseIPv6("fd09::2")!, 5353, new Uint8Array([1]));
  const back = parseSocksUdp(v6)!;
  assert.deepEqual(back.address, parseIPv6("fd09::2"));
  assert.equal(back.port, 5353);
  assert.equal(back.frag, 0);
  assert.equal(parseSocksUdp(new Uint8Array([0, 0, 0, 1, 10, 9, 0])), null, "short");
  assert.equal(parseSocksUdp(new Uint8Array([0, 1, 0, 1, 10, 9, 0, 2, 0, 53])), null, "RSV");
  assert.equal(parseSocksUdp(new Uint8Array([0, 0, 0, 7, 10, 9, 0, 2, 0, 53])), null, "ATYP");
  assert.equal(parseSocksUdp(new Uint8Array([0, 0, 0, 3, 9, 0x61, 0, 53])), null, "name length");
});

Deno.test("socks5h: CONNECT to a name resolved through the tunnel; NXDOMAIN is 0x04", () =>
  withProxy(async (port, pair) => {
    const lis = pair.b.listen({ port: 8080 });
    const server = (async () => {
      const s = await lis.accept();
      await s.readable.pipeTo(s.writable);
    })();
    const ok = await socksRequest(port, 1, "host", 8080); // search domain example.org
    assert.equal(ok.rep, REP_SUCCEEDED);
    assert.equal(ok.bound, "10.9.0.1");
    await ok.conn.write(new TextEncoder().encode("ping"));
    assert.equal(new TextDecoder().decode(await readN(ok.conn, 4)), "ping");
    ok.conn.close();
    await server.catch(() => {});
    const nx = await socksRequest(port, 1, "nothere.example.org", 80);
    assert.equal(nx.rep, REP_HOST_UNREACHABLE);
    nx.conn.close();
    const empty = await socksRequest(port, 1, "", 80);
    assert.equal(empty.rep, REP_HOST_UNREACHABLE, "an empty name");
    empty.conn.close();
    lis.close();
  }));

if ("listenDatagram" in Deno) {
  Deno.test("socks5: UDP ASSOCIATE relays both ways, to addresses and names; drops fragments and strangers; ends with TCP", () =>
    withProxy(async (port, pair) => {
      const echo = pair.b.datagram({ port: 5353 });
      const echoing = (async () => {
        for await (const [d, from] of echo) await echo.send(d, from);
      })();
      const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
      const cport = (client.addr as Deno.NetAddr).port;
      const stranger = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
      const assoc = await socksRequest(port, 3, parseIPv4("0.0.0.0")!, cport);
      assert.equal(assoc.rep, REP_SUCCEEDED);
      assert.equal(assoc.bound, "127.0.0.1");
      const relay: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: assoc.bport };
      const to10 = (data: number[], frag = 0) => {
        const p = formatSocksUdp(parseIPv4("10.9.0.2")!, 5353, new Uint8Array(data));
        p[2] = frag;
        return p;
      };
      const recv = async (c: Deno.DatagramConn, ms: number) => {
        let t: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<null>((r) => t = setTimeout(() => r(null), ms));
        const got = await Promise.race([c.receive(), timeout]);
        clearTimeout(t);
        return got;
      };
      // To an address.
      await client.send(to10([1, 2, 3]), relay);
      const r1 = await recv(client, 5000);
      assert.ok(r1, "echo came back");
      const h1 = parseSocksUdp(r1[0])!;
      assert.deepEqual(h1.address, parseIPv4("10.9.0.2"));
      assert.equal(h1.port, 5353);
      assert.deepEqual(h1.data, new Uint8Array([1, 2, 3]));
      // To a name (ATYP 3), resolved through the tunnel.
      const name = new TextEncoder().encode("host.example.org");
      await client.send(
        new Uint8Array([0, 0, 0, 3, name.length, ...name, 5353 >> 8, 5353 & 255, 4, 5]),
        relay,
      );
      const r2 = await recv(client, 5000);
      assert.ok(r2, "echo of the datagram sent to a name");
      assert.deepEqual(parseSocksUdp(r2[0])!.data, new Uint8Array([4, 5]));
      // A fragment and a datagram from another port are dropped.
      await client.send(to10([6], 1), relay);
      await stranger.send(to10([7]), relay);
      assert.equal(
        await recv(client, 300),
        null,
        "no echo of the fragment or the stranger's datagram",
      );
      assert.equal(await recv(stranger, 100), null, "nothing for a stranger");
      // The client's own datagrams still pass.
      await client.send(to10([8]), relay);
      assert.deepEqual(parseSocksUdp((await recv(client, 5000))![0])!.data, new Uint8Array([8]));
      // Closing the control connection ends the association: the relay's
      // port is free again and the tunnel socket is gone.
      assoc.conn.close();
      let freed = false;
      for (let i = 0; i < 50 && !freed; i++) {
        await new Promise((r) => setTimeout(r, 20));
        try {
          Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: assoc.bport })
            .close();
          freed = true;
        } catch {
          // still bound
        }
      }
      assert.ok(freed, "relay socket closed with the TCP connection");
      client.close();
      stranger.close();
      echo.close();
      await echoing;
    }));
} else {
  Deno.test("socks5: UDP ASSOCIATE (rerun with --unstable-net)", async () => {
    const { code, text } = await denoTestChild([
      "-A",
      "--no-prompt",
      "--unstable-net",
      "--filter",
      "UDP ASSOCIATE relays",
      new URL(import.meta.url).pathname,
    ]);
    assert.equal(code, 0, text);
    assert.match(text, /UDP ASSOCIATE relays both ways.* \.\.\. ok/);
    assert.match(text, /ok \| 1 passed/);
  });
  Deno.test("socks5: UDP ASSOCIATE without --unstable-net is 0x07", () =>
    withProxy(async (port) => {
      const r = await socksRequest(port, 3, parseIPv4("0.0.0.0")!, 0);
      assert.equal(r.rep, REP_COMMAND_NOT_SUPPORTED);
      r.conn.close();
    }));
}
