// SPDX-License-Identifier: Apache-2.0
/** Key text forms: hex (UAPI) and base64 (wg), one implementation for all users. */
import assert from "node:assert/strict";
import { isZeroKey, keyFromHex, keyToBase64, keyToHex } from "../src/keys.ts";
import { seededRng } from "./_util/fake_clock.ts";

Deno.test("keyToHex()/keyFromHex() round-trip and keyToBase64() matches btoa", () => {
  const rng = seededRng(4);
  for (let i = 0; i < 200; i++) {
    const k = new Uint8Array(32);
    rng(k);
    const hex = keyToHex(k);
    assert.match(hex, /^[0-9a-f]{64}$/);
    assert.deepEqual(keyFromHex(hex), k);
    assert.deepEqual(keyFromHex(hex.toUpperCase()), k);
    assert.equal(keyToBase64(k), btoa(String.fromCharCode(...k)));
  }
  assert.equal(keyFromHex("0".repeat(63)), null);
  assert.equal(keyFromHex("g" + "0".repeat(63)), null);
  assert.equal(isZeroKey(new Uint8Array(32)), true);
  assert.equal(isZeroKey(new Uint8Array(32).fill(1, 31)), false);
});
