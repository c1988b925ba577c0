// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Segment arrival for an existing {@link TcpConn}, following RFC 9293
 * §3.10.7.3 (SYN_SENT) and §3.10.7.4 (the other states): sequence-number
 * acceptability, RST and SYN handling with RFC 5961 challenge ACKs (§3, §4)
 * and ACK-range checks (§5), acknowledgment processing, in-order and
 * out-of-order data into the receive ring, FIN and the closing states.
 * RST in TIME_WAIT is ignored (RFC 1337). Urgent data is not supported: the
 * urgent pointer is ignored and the bytes are delivered inline.
 */
import {
  EV_ACCEPT,
  EV_CONNECT,
  EV_READABLE,
  EV_WRITABLE,
  MAX_OOO,
  OOO_STRIDE,
  QUICKACK_SEGMENTS,
  type TcpConn,
} from "./tcp_conn.ts";
import { TcpState } from "./tcp_state.ts";
import { ACK, FIN, RST, SYN, type TcpSegment } from "./tcp_header.ts";
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from "./seq.ts";
import {
  enterSackRecovery,
  initCongestion,
  onDupAck,
  onNewAck,
  rttSample,
  sackRecoveryDue,
} from "./tcp_cc.ts";
import {
  retransmitFirst,
  retransmitHole,
  sendAck,
  sendResetSeq,
  sendSyn,
  tcpOutput,
} from "./tcp_output.ts";
import { SackScoreboard } from "./tcp_sack.ts";

/** Takes the options of the peer's SYN or SYN-ACK: MSS, window scale, timestamps. */
export function acceptSynOptions(c: TcpConn, s: TcpSegment, mtuMss: number): void {
  const cfg = c.host.tcpConfig;
  c.wsOk = cfg.windowScaling && s.wscale >= 0;
  if (c.wsOk) c.sndWscale = s.wscale;
  else c.sndWscale = c.rcvWscale = 0;
  c.tsOk = cfg.timestamps && s.hasTimestamp;
  c.sackOk = cfg.sack && s.sackPermitted;
  if (c.tsOk) c.tsRecent = s.tsVal;
  // No MSS option means 536 (RFC 9293 §3.7.1); timestamps take 12 bytes of every segment.
  const peer = s.mss > 0 ? s.mss : 536;
  c.mss = Math.max(64, Math.min(peer, mtuMss) - (c.tsOk ? 12 : 0));
  c.irs = s.seq;
  c.rcvNxt = seqAdd(s.seq, 1);
  c.rcvAdv = c.lastAckSent = c.rcvNxt;
}

/** Processes segment `s` for connection `c`, then fires its callbacks. */
export function tcpInput(c: TcpConn, s: TcpSegment): void {
  if (c.state === TcpState.SynSent) synSent(c, s);
  else synchronized(c, s);
  if (c.state !== TcpState.Closed) c.arm();
  c.flushEvents();
}

function synSent(c: TcpConn, s: TcpSegment): void {
  const st = c.host.stats;
  const f = s.flags;
  const ackOk = (f & ACK) !== 0 && seqGt(s.ack, c.iss) && seqLe(s.ack, c.sndMax);
  if ((f & ACK) !== 0 && !ackOk) {
    st.tcpBadAcks++;
    if ((f & RST) === 0) replyReset(c, s.ack);
    return;
  }
  if (f & RST) {
    if (ackOk) {
      st.tcpResetsIn++;
      c.fail("refused");
    } else st.tcpDropped++;
    return;
  }
  if ((f & SYN) === 0) {
    st.tcpDropped++;
    return;
  }
  acceptSynOptions(c, s, c.rcvMss);
  c.allocateBuffers();
  c.sndWnd = s.window; // never scaled in a SYN (RFC 7323 §2.2)
  c.maxSndWnd = c.sndWnd;
  c.sndWl1 = s.seq;
  c.sndWl2 = s.ack;
  initCongestion(c);
  c.recover = c.iss;
  if (ackOk) {
    // Our SYN is acknowledged: established (RTT from the SYN unless it was retransmitted).
    if (c.retries === 0) rttSample(c, c.host.clock.now() - c.rtTime);
    c.sndUna = s.ack;
    c.retries = 0;
    c.rtoAt = Infinity;
    c.state = c.finQueued ? TcpState.FinWait1 : TcpState.Established;
    c.events |= EV_CONNECT | EV_WRITABLE;
    c.heardFromPeer();
    tcpOutput(c, true);
    return;
  }
  // Simultaneous open (RFC 9293 §3.5 figure 8): answer with SYN-ACK.
  c.state = TcpState.SynReceived;
  c.rtoAt = Infinity;
  sendSyn(c);
}

