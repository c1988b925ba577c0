// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for the pure helpers of peer.ts: paddingSize (wireguard-go
 * `calculatePaddingSize`: pad the plaintext to a multiple of 16 but never
 * beyond the MTU, whitepaper §5.4.6) and keyToBase64 (keys as `wg` prints
 * them). Device-level Peer behaviour is tested with the device.
 */
import assert from "node:assert/strict";
import { paddingSize } from "../src/peer.ts";
import { keyToBase64 } from "../src/keys.ts";

Deno.test("paddingSize() matches wireguard-go calculatePaddingSize", async (t) => {
  // [size, mtu, padding]; expected values worked out by hand from the Go code.
  const cases: [number, number, number][] = [
    // mtu 0: plain round-up to 16.
    [0, 0, 0],
    [1, 0, 15],
    [15, 0, 1],
    [16, 0, 0],
    [17, 0, 15],
    [1420, 0, 4],
    [65535, 0, 1],
    // small packets under a normal MTU.
    [0, 1420, 0],
    [1, 1420, 15],
    [20, 1420, 12],
    [28, 1420, 4],
    [40, 1420, 8],
    [64, 1420, 0],
    [100, 1420, 12],
    // exact multiples of 16 get nothing.
    [32, 1420, 0],
    [1408, 1420, 0],
    [1280, 1280, 0],
    // padded size would pass the MTU: clamp to the MTU.
    [1409, 1420, 11],
    [1410, 1420, 10],
    [1415, 1420, 5],
    [1419, 1420, 1],
    [1420, 1420, 0],
    [1279, 1280, 1],
    [1273, 1280, 7],
    // packet larger than the MTU: pad its last MTU-sized unit.
    [1421, 1420, 15],
    [1436, 1420, 0],
    [1437, 1420, 15],
    [1500, 1420, 0],
    [1501, 1420, 15],
    [2840, 1420, 0],
    [2841, 1420, 15],
    [1281, 1280, 15],
    [9000, 1420, 0], // 9000 % 1420 = 480, a multiple of 16
    [9001, 1420, 15],
    // tiny MTUs.
    [1, 1, 0],
    [2, 1, 0],
    [1, 15, 14],
    [15, 15, 0],
    [16, 15, 14],
    [1, 16, 15],
    [16, 16, 0],
    [17, 16, 15],
    [1, 17, 15],
    [17, 17, 0],
    [16, 17, 0],
    [18, 17, 15],
  ];
  for (const [size, mtu, want] of cases) {
    await t.step(`size ${size} mtu ${mtu} → ${want}`, () => {
      assert.equal(paddingSize(size, mtu), want);
    });
  }
});

Deno.test("paddingSize() invariants over a sweep of sizes and MTUs", () => {
  const mtus = [0, 1, 15, 16, 17, 20, 500, 576, 1280, 1420, 1500, 9000, 65503];
  const sizes = [
    ...Array.from({ length: 301 }, (_, i) => i),
    500,
    1000,
    1279,
    1280,
    1281,
    1420,
    1500,
    9000,
  ];
  for (const mtu of mtus) {
    for (const size of sizes) {
      const pad = paddingSize(size, mtu);
      const msg = `size ${size} mtu ${mtu} pad ${pad}`;
      assert.ok(Number.isInteger(pad) && pad >= 0 && pad < 16, msg);
      const last = mtu !== 0 && size > mtu ? size % mtu : size;
      const padded = last + pad;
      if (mtu === 0) {
        assert.equal(padded % 16, 0, msg);
      } else {
        assert.ok(padded <= mtu, msg);
        // Either a multiple of 16, or clamped exactly to the MTU.
        assert.ok(padded % 16 === 0 || padded === mtu, msg);
        // Minimal: never a whole extra block.
        assert.ok(padded - last < 16, msg);
        if (padded !== mtu) assert.equal(padded, Math.ceil(last / 16) * 16, msg);
      }
    }
  }
});

Deno.test("keyToBase64() encodes keys as wg prints them", async (t) => {
  const hex = (s: string) => new Uint8Array(s.match(/../g)!.map((b) => parseInt(b, 16)));
  const cases: [string, Uint8Array, string][] = [
    ["zero key", new Uint8Array(32), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="],
    [
      "0..31",
      Uint8Array.from({ length: 32 }, (_, i) => i),
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ],
    ["all ones", new Uint8Array(32).fill(0xff), "//////////////////////////////////////////8="],
    // testdata/uapi/keys.json "self": base64 made by `wg` (has '+' and '/').
    [
      "wg private key",
      hex("a0f5da386c149d4b3e48e4febdf43b0a168dbcf46313cffcdc273fcd0f98e072"),
      "oPXaOGwUnUs+SOT+vfQ7ChaNvPRjE8/83Cc/zQ+Y4HI=",
    ],
    // testdata/handshake/keys.json initiator public key, as printed by `wg pubkey`.
    [
      "wg public key",
      hex("4d9a8e936d1c7dae4812c9a83f14b0a13dd1dc1495642311845c8aae3d8aec0d"),
      "TZqOk20cfa5IEsmoPxSwoT3R3BSVZCMRhFyKrj2K7A0=",
    ],
  ];
  for (const [name, key, want] of cases) {
    await t.step(name, () => {
      const got = keyToBase64(key);
      assert.equal(got, want);
      assert.equal(got.length, 44);
    });
  }
});

Deno.test("keyToBase64() reads a view, not its backing buffer", () => {
  const backing = new Uint8Array(40).fill(0xff);
  backing.fill(0, 4, 36);
  assert.equal(keyToBase64(backing.subarray(4, 36)), "A".repeat(43) + "=");
});

Deno.test("keyToBase64() round-trips through atob", () => {
  let seed = 1;
  for (let n = 0; n < 100; n++) {
    const key = new Uint8Array(32);
    for (let i = 0; i < 32; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      key[i] = seed >>> 24;
    }
    const decoded = Uint8Array.from(atob(keyToBase64(key)), (c) => c.charCodeAt(0));
    assert.deepEqual(decoded, key);
  }
});
