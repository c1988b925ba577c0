// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Conformance of each {@link CryptoBackend} against published vectors, stored
 * as data in `testdata/crypto/*.json` (every group names its source): RFC 7693
 * and the BLAKE2 reference KATs for BLAKE2s, RFC 8439 for ChaCha20-Poly1305
 * (with its raw 12-byte nonces, which the WireGuard façade cannot express),
 * draft-irtf-cfrg-xchacha-03 for XChaCha20-Poly1305 and RFC 7748 for X25519.
 *
 * The tests loop over {@link BACKENDS}; a native backend is checked by adding
 * it to that list.
 */
import assert from "node:assert/strict";
import type { CryptoBackend } from "../../src/crypto/backend.ts";
import { loadLibcryptoBackend } from "../../src/crypto/libcrypto.ts";
import { nobleBackend } from "../../src/crypto/noble.ts";
import blake2sVectors from "../../testdata/crypto/blake2s.json" with { type: "json" };
import chachaVectors from "../../testdata/crypto/chacha20poly1305.json" with { type: "json" };
import xchachaVectors from "../../testdata/crypto/xchacha20poly1305.json" with { type: "json" };
import x25519Vectors from "../../testdata/crypto/x25519.json" with { type: "json" };
import lowOrder from "../../testdata/crypto/low_order_points.json" with { type: "json" };

/** The backends under test: noble, and libcrypto when it loads. */
const libcrypto = loadLibcryptoBackend();
const BACKENDS: readonly CryptoBackend[] = libcrypto ? [nobleBackend, libcrypto] : [nobleBackend];

const hex = (s: string): Uint8Array => Uint8Array.fromHex(s);
const toHex = (b: Uint8Array): string => b.toHex();

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** RFC 7693 Appendix E `selftest_seq`: a Fibonacci byte sequence seeded with `seed`. */
function selftestSeq(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let a = Math.imul(0xdead4bad, seed) >>> 0;
  let b = 1;
  for (let i = 0; i < len; i++) {
    const t = (a + b) >>> 0;
    a = b;
    b = t;
    out[i] = t >>> 24;
  }
  return out;
}

