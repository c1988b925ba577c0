// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * MemoryTun: an in-memory TUN (wireguard-go `tuntest.ChannelTUN`). Packets the
 * device writes are kept (copied) for the test or embedder to read; packets
 * to send go straight into `Device.handleTunPacket`.
 */
import type { Tun } from "./tun.ts";
import { DEFAULT_MTU } from "../constants.ts";

/** An in-memory TUN. */
export class MemoryTun implements Tun {
  /** The MTU the device pads to; change it freely. */
  mtu: number;
  /** Packets written by the device, oldest first (copies). */
  readonly received: Uint8Array[] = [];
  /** Called with each packet written (a copy), after it is queued. */
  onPacket: ((packet: Uint8Array) => void) | null = null;
  /** At most this many packets are kept; older ones are dropped. */
  readonly limit: number;

  constructor(opts: { mtu?: number; limit?: number } = {}) {
    this.mtu = opts.mtu ?? DEFAULT_MTU;
    this.limit = opts.limit ?? 4096;
  }

  /** Tun: keeps a copy of the packet. */
  write(packet: Uint8Array): void {
    const copy = packet.slice();
    if (this.received.length >= this.limit) this.received.shift();
    this.received.push(copy);
    this.onPacket?.(copy);
  }

  /** Removes and returns the packets written so far. */
  take(): Uint8Array[] {
    return this.received.splice(0, this.received.length);
  }
}
