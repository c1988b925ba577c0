// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Byte copying between a local `Deno.Conn` and a {@link TunnelConn}: the one
 * TCP relay of the SOCKS5 server (CONNECT), the HTTP proxy (CONNECT) and
 * `forward` (-L and -R). {@link relayTcp} copies both ways with
 * back-pressure (one chunk in flight per direction) and half-close: a FIN
 * one way is passed on and the other way stays open until its own FIN.
 */
import type { TunnelConn } from "./conn.ts";

/** Writes all of `data` to `conn`. */
export async function writeFull(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

/**
 * Accepts connections on `listener` until it is closed and serves each
 * with `serve`; with `limit`, a connection beyond `limit.max` served at
 * once goes to `limit.refuse` instead (which must close it). Resolves once
 * every connection served is done.
 */
export async function acceptClients(
  listener: Deno.Listener,
  serve: (conn: Deno.Conn) => Promise<void>,
  limit?: { max: number; refuse(conn: Deno.Conn): void },
): Promise<void> {
  const clients = new Set<Promise<void>>();
  for (;;) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch {
      break;
    }
    if (limit !== undefined && clients.size >= limit.max) {
      limit.refuse(conn);
      continue;
    }
    const p = serve(conn).finally(() => clients.delete(p));
    clients.add(p);
  }
  await Promise.allSettled(clients);
}

/** Closes a connection, listener or socket, ignoring that it may be closed already. */
export function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

/** Largest read from the local connection, and the first one (grown while reads fill it). */
const RELAY_CHUNK = 64 * 1024;
const RELAY_FIRST_CHUNK = 2 * 1024;

/** Bytes a {@link relayTcp} copied each way. */
export interface RelayCounts {
  /** From the local connection into the tunnel (`early` included). */
  toTunnel: number;
  /** From the tunnel to the local connection. */
  fromTunnel: number;
}

/**
 * Copies `local` into `tunneled` and back until both directions have ended,
 * passing each end of stream on as a FIN (`closeWrite`). `early` is client
 * data already read from `local` (with a SOCKS or HTTP request): it goes
 * into the tunnel first. A reset or error either way ends both: `tunneled`
 * is reset and `local` closed. Both are closed when it resolves; it never
 * rejects.
 *
 * Memory: an idle relay holds one read buffer, 2 KiB at first, doubling up
 * to 64 KiB while reads fill it and halving when they do not; data from the
 * tunnel is taken in chunks sized to what arrived, only once it has.
 * Neither direction uses web streams.
 */
export async function relayTcp(
  local: Deno.Conn,
  tunneled: TunnelConn,
  early: Uint8Array | null = null,
): Promise<RelayCounts> {
  const counts: RelayCounts = { toTunnel: 0, fromTunnel: 0 };
  let failed = false;
  const fail = () => {
    if (failed) return;
    failed = true;
    tunneled.abort();
    closeQuietly(local);
  };
  const up = (async () => {
    if (early !== null && early.length > 0) {
      await tunneled.write(early);
      counts.toTunnel += early.length;
    }
    let buf = new Uint8Array(RELAY_FIRST_CHUNK);
    for (;;) {
      const n = await local.read(buf);
      if (n === null) break;
      // The write resolves once the stack has copied the bytes, so buf is free again.
      await tunneled.write(buf.subarray(0, n));
      counts.toTunnel += n;
      if (n === buf.length && buf.length < RELAY_CHUNK) buf = new Uint8Array(buf.length * 2);
      else if (n < buf.length >> 2 && buf.length > RELAY_FIRST_CHUNK) {
        buf = new Uint8Array(buf.length >> 1);
      }
    }
    if (!failed) tunneled.closeWrite();
  })();
  const down = (async () => {
    for (;;) {
      const chunk = await tunneled.readChunk(RELAY_CHUNK);
      if (chunk === null) break;
      await writeFull(local, chunk);
      counts.fromTunnel += chunk.length;
    }
    await local.closeWrite();
  })();
  // A failure either way ends both: the other direction would otherwise wait forever.
  await Promise.allSettled([up.catch(fail), down.catch(fail)]);
  tunneled.close();
  closeQuietly(local);
  return counts;
}
