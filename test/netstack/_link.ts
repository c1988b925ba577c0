// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Two NetStacks back to back through an in-memory link on a FakeClock, with
 * seeded loss, duplication, extra delay (which reorders) and a tap that can
 * watch or drop packets. Stack A is 10.0.0.1 / fd00::1, B 10.0.0.2 / fd00::2.
 */
import assert from "node:assert/strict";
import { FakeClock, seededRng } from "../_util/fake_clock.ts";
import { IpPacket, parseIp } from "../../src/netstack/ip_packet.ts";
import { parseTcp, TcpSegment } from "../../src/netstack/tcp_header.ts";
import type { TcpConn } from "../../src/netstack/tcp_conn.ts";
import { NetStack, type NetStackOptions } from "../../src/netstack/stack.ts";
import type { TcpConfig } from "../../src/netstack/tcp_config.ts";

export interface LinkOptions {
  seed?: number;
  /** One-way delay, ms (default 1). */
  latency?: number;
  /** Probability of loss, duplication, and of an extra 0..jitter ms delay. */
  loss?: number;
  duplicate?: number;
  reorder?: number;
  jitter?: number;
  mtu?: number;
  tcp?: Partial<TcpConfig>;
  /** TCP settings of one stack only, over `tcp`. */
  tcpA?: Partial<TcpConfig>;
  tcpB?: Partial<TcpConfig>;
  /** Extra options for both stacks. */
  stack?: Partial<NetStackOptions>;
}

export interface Link {
  clock: FakeClock;
  a: NetStack;
  b: NetStack;
  /** Sees every packet (a copy) before the link impairs it; return false to drop it. */
  tap: ((packet: Uint8Array, from: "a" | "b") => boolean) | null;
  /** Packets carried each way. */
  counts: { a: number; b: number; lost: number };
  /** Advances the clock by `ms` in steps of at most `step` ms. */
  run(ms: number, step?: number): void;
  /** Runs until `done()` or `limitMs` of fake time passed; returns whether done. */
  until(done: () => boolean, limitMs?: number): boolean;
}

/** Builds the pair; see the module doc. */
export function link(opts: LinkOptions = {}): Link {
  const clock = new FakeClock();
  const rng = seededRng(opts.seed ?? 1);
  let s = (opts.seed ?? 1) * 0x9e3779b9 >>> 0 || 1;
  // mulberry32: cheap deterministic numbers for the impairments.
  const random = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const common = { clock, rng, mtu: opts.mtu, tcp: opts.tcp, ...opts.stack };
  const a = new NetStack({
    ...common,
    tcp: { ...opts.tcp, ...opts.tcpA },
    addresses: ["10.0.0.1", "fd00::1"],
  });
  const b = new NetStack({
    ...common,
    tcp: { ...opts.tcp, ...opts.tcpB },
    addresses: ["10.0.0.2", "fd00::2"],
  });
  const latency = opts.latency ?? 1;
  const l: Link = {
    clock,
    a,
    b,
    tap: null,
    counts: { a: 0, b: 0, lost: 0 },
    run(ms, step = 10) {
      for (let t = 0; t < ms; t += step) clock.advance(Math.min(step, ms - t));
    },
    until(done, limitMs = 600_000) {
      const end = clock.now() + limitMs;
      while (!done()) {
        if (clock.now() >= end) return false;
        const next = clock.nextDeadline();
        if (next === undefined) return done();
        clock.advance(Math.max(0, Math.min(next, end) - clock.now()));
      }
      return true;
    },
  };
  const carry = (to: NetStack, from: "a" | "b") => (p: Uint8Array) => {
    const copy = p.slice();
    l.counts[from]++;
    if (l.tap && !l.tap(copy, from)) return;
    if (opts.loss && random() < opts.loss) {
      l.counts.lost++;
      return;
    }
    const delay = latency +
      (opts.reorder && random() < opts.reorder ? random() * (opts.jitter ?? 5) : 0);
    clock.after(delay, () => to.write(copy));
    if (opts.duplicate && random() < opts.duplicate) clock.after(delay + 1, () => to.write(copy));
  };
  a.output = carry(b, "a");
  b.output = carry(a, "b");
  return l;
}

/** `n` deterministic pseudo-random bytes. */
export function pattern(n: number, seed = 7): Uint8Array {
  const out = new Uint8Array(n);
  seededRng(seed)(out);
  return out;
}

/** A connection from A to B's port `port`: A's end `c` and B's accepted end `s`. */
export function openConn(l: Link, port = 80): { c: TcpConn; s: TcpConn } {
  const lis = l.b.listen(port);
  const c = l.a.connect("10.0.0.2", port);
  assert.ok(l.until(() => lis.queue.length === 1, 5000));
  return { c, s: lis.accept()! };
}

/** Parses a TCP segment the tap saw (the segment keeps the buffer: pass a copy); null otherwise. */
export function tapSegment(p: Uint8Array): TcpSegment | null {
  const ip = new IpPacket();
  const s = new TcpSegment();
  if (parseIp(p, ip) !== 0 || ip.proto !== 6 || parseTcp(ip, s) !== 0) return null;
  return s;
}
