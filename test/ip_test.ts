// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for IP text parsing and formatting against Go `net/netip` behaviour:
 * what `netip.ParseAddr`/`ParsePrefix` accept and how `Addr.String()` prints
 * (RFC 5952, IPv4-mapped as `::ffff:a.b.c.d`).
 */
import assert from "node:assert/strict";
import {
  formatIPv4,
  formatIPv6,
  formatPrefix,
  parseIPv4,
  parseIPv6,
  parsePrefix,
} from "../src/ip.ts";
import { RandomSource, seededRng } from "./_util/fake_clock.ts";

function bytes(...b: number[]): Uint8Array {
  return new Uint8Array(b);
}

/** 16 bytes from eight 16-bit groups. */
function groups(...g: number[]): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = g[i] >> 8;
    out[2 * i + 1] = g[i] & 0xff;
  }
  return out;
}

Deno.test("parseIPv4() accepts dotted quads", async (t) => {
  const ok: [string, Uint8Array][] = [
    ["0.0.0.0", bytes(0, 0, 0, 0)],
    ["255.255.255.255", bytes(255, 255, 255, 255)],
    ["1.2.3.4", bytes(1, 2, 3, 4)],
    ["192.168.100.10", bytes(192, 168, 100, 10)],
  ];
  for (const [text, want] of ok) {
    await t.step(text, () => assert.deepEqual(parseIPv4(text), want));
  }
});

Deno.test("parseIPv4() rejects what Go rejects", async (t) => {
  const bad = [
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.0.0.0",
    "1.2.3.256",
    "01.2.3.4",
    "1.2.3.04",
    "1.2.3.00",
    "1..2.3",
    "1.2.3.",
    ".1.2.3",
    " 1.2.3.4",
    "1.2.3.4 ",
    "a.b.c.d",
    "1.2.3.-4",
    "+1.2.3.4",
    "1.2.3.4/8",
    "0x1.2.3.4",
    "1e1.2.3.4",
    "1.2.3.1000",
    "\uff11.2.3.4",
    "1.2.3.4:80",
    "::1",
  ];
  for (const text of bad) {
    await t.step(JSON.stringify(text), () => assert.equal(parseIPv4(text), null));
  }
});

Deno.test("parseIPv6() accepts RFC 4291 text forms", async (t) => {
  const ok: [string, Uint8Array][] = [
    ["::", new Uint8Array(16)],
    ["::1", groups(0, 0, 0, 0, 0, 0, 0, 1)],
    ["1::", groups(1, 0, 0, 0, 0, 0, 0, 0)],
    ["2001:db8::1", groups(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)],
    ["2001:DB8::A:b", groups(0x2001, 0xdb8, 0, 0, 0, 0, 0xa, 0xb)],
    ["1:2:3:4:5:6:7:8", groups(1, 2, 3, 4, 5, 6, 7, 8)],
    ["0001:0002:0003:0004:0005:0006:0007:0008", groups(1, 2, 3, 4, 5, 6, 7, 8)],
    ["1::2:3:4:5:6:7", groups(1, 0, 2, 3, 4, 5, 6, 7)],
    ["1:2:3:4:5:6:7::", groups(1, 2, 3, 4, 5, 6, 7, 0)],
    ["::2:3:4:5:6:7:8", groups(0, 2, 3, 4, 5, 6, 7, 8)],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", new Uint8Array(16).fill(0xff)],
    ["::ffff:1.2.3.4", groups(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304)],
    ["::1.2.3.4", groups(0, 0, 0, 0, 0, 0, 0x0102, 0x0304)],
    ["1:2:3:4:5:6:1.2.3.4", groups(1, 2, 3, 4, 5, 6, 0x0102, 0x0304)],
    ["1:2:3:4:5::1.2.3.4", groups(1, 2, 3, 4, 5, 0, 0x0102, 0x0304)],
    ["64:ff9b::192.0.2.33", groups(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x0221)],
  ];
  for (const [text, want] of ok) {
    await t.step(text, () => assert.deepEqual(parseIPv6(text), want));
  }
});

Deno.test("parseIPv6() rejects what Go rejects", async (t) => {
  const bad = [
    "",
    ":",
    ":::",
    "1::2::3",
    "::1::",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
    "1:2:3:4::5:6:7:8",
    "12345::",
    "g::",
    ":1::",
    "1:",
    ":1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:",
    "1::2:",
    "::1.2.3.4:5",
    "1.2.3.4::",
    "::1.2.3",
    "::ffff:1.2.3.04",
    "::ffff:256.1.1.1",
    "1:2:3:4:5:6:7:1.2.3.4",
    "1:2:3:4:5:6:7::1.2.3.4",
    "1.2.3.4:1::",
    "fe80::1%eth0",
    "fe80::1%",
    "[::1]",
    " ::1",
    "::1 ",
    "::-1",
    "::+1",
    "0x1::",
    "1.2.3.4",
  ];
  for (const text of bad) {
    await t.step(JSON.stringify(text), () => assert.equal(parseIPv6(text), null));
  }
});

Deno.test("formatIPv4() prints dotted decimal", () => {
  assert.equal(formatIPv4(bytes(0, 0, 0, 0)), "0.0.0.0");
  assert.equal(formatIPv4(bytes(10, 0, 255, 1)), "10.0.255.1");
});

