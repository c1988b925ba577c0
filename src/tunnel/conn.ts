// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link TunnelConn}: a TCP connection of the tunnel's stack as a
 * `Deno.Conn`-like duplex: `readable` and `writable` web streams with
 * back-pressure from the connection's buffers, `closeWrite()` (FIN),
 * `close()`, and the local and remote addresses.
 */
import { formatIPv4, formatIPv6 } from "../ip.ts";
import type { TcpConn, TcpError } from "../netstack/tcp_conn.ts";
import { TcpState } from "../netstack/tcp_state.ts";

/** An error of a tunnel connection; `code` says why ("refused", "timeout", ...). */
export class TunnelError extends Error {
  readonly code: TcpError;
  constructor(code: TcpError, message: string) {
    super(message);
    this.name = "TunnelError";
    this.code = code;
  }
}

/** Address text for 4 or 16 bytes. */
export function formatAddress(a: Uint8Array): string {
  return a.length === 4 ? formatIPv4(a) : formatIPv6(a);
}

const READ_CHUNK = 16 * 1024;

/** A connection through the tunnel; see the module doc. */
export class TunnelConn {
  readonly localAddr: Deno.NetAddr;
  readonly remoteAddr: Deno.NetAddr;
  /** The local address as 4 or 16 bytes. */
  readonly localAddress: Uint8Array;
  readonly #c: TcpConn;
  #readable: ReadableStream<Uint8Array> | null = null;
  #writable: WritableStream<Uint8Array> | null = null;
  #wakeRead: (() => void) | null = null;
  #wakeWrite: (() => void) | null = null;

  constructor(conn: TcpConn) {
    this.#c = conn;
    this.localAddress = conn.local.slice();
    this.localAddr = {
      transport: "tcp",
      hostname: formatAddress(conn.local),
      port: conn.localPort,
    };
    this.remoteAddr = {
      transport: "tcp",
      hostname: formatAddress(conn.remote),
      port: conn.remotePort,
    };
    const wake = () => {
      const r = this.#wakeRead, w = this.#wakeWrite;
      this.#wakeRead = this.#wakeWrite = null;
      r?.();
      w?.();
    };
    conn.onReadable = wake;
    conn.onWritable = wake;
    conn.onClose = wake;
  }

  /** The bytes received, as a stream (made on first use; {@link read} is the lighter way). */
  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= new ReadableStream<Uint8Array>({
      pull: (controller) => this.#pull(controller),
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
  }

  /** The bytes to send, as a stream (made on first use; {@link write} is the lighter way). */
  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.#write(chunk),
      close: () => this.closeWrite(),
      abort: () => this.#c.abort(),
    });
  }

  /**
   * Reads into `into`, as `Deno.Conn.read`: the count (at least 1 when
   * `into` is not empty), or null at the end of the stream. Rejects with a
   * {@link TunnelError} when the connection failed (reset, timeout).
   */
  async read(into: Uint8Array): Promise<number | null> {
    if (into.length === 0) return 0;
    const c = this.#c;
    for (;;) {
      const n = c.read(into);
      if (n > 0) return n;
      if (n === -1) {
        if (c.error && c.error !== "aborted") {
          throw new TunnelError(c.error, `connection ${c.error}`);
        }
        return null;
      }
      await new Promise<void>((resolve) => this.#wakeRead = resolve);
    }
  }

  /**
   * The next bytes received, up to `max`, in a new array sized to what was
   * buffered; null at the end of the stream. Nothing is allocated while it
   * waits. Rejects like {@link read}.
   */
  async readChunk(max = 64 * 1024): Promise<Uint8Array | null> {
    const c = this.#c;
    for (;;) {
      const avail = c.readable;
      if (avail > 0) {
        const buf = new Uint8Array(Math.min(avail, max));
        return buf.subarray(0, c.read(buf));
      }
      if (c.read(EMPTY_READ) === -1) {
        if (c.error && c.error !== "aborted") {
          throw new TunnelError(c.error, `connection ${c.error}`);
        }
        return null;
      }
      await new Promise<void>((resolve) => this.#wakeRead = resolve);
    }
  }

  /**
   * Sends all of `data` (copied into the connection's send buffer, so
   * `data` is free again when it resolves), waiting for room as needed.
   * Rejects with a {@link TunnelError} once the connection is closed or
   * after {@link closeWrite}.
   */
  write(data: Uint8Array): Promise<void> {
    return this.#write(data);
  }

  /** The error the connection ended with, or null. */
  get error(): TcpError | null {
    return this.#c.error;
  }

  async #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    const c = this.#c;
    for (;;) {
      const avail = c.readable;
      if (avail > 0) {
        const buf = new Uint8Array(Math.min(avail, READ_CHUNK));
        controller.enqueue(buf.subarray(0, c.read(buf)));
        return;
      }
      if (c.read(EMPTY_READ) === -1) {
        if (c.error && c.error !== "aborted") {
          controller.error(new TunnelError(c.error, `connection ${c.error}`));
        } else controller.close();
        return;
      }
      await new Promise<void>((resolve) => this.#wakeRead = resolve);
    }
  }

  async #write(chunk: Uint8Array): Promise<void> {
    const c = this.#c;
    let off = 0;
    while (off < chunk.length) {
      if (c.state === TcpState.Closed || c.finQueued) {
        throw new TunnelError(c.error ?? "aborted", `connection ${c.error ?? "closed"}`);
      }
      off += c.write(chunk, off);
      if (off < chunk.length) await new Promise<void>((r) => this.#wakeWrite = r);
    }
  }

  /** Sends FIN once the written data is out; reading goes on. */
  closeWrite(): void {
    this.#c.shutdown();
  }

  /** Resets the connection (RST to the peer) and wakes pending reads and writes. */
  abort(): void {
    this.#c.abort();
    this.#c.flushEvents();
  }

  /** Closes both directions (a reset if unread data is left, as Linux does). */
  close(): void {
    this.#c.close();
    const r = this.#wakeRead;
    this.#wakeRead = null;
    r?.();
  }
}

const EMPTY_READ = new Uint8Array(1);
