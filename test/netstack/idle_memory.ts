// SPDX-License-Identifier: Apache-2.0
/**
 * Memory of the stack's TCP connections, on the heap as V8 counts it (JS
 * heap plus external memory, where typed-array storage lives), after a full
 * GC. Needs GC exposed:
 *
 *   deno run --v8-flags=--expose-gc test/netstack/idle_memory.ts [--idle 2000] [--churn 10000] [--rounds 3] [--json]
 *
 * - idle: `--idle` connection pairs between two stacks in one process, each
 *   having carried 2000 bytes each way and read it all, then idle. The growth
 *   over the empty pair of stacks is divided by the connection ends (2 per
 *   pair); it includes everything a connection costs: the TcpConn, its
 *   address copies, rings, SACK and out-of-order arrays, table entries, the
 *   listener queue arrays of the test, and each stack's share of the pooled
 *   buffer storage (at most 1 MiB per stack).
 * - churn: `--rounds` rounds of `--churn` connections opened, used and
 *   closed in a row on the same pair of stacks, each round ending after
 *   TIME_WAIT; the heap after each round shows whether anything stays.
 */
// deno-lint-ignore-file no-console
import { parseArgs } from "node:util";
import { link, pattern } from "./_link.ts";
import { churn } from "./_churn.ts";
import type { TcpConn } from "../../src/netstack/tcp_conn.ts";

const { values } = parseArgs({
  options: {
    idle: { type: "string", default: "2000" },
    churn: { type: "string", default: "10000" },
    rounds: { type: "string", default: "3" },
    json: { type: "boolean", default: false },
  },
});
const gc = (globalThis as unknown as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
const heap = () => {
  gc();
  gc();
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
};

// ---- idle connections ----
const N = Number(values.idle);
const msg = pattern(2000);
const buf = new Uint8Array(4096);
const before = heap();
const l = link({ tcp: { backlog: N } });
const lis = l.b.listen(80);
const empty = heap();
const clients: TcpConn[] = [];
for (let i = 0; i < N; i++) clients.push(l.a.connect("10.0.0.2", 80));
if (!l.until(() => lis.queue.length === N, 60_000)) throw new Error("handshakes stalled");
const servers: TcpConn[] = [];
for (let c = lis.accept(); c; c = lis.accept()) servers.push(c);
for (const c of clients) c.write(msg);
for (const s of servers) s.write(msg);
const all = [...clients, ...servers];
const got = new Map<TcpConn, number>();
if (
  !l.until(() => {
    for (const c of all) {
      let n: number;
      while ((n = c.read(buf)) > 0) got.set(c, (got.get(c) ?? 0) + n);
    }
    return all.every((c) => got.get(c) === msg.length && c.sndUna === c.sndMax);
  }, 60_000)
) throw new Error("exchange stalled");
got.clear();
l.run(1000, 100);
const idle = heap();
const perConn = Math.round((idle - empty) / (2 * N));
const buffers = (l.a.buffers.inUse + l.a.buffers.pooled + l.b.buffers.inUse +
  l.b.buffers.pooled) / (2 * N);
if (l.a.connectionCount !== N || l.b.connectionCount !== N) throw new Error("connections lost");
for (const c of all) c.abort();
all.length = clients.length = servers.length = 0;

// ---- churn ----
const l2 = link();
const lis2 = l2.b.listen(80);
const small = pattern(1000, 2);
const churnHeap: number[] = [];
const churnRss: number[] = [];
for (let r = 0; r < Number(values.rounds); r++) {
  const stuck = churn(l2, lis2, Number(values.churn), small, buf);
  if (stuck.length > 0) throw new Error(`${stuck.length} connections stuck`);
  l2.run(61_000, 1000);
  if (l2.a.connectionCount + l2.b.connectionCount !== 0 || l2.clock.pending !== 0) {
    throw new Error("state left after TIME_WAIT");
  }
  churnHeap.push(heap());
  churnRss.push(Deno.memoryUsage().rss);
}
const result = {
  idleConnections: N,
  stacksBytes: empty - before,
  idleHeapPerConn: perConn,
  idleHeapPerPair: 2 * perConn,
  idleBuffersPerConn: Math.round(buffers),
  churnHeap,
  churnRss,
};
if (values.json) console.log(JSON.stringify(result));
else {
  console.log(
    `${N} idle connection pairs: ${perConn} bytes of heap per connection end ` +
      `(${result.idleBuffersPerConn} of them buffer storage), two empty stacks ${result.stacksBytes} bytes`,
  );
  console.log(
    `after each round of ${values.churn} connections and TIME_WAIT: heap ${
      churnHeap.map((h) => (h / 1e6).toFixed(2) + " MB").join(", ")
    }; RSS ${churnRss.map((h) => (h / 1e6).toFixed(1) + " MB").join(", ")}`,
  );
}
