// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for the receiver index table: uniqueness under a rigged RNG that
 * repeats itself, lookups, replace and delete.
 */
import assert from "node:assert/strict";
import { IndexTable } from "../src/index_table.ts";
import type { Rng } from "../src/clock.ts";
import { seededRng } from "./_util/fake_clock.ts";

/** An RNG that yields the given u32 values (little-endian), cycling forever. */
function riggedRng(values: number[]): Rng {
  let i = 0;
  return function fill(out: Uint8Array): void {
    for (let o = 0; o < out.length; o += 4) {
      const v = values[i++ % values.length];
      for (let k = 0; k < 4 && o + k < out.length; k++) out[o + k] = v >>> (8 * k);
    }
  };
}

Deno.test("IndexTable.insert() returns the RNG's u32", () => {
  const t = new IndexTable<string>(riggedRng([0xdeadbeef]));
  assert.equal(t.insert("a"), 0xdeadbeef);
  assert.equal(t.lookup(0xdeadbeef), "a");
});

Deno.test("IndexTable.insert() never collides under a repeating RNG", () => {
  const rng = riggedRng([5, 5, 5, 6, 5, 6, 7, 0xffffffff, 7, 5]);
  const t = new IndexTable<number>(rng);
  const got = [t.insert(1), t.insert(2), t.insert(3), t.insert(4)];
  assert.deepEqual(got, [5, 6, 7, 0xffffffff]);
  assert.equal(t.size, 4);
  assert.equal(t.lookup(5), 1);
  assert.equal(t.lookup(6), 2);
  assert.equal(t.lookup(7), 3);
  assert.equal(t.lookup(0xffffffff), 4);
});

Deno.test("IndexTable.insert() never issues 0, so 0 can mean no index", () => {
  const t = new IndexTable<string>(riggedRng([0, 0, 0, 12]));
  assert.equal(t.insert("a"), 12);
  assert.equal(t.lookup(0), undefined);
  assert.throws(() => new IndexTable<string>(riggedRng([0])).insert("b"), /broken RNG/);
});

Deno.test("IndexTable.insert() reuses a deleted index", () => {
  const t = new IndexTable<string>(riggedRng([9, 9, 9, 10]));
  assert.equal(t.insert("a"), 9);
  t.delete(9);
  assert.equal(t.insert("b"), 9);
  assert.equal(t.insert("c"), 10);
  assert.equal(t.lookup(9), "b");
});

Deno.test("IndexTable.insert() throws instead of spinning on a stuck RNG", () => {
  const t = new IndexTable<string>(riggedRng([1]));
  t.insert("a");
  assert.throws(() => t.insert("b"), /broken RNG/);
  assert.equal(t.size, 1);
});

Deno.test("IndexTable.lookup() misses unknown and non-u32 indices", () => {
  const t = new IndexTable<string>(riggedRng([3]));
  t.insert("x");
  assert.equal(t.lookup(4), undefined);
  assert.equal(t.lookup(-1), undefined);
  assert.equal(t.lookup(3.5), undefined);
  assert.equal(t.lookup(NaN), undefined);
});

Deno.test("IndexTable.replace() keeps the index and ignores unknown indices", () => {
  const t = new IndexTable<string>(riggedRng([42, 43]));
  const i = t.insert("handshake");
  t.replace(i, "keypair");
  assert.equal(t.lookup(i), "keypair");
  assert.equal(t.size, 1);
  t.replace(1234, "ghost");
  assert.equal(t.lookup(1234), undefined);
  assert.equal(t.size, 1);
});

Deno.test("IndexTable.delete() frees the index; unknown is a no-op", () => {
  const t = new IndexTable<string>(riggedRng([1, 2]));
  const a = t.insert("a");
  const b = t.insert("b");
  t.delete(a);
  t.delete(a);
  t.delete(999);
  assert.equal(t.lookup(a), undefined);
  assert.equal(t.lookup(b), "b");
  assert.equal(t.size, 1);
});

Deno.test("IndexTable.insert() yields distinct indices at scale", () => {
  const t = new IndexTable<number>(seededRng(1));
  const seen = new Set<number>();
  for (let i = 0; i < 50_000; i++) {
    const idx = t.insert(i);
    assert.ok(Number.isInteger(idx) && idx >= 0 && idx <= 0xffffffff);
    assert.ok(!seen.has(idx));
    seen.add(idx);
  }
  assert.equal(t.size, 50_000);
  let k = 0;
  for (const idx of seen) assert.equal(t.lookup(idx), k++);
});
