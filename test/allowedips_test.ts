// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for the allowed-IPs trie: the kernel's static selftest
 * (`selftest/allowedips.c`, numbered as its `test()` calls) and wireguard-go's
 * remove cases (`device/allowedips_test.go`), ownership moves, per-value
 * ordering, and a randomized comparison against a naive linear-scan model
 * (kernel `horrible_allowedips`, wireguard-go `SlowRouter`).
 */
import assert from "node:assert/strict";
import { AllowedIps } from "../src/allowedips.ts";
import { formatIPv4, formatIPv6 } from "../src/ip.ts";
import { RandomSource, seededRng } from "./_util/fake_clock.ts";

function ip4(a: number, b: number, c: number, d: number): Uint8Array {
  return new Uint8Array([a, b, c, d]);
}

/** IPv6 from four big-endian u32 words, as the kernel's ip6(). */
function ip6(a: number, b: number, c: number, d: number): Uint8Array {
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, a >>> 0);
  dv.setUint32(4, b >>> 0);
  dv.setUint32(8, c >>> 0);
  dv.setUint32(12, d >>> 0);
  return out;
}

function fmt(e: { family: 4 | 6; ip: Uint8Array; cidr: number }): string {
  return `${e.family === 4 ? formatIPv4(e.ip) : formatIPv6(e.ip)}/${e.cidr}`;
}

type P = { name: string };

