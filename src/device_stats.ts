// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The device's drop and error counters, shared by the send and receive paths.
 */

/** Counters of dropped and failed packets, by reason. */
export interface DeviceStats {
  /** Datagrams of unknown type or wrong size. */
  invalidMessages: number;
  /** Handshake messages whose mac1 was wrong. */
  invalidMac: number;
  /** Handshake messages dropped because the queue was full. */
  handshakeQueueFull: number;
  /** Handshake messages that did not authenticate or were replays/floods. */
  handshakeRejected: number;
  /** Handshakes refused by the per-source rate limiter under load. */
  ratelimited: number;
  /** Cookie replies sent under load. */
  cookieRepliesSent: number;
  /** Transport messages for an unknown receiver index. */
  unknownIndex: number;
  /** Transport messages on an expired session. */
  expiredKeypair: number;
  /** Transport messages that failed to decrypt. */
  decryptFailed: number;
  /** Transport messages rejected by the replay window. */
  replayed: number;
  /** Decrypted packets that were not valid IP packets. */
  invalidPackets: number;
  /** Decrypted packets whose source is not in the sender's allowed IPs. */
  badSource: number;
  /** TUN packets with no peer for their destination. */
  noRoute: number;
  /** Staged packets dropped because the queue was full. */
  stagedDropped: number;
  /** Datagrams the bind refused to send. */
  sendErrors: number;
}

/** A DeviceStats with every counter at zero. */
export function newStats(): DeviceStats {
  return {
    invalidMessages: 0,
    invalidMac: 0,
    handshakeQueueFull: 0,
    handshakeRejected: 0,
    ratelimited: 0,
    cookieRepliesSent: 0,
    unknownIndex: 0,
    expiredKeypair: 0,
    decryptFailed: 0,
    replayed: 0,
    invalidPackets: 0,
    badSource: 0,
    noRoute: 0,
    stagedDropped: 0,
    sendErrors: 0,
  };
}
