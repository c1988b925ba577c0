// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for Endpoint text handling as Go's `netip.ParseAddrPort` /
 * `AddrPort.String()` (what wireguard-go's `ParseEndpoint` and UAPI `get`
 * use), plus equality and copying.
 */
import assert from "node:assert/strict";
import { Endpoint } from "../../src/conn/endpoint.ts";

Deno.test("Endpoint.parse() accepts numeric ip:port forms", async (t) => {
  const ok: [string, 4 | 6, number[], number, string, number, string][] = [
    ["1.2.3.4:51820", 4, [1, 2, 3, 4], 51820, "", 0, "1.2.3.4:51820"],
    ["0.0.0.0:0", 4, [0, 0, 0, 0], 0, "", 0, "0.0.0.0:0"],
    ["255.255.255.255:65535", 4, [255, 255, 255, 255], 65535, "", 0, "255.255.255.255:65535"],
    ["1.2.3.4:0080", 4, [1, 2, 3, 4], 80, "", 0, "1.2.3.4:80"], // ParseUint allows leading zeros
    ["[::1]:51820", 6, [...new Array(15).fill(0), 1], 51820, "", 0, "[::1]:51820"],
    [
      "[2001:0DB8:0:0::1]:1",
      6,
      [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1],
      1,
      "",
      0,
      "[2001:db8::1]:1",
    ],
    [
      "[fe80::1%eth0]:51820",
      6,
      [0xfe, 0x80, ...new Array(13).fill(0), 1],
      51820,
      "eth0",
      0,
      "[fe80::1%eth0]:51820",
    ],
    [
      "[fe80::1%7]:51820",
      6,
      [0xfe, 0x80, ...new Array(13).fill(0), 1],
      51820,
      "7",
      7,
      "[fe80::1%7]:51820",
    ],
    [
      "[::ffff:1.2.3.4]:80",
      6,
      [...new Array(10).fill(0), 0xff, 0xff, 1, 2, 3, 4],
      80,
      "",
      0,
      "[::ffff:1.2.3.4]:80",
    ],
  ];
  for (const [text, family, address, port, zone, scopeId, str] of ok) {
    await t.step(text, () => {
      const e = Endpoint.parse(text);
      assert.equal(e.family, family);
      assert.deepEqual(e.address, new Uint8Array(address));
      assert.equal(e.port, port);
      assert.equal(e.zone, zone);
      assert.equal(e.scopeId, scopeId);
      assert.equal(e.srcAddress, null);
      assert.equal(e.srcIfindex, 0);
      assert.equal(e.toString(), str);
    });
  }
});

Deno.test("Endpoint.parse() rejects what netip.ParseAddrPort rejects", async (t) => {
  const bad = [
    "",
    "1.2.3.4",
    "1.2.3.4:",
    ":80",
    "1.2.3.4:65536",
    "1.2.3.4:99999",
    "1.2.3.4:-1",
    "1.2.3.4:+1",
    "1.2.3.4:80 ",
    " 1.2.3.4:80",
    "1.2.3.4:0x50",
    "01.2.3.4:80",
    "256.2.3.4:80",
    "[1.2.3.4]:80",
    "::1:80",
    "[::1]80",
    "[::1]",
    "[::1]:",
    "[::1%]:80",
    "[::1:80",
    "[::1]:80x",
    "example.com:80",
    "[fe80::1]:80:80",
  ];
  for (const text of bad) {
    await t.step(JSON.stringify(text), () => {
      assert.throws(() => Endpoint.parse(text), TypeError);
    });
  }
});

Deno.test("Endpoint constructor checks the address length", () => {
  assert.throws(() => new Endpoint(4, new Uint8Array(16), 1), RangeError);
  assert.throws(() => new Endpoint(6, new Uint8Array(4), 1), RangeError);
});

Deno.test("Endpoint.equals() compares address, port and zone, not the sticky source", () => {
  const a = Endpoint.parse("192.0.2.1:51820");
  assert.equal(a.equals(Endpoint.parse("192.0.2.1:51820")), true);
  assert.equal(a.equals(Endpoint.parse("192.0.2.1:51821")), false);
  assert.equal(a.equals(Endpoint.parse("192.0.2.2:51820")), false);
  assert.equal(a.equals(Endpoint.parse("[::ffff:192.0.2.1]:51820")), false, "families differ");
  assert.equal(a.equals(null), false);
  assert.equal(a.equals(undefined), false);
  const b = Endpoint.parse("192.0.2.1:51820");
  b.srcAddress = new Uint8Array([10, 0, 0, 1]);
  b.srcIfindex = 3;
  assert.equal(a.equals(b), true);
  const z1 = Endpoint.parse("[fe80::1%eth0]:1");
  assert.equal(z1.equals(Endpoint.parse("[fe80::1%eth0]:1")), true);
  assert.equal(z1.equals(Endpoint.parse("[fe80::1%eth1]:1")), false);
  assert.equal(z1.equals(Endpoint.parse("[fe80::1]:1")), false);
});

Deno.test("Endpoint.clone() is a deep copy including the sticky source", () => {
  const a = Endpoint.parse("[fe80::1%2]:51820");
  a.srcAddress = new Uint8Array(16).fill(7);
  a.srcIfindex = 2;
  const c = a.clone();
  assert.notEqual(c, a);
  assert.equal(c.equals(a), true);
  assert.equal(c.toString(), a.toString());
  assert.deepEqual(c.srcAddress, a.srcAddress);
  assert.equal(c.srcIfindex, 2);
  assert.equal(c.scopeId, 2);
  c.address[15] = 9;
  c.srcAddress![0] = 0;
  assert.equal(a.address[15], 1);
  assert.equal(a.srcAddress[0], 7);
  const plain = Endpoint.parse("1.2.3.4:5").clone();
  assert.equal(plain.srcAddress, null);
});

Deno.test("Endpoint.clearSrc() forgets the sticky source only", () => {
  const a = Endpoint.parse("1.2.3.4:5");
  a.srcAddress = new Uint8Array([10, 0, 0, 1]);
  a.srcIfindex = 4;
  a.clearSrc();
  assert.equal(a.srcAddress, null);
  assert.equal(a.srcIfindex, 0);
  assert.equal(a.toString(), "1.2.3.4:5");
});

Deno.test("Endpoint.dstToBytes() is address then big-endian port", () => {
  assert.deepEqual(
    Endpoint.parse("1.2.3.4:51820").dstToBytes(),
    new Uint8Array([1, 2, 3, 4, 0xca, 0x6c]),
  );
  const v6 = Endpoint.parse("[::1]:258").dstToBytes();
  assert.equal(v6.length, 18);
  assert.deepEqual(v6.subarray(15), new Uint8Array([1, 1, 2]));
});
