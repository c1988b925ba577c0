// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Sending for a TCP connection (the {@link OutputState} fields of a
 * TcpConn): {@link tcpOutput} sends what the send and
 * congestion windows allow (with sender SWS avoidance and Nagle, RFC 9293
 * §3.8.6.2.1 and §3.7.4), plus the single-segment senders for SYN, ACK,
 * RST, retransmission and probes. Every segment is built in the stack's
 * scratch buffer; data is copied straight from the send ring.
 */
import type { Clock } from "../clock.ts";
import { TcpState } from "./tcp_state.ts";
import {
  ACK,
  FIN,
  finishTcpChecksum,
  MAX_SACK_BLOCKS,
  noTcpOptions,
  PSH,
  RST,
  SYN,
  type TcpOptionsOut,
  writeTcpHeader,
} from "./tcp_header.ts";
import { PROTO_TCP, writeIPv4, writeIPv6 } from "./ip_packet.ts";
import { DEFAULT_TTL } from "./icmp.ts";
import type { Ring } from "./ring.ts";
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, seqMax } from "./seq.ts";
import { type CongestionHost, type CongestionState, flightSize } from "./tcp_cc.ts";
import type { SackScoreboard } from "./tcp_sack.ts";

/** Words per out-of-order interval (start, end, stamp), as in TcpConn.ooo. */
const OOO_STRIDE = 3;

/** What a segment builder needs from the stack (a subset of TcpHost). */
export interface SegmentSink {
  /** Scratch packet buffer (at least the MTU). */
  readonly tx: Uint8Array;
  /** Next IPv4 identification value. */
  nextIpId(): number;
  /** Sends the packet built in {@link SegmentSink.tx} with `len` bytes. */
  transmit(len: number): void;
}

/** What sending needs from the connection's stack. */
export interface OutputHost extends SegmentSink, CongestionHost {
  readonly clock: Clock;
}

/** The connection fields this module reads and updates (see TcpConn for their meaning). */
export interface OutputState extends CongestionState {
  readonly host: OutputHost;
  readonly state: TcpState;
  readonly family: 4 | 6;
  readonly local: Uint8Array;
  readonly remote: Uint8Array;
  readonly localPort: number;
  readonly remotePort: number;
  readonly sendBuf: Ring | null;
  readonly recvBuf: Ring | null;
  readonly opts: TcpOptionsOut;
  readonly iss: number;
  sndNxt: number;
  sndMax: number;
  readonly sndWnd: number;
  readonly maxSndWnd: number;
  readonly finQueued: boolean;
  /** Sequence number of our FIN. */
  readonly finSeq: number;
  readonly wsOk: boolean;
  readonly rcvWscale: number;
  readonly rcvMss: number;
  readonly rcvNxt: number;
  rcvAdv: number;
  readonly tsOk: boolean;
  readonly tsRecent: number;
  /** Out-of-order intervals held (start, end, stamp; see TcpConn.ooo) and their SACK blocks. */
  readonly ooo: Uint32Array;
  readonly oooCount: number;
  readonly sackOut: Uint32Array;
  readonly sackOk: boolean;
  readonly scoreboard: SackScoreboard | null;
  rxtNext: number;
  unacked: number;
  lastAckSent: number;
  rtSeq: number;
  rtTime: number;
  readonly persistShift: number;
  rtoAt: number;
  delackAt: number;
  persistAt: number;
}

const NO_OPTIONS: TcpOptionsOut = noTcpOptions();

/**
 * Builds and sends one segment from `local`:`lport` to `remote`:`rport`,
 * carrying `len` bytes of `data` from `at` bytes after its head.
 */
export function writeSegment(
  sink: SegmentSink,
  family: 4 | 6,
  local: Uint8Array,
  localOff: number,
  remote: Uint8Array,
  remoteOff: number,
  lport: number,
  rport: number,
  seq: number,
  ack: number,
  flags: number,
  window: number,
  opts: TcpOptionsOut | null,
  data: Ring | null,
  at: number,
  len: number,
): void {
  const buf = sink.tx;
  const hl = family === 4 ? 20 : 40;
  const thl = writeTcpHeader(buf, hl, lport, rport, seq, ack, flags, window, opts ?? NO_OPTIONS);
  if (len > 0 && data) data.peek(at, buf, hl + thl, len);
  const l4 = thl + len;
  if (family === 4) {
    writeIPv4(buf, local, localOff, remote, remoteOff, PROTO_TCP, l4, sink.nextIpId(), DEFAULT_TTL);
    finishTcpChecksum(buf, 20, l4, 12, 16, 4);
  } else {
    writeIPv6(buf, local, localOff, remote, remoteOff, PROTO_TCP, l4, DEFAULT_TTL);
    finishTcpChecksum(buf, 40, l4, 8, 24, 16);
  }
  sink.transmit(hl + l4);
}