for (const b of BACKENDS) {
  Deno.test(`${b.name}.blake2s() matches RFC 7693 Appendix B`, () => {
    const v = blake2sVectors.rfc7693AppendixB;
    const out = new Uint8Array(32);
    b.blake2s(out, [hex(v.input)]);
    assert.equal(toHex(out), v.digest);
  });

  Deno.test(`${b.name}.blake2s() matches the BLAKE2 reference KATs, unkeyed and keyed`, () => {
    for (const group of [blake2sVectors.unkeyed, blake2sVectors.keyed]) {
      for (const v of group.vectors) {
        const input = hex(v.in);
        const key = v.key === "" ? undefined : hex(v.key);
        const out = new Uint8Array(32);
        b.blake2s(out, [input], key);
        assert.equal(toHex(out), v.out, `${group.source}: in ${input.length} bytes`);
        // Split inputs hash as their concatenation (HASH(a ‖ b) in the whitepaper).
        const cut = input.length >> 1;
        b.blake2s(out, [input.subarray(0, cut), new Uint8Array(0), input.subarray(cut)], key);
        assert.equal(toHex(out), v.out, `split at ${cut}`);
      }
    }
  });

  Deno.test(`${b.name}.blake2s() passes the RFC 7693 Appendix E self-test (digest lengths 16–32, keyed)`, () => {
    const v = blake2sVectors.rfc7693SelfTest;
    const parts: Uint8Array[] = [];
    for (const outlen of v.digestLengths) {
      for (const inlen of v.inputLengths) {
        const input = selftestSeq(inlen, inlen);
        const unkeyed = new Uint8Array(outlen);
        b.blake2s(unkeyed, [input]);
        parts.push(unkeyed);
        const keyed = new Uint8Array(outlen);
        b.blake2s(keyed, [input], selftestSeq(outlen, outlen));
        parts.push(keyed);
      }
    }
    const grand = new Uint8Array(32);
    b.blake2s(grand, parts);
    assert.equal(toHex(grand), v.grandHash);
  });

  Deno.test(`${b.name}.seal()/open() match RFC 8439 with raw 12-byte nonces`, () => {
    for (const v of chachaVectors.vectors) {
      const key = hex(v.key), nonce = hex(v.nonce), aad = hex(v.aad);
      const plaintext = hex(v.plaintext);
      const sealed = concat(hex(v.ciphertext), hex(v.tag));
      const out = new Uint8Array(plaintext.length + 16);
      b.seal(out, key, nonce, plaintext, aad);
      assert.equal(toHex(out), toHex(sealed), v.name);
      const opened = new Uint8Array(plaintext.length);
      assert.equal(b.open(opened, key, nonce, sealed, aad), true, v.name);
      assert.equal(toHex(opened), v.plaintext, v.name);
    }
  });

  Deno.test(`${b.name}.open() returns false for a flipped bit in ciphertext, tag, AD or nonce`, () => {
    const v = chachaVectors.vectors[0];
    const key = hex(v.key), nonce = hex(v.nonce), aad = hex(v.aad);
    const sealed = concat(hex(v.ciphertext), hex(v.tag));
    const out = new Uint8Array(sealed.length - 16);
    for (const i of [0, sealed.length - 17, sealed.length - 16, sealed.length - 1]) {
      const bad = sealed.slice();
      bad[i] ^= 1;
      assert.equal(b.open(out, key, nonce, bad, aad), false, `byte ${i}`);
    }
    const badAad = aad.slice();
    badAad[0] ^= 0x80;
    assert.equal(b.open(out, key, nonce, sealed, badAad), false, "AD");
    const badNonce = nonce.slice();
    badNonce[11] ^= 1;
    assert.equal(b.open(out, key, badNonce, sealed, aad), false, "nonce");
  });

  Deno.test(`${b.name}.seal()/open() work in place (same buffer, same offset)`, () => {
    const v = chachaVectors.vectors[0];
    const key = hex(v.key), nonce = hex(v.nonce), aad = hex(v.aad);
    const plaintext = hex(v.plaintext);
    // A packet buffer with room for the tag, plaintext at its start, as the send path holds it.
    const buf = new Uint8Array(plaintext.length + 16 + 8).subarray(4, 4 + plaintext.length + 16);
    buf.set(plaintext);
    b.seal(buf, key, nonce, buf.subarray(0, plaintext.length), aad);
    assert.equal(toHex(buf), v.ciphertext + v.tag);
    assert.equal(b.open(buf.subarray(0, plaintext.length), key, nonce, buf, aad), true);
    assert.equal(toHex(buf.subarray(0, plaintext.length)), v.plaintext);
  });

  Deno.test(`${b.name}.xseal()/xopen() match draft-irtf-cfrg-xchacha-03 A.3.1`, () => {
    for (const v of xchachaVectors.vectors) {
      const key = hex(v.key), nonce = hex(v.nonce), aad = hex(v.aad);
      const plaintext = hex(v.plaintext);
      const sealed = concat(hex(v.ciphertext), hex(v.tag));
      const out = new Uint8Array(plaintext.length + 16);
      b.xseal(out, key, nonce, plaintext, aad);
      assert.equal(toHex(out), toHex(sealed), v.name);
      const opened = new Uint8Array(plaintext.length);
      assert.equal(b.xopen(opened, key, nonce, sealed, aad), true, v.name);
      assert.equal(toHex(opened), v.plaintext, v.name);
      const bad = sealed.slice();
      bad[7] ^= 4;
      assert.equal(b.xopen(opened, key, nonce, bad, aad), false, `${v.name} tampered`);
    }
  });

  Deno.test(`${b.name}.x25519() matches the RFC 7748 §5.2 single vectors`, () => {
    for (const v of x25519Vectors.scalarMult) {
      const out = new Uint8Array(32);
      b.x25519(out, hex(v.scalar), hex(v.u));
      assert.equal(toHex(out), v.output, v.source);
    }
  });

  Deno.test(`${b.name}.x25519() matches the RFC 7748 §5.2 iterated results (1 and 1,000)`, () => {
    const it = x25519Vectors.iterated;
    const wanted = new Map<number, string>();
    for (const r of it.results) if (!("skip" in r)) wanted.set(r.iterations, r.output);
    assert.deepEqual([...wanted.keys()], [1, 1000]);
    let k = hex(it.initial);
    let u = hex(it.initial);
    const last = Math.max(...wanted.keys());
    for (let i = 1; i <= last; i++) {
      const next = new Uint8Array(32);
      b.x25519(next, k, u);
      u = k;
      k = next;
      const want = wanted.get(i);
      if (want !== undefined) assert.equal(toHex(k), want, `after ${i} iterations`);
    }
  });

  Deno.test(`${b.name}.x25519() matches the RFC 7748 §6.1 Diffie-Hellman vector`, () => {
    const v = x25519Vectors.diffieHellman;
    const base = new Uint8Array(32);
    base[0] = 9;
    const out = new Uint8Array(32);
    b.x25519(out, hex(v.alicePrivate), base);
    assert.equal(toHex(out), v.alicePublic);
    b.x25519(out, hex(v.bobPrivate), base);
    assert.equal(toHex(out), v.bobPublic);
    b.x25519(out, hex(v.alicePrivate), hex(v.bobPublic));
    assert.equal(toHex(out), v.shared);
    b.x25519(out, hex(v.bobPrivate), hex(v.alicePublic));
    assert.equal(toHex(out), v.shared);
  });

  Deno.test(`${b.name}.x25519() writes zeros, without throwing, for the kernel's low-order points`, () => {
    const scalar = hex(x25519Vectors.diffieHellman.alicePrivate);
    for (const p of lowOrder.points) {
      const point = Uint8Array.fromBase64(p);
      assert.equal(point.length, 32, p);
      const out = new Uint8Array(32).fill(0xa5);
      b.x25519(out, scalar, point);
      assert.equal(toHex(out), "00".repeat(32), p);
    }
  });
}
