// SPDX-License-Identifier: Apache-2.0
// Connection churn: 10 000 connections opened, used and closed one after
// another leave no connection, timer or buffer behind once TIME_WAIT is over;
// the heap per idle connection, measured in a child process with GC exposed.
import assert from "node:assert/strict";
import { link, pattern } from "./_link.ts";
import type { TcpConn } from "../../src/netstack/tcp_conn.ts";
import { churn } from "./_churn.ts";

Deno.test("tcp churn: 10 000 connections in a row, then TIME_WAIT expiry leaves nothing behind", () => {
  // A short link delay, so that all 10 000 are in TIME_WAIT together at the end.
  const l = link({ latency: 0.25 });
  const lis = l.b.listen(80);
  const msg = pattern(1000, 2);
  const buf = new Uint8Array(2000);
  // One connection first: the buffer pool's baseline is what it keeps after one.
  churn(l, lis, 1, msg, buf);
  l.run(61_000, 1000);
  assert.equal(l.a.connectionCount + l.b.connectionCount, 0);
  const baseline = [l.a.buffers.pooled, l.b.buffers.pooled];
  assert.equal(l.a.buffers.inUse + l.b.buffers.inUse, 0);

  const N = 10_000;
  const start = l.clock.now();
  const stuck: TcpConn[] = churn(l, lis, N, msg, buf);
  // Every client that closed first waits in TIME_WAIT (they all fit in 2 MSL here).
  assert.ok(l.clock.now() - start < 60_000, `${l.clock.now() - start} fake ms`);
  assert.equal(stuck.length, 0);
  assert.equal(l.a.connectionCount, N);
  assert.equal(l.b.connectionCount, 0);
  assert.equal(l.a.buffers.inUse + l.b.buffers.inUse, 0);

  l.run(61_000, 1000);
  assert.equal(l.a.connectionCount, 0);
  assert.equal(l.b.connectionCount, 0);
  assert.equal(l.clock.pending, 0);
  assert.equal(lis.halfOpen, 0);
  assert.equal(lis.queue.length, 0);
  assert.deepEqual([l.a.buffers.pooled, l.b.buffers.pooled], baseline);
  assert.equal(l.a.buffers.inUse + l.b.buffers.inUse, 0);
  assert.equal(l.a.stats.tcpActiveOpens, N + 1);
  assert.equal(l.a.stats.tcpResetsOut + l.b.stats.tcpResetsOut, 0);
});

Deno.test("tcp churn: a connection in TIME_WAIT is in the table until 2 MSL, then gone", () => {
  const l = link();
  const lis = l.b.listen(80);
  churn(l, lis, 1, pattern(10), new Uint8Array(100));
  assert.equal(l.a.connectionCount, 1);
  l.run(59_000, 1000);
  assert.equal(l.a.connectionCount, 1);
  l.run(2_000, 1000);
  assert.equal(l.a.connectionCount, 0);
  assert.equal(l.clock.pending, 0);
});

Deno.test("tcp memory: heap per idle connection and heap after churn, measured with GC (child process)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--v8-flags=--expose-gc",
      new URL("./idle_memory.ts", import.meta.url).pathname,
      "--json",
      "--idle",
      "2000",
      "--churn",
      "10000",
      "--rounds",
      "3",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(text.trim().split("\n").pop()!);
  // deno-lint-ignore no-console
  console.log(
    `idle: ${r.idleHeapPerConn} heap bytes per connection (both ends: ${r.idleHeapPerPair} ` +
      `per pair), buffers ${r.idleBuffersPerConn}; churn heap after rounds: ${
        r.churnHeap.join(", ")
      }`,
  );
  assert.ok(r.idleHeapPerConn <= 16 * 1024, `${r.idleHeapPerConn} bytes per idle connection`);
  // Rounds of 10 000 connections: the heap after each (GC'd, TIME_WAIT over) does not grow.
  // A leak of 100 bytes per connection would add 1 MB per round.
  const first = r.churnHeap[0];
  for (const h of r.churnHeap.slice(1)) assert.ok(h - first < 512 * 1024, `${h} vs ${first}`);
});
