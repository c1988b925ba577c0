// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Fuzz target "receive": the whole UDP receive path of a live device pair
 * (Device.handleDatagram → handshake queue → consumeInitiation /
 * consumeResponse / CookieGenerator.consumeReply, and the transport path →
 * replay window → inner-packet checks → TUN), fed with hostile datagrams
 * interleaved with real traffic and fake-clock jumps (rekeys, expiry):
 *
 * - random bytes around every message size, with valid and invalid type words;
 * - captured valid packets (all four types), replayed as they were or mutated
 *   (bit flips, truncations, extensions, splices, type-byte swaps);
 * - handshake messages with a valid mac1 (computed with the victim's public
 *   key, as anyone can) but garbage inside, so they reach the DH code, and
 *   floods of them that push the victim under load (cookie replies, rate
 *   limiter), some from an attacker address that collects its cookies and
 *   then sends with a valid mac2;
 * - transport headers with live receiver indices and wrong counters or
 *   ciphertexts; cookie replies addressed to live indices, forged or crafted
 *   valid.
 *
 * Invariants checked while running: nothing throws; a datagram that is not a
 * byte-exact copy of one sent by a real device never reaches a TUN and never
 * moves a peer's endpoint; structure sizes stay bounded. Checked at the end:
 * both directions of the tunnel still carry a packet, byte counters agree
 * across the wire, drop counters do not exceed the datagrams received, and
 * the UAPI `get` output parses and round-trips.
 */
import lowOrder from "../../testdata/crypto/low_order_points.json" with { type: "json" };
import type { Rng } from "../../src/clock.ts";
import { Endpoint } from "../../src/conn/endpoint.ts";
import type { MemoryDatagram } from "../../src/conn/memory.ts";
import {
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_TRANSPORT,
} from "../../src/constants.ts";
import { readU32, writeType, writeU32 } from "../../src/messages.ts";
import { CookieChecker, CookieGenerator } from "../../src/noise/cookie.ts";
import { handshakeSender } from "../../src/noise/handshake.ts";
import { type DevicePair, devicePair, type Side } from "../_util/device_pair.ts";
import {
  bump,
  type FuzzOptions,
  type FuzzStats,
  Mutator,
  newStats,
  pastDeadline,
  peak,
  recordException,
  recordFailure,
  toHex,
} from "./harness.ts";
import { checkBounds, checkRoundTrip } from "./invariants.ts";
import { numberedPacket, packetId, probe, sendFrom, settle, type TunnelEnd } from "./traffic.ts";

/** Receive-side drop counters: each received datagram bumps at most one of them. */
const RX_COUNTERS = [
  "invalidMessages",
  "invalidMac",
  "handshakeQueueFull",
  "handshakeRejected",
  "ratelimited",
  "cookieRepliesSent",
  "unknownIndex",
  "expiredKeypair",
  "decryptFailed",
  "replayed",
  "invalidPackets",
  "badSource",
] as const;

/** Public keys whose X25519 result is all zeros (kernel netns.sh); DH with them must fail. */
const LOW_ORDER = (lowOrder.points as string[]).map((b) => Uint8Array.fromBase64(b));

/** Sizes random datagrams are drawn around. */
const SIZES = [0, 1, 3, 4, 15, 16, 31, 32, 33, 47, 48, 63, 64, 65, 91, 92, 93, 147, 148, 149];

interface Captured {
  data: Uint8Array;
  from: Endpoint;
  /** Index into the pair: 0 = sent to A, 1 = sent to B, -1 = elsewhere. */
  to: number;
}