Deno.test("AllowedIps kernel selftest", async (t) => {
  const [a, b, c, d, e, f, g, h] = ["a", "b", "c", "d", "e", "f", "g", "h"].map((name) => ({
    name,
  }));
  const T = new AllowedIps<P>();
  T.insert(4, ip4(192, 168, 4, 0), 24, a);
  T.insert(4, ip4(192, 168, 4, 4), 32, b);
  T.insert(4, ip4(192, 168, 0, 0), 16, c);
  T.insert(4, ip4(192, 95, 5, 64), 27, d);
  // replaces previous entry, and maskself is required
  T.insert(4, ip4(192, 95, 5, 65), 27, c);
  T.insert(6, ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128, d);
  T.insert(6, ip6(0x26075300, 0x60006b00, 0, 0), 64, c);
  T.insert(4, ip4(0, 0, 0, 0), 0, e);
  T.insert(6, ip6(0, 0, 0, 0), 0, e);
  // replaces previous entry
  T.insert(6, ip6(0, 0, 0, 0), 0, f);
  T.insert(6, ip6(0x24046800, 0, 0, 0), 32, g);
  // maskself is required
  T.insert(6, ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), 64, h);
  T.insert(6, ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), 128, a);
  T.insert(6, ip6(0x24446800, 0x40e40800, 0xdeaebeef, 0xdefbeef), 128, c);
  T.insert(6, ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0), 98, b);
  T.insert(4, ip4(64, 15, 112, 0), 20, g);
  // maskself is required
  T.insert(4, ip4(64, 15, 123, 211), 25, h);
  T.insert(4, ip4(10, 0, 0, 0), 25, a);
  T.insert(4, ip4(10, 0, 0, 128), 25, b);
  T.insert(4, ip4(10, 1, 0, 0), 30, a);
  T.insert(4, ip4(10, 1, 0, 4), 30, b);
  T.insert(4, ip4(10, 1, 0, 8), 29, c);
  T.insert(4, ip4(10, 1, 0, 16), 29, d);

  let n = 0;
  async function test(want: P, family: 4 | 6, ip: Uint8Array, negative = false) {
    const num = ++n;
    const text = family === 4 ? formatIPv4(ip) : formatIPv6(ip);
    await t.step(`${num}: ${text} ${negative ? "is not" : "is"} ${want.name}`, () => {
      const got = T.lookup(family, ip);
      if (negative) assert.notEqual(got, want);
      else assert.equal(got, want);
    });
  }

  await test(a, 4, ip4(192, 168, 4, 20));
  await test(a, 4, ip4(192, 168, 4, 0));
  await test(b, 4, ip4(192, 168, 4, 4));
  await test(c, 4, ip4(192, 168, 200, 182));
  await test(c, 4, ip4(192, 95, 5, 68));
  await test(e, 4, ip4(192, 95, 5, 96));
  await test(d, 6, ip6(0x26075300, 0x60006b00, 0, 0xc05f0543));
  await test(c, 6, ip6(0x26075300, 0x60006b00, 0, 0xc02e01ee));
  await test(f, 6, ip6(0x26075300, 0x60006b01, 0, 0));
  await test(g, 6, ip6(0x24046800, 0x40040806, 0, 0x1006));
  await test(g, 6, ip6(0x24046800, 0x40040806, 0x1234, 0x5678));
  await test(f, 6, ip6(0x240467ff, 0x40040806, 0x1234, 0x5678));
  await test(f, 6, ip6(0x24046801, 0x40040806, 0x1234, 0x5678));
  await test(h, 6, ip6(0x24046800, 0x40040800, 0x1234, 0x5678));
  await test(h, 6, ip6(0x24046800, 0x40040800, 0, 0));
  await test(h, 6, ip6(0x24046800, 0x40040800, 0x10101010, 0x10101010));
  await test(a, 6, ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef));
  await test(g, 4, ip4(64, 15, 116, 26));
  await test(g, 4, ip4(64, 15, 127, 3));
  await test(g, 4, ip4(64, 15, 123, 1));
  await test(h, 4, ip4(64, 15, 123, 128));
  await test(h, 4, ip4(64, 15, 123, 129));
  await test(a, 4, ip4(10, 0, 0, 52));
  await test(b, 4, ip4(10, 0, 0, 220));
  await test(a, 4, ip4(10, 1, 0, 2));
  await test(b, 4, ip4(10, 1, 0, 6));
  await test(c, 4, ip4(10, 1, 0, 10));
  await test(d, 4, ip4(10, 1, 0, 20));

  T.insert(4, ip4(1, 0, 0, 0), 32, a);
  T.insert(4, ip4(64, 0, 0, 0), 32, a);
  T.insert(4, ip4(128, 0, 0, 0), 32, a);
  T.insert(4, ip4(192, 0, 0, 0), 32, a);
  T.insert(4, ip4(255, 0, 0, 0), 32, a);
  T.removeByValue(a);
  await test(a, 4, ip4(1, 0, 0, 0), true);
  await test(a, 4, ip4(64, 0, 0, 0), true);
  await test(a, 4, ip4(128, 0, 0, 0), true);
  await test(a, 4, ip4(192, 0, 0, 0), true);
  await test(a, 4, ip4(255, 0, 0, 0), true);

  T.clear();
  T.insert(4, ip4(192, 168, 0, 0), 16, a);
  T.insert(4, ip4(192, 168, 0, 0), 24, a);
  T.removeByValue(a);
  await test(a, 4, ip4(192, 168, 0, 1), true);

  await t.step("128 /128s differing in one bit each insert and free cleanly", () => {
    for (let i = 0; i < 128; i++) {
      const ip = new Uint8Array(16).fill(0xff);
      ip[i >> 3] &= ~(0x80 >> (i & 7));
      T.insert(6, ip, 128, a);
    }
    assert.equal(T.entriesFor(a).length, 128);
    for (let i = 0; i < 128; i++) {
      const ip = new Uint8Array(16).fill(0xff);
      ip[i >> 3] &= ~(0x80 >> (i & 7));
      assert.equal(T.lookup(6, ip), a);
    }
    assert.equal(T.lookup(6, new Uint8Array(16).fill(0xff)), undefined);
    T.removeByValue(a);
    assert.equal(T.entriesFor(a).length, 0);
    assert.equal(T.lookup(6, new Uint8Array(16).fill(0xff).fill(0xfe, 15)), undefined);
  });

  T.clear();
  T.insert(4, ip4(192, 95, 5, 93), 27, a);
  T.insert(6, ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128, a);
  T.insert(4, ip4(10, 1, 0, 20), 29, a);
  T.insert(6, ip6(0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523), 83, a);
  T.insert(6, ip6(0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523), 21, a);
  await t.step("entriesFor() lists the 5 masked prefixes in insertion order", () => {
    assert.deepEqual(T.entriesFor(a).map(fmt), [
      "192.95.5.64/27",
      "2607:5300:6000:6b00::c05f:543/128",
      "10.1.0.16/29",
      "2607:5300:6d8a:6bf8:dab1:e000::/83",
      "2607:5000::/21",
    ]);
  });
});

