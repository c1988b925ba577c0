// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The contract between the device and a TUN edge (wireguard-go `tun.Device`).
 * The edge pushes packets it reads into `Device.handleTunPacket()` and tells the
 * device about up/down and MTU changes; the device writes decrypted packets
 * back through {@link Tun.write}.
 */

/** Where decrypted inner IP packets go. */
export interface Tun {
  /** The interface MTU now (the device pads transport packets up to it). */
  readonly mtu: number;
  /**
   * Writes one IPv4 or IPv6 packet to the interface. The edge must not keep a
   * reference to `packet` after it returns (copy it to batch). Errors are the
   * edge's to count; this never throws.
   */
  write(packet: Uint8Array): void;
  /** Pushes out anything {@link Tun.write} batched. Optional. */
  flush?(): void;
}
