// SPDX-License-Identifier: Apache-2.0
// Selective acknowledgments: the sender's scoreboard (RFC 6675) against
// hostile blocks, SACK-permitted negotiation, the blocks a receiver sends
// (RFC 2018 §4), loss recovery that repairs several holes of one window
// without a timeout, and NewReno when one side does not do SACK.
import assert from "node:assert/strict";
import { link, openConn, pattern, tapSegment } from "./_link.ts";
import { transfer } from "./_transfer.ts";
import { MAX_SACK_RANGES, SackScoreboard } from "../../src/netstack/tcp_sack.ts";
import { writeIPv4 } from "../../src/netstack/ip_packet.ts";
import {
  ACK,
  finishTcpChecksum,
  SYN,
  type TcpSegment,
  writeTcpHeader,
} from "../../src/netstack/tcp_header.ts";

const blocks = (...b: number[]) => Uint32Array.from(b);

Deno.test("sack scoreboard: merges, advances, and ignores or drops hostile blocks", () => {
  const sb = new SackScoreboard();
  const una = 0xffff_ff00; // wraps through zero
  const max = (una + 100_000) >>> 0;
  const at = (n: number) => (una + n) >>> 0;
  let u = sb.update(blocks(at(1000), at(2000), at(3000), at(4000)), 2, una, max, max);
  assert.deepEqual([u.newly, u.invalid, u.dropped], [2000, 0, 0]);
  // Overlapping and repeated blocks merge; only new bytes count.
  u = sb.update(blocks(at(1500), at(3500), at(1000), at(2000)), 2, una, max, max);
  assert.deepEqual([u.newly, sb.count, sb.bytes], [1000, 1, 3000]);
  assert.deepEqual([sb.r[0], sb.r[1]], [at(1000), at(4000)]);
  // Beyond SND.MAX, wholly below SND.UNA (D-SACK), empty, inverted: ignored.
  u = sb.update(
    blocks(at(99_000), at(100_001), at(-500), at(0), at(5000), at(5000), at(7000), at(6000)),
    4,
    una,
    max,
    max,
  );
  assert.deepEqual([u.newly, u.invalid, sb.count], [0, 4, 1]);
  // Far outside the window (the other half of sequence space): ignored.
  u = sb.update(blocks(at(0x8000_0000), at(0x8000_1000)), 1, una, max, max);
  assert.equal(u.invalid, 1);
  // Starting below SND.UNA: cut there. Reaching past the data end (our FIN): cut too.
  u = sb.update(blocks(at(-10), at(10), at(99_990), at(100_000)), 2, una, max, at(99_995));
  assert.deepEqual([u.newly, u.invalid, sb.count, sb.bytes], [15, 0, 3, 3015]);
  // More disjoint ranges than kept: the extra ones are dropped and counted.
  let dropped = 0;
  for (let i = 0; i < MAX_SACK_RANGES + 10; i++) {
    dropped += sb.update(blocks(at(10_000 + i * 100), at(10_050 + i * 100)), 1, una, max, max)
      .dropped;
  }
  assert.equal(sb.count, MAX_SACK_RANGES);
  assert.equal(dropped, 13);
  // SND.UNA moves into the second range: the first goes, the second is cut.
  sb.advance(at(2000));
  assert.deepEqual([sb.r[0], sb.r[1]], [at(2000), at(4000)]);
  let sum = 0;
  for (let i = 0; i < sb.count; i++) sum += (sb.r[i * 2 + 1] - sb.r[i * 2]) >>> 0;
  assert.equal(sb.bytes, sum);
  sb.advance(max);
  assert.deepEqual([sb.count, sb.bytes], [0, 0]);
});

Deno.test("sack scoreboard: pipe, IsLost and NextSeg holes (RFC 6675 §4)", () => {
  const sb = new SackScoreboard();
  const mss = 1000;
  // Ten segments out; 1 and 3 lost, the rest SACKed except the last two (in flight).
  sb.update(blocks(1000, 2000, 3000, 8000), 2, 0, 10_000, 10_000);
  assert.ok(sb.firstLost(mss));
  // Holes [0,1000) and [2000,3000) have more than 2 SMSS SACKed above: lost; [8000,10000) is not.
  assert.equal(sb.pipe(0, 10_000, 0, mss), 2000);
  assert.equal(sb.nextHole(0, 0, mss), 1);
  assert.deepEqual([sb.holeStart, sb.holeEnd], [0, 1000]);
  // After retransmitting the first hole, it counts in the pipe again.
  assert.equal(sb.pipe(0, 10_000, 1000, mss), 3000);
  assert.equal(sb.nextHole(0, 1000, mss), 1);
  assert.deepEqual([sb.holeStart, sb.holeEnd], [2000, 3000]);
  assert.equal(sb.nextHole(0, 3000, mss), 0);
  // One SACKed segment above a hole does not make it lost (rule 3 only).
  const one = new SackScoreboard();
  one.update(blocks(1000, 2000), 1, 0, 5000, 5000);
  assert.ok(!one.firstLost(mss));
  assert.equal(one.nextHole(0, 0, mss), 3);
  assert.equal(one.pipe(0, 5000, 0, mss), 4000);
});

Deno.test("tcp sack: SACK-permitted on SYN and SYN-ACK only when both sides offer it", () => {
  for (const [a, b, want] of [[true, true, true], [true, false, false], [false, true, false]]) {
    const l = link({ tcpA: { sack: a }, tcpB: { sack: b } });
    const syns: boolean[] = [];
    l.tap = (p) => {
      const t = tapSegment(p);
      if (t && t.flags & SYN) syns.push(t.sackPermitted);
      return true;
    };
    const { c, s } = openConn(l);
    assert.deepEqual(syns, [a, a && b]);
    assert.equal(c.sackOk, want);
    assert.equal(s.sackOk, want);
  }
});

