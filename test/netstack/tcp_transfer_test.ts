// SPDX-License-Identifier: Apache-2.0
// Bulk TCP transfers between two stacks back to back: byte-exact, without and
// with loss, duplication and reordering; the loss-free run reports throughput.
import assert from "node:assert/strict";
import { link, type LinkOptions, pattern } from "./_link.ts";
import type { TcpConn } from "../../src/netstack/tcp_conn.ts";
import { TcpState } from "../../src/netstack/tcp_state.ts";

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

Deno.test("tcp transfer: 10 MB byte-exact without loss (throughput on the fake clock)", () => {
  const data = pattern(10 * 1024 * 1024);
  const r = transfer(data, { latency: 1 });
  assert.ok(r.done, `stalled at ${r.got}`);
  assert.equal(r.mismatch, -1);
  assert.equal(r.got, data.length);
  assert.equal(r.l.a.stats.tcpRetransmits, 0);
  // deno-lint-ignore no-console
  console.log(
    `10 MB: ${(data.length / r.cpuMs * 1000 / 1e6).toFixed(1)} MB/s CPU (${
      r.cpuMs.toFixed(0)
    } ms), ` +
      `${
        (data.length / r.fakeMs * 1000 / 1e6).toFixed(1)
      } MB/s fake time (${r.fakeMs} ms, RTT 2 ms)`,
  );
});

Deno.test("tcp transfer: 10 MB byte-exact at 5% loss each way, with duplication and reordering", () => {
  const data = pattern(10 * 1024 * 1024, 3);
  const r = transfer(data, {
    latency: 5,
    loss: 0.05,
    duplicate: 0.01,
    reorder: 0.05,
    jitter: 8,
    seed: 5,
  }, "fd00::2");
  assert.ok(r.done, `stalled at ${r.got}`);
  assert.equal(r.mismatch, -1);
  assert.equal(r.got, data.length);
  const st = r.l.a.stats;
  assert.ok(st.tcpFastRetransmits > 0 && st.tcpRetransmits > 0);
  // deno-lint-ignore no-console
  console.log(
    `10 MB at 5% loss: ${r.fakeMs} fake ms, ${st.tcpRetransmits} retransmits ` +
      `(${st.tcpFastRetransmits} fast), ${r.l.counts.lost} packets lost, CPU ${
        r.cpuMs.toFixed(0)
      } ms`,
  );
  r.c.close();
  r.s!.close();
  assert.ok(r.l.until(() => r.c.state === TcpState.Closed && r.s!.state === TcpState.Closed));
  assert.equal(r.l.a.connectionCount + r.l.b.connectionCount, 0);
});
