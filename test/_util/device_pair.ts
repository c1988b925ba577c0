// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Two devices talking over the in-memory edges (wireguard-go's
 * TestTwoDevicePing setup, GotaTun's device_pair): keys from a seeded RNG,
 * a FakeClock, a MemoryNetwork, and a MemoryTun each. Device A has tunnel
 * addresses 10.0.0.1 / fd00::1, device B 10.0.0.2 / fd00::2.
 */
import { Device } from "../../src/device.ts";
import type { Peer } from "../../src/peer.ts";
import {
  type MemoryBind,
  MemoryNetwork,
  type MemoryNetworkOptions,
} from "../../src/conn/memory.ts";
import { MemoryTun } from "../../src/tun/memory.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { parseIPv4, parseIPv6 } from "../../src/ip.ts";
import { FakeClock, seededRng } from "./fake_clock.ts";
import type { Rng } from "../../src/clock.ts";
import type { Logger } from "../../src/log.ts";

/** One side of a pair. */
export interface Side {
  device: Device;
  tun: MemoryTun;
  bind: MemoryBind;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  /** This side's view of the other side. */
  peer: Peer;
}

/** A configured pair. */
export interface DevicePair {
  clock: FakeClock;
  rng: Rng;
  net: MemoryNetwork;
  a: Side;
  b: Side;
}

/** Adds `cidr` text to `peer`'s allowed IPs on `device`. */
export function allow(device: Device, peer: Peer, cidr: string): void {
  const [ip, bits] = cidr.split("/");
  const v4 = parseIPv4(ip);
  if (v4) device.allowedIps.insert(4, v4, Number(bits), peer);
  else device.allowedIps.insert(6, parseIPv6(ip)!, Number(bits), peer);
}

/** Options for {@link devicePair}. */
export interface DevicePairOptions {
  seed?: number;
  psk?: boolean;
  /** Which sides know the other's endpoint (default both). */
  endpoints?: "both" | "a" | "b";
  network?: MemoryNetworkOptions;
  /** Outer transport family (default 4). */
  outer?: 4 | 6;
  logger?: Logger;
  up?: boolean;
}

/** Builds two up, mutually configured devices. */
export function devicePair(opts: DevicePairOptions = {}): DevicePair {
  const clock = new FakeClock();
  const rng = seededRng(opts.seed ?? 1);
  const net = new MemoryNetwork(clock, { rng, ...opts.network });
  const make = (v4: string, v6: string, name: string) => {
    const tun = new MemoryTun();
    const bind = net.createBind({ v4, v6 });
    const device = new Device({ tun, bind, clock, rng, name, logger: opts.logger });
    const privateKey = generatePrivateKey(rng);
    device.setPrivateKey(privateKey);
    return { tun, bind, device, privateKey, publicKey: publicKey(privateKey) };
  };
  const a0 = make("192.0.2.1", "2001:db8::1", "wgA");
  const b0 = make("192.0.2.2", "2001:db8::2", "wgB");
  a0.device.setListenPort(51820);
  b0.device.setListenPort(51821);
  const pa = a0.device.newPeer(b0.publicKey);
  const pb = b0.device.newPeer(a0.publicKey);
  if (opts.psk) {
    const psk = new Uint8Array(32);
    rng(psk);
    pa.setPresharedKey(psk);
    pb.setPresharedKey(psk);
  }
  allow(a0.device, pa, "10.0.0.2/32");
  allow(a0.device, pa, "fd00::2/128");
  allow(b0.device, pb, "10.0.0.1/32");
  allow(b0.device, pb, "fd00::1/128");
  if (opts.up !== false) {
    a0.device.up();
    b0.device.up();
  }
  const outer = opts.outer ?? 4;
  const endpoints = opts.endpoints ?? "both";
  if (endpoints !== "b") pa.setEndpoint(b0.bind.endpoint(outer));
  if (endpoints !== "a") pb.setEndpoint(a0.bind.endpoint(outer));
  if (opts.up !== false) {
    pa.start();
    pb.start();
  }
  return { clock, rng, net, a: { ...a0, peer: pa }, b: { ...b0, peer: pb } };
}