/** Answers an unacceptable ACK with <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.3, §3.10.7.4). */
function replyReset(c: TcpConn, seq: number): void {
  sendResetSeq(c, seq);
}

function challengeAck(c: TcpConn): void {
  const st = c.host.stats;
  if (c.host.challengeAckAllowed()) {
    st.tcpChallengeAcks++;
    sendAck(c);
  } else st.tcpChallengeAcksLimited++;
}

function synchronized(c: TcpConn, s: TcpSegment): void {
  const st = c.host.stats;
  const f = s.flags;
  const seq = s.seq;
  const segLen = s.dataLen + ((f & SYN) ? 1 : 0) + ((f & FIN) ? 1 : 0);
  const wnd = Math.max(0, seqDiff(c.rcvAdv, c.rcvNxt));
  // Step 1: acceptability (RFC 9293 §3.10.7.4, the four cases).
  const inWnd = (x: number) => seqGe(x, c.rcvNxt) && seqLt(x, seqAdd(c.rcvNxt, wnd));
  let ok: boolean;
  if (segLen === 0) ok = wnd === 0 ? seq === c.rcvNxt : inWnd(seq);
  else ok = wnd > 0 && (inWnd(seq) || inWnd(seqAdd(seq, segLen - 1)));
  if (!ok) {
    if (f & RST) {
      st.tcpOutOfWindow++;
      return;
    }
    // A zero window still takes valid ACKs (RFC 9293 §3.10.7.4 step 1, last paragraph).
    const ackOnly = wnd === 0 && seq === c.rcvNxt && (f & ACK) !== 0 && (f & SYN) === 0;
    if (!ackOnly) {
      st.tcpOutOfWindow++;
      if (c.state === TcpState.TimeWait && (f & FIN)) {
        c.closeAt = c.host.clock.now() + 2 * c.host.tcpConfig.mslMs;
      }
      sendAck(c);
      c.heardFromPeer();
      return;
    }
  }
  // Step 2: RST (RFC 5961 §3.2: exactly rcvNxt resets, elsewhere in the window challenges).
  if (f & RST) {
    if (c.state === TcpState.TimeWait) return; // RFC 1337
    if (seq !== c.rcvNxt) {
      challengeAck(c);
      return;
    }
    st.tcpResetsIn++;
    if (c.state === TcpState.SynReceived) {
      if (c.passive) c.finish(); // back to LISTEN: the listener forgets it
      else c.fail("refused");
    } else if (c.state === TcpState.Closing || c.state === TcpState.LastAck) c.finish();
    else c.fail("reset");
    return;
  }
  // Step 4: SYN in a synchronized state.
  if (f & SYN) {
    if (c.state === TcpState.SynReceived && c.passive && seq === c.irs) {
      sendSyn(c); // the peer's SYN again: our SYN-ACK was lost
      return;
    }
    challengeAck(c);
    return;
  }
  // Step 5: ACK.
  if ((f & ACK) === 0) {
    st.tcpDropped++;
    return;
  }
  if (c.state === TcpState.SynReceived) {
    if (!(seqGt(s.ack, c.sndUna) && seqLe(s.ack, c.sndMax))) {
      st.tcpBadAcks++;
      replyReset(c, s.ack);
      return;
    }
    c.allocateBuffers();
    c.state = c.finQueued ? TcpState.FinWait1 : TcpState.Established;
    c.sndWnd = s.window << c.sndWscale;
    c.maxSndWnd = c.sndWnd;
    c.sndWl1 = seq;
    c.sndWl2 = s.ack;
    initCongestion(c);
    c.recover = c.iss;
    if (c.retries === 0) rttSample(c, c.host.clock.now() - c.rtTime);
    c.retries = 0;
    c.rtoAt = Infinity;
    c.events |= c.passive ? EV_ACCEPT : EV_CONNECT | EV_WRITABLE;
  }
  if (seqGt(s.ack, c.sndMax)) {
    // Acknowledges something never sent (RFC 5961 §5.2): ACK and drop.
    st.tcpBadAcks++;
    sendAck(c);
    return;
  }
  if (seqLt(s.ack, seqAdd(c.sndUna, -Math.max(c.maxSndWnd, 1)))) {
    st.tcpBadAcks++;
    challengeAck(c);
    return;
  }
  // TS.Recent (RFC 7323 §4.3): the TSval of the segment that begins at or before the
  // last ACK sent, so a delayed ACK echoes the earliest segment it acknowledges and
  // the sender's RTT sample includes the delay.
  if (
    c.tsOk && s.hasTimestamp && seqLe(seq, c.lastAckSent) && seqGe(s.tsVal, c.tsRecent)
  ) c.tsRecent = s.tsVal;
  c.heardFromPeer();
  processAck(c, s);
  if (c.state === TcpState.Closed) return;
  if (!ok) {
    tcpOutput(c);
    return;
  }
  // Steps 6-8: data and FIN.
  let ackNow = false;
  if (s.dataLen > 0) {
    const st2 = c.state;
    if (st2 === TcpState.Established || st2 === TcpState.FinWait1 || st2 === TcpState.FinWait2) {
      if (c.orphaned) {
        // Data for an application that closed: it is lost, tell the peer (as Linux does).
        c.abort();
        return;
      }
      ackNow = receiveData(c, s);
    }
  }
  if (f & FIN) {
    const finAt = seqAdd(s.seq, s.dataLen);
    if (finAt === c.rcvNxt) receiveFin(c);
    else if (seqGt(finAt, c.rcvNxt) && seqLe(finAt, c.rcvAdv)) c.oooFin = finAt;
    ackNow = true;
  }
  if (c.oooFin !== -1 && c.oooFin === c.rcvNxt && !c.finReceived) receiveFin(c);
  tcpOutput(c, ackNow);
}

