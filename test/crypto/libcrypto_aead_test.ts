// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The libcrypto ChaCha20-Poly1305 contexts (src/crypto/libcrypto_aead.ts)
 * against noble where their shortcuts could go wrong: keys that change between
 * calls (more keys than slots, keys sharing a slot, a key rewritten in place),
 * seals and opens interleaved on kept contexts, failed opens (no plaintext
 * left, nothing carried into the next message), and both nonce paths
 * ("tlsivfixed" and the EVP_CipherInit_ex fallback). Also the contract both
 * backends keep: a failed open leaves no decrypted byte in `out`.
 *
 * Everything here is skipped when libcrypto.so.3 cannot be loaded.
 */
import assert from "node:assert/strict";
import { AEAD_SYMBOLS, ChachaPoly, SLOTS } from "../../src/crypto/libcrypto_aead.ts";
import { loadLibcryptoBackend } from "../../src/crypto/libcrypto.ts";
import { nobleBackend } from "../../src/crypto/noble.ts";
import { seededSource } from "../_util/fake_clock.ts";

const ignore = loadLibcryptoBackend() === null;

function openLib(): Deno.DynamicLibrary<typeof AEAD_SYMBOLS> {
  return Deno.dlopen("libcrypto.so.3", AEAD_SYMBOLS);
}

const source = seededSource;

const toHex = (b: Uint8Array): string => b.toHex();

/**
 * 3,000 seals and opens in random order over a pool of keys: more keys than
 * slots, several with the same first byte (the same slot), one rewritten in
 * place now and then; every result must equal noble's.
 */
function keyChurn(aead: ChachaPoly, seed: number): void {
  const r = source(seed);
  const keys: Uint8Array[] = [];
  for (let i = 0; i < 3 * SLOTS; i++) {
    const k = r.bytes(32);
    if (i % 3 === 1) k[0] = keys[i - 1][0]; // same slot as the previous key
    if (i % 3 === 2) k.set(keys[i - 1].subarray(0, 31)); // differs in the last byte only
    keys.push(k);
  }
  for (let i = 0; i < 3000; i++) {
    const key = keys[r.int(keys.length - 1)];
    if (r.int(50) === 0) key[r.int(31)] ^= 1 + r.int(254); // same object, new key
    const nonce = r.bytes(12), pt = r.bytes(r.int(1500)), ad = r.bytes(r.int(4) === 0 ? 32 : 0);
    const want = new Uint8Array(pt.length + 16), got = new Uint8Array(pt.length + 16);
    nobleBackend.seal(want, key, nonce, pt, ad);
    aead.seal(got, key, nonce, pt, ad);
    assert.equal(toHex(got), toHex(want), `op ${i}: seal ${pt.length} B`);
    const opened = new Uint8Array(pt.length);
    assert.equal(aead.open(opened, key, nonce, want, ad), true, `op ${i}: open`);
    assert.deepEqual(opened, pt, `op ${i}: open`);
    if (r.int(5) === 0) {
      // A forgery under this key, then the next operation must be unaffected.
      want[r.int(want.length - 1)] ^= 0x80;
      assert.equal(aead.open(opened, key, nonce, want, ad), false, `op ${i}: forged`);
    }
  }
}

Deno.test({
  name: "libcrypto AEAD equals noble while keys change between calls (both nonce paths)",
  ignore,
  fn() {
    const lib = openLib();
    try {
      const fast = new ChachaPoly(lib.symbols);
      // Every OpenSSL 3 release has the parameter; the fast path must be the one in use.
      assert.equal(fast.nonceByParam, true);
      keyChurn(fast, 21);
      const fallback = new ChachaPoly(lib.symbols, false);
      assert.equal(fallback.nonceByParam, false);
      keyChurn(fallback, 22);
    } finally {
      lib.close();
    }
  },
});