Deno.test("AllowedIps.remove() wireguard-go IPv4 cases", () => {
  const a = { name: "a" }, b = { name: "b" };
  const T = new AllowedIps<P>();
  T.insert(4, ip4(1, 0, 0, 0), 32, a);
  T.insert(4, ip4(192, 0, 0, 0), 24, a);
  assert.equal(T.lookup(4, ip4(1, 0, 0, 0)), a);
  assert.equal(T.lookup(4, ip4(192, 0, 0, 1)), a);
  assert.equal(T.remove(4, ip4(192, 0, 0, 0), 32, a), false, "no such /32");
  assert.equal(T.lookup(4, ip4(192, 0, 0, 1)), a);
  assert.equal(T.remove(4, ip4(192, 0, 0, 0), 24, b), false, "not b's");
  assert.equal(T.lookup(4, ip4(192, 0, 0, 1)), a);
  assert.equal(T.remove(4, ip4(192, 0, 0, 0), 24, a), true);
  assert.equal(T.lookup(4, ip4(192, 0, 0, 1)), undefined);
  assert.equal(T.remove(4, ip4(1, 0, 0, 0), 32, a), true);
  assert.equal(T.lookup(4, ip4(1, 0, 0, 0)), undefined);
  assert.deepEqual(T.entriesFor(a), []);
});

Deno.test("AllowedIps.remove() wireguard-go IPv6 cases", () => {
  const a = { name: "a" }, b = { name: "b" };
  const T = new AllowedIps<P>();
  const x = ip6(0x24446801, 0x40e40800, 0xdeaebeef, 0xdefbeef);
  const y = ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0);
  const yHost = ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0x10101010);
  T.insert(6, x, 128, a);
  T.insert(6, y, 98, a);
  assert.equal(T.lookup(6, x), a);
  assert.equal(T.lookup(6, yHost), a);
  assert.equal(T.remove(6, x, 96, a), false);
  assert.equal(T.lookup(6, x), a);
  assert.equal(T.remove(6, x, 128, b), false);
  assert.equal(T.lookup(6, x), a);
  assert.equal(T.remove(6, x, 128, a), true);
  assert.notEqual(T.lookup(6, x), a);
  assert.equal(T.remove(6, y, 98, b), false);
  assert.equal(T.lookup(6, yHost), a);
  assert.equal(T.remove(6, y, 98, a), true);
  assert.notEqual(T.lookup(6, yHost), a);
});

Deno.test("AllowedIps.remove() ignores host bits and keeps covering prefixes", () => {
  const a = { name: "a" }, b = { name: "b" };
  const T = new AllowedIps<P>();
  T.insert(4, ip4(10, 0, 0, 0), 8, a);
  T.insert(4, ip4(10, 1, 0, 0), 16, b);
  T.insert(4, ip4(10, 1, 2, 0), 24, a);
  assert.equal(T.remove(4, ip4(10, 1, 99, 99), 16, b), true);
  assert.equal(T.lookup(4, ip4(10, 1, 2, 3)), a);
  assert.equal(T.lookup(4, ip4(10, 1, 3, 3)), a, "falls back to the /8");
  assert.equal(T.remove(4, ip4(10, 0, 0, 0), 8, a), true);
  assert.equal(T.lookup(4, ip4(10, 1, 3, 3)), undefined);
  assert.equal(T.lookup(4, ip4(10, 1, 2, 3)), a);
  assert.deepEqual(T.entriesFor(a).map(fmt), ["10.1.2.0/24"]);
});

