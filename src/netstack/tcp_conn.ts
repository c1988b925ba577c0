// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link TcpConn}: one TCP connection (RFC 9293 transmission control block)
 * and its application interface. Segment processing is in tcp_input.ts,
 * sending in tcp_output.ts, RTT and congestion control in tcp_cc.ts; they
 * work on the fields below, which are public for them and read-only for
 * applications.
 *
 * The application side is explicit and allocation-light:
 * - {@link TcpConn.write} copies what fits into the send buffer and returns
 *   the count; {@link TcpConn.onWritable} fires when room appears again.
 * - {@link TcpConn.read} copies into the caller's buffer and returns the
 *   count, 0 when nothing is buffered, and -1 after the peer's FIN once all
 *   data has been read; {@link TcpConn.onReadable} fires when that changes.
 * - {@link TcpConn.shutdown} sends FIN after the buffered data (half-close);
 *   {@link TcpConn.close} also stops reading; {@link TcpConn.abort} resets.
 * Callbacks run after the stack has finished with the segment or timer that
 * caused them, never inside a call the application made.
 *
 * Timers (retransmission, delayed ACK, persist, keepalive, TIME_WAIT and the
 * orphan FIN_WAIT_2 limit) are deadlines on the connection behind a single
 * clock callback, rescheduled only when a deadline moves earlier.
 */
import { MAX_SACK_BLOCKS, noTcpOptions, type TcpOptionsOut } from "./tcp_header.ts";
import type { SackScoreboard } from "./tcp_sack.ts";
import type { BufferPool } from "./buffer_pool.ts";
import { Ring } from "./ring.ts";
import { seqAdd, seqDiff } from "./seq.ts";
import { TcpState } from "./tcp_state.ts";
import { onRetransmitTimeout } from "./tcp_cc.ts";
import {
  type OutputHost,
  type OutputState,
  sendAck,
  sendProbe,
  sendReset,
  sendSyn,
  tcpOutput,
} from "./tcp_output.ts";

/** Re-exported for users of {@link TcpConn.state}. */
export { TcpState };

/** Why a connection ended abnormally. */
export type TcpError = "refused" | "reset" | "timeout" | "unreachable" | "aborted";

/** What a connection needs from its stack (sending needs the {@link OutputHost} part). */
export interface TcpHost extends OutputHost {
  /** Takes a challenge-ACK token (RFC 5961 §7). */
  challengeAckAllowed(): boolean;
  /** The connection is gone: forget it. */
  release(conn: TcpConn): void;
  /** A passive connection is established: queue it on its listener. */
  established(conn: TcpConn): void;
  /** Storage for the connections' send and receive rings. */
  readonly buffers: BufferPool;
}

/** Pending application notifications, fired by {@link TcpConn.flushEvents}. */
export const EV_READABLE = 1;
export const EV_WRITABLE = 2;
export const EV_CONNECT = 4;
export const EV_CLOSE = 8;
export const EV_ACCEPT = 16;

/** Out-of-order intervals kept per connection; data that needs more is dropped. */
export const MAX_OOO = 16;

/** Words per out-of-order interval in {@link TcpConn.ooo}: start, end, last-update stamp. */
export const OOO_STRIDE = 3;

/**
 * Data segments acknowledged one by one (no delayed ACK) when a connection
 * starts receiving and after it was idle (Linux's quick-ACK mode): the
 * sender's slow start, or BBR's startup, grows per ACK and takes its first
 * delivery-rate and RTT samples from them.
 */
export const QUICKACK_SEGMENTS = 16;

/**
 * One TCP connection; see the module doc. It is the {@link OutputState} of
 * tcp_output.ts and the `CongestionState` of tcp_cc.ts, which declare the
 * fields they use so that they need not import this module.
 */
export class TcpConn implements OutputState {
  readonly host: TcpHost;
  readonly family: 4 | 6;
  /** Our and their address (4 or 16 bytes) and ports. */
  readonly local: Uint8Array;
  readonly remote: Uint8Array;
  readonly localPort: number;
  readonly remotePort: number;
  /** Opened by a listener (true) or by connect (false). */
  readonly passive: boolean;
  /** The listener's port (passive connections only), for backlog accounting. */
  listenerPort = 0;
  state: TcpState = TcpState.Closed;
  /** Set when the connection failed; null after a normal close. */
  error: TcpError | null = null;
  /** Last ICMP error reported for it (RFC 1122 §4.2.3.9 soft errors). */
  softError: TcpError | null = null;