Deno.test("formatIPv6() prints RFC 5952 text as Go", async (t) => {
  const cases: [Uint8Array, string][] = [
    [new Uint8Array(16), "::"],
    [groups(0, 0, 0, 0, 0, 0, 0, 1), "::1"],
    [groups(1, 0, 0, 0, 0, 0, 0, 0), "1::"],
    [groups(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), "2001:db8::1"],
    [groups(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1), "2001:db8::1:0:0:1"], // tie: leftmost run
    [groups(0x2001, 0, 0, 1, 0, 0, 0, 1), "2001:0:0:1::1"], // longest run wins
    [groups(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1), "2001:db8:0:1:1:1:1:1"], // lone 0 stays
    [groups(0, 1, 0, 1, 0, 1, 0, 1), "0:1:0:1:0:1:0:1"],
    [groups(1, 0, 0, 2, 0, 0, 0, 3), "1:0:0:2::3"],
    [groups(0xabcd, 0, 0, 0, 0, 0, 0, 0xff), "abcd::ff"], // lowercase, no leading zeros
    [groups(1, 2, 3, 4, 5, 6, 7, 8), "1:2:3:4:5:6:7:8"],
    [groups(0xfe80, 0, 0, 0, 0x1ff, 0xfe23, 0x4567, 0x890a), "fe80::1ff:fe23:4567:890a"],
    [groups(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304), "::ffff:1.2.3.4"], // IPv4-mapped
    [groups(0, 0, 0, 0, 0, 0xffff, 0, 0), "::ffff:0.0.0.0"],
    [groups(0, 0, 0, 0, 0, 0, 0x0102, 0x0304), "::102:304"], // IPv4-compatible is not special
    [groups(0, 0, 0, 0, 0xffff, 0, 0x0102, 0x0304), "::ffff:0:102:304"],
    [groups(0, 0, 0, 0, 1, 0xffff, 0x0102, 0x0304), "::1:ffff:102:304"],
    [groups(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x0221), "64:ff9b::c000:221"],
  ];
  for (const [b, want] of cases) {
    await t.step(want, () => assert.equal(formatIPv6(b), want));
  }
});

Deno.test("formatIPv6() output parses back to the same bytes", () => {
  const rnd = new RandomSource(seededRng(5952));
  for (let n = 0; n < 5000; n++) {
    // Mostly-zero groups so that every compression case comes up.
    const g: number[] = [];
    for (let i = 0; i < 8; i++) g.push(rnd.int(3) === 0 ? rnd.int(0x10000) : 0);
    const b = groups(...g);
    const text = formatIPv6(b);
    assert.deepEqual(parseIPv6(text), b, text);
    assert.ok(!/(^|:)0[0-9a-f]/.test(text), `leading zero in ${text}`);
    assert.ok(!/::.*::/.test(text), text);
  }
});

Deno.test("parsePrefix() accepts netip.ParsePrefix forms", async (t) => {
  const ok: [string, 4 | 6, Uint8Array, number][] = [
    ["10.0.0.0/8", 4, bytes(10, 0, 0, 0), 8],
    ["0.0.0.0/0", 4, bytes(0, 0, 0, 0), 0],
    ["1.2.3.4/32", 4, bytes(1, 2, 3, 4), 32],
    ["10.1.2.3/8", 4, bytes(10, 1, 2, 3), 8], // host bits kept
    ["::/0", 6, new Uint8Array(16), 0],
    ["::1/128", 6, groups(0, 0, 0, 0, 0, 0, 0, 1), 128],
    ["2001:db8::/32", 6, groups(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32],
    ["::ffff:1.2.3.4/96", 6, groups(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304), 96],
    ["fd00::1/100", 6, groups(0xfd00, 0, 0, 0, 0, 0, 0, 1), 100],
  ];
  for (const [text, family, ip, cidr] of ok) {
    await t.step(text, () => assert.deepEqual(parsePrefix(text), { family, ip, cidr }));
  }
});

Deno.test("parsePrefix() rejects what netip.ParsePrefix rejects", async (t) => {
  const bad = [
    "",
    "10.0.0.0",
    "10.0.0.0/",
    "/8",
    "10.0.0.0/33",
    "::/129",
    "10.0.0.0/08",
    "::/00",
    "::/0128",
    "10.0.0.0/-1",
    "10.0.0.0/+8",
    "10.0.0.0/ 8",
    "10.0.0.0/8 ",
    "10.0.0.0/8/8",
    "10.0.0.0/0x8",
    "10.0.0.0/3.0",
    "10.0.0.0/1000",
    "10.0.0.0/99999999999999999999",
    "1.2.3/8",
    "01.2.3.4/8",
    "fe80::1%eth0/64",
    "fe80::1%1/64",
    "[::1]/128",
    "::ffff:1.2.3.4/129",
  ];
  for (const text of bad) {
    await t.step(JSON.stringify(text), () => assert.equal(parsePrefix(text), null));
  }
});

Deno.test("formatPrefix() prints as given, unmasked", () => {
  assert.equal(formatPrefix(4, bytes(10, 1, 2, 3), 8), "10.1.2.3/8");
  assert.equal(formatPrefix(4, bytes(0, 0, 0, 0), 0), "0.0.0.0/0");
  assert.equal(formatPrefix(6, new Uint8Array(16), 0), "::/0");
  assert.equal(formatPrefix(6, groups(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 32), "2001:db8::1/32");
  assert.equal(
    formatPrefix(6, groups(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304), 96),
    "::ffff:1.2.3.4/96",
  );
  for (const text of ["192.168.4.0/24", "fe80::1ff:fe23:4567:890a/64", "::/0", "::1/128"]) {
    const p = parsePrefix(text)!;
    assert.equal(formatPrefix(p.family, p.ip, p.cidr), text);
  }
});
