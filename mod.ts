// SPDX-License-Identifier: Apache-2.0
/**
 * gotatun: a userspace WireGuard in TypeScript for Deno.
 *
 * The library surface: a {@link Device} that speaks the WireGuard protocol
 * over any {@link Tun} (where IP packets go) and {@link Bind} (UDP), with
 * in-memory edges for tests and embedding, and the UAPI text configuration
 * that `wg` uses.
 *
 * @example Two devices talking in memory
 * ```ts
 * import { Device, Endpoint, generatePrivateKey, MemoryNetwork, MemoryTun, publicKey, realClock, systemRng } from "./mod.ts";
 *
 * const net = new MemoryNetwork(realClock);
 * const tunA = new MemoryTun(), tunB = new MemoryTun();
 * const a = new Device({ tun: tunA, bind: net.createBind({ v4: "192.0.2.1" }) });
 * const b = new Device({ tun: tunB, bind: net.createBind({ v4: "192.0.2.2" }) });
 * const ka = generatePrivateKey(systemRng), kb = generatePrivateKey(systemRng);
 * a.setPrivateKey(ka);
 * b.setPrivateKey(kb);
 * a.up();
 * b.up();
 * const pb = a.newPeer(publicKey(kb));
 * pb.setEndpoint(Endpoint.parse(`192.0.2.2:${b.listenPort}`));
 * a.allowedIps.insert(4, new Uint8Array([10, 0, 0, 2]), 32, pb);
 * pb.start();
 * const pa = b.newPeer(publicKey(ka));
 * b.allowedIps.insert(4, new Uint8Array([10, 0, 0, 1]), 32, pa);
 * pa.start();
 * // a.handleTunPacket(ipPacketTo10_0_0_2) is delivered to tunB.received after the handshake.
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
export { AllowedIps } from "./src/allowedips.ts";
export { formatPrefix, parsePrefix } from "./src/ip.ts";
