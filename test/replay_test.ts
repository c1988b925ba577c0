// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for the replay window: the kernel's numbered counter selftest
 * (`selftest/counter.c`, also wireguard-go `replay/replay_test.go`) with the
 * same case numbers, plus 64-bit edge cases and a differential test against a
 * BigInt model. BigInt is fine here; src/replay.ts must not use it.
 */
import assert from "node:assert/strict";
import { REPLAY_WINDOW_SIZE, ReplayFilter } from "../src/replay.ts";
import { RandomSource, seededRng } from "./_util/fake_clock.ts";

/** 2^64 − 2^13 − 1 (src/constants.ts REJECT_AFTER_MESSAGES_HI/LO). */
const REJECT = (1n << 64n) - (1n << 13n) - 1n;
const WINDOW = BigInt(REPLAY_WINDOW_SIZE);
const T_LIM = WINDOW + 1n;

function check(f: ReplayFilter, n: bigint): boolean {
  const m = BigInt.asUintN(64, n);
  return f.validate(Number(m & 0xffffffffn), Number(m >> 32n));
}

Deno.test("REPLAY_WINDOW_SIZE is 8128 as the kernel and wireguard-go", () => {
  assert.equal(REPLAY_WINDOW_SIZE, 8128);
});

Deno.test("ReplayFilter.validate() kernel counter selftest table", async (t) => {
  const f = new ReplayFilter();
  // [case number, counter, expected], selftest/counter.c cases 1–34.
  const table: [number, bigint, boolean][] = [
    [1, 0n, true],
    [2, 1n, true],
    [3, 1n, false],
    [4, 9n, true],
    [5, 8n, true],
    [6, 7n, true],
    [7, 7n, false],
    [8, T_LIM, true],
    [9, T_LIM - 1n, true],
    [10, T_LIM - 1n, false],
    [11, T_LIM - 2n, true],
    [12, 2n, true],
    [13, 2n, false],
    [14, T_LIM + 16n, true],
    [15, 3n, false],
    [16, T_LIM + 16n, false],
    [17, T_LIM * 4n, true],
    [18, T_LIM * 4n - (T_LIM - 1n), true],
    [19, 10n, false],
    [20, T_LIM * 4n - T_LIM, false],
    [21, T_LIM * 4n - (T_LIM + 1n), false],
    [22, T_LIM * 4n - (T_LIM - 2n), true],
    [23, T_LIM * 4n + 1n - T_LIM, false],
    [24, 0n, false],
    [25, REJECT, false],
    [26, REJECT - 1n, true],
    [27, REJECT, false],
    [28, REJECT - 1n, false],
    [29, REJECT - 2n, true],
    [30, REJECT + 1n, false],
    [31, REJECT + 2n, false],
    [32, REJECT - 2n, false],
    [33, REJECT - 3n, true],
    [34, 0n, false],
  ];
  for (const [num, n, want] of table) {
    await t.step(`${num}: T(${n}) is ${want}`, () => {
      assert.equal(check(f, n), want);
    });
  }
});

Deno.test("ReplayFilter.validate() kernel bulk tests", async (t) => {
  const f = new ReplayFilter();
  await t.step("bulk 1: 1..W ascending, then 0 once", () => {
    f.reset();
    for (let i = 1n; i <= WINDOW; i++) assert.equal(check(f, i), true, `T(${i})`);
    assert.equal(check(f, 0n), true);
    assert.equal(check(f, 0n), false);
  });
  await t.step("bulk 2: 2..W+1 ascending, 1 fits, 0 is too old", () => {
    f.reset();
    for (let i = 2n; i <= WINDOW + 1n; i++) assert.equal(check(f, i), true, `T(${i})`);
    assert.equal(check(f, 1n), true);
    assert.equal(check(f, 0n), false);
  });
  await t.step("bulk 3: W..0 descending", () => {
    f.reset();
    for (let i = WINDOW; i >= 0n; i--) assert.equal(check(f, i), true, `T(${i})`);
  });
  await t.step("bulk 4: W+1..1 descending, then 0 is too old", () => {
    f.reset();
    for (let i = WINDOW + 1n; i >= 1n; i--) assert.equal(check(f, i), true, `T(${i})`);
    assert.equal(check(f, 0n), false);
  });
  await t.step("bulk 5: W..1 descending, W+1, then 0 is too old", () => {
    f.reset();
    for (let i = WINDOW; i >= 1n; i--) assert.equal(check(f, i), true, `T(${i})`);
    assert.equal(check(f, WINDOW + 1n), true);
    assert.equal(check(f, 0n), false);
  });
  await t.step("bulk 6: W..1 descending, 0, then W+1", () => {
    f.reset();
    for (let i = WINDOW; i >= 1n; i--) assert.equal(check(f, i), true, `T(${i})`);
    assert.equal(check(f, 0n), true);
    assert.equal(check(f, WINDOW + 1n), true);
  });
});