Deno.test("AllowedIps.insert() masks host bits", () => {
  const a = { name: "a" };
  const T = new AllowedIps<P>();
  T.insert(4, ip4(192, 168, 77, 99), 20, a);
  T.insert(6, ip6(0x20010db8, 0xffffffff, 1, 2), 33, a);
  T.insert(4, ip4(255, 255, 255, 255), 0, a);
  assert.deepEqual(T.entriesFor(a).map(fmt), [
    "192.168.64.0/20",
    "2001:db8:8000::/33",
    "0.0.0.0/0",
  ]);
  // Re-inserting the same prefix with other host bits is the same prefix.
  T.insert(4, ip4(192, 168, 64, 1), 20, a);
  assert.equal(T.entriesFor(a).length, 3);
});

Deno.test("AllowedIps.lookup() descends to full-length prefixes below /31 and /127", () => {
  const a = { name: "a" }, b = { name: "b" };
  const T = new AllowedIps<P>();
  T.insert(4, ip4(10, 0, 0, 2), 31, a);
  T.insert(4, ip4(10, 0, 0, 3), 32, b);
  T.insert(6, ip6(0xfd000000, 0, 0, 2), 127, a);
  T.insert(6, ip6(0xfd000000, 0, 0, 3), 128, b);
  assert.equal(T.lookup(4, ip4(10, 0, 0, 2)), a);
  assert.equal(T.lookup(4, ip4(10, 0, 0, 3)), b);
  assert.equal(T.lookup(4, ip4(10, 0, 0, 4)), undefined);
  assert.equal(T.lookup(6, ip6(0xfd000000, 0, 0, 2)), a);
  assert.equal(T.lookup(6, ip6(0xfd000000, 0, 0, 3)), b);
  assert.equal(T.lookup(6, ip6(0xfd000000, 0, 0, 1)), undefined);
});

Deno.test("AllowedIps.insert() moves a prefix owned by another value", () => {
  const a = { name: "a" }, b = { name: "b" };
  const T = new AllowedIps<P>();
  T.insert(4, ip4(10, 0, 0, 1), 32, a);
  T.insert(4, ip4(10, 0, 0, 2), 32, a);
  T.insert(4, ip4(10, 0, 0, 3), 32, b);
  T.insert(4, ip4(10, 0, 0, 1), 32, b);
  assert.equal(T.lookup(4, ip4(10, 0, 0, 1)), b);
  assert.deepEqual(T.entriesFor(a).map(fmt), ["10.0.0.2/32"]);
  assert.deepEqual(T.entriesFor(b).map(fmt), ["10.0.0.3/32", "10.0.0.1/32"], "appended");
  // Moving everything away leaves nothing listed for a.
  T.insert(4, ip4(10, 0, 0, 2), 32, b);
  assert.deepEqual(T.entriesFor(a), []);
  T.removeByValue(a); // no-op
  assert.equal(T.entriesFor(b).length, 3);
});

Deno.test("AllowedIps.insert() moves a re-inserted prefix to the end, as the kernel", () => {
  const a = { name: "a" };
  const T = new AllowedIps<P>();
  T.insert(4, ip4(10, 0, 0, 1), 32, a);
  T.insert(6, ip6(0xfd000000, 0, 0, 1), 128, a);
  T.insert(4, ip4(10, 0, 0, 2), 32, a);
  T.insert(4, ip4(10, 0, 0, 1), 32, a);
  assert.deepEqual(T.entriesFor(a).map(fmt), ["fd00::1/128", "10.0.0.2/32", "10.0.0.1/32"]);
});

