// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for the test helpers themselves: FakeClock ordering, cancellation and
 * wall time; seededRng determinism; RandomSource ranges.
 */
import assert from "node:assert/strict";
import { FAKE_WALL_START, FakeClock, RandomSource, seededRng } from "./fake_clock.ts";

Deno.test("FakeClock starts at the given times", () => {
  const c = new FakeClock();
  assert.equal(c.now(), 0);
  assert.equal(c.wall(), FAKE_WALL_START);
  const d = new FakeClock({ now: 500, wall: 1e12 });
  assert.equal(d.now(), 500);
  assert.equal(d.wall(), 1e12);
});

Deno.test("FakeClock.after() never runs synchronously; after(0) runs on advance(0)", () => {
  const c = new FakeClock();
  let ran = 0;
  c.after(0, () => ran++);
  c.after(-5, () => ran++);
  c.after(NaN, () => ran++);
  assert.equal(ran, 0);
  assert.equal(c.pending, 3);
  c.advance(0);
  assert.equal(ran, 3);
  assert.equal(c.pending, 0);
});

Deno.test("FakeClock.advance() runs callbacks in deadline order at their deadlines", () => {
  const c = new FakeClock({ wall: 10_000 });
  const log: string[] = [];
  c.after(30, () => log.push(`c@${c.now()},${c.wall()}`));
  c.after(10, () => log.push(`a@${c.now()},${c.wall()}`));
  c.after(20, () => log.push(`b1@${c.now()}`));
  c.after(20, () => log.push(`b2@${c.now()}`)); // same deadline: scheduling order
  c.advance(25);
  assert.deepEqual(log, ["a@10,10010", "b1@20", "b2@20"]);
  assert.equal(c.now(), 25);
  c.advance(5);
  assert.deepEqual(log.slice(3), ["c@30,10030"]);
});

Deno.test("FakeClock.advance() runs callbacks scheduled during advance when due by the target", () => {
  const c = new FakeClock();
  const log: number[] = [];
  c.after(10, () => {
    log.push(c.now());
    c.after(0, () => log.push(c.now()));
    c.after(5, () => log.push(c.now()));
    c.after(50, () => log.push(c.now()));
  });
  c.advance(20);
  assert.deepEqual(log, [10, 10, 15]);
  assert.equal(c.pending, 1);
  c.advance(40);
  assert.deepEqual(log, [10, 10, 15, 60]);
});

Deno.test("FakeClock.advance() supports a periodic re-arming timer", () => {
  const c = new FakeClock();
  const ticks: number[] = [];
  function tick(): void {
    ticks.push(c.now());
    c.after(100, tick);
  }
  c.after(100, tick);
  c.advance(1000);
  assert.deepEqual(ticks, [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
});

Deno.test("FakeClock.cancel() stops a callback; unknown handles are ignored", () => {
  const c = new FakeClock();
  let ran = 0;
  const h = c.after(10, () => ran++);
  const h2 = c.after(10, () => ran += 10);
  assert.notEqual(h, h2);
  c.cancel(h);
  c.cancel(h); // twice is fine
  c.cancel(12345);
  assert.equal(c.pending, 1);
  c.advance(10);
  assert.equal(ran, 10);
  // Cancelling from inside another callback at the same deadline.
  let hit = false;
  let victim = 0;
  c.after(5, () => c.cancel(victim));
  victim = c.after(5, () => hit = true);
  c.advance(5);
  assert.equal(hit, false);
});

Deno.test("FakeClock.nextDeadline() and runAll()", () => {
  const c = new FakeClock();
  assert.equal(c.nextDeadline(), undefined);
  const h = c.after(7, () => {});
  c.after(9, () => c.after(1000, () => {}));
  assert.equal(c.nextDeadline(), 7);
  c.cancel(h);
  assert.equal(c.nextDeadline(), 9);
  c.runAll();
  assert.equal(c.now(), 1009);
  assert.equal(c.pending, 0);
  // runAll stops at its horizon.
  c.after(5000, () => {});
  c.runAll(1000);
  assert.equal(c.now(), 1009);
  assert.equal(c.pending, 1);
});

Deno.test("FakeClock.setWall() jumps wall time only", () => {
  const c = new FakeClock();
  c.advance(100);
  c.setWall(42_000);
  assert.equal(c.wall(), 42_000);
  assert.equal(c.now(), 100);
  c.advance(1);
  assert.equal(c.wall(), 42_001);
  c.setWall(0); // backwards is allowed: system clocks do that
  assert.equal(c.wall(), 0);
});

Deno.test("FakeClock.advance() rejects negative or non-finite steps", () => {
  const c = new FakeClock();
  assert.throws(() => c.advance(-1), RangeError);
  assert.throws(() => c.advance(NaN), RangeError);
  assert.throws(() => c.advance(Infinity), RangeError);
});

Deno.test("FakeClock.advance() propagates a throwing callback and stays consistent", () => {
  const c = new FakeClock();
  let later = 0;
  c.after(10, () => {
    throw new Error("boom");
  });
  c.after(20, () => later++);
  assert.throws(() => c.advance(30), /boom/);
  assert.equal(c.now(), 10);
  assert.equal(c.pending, 1);
  c.advance(20);
  assert.equal(later, 1);
});

Deno.test("FakeClock keeps many timers ordered", () => {
  const c = new FakeClock();
  const rnd = new RandomSource(seededRng(3));
  const fired: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const d = rnd.int(10_000);
    c.after(d, () => fired.push(c.now()));
  }
  c.advance(10_000);
  assert.equal(fired.length, 2000);
  for (let i = 1; i < fired.length; i++) assert.ok(fired[i - 1] <= fired[i]);
});

Deno.test("seededRng() is deterministic per seed and fills any length", () => {
  const a = new Uint8Array(37), b = new Uint8Array(37), c = new Uint8Array(37);
  seededRng(1)(a);
  seededRng(1)(b);
  seededRng(2)(c);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const z = new Uint8Array(64);
  seededRng(0)(z);
  assert.ok(z.some((x) => x !== 0), "seed 0 still mixes");
  // Successive calls continue the stream.
  const r = seededRng(9);
  const x = new Uint8Array(8), y = new Uint8Array(8);
  r(x);
  r(y);
  assert.notDeepEqual(x, y);
});

Deno.test("seededRng() bytes look uniform", () => {
  const buf = new Uint8Array(1 << 16);
  seededRng(12345)(buf);
  const counts = new Array(256).fill(0);
  for (const v of buf) counts[v]++;
  // Expected 256 per value; a broken generator is far outside this.
  for (const n of counts) assert.ok(n > 150 && n < 370, `count ${n}`);
});

Deno.test("RandomSource.int() stays in range", () => {
  const r = new RandomSource(seededRng(4));
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const v = r.int(7);
    assert.ok(Number.isInteger(v) && v >= 0 && v < 7);
    seen.add(v);
  }
  assert.equal(seen.size, 7);
  assert.equal(r.int(1), 0);
  assert.ok(r.int(2 ** 32) <= 0xffffffff);
  assert.throws(() => r.int(0), RangeError);
  assert.equal(r.bytes(5).length, 5);
});
