// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Byte copying between a local `Deno.Conn` and a {@link TunnelConn}, shared
 * by the SOCKS5 and HTTP proxies.
 */
import type { TunnelConn } from "./conn.ts";

/** Writes all of `data` to `conn`. */
export async function writeFull(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

/** Copies both ways until both ends finished; `early` is client data read with the request. */
export async function relay(conn: Deno.Conn, t: TunnelConn, early: Uint8Array): Promise<void> {
  const up = (async () => {
    const w = t.writable.getWriter();
    if (early.length > 0) await w.write(early.slice());
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      await w.write(buf.slice(0, n));
    }
    await w.close();
  })();
  const down = (async () => {
    for await (const chunk of t.readable) await writeFull(conn, chunk);
    await conn.closeWrite().catch(() => {});
  })();
  // A failure either way ends both: the other direction would wait forever.
  const fail = () => {
    t.close();
    try {
      conn.close();
    } catch {
      // already closed
    }
  };
  up.catch(fail);
  down.catch(fail);
  await Promise.allSettled([up, down]);
  t.close();
}