/** Keeps the last `size` items. */
class Ring<T> {
  readonly items: T[] = [];
  #next = 0;
  constructor(readonly size: number) {}
  push(item: T): void {
    if (this.items.length < this.size) this.items.push(item);
    else this.items[this.#next] = item;
    this.#next = (this.#next + 1) % this.size;
  }
}

/** Fuzzes Device.handleDatagram of a live pair; see the module doc. */
export function fuzzReceive(rng: Rng, iterations: number, options: FuzzOptions = {}): FuzzStats {
  const started = performance.now();
  const stats = newStats("receive");
  const m = new Mutator(rng);
  const p = devicePair({ seed: m.u32(), psk: m.chance(0.5) });
  const sides: Side[] = [p.a, p.b];
  const ends: TunnelEnd[] = [
    { device: p.a.device, tun: p.a.tun, v4: "10.0.0.1", v6: "fd00::1" },
    { device: p.b.device, tun: p.b.tun, v4: "10.0.0.2", v6: "fd00::2" },
  ];
  const corpus = new Map<number, Ring<Captured>>();
  for (const t of [0, 1, 2, 3, 4, 5]) corpus.set(t, new Ring<Captured>(24));
  const indices = new Ring<number>(32);
  /** A fingerprint of every transport datagram a real device sent. */
  const sentTransport = new Set<string>();
  // The attacker has an IPv4 and an IPv6 address, so both rate-limiter keys get used.
  const attackerEps = [
    new Endpoint(4, new Uint8Array([203, 0, 113, 66]), 6666),
    new Endpoint(
      6,
      new Uint8Array([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x66]),
      6666,
    ),
  ];
  /** The attacker's cookie state, per address and victim (a cookie is bound to the source). */
  const attackerGens = attackerEps.map(() =>
    sides.map((s) => new CookieGenerator(p.clock, s.publicKey))
  );
  const forgeGen = sides.map((s) => new CookieGenerator(p.clock, s.publicKey));
  let injected = 0;
  let nextId = 1;
  let iteration = 0;

  function sideOf(to: Endpoint): number {
    for (let i = 0; i < 2; i++) {
      if (sides[i].bind.port !== 0 && to.equals(sides[i].bind.endpoint(to.family))) return i;
    }
    return -1;
  }

  /** While set, transport data messages are taken off the network into it (see burst). */
  let holding: Captured[] | null = null;
  p.net.tap = (d: MemoryDatagram) => {
    const data = d.data.slice();
    const type = data.length >= 4 && data[1] === 0 && data[2] === 0 && data[3] === 0 ? data[0] : 0;
    const slot = type === MESSAGE_TRANSPORT && data.length === 32 ? 5 : type;
    corpus.get(slot >= 1 && slot <= 5 ? slot : 0)!.push({
      data,
      from: d.from.clone(),
      to: sideOf(d.to),
    });
    if (type === MESSAGE_INITIATION || type === MESSAGE_RESPONSE) indices.push(readU32(data, 4));
    if (type === MESSAGE_RESPONSE || type === MESSAGE_TRANSPORT) {
      indices.push(readU32(data, 4 + (type === MESSAGE_RESPONSE ? 4 : 0)));
    }
    if (type === MESSAGE_TRANSPORT) sentTransport.add(fingerprint(data));
    // The attacker reads cookie replies sent to its address.
    const at = attackerEps.findIndex((e) => d.to.equals(e));
    if (type === MESSAGE_COOKIE_REPLY && at >= 0) {
      const victim = sides.findIndex((s) => s.device.listenPort === d.from.port);
      if (victim >= 0 && attackerGens[at][victim].consumeReply(data)) {
        bump(stats, "attackerCookies");
      }
    }
    if (holding && type === MESSAGE_TRANSPORT && data.length > 32) {
      holding.push({ data, from: d.from.clone(), to: sideOf(d.to) });
      return false;
    }
    return true;
  };

  function guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      recordException(stats, iteration, err, what);
    }
  }

  /**
   * Feeds one datagram; `exact` when it is a byte-exact copy of a real one.
   * With `batch`, it is one of many read at once: no flush (which would
   * process the handshake queue) until the caller's.
   */
  function inject(
    victim: number,
    data: Uint8Array,
    from: Endpoint,
    exact: boolean,
    batch = false,
  ): void {
    injected++;
    stats.inputs++;
    const s = sides[victim];
    const tunBefore = s.tun.received.length;
    const epBefore = s.peer.endpoint?.toString();
    try {
      s.device.handleDatagram(data, from);
      // Transport messages are opened in batches, and handshakes run at the
      // flush that ends an I/O batch: process this one now.
      if (!batch) s.device.flush();
    } catch (err) {
      recordException(stats, iteration, err, data);
      return;
    }
    if (exact || batch) return;
    if (s.tun.received.length !== tunBefore && !isRealTransport(data)) {
      recordFailure(stats, iteration, `forged datagram reached the TUN of ${s.device.name}`, data);
    }
    if (s.peer.endpoint?.toString() !== epBefore && !isRealTransport(data)) {
      recordFailure(
        stats,
        iteration,
        `forged datagram moved ${s.device.name}'s endpoint to ${s.peer.endpoint}`,
        data,
      );
    }
  }

  function isRealTransport(data: Uint8Array): boolean {
    return sentTransport.has(fingerprint(data));
  }

  function randomFrom(victim: number): Endpoint {
    switch (m.int(5)) {
      case 0:
        return sides[1 - victim].bind.endpoint(4);
      case 1:
        return m.pick(attackerEps).clone();
      case 2:
        return new Endpoint(6, m.bytes(16), m.int(65536));
      default:
        return new Endpoint(4, m.bytes(4), m.int(65536));
    }
  }

  function sample(type: number): Captured | undefined {
    const items = corpus.get(type)!.items;
    return items.length > 0 ? m.pick(items) : undefined;
  }

  function anySample(): Captured | undefined {
    return sample(m.pick([0, 1, 2, 3, 4, 4, 5]));
  }

  function knownIndex(): number {
    return indices.items.length > 0 && m.chance(0.8) ? m.pick(indices.items) : m.interestingU32();
  }

  /** A handshake message with random content and a valid mac1 for the victim. */
  function forgeHandshake(type: number, gen: CookieGenerator): Uint8Array {
    const size = type === MESSAGE_INITIATION ? MESSAGE_INITIATION_SIZE : MESSAGE_RESPONSE_SIZE;
    const msg = m.bytes(size);
    writeType(msg, type);
    if (type === MESSAGE_RESPONSE && m.chance(0.7)) writeU32(msg, 8, knownIndex());
    if (type === MESSAGE_INITIATION && m.chance(0.3)) {
      // A real initiation's ephemeral and static fields, so DH and the first AEAD run on sane input.
      const real = sample(MESSAGE_INITIATION);
      if (real) msg.set(real.data.subarray(8, 8 + (m.chance(0.5) ? 32 : 80)), 8);
    }
    if (m.chance(0.1)) {
      // A low-order ephemeral: the DH must fail cleanly.
      msg.set(m.pick(LOW_ORDER), type === MESSAGE_INITIATION ? 8 : 12);
    }
    gen.addMacs(msg);
    if (m.chance(0.2)) msg.set(m.bytes(16), size - 16); // garbage mac2
    return msg;
  }

  /** A cookie reply that A (or B) accepts: made with the other side's cookie key. */
  function craftCookieReply(victim: number): Uint8Array | null {
    const sent = [...corpus.get(MESSAGE_INITIATION)!.items, ...corpus.get(MESSAGE_RESPONSE)!.items]
      .filter((c) => c.from.port === sides[victim].device.listenPort);
    if (sent.length === 0) return null;
    const msg = m.pick(sent).data;
    const checker = new CookieChecker(p.clock, rng);
    checker.init(sides[1 - victim].publicKey);
    const out = new Uint8Array(MESSAGE_COOKIE_REPLY_SIZE);
    checker.createReply(
      out,
      msg,
      handshakeSender(msg),
      sides[victim].bind.endpoint(4).dstToBytes(),
    );
    checker.wipe();
    return out;
  }

  /**
   * Many real data messages, taken off the network, then fed shuffled, some
   * twice, mixed with corrupted copies, without a flush in between: the batch
   * fills up (256 jobs, or 4 MiB with large packets) and runs mid-stream.
   * Every held packet must reach the TUN exactly once.
   */
  function burst(): void {
    bump(stats, "bursts");
    const s = m.int(2), r = 1 - s;
    const big = m.chance(0.1);
    const n = big ? m.range(60, 90) : m.range(100, 400);
    const ids = new Set<number>();
    const heldIds = new Set<number>();
    holding = [];
    guard("burst send", () => {
      for (let i = 0; i < n; i++) {
        const id = nextId++;
        ids.add(id);
        const size = big ? m.range(50_000, 60_000) : m.range(8, 1400);
        const before = holding!.length;
        sendFrom(ends[s], numberedPacket(ends[s], ends[r], id, m.chance(0.5) ? 4 : 6, size));
        // Sent at once on the current session (not staged behind a handshake).
        if (holding!.length === before + 1) heldIds.add(id);
      }
    });
    const held = holding;
    holding = null;
    const feed: { data: Uint8Array; from: Endpoint }[] = [];
    for (const h of held) {
      feed.push(h);
      if (m.chance(0.1)) feed.push(h);
      if (m.chance(0.05)) feed.push({ data: m.mutate(h.data, 2), from: h.from });
    }
    for (let i = feed.length - 1; i > 0; i--) {
      const j = m.int(i + 1);
      [feed[i], feed[j]] = [feed[j], feed[i]];
    }
    const tun = sides[r].tun;
    tun.take();
    for (const f of feed) {
      injected++;
      stats.inputs++;
      try {
        sides[r].device.handleDatagram(f.data, f.from);
      } catch (err) {
        recordException(stats, iteration, err, f.data);
      }
    }
    guard("burst flush", () => {
      sides[r].device.flush();
      settle(p.clock);
    });
    const got = new Map<number, number>();
    for (const pkt of tun.take()) {
      const id = packetId(pkt);
      got.set(id, (got.get(id) ?? 0) + 1);
    }
    // Packets sent on a session must all arrive now, once. Packets staged
    // behind a handshake (at most QUEUE_STAGED_SIZE kept) may still be waiting
    // for it (cookie round trip, REKEY_TIMEOUT): only duplicates count there.
    let missing = 0, doubled = 0;
    for (const id of ids) {
      const c = got.get(id) ?? 0;
      if (c > 1) doubled++;
      if (c === 0 && heldIds.has(id)) missing++;
    }
    bump(stats, "burstPackets", held.length);
    if (heldIds.size < n) bump(stats, "burstsStaged");
    if (missing > 0 || doubled > 0) {
      recordFailure(
        stats,
        iteration,
        `burst of ${n} packets (${heldIds.size} sent on a session, big=${big}) ` +
          `${ends[s].device.name} → ${ends[r].device.name}: ${missing} of those never arrived, ` +
          `${doubled} arrived twice`,
      );
    }
  }

  function flood(victim: number): void {
    bump(stats, "floods");
    // Enough to put the victim under load; now and then more than the queue holds.
    const n = m.chance(0.1) ? m.range(1030, 1100) : m.range(130, 300);
    const fromAttacker = m.chance(0.5);
    const at = m.int(attackerEps.length);
    for (let i = 0; i < n; i++) {
      const from = fromAttacker ? attackerEps[at].clone() : randomFrom(victim);
      const gen = fromAttacker ? attackerGens[at][victim] : forgeGen[victim];
      // One I/O batch: the queue fills up before anything is processed.
      inject(victim, forgeHandshake(MESSAGE_INITIATION, gen), from, false, true);
    }
    guard("settle after flood", () => {
      sides[victim].device.flush();
      settle(p.clock);
    });
  }

  function oneInput(): void {
    const victim = m.int(2);
    const kind = m.int(100);
    if (kind < 15) {
      // Random bytes around a message size, often with a valid type word.
      const n = m.chance(0.8)
        ? m.pick(SIZES) + (m.chance(0.3) ? m.range(-2, 2) : 0)
        : m.chance(0.9)
        ? m.int(1600)
        : m.range(1600, 65535);
      const d = m.bytes(Math.max(0, n));
      if (d.length >= 4 && m.chance(0.7)) writeType(d, m.range(1, 4));
      bump(stats, "random");
      inject(victim, d, randomFrom(victim), false);
    } else if (kind < 40) {
      // A captured packet, mutated.
      const c = anySample();
      if (!c) return;
      const donors = corpus.get(MESSAGE_TRANSPORT)!.items.map((x) => x.data);
      const d = m.mutate(c.data, 4, donors);
      bump(stats, "mutated");
      inject(
        c.to >= 0 && m.chance(0.8) ? c.to : victim,
        d,
        m.chance(0.5) ? c.from : randomFrom(victim),
        false,
      );
    } else if (kind < 52) {
      // A captured packet replayed byte for byte from where it came.
      const c = anySample();
      if (!c) return;
      bump(stats, "replayed");
      inject(c.to >= 0 && m.chance(0.9) ? c.to : victim, c.data.slice(), c.from.clone(), true);
    } else if (kind < 64) {
      // Valid mac1, garbage inside.
      const type = m.chance(0.6) ? MESSAGE_INITIATION : MESSAGE_RESPONSE;
      bump(stats, "forgedMac1");
      inject(victim, forgeHandshake(type, forgeGen[victim]), randomFrom(victim), false);
    } else if (kind < 78) {
      // Transport header with a live index and a wrong counter or ciphertext.
      const real = sample(m.chance(0.7) ? MESSAGE_TRANSPORT : 5);
      let d: Uint8Array;
      let to = victim;
      if (real && m.chance(0.6)) {
        d = real.data.slice();
        if (real.to >= 0) to = real.to;
        if (m.chance(0.5)) writeU32(d, 8, m.interestingU32());
        else writeU32(d, 4, knownIndex());
        if (m.chance(0.3)) writeU32(d, 12, m.interestingU32());
      } else {
        d = m.bytes(16 + 16 + 16 * m.int(20));
        writeType(d, MESSAGE_TRANSPORT);
        writeU32(d, 4, knownIndex());
        writeU32(d, 8, m.interestingU32());
        writeU32(d, 12, m.chance(0.8) ? 0 : m.interestingU32());
      }
      bump(stats, "transportHeader");
      inject(to, d, m.chance(0.5) ? sides[1 - to].bind.endpoint(4) : randomFrom(to), false);
    } else if (kind < 86) {
      // Cookie replies: forged to a live index, or crafted valid.
      let d: Uint8Array | null = null;
      if (m.chance(0.3)) {
        d = craftCookieReply(victim);
        if (d) bump(stats, "craftedCookies");
      }
      if (!d) {
        d = m.bytes(MESSAGE_COOKIE_REPLY_SIZE);
        writeType(d, MESSAGE_COOKIE_REPLY);
        writeU32(d, 4, knownIndex());
        bump(stats, "forgedCookies");
      }
      inject(victim, d, sides[1 - victim].bind.endpoint(4), false);
    } else if (kind < 94) {
      // The attacker, with whatever cookie it has collected, from its own address.
      const type = m.chance(0.8) ? MESSAGE_INITIATION : MESSAGE_RESPONSE;
      bump(stats, "attacker");
      const at = m.int(attackerEps.length);
      inject(
        victim,
        forgeHandshake(type, attackerGens[at][victim]),
        attackerEps[at].clone(),
        false,
      );
    } else if (kind < 95) {
      if (m.chance(0.5)) flood(victim);
      else burst();
    } else {
      // A datagram that is a view into a larger buffer (nonzero byteOffset).
      const c = anySample();
      if (!c) return;
      const buf = new Uint8Array(c.data.length + 64);
      const off = m.int(64);
      buf.set(c.data, off);
      bump(stats, "views");
      inject(
        c.to >= 0 ? c.to : victim,
        buf.subarray(off, off + c.data.length),
        c.from.clone(),
        true,
      );
    }
  }

  /** Real traffic both ways, then time moves on. */
  function trafficStep(): void {
    bump(stats, "trafficSteps");
    for (const [s, r] of [[0, 1], [1, 0]] as const) {
      if (m.chance(0.7)) {
        guard(
          "real traffic",
          () =>
            sendFrom(ends[s], numberedPacket(ends[s], ends[r], nextId++, m.chance(0.5) ? 4 : 6)),
        );
      }
    }
    const jump = m.int(100);
    const ms = jump < 30
      ? 0
      : jump < 60
      ? m.range(1, 50)
      : jump < 90
      ? m.range(100, 2000)
      : jump < 98
      ? m.range(2000, 20_000)
      : m.range(100_000, 200_000);
    if (ms >= 100_000) bump(stats, "bigJumps");
    guard("clock advance", () => {
      p.clock.advance(ms);
      settle(p.clock);
    });
    for (const s of sides) {
      s.tun.take();
      for (const v of checkBounds(s.device)) recordFailure(stats, iteration, v);
      peak(stats, "peakIndexTable", s.device.indexTable.size);
      peak(stats, "peakRatelimiter", s.device.ratelimiter.size);
      peak(stats, "peakStaged", s.peer.stagedCount);
    }
    peak(stats, "peakClockPending", p.clock.pending);
    // 5 timers per peer, a handshake job and a flush job per device; nothing is in
    // flight after settle.
    if (p.clock.pending > 5 * 2 + 2 * 2) {
      recordFailure(stats, iteration, `${p.clock.pending} callbacks pending on the clock`);
    }
  }

  // Warm up: a handshake and data both ways, so there is something to replay.
  guard("warm-up", () => {
    sendFrom(ends[0], numberedPacket(ends[0], ends[1], nextId++));
    settle(p.clock);
    sendFrom(ends[1], numberedPacket(ends[1], ends[0], nextId++));
    settle(p.clock);
  });
  for (iteration = 0; iteration < iterations; iteration++) {
    if ((iteration & 63) === 0 && pastDeadline(options)) break;
    oneInput();
    if (m.int(24) === 0) trafficStep();
  }
  stats.iterations = iteration;
  iteration = -1;
  finalChecks(p, ends, stats, injected);
  for (const k of RX_COUNTERS) {
    bump(stats, `a.${k}`, p.a.device.stats[k]);
    bump(stats, `b.${k}`, p.b.device.stats[k]);
  }
  p.a.device.close();
  p.b.device.close();
  stats.ms = performance.now() - started;
  return stats;
}