/** The receive window to advertise now, unscaled bytes; moves the advertised edge. */
function advertiseWindow(c: OutputState, syn: boolean): number {
  const rb = c.recvBuf;
  const free = rb ? rb.free : c.host.tcpConfig.receiveBuffer;
  let win = free;
  // Receiver SWS avoidance: do not offer a sliver (RFC 9293 §3.8.6.2.2).
  if (win < Math.min(c.rcvMss, (rb?.capacity ?? free) >> 1)) win = 0;
  // Never shrink the window already offered.
  win = Math.max(win, seqDiff(c.rcvAdv, c.rcvNxt));
  const shift = syn ? 0 : c.rcvWscale;
  const field = Math.min(win >>> shift, 0xffff);
  c.rcvAdv = seqMax(c.rcvAdv, seqAdd(c.rcvNxt, field << shift));
  return field;
}

/**
 * Options of a segment carrying `len` data bytes: the timestamp when in use,
 * and SACK blocks for the out-of-order data held (RFC 2018 §4): the most
 * recently changed interval first, then the others by recency, as many as fit
 * in 40 option bytes and beside the data within the MSS.
 */
function fillOptions(c: OutputState, len: number): TcpOptionsOut | null {
  const o = c.opts;
  o.sackCount = 0;
  if (c.sackOk && c.oooCount > 0) {
    const fit = Math.min(
      c.tsOk ? 3 : MAX_SACK_BLOCKS,
      Math.floor((c.mss - len - 4) / 8),
      c.oooCount,
    );
    const ooo = c.ooo;
    const out = c.sackOut;
    let below = Infinity;
    for (let k = 0; k < fit; k++) {
      // The interval with the highest stamp below the last one taken (stamps are distinct).
      let best = -1;
      for (let i = 0; i < c.oooCount; i++) {
        const stamp = ooo[i * OOO_STRIDE + 2];
        if (stamp < below && (best < 0 || stamp > ooo[best * OOO_STRIDE + 2])) best = i;
      }
      out[k * 2] = ooo[best * OOO_STRIDE];
      out[k * 2 + 1] = ooo[best * OOO_STRIDE + 1];
      below = ooo[best * OOO_STRIDE + 2];
    }
    o.sackCount = Math.max(0, fit);
    o.sackBlocks = out;
  }
  if (!c.tsOk && o.sackCount === 0) return null;
  o.mss = -1;
  o.wscale = -1;
  o.sackPermitted = false;
  o.timestamp = c.tsOk;
  o.tsVal = Math.floor(c.host.clock.now()) >>> 0;
  o.tsEcr = c.tsRecent;
  return o;
}

/** Sends one segment of the connection with sequence number `seq`. */
function send(c: OutputState, seq: number, flags: number, at: number, len: number): void {
  const window = advertiseWindow(c, false);
  writeSegment(
    c.host,
    c.family,
    c.local,
    0,
    c.remote,
    0,
    c.localPort,
    c.remotePort,
    seq,
    c.rcvNxt,
    flags | ACK,
    window,
    fillOptions(c, len),
    c.sendBuf,
    at,
    len,
  );
  c.host.stats.tcpSegmentsOut++;
  // Every segment carries the ACK: nothing is owed any more.
  c.lastAckSent = c.rcvNxt;
  c.unacked = 0;
  c.delackAt = Infinity;
}

/** Sends a bare ACK now. */
export function sendAck(c: OutputState): void {
  send(c, c.sndNxt, 0, 0, 0);
}

/** A segment one below sndUna with no data: the peer answers with an ACK (keepalive, zero-window probe). */
export function sendProbe(c: OutputState): void {
  send(c, seqAdd(c.sndUna, -1), 0, 0, 0);
}

/** Sends RST for the connection (abort). */
export function sendReset(c: OutputState): void {
  resetSegment(c, c.sndNxt, RST | ACK);
}

/** Sends a bare RST with sequence number `seq` (reply to an ACK for nothing we sent). */
export function sendResetSeq(c: OutputState, seq: number): void {
  resetSegment(c, seq, RST);
}

