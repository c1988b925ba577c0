// SPDX-License-Identifier: Apache-2.0
/**
 * gotatun: a userspace WireGuard in TypeScript for Deno.
 *
 * The library surface: a {@link Device} that speaks the WireGuard protocol
 * over any {@link Tun} (where IP packets go) and {@link Bind} (UDP), with
 * in-memory edges for tests and embedding, and the UAPI text configuration
 * that `wg` uses ({@link ipcSet} applies `key=value` lines as `wg set` sends
 * them, {@link ipcGet} reads them back as `wg show` does).
 *
 * Its npm dependencies are imported by `npm:` specifiers with versions, so
 * `mod.ts` can be imported from any project, with or without a deno.json.
 *
 * @example Two devices in memory: configure them with UAPI text, send a packet
 * ```ts
 * import {
 *   Device,
 *   generatePrivateKey,
 *   ipcGet,
 *   ipcSet,
 *   keyToHex,
 *   MemoryNetwork,
 *   MemoryTun,
 *   publicKey,
 *   realClock,
 *   systemRng,
 * } from "./mod.ts";
 *
 * const net = new MemoryNetwork(realClock);
 * const tunA = new MemoryTun(), tunB = new MemoryTun();
 * const a = new Device({ tun: tunA, bind: net.createBind({ v4: "192.0.2.1" }) });
 * const b = new Device({ tun: tunB, bind: net.createBind({ v4: "192.0.2.2" }) });
 * a.up();
 * b.up();
 *
 * // The UAPI `set` lines (keys in hex), as `wg setconf` would send them.
 * const keyA = generatePrivateKey(systemRng), keyB = generatePrivateKey(systemRng);
 * const error = ipcSet(a, `private_key=${keyToHex(keyA)}
 * listen_port=51820
 * public_key=${keyToHex(publicKey(keyB))}
 * endpoint=192.0.2.2:51821
 * allowed_ip=10.0.0.2/32
 * `) ?? ipcSet(b, `private_key=${keyToHex(keyB)}
 * listen_port=51821
 * public_key=${keyToHex(publicKey(keyA))}
 * allowed_ip=10.0.0.1/32
 * `);
 * if (error) throw error;
 *
 * // An IPv4 header (UDP, 10.0.0.1 → 10.0.0.2) and 8 zero bytes, into A's TUN side:
 * // A does the handshake with B, then B's TUN side receives the packet.
 * const packet = new Uint8Array(28);
 * packet.set([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
 * const arrived = new Promise<Uint8Array>((resolve) => (tunB.onPacket = resolve));
 * a.handleTunPacket(packet);
 * console.log(`B received ${(await arrived).length} bytes`);
 * console.log(ipcGet(b)); // B learned A's endpoint 192.0.2.1:51820 from the handshake
 * a.close();
 * b.close();
 * ```
 *
 * @example A tunnel inside the program (no root, no TUN): TCP, DNS and fetch through a peer
 * ```ts ignore
 * // deno run --unstable-net --allow-net --allow-read --allow-ffi app.ts
 * // (without --allow-ffi it runs on Deno's own UDP sockets and pure-TypeScript crypto)
 * import { Tunnel, useBestCryptoBackend } from "./mod.ts";
 *
 * useBestCryptoBackend(); // OpenSSL's libcrypto through FFI when it loads
 * const tunnel = await Tunnel.fromConfig(await Deno.readTextFile("wg0.conf"));
 * const conn = await tunnel.connect({ hostname: "10.0.0.2", port: 80 });
 * const w = conn.writable.getWriter();
 * await w.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
 * for await (const chunk of conn.readable) console.log(new TextDecoder().decode(chunk));
 * console.log(await tunnel.resolve("intranet.example")); // the config's DNS, through the tunnel
 * const res = await fetch("http://intranet.example/", { client: tunnel.httpClient() });
 * console.log(res.status, await res.text());
 * tunnel.close();
 * ```
 *
 * @module
 */

export { Device, type DeviceOptions, type DeviceStats, Peer } from "./src/device.ts";
export type { PeerCounters } from "./src/peer.ts";
export { keyFromHex, keyToBase64, keyToHex } from "./src/keys.ts";
export type { Tun } from "./src/tun/tun.ts";
export { MemoryTun } from "./src/tun/memory.ts";
export { type Bind, BindError, type ReceiveFn } from "./src/conn/bind.ts";
export { Endpoint } from "./src/conn/endpoint.ts";
export {
  MemoryBind,
  type MemoryDatagram,
  MemoryNetwork,
  type MemoryNetworkOptions,
} from "./src/conn/memory.ts";
export { type Clock, realClock, type Rng, systemRng } from "./src/clock.ts";
export { createLogger, type Logger, LogLevel, parseLogLevel, silentLogger } from "./src/log.ts";
export {
  clampPrivateKey,
  type CryptoBackend,
  cryptoBackend,
  generatePrivateKey,
  publicKey,
  setCryptoBackend,
} from "./src/crypto.ts";
export { type CryptoSelection, useBestCryptoBackend } from "./src/crypto/select.ts";
export { AllowedIps } from "./src/allowedips.ts";
export { formatPrefix, parsePrefix } from "./src/ip.ts";
export { ipcGet, ipcSet } from "./uapi/apply.ts";
export { ERRNO, UapiError } from "./uapi/errors.ts";
export { Tunnel, TunnelListener, type TunnelOptions } from "./src/tunnel/tunnel.ts";
export { TunnelConn, TunnelError } from "./src/tunnel/conn.ts";
export { TunnelDatagramConn } from "./src/tunnel/datagram.ts";
export { DnsError, type DnsErrorCode } from "./src/tunnel/dns.ts";
export { DnsResolver, type DnsResolverConfig } from "./src/tunnel/resolver.ts";
export {
  parseTunnelConfig,
  type TunnelConfig,
  TunnelConfigError,
  type TunnelPeerConfig,
} from "./src/tunnel/config.ts";
export { DenoUdpBind } from "./src/conn/deno_udp.ts";
export { NetStack, type NetStackOptions } from "./src/netstack/stack.ts";