  // ---- send sequence space (RFC 9293 §3.3.1) ----
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  /** Highest sequence number sent + 1 (sndNxt goes back to sndUna after an RTO). */
  sndMax = 0;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  /** Largest window the peer offered (sender SWS avoidance, RFC 9293 §3.8.6.2.1). */
  maxSndWnd = 0;
  /** Effective send MSS: the peer's MSS, our MTU, minus timestamp option bytes. */
  mss = 536;
  /** Largest segment we announced (for the delayed-ACK rule). */
  rcvMss = 536;
  /** Window scaling in use (both sides offered it), and the shifts each way. */
  wsOk = false;
  sndWscale = 0;
  rcvWscale = 0;
  /** The application asked for FIN (shutdown/close). */
  finQueued = false;

  // ---- receive sequence space ----
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window last advertised; never moves left. */
  rcvAdv = 0;
  /** FIN received (EOF after the buffered data). */
  finReceived = false;
  /** Sequence number of a FIN that arrived ahead of missing data, or -1. */
  oooFin = -1;
  /**
   * Out-of-order intervals [start, end) in sequence space, sorted,
   * `oooCount` of them, each with the value of `oooStamp` when data last
   * arrived in it (SACK blocks go out most recent first, RFC 2018 §4).
   */
  readonly ooo: Uint32Array = new Uint32Array(MAX_OOO * OOO_STRIDE);
  oooCount = 0;
  oooStamp = 0;
  /** Full-size segments received since our last ACK. */
  unacked = 0;
  /** RCV.NXT carried by the last segment we sent (Last.ACK.sent of RFC 7323 §4.3). */
  lastAckSent = 0;
  /** Data segments still to be acknowledged at once (quick-ACK mode, {@link QUICKACK_SEGMENTS}). */
  quickAcks = QUICKACK_SEGMENTS;
  /** When in-order data last arrived (idle detection for quick-ACK mode). */
  lastDataAt = 0;

  // ---- selective acknowledgment (RFC 2018, RFC 6675) ----
  /** Both sides offered SACK-permitted. */
  sackOk = false;
  /** What the peer SACKed of our data; made at the first SACK block. */
  scoreboard: SackScoreboard | null = null;
  /** The byte after the highest one retransmitted in SACK recovery (HighRxt + 1 of RFC 6675). */
  rxtNext = 0;
  /** SACK blocks of our next segment, most recent first. */
  readonly sackOut: Uint32Array = new Uint32Array(MAX_SACK_BLOCKS * 2);

  // ---- timestamps (RFC 7323 §4) ----
  tsOk = false;
  tsRecent = 0;
  /** Reused option block for outgoing segments. */
  readonly opts: TcpOptionsOut = noTcpOptions();

  // ---- RTT estimation (RFC 6298) and congestion control (RFC 5681/6582) ----
  srtt = 0;
  rttvar = 0;
  rto: number;
  /** A segment is being timed: the first sequence number after it, sent at rtTime. */
  rtActive = false;
  rtSeq = 0;
  rtTime = 0;
  /** Consecutive retransmission timeouts (or persist/keepalive probes unanswered). */
  retries = 0;
  /** Zero-window probes sent since the window closed: their interval doubles each time. */
  persistShift = 0;
  cwnd = 0;
  ssthresh = 0x7fffffff;
  bytesAcked = 0;
  dupAcks = 0;
  inRecovery = false;
  recover = 0;

  // ---- timers: absolute deadlines, Infinity when off ----
  rtoAt = Infinity;
  delackAt = Infinity;
  persistAt = Infinity;
  keepaliveAt = Infinity;
  /** TIME_WAIT end or orphan FIN_WAIT_2 limit. */
  closeAt = Infinity;
  #timer = 0;
  #timerAt = Infinity;
  readonly #onTimer = () => this.#timerFired();