Deno.test("ReplayFilter.validate() is exact across the 2^32 carry", async (t) => {
  await t.step("window straddling 2^32 accepts both sides once", () => {
    const f = new ReplayFilter();
    const base = (1n << 32n) - 100n;
    for (let i = 0n; i < 200n; i++) assert.equal(check(f, base + i), true);
    for (let i = 0n; i < 200n; i++) assert.equal(check(f, base + i), false);
  });
  await t.step("descending through 2^32 from above", () => {
    const f = new ReplayFilter();
    const top = (1n << 32n) + 50n;
    for (let i = 0n; i <= WINDOW; i++) assert.equal(check(f, top - i), true, `T(top-${i})`);
    assert.equal(check(f, top - WINDOW - 1n), false);
  });
  await t.step("exactly WINDOW behind across the carry is accepted, WINDOW+1 is not", () => {
    const f = new ReplayFilter();
    const last = (1n << 32n) + 10n;
    assert.equal(check(f, last), true);
    assert.equal(check(f, last - WINDOW - 1n), false);
    assert.equal(check(f, last - WINDOW), true);
  });
  await t.step("low half equal but high half one apart is far behind", () => {
    const f = new ReplayFilter();
    assert.equal(check(f, (1n << 32n) + 5n), true);
    assert.equal(check(f, 5n), false);
    assert.equal(check(f, 4n), false);
    assert.equal(check(f, 6n), false);
  });
  await t.step("jump of exactly 2^32 clears the ring", () => {
    const f = new ReplayFilter();
    for (let i = 0n; i < 8192n; i++) assert.equal(check(f, i), true);
    // 2^32 + i uses the same ring bit as i; every one of them must be free.
    const top = (1n << 32n) + 8191n;
    assert.equal(check(f, top), true);
    for (let j = 1n; j <= WINDOW; j++) assert.equal(check(f, top - j), true, `top-${j}`);
  });
  await t.step("forward jump just below 2^32 is handled as a short move only when short", () => {
    const f = new ReplayFilter();
    const last = 0xfffffff0n;
    assert.equal(check(f, last), true);
    assert.equal(check(f, last - 64n), true);
    // Move forward by 80 (crossing the carry); last − 64 is still in the window.
    assert.equal(check(f, last + 80n), true);
    assert.equal(check(f, last - 64n), false);
    assert.equal(check(f, last - 63n), true);
  });
});

Deno.test("ReplayFilter.validate() is exact near 2^53", () => {
  const f = new ReplayFilter();
  const base = 1n << 53n;
  // Doubles cannot tell 2^53 from 2^53 + 1; the filter must.
  assert.equal(check(f, base), true);
  assert.equal(check(f, base + 1n), true);
  assert.equal(check(f, base + 1n), false);
  assert.equal(check(f, base), false);
  assert.equal(check(f, base - 1n), true);
  assert.equal(check(f, base + 3n), true);
  assert.equal(check(f, base + 2n), true);
  assert.equal(check(f, base + 2n), false);
  assert.equal(check(f, base + 3n - WINDOW), true);
  assert.equal(check(f, base + 2n - WINDOW), false);
});

Deno.test("ReplayFilter.validate() rejects counter ≥ REJECT_AFTER_MESSAGES", () => {
  const f = new ReplayFilter();
  for (const n of [REJECT, REJECT + 1n, (1n << 64n) - 1n, REJECT + 8191n]) {
    assert.equal(check(f, n), false, `T(${n})`);
  }
  assert.equal(check(f, REJECT - 1n), true);
  assert.equal(check(f, REJECT - 1n), false);
  assert.equal(check(f, REJECT - 1n - WINDOW), true);
  assert.equal(check(f, REJECT - 2n - WINDOW), false);
  // A rejected huge counter must not have moved the window.
  const g = new ReplayFilter();
  assert.equal(check(g, 5n), true);
  assert.equal(check(g, REJECT), false);
  assert.equal(check(g, 4n), true);
});

Deno.test("ReplayFilter.reset() forgets everything", () => {
  const f = new ReplayFilter();
  for (let i = 0n; i < 20000n; i += 7n) check(f, i);
  f.reset();
  for (let i = 0n; i < 300n; i++) assert.equal(check(f, i), true, `T(${i})`);
});

Deno.test("ReplayFilter.validate() matches a BigInt model under random traffic", async (t) => {
  // Bases where carries and precision matter.
  const bases: [string, bigint][] = [
    ["0", 0n],
    ["2^32 − 5000", (1n << 32n) - 5000n],
    ["2^53 − 3000", (1n << 53n) - 3000n],
    ["2^63", 1n << 63n],
    ["REJECT − 30000", REJECT - 30000n],
  ];
  const rnd = new RandomSource(seededRng(6479));
  for (const [name, base] of bases) {
    await t.step(`around ${name}`, () => {
      const f = new ReplayFilter();
      const seen = new Set<bigint>();
      let max = -1n;
      let cur = base;
      for (let i = 0; i < 40000; i++) {
        // Mostly small steps forward and back; sometimes a big jump.
        const r = rnd.int(100);
        let n: bigint;
        if (r < 60) n = cur + BigInt(rnd.int(200)) - 60n;
        else if (r < 90) n = cur - BigInt(rnd.int(9000));
        else if (r < 99) n = cur + BigInt(rnd.int(20000));
        else n = cur + (BigInt(rnd.u32()) << BigInt(rnd.int(8)));
        if (n < 0n) n = 0n;
        if (n >= 1n << 64n) n = (1n << 64n) - 1n;
        let want: boolean;
        if (n >= REJECT) want = false;
        else if (max >= 0n && n <= max && (max - n > WINDOW || seen.has(n))) want = false;
        else want = true;
        if (want) {
          seen.add(n);
          if (n > max) max = n;
        }
        assert.equal(check(f, n), want, `step ${i}: T(${n}) max=${max}`);
        if (want && n > cur) cur = n;
      }
    });
  }
});
