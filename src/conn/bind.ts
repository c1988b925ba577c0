// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The contract between the device and a UDP edge (wireguard-go `conn.Bind`).
 */
import type { Endpoint } from "./endpoint.ts";

/**
 * Called by a bind for each datagram received. `data` and `endpoint` are only
 * valid during the call: the device copies what it keeps.
 */
export type ReceiveFn = (data: Uint8Array, endpoint: Endpoint) => void;

/**
 * Called by a bind when a datagram it had accepted from {@link Bind.send}
 * could not be sent after all (a batch flushed later failed): `owner` is what
 * the sender passed to send(), `bytes` the datagram's size. The device uses it
 * to keep tx_bytes to what really left, as wireguard-go counts.
 */
export type SendErrorFn = (owner: object, bytes: number) => void;

/** An error carrying a negative errno for UAPI (e.g. −98 EADDRINUSE). */
export class BindError extends Error {
  /** Negative errno, as wireguard-go reports it over UAPI. */
  readonly errno: number;
  constructor(errno: number, message: string) {
    super(message);
    this.name = "BindError";
    this.errno = errno;
  }
}

/** UDP sockets for one device: IPv4 and IPv6 on one port. */
export interface Bind {
  /**
   * Opens the sockets on `port` (0 picks a free port, the same for IPv4 and
   * IPv6) and starts delivering datagrams to `receive`. Returns the port
   * actually bound. Throws {@link BindError} (−98) when the port is taken.
   * Opening an open bind closes it first.
   */
  open(port: number, receive: ReceiveFn, onSendError?: SendErrorFn): number;
  /** Closes the sockets; nothing is delivered after it returns. Idempotent. */
  close(): void;
  /** Applies SO_MARK (0 = none) to the open sockets and to any opened later. Throws BindError. */
  setMark(mark: number): void;
  /**
   * Sends one datagram. The bind must not keep `data` after it returns (copy
   * to batch). Returns false when the datagram could not be sent or queued
   * (no socket for that family, unreachable), which the device counts.
   */
  send(data: Uint8Array, endpoint: Endpoint, owner?: object): boolean;
  /** Pushes out anything {@link Bind.send} batched. Optional. */
  flush?(): void;
}
