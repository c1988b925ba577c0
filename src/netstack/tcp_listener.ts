// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link TcpListener}: a listening port. Its backlog bounds half-open
 * connections (SYN_RECEIVED) and established ones not yet accepted
 * together; SYNs beyond it are dropped and counted, so a SYN flood costs
 * at most `backlog` small connection records (buffers are allocated only
 * once a handshake completes).
 */
import type { TcpConn } from "./tcp_conn.ts";

/** A listening TCP port; see the module doc. */
export class TcpListener {
  readonly port: number;
  readonly backlog: number;
  /** Connections in SYN_RECEIVED counted against the backlog. */
  halfOpen = 0;
  /** Established connections waiting for {@link accept}. */
  readonly queue: TcpConn[] = [];
  closed = false;
  /** Connections are waiting for {@link accept}. */
  onAcceptable: (() => void) | null = null;
  #release: (l: TcpListener) => void;

  constructor(port: number, backlog: number, release: (l: TcpListener) => void) {
    this.port = port;
    this.backlog = backlog;
    this.#release = release;
  }

  /** True when another SYN may be taken. */
  get hasRoom(): boolean {
    return !this.closed && this.halfOpen + this.queue.length < this.backlog;
  }

  /** The oldest established connection, or null. */
  accept(): TcpConn | null {
    return this.queue.shift() ?? null;
  }

  /** Stops listening; connections not yet accepted are reset. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.queue.splice(0)) c.abort();
    this.#release(this);
  }
}
