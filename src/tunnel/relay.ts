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

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

const RELAY_CHUNK = 64 * 1024;

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
 */
export async function relayTcp(
  local: Deno.Conn,
  tunneled: TunnelConn,
  early: Uint8Array = new Uint8Array(0),
): Promise<RelayCounts> {
  const counts: RelayCounts = { toTunnel: 0, fromTunnel: 0 };
  const w = tunneled.writable.getWriter();
  let failed = false;
  const fail = () => {
    if (failed) return;
    failed = true;
    // Abort resets the tunnel's connection once a write in flight has settled.
    w.abort().catch(() => {});
    tunneled.close();
    closeQuietly(local);
  };
  const up = (async () => {
    if (early.length > 0) {
      await w.write(early);
      counts.toTunnel += early.length;
    }
    const buf = new Uint8Array(RELAY_CHUNK);
    for (;;) {
      const n = await local.read(buf);
      if (n === null) break;
      // The write resolves once the stack has copied the bytes, so buf is free again.
      await w.write(buf.subarray(0, n));
      counts.toTunnel += n;
    }
    await w.close();
  })();
  const down = (async () => {
    for await (const chunk of tunneled.readable) {
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
