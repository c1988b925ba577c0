// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests of the C-library emulation: byte strings, ctype, strtoul (against
 * glibc's own through FFI when allowed), strerror and `%.2f` rounding.
 */
import assert from "node:assert/strict";
import {
  bstr,
  bstrBytes,
  bstrText,
  cFixed,
  charIsSpace,
  errnoOf,
  strerror,
  strncaseEqual,
  strtoul,
} from "../../../cli/wg/cstr.ts";
import { ignoreUnless } from "../../_util/needs.ts";

Deno.test("bstr() round-trips UTF-8 as one code unit per byte", () => {
  const s = bstr("wg-ü€");
  assert.equal(s.length, 3 + 2 + 3);
  assert.deepEqual([...bstrBytes(s)], [...new TextEncoder().encode("wg-ü€")]);
  assert.equal(bstrText(s), "wg-ü€");
  assert.equal(bstr("plain"), "plain");
});

Deno.test("charIsSpace() is wireguard-tools' set: \\t\\n\\v\\f\\r and space only", () => {
  const spaces = [9, 10, 11, 12, 13, 32];
  for (let c = 0; c < 256; c++) assert.equal(charIsSpace(c), spaces.includes(c), `byte ${c}`);
});

Deno.test("strncaseEqual() folds ASCII only", () => {
  assert.ok(strncaseEqual("LISTENPORT=1", "ListenPort=", 11));
  assert.ok(!strncaseEqual("ListenPorts", "ListenPort=", 11));
  assert.ok(!strncaseEqual("\xc4", "\xe4", 1));
});

const STRTOUL_CASES: [string, 0 | 10 | 16][] = [
  ["0", 10],
  ["42", 10],
  [" \t42x", 10],
  ["+7", 10],
  ["-0", 10],
  ["-1", 10],
  ["-65535", 10],
  ["18446744073709551615", 10],
  ["18446744073709551616", 10],
  ["99999999999999999999999", 10],
  ["", 10],
  ["x", 10],
  ["-", 10],
  ["0x10", 10],
  ["0x10", 16],
  ["0xg", 16],
  ["0x", 16],
  ["ff", 16],
  ["0x1f", 0],
  ["017", 0],
  ["08", 0],
  ["0x", 0],
  ["4294967296", 10],
];

Deno.test("strtoul() matches known glibc results", () => {
  const expect: Record<string, [bigint, number]> = {
    "42|10": [42n, 2],
    " \t42x|10": [42n, 4],
    "-1|10": [(1n << 64n) - 1n, 2],
    "-65535|10": [(1n << 64n) - 65535n, 6],
    "18446744073709551616|10": [(1n << 64n) - 1n, 20],
    "|10": [0n, 0],
    "-|10": [0n, 0],
    "0x10|10": [0n, 1],
    "0x10|16": [16n, 4],
    "0xg|16": [0n, 1],
    "017|0": [15n, 3],
    "08|0": [0n, 1],
  };
  for (const [k, [value, end]] of Object.entries(expect)) {
    const [s, base] = k.split("|");
    assert.deepEqual(strtoul(s, Number(base) as 0 | 10 | 16), { value, end }, k);
  }
});

Deno.test({
  name: "strtoul() agrees with glibc strtoul through FFI",
  ignore: ignoreUnless("test/cli/wg/cstr_test.ts", { ffi: true }),
  fn() {
    const lib = Deno.dlopen("libc.so.6", {
      strtoul: { parameters: ["buffer", "buffer", "i32"], result: "u64" },
    });
    try {
      for (const [s, base] of STRTOUL_CASES) {
        const buf = new Uint8Array(s.length + 1);
        buf.set(bstrBytes(s));
        const endp = new BigUint64Array(1);
        const v = lib.symbols.strtoul(buf, new Uint8Array(endp.buffer), base);
        const start = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
        const end = Number(endp[0] - start);
        assert.deepEqual(
          strtoul(s, base),
          { value: BigInt(v), end },
          `${JSON.stringify(s)} base ${base}`,
        );
      }
    } finally {
      lib.close();
    }
  },
});

Deno.test("strerror() has glibc's texts and its unknown-error form", () => {
  assert.equal(strerror(22), "Invalid argument");
  assert.equal(strerror(71), "Protocol error");
  assert.equal(strerror(93), "Protocol not supported");
  assert.equal(strerror(41), "Unknown error 41");
  assert.equal(strerror(-22), "Unknown error -22");
  assert.equal(strerror(-101), "Unknown error -101");
  assert.equal(strerror(5000), "Unknown error 5000");
});

Deno.test("errnoOf() reads the OS error of Deno errors", () => {
  try {
    Deno.openSync("/nonexistent-gtwg/x");
    assert.fail("opened");
  } catch (e) {
    assert.equal(errnoOf(e), 2);
  }
  assert.equal(errnoOf(new Error("plain")), 5);
});

Deno.test("cFixed() rounds the exact binary value half to even, like glibc printf", () => {
  const cases: [number, string][] = [
    [1.125, "1.12"],
    [1.135, "1.14"],
    [2.5, "2.50"],
    [0.005, "0.01"],
    [0.015, "0.01"],
    [0.025, "0.03"],
    [1.005, "1.00"],
    [1023.995, "1024.00"],
    [3.58318, "3.58"],
    [12.84, "12.84"],
    [2.675, "2.67"],
    [1e-9, "0.00"],
    [123456789.125, "123456789.12"],
    [0.125, "0.12"],
    [0.375, "0.38"],
    [287606570385477 / 1024, "280865791392.07"],
    [287606570385477 / 1024 / 1024, "274282999.41"],
    [777375316038199 / 1024, "759155582068.55"],
    [947460948389866 / 1024 / 1024, "903569172.28"],
  ];
  for (const [x, want] of cases) assert.equal(cFixed(x, 2), want, String(x));
  assert.equal(cFixed(7, 0), "7");
});
