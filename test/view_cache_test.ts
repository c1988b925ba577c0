// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { ViewCache } from "../src/view_cache.ts";

Deno.test("ViewCache: a slot returns its view again while the range repeats", () => {
  const data = new Uint8Array(1024);
  const c = new ViewCache(data, 4);
  const a = c.get(0, 16, 64);
  assert.equal(a.byteOffset, 16);
  assert.equal(a.length, 48);
  assert.equal(c.get(0, 16, 64), a);
  assert.notEqual(c.get(0, 16, 65), a, "another range in the slot is another view");
});

Deno.test("ViewCache: with a range table, ranges that move between slots make no new view", () => {
  const data = new Uint8Array(1 << 16);
  const c = new ViewCache(data, 8, 10);
  // Batch 1 packs big, small, big; batch 2 small, big, big: job i moves to another range.
  const ranges = [[0, 1340], [1344, 1404], [1408, 2748]];
  const first = ranges.map(([s, e], i) => c.get(i, s, e));
  const again = [ranges[1], ranges[0], ranges[2]].map(([s, e], i) => c.get(i, s, e));
  assert.equal(again[0], first[1]);
  assert.equal(again[1], first[0]);
  assert.equal(again[2], first[2]);
  for (const v of again) assert.equal(v.buffer, data.buffer);
  // Without it, every moved range is a new view.
  const plain = new ViewCache(data, 8);
  const p1 = ranges.map(([s, e], i) => plain.get(i, s, e));
  const p2 = [ranges[1], ranges[0]].map(([s, e], i) => plain.get(i, s, e));
  assert.notEqual(p2[0], p1[1]);
  assert.deepEqual([p2[0].byteOffset, p2[0].length], [1344, 60]);
});
