// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link UdpSocket}: a UDP port of the stack. Datagrams that arrive wait in
 * a byte ring of bounded size (a datagram that does not fit is dropped and
 * counted), so a flood costs a bounded amount of memory; the ring takes its
 * storage from the stack's pool only while datagrams wait.
 */
import { Ring } from "./ring.ts";
import type { BufferPool } from "./buffer_pool.ts";
import { copyBytes } from "./ip_packet.ts";

/** What a socket needs from its stack. */
export interface UdpHost {
  /** Sends `data[off..off + len)` from `localPort` to `remote`:`remotePort`; false when it cannot. */
  sendUdp(
    family: 4 | 6,
    remote: Uint8Array,
    remotePort: number,
    localPort: number,
    data: Uint8Array,
    off: number,
    len: number,
  ): boolean;
  /** The socket closed: free its port. */
  releaseUdp(socket: UdpSocket): void;
}

/** Bytes of bookkeeping stored with each queued datagram: family, address, port, length. */
const ENTRY_HEADER = 1 + 16 + 2 + 2;

/** A bound UDP port; see the module doc. */
export class UdpSocket {
  readonly port: number;
  #host: UdpHost;
  #queue: Ring;
  #hdr = new Uint8Array(ENTRY_HEADER);
  #closed = false;
  /** Datagrams dropped because the queue was full. */
  dropped = 0;
  /** Sender of the datagram last returned by {@link receive}. */
  readonly from: { family: 4 | 6; address: Uint8Array; port: number } = {
    family: 4,
    address: new Uint8Array(16),
    port: 0,
  };
  /** Datagrams are waiting. */
  onReadable: (() => void) | null = null;
  /** An ICMP error came back for a datagram sent to `port` (`hard`: port/protocol unreachable). */
  onError: ((hard: boolean, remotePort: number) => void) | null = null;

  constructor(host: UdpHost, port: number, queueBytes: number, pool: BufferPool) {
    this.#host = host;
    this.port = port;
    this.#queue = new Ring(queueBytes, pool);
  }

  /** Datagrams are waiting. */
  get pending(): boolean {
    return this.#queue.length > 0;
  }

  /**
   * Sends one datagram to `address` (4 or 16 bytes) and `port`; false when
   * the socket is closed, the stack has no address of that family, or the
   * datagram exceeds the MTU (no fragmentation).
   */
  sendTo(data: Uint8Array, address: Uint8Array, port: number): boolean {
    if (this.#closed || (address.length !== 4 && address.length !== 16)) return false;
    if (!(port > 0 && port < 65536)) return false;
    const family = address.length === 4 ? 4 : 6;
    return this.#host.sendUdp(family, address, port, this.port, data, 0, data.length);
  }

  /**
   * Moves the oldest datagram into `into` (cut to its length) and its sender
   * into {@link from}; returns the datagram's length, or -1 when none waits.
   */
  receive(into: Uint8Array): number {
    const q = this.#queue;
    if (q.length === 0) return -1;
    const h = this.#hdr;
    q.read(h, 0, ENTRY_HEADER);
    this.from.family = h[0] === 6 ? 6 : 4;
    copyBytes(h, 1, this.from.address, 0, 16);
    this.from.port = (h[17] << 8) | h[18];
    const len = (h[19] << 8) | h[20];
    const n = Math.min(len, into.length);
    q.read(into, 0, n);
    q.consume(len - n);
    return len;
  }

  /** Queues an arriving datagram (called by the stack); false when it does not fit. */
  deliver(
    family: 4 | 6,
    src: Uint8Array,
    srcOff: number,
    srcPort: number,
    data: Uint8Array,
    off: number,
    len: number,
  ): boolean {
    const q = this.#queue;
    if (this.#closed || q.free < ENTRY_HEADER + len) {
      this.dropped++;
      return false;
    }
    const h = this.#hdr;
    h.fill(0);
    h[0] = family;
    copyBytes(src, srcOff, h, 1, family === 4 ? 4 : 16);
    h[17] = srcPort >> 8;
    h[18] = srcPort & 0xff;
    h[19] = len >> 8;
    h[20] = len & 0xff;
    q.append(h, 0, ENTRY_HEADER);
    q.append(data, off, len);
    return true;
  }

  /** Frees the port; queued datagrams are discarded. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.release();
    this.#host.releaseUdp(this);
  }
}