/**
 * Identifies a datagram by its header (receiver index and counter, unique
 * per session), its length and a 32-bit FNV-1a hash of all of it.
 */
function fingerprint(data: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i], 0x01000193);
  return `${toHex(data.subarray(0, 16))}:${data.length}:${(h >>> 0).toString(16)}`;
}

function finalChecks(p: DevicePair, ends: TunnelEnd[], stats: FuzzStats, injected: number): void {
  try {
    // Let the under-load window, retransmits and keepalives play out.
    for (let i = 0; i < 30; i++) p.clock.advance(100);
    for (const s of [p.a, p.b]) s.tun.take();
    for (const s of [p.a, p.b]) {
      for (const v of checkBounds(s.device)) recordFailure(stats, -1, v);
      if (s.device.handshakeQueueLength !== 0) {
        recordFailure(stats, -1, `${s.device.name}: handshake queue not drained`);
      }
    }
    for (const [s, r] of [[0, 1], [1, 0]] as const) {
      const ms = probe(p.clock, ends[s], ends[r], 0xfffff000 + s);
      if (ms < 0) {
        recordFailure(
          stats,
          -1,
          `tunnel ${ends[s].device.name} → ${ends[r].device.name} no longer carries traffic: ` +
            JSON.stringify({ from: ends[s].device.stats, to: ends[r].device.stats }),
        );
      } else bump(stats, "probeMs", ms);
    }
    // What one side received and authenticated, the other sent.
    if (p.b.peer.rxBytes > p.a.peer.txBytes || p.a.peer.rxBytes > p.b.peer.txBytes) {
      recordFailure(
        stats,
        -1,
        `byte counters disagree: A tx ${p.a.peer.txBytes} rx ${p.a.peer.rxBytes}, ` +
          `B tx ${p.b.peer.txBytes} rx ${p.b.peer.rxBytes}`,
      );
    }
    let drops = 0;
    for (const s of [p.a, p.b]) for (const k of RX_COUNTERS) drops += s.device.stats[k];
    const received = injected + p.net.counters.delivered;
    if (drops > received) {
      recordFailure(stats, -1, `${drops} drops counted for ${received} datagrams received`);
    }
    for (const s of [p.a, p.b]) {
      for (const v of checkRoundTrip(s.device)) recordFailure(stats, -1, v);
    }
  } catch (err) {
    recordException(stats, -1, err, "final checks");
  }
}