  // ---- buffers and application state ----
  sendBuf: Ring | null = null;
  recvBuf: Ring | null = null;
  /** The application closed its side: no more reads; data that arrives resets. */
  orphaned = false;
  /** A write came up short; fire onWritable when room appears. */
  wantWritable = false;
  events = 0;
  /** Chain for the stack's connection table. */
  nextInBucket: TcpConn | null = null;
  hash = 0;

  /** Data (or EOF) is ready for {@link read}. */
  onReadable: (() => void) | null = null;
  /** Room appeared in the send buffer after a short {@link write}. */
  onWritable: (() => void) | null = null;
  /** The three-way handshake completed (active open). */
  onConnect: (() => void) | null = null;
  /** The connection ended: `error` is null after a normal close. */
  onClose: ((error: TcpError | null) => void) | null = null;

  constructor(
    host: TcpHost,
    family: 4 | 6,
    local: Uint8Array,
    localPort: number,
    remote: Uint8Array,
    remotePort: number,
    passive: boolean,
  ) {
    this.host = host;
    this.family = family;
    this.local = local;
    this.remote = remote;
    this.localPort = localPort;
    this.remotePort = remotePort;
    this.passive = passive;
    this.rto = host.tcpConfig.initialRtoMs;
  }

  /**
   * Sets up the send and receive rings (once the connection can carry data).
   * They take storage only while they hold bytes (see {@link Ring}).
   */
  allocateBuffers(): void {
    const cfg = this.host.tcpConfig;
    this.sendBuf ??= new Ring(cfg.sendBuffer, this.host.buffers);
    this.recvBuf ??= new Ring(cfg.receiveBuffer, this.host.buffers);
  }

