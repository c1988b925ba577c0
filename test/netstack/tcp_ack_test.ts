// SPDX-License-Identifier: Apache-2.0
// The receiver's acknowledgments, as a sender's congestion control (BBR's
// delivery-rate and RTT samples, Reno's slow start) needs them: quick ACKs at
// the start and after idle, then one ACK per second full-sized segment; window
// updates when the application drains a closing window but not at every read;
// the timestamp echo of a delayed ACK (RFC 7323 §4.3).
import assert from "node:assert/strict";
import { type Link, link, openConn, pattern, tapSegment } from "./_link.ts";
import { QUICKACK_SEGMENTS, type TcpConn } from "../../src/netstack/tcp_conn.ts";
import type { TcpSegment } from "../../src/netstack/tcp_header.ts";

/** Counts what crosses the link: A's data segments and B's bare ACKs, in order. */
function watch(l: Link) {
  const log: { from: "a" | "b"; t: TcpSegment; at: number }[] = [];
  l.tap = (p, from) => {
    const t = tapSegment(p);
    if (t && (from === "a" ? t.dataLen > 0 : t.dataLen === 0)) {
      log.push({ from, t, at: l.clock.now() });
    }
    return true;
  };
  return log;
}

/** Reads everything `s` holds into `sink` whenever it becomes readable. */
function drainOnReadable(s: TcpConn): { got: number } {
  const r = { got: 0 };
  const buf = new Uint8Array(65536);
  s.onReadable = () => {
    for (let n; (n = s.read(buf)) > 0;) r.got += n;
  };
  return r;
}

Deno.test("tcp ack: quick ACKs for the first segments, then one per second full-sized segment", () => {
  const l = link({ latency: 5 });
  const { c, s } = openConn(l);
  const log = watch(l);
  const r = drainOnReadable(s);
  const data = pattern(200 * c.mss);
  let sent = 0;
  c.onWritable = () => {
    sent += c.write(data, sent);
  };
  sent += c.write(data);
  assert.ok(l.until(() => r.got === data.length, 20_000));
  // What each ACK acknowledges, in full segments (the log is in sending order).
  const base = (c.iss + 1) >>> 0;
  const acked = log.filter((e) => e.from === "b").map((e) => ((e.t.ack - base) >>> 0) / c.mss);
  // Quick-ACK mode: each of the first segments is acknowledged on its own.
  for (let i = 0; i < QUICKACK_SEGMENTS; i++) assert.equal(acked[i], i + 1, `ACK ${i}`);
  // Then every second full-sized segment (RFC 5681 §4.2): never more than 2 under one ACK,
  // and no ACK for a single one while data keeps coming.
  const later = acked.slice(QUICKACK_SEGMENTS);
  let prev = QUICKACK_SEGMENTS;
  let pairs = 0;
  for (const n of later) {
    assert.ok(n - prev <= 2, `${n - prev} segments under one ACK`);
    if (n - prev === 2) pairs++;
    prev = n;
  }
  assert.equal(prev, 200);
  assert.ok(pairs >= (200 - QUICKACK_SEGMENTS) / 2 - 2, `pairs ${pairs}`);
  // No delayed-ACK timeout was needed with a steady stream of full segments.
  assert.ok(later.length <= (200 - QUICKACK_SEGMENTS) / 2 + 2, `${later.length} ACKs`);
});

Deno.test("tcp ack: quick-ACK mode again after the connection was idle", () => {
  const l = link({ latency: 5 });
  const { c, s } = openConn(l);
  const r = drainOnReadable(s);
  const burst = (n: number) => {
    assert.equal(c.write(pattern(n * c.mss)), n * c.mss);
    const want = r.got + n * c.mss;
    assert.ok(l.until(() => r.got === want && c.sndUna === c.sndMax, 5000));
  };
  burst(40); // leaves quick-ACK mode
  assert.equal(s.quickAcks, 0);
  l.run(5000, 100); // idle, far longer than the RTO
  const log = watch(l);
  burst(4);
  const acks = log.filter((e) => e.from === "b").length;
  assert.equal(acks, 4, "each segment after idle is acknowledged at once");
});

Deno.test("tcp ack: a read that reopens a closing window sends an update; reads of an open one do not", () => {
  const cap = 64 * 1024;
  const l = link({ tcp: { receiveBuffer: cap } });
  const { c, s } = openConn(l);
  const data = pattern(4 * cap);
  let sent = c.write(data);
  c.onWritable = () => {
    sent += c.write(data, sent);
  };
  // Nobody reads: the window closes.
  assert.ok(l.until(() => s.readable === cap, 5000));
  assert.equal(s.rcvAdv, s.rcvNxt);
  const log = watch(l);
  const buf = new Uint8Array(data.length);
  let got = 0;
  // Draining a quarter of the buffer reopens it with one bare ACK right away.
  got += s.read(buf, got, cap / 4);
  const updates = log.filter((e) => e.from === "b");
  assert.equal(updates.length, 1);
  assert.equal(updates[0].t.window << s.rcvWscale, cap / 4);
  // The sender fills that quarter; draining the rest reopens the window with one update.
  assert.ok(l.until(() => s.readable === cap, 5000));
  const acks = () => log.filter((e) => e.from === "b").length;
  const before = acks();
  got += s.read(buf, got, (cap * 3) / 4);
  assert.equal(acks(), before + 1);
  // While the window the sender knows stays more than half open, reads send nothing:
  // the ACKs of the data that fills it carry the new edge.
  got += s.read(buf, got, 2048);
  got += s.read(buf, got, 2048);
  assert.equal(acks(), before + 1);
  // Everything still arrives.
  s.onReadable = () => {
    for (let n; (n = s.read(buf, got)) > 0;) got += n;
  };
  s.onReadable();
  assert.ok(l.until(() => got === data.length, 30_000), `got ${got}`);
  assert.deepEqual(buf, data);
});

Deno.test("tcp ack: a delayed ACK echoes the TSval of the first segment it covers (RFC 7323 §4.3)", () => {
  const l = link({ latency: 5 });
  const { c, s } = openConn(l);
  drainOnReadable(s);
  // Leave quick-ACK mode first.
  assert.equal(c.write(pattern(QUICKACK_SEGMENTS * c.mss)), QUICKACK_SEGMENTS * c.mss);
  assert.ok(l.until(() => c.sndUna === c.sndMax, 5000));
  assert.equal(s.quickAcks, 0);
  // Two full segments sent 3 ms apart (Nagle off), one ACK for both.
  const sentTs: number[] = [];
  const echoed: number[] = [];
  l.tap = (p, from) => {
    const t = tapSegment(p);
    if (t && from === "a" && t.dataLen > 0) sentTs.push(t.tsVal);
    if (t && from === "b" && t.dataLen === 0) echoed.push(t.tsEcr);
    return true;
  };
  const one = pattern(c.mss);
  c.write(one);
  l.run(3, 1);
  c.write(one);
  assert.ok(l.until(() => c.sndUna === c.sndMax, 5000));
  assert.equal(sentTs.length, 2);
  assert.ok(sentTs[1] > sentTs[0]);
  assert.deepEqual(echoed, [sentTs[0]]);
});