function resetSegment(c: OutputState, seq: number, flags: number): void {
  writeSegment(
    c.host,
    c.family,
    c.local,
    0,
    c.remote,
    0,
    c.localPort,
    c.remotePort,
    seq,
    flags & ACK ? c.rcvNxt : 0,
    flags,
    0,
    null,
    null,
    0,
    0,
  );
  c.host.stats.tcpResetsOut++;
}

/** Sends our SYN (SYN_SENT) or SYN-ACK (SYN_RECEIVED) with MSS, window scale and timestamp options. */
export function sendSyn(c: OutputState): void {
  const cfg = c.host.tcpConfig;
  const synAck = c.state === TcpState.SynReceived;
  const o = c.opts;
  o.mss = c.rcvMss;
  // On a SYN-ACK only what the peer offered (RFC 7323 §2.2, §3.2).
  o.wscale = (synAck ? c.wsOk : cfg.windowScaling) ? c.rcvWscale : -1;
  o.sackPermitted = synAck ? c.sackOk : cfg.sack;
  o.sackCount = 0;
  o.timestamp = synAck ? c.tsOk : cfg.timestamps;
  o.tsVal = Math.floor(c.host.clock.now()) >>> 0;
  o.tsEcr = synAck ? c.tsRecent : 0;
  if (c.retries === 0) c.rtTime = c.host.clock.now();
  writeSegment(
    c.host,
    c.family,
    c.local,
    0,
    c.remote,
    0,
    c.localPort,
    c.remotePort,
    c.iss,
    synAck ? c.rcvNxt : 0,
    synAck ? SYN | ACK : SYN,
    advertiseWindow(c, true),
    o,
    null,
    0,
    0,
  );
  c.host.stats.tcpSegmentsOut++;
  c.sndNxt = seqMax(c.sndNxt, seqAdd(c.iss, 1));
  c.sndMax = seqMax(c.sndMax, c.sndNxt);
  if (c.rtoAt === Infinity) c.rtoAt = c.host.clock.now() + c.rto * 2 ** c.retries;
}

/** Retransmits the first unacknowledged segment (fast retransmit, partial ACK). */
export function retransmitFirst(c: OutputState): void {
  const sb = c.sendBuf;
  if (!sb) return;
  const len = Math.min(c.mss, sb.length);
  const fin = c.finQueued && len === sb.length && seqGt(c.sndMax, c.finSeq);
  if (len === 0 && !fin) return;
  send(c, c.sndUna, fin ? FIN : 0, 0, len);
  c.host.stats.tcpRetransmits++;
}

/**
 * Retransmits up to one MSS of the hole [`start`, `end`) (SACK recovery);
 * the hole never holds our FIN, which SACK blocks never cover.
 */
export function retransmitHole(c: OutputState, start: number, end: number): void {
  const sb = c.sendBuf;
  if (!sb) return;
  const at = seqDiff(start, c.sndUna);
  const len = Math.min(c.mss, seqDiff(end, start), sb.length - at);
  if (len <= 0) {
    if (start === c.sndUna) retransmitFirst(c); // only our FIN is outstanding
    return;
  }
  send(c, start, 0, at, len);
  c.host.stats.tcpRetransmits++;
  if (seqGt(seqAdd(start, len), c.rxtNext)) c.rxtNext = seqAdd(start, len);
  if (c.rtoAt === Infinity) c.rtoAt = c.host.clock.now() + c.rto;
}

/** Sends what the windows allow; a bare ACK when nothing goes out but one is owed (`ackNow`). */
export function tcpOutput(c: OutputState, ackNow = false): void {
  const st = c.state;
  if (st === TcpState.SynSent || st === TcpState.SynReceived || st === TcpState.Closed) return;
  if (st === TcpState.TimeWait || st === TcpState.FinWait2) {
    if (ackNow) sendAck(c);
    return;
  }
  const sb = c.sendBuf!;
  const cfg = c.host.tcpConfig;
  const now = c.host.clock.now();
  if (c.sndUna === c.iss) {
    // Our SYN is not acknowledged yet (FIN_WAIT_1 straight from SYN_RECEIVED): nothing to send.
    if (ackNow) sendAck(c);
    return;
  }
  const sent = c.inRecovery && c.scoreboard !== null ? sackRecovery(c, now) : sendWindow(c, now);
  // Data waits behind a zero window with nothing in flight: probe it (persist timer).
  if (
    c.sndWnd === 0 && seqDiff(c.sndMax, c.sndUna) === 0 && c.rtoAt === Infinity &&
    c.persistAt === Infinity && (sb.length > 0 || c.finQueued)
  ) {
    c.persistAt = now + Math.min(cfg.maxRtoMs, c.rto * 2 ** Math.min(c.persistShift, 16));
  }
  if (!sent && ackNow) sendAck(c);
}