Deno.test("AllowedIps.entriesFor() lists insertion order across families and returns copies", () => {
  const a = { name: "a" };
  const T = new AllowedIps<P>();
  const order = ["10.9.0.0/16", "::/0", "1.2.3.4/32", "fe80::/10", "0.0.0.0/0", "10.9.8.0/24"];
  T.insert(4, ip4(10, 9, 0, 0), 16, a);
  T.insert(6, new Uint8Array(16), 0, a);
  T.insert(4, ip4(1, 2, 3, 4), 32, a);
  T.insert(6, ip6(0xfe800000, 0, 0, 0), 10, a);
  T.insert(4, ip4(0, 0, 0, 0), 0, a);
  T.insert(4, ip4(10, 9, 8, 0), 24, a);
  const entries = T.entriesFor(a);
  assert.deepEqual(entries.map(fmt), order);
  entries[0].ip.fill(0xff);
  assert.deepEqual(T.entriesFor(a).map(fmt), order);
  assert.deepEqual(T.entriesFor({ name: "nobody" }), []);
});

Deno.test("AllowedIps.removeByValue() leaves other values intact", () => {
  const a = { name: "a" }, b = { name: "b" };
  const T = new AllowedIps<P>();
  T.insert(4, ip4(10, 0, 0, 0), 8, a);
  T.insert(4, ip4(10, 1, 0, 0), 16, b);
  T.insert(4, ip4(10, 1, 1, 0), 24, a);
  T.insert(6, ip6(0x20010db8, 0, 0, 0), 32, b);
  T.removeByValue(a);
  assert.equal(T.lookup(4, ip4(10, 1, 1, 1)), b);
  assert.equal(T.lookup(4, ip4(10, 2, 0, 0)), undefined);
  assert.equal(T.lookup(6, ip6(0x20010db8, 1, 2, 3)), b);
  assert.deepEqual(T.entriesFor(b).map(fmt), ["10.1.0.0/16", "2001:db8::/32"]);
  T.removeByValue(b);
  assert.equal(T.lookup(4, ip4(10, 1, 1, 1)), undefined);
  assert.equal(T.lookup(6, ip6(0x20010db8, 1, 2, 3)), undefined);
});

Deno.test("AllowedIps.lookup() reads at an offset inside a packet", () => {
  const a = { name: "a" }, b = { name: "b" };
  const T = new AllowedIps<P>();
  T.insert(4, ip4(192, 0, 2, 0), 24, a);
  T.insert(6, ip6(0x20010db8, 0, 0, 0), 64, b);
  const pkt4 = new Uint8Array(20);
  pkt4.set([192, 0, 2, 9], 12); // IPv4 source address
  pkt4.set([198, 51, 100, 1], 16); // IPv4 destination address
  assert.equal(T.lookup(4, pkt4, 12), a);
  assert.equal(T.lookup(4, pkt4, 16), undefined);
  const pkt6 = new Uint8Array(40);
  pkt6.set(ip6(0x20010db8, 0, 5, 6), 24); // IPv6 destination address
  assert.equal(T.lookup(6, pkt6, 24), b);
  assert.equal(T.lookup(6, pkt6, 8), undefined);
});

Deno.test("AllowedIps.lookup() never throws on short or odd input", () => {
  const a = { name: "a" };
  const T = new AllowedIps<P>();
  T.insert(4, ip4(0, 0, 0, 0), 0, a);
  T.insert(6, new Uint8Array(16), 0, a);
  assert.equal(T.lookup(4, new Uint8Array(3)), undefined);
  assert.equal(T.lookup(4, new Uint8Array(20), 17), undefined);
  assert.equal(T.lookup(4, new Uint8Array(20), -1), undefined);
  assert.equal(T.lookup(4, new Uint8Array(20), NaN), undefined);
  assert.equal(T.lookup(6, new Uint8Array(15)), undefined);
  assert.equal(T.lookup(6, new Uint8Array(40), 25), undefined);
  assert.equal(T.lookup(5 as 4, new Uint8Array(16)), undefined);
  assert.equal(T.lookup(4, new Uint8Array(4)), a);
  assert.equal(T.lookup(6, new Uint8Array(16)), a);
});

