// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tunables of the stack's TCP, with defaults close to Linux's.
 */

/** TCP settings; every field has a default in {@link DEFAULT_TCP_CONFIG}. */
export interface TcpConfig {
  /** Send and receive buffer per connection, bytes (the receive buffer bounds the window). */
  sendBuffer: number;
  receiveBuffer: number;
  /** Default listen backlog: connections half-open plus not yet accepted. */
  backlog: number;
  /** Delayed-ACK timeout (RFC 9293 §3.8.6.3 allows up to 500 ms); 0 acknowledges every segment at once. */
  delayedAckMs: number;
  /**
   * RTO bounds and start value (RFC 6298 §2). The floor is Linux's 200 ms, not
   * RFC 6298's 1 s: a tunnel's RTT is that of its path (tens of ms), SACK
   * recovery repairs most losses without the timer, and a spurious timeout
   * costs one window of retransmission, while a 1 s floor idles the
   * connection for a second at every tail loss.
   */
  minRtoMs: number;
  maxRtoMs: number;
  initialRtoMs: number;
  /** Retransmissions of data before the connection is given up. */
  maxRetries: number;
  /** Retransmissions of a SYN, and of a SYN-ACK. */
  synRetries: number;
  synAckRetries: number;
  /** Maximum segment lifetime; TIME_WAIT lasts twice this. */
  mslMs: number;
  /** How long an orphaned (closed by the application) connection may sit in FIN_WAIT_2. */
  finWait2TimeoutMs: number;
  /** Keepalive idle time (0: off, the default), probe interval and probe count. */
  keepaliveIdleMs: number;
  keepaliveIntervalMs: number;
  keepaliveProbes: number;
  /** Send small segments at once instead of waiting for outstanding data to be acknowledged (Nagle off). */
  noDelay: boolean;
  /** Offer window scaling and timestamps (RFC 7323). */
  windowScaling: boolean;
  timestamps: boolean;
  /**
   * Offer selective acknowledgments (RFC 2018): loss recovery per RFC 6675
   * when the peer agrees, NewReno (RFC 6582) when it does not.
   */
  sack: boolean;
  /** Connections in any state, all listeners together. */
  maxConnections: number;
  /** Challenge ACKs per second, for the whole stack (RFC 5961 §7). */
  challengeAcksPerSecond: number;
}

/** The defaults. */
export const DEFAULT_TCP_CONFIG: Readonly<TcpConfig> = {
  sendBuffer: 256 * 1024,
  receiveBuffer: 256 * 1024,
  backlog: 128,
  delayedAckMs: 40,
  minRtoMs: 200,
  maxRtoMs: 60_000,
  initialRtoMs: 1_000,
  maxRetries: 15,
  synRetries: 6,
  synAckRetries: 5,
  mslMs: 30_000,
  finWait2TimeoutMs: 60_000,
  keepaliveIdleMs: 0,
  keepaliveIntervalMs: 75_000,
  keepaliveProbes: 9,
  noDelay: false,
  windowScaling: true,
  timestamps: true,
  sack: true,
  maxConnections: 65_536,
  challengeAcksPerSecond: 1_000,
};