  /** Gives the send ring's storage back; no more sending. */
  #dropSendBuf(): void {
    this.sendBuf?.release();
    this.sendBuf = null;
  }

  // ---- application interface ----

  /** Bytes that {@link write} would accept now. */
  get writable(): number {
    if (this.finQueued || !this.sendBuf || this.state === TcpState.Closed) return 0;
    return this.sendBuf.free;
  }

  /** Bytes buffered for {@link read}. */
  get readable(): number {
    return this.recvBuf?.length ?? 0;
  }

  /** Queues up to `data.length` bytes for sending; returns how many were taken. */
  write(data: Uint8Array, off = 0, len = data.length - off): number {
    const s = this.state;
    if (
      this.finQueued || !this.sendBuf ||
      (s !== TcpState.SynSent && s !== TcpState.SynReceived && s !== TcpState.Established &&
        s !== TcpState.CloseWait)
    ) return 0;
    const n = this.sendBuf.append(data, off, len);
    if (n < len) this.wantWritable = true;
    if (n > 0) tcpOutput(this);
    this.arm();
    return n;
  }

  /** Moves received bytes into `into`; 0 when none are buffered, -1 at end of stream. */
  read(into: Uint8Array, off = 0, len = into.length - off): number {
    const rb = this.recvBuf;
    if (!rb || this.orphaned) return this.finReceived || this.state === TcpState.Closed ? -1 : 0;
    if (rb.length === 0) return this.finReceived || this.state === TcpState.Closed ? -1 : 0;
    const n = rb.read(into, off, len);
    if (n > 0 && this.#synchronized() && windowUpdateDue(this, rb)) {
      sendAck(this);
      this.arm();
    }
    return n;
  }

  /** Sends FIN once the buffered data is out (half-close); reading goes on. */
  shutdown(): void {
    if (this.finQueued) return;
    switch (this.state) {
      case TcpState.SynSent:
        this.#finish(null);
        return;
      case TcpState.SynReceived:
        this.finQueued = true; // FIN_WAIT_1 once the handshake completes
        return;
      case TcpState.Established:
        this.finQueued = true;
        this.state = TcpState.FinWait1;
        break;
      case TcpState.CloseWait:
        this.finQueued = true;
        this.state = TcpState.LastAck;
        break;
      default:
        return;
    }
    tcpOutput(this);
    this.arm();
  }

  /**
   * Closes both directions: FIN after the buffered data, and no more
   * reading. Unread received data makes it a reset instead (as Linux does),
   * so the peer learns that data was lost.
   */
  close(): void {
    if (this.orphaned) return;
    this.orphaned = true;
    this.onReadable = null;
    const unread = (this.recvBuf?.length ?? 0) > 0;
    this.recvBuf?.release();
    if (unread) {
      this.abort();
      return;
    }
    this.shutdown();
    if (this.state === TcpState.FinWait2) this.#armFinWait2();
  }

  /** Resets the connection (RST to the peer when it is synchronized) and forgets it. */
  abort(): void {
    if (this.state === TcpState.Closed) return;
    if (this.state !== TcpState.SynSent && this.state !== TcpState.TimeWait) sendReset(this);
    this.#finish("aborted");
  }

  // ---- state changes used by input/output ----

  #synchronized(): boolean {
    return this.state >= TcpState.Established;
  }

  /** Ends the connection: fires onClose (once) and releases it from the stack. */
  #finish(error: TcpError | null): void {
    if (this.state === TcpState.Closed) return;
    this.state = TcpState.Closed;
    this.error ??= error;
    this.#dropSendBuf();
    this.rtoAt =
      this.delackAt =
      this.persistAt =
      this.keepaliveAt =
      this.closeAt =
        Infinity;
    if (this.#timer !== 0) this.host.clock.cancel(this.#timer);
    this.#timer = 0;
    this.events |= EV_CLOSE | EV_READABLE;
    this.host.release(this);
  }

  /** Fails the connection with `error` (reset, refused, timeout). */
  fail(error: TcpError): void {
    this.error = error;
    this.#finish(error);
  }

  /** A normal end (LAST_ACK acknowledged, TIME_WAIT over). */
  finish(): void {
    this.#finish(null);
  }

  /** Enters TIME_WAIT for 2×MSL; buffers are dropped. */
  enterTimeWait(): void {
    this.state = TcpState.TimeWait;
    this.#dropSendBuf();
    this.rtoAt =
      this.persistAt =
      this.keepaliveAt =
      this.delackAt =
        Infinity;
    this.closeAt = this.host.clock.now() + 2 * this.host.tcpConfig.mslMs;
    this.events |= EV_CLOSE;
  }

  /** FIN_WAIT_2 reached: an orphan may wait there only so long (Linux tcp_fin_timeout). */
  enteredFinWait2(): void {
    this.state = TcpState.FinWait2;
    this.rtoAt = Infinity;
    if (this.orphaned) this.#armFinWait2();
  }

  #armFinWait2(): void {
    this.closeAt = this.host.clock.now() + this.host.tcpConfig.finWait2TimeoutMs;
  }

  /** Restarts the keepalive idle period after a segment arrived (when keepalive is on). */
  heardFromPeer(): void {
    const idle = this.host.tcpConfig.keepaliveIdleMs;
    if (idle > 0 && this.state === TcpState.Established) {
      this.keepaliveAt = this.host.clock.now() + idle;
    }
    // Persist and keepalive probes run only with nothing in flight: any answer resets their count.
    if (this.rtoAt === Infinity) this.retries = 0;
  }

  /** Fires pending callbacks. */
  flushEvents(): void {
    const ev = this.events;
    if (ev === 0) return;
    this.events = 0;
    if (ev & EV_CONNECT) this.onConnect?.();
    if (ev & EV_ACCEPT) this.host.established(this);
    if (ev & EV_WRITABLE) this.onWritable?.();
    if (ev & EV_READABLE) this.onReadable?.();
    if (ev & EV_CLOSE) this.onClose?.(this.error);
  }

  // ---- timers ----

  /** Schedules the clock callback for the earliest deadline if it moved earlier. */
  arm(): void {
    const at = Math.min(this.rtoAt, this.delackAt, this.persistAt, this.keepaliveAt, this.closeAt);
    if (at === Infinity || at >= this.#timerAt) return;
    const clock = this.host.clock;
    if (this.#timer !== 0) clock.cancel(this.#timer);
    this.#timerAt = at;
    this.#timer = clock.after(Math.max(0, at - clock.now()), this.#onTimer);
  }

  #timerFired(): void {
    this.#timer = 0;
    this.#timerAt = Infinity;
    const now = this.host.clock.now();
    const cfg = this.host.tcpConfig;
    if (this.closeAt <= now) {
      this.closeAt = Infinity;
      if (this.state === TcpState.TimeWait) this.finish();
      else if (this.state === TcpState.FinWait2) this.fail("timeout");
    }
    if (this.state !== TcpState.Closed && this.rtoAt <= now) {
      this.rtoAt = Infinity;
      this.#retransmitTimeout();
    }
    if (this.state !== TcpState.Closed && this.persistAt <= now) {
      this.persistAt = Infinity;
      if (++this.retries > cfg.maxRetries) {
        this.host.stats.tcpTimeouts++;
        this.fail("timeout");
      } else {
        // Zero-window probe: a segment below the window, which the peer must answer
        // with an ACK carrying its current window (RFC 9293 §3.8.6.1).
        sendProbe(this);
        this.persistShift++;
        this.persistAt = now +
          Math.min(cfg.maxRtoMs, this.rto * 2 ** Math.min(this.persistShift, 16));
      }
    }
    if (this.state !== TcpState.Closed && this.keepaliveAt <= now) {
      if (this.retries >= cfg.keepaliveProbes) {
        this.host.stats.tcpTimeouts++;
        this.fail("timeout");
      } else {
        this.retries++;
        sendProbe(this);
        this.keepaliveAt = now + cfg.keepaliveIntervalMs;
      }
    }
    if (this.state !== TcpState.Closed && this.delackAt <= now) {
      this.delackAt = Infinity;
      if (this.unacked > 0 || this.state >= TcpState.Established) sendAck(this);
    }
    if (this.state !== TcpState.Closed) this.arm();
    this.flushEvents();
  }

  /** The current RTO doubled per unanswered retransmission, within the configured bounds. */
  #backedOffRto(): number {
    const cfg = this.host.tcpConfig;
    return Math.min(cfg.maxRtoMs, this.rto * 2 ** Math.min(this.retries, 16));
  }

  #retransmitTimeout(): void {
    const cfg = this.host.tcpConfig;
    const st = this.state;
    const limit = st === TcpState.SynSent
      ? cfg.synRetries
      : st === TcpState.SynReceived
      ? cfg.synAckRetries
      : cfg.maxRetries;
    if (this.retries >= limit) {
      this.host.stats.tcpTimeouts++;
      this.fail("timeout");
      return;
    }
    this.retries++;
    this.host.stats.tcpRetransmits++;
    const now = this.host.clock.now();
    // Back off (RFC 6298 §5.5) and forget the timed segment (Karn's rule).
    this.rtActive = false;
    this.rtoAt = now + this.#backedOffRto();
    if (st === TcpState.SynSent || st === TcpState.SynReceived) {
      sendSyn(this);
      return;
    }
    this.host.stats.tcpRtoExpired++;
    onRetransmitTimeout(this);
    // Resend from SND.UNA; tcpOutput skips what the scoreboard says the peer holds.
    this.sndNxt = this.sndUna;
    tcpOutput(this);
  }

  /** Sequence number of the first byte in the send buffer (after our SYN). */
  get sndBase(): number {
    return this.sndUna === this.iss ? seqAdd(this.iss, 1) : this.sndUna;
  }

  /** Sequence number of our FIN (valid once {@link finQueued}). */
  get finSeq(): number {
    return seqAdd(this.sndBase, this.sendBuf?.length ?? 0);
  }
}

/**
 * Whether a read made a window update worth a segment of its own (as Linux
 * decides it): the window the peer knows (RCV.ADV − RCV.NXT) is down to half
 * the buffer or less, and the one we would offer now is at least twice as
 * large and larger by two segments or half the buffer (receiver SWS
 * avoidance, RFC 9293 §3.8.6.2.2). While the peer's window is still more
 * than half open, the ACKs its data draws carry the new edge: a bare update
 * per read would cost a packet each and tell the sender nothing it needs.
 */
function windowUpdateDue(c: TcpConn, rb: Ring): boolean {
  const known = Math.max(0, seqDiff(c.rcvAdv, c.rcvNxt));
  if (2 * known > rb.capacity) return false;
  const offer = rb.free;
  return offer >= 2 * known && offer - known >= Math.min(2 * c.rcvMss, rb.capacity >> 1);
}
