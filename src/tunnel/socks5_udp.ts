// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * SOCKS5 UDP ASSOCIATE (RFC 1928 §7) through a {@link Tunnel}. The relay is
 * a UDP socket on the address the client's TCP control connection came in
 * on (loopback for a local proxy; `Deno.listenDatagram`, so
 * `--unstable-net`), paired with one UDP socket of the tunnel:
 *
 * - Only datagrams from the control connection's IP address are relayed,
 *   and only from one port: the one the client named in its request, or if
 *   it named port 0, the port of its first datagram. Others are dropped.
 * - A datagram's header names its destination (IPv4, IPv6 or a name, which
 *   is resolved through the tunnel); fragments (FRAG ≠ 0) are dropped, as
 *   an implementation without reassembly must (§7).
 * - Datagrams from the tunnel go back to the client with the header of
 *   their source.
 * - The association lives as long as the TCP control connection: when the
 *   client closes it (or it fails), both sockets close.
 *
 * Memory is bounded by the sockets' queues: datagrams are handled one at a
 * time, and what arrives meanwhile waits in the kernel's socket buffer
 * (client side) or the tunnel socket's bounded queue (tunnel side).
 */
import { parseIPv4, parseIPv6 } from "../ip.ts";
import { formatAddress } from "./conn.ts";
import type { TunnelDatagramConn } from "./datagram.ts";
import { ipLiteral } from "./resolver.ts";
import { closeQuietly } from "./relay.ts";
import type { Tunnel } from "./tunnel.ts";

const ATYP_IPV4 = 1;
const ATYP_DOMAIN = 3;
const ATYP_IPV6 = 4;

/** A parsed UDP request header with its payload (a view into the datagram). */
export interface SocksUdpDatagram {
  frag: number;
  /** 4 or 16 bytes, or null for a name in `name`. */
  address: Uint8Array | null;
  name: string;
  port: number;
  data: Uint8Array;
}

/** Reads `+----+------+------+----------+----------+------+` (§7); null when malformed. */
export function parseSocksUdp(b: Uint8Array): SocksUdpDatagram | null {
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0) return null;
  const atyp = b[3];
  let at = 4;
  let len: number;
  if (atyp === ATYP_IPV4) len = 4;
  else if (atyp === ATYP_IPV6) len = 16;
  else if (atyp === ATYP_DOMAIN) {
    if (b.length < 5) return null;
    len = b[4];
    at = 5;
  } else return null;
  if (b.length < at + len + 2) return null;
  const raw = b.subarray(at, at + len);
  return {
    frag: b[2],
    address: atyp === ATYP_DOMAIN ? null : raw,
    name: atyp === ATYP_DOMAIN ? new TextDecoder().decode(raw) : "",
    port: (b[at + len] << 8) | b[at + len + 1],
    data: b.subarray(at + len + 2),
  };
}

/** `data` with the §7 header for source `address` (4 or 16 bytes) and `port`. */
export function formatSocksUdp(address: Uint8Array, port: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(6 + address.length + data.length);
  out[3] = address.length === 4 ? ATYP_IPV4 : ATYP_IPV6;
  out.set(address, 4);
  out[4 + address.length] = port >> 8;
  out[5 + address.length] = port & 0xff;
  out.set(data, 6 + address.length);
  return out;
}

/** Counters of one association. */
export interface UdpAssociationStats {
  /** Client → tunnel datagrams relayed. */
  up: number;
  /** Tunnel → client datagrams relayed. */
  down: number;
  /** From another address or port than the client's. */
  foreign: number;
  /** FRAG ≠ 0. */
  fragments: number;
  /** Malformed headers, names that did not resolve, sends that failed. */
  dropped: number;
}

function addressBytes(hostname: string): Uint8Array {
  return parseIPv4(hostname) ?? parseIPv6(hostname) ?? new Uint8Array(4);
}

/**
 * Runs one association for the client on `conn` after its UDP ASSOCIATE
 * request (`port`: the client's UDP port, 0 when unknown). Opens both
 * sockets, sends the reply (via `reply`, given the code and bound address),
 * relays until `conn` closes, then closes both sockets. Throws if a
 * socket cannot be opened, after replying with a failure code.
 */
export async function udpAssociate(
  conn: Deno.Conn,
  tunnel: Tunnel,
  port: number,
  opts: {
    reply: (rep: number, bound?: Uint8Array, port?: number) => Promise<void>;
    onError?: (message: string) => void;
  },
): Promise<UdpAssociationStats> {
  const local = conn.localAddr as Deno.NetAddr;
  const clientHost = ipLiteral((conn.remoteAddr as Deno.NetAddr).hostname);
  let clientPort = port;
  const stats: UdpAssociationStats = { up: 0, down: 0, foreign: 0, fragments: 0, dropped: 0 };
  let relay: Deno.DatagramConn;
  let tsock: TunnelDatagramConn;
  try {
    relay = Deno.listenDatagram({ transport: "udp", hostname: local.hostname, port: 0 });
  } catch (err) {
    await opts.reply(0x01);
    throw new Error(`UDP ASSOCIATE: cannot open the relay socket: ${(err as Error).message}`);
  }
  try {
    tsock = tunnel.datagram();
  } catch (err) {
    relay.close();
    await opts.reply(0x01);
    throw new Error(`UDP ASSOCIATE: cannot open a tunnel socket: ${(err as Error).message}`);
  }
  const bound = relay.addr as Deno.NetAddr;
  let closed = false;
  const closeAll = () => {
    if (closed) return;
    closed = true;
    closeQuietly(relay);
    tsock.close();
  };
  try {
    await opts.reply(0x00, addressBytes(bound.hostname), bound.port);
  } catch (err) {
    closeAll();
    throw err;
  }

  const up = (async () => {
    for (;;) {
      let data: Uint8Array, from: Deno.Addr;
      try {
        [data, from] = await relay.receive();
      } catch {
        return;
      }
      const f = from as Deno.NetAddr;
      if (ipLiteral(f.hostname) !== clientHost || (clientPort !== 0 && f.port !== clientPort)) {
        stats.foreign++;
        continue;
      }
      const d = parseSocksUdp(data);
      if (!d) {
        stats.dropped++;
        continue;
      }
      if (d.frag !== 0) {
        stats.fragments++;
        continue;
      }
      clientPort = f.port;
      let host: string;
      if (d.address) host = formatAddress(d.address);
      else {
        try {
          host = (await tunnel.resolve(d.name))[0];
        } catch (err) {
          stats.dropped++;
          opts.onError?.(`UDP ASSOCIATE: ${(err as Error).message}`);
          continue;
        }
      }
      try {
        tsock.sendSync(d.data, { hostname: host, port: d.port });
        stats.up++;
      } catch {
        stats.dropped++;
      }
    }
  })();

  const down = (async () => {
    for await (const [data, from] of tsock) {
      if (clientPort === 0 || clientHost === null) {
        stats.dropped++;
        continue;
      }
      const packet = formatSocksUdp(addressBytes(from.hostname), from.port, data);
      try {
        await relay.send(packet, { transport: "udp", hostname: clientHost, port: clientPort });
        stats.down++;
      } catch {
        stats.dropped++;
      }
    }
  })();

  // The control connection: anything the client sends on it is ignored;
  // its end ends the association (§7).
  const buf = new Uint8Array(512);
  try {
    while (await conn.read(buf) !== null) { /* discard */ }
  } catch {
    // reset: the association ends all the same
  } finally {
    closeAll();
  }
  await Promise.allSettled([up, down]);
  return stats;
}
