// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link transfer}: one bulk TCP transfer from stack A to stack B through
 * the in-memory link of _link.ts, checked byte by byte, timed on the fake
 * clock (and on the CPU).
 */
import { link, type LinkOptions } from "./_link.ts";
import type { TcpConn } from "../../src/netstack/tcp_conn.ts";

/** Sends `data` from A to B through `opts`; returns fake ms, CPU ms and stats. */
export function transfer(data: Uint8Array, opts: LinkOptions, addr = "10.0.0.2") {
  const l = link(opts);
  const lis = l.b.listen(5001);
  const c = l.a.connect(addr, 5001);
  let sent = 0;
  const pump = () => {
    while (sent < data.length) {
      const n = c.write(data, sent, Math.min(65536, data.length - sent));
      if (n === 0) return;
      sent += n;
    }
    c.shutdown();
  };
  c.onConnect = pump;
  c.onWritable = pump;
  let got = 0;
  let mismatch = -1;
  let s: TcpConn | null = null;
  const buf = new Uint8Array(65536);
  const drain = () => {
    for (;;) {
      const n = s!.read(buf);
      if (n <= 0) return;
      for (let i = 0; i < n; i++) {
        if (buf[i] !== data[got + i] && mismatch < 0) mismatch = got + i;
      }
      got += n;
    }
  };
  lis.onAcceptable = () => {
    s = lis.accept();
    s!.onReadable = drain;
    drain();
  };
  const t0 = performance.now();
  const start = l.clock.now();
  const done = l.until(() => s !== null && s.finReceived && got === data.length, 3_600_000);
  const cpuMs = performance.now() - t0;
  const fakeMs = l.clock.now() - start;
  return { l, c, s: s as TcpConn | null, done, got, mismatch, cpuMs, fakeMs };
}