Deno.test("AllowedIps.insert() and remove() reject malformed prefixes", () => {
  const T = new AllowedIps<string>();
  assert.throws(() => T.insert(4, new Uint8Array(16), 8, "x"), RangeError);
  assert.throws(() => T.insert(6, new Uint8Array(4), 8, "x"), RangeError);
  assert.throws(() => T.insert(4, new Uint8Array(4), 33, "x"), RangeError);
  assert.throws(() => T.insert(6, new Uint8Array(16), 129, "x"), RangeError);
  assert.throws(() => T.insert(4, new Uint8Array(4), -1, "x"), RangeError);
  assert.throws(() => T.insert(4, new Uint8Array(4), 1.5, "x"), RangeError);
  assert.throws(() => T.insert(7 as 4, new Uint8Array(4), 1, "x"), RangeError);
  assert.throws(() => T.remove(4, new Uint8Array(4), 40, "x"), RangeError);
  assert.deepEqual(T.entriesFor("x"), []);
});

Deno.test("AllowedIps.clear() empties both families", () => {
  const a = { name: "a" };
  const T = new AllowedIps<P>();
  T.insert(4, ip4(0, 0, 0, 0), 0, a);
  T.insert(6, new Uint8Array(16), 0, a);
  T.clear();
  assert.equal(T.lookup(4, ip4(1, 2, 3, 4)), undefined);
  assert.equal(T.lookup(6, new Uint8Array(16)), undefined);
  assert.deepEqual(T.entriesFor(a), []);
  T.insert(4, ip4(1, 2, 3, 4), 32, a);
  assert.equal(T.lookup(4, ip4(1, 2, 3, 4)), a);
});

// ---- Randomized comparison against a naive model ----

interface ModelEntry {
  family: 4 | 6;
  ip: Uint8Array; // masked
  cidr: number;
  value: number;
  seq: number;
}

/** Linear-scan reference: longest matching prefix wins (kernel horrible_allowedips). */
class NaiveAllowedIps {
  entries = new Map<string, ModelEntry>();
  #seq = 0;

  static key(family: 4 | 6, ip: Uint8Array, cidr: number): string {
    return `${family}|${Array.from(ip).join(".")}|${cidr}`;
  }

  insert(family: 4 | 6, ip: Uint8Array, cidr: number, value: number): void {
    const m = mask(ip, cidr);
    const k = NaiveAllowedIps.key(family, m, cidr);
    // Re-inserting moves the prefix to the end of the value's list (kernel, wireguard-go).
    this.entries.set(k, { family, ip: m, cidr, value, seq: this.#seq++ });
  }

  remove(family: 4 | 6, ip: Uint8Array, cidr: number, value: number): boolean {
    const k = NaiveAllowedIps.key(family, mask(ip, cidr), cidr);
    const old = this.entries.get(k);
    if (!old || old.value !== value) return false;
    this.entries.delete(k);
    return true;
  }

  lookupExact(family: 4 | 6, ip: Uint8Array, cidr: number): number | undefined {
    return this.entries.get(NaiveAllowedIps.key(family, mask(ip, cidr), cidr))?.value;
  }

  removeByValue(value: number): void {
    for (const [k, e] of this.entries) if (e.value === value) this.entries.delete(k);
  }

  lookup(family: 4 | 6, ip: Uint8Array): number | undefined {
    let best: ModelEntry | undefined;
    for (const e of this.entries.values()) {
      if (e.family !== family || (best && best.cidr >= e.cidr)) continue;
      if (prefixContains(e.ip, e.cidr, ip)) best = e;
    }
    return best?.value;
  }

  entriesFor(value: number): string[] {
    return [...this.entries.values()].filter((e) => e.value === value)
      .sort((x, y) => x.seq - y.seq).map(fmt);
  }
}

function mask(ip: Uint8Array, cidr: number): Uint8Array {
  const out = ip.slice();
  for (let i = 0; i < out.length; i++) {
    const bits = cidr - 8 * i;
    if (bits <= 0) out[i] = 0;
    else if (bits < 8) out[i] &= 0xff << (8 - bits);
  }
  return out;
}

/** True when `ip` lies in `prefix/cidr` (prefix already masked), without allocating. */
function prefixContains(prefix: Uint8Array, cidr: number, ip: Uint8Array): boolean {
  for (let i = 0; i < prefix.length; i++) {
    const bits = cidr - 8 * i;
    if (bits <= 0) return true;
    const m = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip[i] & m) !== prefix[i]) return false;
  }
  return true;
}

