// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Two Tunnels built from wg-quick text over a MemoryNetwork on the real
 * clock: A is 10.9.0.1 / fd09::1 at 192.0.2.1:51820, B 10.9.0.2 / fd09::2 at
 * 192.0.2.2:51821; A knows B's endpoint.
 */
import assert from "node:assert/strict";
import { MemoryNetwork } from "../../src/conn/memory.ts";
import { realClock, systemRng } from "../../src/clock.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { keyToBase64 } from "../../src/keys.ts";
import { Tunnel, type TunnelOptions } from "../../src/tunnel/tunnel.ts";

export interface TunnelPair {
  a: Tunnel;
  b: Tunnel;
  net: MemoryNetwork;
  close(): void;
}

/** `opts.dns`: A's `DNS =` value (default "10.9.0.53, example.org", a silent address). */
export async function tunnelPair(
  opts: { dns?: string; tunnel?: TunnelOptions } = {},
): Promise<TunnelPair> {
  const net = new MemoryNetwork(realClock);
  const ka = generatePrivateKey(systemRng), kb = generatePrivateKey(systemRng);
  const psk = keyToBase64(generatePrivateKey(systemRng));
  const a = await Tunnel.fromConfig(
    `[Interface]
PrivateKey = ${keyToBase64(ka)}
Address = 10.9.0.1/24, fd09::1/64
ListenPort = 51820
DNS = ${opts.dns ?? "10.9.0.53, example.org"}

[Peer]
PublicKey = ${keyToBase64(publicKey(kb))}
PresharedKey = ${psk}
AllowedIPs = 10.9.0.0/24, fd09::/64
Endpoint = 192.0.2.2:51821
PersistentKeepalive = 25
`,
    { ...opts.tunnel, bind: net.createBind({ v4: "192.0.2.1" }) },
  );
  const b = await Tunnel.fromConfig(
    `[Interface]
PrivateKey = ${keyToBase64(kb)}
Address = 10.9.0.2/24, fd09::2/64
ListenPort = 51821

[Peer]
PublicKey = ${keyToBase64(publicKey(ka))}
PresharedKey = ${psk}
AllowedIPs = 10.9.0.1/32, fd09::1/128
`,
    { bind: net.createBind({ v4: "192.0.2.2" }) },
  );
  return {
    a,
    b,
    net,
    close() {
      a.close();
      b.close();
    },
  };
}

/** Reads exactly `n` bytes from `conn`; throws at an early end of stream. */
export async function readN(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  for (let off = 0; off < n;) {
    const k = await conn.read(out.subarray(off));
    if (k === null) throw new Error(`EOF after ${off} of ${n} bytes`);
    off += k;
  }
  return out;
}

/** `n` bytes of a fixed pattern. */
export function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 255;
  }
  return out;
}

/** Reads a stream to its end. */
export async function readAll(r: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const p of r) {
    parts.push(p);
    n += p.length;
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Writes `data` in 64 KiB chunks, then closes the stream (FIN). */
export async function writeAll(w: WritableStream<Uint8Array>, data: Uint8Array): Promise<void> {
  const writer = w.getWriter();
  for (let off = 0; off < data.length; off += 65536) {
    await writer.write(data.subarray(off, off + 65536));
  }
  await writer.close();
}

/**
 * Two Tunnels in this process, on their default UDP bind, peered over
 * 127.0.0.1 on random ports: A is `${net}.1`, B `${net}.2`.
 */
export async function loopbackTunnels(net: string): Promise<{ a: Tunnel; b: Tunnel }> {
  const ka = generatePrivateKey(systemRng), kb = generatePrivateKey(systemRng);
  const port = 42000 + Math.floor(Math.random() * 8000);
  const conf = (own: Uint8Array, peer: Uint8Array, addr: string, listen: number, to: number) =>
    `[Interface]\nPrivateKey = ${keyToBase64(own)}\nAddress = ${addr}/32\n` +
    `ListenPort = ${listen}\n[Peer]\nPublicKey = ${keyToBase64(publicKey(peer))}\n` +
    `AllowedIPs = ${net}.0/24\nEndpoint = 127.0.0.1:${to}\n`;
  const a = await Tunnel.fromConfig(conf(ka, kb, `${net}.1`, port, port + 1));
  const b = await Tunnel.fromConfig(conf(kb, ka, `${net}.2`, port + 1, port));
  return { a, b };
}

/**
 * Opens a TCP connection from A to B (`${net}.2`, port 7000) of a
 * {@link loopbackTunnels} pair, sends `size` bytes each way at once (seeds
 * `seeds`), and asserts both arrive byte-exact.
 */
export async function assertTcpBothWays(
  a: Tunnel,
  b: Tunnel,
  net: string,
  size: number,
  seeds: [up: number, down: number],
): Promise<void> {
  const l = b.listen({ port: 7000 });
  try {
    const up = bytes(size, seeds[0]), down = bytes(size, seeds[1]);
    const [ca, cb] = await Promise.all([
      a.connect({ hostname: `${net}.2`, port: 7000, timeoutMs: 10_000 }),
      l.accept(),
    ]);
    const [gotB, gotA] = await Promise.all([
      readAll(cb.readable),
      readAll(ca.readable),
      writeAll(ca.writable, up),
      writeAll(cb.writable, down),
    ]);
    assert.ok(gotB.length === up.length && gotB.every((v, i) => v === up[i]), "A to B");
    assert.ok(gotA.length === down.length && gotA.every((v, i) => v === down[i]), "B to A");
  } finally {
    l.close();
  }
}
