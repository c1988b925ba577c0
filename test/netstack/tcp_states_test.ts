// SPDX-License-Identifier: Apache-2.0
// TCP state machine edges: zero-window stalls, simultaneous open and close,
// RST in every state, SYN floods against the backlog, closed ports.
import assert from "node:assert/strict";
import { type Link, link, openConn, pattern, tapSegment } from "./_link.ts";
import type { TcpConn } from "../../src/netstack/tcp_conn.ts";
import { TcpState } from "../../src/netstack/tcp_state.ts";
import { RST, SYN } from "../../src/netstack/tcp_header.ts";

Deno.test("tcp: a zero window stalls the sender, persist probes keep asking, reading resumes it", () => {
  const l = link({ tcp: { receiveBuffer: 16384, sendBuffer: 65536 } });
  const { c, s } = openConn(l);
  const data = pattern(60000);
  let sent = c.write(data);
  assert.ok(l.until(() => s.readable === 16384, 5000));
  // The receiver reads nothing: the window is zero; the sender probes with growing gaps.
  const probesAt: number[] = [];
  l.tap = (p, from) => {
    const t = tapSegment(p);
    if (from === "a" && t && t.dataLen === 0 && t.seq === (c.sndUna - 1) >>> 0) {
      probesAt.push(l.clock.now());
    }
    return true;
  };
  l.run(20_000, 50);
  assert.equal(s.readable, 16384);
  assert.equal(c.state, TcpState.Established);
  assert.ok(probesAt.length >= 4, `probes ${probesAt.length}`);
  assert.ok(probesAt[3] - probesAt[2] > probesAt[1] - probesAt[0], "probes back off");
  // Reading opens the window; everything arrives in order.
  const buf = new Uint8Array(60000);
  let got = 0;
  s.onReadable = () => {
    for (let n; (n = s.read(buf, got)) > 0;) got += n;
  };
  c.onWritable = () => {
    sent += c.write(data, sent);
  };
  got += s.read(buf, 0);
  assert.ok(l.until(() => got === 60000, 60_000), `got ${got}`);
  assert.deepEqual(buf, data);
});

Deno.test("tcp: simultaneous close ends in TIME_WAIT on both sides, then nothing is left", () => {
  const l = link();
  const { c, s } = openConn(l);
  c.shutdown();
  s.shutdown();
  assert.ok(l.until(() => c.state === TcpState.TimeWait && s.state === TcpState.TimeWait, 5000));
  l.run(61_000, 1000);
  assert.equal(c.state, TcpState.Closed);
  assert.equal(s.state, TcpState.Closed);
  assert.equal(l.a.connectionCount + l.b.connectionCount, 0);
  assert.equal(l.clock.pending, 0);
});

Deno.test("tcp: simultaneous open (RFC 9293 §3.5 figure 8): crossing SYNs, both established", () => {
  const l = link();
  const a = l.a.connect("10.0.0.2", 7001, 7000);
  const b = l.b.connect("10.0.0.1", 7000, 7001);
  assert.ok(
    l.until(() => a.state === TcpState.Established && b.state === TcpState.Established, 5000),
  );
  assert.equal(l.a.stats.tcpPassiveOpens + l.b.stats.tcpPassiveOpens, 0);
  a.write(new Uint8Array([1, 2, 3]));
  assert.ok(l.until(() => b.readable === 3, 5000));
});

/** Sends a RST from B's side of the pair for `conn` (A's view) with sequence `seq`. */
function injectRst(l: Link, c: TcpConn, seq: number): void {
  // Built by B's stack as a reset for a segment it does not know: use a raw segment instead.
  const p = new Uint8Array(40);
  p.set([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1]);
  const dv = new DataView(p.buffer);
  dv.setUint16(20, c.remotePort);
  dv.setUint16(22, c.localPort);
  dv.setUint32(24, seq);
  p[32] = 0x50;
  p[33] = RST;
  fix(p);
  l.a.write(p);
}

