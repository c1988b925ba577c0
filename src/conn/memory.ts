// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * An in-memory UDP network (wireguard-go `bindtest`, GotaTun `device_pair`):
 * {@link MemoryNetwork} routes datagrams between {@link MemoryBind}s by address
 * and port, delivering each one later through the injected clock, optionally
 * with loss, duplication, reordering and a tap that sees (and may rewrite or
 * drop) every datagram, like an eavesdropper or a NAT.
 */
import type { Clock, Rng } from "../clock.ts";
import { type Bind, BindError, type ReceiveFn, type SendErrorFn } from "./bind.ts";
import { Endpoint } from "./endpoint.ts";
import { parseIPv4, parseIPv6 } from "../ip.ts";

/** A datagram in flight, as a tap sees it. */
export interface MemoryDatagram {
  data: Uint8Array;
  from: Endpoint;
  to: Endpoint;
}

/** Options for impairments; all default to a perfect network. */
export interface MemoryNetworkOptions {
  /** Delivery delay in ms (default 0: next clock turn). */
  latency?: number;
  /** Extra random delay 0..jitter ms, which reorders datagrams (needs rng). */
  jitter?: number;
  /** Probability 0–1 that a datagram is lost (needs rng). */
  loss?: number;
  /** Probability 0–1 that a datagram is delivered twice (needs rng). */
  duplicate?: number;
  /** Randomness for impairments (tests pass a seeded one). */
  rng?: Rng;
}

function key(family: 4 | 6, address: Uint8Array, port: number): string {
  return `${family}/${address.join(".")}/${port}`;
}

/** MemoryNetwork connects MemoryBinds. */
export class MemoryNetwork {
  readonly clock: Clock;
  readonly options: MemoryNetworkOptions;
  /**
   * Sees every datagram before delivery; return false to drop it. It may
   * rewrite `from` (NAT) or keep a copy (eavesdropper, replay tests).
   */
  tap: ((d: MemoryDatagram) => boolean) | null = null;
  /** Datagrams sent, delivered and dropped (no listener, loss, tap). */
  readonly counters = { sent: 0, delivered: 0, dropped: 0 };
  #listeners = new Map<string, MemoryBind>();
  #nextPort = 40000;
  #rand = new Uint8Array(4);

  constructor(clock: Clock, options: MemoryNetworkOptions = {}) {
    this.clock = clock;
    this.options = options;
  }

  /** A bind whose sockets have the given IPv4 and/or IPv6 address. */
  createBind(addresses: { v4?: string; v6?: string }): MemoryBind {
    return new MemoryBind(this, addresses);
  }

  #random(): number {
    this.options.rng!(this.#rand);
    return new DataView(this.#rand.buffer).getUint32(0) / 4294967296;
  }

  /** @internal */
  register(family: 4 | 6, address: Uint8Array, port: number, bind: MemoryBind): boolean {
    const k = key(family, address, port);
    if (this.#listeners.has(k)) return false;
    this.#listeners.set(k, bind);
    return true;
  }

  /** @internal */
  unregister(family: 4 | 6, address: Uint8Array, port: number, bind: MemoryBind): void {
    const k = key(family, address, port);
    if (this.#listeners.get(k) === bind) this.#listeners.delete(k);
  }

  /** @internal */
  freePort(family: 4 | 6, address: Uint8Array): number {
    for (let i = 0; i < 20000; i++) {
      const port = this.#nextPort++;
      if (this.#nextPort > 60000) this.#nextPort = 40000;
      if (!this.#listeners.has(key(family, address, port))) return port;
    }
    throw new BindError(-98, "no free port");
  }

  /** @internal Sends a copy of `data` from `from` to `to`. */
  transmit(data: Uint8Array, from: Endpoint, to: Endpoint): void {
    this.counters.sent++;
    const d: MemoryDatagram = { data: data.slice(), from: from.clone(), to: to.clone() };
    if (this.tap && !this.tap(d)) {
      this.counters.dropped++;
      return;
    }
    const o = this.options;
    if (o.loss && this.#random() < o.loss) {
      this.counters.dropped++;
      return;
    }
    const copies = o.duplicate && this.#random() < o.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = (o.latency ?? 0) + (o.jitter ? this.#random() * o.jitter : 0);
      this.clock.after(delay, () => this.#deliver(d));
    }
  }

  #deliver(d: MemoryDatagram): void {
    const target = this.#listeners.get(key(d.to.family, d.to.address, d.to.port));
    if (!target) {
      this.counters.dropped++;
      return;
    }
    this.counters.delivered++;
    target.deliver(d.data, d.from, d.to);
  }
}

/** MemoryBind is one device's sockets on a MemoryNetwork. */
export class MemoryBind implements Bind {
  readonly network: MemoryNetwork;
  /** Addresses by family; change with {@link MemoryBind.setAddress} to roam. */
  #addresses: { 4?: Uint8Array; 6?: Uint8Array } = {};
  #port = 0;
  #receive: ReceiveFn | null = null;
  /** The last SO_MARK set (memory sockets ignore it). */
  mark = 0;
  /** Datagrams sent through this bind. */
  sent = 0;

  constructor(network: MemoryNetwork, addresses: { v4?: string; v6?: string }) {
    this.network = network;
    if (addresses.v4) this.#addresses[4] = parseIPv4(addresses.v4)!;
    if (addresses.v6) this.#addresses[6] = parseIPv6(addresses.v6)!;
  }

  /** The port we are bound to (0 when closed). */
  get port(): number {
    return this.#port;
  }

  /** Our endpoint for `family` (for peers' configuration). */
  endpoint(family: 4 | 6 = 4): Endpoint {
    const a = this.#addresses[family];
    if (!a) throw new RangeError(`No IPv${family} address`);
    return new Endpoint(family, a.slice(), this.#port);
  }

  /** Moves this bind to a new address (roaming); the port is kept. */
  setAddress(family: 4 | 6, address: string): void {
    const receive = this.#receive;
    const port = this.#port;
    this.close();
    this.#addresses[family] = family === 4 ? parseIPv4(address)! : parseIPv6(address)!;
    if (receive) this.open(port, receive);
  }

  open(port: number, receive: ReceiveFn, _onSendError?: SendErrorFn): number {
    this.close();
    const families = ([4, 6] as const).filter((f) => this.#addresses[f]);
    if (port === 0) port = this.network.freePort(families[0], this.#addresses[families[0]]!);
    const done: (4 | 6)[] = [];
    for (const f of families) {
      if (!this.network.register(f, this.#addresses[f]!, port, this)) {
        for (const g of done) this.network.unregister(g, this.#addresses[g]!, port, this);
        throw new BindError(-98, `listen udp :${port}: bind: address already in use`);
      }
      done.push(f);
    }
    this.#port = port;
    this.#receive = receive;
    return port;
  }

  close(): void {
    if (!this.#receive) return;
    for (const f of [4, 6] as const) {
      const a = this.#addresses[f];
      if (a) this.network.unregister(f, a, this.#port, this);
    }
    this.#receive = null;
    this.#port = 0;
  }

  setMark(mark: number): void {
    this.mark = mark;
  }

  send(data: Uint8Array, to: Endpoint): boolean {
    const src = this.#addresses[to.family];
    if (!this.#receive || !src) return false;
    this.sent++;
    this.network.transmit(data, new Endpoint(to.family, src, this.#port), to);
    return true;
  }

  /** @internal Called by the network. */
  deliver(data: Uint8Array, from: Endpoint, to: Endpoint): void {
    if (!this.#receive) return;
    from.srcAddress = to.address;
    this.#receive(data, from);
  }
}