function processAck(c: TcpConn, s: TcpSegment): void {
  const ack = s.ack;
  const now = c.host.clock.now();
  const window = s.window << c.sndWscale;
  const finSeq = c.finSeq; // before the buffer shrinks
  const advanced = seqGt(ack, c.sndUna);
  if (advanced) {
    const acked = seqDiff(ack, c.sndUna);
    // Bytes of the send buffer acknowledged: not our SYN, not our FIN.
    const dataAcked = Math.min(c.sendBuf?.length ?? 0, seqDiff(ack, c.sndBase));
    if (dataAcked > 0) c.sendBuf!.consume(dataAcked);
    if (c.rtActive && seqGe(ack, c.rtSeq)) {
      c.rtActive = false;
      rttSample(c, now - c.rtTime);
    }
    c.retries = 0;
    const partial = onNewAck(c, ack, acked);
    c.sndUna = ack;
    if (seqLt(c.sndNxt, ack)) c.sndNxt = ack;
    c.rtoAt = c.sndUna === c.sndMax ? Infinity : now + c.rto;
    if (partial) retransmitFirst(c);
    if (c.wantWritable && dataAcked > 0) {
      c.wantWritable = false;
      c.events |= EV_WRITABLE;
    }
  }
  if (c.sackOk) sackAck(c, s, advanced, window, finSeq);
  else if (
    !advanced && ack === c.sndUna && s.dataLen === 0 && (s.flags & (SYN | FIN)) === 0 &&
    seqDiff(c.sndMax, c.sndUna) > 0 && window === c.sndWnd
  ) {
    if (onDupAck(c)) retransmitFirst(c);
  }
  // Window update (RFC 9293 §3.10.7.4, SND.WL1/SND.WL2 rule).
  if (seqLt(c.sndWl1, s.seq) || (c.sndWl1 === s.seq && seqLe(c.sndWl2, ack))) {
    c.sndWnd = window;
    c.sndWl1 = s.seq;
    c.sndWl2 = ack;
    if (window > c.maxSndWnd) c.maxSndWnd = window;
    if (window > 0) {
      c.persistAt = Infinity;
      c.persistShift = 0;
    }
  }
  if (!c.finQueued || c.sndUna !== seqAdd(finSeq, 1)) return;
  // Our FIN is acknowledged.
  switch (c.state) {
    case TcpState.FinWait1:
      c.enteredFinWait2();
      break;
    case TcpState.Closing:
      c.enterTimeWait();
      break;
    case TcpState.LastAck:
      c.finish();
      break;
  }
}