/** Fills the IPv4 and TCP checksums of a 20+20-byte packet. */
function fix(p: Uint8Array): void {
  const sum = (from: number, to: number, init: number) => {
    let s = init;
    for (let i = from; i < to; i += 2) s += (p[i] << 8) | p[i + 1];
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    return ~s & 0xffff;
  };
  p[10] = p[11] = 0;
  const h = sum(0, 20, 0);
  p[10] = h >> 8;
  p[11] = h & 255;
  p[36] = p[37] = 0;
  let ps = 0;
  for (let i = 12; i < 20; i += 2) ps += (p[i] << 8) | p[i + 1];
  const t = sum(20, 40, ps + 6 + 20);
  p[36] = t >> 8;
  p[37] = t & 255;
}

Deno.test("tcp: RST in every state (RFC 9293 §3.10.7.4, RFC 5961 §3, RFC 1337)", () => {
  const states: [string, (l: Link) => TcpConn, TcpState, string | null][] = [];
  const established = (l: Link) => openConn(l).c;
  states.push(["ESTABLISHED", established, TcpState.Closed, "reset"]);
  states.push([
    "FIN_WAIT_1",
    (l) => {
      const { c } = openConn(l);
      l.tap = () => false; // the FIN's ACK never arrives
      c.shutdown();
      return c;
    },
    TcpState.Closed,
    "reset",
  ]);
  states.push([
    "FIN_WAIT_2",
    (l) => {
      const { c } = openConn(l);
      c.shutdown();
      assert.ok(l.until(() => c.state === TcpState.FinWait2, 5000));
      return c;
    },
    TcpState.Closed,
    "reset",
  ]);
  states.push([
    "CLOSE_WAIT",
    (l) => {
      const { c, s } = openConn(l);
      s.shutdown();
      assert.ok(l.until(() => c.state === TcpState.CloseWait, 5000));
      return c;
    },
    TcpState.Closed,
    "reset",
  ]);
  states.push([
    "LAST_ACK",
    (l) => {
      const { c, s } = openConn(l);
      s.shutdown();
      assert.ok(l.until(() => c.state === TcpState.CloseWait, 5000));
      l.tap = () => false;
      c.shutdown();
      return c;
    },
    TcpState.Closed,
    null,
  ]);
  states.push([
    "CLOSING",
    (l) => {
      const { c, s } = openConn(l);
      // Both FINs cross; B's ACK of A's FIN is lost, so A stays in CLOSING.
      l.tap = (p, from) => !(from === "b" && tapSegment(p)!.flags === 0x10);
      c.shutdown();
      s.shutdown();
      return c;
    },
    TcpState.Closed,
    null,
  ]);
  states.push([
    "TIME_WAIT",
    (l) => {
      const { c, s } = openConn(l);
      c.shutdown();
      assert.ok(l.until(() => c.state === TcpState.FinWait2, 5000));
      s.shutdown();
      assert.ok(l.until(() => c.state === TcpState.TimeWait, 5000));
      return c;
    },
    TcpState.TimeWait,
    null,
  ]);
  for (const [name, make, after, error] of states) {
    const l = link();
    const c = make(l);
    l.run(3, 1);
    const st = c.state;
    assert.equal(TcpState[st].toUpperCase(), name.replace(/_/g, ""), name);
    // Out of window: ignored. In window but not exact: challenge ACK (RFC 5961), still open.
    injectRst(l, c, (c.rcvNxt + 0x40000000) >>> 0);
    assert.equal(c.state, st, `${name} out-of-window RST`);
    const challenges = l.a.stats.tcpChallengeAcks;
    injectRst(l, c, (c.rcvNxt + 1) >>> 0);
    assert.equal(c.state, st, `${name} in-window RST`);
    if (st !== TcpState.TimeWait) assert.equal(l.a.stats.tcpChallengeAcks, challenges + 1, name);
    injectRst(l, c, c.rcvNxt);
    assert.equal(c.state, after, `${name} exact RST`);
    assert.equal(c.error, error, name);
  }
});