/** Flips some bits of `base` after its first `keep` bits (kernel randomized_test mutation). */
function mutate(rnd: RandomSource, base: Uint8Array, keep: number): Uint8Array {
  const out = base.slice();
  const noise = rnd.bytes(out.length);
  for (let i = 0; i < out.length; i++) {
    const bits = keep - 8 * i;
    const m = bits >= 8 ? 0xff : bits <= 0 ? 0 : (0xff << (8 - bits)) & 0xff;
    out[i] = (out[i] & m) | (noise[i] & ~m);
  }
  return out;
}

Deno.test("AllowedIps matches a naive model under random operations", async (t) => {
  for (const family of [4, 6] as const) {
    for (const seed of [1, 2, 3, 4]) {
      await t.step(`IPv${family} seed ${seed}`, () => {
        const rnd = new RandomSource(seededRng(seed * 10 + family));
        const len = family === 4 ? 4 : 16;
        const bits = len * 8;
        const T = new AllowedIps<number>();
        const M = new NaiveAllowedIps();
        const values = 12;
        // A few clustered bases so prefixes nest, split and share branches.
        const bases = Array.from({ length: 6 }, () => rnd.bytes(len));
        const inserted: [Uint8Array, number][] = [];
        function randomAddr(): Uint8Array {
          const base = bases[rnd.int(bases.length)];
          return mutate(rnd, base, rnd.int(bits + 1));
        }
        const buf = new Uint8Array(len + 40);
        let hits = 0;
        function checkLookup(addr: Uint8Array, op: number): void {
          const off = rnd.int(41);
          buf.set(addr, off);
          const want = M.lookup(family, addr);
          if (want !== undefined) hits++;
          assert.equal(T.lookup(family, buf, off), want, `op ${op} lookup`);
        }
        for (let op = 0; op < 8000; op++) {
          const r = rnd.int(100);
          if (r < 55) {
            const ip = randomAddr();
            const cidr = rnd.int(bits + 1);
            const v = rnd.int(values);
            T.insert(family, ip, cidr, v);
            M.insert(family, ip, cidr, v);
            inserted.push([ip, cidr]);
          } else if (r < 80 && inserted.length > 0) {
            // Remove an earlier prefix, with its owner or a random value.
            const [ip, cidr] = inserted[rnd.int(inserted.length)];
            const host = mutate(rnd, ip, cidr);
            const owner = M.lookupExact(family, ip, cidr);
            const v = owner !== undefined && rnd.int(2) === 0 ? owner : rnd.int(values);
            assert.equal(
              T.remove(family, host, cidr, v),
              M.remove(family, host, cidr, v),
              `op ${op} remove`,
            );
          } else if (r < 83) {
            const v = rnd.int(values);
            T.removeByValue(v);
            M.removeByValue(v);
          } else if (r < 85) {
            const v = rnd.int(values);
            assert.deepEqual(T.entriesFor(v).map(fmt), M.entriesFor(v), `op ${op} entries`);
          }
          for (let q = 0; q < 5; q++) checkLookup(randomAddr(), op);
          if (inserted.length > 0) {
            const [ip, cidr] = inserted[rnd.int(inserted.length)];
            checkLookup(mutate(rnd, ip, cidr), op);
          }
        }
        for (let v = 0; v < values; v++) {
          assert.deepEqual(T.entriesFor(v).map(fmt), M.entriesFor(v), `final entries ${v}`);
        }
        // Tearing everything down by value must leave an empty table.
        for (let v = 0; v < values; v++) {
          T.removeByValue(v);
          M.removeByValue(v);
          for (let q = 0; q < 20; q++) checkLookup(randomAddr(), -1);
        }
        for (let q = 0; q < 200; q++) assert.equal(T.lookup(family, randomAddr()), undefined);
        // The walk must have exercised real matches, not just misses.
        assert.ok(hits > 10_000, `only ${hits} lookups hit a prefix`);
      });
    }
  }
});

