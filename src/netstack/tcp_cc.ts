// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Retransmission timing and congestion control of a TCP connection (the
 * {@link CongestionState} fields of a TcpConn):
 * - RTT estimation and the RTO per RFC 6298 §2 (SRTT, RTTVAR, K = 4, clock
 *   granularity 1 ms, a minimum and maximum from the config); samples come
 *   from one timed segment at a time and never from retransmitted data
 *   (Karn's rule, §3), and a new sample clears the back-off (§5.7);
 * - slow start and congestion avoidance per RFC 5681 §3.1, with an initial
 *   window of 10 segments (RFC 6928) and appropriate byte counting (L = 2
 *   SMSS in slow start, one SMSS per cwnd acknowledged in congestion
 *   avoidance, RFC 3465);
 * - with SACK, loss recovery per RFC 6675 §5 (entry and exit here, the
 *   pipe-driven sending in tcp_output.ts); without it, fast retransmit and
 *   NewReno fast recovery per RFC 6582 §3.2.
 */
import type { NetStackStats } from "./stats.ts";
import type { TcpConfig } from "./tcp_config.ts";
import { seqAdd, seqDiff, seqGt } from "./seq.ts";

/** What congestion control needs from the connection's stack. */
export interface CongestionHost {
  readonly tcpConfig: TcpConfig;
  readonly stats: NetStackStats;
}

/** The connection fields this module reads and updates (RFC 6298, RFC 5681, RFC 6582). */
export interface CongestionState {
  readonly host: CongestionHost;
  /** Effective send MSS. */
  readonly mss: number;
  readonly sndUna: number;
  /** Highest sequence number sent + 1. */
  readonly sndMax: number;
  /** Consecutive retransmission timeouts. */
  readonly retries: number;
  srtt: number;
  rttvar: number;
  rto: number;
  /** A segment is being timed (Karn's rule). */
  rtActive: boolean;
  cwnd: number;
  ssthresh: number;
  /** Bytes acknowledged in congestion avoidance since cwnd last grew (RFC 3465 §2.1). */
  bytesAcked: number;
  dupAcks: number;
  inRecovery: boolean;
  recover: number;
  /** SACK in use: RFC 6675 recovery instead of NewReno. */
  readonly sackOk: boolean;
  /** HighRxt + 1 of RFC 6675. */
  rxtNext: number;
}

/** Clock granularity G of RFC 6298, ms. */
const GRANULARITY_MS = 1;

/** Initial congestion window: 10 segments (RFC 6928). */
export function initCongestion(c: CongestionState): void {
  c.cwnd = 10 * c.mss;
  c.ssthresh = 0x7fffffff;
}

/** Feeds one RTT measurement `r` (ms) into SRTT/RTTVAR and recomputes the RTO. */
export function rttSample(c: CongestionState, r: number): void {
  const cfg = c.host.tcpConfig;
  if (c.srtt === 0) {
    c.srtt = r;
    c.rttvar = r / 2;
  } else {
    c.rttvar = 0.75 * c.rttvar + 0.25 * Math.abs(c.srtt - r);
    c.srtt = 0.875 * c.srtt + 0.125 * r;
  }
  const rto = c.srtt + Math.max(GRANULARITY_MS, 4 * c.rttvar);
  c.rto = Math.min(cfg.maxRtoMs, Math.max(cfg.minRtoMs, rto));
}

/** Bytes sent and not yet acknowledged. */
export function flightSize(c: CongestionState): number {
  return seqDiff(c.sndMax, c.sndUna);
}

/** ssthresh after a loss: half the flight, at least two segments (RFC 5681 eq. 4). */
function lossThreshold(c: CongestionState): number {
  return Math.max(flightSize(c) >> 1, 2 * c.mss);
}

/**
 * An ACK acknowledged `acked` new bytes (before sndUna moved). Returns true
 * when it was a partial ACK in recovery, whose first unacknowledged segment
 * must be retransmitted at once (RFC 6582 §3.2 step 5).
 */
export function onNewAck(c: CongestionState, ack: number, acked: number): boolean {
  c.dupAcks = 0;
  if (c.inRecovery) {
    if (seqGt(ack, c.recover)) {
      // Full acknowledgment: deflate the window (RFC 6582 §3.2 step 4, option 1).
      c.inRecovery = false;
      c.cwnd = Math.min(c.ssthresh, Math.max(seqDiff(c.sndMax, ack), c.mss) + c.mss);
      return false;
    }
    // With SACK the pipe, not the window, paces recovery (RFC 6675 §5): nothing changes.
    if (c.sackOk) return false;
    // Partial acknowledgment: deflate by the amount acknowledged, add back one segment.
    c.cwnd = Math.max(c.mss, c.cwnd - acked + (acked >= c.mss ? c.mss : 0));
    return true;
  }
  if (c.cwnd < c.ssthresh) {
    c.cwnd += Math.min(acked, 2 * c.mss);
    return false;
  }
  // Congestion avoidance by bytes acknowledged, not ACKs (RFC 3465 §2.1, RFC 5681
  // §3.1): one SMSS per cwnd of data, so delayed ACKs do not halve the growth.
  c.bytesAcked += acked;
  if (c.bytesAcked >= c.cwnd) {
    c.bytesAcked -= c.cwnd;
    c.cwnd += c.mss;
  }
  return false;
}

/**
 * A duplicate ACK arrived. Returns true on the third one outside recovery,
 * when the caller must retransmit the first unacknowledged segment (fast
 * retransmit); further duplicates inflate the window (RFC 6582 §3.2 steps 2-3).
 */
export function onDupAck(c: CongestionState): boolean {
  c.dupAcks++;
  if (c.inRecovery) {
    c.cwnd += c.mss;
    return false;
  }
  // Step 2: only when the ACK covers more than `recover` (no recovery from old losses).
  if (c.dupAcks !== 3 || !seqGt(c.sndUna, c.recover)) return false;
  c.ssthresh = lossThreshold(c);
  c.recover = seqAdd(c.sndMax, -1);
  c.inRecovery = true;
  c.cwnd = c.ssthresh + 3 * c.mss;
  c.bytesAcked = 0;
  c.rtActive = false;
  c.host.stats.tcpFastRetransmits++;
  return true;
}

/**
 * Whether SACK loss recovery may start now (RFC 6675 §5): DupThresh
 * duplicate ACKs or the first unacknowledged byte deemed lost, outside
 * recovery, and past the data of an earlier recovery or timeout
 * (RFC 6582 §4, RFC 6675 §5.1).
 */
export function sackRecoveryDue(c: CongestionState, firstLost: boolean): boolean {
  return !c.inRecovery && (c.dupAcks >= 3 || firstLost) && seqGt(c.sndUna, c.recover) &&
    flightSize(c) > 0;
}

/**
 * Starts SACK loss recovery (RFC 6675 §5 steps 4.1-4.2): the recovery point
 * is the highest byte sent and cwnd = ssthresh = half the flight. The caller
 * retransmits the first unacknowledged segment.
 */
export function enterSackRecovery(c: CongestionState): void {
  c.recover = seqAdd(c.sndMax, -1);
  c.ssthresh = lossThreshold(c);
  c.cwnd = c.ssthresh;
  c.bytesAcked = 0;
  c.inRecovery = true;
  c.rtActive = false;
  c.rxtNext = c.sndUna;
  c.host.stats.tcpFastRetransmits++;
  c.host.stats.tcpSackRecoveries++;
}

/** The retransmission timer expired: one segment of window, slow start again (RFC 5681 §3.1 eq. 4-5). */
export function onRetransmitTimeout(c: CongestionState): void {
  if (c.retries <= 1) c.ssthresh = lossThreshold(c);
  c.cwnd = c.mss;
  c.bytesAcked = 0;
  c.inRecovery = false;
  c.dupAcks = 0;
  // RFC 6582 §4: after a timeout, duplicate ACKs for data sent before it start no recovery.
  c.recover = seqAdd(c.sndMax, -1);
}
