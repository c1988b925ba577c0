// SPDX-License-Identifier: Apache-2.0
// Bulk TCP transfers between two stacks back to back: byte-exact, without and
// with loss, duplication and reordering; the loss-free run reports throughput.
import assert from "node:assert/strict";
import { pattern } from "./_link.ts";
import { transfer } from "./_transfer.ts";
import { TcpState } from "../../src/netstack/tcp_state.ts";

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
