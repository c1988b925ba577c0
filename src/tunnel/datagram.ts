// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link TunnelDatagramConn}: a UDP port of the tunnel's stack shaped like
 * `Deno.DatagramConn`: `send(data, addr)`, `receive()`, async iteration,
 * `close()`, `addr`. Arriving datagrams wait in the socket's bounded queue
 * (the stack's `udpQueueBytes`); one that does not fit is dropped and
 * counted in {@link TunnelDatagramConn.dropped}. Waiting receivers share
 * one wake-up callback, so an idle socket holds no promise per packet.
 */
import { parseIPv4, parseIPv6 } from "../ip.ts";
import type { Clock } from "../clock.ts";
import type { UdpSocket } from "../netstack/udp.ts";
import { formatAddress } from "./conn.ts";

/** Largest UDP payload. */
const MAX_DATAGRAM = 65507;
/** Scratch for receive(), shared: each datagram is copied out before anything else runs. */
const scratch = new Uint8Array(MAX_DATAGRAM);

/** A datagram socket through the tunnel; see the module doc. */
export class TunnelDatagramConn implements AsyncIterable<[Uint8Array, Deno.NetAddr]> {
  readonly addr: Deno.NetAddr;
  readonly #s: UdpSocket;
  readonly #clock: Clock;
  #waiters: (() => void)[] = [];
  #closed = false;
  /** ICMP errors that came back for datagrams this socket sent. */
  icmpErrors = 0;

  constructor(socket: UdpSocket, hostname: string, clock: Clock) {
    this.#s = socket;
    this.#clock = clock;
    this.addr = { transport: "udp", hostname, port: socket.port };
    socket.onReadable = () => this.#wake();
    socket.onError = () => this.icmpErrors++;
  }

  /** Datagrams dropped because the receive queue was full. */
  get dropped(): number {
    return this.#s.dropped;
  }

  /** The socket is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  #wake(): void {
    const w = this.#waiters;
    if (w.length === 0) return;
    this.#waiters = [];
    for (const f of w) f();
  }

  /**
   * Sends `data` to an IP address and port through the tunnel; resolves to
   * the bytes sent. Rejects with a TypeError for a name (resolve it with
   * `Tunnel.resolve` first), and with an Error when the socket is closed,
   * the tunnel has no address of that family, or `data` exceeds the MTU.
   */
  send(data: Uint8Array, addr: { hostname: string; port: number }): Promise<number> {
    try {
      return Promise.resolve(this.sendSync(data, addr));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** {@link send} without the promise: returns the bytes sent or throws. */
  sendSync(data: Uint8Array, addr: { hostname: string; port: number }): number {
    if (this.#closed) throw new Error("Datagram socket closed");
    const host = addr.hostname.replace(/^\[(.*)\]$/, "$1");
    const ip = parseIPv4(host) ?? parseIPv6(host);
    if (!ip) throw new TypeError(`Not an IP address: ${addr.hostname}`);
    if (!(Number.isInteger(addr.port) && addr.port > 0 && addr.port < 65536)) {
      throw new RangeError(`Invalid port ${addr.port}`);
    }
    if (!this.#s.sendTo(data, ip, addr.port)) {
      throw new Error(
        `Cannot send ${data.length} bytes to ${addr.hostname}:${addr.port} ` +
          `(no IPv${ip.length === 4 ? 4 : 6} tunnel address, or larger than the MTU)`,
      );
    }
    return data.length;
  }

  /** The oldest waiting datagram and its sender, or null when none waits. */
  tryReceive(): [Uint8Array, Deno.NetAddr] | null {
    if (this.#closed) return null;
    const n = this.#s.receive(scratch);
    if (n < 0) return null;
    const f = this.#s.from;
    const from: Deno.NetAddr = {
      transport: "udp",
      hostname: formatAddress(f.address.subarray(0, f.family === 4 ? 4 : 16)),
      port: f.port,
    };
    return [scratch.slice(0, Math.min(n, MAX_DATAGRAM)), from];
  }

  /**
   * The next datagram and its sender. Rejects when the socket is closed, or
   * with `timeoutMs` (on the tunnel's clock) with an Error "timeout".
   */
  async receive(opts: { timeoutMs?: number } = {}): Promise<[Uint8Array, Deno.NetAddr]> {
    let timedOut = false;
    let timer: number | null = null;
    if (opts.timeoutMs !== undefined) {
      timer = this.#clock.after(opts.timeoutMs, () => {
        timedOut = true;
        this.#wake();
      });
    }
    try {
      for (;;) {
        if (this.#closed) throw new Error("Datagram socket closed");
        const d = this.tryReceive();
        if (d) return d;
        if (timedOut) throw new Error("timeout");
        await new Promise<void>((r) => this.#waiters.push(r));
      }
    } finally {
      if (timer !== null && !timedOut) this.#clock.cancel(timer);
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<[Uint8Array, Deno.NetAddr]> {
    for (;;) {
      try {
        yield await this.receive();
      } catch {
        return;
      }
    }
  }

  /** Frees the port; pending receive() calls reject. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#s.close();
    this.#wake();
  }
}