/**
 * Sends from SND.NXT what the receive window and the congestion window
 * allow. Bytes SACKed by the peer leave the flight and are never sent again
 * (after an RTO, SND.NXT goes back to SND.UNA and steps over them).
 */
function sendWindow(c: OutputState, now: number): boolean {
  const sbd = c.scoreboard !== null && c.scoreboard.count > 0 ? c.scoreboard : null;
  let sent = false;
  for (;;) {
    let cap = Infinity;
    if (sbd && seqLt(c.sndNxt, c.sndMax)) {
      c.sndNxt = sbd.skip(c.sndNxt);
      const next = sbd.nextStart(c.sndNxt, c.sndMax);
      if (next !== c.sndMax) cap = seqDiff(next, c.sndNxt);
    }
    const at = seqDiff(c.sndNxt, c.sndUna);
    const inFlight = sbd ? at - sbd.sackedBelow(c.sndNxt) : at;
    const usable = Math.min(c.sndWnd - at, c.cwnd - inFlight);
    if (!sendOne(c, now, usable, cap)) break;
    sent = true;
    if (c.finQueued && seqGt(c.sndNxt, c.finSeq)) break;
  }
  return sent;
}

/**
 * Loss recovery with SACK (RFC 6675 §5): while the pipe leaves a segment of
 * the congestion window, send NextSeg: a hole deemed lost, else new data,
 * else a hole not yet deemed lost.
 */
function sackRecovery(c: OutputState, now: number): boolean {
  const sbd = c.scoreboard!;
  let sent = false;
  for (;;) {
    if (seqLt(c.rxtNext, c.sndUna)) c.rxtNext = c.sndUna;
    const pipe = sbd.pipe(c.sndUna, c.sndMax, c.rxtNext, c.mss);
    const room = c.cwnd - pipe;
    if (room < c.mss) break;
    const rule = sbd.nextHole(c.sndUna, c.rxtNext, c.mss);
    if (rule === 1) {
      retransmitHole(c, sbd.holeStart, sbd.holeEnd);
    } else {
      const at = seqDiff(c.sndNxt, c.sndUna);
      if (!sendOne(c, now, Math.min(c.sndWnd - at, room), Infinity)) {
        if (rule !== 3) break;
        retransmitHole(c, sbd.holeStart, sbd.holeEnd);
      }
    }
    sent = true;
  }
  return sent;
}

/**
 * Sends one segment at SND.NXT of at most `usable` bytes (and `cap`, the
 * room before a SACKed range), with sender SWS avoidance and Nagle for new
 * data; returns false when nothing may go.
 */
function sendOne(c: OutputState, now: number, usable: number, cap: number): boolean {
  const sb = c.sendBuf!;
  const at = seqDiff(c.sndNxt, c.sndUna);
  const avail = sb.length - at;
  let len = Math.min(avail, usable, c.mss, cap);
  if (len < 0) len = 0;
  const finSeq = c.finSeq;
  const fin = c.finQueued && at + len === sb.length && seqLe(c.sndNxt, finSeq) &&
    // The FIN needs no window space, but the data before it must all be going out.
    seqGe(seqAdd(c.sndNxt, len), finSeq);
  if (len === 0 && !fin) return false;
  if (len === cap) {
    // A whole hole before SACKed data: sent whatever its size.
  } else if (len < c.mss && len < avail) {
    // Window-limited sliver: wait for more window unless it is half the largest offered.
    if (len < (c.maxSndWnd >> 1) && flightSize(c) > 0) return false;
  } else if (
    len < c.mss && !c.host.tcpConfig.noDelay && !fin && flightSize(c) > 0 &&
    c.sndNxt === c.sndMax
  ) {
    return false; // Nagle: one small segment outstanding at a time
  }
  const retransmit = seqGt(c.sndMax, c.sndNxt);
  send(c, c.sndNxt, (fin ? FIN : 0) | (len > 0 && len === avail ? PSH : 0), at, len);
  if (retransmit) c.host.stats.tcpRetransmits++;
  else if (!c.rtActive && len > 0) {
    c.rtActive = true;
    c.rtSeq = seqAdd(c.sndNxt, len);
    c.rtTime = now;
  }
  c.sndNxt = seqAdd(c.sndNxt, len + (fin ? 1 : 0));
  c.sndMax = seqMax(c.sndMax, c.sndNxt);
  if (c.rtoAt === Infinity) c.rtoAt = now + c.rto;
  c.persistAt = Infinity;
  return true;
}
