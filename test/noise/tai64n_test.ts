// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for TAI64N labels: exact encodings, the kernel's 2^24 ns whitening,
 * and ordering (wireguard-go `tai64n/tai64n_test.go` TestMonotonic).
 */
import assert from "node:assert/strict";
import { tai64n, TAI64N_SIZE, tai64nAfter } from "../../src/noise/tai64n.ts";

const hex = (b: Uint8Array): string => b.toHex();

/** Reference encoding with BigInt: base + floor(secs), ns & ~(2^24 − 1). */
function reference(secs: bigint, ns: number): string {
  const s = BigInt.asUintN(64, 0x400000000000000an + secs);
  const n = (ns - (ns % 0x1000000)) >>> 0;
  return s.toString(16).padStart(16, "0") + n.toString(16).padStart(8, "0");
}

Deno.test("tai64n() encodes the epoch as the TAI64 base", () => {
  assert.equal(TAI64N_SIZE, 12);
  assert.equal(hex(tai64n(0)), "400000000000000a00000000");
});

Deno.test("tai64n() encodes known times exactly", async (t) => {
  const cases: [string, number, bigint, number][] = [
    ["1 s", 1000, 1n, 0],
    ["999 ms whitened down", 999, 0n, 999_000_000],
    ["2024-01-01 + 123.456789 ms", Date.UTC(2024, 0, 1) + 123.456789, 1704067200n, 123_456_789],
    ["2^32 − 11 s (low word about to carry)", (2 ** 32 - 11) * 1000, 2n ** 32n - 11n, 0],
    ["2^32 − 10 s (carry into high word)", (2 ** 32 - 10) * 1000 + 500, 2n ** 32n - 10n, 500e6],
    ["year 2200", Date.UTC(2200, 0, 1) + 999.9, BigInt(Date.UTC(2200, 0, 1) / 1000), 999_900_000],
    ["before the epoch floors seconds", -1500, -2n, 500e6],
  ];
  for (const [name, ms, secs, ns] of cases) {
    await t.step(name, () => {
      assert.equal(hex(tai64n(ms)), reference(secs, ns));
    });
  }
});

Deno.test("tai64n() whitens nanoseconds to multiples of 2^24", () => {
  for (let ms = 0; ms < 1000; ms += 0.37) {
    const b = tai64n(1_700_000_000_000 + ms);
    const ns = ((b[8] << 24) | (b[9] << 16) | (b[10] << 8) | b[11]) >>> 0;
    assert.equal(ns % 0x1000000, 0);
    assert.ok(ns <= ms * 1e6 + 1000, `ns ${ns} > ${ms} ms`);
    assert.ok(ms * 1e6 - ns < 0x1000000 + 1000, `ns ${ns} too far below ${ms} ms`);
  }
});

Deno.test("tai64n() writes into the given buffer", () => {
  const out = new Uint8Array(12).fill(0xee);
  const ret = tai64n(1000, out);
  assert.equal(ret, out);
  assert.equal(hex(out), "400000000000000b00000000");
  assert.throws(() => tai64n(0, new Uint8Array(11)), RangeError);
});

Deno.test("tai64nAfter() is strict, bytewise big-endian", async (t) => {
  const start = 123.456789; // Unix(0, 123456789) as in wireguard-go's test
  const cases: [string, number, boolean][] = [
    ["after_10_ns", 10e-6, false],
    ["after_10_us", 10e-3, false],
    ["after_1_ms", 1, false],
    ["after_10_ms", 10, false],
    ["after_20_ms", 20, true],
  ];
  for (const [name, delta, want] of cases) {
    await t.step(name, () => {
      assert.equal(tai64nAfter(tai64n(start + delta), tai64n(start)), want);
    });
  }
  await t.step("equal is not after", () => {
    assert.equal(tai64nAfter(tai64n(5000), tai64n(5000)), false);
  });
  await t.step("earlier is not after", () => {
    assert.equal(tai64nAfter(tai64n(5000), tai64n(6000)), false);
  });
  await t.step("a later second beats larger nanoseconds", () => {
    assert.equal(tai64nAfter(tai64n(2000), tai64n(1999)), true);
  });
  await t.step("carry into the high word orders correctly", () => {
    const before = tai64n((2 ** 32 - 11) * 1000 + 999);
    const after = tai64n((2 ** 32 - 10) * 1000);
    assert.equal(tai64nAfter(after, before), true);
    assert.equal(tai64nAfter(before, after), false);
  });
  await t.step("compares the first byte that differs", () => {
    const a = new Uint8Array(12), b = new Uint8Array(12);
    a[11] = 1;
    assert.equal(tai64nAfter(a, b), true);
    b[0] = 1;
    assert.equal(tai64nAfter(a, b), false);
    assert.equal(tai64nAfter(b, a), true);
  });
});
