// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests of the glibc address text functions: fixed cases, and differential
 * runs against glibc's own inet_pton/inet_ntop through FFI when allowed.
 */
import assert from "node:assert/strict";
import { inetAtonExact, inetNtop6, inetPton4, inetPton6 } from "../../../cli/wg/inet.ts";
import { ignoreUnless } from "../../_util/needs.ts";

const PTON_CORPUS = [
  "1.2.3.4",
  "0.0.0.0",
  "255.255.255.255",
  "256.1.1.1",
  "01.2.3.4",
  "1.2.3",
  "1.2.3.4.5",
  "1..2.3",
  " 1.2.3.4",
  "1.2.3.4 ",
  "",
  "::",
  "::1",
  "1::",
  ":::",
  "1:2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7:8:9",
  "1:2:3:4:5:6:7::",
  "::2:3:4:5:6:7:8",
  "1::2::3",
  "::ffff:1.2.3.4",
  "::1.2.3.4",
  "1:2:3:4:5:6:1.2.3.4",
  "1:2:3:4:5:6:7:1.2.3.4",
  "::ffff:1.2.3",
  "fe80::1%lo",
  "FE80::ABCD",
  "12345::",
  "0000:0000::",
  "00000::",
  "1:",
  ":1",
  "1:2:3:4:5:6:7:",
  "::1.2.3.4.5",
  "1.2.3.4::",
];

Deno.test("inetPton4() is strict dotted quad", () => {
  assert.deepEqual(inetPton4("1.2.3.4"), new Uint8Array([1, 2, 3, 4]));
  assert.equal(inetPton4("01.2.3.4"), null);
  assert.equal(inetPton4("1.2.3"), null);
  assert.equal(inetPton4("256.0.0.0"), null);
});

Deno.test("inetAtonExact() takes getaddrinfo's numeric IPv4 forms", () => {
  assert.deepEqual(inetAtonExact("127.1"), new Uint8Array([127, 0, 0, 1]));
  assert.deepEqual(inetAtonExact("0x7f.1"), new Uint8Array([127, 0, 0, 1]));
  assert.deepEqual(inetAtonExact("010.0.0.1"), new Uint8Array([8, 0, 0, 1]));
  assert.deepEqual(inetAtonExact("4294967295"), new Uint8Array([255, 255, 255, 255]));
  assert.deepEqual(inetAtonExact("1.2.65535"), new Uint8Array([1, 2, 255, 255]));
  assert.equal(inetAtonExact("1.2.65536"), null);
  assert.equal(inetAtonExact("1.2.3.4.5"), null);
  assert.equal(inetAtonExact("1.2.3.4 "), null);
  assert.equal(inetAtonExact("08.1"), null);
  assert.equal(inetAtonExact("4294967296"), null);
});

Deno.test("inetNtop6() compresses like glibc", () => {
  const f = (s: string) => inetNtop6(inetPton6(s)!);
  assert.equal(f("0:0:0:0:0:0:0:1"), "::1");
  assert.equal(f("::"), "::");
  assert.equal(f("1:0:0:2:0:0:0:3"), "1:0:0:2::3");
  assert.equal(f("1:0:0:2:0:0:3:4"), "1::2:0:0:3:4");
  assert.equal(f("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
  assert.equal(f("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
  assert.equal(f("::1.2.3.4"), "::1.2.3.4");
  assert.equal(f("::0:1.2.3.4"), "::1.2.3.4");
  assert.equal(f("::fffe:1.2.3.4"), "::fffe:102:304");
  assert.equal(f("FE80::ABCD"), "fe80::abcd");
});

Deno.test({
  name: "inetPton4/inetPton6/inetNtop6() agree with glibc through FFI",
  ignore: ignoreUnless("test/cli/wg/inet_test.ts", { ffi: true }),
  fn() {
    const lib = Deno.dlopen("libc.so.6", {
      inet_pton: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
      inet_ntop: { parameters: ["i32", "buffer", "buffer", "u32"], result: "pointer" },
    });
    try {
      const cstr = (s: string) => new TextEncoder().encode(s + "\0");
      for (const s of PTON_CORPUS) {
        const out4 = new Uint8Array(4);
        const r4 = lib.symbols.inet_pton(2, cstr(s), out4);
        assert.deepEqual(inetPton4(s), r4 === 1 ? out4 : null, `v4 ${JSON.stringify(s)}`);
        const out6 = new Uint8Array(16);
        const r6 = lib.symbols.inet_pton(10, cstr(s), out6);
        assert.deepEqual(inetPton6(s), r6 === 1 ? out6 : null, `v6 ${JSON.stringify(s)}`);
      }
      // Random addresses biased towards zero groups, formatted by both.
      let seed = 12345;
      const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
      for (let n = 0; n < 3000; n++) {
        const a = new Uint8Array(16);
        for (let w = 0; w < 8; w++) {
          const kind = rnd() % 4;
          const v = kind === 0 ? rnd() & 0xffff : kind === 1 ? 0xffff : 0;
          a[2 * w] = v >> 8;
          a[2 * w + 1] = v & 0xff;
        }
        const buf = new Uint8Array(64);
        lib.symbols.inet_ntop(10, a, buf, 64);
        const want = new TextDecoder().decode(buf.subarray(0, buf.indexOf(0)));
        assert.equal(inetNtop6(a), want);
        assert.deepEqual(inetPton6(want), a);
      }
    } finally {
      lib.close();
    }
  },
});