Deno.test("AllowedIps keeps each value's order across both families under random operations", () => {
  // Both families in one table, so a value's list links entries of the two
  // tries; values empty out and come back (slots are reused), and tables
  // empty out and grow again.
  const rnd = new RandomSource(seededRng(99));
  const T = new AllowedIps<number>();
  const M = new NaiveAllowedIps();
  const values = 6;
  const bases = { 4: [rnd.bytes(4), rnd.bytes(4)], 6: [rnd.bytes(16), rnd.bytes(16)] };
  const inserted: [4 | 6, Uint8Array, number][] = [];
  function randomPrefix(): [4 | 6, Uint8Array, number] {
    const family = rnd.int(2) === 0 ? 4 : 6;
    const bits = family === 4 ? 32 : 128;
    const base = bases[family][rnd.int(2)];
    return [family, mutate(rnd, base, rnd.int(bits + 1)), rnd.int(bits + 1)];
  }
  for (let op = 0; op < 6000; op++) {
    const r = rnd.int(100);
    if (r < 50) {
      const [family, ip, cidr] = randomPrefix();
      const v = rnd.int(values);
      T.insert(family, ip, cidr, v);
      M.insert(family, ip, cidr, v);
      inserted.push([family, ip, cidr]);
    } else if (r < 85 && inserted.length > 0) {
      const [family, ip, cidr] = inserted[rnd.int(inserted.length)];
      const owner = M.lookupExact(family, ip, cidr);
      const v = owner !== undefined && rnd.int(3) !== 0 ? owner : rnd.int(values);
      assert.equal(T.remove(family, ip, cidr, v), M.remove(family, ip, cidr, v), `op ${op}`);
    } else if (r < 88) {
      const v = rnd.int(values);
      T.removeByValue(v);
      M.removeByValue(v);
    } else if (r < 89) {
      T.clear();
      M.entries.clear();
    } else {
      const v = rnd.int(values);
      assert.deepEqual(T.entriesFor(v).map(fmt), M.entriesFor(v), `op ${op} entries`);
    }
    const [family, ip] = randomPrefix();
    assert.equal(T.lookup(family, ip), M.lookup(family, ip), `op ${op} lookup`);
  }
  for (let v = 0; v < values; v++) assert.deepEqual(T.entriesFor(v).map(fmt), M.entriesFor(v));
});

Deno.test("AllowedIps holds, finds and frees a table of 140 000 prefixes", () => {
  const a = { name: "a" }, b = { name: "b" };
  const T = new AllowedIps<P>();
  const ip = new Uint8Array(4);
  function at(i: number): Uint8Array {
    ip.set([10, i >>> 16, (i >>> 8) & 0xff, i & 0xff]);
    return ip;
  }
  const n = 140_000;
  for (let i = 0; i < n; i++) T.insert(4, at(i), 32, i % 2 === 0 ? a : b);
  T.insert(4, at(0), 8, b);
  for (let i = 0; i < n; i += 997) assert.equal(T.lookup(4, at(i)), i % 2 === 0 ? a : b);
  assert.equal(T.lookup(4, at(n + 5)), b, "falls back to the /8");
  assert.equal(T.lookup(4, ip4(11, 0, 0, 0)), undefined);
  for (let i = 0; i < n; i += 2) assert.equal(T.remove(4, at(i), 32, a), true);
  assert.deepEqual(T.entriesFor(a), []);
  assert.equal(T.entriesFor(b).length, n / 2 + 1);
  assert.equal(T.lookup(4, at(4)), b);
  T.removeByValue(b);
  assert.equal(T.lookup(4, at(1)), undefined);
  T.insert(4, at(7), 32, a);
  assert.deepEqual(T.entriesFor(a).map(fmt), ["10.0.0.7/32"]);
});
