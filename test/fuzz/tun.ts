// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Fuzz target "tun": the send path from the TUN (Device.handleTunPacket →
 * crypto-routing → staging → padding → encryption) and, on the far side, the
 * inner-packet checks of the receive path (length field, padding trim,
 * source in the sender's allowed IPs), fed with IPv4/IPv6 packets that are
 * valid, lie about their length, have random versions, header lengths and
 * addresses, are tiny, empty, or up to and past the largest message, and
 * arrive as views into larger buffers, while the MTU changes under them.
 *
 * An independent model of wireguard-go's rules predicts, for every packet,
 * whether the sender drops it (not IP / no route / too big), whether the
 * receiver drops it (bad length / bad source) and exactly which bytes the
 * receiver's TUN gets (the packet plus zero padding, cut at its length
 * field). The model must match byte for byte, and the drop counters exactly.
 */
import type { Rng } from "../../src/clock.ts";
import {
  AEAD_TAG_SIZE,
  MAX_MESSAGE_SIZE,
  MESSAGE_TRANSPORT_HEADER_SIZE,
} from "../../src/constants.ts";
import { parseIPv4, parseIPv6 } from "../../src/ip.ts";
import type { DeviceStats } from "../../src/device.ts";
import { devicePair, type Side } from "../_util/device_pair.ts";
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
import { settle } from "./traffic.ts";

/** Largest packet the sender accepts (room for the header, tag and 16 bytes of padding). */
const MAX_PACKET = MAX_MESSAGE_SIZE - MESSAGE_TRANSPORT_HEADER_SIZE - AEAD_TAG_SIZE - 16;

const MTUS = [0, 1, 15, 16, 17, 68, 576, 1280, 1420, 1420, 1420, 1500, 9000, 65503];

/** What the model expects of one packet. */
type Outcome =
  | { kind: "senderInvalid" }
  | { kind: "noRoute" }
  | { kind: "receiverInvalid" }
  | { kind: "badSource" }
  | { kind: "delivered"; bytes: Uint8Array };

/** Zero padding wireguard-go adds (calculatePaddingSize), written from its description. */
function padding(size: number, mtu: number): number {
  const round = (n: number) => Math.ceil(n / 16) * 16;
  if (mtu === 0) return round(size) - size;
  const last = size > mtu ? size % mtu : size;
  return Math.min(round(last), mtu) - last;
}

function equalBytes(a: Uint8Array, b: Uint8Array, bOffset = 0): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[bOffset + i]) return false;
  return true;
}

/**
 * The model. `self`/`other` are the sender's and receiver's tunnel addresses;
 * the pair routes exactly self → other (one /32 and one /128 each way).
 */
function predict(
  pkt: Uint8Array,
  mtu: number,
  self: { v4: Uint8Array; v6: Uint8Array },
  other: { v4: Uint8Array; v6: Uint8Array },
): Outcome {
  const version = pkt.length > 0 ? pkt[0] >> 4 : 0;
  if (!((version === 4 && pkt.length >= 20) || (version === 6 && pkt.length >= 40))) {
    return { kind: "senderInvalid" };
  }
  const routed = version === 4 ? equalBytes(other.v4, pkt, 16) : equalBytes(other.v6, pkt, 24);
  if (!routed) return { kind: "noRoute" };
  if (pkt.length > MAX_PACKET) return { kind: "senderInvalid" };
  const plain = new Uint8Array(pkt.length + padding(pkt.length, mtu));
  plain.set(pkt);
  let length: number;
  if (version === 4) {
    length = (plain[2] << 8) | plain[3];
    if (length < 20 || length > plain.length) return { kind: "receiverInvalid" };
    if (!equalBytes(self.v4, plain, 12)) return { kind: "badSource" };
  } else {
    length = 40 + ((plain[4] << 8) | plain[5]);
    if (length > plain.length) return { kind: "receiverInvalid" };
    if (!equalBytes(self.v6, plain, 8)) return { kind: "badSource" };
  }
  return { kind: "delivered", bytes: plain.subarray(0, length) };
}

