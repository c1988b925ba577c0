// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for the handshake ratelimiter, driven by a fake clock: the kernel's
 * `selftest/ratelimiter.c` timing and capacity tests, /64 grouping for IPv6,
 * the table bound and the lazy garbage collection.
 */
import assert from "node:assert/strict";
import {
  Ratelimiter,
  RATELIMITER_MAX_ENTRIES,
  RATELIMITER_PACKETS_BURSTABLE,
  RATELIMITER_PACKETS_PER_SECOND,
} from "../src/ratelimiter.ts";
import { FakeClock } from "./_util/fake_clock.ts";

const COST_MS = 1000 / RATELIMITER_PACKETS_PER_SECOND;

function v4(a: number): Uint8Array {
  return new Uint8Array([a >>> 24, a >>> 16, a >>> 8, a]);
}

/** IPv6 from four big-endian u32 words, as the kernel test's in6_u.u6_addr32. */
function v6(w0: number, w1: number, w2: number, w3: number): Uint8Array {
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, w0 >>> 0);
  dv.setUint32(4, w1 >>> 0);
  dv.setUint32(8, w2 >>> 0);
  dv.setUint32(12, w3 >>> 0);
  return out;
}

Deno.test("Ratelimiter constants are the kernel's", () => {
  assert.equal(RATELIMITER_PACKETS_PER_SECOND, 20);
  assert.equal(RATELIMITER_PACKETS_BURSTABLE, 5);
  assert.equal(RATELIMITER_MAX_ENTRIES, 65536);
});

Deno.test("Ratelimiter.allow() kernel timings test", async (t) => {
  // selftest/ratelimiter.c expected_results: [result, ms to sleep before].
  const B = RATELIMITER_PACKETS_BURSTABLE;
  const expected: [boolean, number][] = [];
  for (let i = 0; i < B; i++) expected.push([true, 0]);
  expected.push([false, 0]);
  expected.push([true, COST_MS]);
  expected.push([false, 0]);
  expected.push([true, COST_MS * 2]);
  expected.push([true, 0]);
  expected.push([false, 0]);

  const clock = new FakeClock();
  const rl = new Ratelimiter(clock);
  const src4 = 8182;
  const w0 = 1212, w1 = 289188;
  for (let i = 0; i < expected.length; i++) {
    const [want, sleep] = expected[i];
    await t.step(`${i}: after ${sleep} ms → ${want}`, () => {
      clock.advance(sleep);
      assert.equal(rl.allow(4, v4(src4)), want, "IPv4 source");
      assert.equal(rl.allow(4, v4(src4 + i + 1)), true, "other IPv4 source");
      // Low 64 bits change every round: still the same /64, same bucket.
      assert.equal(rl.allow(6, v6(w0, w1, i, i)), want, "IPv6 /64");
      assert.equal(rl.allow(6, v6(w0 + i + 1, w1, i, i)), true, "other IPv6 /64");
    });
  }
});

Deno.test("Ratelimiter.allow() kernel capacity test", async (t) => {
  for (const max of [RATELIMITER_MAX_ENTRIES, 10]) {
    await t.step(`maxEntries ${max}: the (max+1)th new source is denied`, () => {
      const clock = new FakeClock();
      const rl = new Ratelimiter(clock, max === RATELIMITER_MAX_ENTRIES ? {} : { maxEntries: max });
      // Fill with other sources, let them go stale, then start clean as the
      // kernel does after wg_ratelimiter_gc_entries(NULL).
      for (let i = 0; i < 5; i++) rl.allow(6, v6(i, 0, 0, 0));
      clock.advance(1001);
      for (let i = 0; i <= max; i++) {
        assert.equal(rl.allow(4, v4(i)), i !== max, `source ${i}`);
      }
      assert.equal(rl.size, max);
    });
  }
});

Deno.test("Ratelimiter.allow() keys IPv4 by /32 and IPv6 by /64", () => {
  const clock = new FakeClock();
  const rl = new Ratelimiter(clock);
  for (let i = 0; i < 5; i++) assert.equal(rl.allow(4, v4(0x0a000001)), true);
  assert.equal(rl.allow(4, v4(0x0a000001)), false);
  assert.equal(rl.allow(4, v4(0x0a000002)), true, "neighbour /32 has its own bucket");
  for (let i = 0; i < 5; i++) assert.equal(rl.allow(6, v6(0x20010db8, 1, 0, i)), true);
  assert.equal(rl.allow(6, v6(0x20010db8, 1, 0xffffffff, 0xffffffff)), false, "same /64");
  assert.equal(rl.allow(6, v6(0x20010db8, 2, 0, 0)), true, "next /64");
  // The families never share buckets, even when the leading bytes are equal.
  assert.equal(rl.allow(6, v6(0x0a000001, 0, 0, 0)), true);
  assert.equal(rl.size, 5);
});