/**
 * The SACK side of an ACK (RFC 6675): updates the scoreboard, counts the
 * duplicate ACK (one that SACKs new data, or a classic one without blocks)
 * and starts recovery, retransmitting the first unacknowledged segment.
 */
function sackAck(c: TcpConn, s: TcpSegment, advanced: boolean, window: number, finSeq: number) {
  const st = c.host.stats;
  let sbd = c.scoreboard;
  if (advanced && sbd) {
    sbd.advance(c.sndUna);
    // A SACKed range starting at SND.UNA: the peer threw that data away (reneging,
    // RFC 2018 §8). Forget the scoreboard and send it again.
    if (sbd.count > 0 && sbd.r[0] === c.sndUna) {
      sbd.clear();
      st.tcpSackReneged++;
      if (seqLt(c.sndNxt, c.sndMax)) c.sndNxt = c.sndUna;
    }
  }
  let newly = 0;
  if (s.sackCount > 0 && c.state !== TcpState.SynReceived) {
    sbd ??= c.scoreboard = new SackScoreboard();
    // Blocks may reach our FIN's sequence number; only data is tracked.
    const dataEnd = c.finQueued && seqGt(c.sndMax, finSeq) ? finSeq : c.sndMax;
    const u = sbd.update(s.sack, s.sackCount, c.sndUna, c.sndMax, dataEnd);
    st.tcpSackInvalid += u.invalid;
    st.tcpSackDropped += u.dropped;
    newly = u.newly;
  }
  if (
    !advanced && s.ack === c.sndUna && s.dataLen === 0 && (s.flags & (SYN | FIN)) === 0 &&
    seqDiff(c.sndMax, c.sndUna) > 0 &&
    (newly > 0 || (s.sackCount === 0 && window === c.sndWnd))
  ) c.dupAcks++;
  else if (advanced) c.dupAcks = 0;
  if (sackRecoveryDue(c, sbd !== null && sbd.firstLost(c.mss))) {
    enterSackRecovery(c);
    sbd ??= c.scoreboard = new SackScoreboard();
    c.sndNxt = c.sndMax;
    retransmitHole(c, c.sndUna, sbd.nextStart(c.sndUna, c.sndMax));
  }
}

