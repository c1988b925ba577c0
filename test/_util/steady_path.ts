// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Pushes packets through the steady data path of two in-memory devices
 * (TUN → route → seal → UDP → open → replay → source check → TUN, both ways)
 * and reports what that cost the heap. Run it as
 *
 *   deno run -A --v8-flags=--expose-gc,--trace-gc,--max-semi-space-size=1 \
 *     test/_util/steady_path.ts [packets]
 *
 * Setup, handshake and warm-up run first; then `gc()` (a "testing" line in the
 * --trace-gc output), the measured phase, and `gc()` again. Every scavenge
 * V8 prints between those two lines happened while the measured packets went
 * through; with a 1 MiB young generation, 5 bytes per packet are enough for
 * one. stdout carries only V8's lines (V8 buffers them, so anything else
 * written there could land mid-line); the JSON summary goes to stderr.
 *
 * The edges here allocate nothing per packet: the bind copies datagrams into a
 * ring of fixed slots and hands them over as cached views, the TUN only
 * counts. Crypto runs on libcrypto (noble allocates per call by design). The
 * seeded RNG makes the receiver indices the same each run; both are above
 * 2^31, where a u32 used as a Map key would allocate on every lookup.
 */
import { Device } from "../../src/device.ts";
import type { Bind, ReceiveFn } from "../../src/conn/bind.ts";
import { Endpoint } from "../../src/conn/endpoint.ts";
import type { Tun } from "../../src/tun/tun.ts";
import { useBestCryptoBackend } from "../../src/crypto/select.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { FakeClock, seededRng } from "./fake_clock.ts";

const SLOT = 2048;
const RING = 1024;

/** A bind that queues datagrams in a ring of fixed slots until {@link deliverTo}. */
class RingBind implements Bind {
  readonly self: Endpoint;
  receive: ReceiveFn | null = null;
  #slots: Uint8Array[] = [];
  #lens = new Int32Array(RING);
  /** views[slot][len], made once per (slot, length) seen. */
  #views: Uint8Array[][] = [];
  #count = 0;
  dropped = 0;

  constructor(self: Endpoint) {
    this.self = self;
    for (let i = 0; i < RING; i++) {
      this.#slots.push(new Uint8Array(SLOT));
      this.#views.push([]);
    }
  }

  open(port: number, receive: ReceiveFn): number {
    this.receive = receive;
    return port || this.self.port;
  }
  close(): void {
    this.receive = null;
  }
  setMark(): void {}

  send(data: Uint8Array, _ep: Endpoint): boolean {
    if (this.#count >= RING || data.length > SLOT) return false;
    this.#slots[this.#count].set(data);
    this.#lens[this.#count++] = data.length;
    return true;
  }

  /** Hands every queued datagram to `to`'s receive function, from our endpoint. */
  deliverTo(to: RingBind): number {
    const n = this.#count;
    this.#count = 0;
    const receive = to.receive;
    if (receive === null) return 0;
    for (let i = 0; i < n; i++) {
      const len = this.#lens[i];
      const views = this.#views[i];
      const view = views[len] ?? (views[len] = this.#slots[i].subarray(0, len));
      receive(view, this.self);
    }
    return n;
  }
}

/** A TUN that counts what it is given. */
class CountingTun implements Tun {
  readonly mtu = 1420;
  packets = 0;
  bytes = 0;
  write(packet: Uint8Array): void {
    this.packets++;
    this.bytes += packet.length;
  }
}

/** An IPv4 packet of `size` bytes from 10.9.0.`src` to 10.9.0.`dst`. */
function ipv4(src: number, dst: number, size: number): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = 0x45;
  p[2] = size >> 8;
  p[3] = size & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set([10, 9, 0, src], 12);
  p.set([10, 9, 0, dst], 16);
  return p;
}

const total = Number(Deno.args[0] ?? 100_000);
const BURST = 32;
const gc = (globalThis as unknown as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
useBestCryptoBackend("native");

const clock = new FakeClock();
const rng = seededRng(7);
const epA = new Endpoint(4, new Uint8Array([192, 0, 2, 1]), 51820);
const epB = new Endpoint(4, new Uint8Array([192, 0, 2, 2]), 51821);
const bindA = new RingBind(epA), bindB = new RingBind(epB);
const tunA = new CountingTun(), tunB = new CountingTun();
const a = new Device({ tun: tunA, bind: bindA, clock, rng, autoFlush: false });
const b = new Device({ tun: tunB, bind: bindB, clock, rng, autoFlush: false });
const keyA = generatePrivateKey(rng), keyB = generatePrivateKey(rng);
a.setPrivateKey(keyA);
b.setPrivateKey(keyB);
a.setListenPort(51820);
b.setListenPort(51821);
const pa = a.newPeer(publicKey(keyB));
const pb = b.newPeer(publicKey(keyA));
a.allowedIps.insert(4, new Uint8Array([10, 9, 0, 2]), 32, pa);
b.allowedIps.insert(4, new Uint8Array([10, 9, 0, 1]), 32, pb);
a.up();
b.up();
pa.setEndpoint(epB);
pb.setEndpoint(epA);
pa.start();
pb.start();

const toB = ipv4(1, 2, 1200), toA = ipv4(2, 1, 1200);

/** Moves datagrams both ways and runs both devices until nothing moves. */
function settle(): void {
  for (let i = 0; i < 100; i++) {
    a.flush();
    b.flush();
    const moved = bindA.deliverTo(bindB) + bindB.deliverTo(bindA);
    clock.advance(0);
    if (moved === 0 && a.handshakeQueueLength === 0 && b.handshakeQueueLength === 0) return;
  }
}

/** `n` packets each way, BURST at a time, with no timer turn in between. */
function run(n: number): void {
  for (let sent = 0; sent < n; sent += BURST) {
    for (let i = 0; i < BURST; i++) a.handleTunPacket(toB);
    a.flush();
    bindA.deliverTo(bindB);
    b.flush();
    for (let i = 0; i < BURST; i++) b.handleTunPacket(toA);
    b.flush();
    bindB.deliverTo(bindA);
    a.flush();
  }
}

// Handshake (A initiates), then B's first data packet confirms the session.
a.handleTunPacket(toB);
settle();
b.handleTunPacket(toA);
settle();
if (tunA.packets !== 1 || tunB.packets !== 1) {
  throw new Error(`handshake failed: A got ${tunA.packets}, B got ${tunB.packets}`);
}
run(20_000); // warm-up: JIT and every cached view
gc();
const before = { a: tunA.packets, b: tunB.packets };
const heap0 = Deno.memoryUsage().heapUsed;
const t0 = performance.now();
run(total);
const t1 = performance.now();
const heap1 = Deno.memoryUsage().heapUsed;
gc();
const got = tunB.packets - before.b;
// deno-lint-ignore no-console
console.error(JSON.stringify({
  packets: total,
  deliveredToB: got,
  deliveredToA: tunA.packets - before.a,
  receiverIndices: [pa.keypairs.current?.localIndex, pb.keypairs.current?.localIndex],
  heapDelta: heap1 - heap0,
  bytesPerPacket: (heap1 - heap0) / (2 * total),
  usPerPacket: ((t1 - t0) * 1000) / (2 * total),
  stats: { a: a.stats, b: b.stats },
}));
a.close();
b.close();
