// SPDX-License-Identifier: Apache-2.0
// TCP buffers take storage on demand: a Ring against a plain model, and the
// bytes 1000 idle connections hold.
import assert from "node:assert/strict";
import { link, pattern } from "./_link.ts";
import { MIN_STORAGE, Ring } from "../../src/netstack/ring.ts";
import { BufferPool } from "../../src/netstack/buffer_pool.ts";
import type { TcpConn } from "../../src/netstack/tcp_conn.ts";
import { seededRng } from "../_util/fake_clock.ts";

Deno.test("ring: no storage until the first byte, grows by doubling, back to the pool when empty", () => {
  const pool = new BufferPool(1 << 20);
  const r = new Ring(100_000, pool);
  assert.equal(r.reserved, 0);
  assert.equal(r.free, 100_000);
  r.append(pattern(10), 0, 10);
  assert.equal(r.reserved, MIN_STORAGE);
  r.append(pattern(5000), 0, 5000);
  assert.equal(r.reserved, 2 * MIN_STORAGE);
  // Past a power of two the capacity is the cap.
  r.append(pattern(100_000), 0, 100_000);
  assert.equal(r.length, 100_000);
  assert.equal(r.reserved, 100_000);
  assert.equal(pool.inUse, 100_000);
  r.consume(100_000);
  assert.equal(r.reserved, 0);
  assert.equal(pool.inUse, 0);
  assert.equal(pool.pooled, 4096 + 8192 + 100_000);
  // The next fill takes the size it had, from the pool.
  r.append(pattern(1), 0, 1);
  assert.equal(r.reserved, 100_000);
  assert.equal(pool.pooled, 4096 + 8192);
});

Deno.test("ring: bytes written past the end keep the storage and survive growth", () => {
  const pool = new BufferPool(0);
  const r = new Ring(65536, pool);
  const data = pattern(20_000, 3);
  // Out of order: [1000, 20000) first, then [0, 1000).
  r.writeAt(1000, data, 1000, 19_000);
  assert.equal(r.length, 0);
  assert.equal(r.reserved, 32768);
  r.writeAt(0, data, 0, 1000);
  r.commit(20_000);
  const out = new Uint8Array(20_000);
  assert.equal(r.read(out, 0, 20_000), 20_000);
  assert.deepEqual(out, data);
  assert.equal(r.reserved, 0);
  // Written past an empty ring (the size it had comes back): consuming nothing keeps it.
  r.writeAt(500, data, 0, 10);
  r.consume(0);
  assert.equal(r.reserved, 32768);
  r.release();
  assert.equal(r.reserved, 0);
  assert.equal(pool.inUse, 0);
});

Deno.test("ring: 20 000 random operations match a plain array, wrapping and growing", () => {
  const pool = new BufferPool(64 * 1024);
  const cap = 50_000;
  const r = new Ring(cap, pool);
  const rand = new Uint8Array(4);
  const rng = seededRng(11);
  const next = (n: number) => {
    rng(rand);
    return new DataView(rand.buffer).getUint32(0) % n;
  };
  let model: number[] = [];
  const src = pattern(cap, 5);
  for (let i = 0; i < 20_000; i++) {
    const op = next(3);
    if (op === 0) {
      const len = next(6000);
      const off = next(cap - len);
      const n = r.append(src, off, len);
      assert.equal(n, Math.min(len, cap - model.length));
      model = model.concat(Array.from(src.subarray(off, off + n)));
    } else if (op === 1) {
      const len = next(8000);
      const out = new Uint8Array(len);
      const n = r.read(out, 0, len);
      assert.equal(n, Math.min(len, model.length));
      assert.deepEqual(Array.from(out.subarray(0, n)), model.slice(0, n));
      model = model.slice(n);
    } else if (model.length > 0) {
      const at = next(model.length);
      const len = Math.min(next(3000), model.length - at);
      const out = new Uint8Array(len);
      r.peek(at, out, 0, len);
      assert.deepEqual(Array.from(out), model.slice(at, at + len));
    }
    assert.equal(r.length, model.length);
    if (model.length === 0) assert.equal(r.reserved, 0);
  }
  assert.equal(pool.inUse, r.reserved);
});

Deno.test("tcp buffers: 1000 idle connections after an exchange hold at most 16 KiB each", () => {
  const N = 1000;
  const l = link({ tcp: { backlog: N } });
  const lis = l.b.listen(80);
  const clients: TcpConn[] = [];
  for (let i = 0; i < N; i++) clients.push(l.a.connect("10.0.0.2", 80));
  assert.ok(l.until(() => lis.queue.length === N, 60_000));
  const servers: TcpConn[] = [];
  for (let c = lis.accept(); c; c = lis.accept()) servers.push(c);
  // Each connection carries 2000 bytes each way, then sits idle.
  const msg = pattern(2000);
  for (const c of clients) assert.equal(c.write(msg), msg.length);
  for (const s of servers) assert.equal(s.write(msg), msg.length);
  const buf = new Uint8Array(4096);
  const got = new Map<TcpConn, number>();
  const all = [...clients, ...servers];
  assert.ok(l.until(() => {
    for (const c of all) {
      let n: number;
      while ((n = c.read(buf)) > 0) got.set(c, (got.get(c) ?? 0) + n);
    }
    return all.every((c) => got.get(c) === msg.length && c.sndUna === c.sndMax);
  }, 60_000));
  l.run(1000, 100);
  for (const [name, stack] of [["A", l.a], ["B", l.b]] as const) {
    const reserved = stack.buffers.inUse + stack.buffers.pooled;
    // deno-lint-ignore no-console
    console.log(
      `stack ${name}: ${N} idle connections, ${stack.buffers.inUse} bytes in use, ` +
        `${stack.buffers.pooled} pooled: ${(reserved / N).toFixed(0)} bytes each`,
    );
    assert.equal(stack.connectionCount, N);
    assert.ok(reserved / N <= 16 * 1024, `${reserved / N} bytes per connection`);
  }
  for (const c of all) assert.equal(c.recvBuf!.reserved + c.sendBuf!.reserved, 0);
});

Deno.test("tcp buffers: after 1 MB each way and a close, no storage is in use", () => {
  const l = link();
  const lis = l.b.listen(80);
  const c = l.a.connect("10.0.0.2", 80);
  assert.ok(l.until(() => lis.queue.length === 1, 5000));
  const s = lis.accept()!;
  const data = pattern(1 << 20, 9);
  const sink = new Uint8Array(1 << 20);
  let sentC = 0, sentS = 0, gotC = 0, gotS = 0;
  const fromS = new Uint8Array(1 << 20);
  assert.ok(l.until(() => {
    sentC += c.write(data, sentC);
    sentS += s.write(data, sentS);
    let n: number;
    while ((n = s.read(sink, gotS)) > 0) gotS += n;
    while ((n = c.read(fromS, gotC)) > 0) gotC += n;
    return gotS === data.length && gotC === data.length;
  }, 600_000));
  assert.deepEqual(sink, data);
  assert.deepEqual(fromS, data);
  c.close();
  s.close();
  assert.ok(l.until(() => l.a.connectionCount + l.b.connectionCount === 0, 200_000));
  assert.equal(l.a.buffers.inUse, 0);
  assert.equal(l.b.buffers.inUse, 0);
  assert.ok(l.a.buffers.pooled <= l.a.buffers.maxBytes);
});
