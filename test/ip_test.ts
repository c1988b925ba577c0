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
  parsePrefixInto,
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

// ---- differential tests against the original split/regex implementation ----

/*
 * The parsers and formatters were rewritten to work on char codes without
 * allocating (a UAPI `set` may carry 130 560 allowed IPs). These are the
 * original, obviously-correct versions, kept here as the oracle.
 */

function refParseIPv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^[0-9]{1,3}$/.test(p) || (p.length > 1 && p[0] === "0")) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function refParseIPv6(text: string): Uint8Array | null {
  if (text.length === 0 || text.length > 45) return null;
  const out = new Uint8Array(16);
  let head: string[];
  let tail: string[];
  const dbl = text.indexOf("::");
  if (dbl >= 0) {
    if (text.indexOf("::", dbl + 1) >= 0) return null;
    head = text.slice(0, dbl) === "" ? [] : text.slice(0, dbl).split(":");
    tail = text.slice(dbl + 2) === "" ? [] : text.slice(dbl + 2).split(":");
  } else {
    head = text.split(":");
    tail = [];
  }
  const groups: number[][] = [[], []];
  const sides = [head, tail];
  let count = 0;
  for (let s = 0; s < 2; s++) {
    const side = sides[s];
    for (let i = 0; i < side.length; i++) {
      const g = side[i];
      const last = (dbl < 0 ? s === 0 : s === 1) && i === side.length - 1;
      if (g.includes(".")) {
        if (!last) return null;
        const v4 = refParseIPv4(g);
        if (!v4) return null;
        groups[s].push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
        count += 2;
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      groups[s].push(parseInt(g, 16));
      count++;
    }
  }
  if (dbl >= 0 ? count > 7 : count !== 8) return null;
  let o = 0;
  for (const g of groups[0]) {
    out[o++] = g >> 8;
    out[o++] = g & 0xff;
  }
  o = 16 - groups[1].length * 2;
  for (const g of groups[1]) {
    out[o++] = g >> 8;
    out[o++] = g & 0xff;
  }
  return out;
}

function refParsePrefix(text: string): { family: 4 | 6; ip: Uint8Array; cidr: number } | null {
  const slash = text.lastIndexOf("/");
  if (slash < 0) return null;
  const addr = text.slice(0, slash);
  const bits = text.slice(slash + 1);
  if (addr.includes("%")) return null;
  const family = addr.includes(":") ? 6 : 4;
  const ip = family === 4 ? refParseIPv4(addr) : refParseIPv6(addr);
  if (ip === null) return null;
  if (!/^(?:0|[1-9][0-9]{0,2})$/.test(bits)) return null;
  const cidr = Number(bits);
  if (cidr > (family === 4 ? 32 : 128)) return null;
  return { family, ip, cidr };
}

function refFormatIPv6(a: Uint8Array): string {
  let mapped = a[10] === 0xff && a[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (a[i] !== 0) mapped = false;
  if (mapped) return `::ffff:${formatIPv4(a.subarray(12))}`;
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((a[i] << 8) | a[i + 1]);
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return g.map((x) => x.toString(16)).join(":");
  const left = g.slice(0, bestStart).map((x) => x.toString(16)).join(":");
  const right = g.slice(bestStart + bestLen).map((x) => x.toString(16)).join(":");
  return `${left}::${right}`;
}

/** Pieces that make up near-miss addresses: every edge the parsers special-case. */
const ATOMS = [
  "0",
  "1",
  "00",
  "01",
  "09",
  "255",
  "256",
  "999",
  "1000",
  "1.2.3.4",
  "192.168.0.1",
  "0.0.0.0",
  ".",
  "..",
  ":",
  "::",
  ":::",
  "ffff",
  "FFFF",
  "fFfF",
  "fffff",
  "0000",
  "00000",
  "abcd",
  "1:2",
  "::ffff:",
  "/",
  "/0",
  "/32",
  "/33",
  "/128",
  "/129",
  "/08",
  "/00",
  "/1000",
  "/-1",
  "/+1",
  "%eth0",
  "%",
  "1.2.3",
  "1.2.3.4.5",
  "g",
  "G",
  " ",
  "\t",
  "-",
  "+",
  "::1",
  "1::",
  "1:2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7",
  "1:2:3:4:5:6:7:8:9",
  "1:2:3:4:5:6:1.2.3.4",
  "0:0:0:0:0:0:0:0:0",
  "\u0660",
  "\uff10",
  "\ufeff",
  "x",
  "0x1",
  "1e2",
];

/** Random addresses that are mostly valid: random groups, some compressed, some mapped, some zero runs. */
function randomPrefixText(rnd: RandomSource): string {
  const bits = rnd.int(4) === 0 ? String(rnd.int(1000)) : String(rnd.int(130));
  if (rnd.int(2) === 0) {
    const q = [0, 1, 2, 3].map(() => String(rnd.int(4) === 0 ? rnd.int(300) : rnd.int(256)));
    return `${q.join(".")}/${bits}`;
  }
  const g: string[] = [];
  for (let i = 0; i < 8; i++) {
    const v = rnd.int(3) === 0 ? 0 : rnd.int(0x10000);
    let h = v.toString(16);
    if (rnd.int(8) === 0) h = h.padStart(4, "0");
    if (rnd.int(8) === 0) h = h.toUpperCase();
    g.push(h);
  }
  if (rnd.int(4) === 0) {
    g.splice(6, 2, `${rnd.int(256)}.${rnd.int(256)}.${rnd.int(256)}.${rnd.int(256)}`);
  }
  let text = g.join(":");
  if (rnd.int(2) === 0) {
    const a = rnd.int(g.length + 1);
    const b = a + rnd.int(g.length - a + 1);
    text = g.slice(0, a).join(":") + "::" + g.slice(b).join(":");
  }
  return `${text}/${bits}`;
}

/** Random near-misses: concatenated atoms, then maybe one random character edit. */
function randomJunkText(rnd: RandomSource): string {
  let text = "";
  const n = 1 + rnd.int(5);
  for (let i = 0; i < n; i++) text += ATOMS[rnd.int(ATOMS.length)];
  if (rnd.int(2) === 0) text += ["/0", "/32", "/128", "/64", "/1", "/33"][rnd.int(6)];
  return text;
}

/** One random character inserted, deleted or replaced. */
function mutate(rnd: RandomSource, text: string): string {
  const at = rnd.int(text.length + 1);
  const c = "0123456789abcdefABCDEF.:/%-x "[rnd.int(29)];
  switch (rnd.int(3)) {
    case 0:
      return text.slice(0, at) + c + text.slice(at);
    case 1:
      return text.slice(0, at) + text.slice(at + 1);
    default:
      return text.slice(0, at) + c + text.slice(at + 1);
  }
}

function show(p: { family: number; ip: Uint8Array; cidr: number } | null): string {
  return p === null ? "null" : `${p.family} ${p.ip.join(",")} /${p.cidr}`;
}

Deno.test("parsePrefixInto() accepts and rejects exactly what the reference parser does", () => {
  const rnd = new RandomSource(seededRng(0x9e1f));
  // Poisoned on purpose: a result must not depend on what the buffers held.
  const v4 = new Uint8Array(4);
  const v6 = new Uint8Array(16);
  let valid = 0;
  let invalid = 0;
  function check(text: string): void {
    const want = refParsePrefix(text);
    v4.fill(0xee);
    v6.fill(0xee);
    const r = parsePrefixInto(text, v4, v6);
    const got = r < 0
      ? null
      : { family: r >> 8, ip: (r >> 8) === 4 ? v4.slice() : v6.slice(), cidr: r & 0xff };
    assert.equal(show(got), show(want), JSON.stringify(text));
    assert.equal(show(parsePrefix(text)), show(want), JSON.stringify(text));
    // With an offset (UAPI's `-ip/cidr`), the same answer.
    const r2 = parsePrefixInto("-" + text, v4, v6, 1);
    assert.equal(r2, r, JSON.stringify(text));
    if (want) valid++;
    else invalid++;
  }
  for (let n = 0; n < 20000; n++) {
    const good = randomPrefixText(rnd);
    check(good);
    check(mutate(rnd, good));
    check(randomJunkText(rnd));
    check(mutate(rnd, randomJunkText(rnd)));
  }
  // Both sides were exercised in earnest.
  assert.ok(valid > 10000, `only ${valid} valid cases`);
  assert.ok(invalid > 30000, `only ${invalid} invalid cases`);
});

Deno.test("parseIPv4()/parseIPv6() agree with the reference parsers", () => {
  const rnd = new RandomSource(seededRng(4291));
  for (let n = 0; n < 20000; n++) {
    for (const text of [randomPrefixText(rnd), randomJunkText(rnd)]) {
      for (
        const t of [text, text.slice(0, Math.max(0, text.lastIndexOf("/"))), mutate(rnd, text)]
      ) {
        assert.equal(String(parseIPv4(t)), String(refParseIPv4(t)), JSON.stringify(t));
        assert.equal(String(parseIPv6(t)), String(refParseIPv6(t)), JSON.stringify(t));
      }
    }
  }
});

Deno.test("formatIPv6() agrees with the reference formatter", () => {
  const rnd = new RandomSource(seededRng(5953));
  const a = new Uint8Array(16);
  for (let n = 0; n < 50000; n++) {
    for (let i = 0; i < 16; i += 2) {
      // Zero groups, small groups and full groups, so that every run shape occurs.
      const kind = rnd.int(4);
      const v = kind < 2 ? 0 : kind === 2 ? rnd.int(16) : rnd.int(0x10000);
      a[i] = v >> 8;
      a[i + 1] = v & 0xff;
    }
    if (rnd.int(16) === 0) a.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    assert.equal(formatIPv6(a), refFormatIPv6(a), a.join(","));
  }
});