/** Fuzzes the TUN side of a live pair against the model; see the module doc. */
export function fuzzTun(rng: Rng, iterations: number, options: FuzzOptions = {}): FuzzStats {
  const started = performance.now();
  const stats = newStats("tun");
  const m = new Mutator(rng);
  const p = devicePair({ seed: m.u32(), psk: m.chance(0.5) });
  const addr = [
    { v4: parseIPv4("10.0.0.1")!, v6: parseIPv6("fd00::1")! },
    { v4: parseIPv4("10.0.0.2")!, v6: parseIPv6("fd00::2")! },
  ];
  const sides: Side[] = [p.a, p.b];
  let iteration = 0;

  function address(family: 4 | 6, dir: number, role: "src" | "dst"): Uint8Array {
    const mine = role === "src" ? addr[dir] : addr[1 - dir];
    const r = m.int(10);
    if (r < 7) return (family === 4 ? mine.v4 : mine.v6).slice();
    if (r < 8) return (family === 4 ? addr[dir].v4 : addr[dir].v6).slice(); // to itself
    const a = m.bytes(family === 4 ? 4 : 16);
    if (r < 9) a.set((family === 4 ? mine.v4 : mine.v6).subarray(0, a.length - 1));
    return a;
  }

  function packet(dir: number): Uint8Array {
    const r = m.int(100);
    if (r < 5) return m.bytes(m.int(60)); // tiny garbage
    if (r < 8) return new Uint8Array(0);
    const family: 4 | 6 = m.chance(0.5) ? 4 : 6;
    const header = family === 4 ? 20 : 40;
    let size: number;
    const s = m.int(100);
    if (s < 70) size = header + m.int(1500);
    else if (s < 90) size = header + m.int(64);
    else if (s < 97) size = m.range(1500, 9000);
    else size = m.pick([MAX_PACKET - 1, MAX_PACKET, MAX_PACKET + 1, 65535, 65536, 70000]);
    const pkt = m.bytes(Math.max(size, header));
    pkt.fill(0, 0, header);
    if (family === 4) {
      pkt[0] = 0x45;
      pkt[8] = 64;
      pkt[9] = 17;
      pkt.set(address(4, dir, "src"), 12);
      pkt.set(address(4, dir, "dst"), 16);
    } else {
      pkt[0] = 0x60;
      pkt[6] = 17;
      pkt[7] = 64;
      pkt.set(address(6, dir, "src"), 8);
      pkt.set(address(6, dir, "dst"), 24);
    }
    let length = family === 4 ? pkt.length : pkt.length - 40;
    if (m.chance(0.25)) {
      // The length field lies.
      length = m.chance(0.5) ? m.int(65536) : Math.max(0, length + m.range(-40, 40));
    }
    const off = family === 4 ? 2 : 4;
    pkt[off] = (length >> 8) & 0xff;
    pkt[off + 1] = length & 0xff;
    if (m.chance(0.05)) pkt[0] = (m.int(16) << 4) | (pkt[0] & 15); // any version
    if (m.chance(0.05)) pkt[0] = (pkt[0] & 0xf0) | m.int(16); // any IHL
    if (m.chance(0.1)) return pkt.slice(0, m.int(pkt.length + 1)); // truncated
    return pkt;
  }

  for (iteration = 0; iteration < iterations; iteration++) {
    if ((iteration & 15) === 0 && pastDeadline(options)) break;
    const dir = m.int(2);
    const [s, r] = [sides[dir], sides[1 - dir]];
    if (m.chance(0.05)) {
      s.tun.mtu = m.pick(MTUS);
      bump(stats, "mtuChanges");
    }
    const before = { s: { ...s.device.stats }, r: { ...r.device.stats } };
    const expected: Uint8Array[] = [];
    const counts = { senderInvalid: 0, noRoute: 0, receiverInvalid: 0, badSource: 0 };
    const batch = m.range(1, 24);
    for (let i = 0; i < batch; i++) {
      let pkt = packet(dir);
      const outcome = predict(pkt, s.tun.mtu, addr[dir], addr[1 - dir]);
      if (outcome.kind === "delivered") expected.push(outcome.bytes.slice());
      else counts[outcome.kind]++;
      bump(stats, outcome.kind);
      if (m.chance(0.2)) {
        // A view into a larger buffer.
        const off = m.range(1, 32);
        const buf = new Uint8Array(pkt.length + off + m.int(32));
        buf.set(pkt, off);
        pkt = buf.subarray(off, off + pkt.length);
      }
      stats.inputs++;
      try {
        s.device.handleTunPacket(pkt);
      } catch (err) {
        recordException(stats, iteration, err, pkt);
      }
    }
    try {
      s.device.flush();
      settle(p.clock);
    } catch (err) {
      recordException(stats, iteration, err, "flush/settle");
    }
    const got = r.tun.take();
    const delta = (x: DeviceStats, y: DeviceStats, k: keyof DeviceStats) => x[k] - y[k];
    const sd = s.device.stats, rd = r.device.stats;
    const dropped = delta(sd, before.s, "stagedDropped") + delta(sd, before.s, "sendErrors");
    const mismatch: string[] = [];
    if (dropped === 0) {
      if (got.length !== expected.length) {
        mismatch.push(`${got.length} packets delivered, model expects ${expected.length}`);
      } else {
        for (let i = 0; i < got.length; i++) {
          if (got[i].length !== expected[i].length || !equalBytes(expected[i], got[i])) {
            mismatch.push(
              `packet ${i}: got ${toHex(got[i].subarray(0, 48))} (${got[i].length}), ` +
                `expected ${toHex(expected[i].subarray(0, 48))} (${expected[i].length})`,
            );
            break;
          }
        }
      }
    }
    const pairs: [string, number, number][] = [
      ["sender invalidPackets", delta(sd, before.s, "invalidPackets"), counts.senderInvalid],
      ["sender noRoute", delta(sd, before.s, "noRoute"), counts.noRoute],
      ["receiver invalidPackets", delta(rd, before.r, "invalidPackets"), counts.receiverInvalid],
      ["receiver badSource", delta(rd, before.r, "badSource"), counts.badSource],
      ["receiver decryptFailed", delta(rd, before.r, "decryptFailed"), 0],
    ];
    for (const [what, actual, model] of pairs) {
      if (what.startsWith("receiver") && dropped > 0 ? actual > model : actual !== model) {
        mismatch.push(`${what}: ${actual}, model ${model}`);
      }
    }
    if (mismatch.length > 0) {
      recordFailure(
        stats,
        iteration,
        `${s.device.name} → ${r.device.name} (mtu ${s.tun.mtu}): ${mismatch.join("; ")}`,
      );
    }
    if (dropped > 0) bump(stats, "batchesWithDrops");
    // Time moves: sometimes far enough for a rekey or an expired session.
    const jump = m.int(100);
    const ms = jump < 60 ? m.int(200) : jump < 97 ? m.range(200, 5000) : m.range(100_000, 200_000);
    try {
      p.clock.advance(ms);
      settle(p.clock);
    } catch (err) {
      recordException(stats, iteration, err, "clock advance");
    }
    for (const side of sides) {
      side.tun.take(); // stray deliveries (none expected) are not kept
      for (const v of checkBounds(side.device)) recordFailure(stats, iteration, v);
      peak(stats, "peakStaged", side.peer.stagedCount);
    }
  }
  stats.iterations = iteration;
  for (const side of sides) {
    try {
      for (const v of checkRoundTrip(side.device)) recordFailure(stats, -1, v);
    } catch (err) {
      recordException(stats, -1, err, "round trip");
    }
    side.device.close();
  }
  stats.ms = performance.now() - started;
  return stats;
}