Deno.test("tcp: RST in SYN_SENT (refused) and SYN_RECEIVED (listener forgets it)", () => {
  const l = link();
  const c = l.a.connect("10.0.0.2", 9); // nobody listens: B answers RST|ACK
  let closed: string | null | undefined;
  c.onClose = (e) => closed = e;
  assert.ok(l.until(() => c.state === TcpState.Closed, 5000));
  assert.equal(closed, "refused");
  assert.equal(l.b.stats.tcpNoSocket, 1);
  // SYN_RECEIVED: the handshake's last ACK is replaced by a RST.
  const lis = l.b.listen(81);
  l.tap = (p, from) => {
    const t = tapSegment(p);
    return !(from === "a" && t && t.flags === 0x10);
  };
  const c2 = l.a.connect("10.0.0.2", 81);
  l.run(3, 1);
  assert.equal(lis.halfOpen, 1);
  c2.abort(); // RST|ACK with sndNxt, which is what B expects
  l.run(3, 1);
  assert.equal(lis.halfOpen, 0);
  assert.equal(l.b.connectionCount, 0);
});

Deno.test("tcp: a SYN flood is bounded by the backlog; the slots come back when SYN-ACKs time out", () => {
  const l = link({ tcp: { synAckRetries: 2 } });
  const lis = l.b.listen(443, 16);
  l.tap = (_p, from) => from === "a"; // SYN-ACKs vanish: the half-open connections pile up
  const flood: TcpConn[] = [];
  for (let i = 0; i < 1000; i++) flood.push(l.a.connect("10.0.0.2", 443));
  l.run(5, 1);
  assert.equal(lis.halfOpen, 16);
  assert.equal(l.b.stats.tcpSynDropped, 1000 - 16);
  assert.equal(l.b.connectionCount, 16);
  for (const c of flood) c.abort(); // silent in SYN_SENT: the flooder just goes away
  // SYN-ACK retransmissions at 1 s and 3 s, given up at 7 s.
  l.run(6_000, 100);
  assert.equal(lis.halfOpen, 16);
  l.run(2_000, 100);
  assert.equal(lis.halfOpen, 0);
  assert.equal(l.b.connectionCount, 0);
  l.tap = null;
  const ok = l.a.connect("10.0.0.2", 443);
  assert.ok(l.until(() => lis.queue.length === 1 && ok.state === TcpState.Established, 5000));
});

Deno.test("tcp: hostile segments are dropped and counted, never thrown", () => {
  const l = link();
  const { c } = openConn(l);
  const p = new Uint8Array(40);
  p.set([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1]);
  const dv = new DataView(p.buffer);
  dv.setUint16(20, c.remotePort);
  dv.setUint16(22, c.localPort);
  p[32] = 0x50;
  p[33] = SYN | 0x10;
  fix(p);
  p[37] ^= 1; // bad checksum
  l.a.write(p);
  assert.equal(l.a.stats.tcpChecksumErrors, 1);
  // Random garbage of every length, and random bit flips of a valid packet.
  let x = 12345;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 16;
  for (let i = 0; i < 20000; i++) {
    const b = new Uint8Array(rnd() % 120);
    for (let j = 0; j < b.length; j++) b[j] = rnd() & 255;
    if (b.length > 0) b[0] = (b[0] & 0x0f) | (i & 1 ? 0x40 : 0x60);
    l.a.write(b);
    const q = p.slice();
    q[rnd() % 40] ^= 1 << (rnd() % 8);
    l.a.write(q);
  }
  l.run(100, 10);
  assert.equal(c.state, TcpState.Established);
  const st = l.a.stats;
  assert.ok(st.ipMalformed > 0 && st.tcpChecksumErrors > 1);
});
