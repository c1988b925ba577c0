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
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly #c: TcpConn;
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
    this.readable = new ReadableStream<Uint8Array>({
      pull: (controller) => this.#pull(controller),
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
    this.writable = new WritableStream<Uint8Array>({
      write: (chunk) => this.#write(chunk),
      close: () => this.closeWrite(),
      abort: () => this.#c.abort(),
    });
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

  /** Closes both directions (a reset if unread data is left, as Linux does). */
  close(): void {
    this.#c.close();
    const r = this.#wakeRead;
    this.#wakeRead = null;
    r?.();
  }
}

const EMPTY_READ = new Uint8Array(1);