Deno.test("tcp sack: the receiver reports held blocks, the most recent first, in immediate ACKs", () => {
  const l = link();
  const { c, s } = openConn(l);
  const mss = c.mss;
  // Drop the 1st, 3rd and 5th data segments of a burst of 8.
  let n = 0;
  const acks: TcpSegment[] = [];
  l.tap = (p, from) => {
    const t = tapSegment(p);
    if (!t) return true;
    if (from === "a" && t.dataLen > 0) {
      n++;
      return n !== 1 && n !== 3 && n !== 5;
    }
    if (from === "b" && n <= 8) acks.push(t);
    return true;
  };
  const data = pattern(8 * mss);
  assert.equal(c.write(data), data.length);
  l.run(2, 1);
  const base = (c.iss + 1) >>> 0;
  const blk = (t: TcpSegment) => {
    const out: number[] = [];
    for (let i = 0; i < t.sackCount * 2; i++) out.push((t.sack[i] - base) >>> 0);
    return out;
  };
  // One ACK per out-of-order segment (none delayed), all for the first byte.
  assert.equal(acks.length, 5);
  for (const t of acks) assert.equal(t.ack, base);
  assert.deepEqual(blk(acks[0]), [mss, 2 * mss]);
  assert.deepEqual(blk(acks[1]), [3 * mss, 4 * mss, mss, 2 * mss]);
  assert.deepEqual(blk(acks[2]), [5 * mss, 6 * mss, 3 * mss, 4 * mss, mss, 2 * mss]);
  assert.deepEqual(blk(acks[3]), [5 * mss, 7 * mss, 3 * mss, 4 * mss, mss, 2 * mss]);
  assert.deepEqual(blk(acks[4]), [5 * mss, 8 * mss, 3 * mss, 4 * mss, mss, 2 * mss]);
  // The sender repairs the three holes in one recovery, without a timeout.
  l.tap = null;
  const buf = new Uint8Array(data.length);
  let got = 0;
  assert.ok(l.until(() => {
    const k = s.read(buf, got);
    if (k > 0) got += k;
    return got === data.length;
  }, 5000));
  assert.deepEqual(buf, data);
  const st = l.a.stats;
  assert.equal(st.tcpSackRecoveries, 1);
  assert.equal(st.tcpRtoExpired, 0);
  assert.equal(st.tcpRetransmits, 3);
  assert.equal(s.oooCount, 0);
});

Deno.test("tcp sack: hostile SACK blocks are ignored and counted; the transfer stays byte-exact", () => {
  const l = link();
  const { c, s } = openConn(l);
  const data = pattern(400_000, 4);
  let sent = 0;
  let got = 0;
  const buf = new Uint8Array(data.length);
  const tx = new Uint8Array(100);
  // Forge an ACK from B carrying `b` as SACK blocks (valid sequence and ACK numbers).
  const forge = (b: number[]) => {
    const win = Math.min(0xffff, s.recvBuf!.free >>> s.rcvWscale);
    const thl = writeTcpHeader(tx, 20, s.localPort, s.remotePort, s.sndNxt, c.sndUna, ACK, win, {
      mss: -1,
      wscale: -1,
      sackPermitted: false,
      timestamp: false,
      tsVal: 1,
      tsEcr: 0,
      sackCount: b.length / 2,
      sackBlocks: Uint32Array.from(b),
    });
    writeIPv4(tx, s.local, 0, s.remote, 0, 6, thl, 1, 64);
    finishTcpChecksum(tx, 20, thl, 12, 16, 4);
    l.a.write(tx.subarray(0, 20 + thl));
  };
  let forged = 0;
  assert.ok(l.until(() => {
    sent += c.write(data, sent);
    const k = s.read(buf, got);
    if (k > 0) got += k;
    if (c.sndMax !== c.sndUna && forged < 200) {
      forged++;
      const una = c.sndUna, max = c.sndMax;
      forge([(max + 1) >>> 0, (max + 5000) >>> 0, (una - 3000) >>> 0, (una - 1000) >>> 0]);
      forge([(una + 10) >>> 0, (una + 5) >>> 0, (una + 0x8000_0000) >>> 0, (una + 7) >>> 0]);
    }
    return got === data.length;
  }, 60_000));
  assert.deepEqual(buf, data);
  const st = l.a.stats;
  assert.ok(forged >= 10, `${forged} forged`);
  assert.equal(st.tcpSackInvalid, 4 * forged);
  assert.equal(st.tcpSackRecoveries, 0);
  assert.equal(c.scoreboard?.count ?? 0, 0);
});

Deno.test("tcp sack: 4 MB byte-exact at 2% loss with SACK, and with NewReno when B does not offer it", () => {
  for (const sack of [true, false]) {
    const data = pattern(4 * 1024 * 1024, 21);
    const r = transfer(data, { latency: 10, loss: 0.02, seed: 3, tcpB: { sack } });
    assert.ok(r.done, `stalled at ${r.got}`);
    assert.equal(r.mismatch, -1);
    assert.equal(r.c.sackOk, sack);
    const st = r.l.a.stats;
    assert.ok(st.tcpFastRetransmits > 0);
    assert.equal(st.tcpSackRecoveries > 0, sack);
    // Bounded: no more SACKed ranges than the scoreboard holds, the receiver's queue emptied.
    assert.ok((r.c.scoreboard?.count ?? 0) <= MAX_SACK_RANGES);
    assert.equal(r.s!.oooCount, 0);
  }
});