/** Puts the data of `s` into the receive ring; returns true when it must be acknowledged at once. */
function receiveData(c: TcpConn, s: TcpSegment): boolean {
  const rb = c.recvBuf!;
  let seq = s.seq;
  let off = s.dataOff;
  let len = s.dataLen;
  const front = seqDiff(c.rcvNxt, seq);
  if (front > 0) {
    if (front >= len) return true; // all old: a duplicate
    off += front;
    len -= front;
    seq = c.rcvNxt;
  }
  const room = seqDiff(c.rcvAdv, seq);
  if (len > room) len = room; // beyond the window offered: trimmed
  if (len <= 0) return true;
  const at = seqDiff(seq, c.rcvNxt);
  rb.writeAt(rb.length + at, s.buf, off, len);
  if (at > 0) {
    if (!addInterval(c, seq, seqAdd(seq, len))) c.host.stats.tcpOutOfOrderDropped++;
    return true; // a duplicate ACK tells the sender about the gap
  }
  rb.commit(len);
  c.rcvNxt = seqAdd(c.rcvNxt, len);
  c.events |= EV_READABLE;
  const now = c.host.clock.now();
  // Data after an idle period (longer than the RTO): back to quick-ACK mode, as at the start.
  if (now - c.lastDataAt > c.rto) c.quickAcks = QUICKACK_SEGMENTS;
  c.lastDataAt = now;
  let filled = false;
  const o = c.ooo;
  while (c.oooCount > 0 && seqLe(o[0], c.rcvNxt)) {
    const end = o[1];
    if (seqGt(end, c.rcvNxt)) {
      rb.commit(seqDiff(end, c.rcvNxt));
      c.rcvNxt = end;
    }
    o.copyWithin(0, OOO_STRIDE, c.oooCount * OOO_STRIDE);
    c.oooCount--;
    filled = true;
  }
  if (filled) return true;
  if (c.quickAcks > 0) {
    c.quickAcks--;
    return true;
  }
  // Delayed ACK: at least every second full-sized segment (RFC 5681 §4.2).
  const delay = c.host.tcpConfig.delayedAckMs;
  if (delay <= 0) return true;
  if (len >= c.rcvMss || s.dataLen >= c.mss) c.unacked++;
  if (c.unacked >= 2) return true;
  if (c.delackAt === Infinity) c.delackAt = now + delay;
  if (len < c.rcvMss) c.unacked = Math.max(c.unacked, 1);
  return false;
}

/**
 * Adds [start, end) to the sorted out-of-order intervals, merging, and stamps
 * the interval it lands in as the most recent; false when no slot is left.
 */
function addInterval(c: TcpConn, start: number, end: number): boolean {
  const o = c.ooo;
  const W = OOO_STRIDE;
  let n = c.oooCount;
  let i = 0;
  while (i < n && seqLt(o[i * W + 1], start)) i++;
  // Merge every interval that touches [start, end).
  let j = i;
  while (j < n && seqLe(o[j * W], end)) {
    if (seqLt(o[j * W], start)) start = o[j * W];
    if (seqGt(o[j * W + 1], end)) end = o[j * W + 1];
    j++;
  }
  const merged = j - i;
  if (merged === 0 && n >= MAX_OOO) return false;
  o.copyWithin((i + 1) * W, j * W, n * W);
  o[i * W] = start;
  o[i * W + 1] = end;
  o[i * W + 2] = c.oooStamp = (c.oooStamp + 1) >>> 0;
  n += 1 - merged;
  c.oooCount = n;
  return true;
}

function receiveFin(c: TcpConn): void {
  c.finReceived = true;
  c.oooFin = -1;
  c.rcvNxt = seqAdd(c.rcvNxt, 1);
  c.events |= EV_READABLE;
  switch (c.state) {
    case TcpState.SynReceived:
    case TcpState.Established:
      c.state = TcpState.CloseWait;
      c.keepaliveAt = Infinity;
      break;
    case TcpState.FinWait1:
      // Our FIN not yet acknowledged: simultaneous close.
      c.state = TcpState.Closing;
      break;
    case TcpState.FinWait2:
      c.enterTimeWait();
      break;
  }
}
