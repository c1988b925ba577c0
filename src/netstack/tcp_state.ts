// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link TcpState}: the states of a TCP connection, shared by the
 * connection, its input and output processing and the tunnel's streams.
 */

/** Connection states (RFC 9293 §3.3.2); LISTEN belongs to listeners (tcp_listener.ts). */
export enum TcpState {
  Closed = 0,
  SynSent = 1,
  SynReceived = 2,
  Established = 3,
  FinWait1 = 4,
  FinWait2 = 5,
  CloseWait = 6,
  Closing = 7,
  LastAck = 8,
  TimeWait = 9,
}