Deno.test({
  name:
    "libcrypto AEAD: a failed open leaves no plaintext, in place or not, and the next open works",
  ignore,
  fn() {
    const lib = openLib();
    try {
      for (const aead of [new ChachaPoly(lib.symbols), new ChachaPoly(lib.symbols, false)]) {
        const r = source(23);
        for (let i = 0; i < 300; i++) {
          const key = r.bytes(32), nonce = r.bytes(12);
          const pt = r.bytes(1 + r.int(1500)), ad = r.bytes(r.int(2) === 0 ? 0 : 16);
          const n = pt.length;
          const sealed = new Uint8Array(n + 16);
          nobleBackend.seal(sealed, key, nonce, pt, ad);
          const bad = sealed.slice();
          bad[r.int(n + 15)] ^= 1 << r.int(7);
          // Out of place: the output holds zeros, not the decrypted bytes.
          const out = new Uint8Array(n).fill(0xa5);
          assert.equal(aead.open(out, key, nonce, bad, ad), false, `case ${i}`);
          assert.deepEqual(out, new Uint8Array(n), `case ${i}: out after failure`);
          // In place: the plaintext range is zeroed too.
          const packet = bad.slice();
          assert.equal(aead.open(packet.subarray(0, n), key, nonce, packet, ad), false);
          assert.deepEqual(packet.subarray(0, n), new Uint8Array(n), `case ${i}: in place`);
          // The same key and context right after: the genuine packet opens.
          assert.equal(aead.open(out, key, nonce, sealed, ad), true, `case ${i}: genuine`);
          assert.deepEqual(out, pt, `case ${i}: genuine`);
        }
      }
    } finally {
      lib.close();
    }
  },
});

Deno.test({
  name: "libcrypto AEAD seals in place, and empty plaintext and AD, like noble",
  ignore,
  fn() {
    const lib = openLib();
    try {
      const aead = new ChachaPoly(lib.symbols);
      const r = source(24);
      for (const n of [0, 1, 15, 16, 63, 64, 65, 1420, 1436]) {
        const key = r.bytes(32), nonce = r.bytes(12), pt = r.bytes(n);
        for (const ad of [new Uint8Array(0), r.bytes(13)]) {
          const want = new Uint8Array(n + 16);
          nobleBackend.seal(want, key, nonce, pt, ad);
          const packet = new Uint8Array(n + 16);
          packet.set(pt);
          aead.seal(packet, key, nonce, packet.subarray(0, n), ad);
          assert.equal(toHex(packet), toHex(want), `${n} B, AD ${ad.length} B`);
          assert.equal(aead.open(packet.subarray(0, n), key, nonce, packet, ad), true);
          assert.deepEqual(packet.subarray(0, n), pt, `${n} B, AD ${ad.length} B`);
        }
      }
    } finally {
      lib.close();
    }
  },
});

Deno.test({
  name: "open() and xopen() that fail leave no decrypted byte in out, for every backend",
  ignore,
  fn() {
    const r = source(25);
    const backends = [nobleBackend, loadLibcryptoBackend()!];
    for (const b of backends) {
      for (let i = 0; i < 100; i++) {
        const key = r.bytes(32), nonce = r.bytes(24), pt = r.bytes(1 + r.int(300));
        const n = pt.length, ad = r.bytes(r.int(20));
        const sealed = new Uint8Array(n + 16), xsealed = new Uint8Array(n + 16);
        b.seal(sealed, key, nonce.subarray(0, 12), pt, ad);
        b.xseal(xsealed, key, nonce, pt, ad);
        sealed[n + r.int(15)] ^= 1;
        xsealed[n + r.int(15)] ^= 1;
        const out = new Uint8Array(n).fill(0xa5);
        assert.equal(b.open(out, key, nonce.subarray(0, 12), sealed, ad), false);
        assert.ok(out.every((x) => x === 0 || x === 0xa5), `${b.name} case ${i}: open`);
        out.fill(0xa5);
        assert.equal(b.xopen(out, key, nonce, xsealed, ad), false);
        assert.ok(out.every((x) => x === 0 || x === 0xa5), `${b.name} case ${i}: xopen`);
      }
    }
  },
});
