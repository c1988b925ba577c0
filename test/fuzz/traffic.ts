// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Driving in-memory devices under a FakeClock, for the fuzz targets and the
 * soak: run what is due, send numbered packets through a tunnel and
 * recognise them on the far side, and check that a tunnel still carries
 * traffic within a time limit.
 */
import type { Device } from "../../src/device.ts";
import type { MemoryTun } from "../../src/tun/memory.ts";
import type { FakeClock } from "../_util/fake_clock.ts";
import { ipv4Packet, ipv6Packet } from "../_util/packets.ts";

/** Runs every callback due now, including ones scheduled meanwhile for now. */
export function settle(clock: FakeClock): void {
  clock.advance(0);
}

/** Magic bytes that start the payload of a numbered packet. */
const MAGIC = [0x67, 0x74, 0x75, 0x21]; // "gtu!"

/** An endpoint of a tunnel: a device, its TUN, and its inner addresses. */
export interface TunnelEnd {
  device: Device;
  tun: MemoryTun;
  v4: string;
  v6: string;
}

/**
 * A UDP-in-IP packet from `from` to `to` carrying MAGIC and `id` (u32) in
 * its first payload bytes, `size` bytes of payload in all (≥ 8).
 */
export function numberedPacket(
  from: TunnelEnd,
  to: TunnelEnd,
  id: number,
  family: 4 | 6 = 4,
  size = 64,
): Uint8Array {
  const payload = new Uint8Array(Math.max(8, size));
  payload.set(MAGIC);
  payload[4] = id >>> 24;
  payload[5] = id >>> 16;
  payload[6] = id >>> 8;
  payload[7] = id;
  for (let i = 8; i < payload.length; i++) payload[i] = (i * 7 + id) & 0xff;
  return family === 4 ? ipv4Packet(from.v4, to.v4, payload) : ipv6Packet(from.v6, to.v6, payload);
}

/** The id of a numbered packet, or -1 when `p` is not one. */
export function packetId(p: Uint8Array): number {
  const off = p.length > 0 && p[0] >> 4 === 6 ? 40 : 28;
  if (p.length < off + 8) return -1;
  for (let i = 0; i < 4; i++) if (p[off + i] !== MAGIC[i]) return -1;
  return ((p[off + 4] << 24) | (p[off + 5] << 16) | (p[off + 6] << 8) | p[off + 7]) >>> 0;
}

/** Sends `packet` into `end`'s device as if read from its TUN, and flushes. */
export function sendFrom(end: TunnelEnd, packet: Uint8Array): void {
  end.device.handleTunPacket(packet);
  end.device.flush();
}

/**
 * Sends one numbered packet from `from` to `to` and steps time (100 ms at a
 * time) until it arrives, at most `limitMs`. Other packets arriving meanwhile
 * are left in `to.tun`. Returns the ms it took, or -1 when it never arrived.
 */
export function probe(
  clock: FakeClock,
  from: TunnelEnd,
  to: TunnelEnd,
  id: number,
  limitMs = 30_000,
): number {
  const start = clock.now();
  const seen = () => to.tun.received.some((p) => packetId(p) === id);
  sendFrom(from, numberedPacket(from, to, id));
  settle(clock);
  while (!seen()) {
    if (clock.now() - start >= limitMs) return -1;
    clock.advance(100);
  }
  return clock.now() - start;
}
