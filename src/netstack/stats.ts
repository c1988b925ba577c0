// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Counters of a {@link NetStack}: every packet the stack drops is counted
 * under the reason, so hostile or broken input shows up here instead of as
 * an exception.
 */

/** The stack's counters (all start at zero and only grow). */
export interface NetStackStats {
  /** IP packets written to the stack by the device, and sent by it. */
  ipIn: number;
  ipOut: number;
  /** Malformed IP headers (lengths, version, IPv4 header checksum, extension chain). */
  ipMalformed: number;
  /** Fragments (no reassembly). */
  ipFragments: number;
  /** Routing headers with segments left, no-next-header. */
  ipUnsupported: number;
  /** Destination not one of the stack's addresses, or a source that cannot be answered. */
  ipNotForUs: number;
  /** Protocols other than ICMP, ICMPv6, TCP and UDP. */
  ipUnknownProtocol: number;
  /** Packets the stack could not send (no output attached). */
  ipNoOutput: number;
  icmpIn: number;
  /** ICMP with a bad checksum or too short. */
  icmpMalformed: number;
  icmpEchoReplies: number;
  /** Destination-unreachable errors sent. */
  icmpErrorsOut: number;
  /** ICMP errors not sent because of the rate limit. */
  icmpRateLimited: number;
  /** ICMP errors received that matched a socket, and those that did not. */
  icmpErrorsIn: number;
  icmpErrorsIgnored: number;
  udpIn: number;
  udpMalformed: number;
  udpChecksumErrors: number;
  /** Datagrams to a port with no socket (answered with port unreachable). */
  udpNoPort: number;
  /** Datagrams dropped because the socket's receive queue was full. */
  udpQueueFull: number;
  tcpIn: number;
  tcpMalformed: number;
  tcpChecksumErrors: number;
  /** Segments for no connection or listener (answered with RST unless they were RSTs). */
  tcpNoSocket: number;
  tcpResetsOut: number;
  tcpResetsIn: number;
  /** SYNs dropped because the listener's backlog or the connection limit was full. */
  tcpSynDropped: number;
  /** Segments outside the receive window (answered with an ACK). */
  tcpOutOfWindow: number;
  /** ACKs for data never sent, or too old (RFC 5961 §5). */
  tcpBadAcks: number;
  /** Challenge ACKs sent (RFC 5961) and those suppressed by the rate limit. */
  tcpChallengeAcks: number;
  tcpChallengeAcksLimited: number;
  /** Out-of-order data dropped for lack of a free interval slot. */
  tcpOutOfOrderDropped: number;
  /** Segments with flags that make no sense in their state (e.g. no ACK). */
  tcpDropped: number;
  /** Segments sent again after an RTO, and fast retransmits. */
  tcpRetransmits: number;
  tcpFastRetransmits: number;
  /** Retransmission timeouts of data (each one resends from SND.UNA). */
  tcpRtoExpired: number;
  /** Loss recoveries started from SACK information (RFC 6675; counted in tcpFastRetransmits too). */
  tcpSackRecoveries: number;
  /**
   * SACK blocks received and ignored: empty, inverted, ending beyond what was
   * sent or not above SND.UNA (D-SACK blocks, RFC 2883, land here too).
   */
  tcpSackInvalid: number;
  /** Valid SACK blocks dropped because the scoreboard's ranges were all taken. */
  tcpSackDropped: number;
  /** SACK scoreboards cleared because the peer seemed to discard SACKed data (reneging). */
  tcpSackReneged: number;
  /** Connections given up after too many retransmissions. */
  tcpTimeouts: number;
  tcpActiveOpens: number;
  tcpPassiveOpens: number;
  tcpSegmentsOut: number;
}

/** A fresh set of counters. */
export function newNetStackStats(): NetStackStats {
  return {
    ipIn: 0,
    ipOut: 0,
    ipMalformed: 0,
    ipFragments: 0,
    ipUnsupported: 0,
    ipNotForUs: 0,
    ipUnknownProtocol: 0,
    ipNoOutput: 0,
    icmpIn: 0,
    icmpMalformed: 0,
    icmpEchoReplies: 0,
    icmpErrorsOut: 0,
    icmpRateLimited: 0,
    icmpErrorsIn: 0,
    icmpErrorsIgnored: 0,
    udpIn: 0,
    udpMalformed: 0,
    udpChecksumErrors: 0,
    udpNoPort: 0,
    udpQueueFull: 0,
    tcpIn: 0,
    tcpMalformed: 0,
    tcpChecksumErrors: 0,
    tcpNoSocket: 0,
    tcpResetsOut: 0,
    tcpResetsIn: 0,
    tcpSynDropped: 0,
    tcpOutOfWindow: 0,
    tcpBadAcks: 0,
    tcpChallengeAcks: 0,
    tcpChallengeAcksLimited: 0,
    tcpOutOfOrderDropped: 0,
    tcpDropped: 0,
    tcpRetransmits: 0,
    tcpFastRetransmits: 0,
    tcpRtoExpired: 0,
    tcpSackRecoveries: 0,
    tcpSackInvalid: 0,
    tcpSackDropped: 0,
    tcpSackReneged: 0,
    tcpTimeouts: 0,
    tcpActiveOpens: 0,
    tcpPassiveOpens: 0,
    tcpSegmentsOut: 0,
  };
}
