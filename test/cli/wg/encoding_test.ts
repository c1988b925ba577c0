// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests of the key encodings: round trips, and the exact set of base64 and
 * hex spellings wireguard-tools accepts.
 */
import assert from "node:assert/strict";
import {
  keyFromBase64,
  keyFromHex,
  keyIsZero,
  keyToBase64,
  keyToHex,
} from "../../../cli/wg/encoding.ts";

function bytes(seed: number): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = (seed * 131 + i * 17) & 0xff;
  return out;
}

Deno.test("keyToBase64() equals standard base64 and keyFromBase64() inverts it", () => {
  for (let seed = 0; seed < 64; seed++) {
    const k = bytes(seed);
    const b64 = keyToBase64(k);
    assert.equal(b64, btoa(String.fromCharCode(...k)));
    assert.deepEqual(keyFromBase64(b64), k);
  }
});

Deno.test("keyFromBase64() rejects what key_from_base64 rejects", () => {
  const good = keyToBase64(bytes(3));
  assert.ok(keyFromBase64(good));
  assert.equal(keyFromBase64(good.slice(0, 43)), null, "short");
  assert.equal(keyFromBase64(good + "="), null, "long");
  assert.equal(keyFromBase64(good.slice(0, 43) + "A"), null, "no padding");
  assert.equal(keyFromBase64("*" + good.slice(1)), null, "bad character");
  assert.equal(
    keyFromBase64(good.slice(0, 10) + "\0" + good.slice(11)),
    null,
    "NUL ends the string",
  );
  // The last group's third character may only use its top 4 bits.
  assert.equal(keyFromBase64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="), null);
  assert.ok(keyFromBase64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="));
  assert.equal(keyFromBase64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="), null);
});

Deno.test("keyFromHex() takes 64 hex digits in either case", () => {
  const k = bytes(9);
  const hex = keyToHex(k);
  assert.match(hex, /^[0-9a-f]{64}$/);
  assert.deepEqual(keyFromHex(hex), k);
  assert.deepEqual(keyFromHex(hex.toUpperCase()), k);
  assert.equal(keyFromHex(hex.slice(2)), null);
  assert.equal(keyFromHex("g" + hex.slice(1)), null);
  assert.equal(keyFromHex(hex + "0"), null);
});

Deno.test("keyIsZero() is true only for 32 zero bytes", () => {
  assert.ok(keyIsZero(new Uint8Array(32)));
  const k = new Uint8Array(32);
  k[31] = 1;
  assert.ok(!keyIsZero(k));
});