Deno.test("Ratelimiter.allow() reads only the first 8 bytes of an IPv6 address", () => {
  const rl = new Ratelimiter(new FakeClock());
  const addr = v6(0x20010db8, 7, 1, 2);
  for (let i = 0; i < 5; i++) assert.equal(rl.allow(6, addr.subarray(0, 8)), true);
  assert.equal(rl.allow(6, addr), false);
});

Deno.test("Ratelimiter.allow() refills at 20/s and caps at the burst", () => {
  const clock = new FakeClock();
  const rl = new Ratelimiter(clock);
  const a = v4(0xc0000201);
  for (let i = 0; i < 5; i++) assert.equal(rl.allow(4, a), true);
  assert.equal(rl.allow(4, a), false);
  // Sustained rate: exactly one packet per 50 ms, for longer than the GC interval.
  for (let i = 0; i < 60; i++) {
    clock.advance(COST_MS - 1);
    assert.equal(rl.allow(4, a), false, `early ${i}`);
    clock.advance(1);
    assert.equal(rl.allow(4, a), true, `on time ${i}`);
  }
  // Idle 900 ms (under the GC age): the bucket is full again, but only 5 deep.
  clock.advance(900);
  for (let i = 0; i < 5; i++) assert.equal(rl.allow(4, a), true, `burst ${i}`);
  assert.equal(rl.allow(4, a), false);
  // Denied packets cost nothing: 50 ms later exactly one more passes.
  clock.advance(COST_MS);
  assert.equal(rl.allow(4, a), true);
  assert.equal(rl.allow(4, a), false);
});

Deno.test("Ratelimiter.allow() denies new sources when full but serves known ones", () => {
  const clock = new FakeClock();
  const rl = new Ratelimiter(clock, { maxEntries: 3 });
  assert.equal(rl.allow(4, v4(1)), true);
  assert.equal(rl.allow(6, v6(1, 0, 0, 0)), true);
  assert.equal(rl.allow(4, v4(2)), true);
  assert.equal(rl.allow(4, v4(3)), false, "table full");
  assert.equal(rl.allow(6, v6(2, 0, 0, 0)), false, "table full for IPv6 too");
  assert.equal(rl.allow(4, v4(1)), true, "known source still served");
  assert.equal(rl.size, 3);
  // Once the others go stale and the sweep runs, room comes back.
  clock.advance(600);
  assert.equal(rl.allow(4, v4(1)), true);
  clock.advance(600);
  assert.equal(rl.allow(4, v4(3)), true, "stale entries were swept");
  assert.equal(rl.size, 2);
});

Deno.test("Ratelimiter garbage-collects entries idle for more than 1 s, lazily", () => {
  const clock = new FakeClock();
  const rl = new Ratelimiter(clock);
  for (let i = 0; i < 100; i++) rl.allow(4, v4(i));
  for (let i = 0; i < 50; i++) rl.allow(6, v6(i, 0, 0, 0));
  assert.equal(rl.size, 150);
  clock.advance(1000);
  rl.allow(4, v4(0)); // sweep runs; idle exactly 1000 ms is kept (kernel: "> NSEC_PER_SEC")
  assert.equal(rl.size, 150);
  clock.advance(500);
  rl.allow(4, v4(7)); // no sweep yet: the last one ran 500 ms ago
  assert.equal(rl.size, 150);
  clock.advance(500);
  rl.allow(4, v4(7)); // sweep: all but 0 (idle 1000 ms) and 7 (idle 500 ms) are gone
  assert.equal(rl.size, 2);
  clock.advance(5000);
  assert.equal(rl.allow(4, v4(7)), true);
  assert.equal(rl.size, 1);
  assert.equal(clock.pending, 0, "no timers are used");
});

Deno.test("Ratelimiter.allow() denies malformed input instead of throwing", () => {
  const rl = new Ratelimiter(new FakeClock());
  assert.equal(rl.allow(4, new Uint8Array(3)), false);
  assert.equal(rl.allow(6, new Uint8Array(7)), false);
  assert.equal(rl.allow(5 as 4, new Uint8Array(16)), false);
  assert.equal(rl.size, 0);
  assert.throws(() => new Ratelimiter(new FakeClock(), { maxEntries: -1 }), RangeError);
});
