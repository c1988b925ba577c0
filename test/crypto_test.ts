// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The crypto façade (whitepaper §5.4) against published vectors in
 * `testdata/`: wireguard-go's KDF table (which also pins HMAC-BLAKE2s), RFC 7693
 * Appendix E for the 16-byte keyed MAC, RFC 8439 A.5 for the counter-nonce AEAD
 * (its nonce is 0^32 ‖ LE64(0x0807060504030201), exactly WireGuard's layout),
 * draft-irtf-cfrg-xchacha-03 for XAEAD, RFC 7748 §6.1 for DH, and the kernel's
 * low-order public keys, which DH must reject.
 */
import assert from "node:assert/strict";
import {
  aeadOpen,
  aeadSeal,
  clampPrivateKey,
  type CryptoBackend,
  cryptoBackend,
  dh,
  generatePrivateKey,
  hash,
  hmac,
  isZero,
  kdf,
  mac,
  publicKey,
  setCryptoBackend,
  timingSafeEqual,
  wipe,
  xaeadOpen,
  xaeadSeal,
  ZERO_COUNTER,
} from "../src/crypto.ts";
import { nobleBackend } from "../src/crypto/noble.ts";
import { systemRng } from "../src/clock.ts";
import kdfVectors from "../testdata/kdf.json" with { type: "json" };
import blake2sVectors from "../testdata/crypto/blake2s.json" with { type: "json" };
import chachaVectors from "../testdata/crypto/chacha20poly1305.json" with { type: "json" };
import xchachaVectors from "../testdata/crypto/xchacha20poly1305.json" with { type: "json" };
import x25519Vectors from "../testdata/crypto/x25519.json" with { type: "json" };
import lowOrder from "../testdata/crypto/low_order_points.json" with { type: "json" };

const hex = (s: string): Uint8Array => Uint8Array.fromHex(s);
const toHex = (b: Uint8Array): string => b.toHex();

const base64 = (s: string): Uint8Array => Uint8Array.fromBase64(s);

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

/** The RFC 8439 A.5 vector, whose nonce starts with four zero bytes. */
function a5() {
  const v = chachaVectors.vectors.find((x) => x.name === "rfc8439-a.5");
  assert.ok(v);
  const nonce = hex(v.nonce);
  assert.equal(toHex(nonce.subarray(0, 4)), "00000000", "A.5 nonce fits WireGuard's layout");
  const view = new DataView(nonce.buffer);
  return {
    key: hex(v.key),
    counter: { lo: view.getUint32(4, true), hi: view.getUint32(8, true) },
    aad: hex(v.aad),
    plaintext: hex(v.plaintext),
    sealed: hex(v.ciphertext + v.tag),
  };
}

Deno.test("cryptoBackend() is noble by default and setCryptoBackend() swaps it for every caller", () => {
  assert.equal(cryptoBackend(), nobleBackend);
  let calls = 0;
  const counting: CryptoBackend = {
    ...nobleBackend,
    name: "counting",
    blake2s(out, inputs, key) {
      calls++;
      nobleBackend.blake2s(out, inputs, key);
    },
  };
  try {
    setCryptoBackend(counting);
    assert.equal(cryptoBackend().name, "counting");
    hash(new Uint8Array(32), new Uint8Array(1));
    assert.equal(calls, 1);
  } finally {
    setCryptoBackend(nobleBackend);
  }
  assert.equal(cryptoBackend(), nobleBackend);
});

Deno.test("hash() is BLAKE2s-256 of the concatenated inputs (RFC 7693 Appendix B, BLAKE2 KAT)", () => {
  const out = new Uint8Array(32);
  const abc = blake2sVectors.rfc7693AppendixB;
  hash(out, hex(abc.input));
  assert.equal(toHex(out), abc.digest);
  hash(out, hex("61"), new Uint8Array(0), hex("6263"));
  assert.equal(toHex(out), abc.digest);
  for (const v of blake2sVectors.unkeyed.vectors) {
    const input = hex(v.in);
    hash(out, input.subarray(0, 1), input.subarray(1));
    assert.equal(toHex(out), v.out, `${input.length} bytes`);
  }
});

Deno.test("mac() is keyed BLAKE2s with a 16-byte digest (RFC 7693 Appendix E self-test)", () => {
  // The self-test's keyed hashes use a key as long as the digest; its 16-byte
  // rows are exactly MAC(key, input) as WireGuard's mac1/mac2 use it.
  const v = blake2sVectors.rfc7693SelfTest;
  const parts: Uint8Array[] = [];
  let macs = 0;
  for (const outlen of v.digestLengths) {
    for (const inlen of v.inputLengths) {
      const input = selftestSeq(inlen, inlen);
      const unkeyed = new Uint8Array(outlen);
      cryptoBackend().blake2s(unkeyed, [input]);
      parts.push(unkeyed);
      const keyed = new Uint8Array(outlen);
      const key = selftestSeq(outlen, outlen);
      if (outlen === 16) {
        mac(keyed, key, input.subarray(0, inlen >> 1), input.subarray(inlen >> 1));
        macs++;
      } else {
        cryptoBackend().blake2s(keyed, [input], key);
      }
      parts.push(keyed);
    }
  }
  assert.equal(macs, 6);
  const grand = new Uint8Array(32);
  hash(grand, ...parts);
  assert.equal(toHex(grand), v.grandHash);
});

Deno.test("mac() is not a truncated 32-byte keyed hash (digest length is hashed in)", () => {
  // A 16-byte MAC is not the first half of the 32-byte keyed hash: the digest
  // length is part of BLAKE2s's parameter block (RFC 7693 §2.5).
  const v = blake2sVectors.keyed.vectors[0];
  const out = new Uint8Array(16);
  mac(out, hex(v.key), hex(v.in));
  assert.notEqual(toHex(out), v.out.slice(0, 32));
});

Deno.test("kdf() reproduces wireguard-go's KDF1/KDF2/KDF3 vectors (and so HMAC-BLAKE2s)", () => {
  assert.equal(kdfVectors.vectors.length, 3);
  for (const v of kdfVectors.vectors) {
    const key = hex(v.key), input = hex(v.input);
    const t0 = new Uint8Array(32), t1 = new Uint8Array(32), t2 = new Uint8Array(32);
    kdf([t0, t1, t2], key, input);
    assert.deepEqual([toHex(t0), toHex(t1), toHex(t2)], [v.t0, v.t1, v.t2], v.key);
    wipe(t0, t1, t2);
    kdf([t0, t1], key, input);
    assert.deepEqual([toHex(t0), toHex(t1), toHex(t2)], [v.t0, v.t1, "00".repeat(32)]);
    wipe(t0, t1);
    kdf([t0], key, input);
    assert.deepEqual([toHex(t0), toHex(t1)], [v.t0, "00".repeat(32)]);
  }
});

Deno.test("kdf() outputs may alias the key (chaining key updated in place)", () => {
  const v = kdfVectors.vectors[0];
  const ck = new Uint8Array(32);
  ck.set(hex(v.key));
  const chainingKey = ck.subarray(0, hex(v.key).length);
  const t0 = new Uint8Array(32), t1 = new Uint8Array(32);
  // Keys of 32 bytes are the protocol's case; here the 8-byte key sits in a larger
  // buffer and the first output overwrites that very buffer.
  kdf([ck, t1], chainingKey, hex(v.input));
  assert.equal(toHex(ck), v.t0);
  assert.equal(toHex(t1), v.t1);
  // The protocol's own shape, C ← KDF(C, x) with a 32-byte C, agrees with the
  // non-aliased call.
  const c = hex(v.t1);
  const a = new Uint8Array(32), b = new Uint8Array(32);
  kdf([a, b], c, hex(v.input));
  kdf([c, t0], c, hex(v.input));
  assert.deepEqual([toHex(c), toHex(t0)], [toHex(a), toHex(b)]);
});

Deno.test("kdf() rejects 0 or 4 outputs and hmac() a key longer than a block", () => {
  const b = new Uint8Array(32);
  assert.throws(() => kdf([], b, b), RangeError);
  assert.throws(() => kdf([b, b, b, b], b, b), RangeError);
  assert.throws(() => hmac(b, new Uint8Array(65), b), RangeError);
});

Deno.test("hmac() composes into wireguard-go's KDF outputs, with split inputs", () => {
  // KDF: prk = HMAC(key, input); t0 = HMAC(prk, 0x1); t1 = HMAC(prk, t0 ‖ 0x2);
  // t2 = HMAC(prk, t1 ‖ 0x3). Built here from hmac() alone, with a 32-byte key
  // (prk), the published t0..t2 check HMAC independently of kdf().
  for (const v of kdfVectors.vectors) {
    const prk = new Uint8Array(32);
    hmac(prk, hex(v.key), hex(v.input));
    const out = new Uint8Array(32);
    hmac(out, prk, new Uint8Array([1]));
    assert.equal(toHex(out), v.t0);
    hmac(out, prk, hex(v.t0), new Uint8Array([2]));
    assert.equal(toHex(out), v.t1);
    const joined = new Uint8Array(33);
    joined.set(hex(v.t1));
    joined[32] = 3;
    hmac(out, prk, joined.subarray(0, 10), new Uint8Array(0), joined.subarray(10));
    assert.equal(toHex(out), v.t2);
  }
});

Deno.test("aeadSeal()/aeadOpen() match RFC 8439 A.5 with the counter taken from nonce bytes 4..12", () => {
  const v = a5();
  assert.deepEqual(v.counter, { lo: 0x04030201, hi: 0x08070605 });
  const out = new Uint8Array(v.plaintext.length + 16);
  aeadSeal(out, v.key, v.counter, v.plaintext, v.aad);
  assert.equal(toHex(out), toHex(v.sealed));
  const opened = new Uint8Array(v.plaintext.length);
  assert.equal(aeadOpen(opened, v.key, v.counter, v.sealed, v.aad), true);
  assert.equal(toHex(opened), toHex(v.plaintext));
  assert.equal(aeadOpen(opened, v.key, { lo: v.counter.lo, hi: 0 }, v.sealed, v.aad), false);
  assert.equal(aeadOpen(opened, v.key, { lo: 0, hi: v.counter.hi }, v.sealed, v.aad), false);
});

Deno.test("aeadSeal() puts the counter after 32 zero bits, little-endian (backend nonce check)", () => {
  const key = new Uint8Array(32).fill(7);
  const pt = new TextEncoder().encode("counter layout");
  for (const counter of [ZERO_COUNTER, { lo: 1, hi: 0 }, { lo: 0xffffffff, hi: 0x7fffffff }]) {
    const viaFacade = new Uint8Array(pt.length + 16);
    aeadSeal(viaFacade, key, counter, pt, new Uint8Array(0));
    const nonce = new Uint8Array(12);
    new DataView(nonce.buffer).setUint32(4, counter.lo, true);
    new DataView(nonce.buffer).setUint32(8, counter.hi, true);
    const viaBackend = new Uint8Array(pt.length + 16);
    nobleBackend.seal(viaBackend, key, nonce, pt, new Uint8Array(0));
    assert.equal(toHex(viaFacade), toHex(viaBackend), JSON.stringify(counter));
  }
});

Deno.test("aeadSeal()/aeadOpen() round-trip with hi≠0 counters, in place, and distinct per counter", () => {
  const key = new Uint8Array(32);
  systemRng(key);
  const ad = new Uint8Array(0);
  const seen = new Set<string>();
  for (
    const counter of [{ lo: 0, hi: 0 }, { lo: 0, hi: 1 }, { lo: 1, hi: 1 }, {
      lo: 0xfffff000,
      hi: 0xffffffff,
    }]
  ) {
    for (const len of [0, 1, 15, 16, 17, 64, 1420]) {
      // The same plaintext under every counter, so distinct ciphertexts show
      // that the counter reaches the nonce, hi word included.
      const pt = Uint8Array.from({ length: len }, (_, i) => i * 7);
      // In place: the plaintext occupies the start of the packet buffer.
      const buf = new Uint8Array(len + 16 + 32).subarray(16, 16 + len + 16);
      buf.set(pt);
      aeadSeal(buf, key, counter, buf.subarray(0, len), ad);
      if (len > 0) seen.add(toHex(buf));
      const sealedCopy = buf.slice();
      assert.equal(aeadOpen(buf.subarray(0, len), key, counter, buf, ad), true, `${len}`);
      assert.equal(toHex(buf.subarray(0, len)), toHex(pt));
      // And out of place gives the same ciphertext.
      const out = new Uint8Array(len + 16);
      aeadSeal(out, key, counter, pt, ad);
      assert.equal(toHex(out), toHex(sealedCopy));
    }
  }
  assert.equal(seen.size, 4 * 6, "each counter gives a distinct keystream");
});

Deno.test("aeadOpen() returns false for a tampered packet, a wrong key and a ciphertext shorter than 16 bytes", () => {
  const v = a5();
  const out = new Uint8Array(v.plaintext.length);
  for (const i of [0, 100, v.sealed.length - 16, v.sealed.length - 1]) {
    const bad = v.sealed.slice();
    bad[i] ^= 0x40;
    assert.equal(aeadOpen(out, v.key, v.counter, bad, v.aad), false, `byte ${i}`);
  }
  const badAd = v.aad.slice();
  badAd[3] ^= 1;
  assert.equal(aeadOpen(out, v.key, v.counter, v.sealed, badAd), false);
  const badKey = v.key.slice();
  badKey[31] ^= 1;
  assert.equal(aeadOpen(out, badKey, v.counter, v.sealed, v.aad), false);
  for (const len of [0, 1, 15]) {
    assert.equal(aeadOpen(new Uint8Array(0), v.key, v.counter, new Uint8Array(len), v.aad), false);
  }
  // Exactly 16 bytes is an empty message; a random tag does not verify.
  assert.equal(aeadOpen(new Uint8Array(0), v.key, v.counter, new Uint8Array(16), v.aad), false);
});

Deno.test("xaeadSeal()/xaeadOpen() match draft-irtf-cfrg-xchacha-03 A.3.1 and reject tampering", () => {
  for (const v of xchachaVectors.vectors) {
    const key = hex(v.key), nonce = hex(v.nonce), aad = hex(v.aad), pt = hex(v.plaintext);
    const sealed = hex(v.ciphertext + v.tag);
    const out = new Uint8Array(pt.length + 16);
    xaeadSeal(out, key, nonce, pt, aad);
    assert.equal(toHex(out), toHex(sealed));
    const opened = new Uint8Array(pt.length);
    assert.equal(xaeadOpen(opened, key, nonce, sealed, aad), true);
    assert.equal(toHex(opened), v.plaintext);
    for (const i of [0, sealed.length - 1]) {
      const bad = sealed.slice();
      bad[i] ^= 1;
      assert.equal(xaeadOpen(opened, key, nonce, bad, aad), false, `byte ${i}`);
    }
    const badNonce = nonce.slice();
    badNonce[23] ^= 1;
    assert.equal(xaeadOpen(opened, key, badNonce, sealed, aad), false, "nonce");
    assert.equal(xaeadOpen(new Uint8Array(0), key, nonce, new Uint8Array(15), aad), false);
  }
});

Deno.test("clampPrivateKey() clears bits 0–2 and 255, sets bit 254, in place", () => {
  const ones = new Uint8Array(32).fill(0xff);
  assert.equal(clampPrivateKey(ones), ones);
  assert.equal(ones[0], 0xf8);
  assert.equal(ones[31], 0x7f);
  assert.ok(ones.subarray(1, 31).every((b) => b === 0xff));
  const zeros = clampPrivateKey(new Uint8Array(32));
  assert.equal(zeros[0], 0);
  assert.equal(zeros[31], 0x40);
  assert.ok(zeros.subarray(1, 31).every((b) => b === 0));
  // RFC 7748 §6.1's private keys clamp to the scalar X25519 uses, so the public key is unchanged.
  const alice = clampPrivateKey(hex(x25519Vectors.diffieHellman.alicePrivate));
  assert.equal(toHex(publicKey(alice)), x25519Vectors.diffieHellman.alicePublic);
});

Deno.test("generatePrivateKey() fills 32 bytes from the Rng and clamps them", () => {
  let asked = 0;
  const key = generatePrivateKey((out) => {
    asked = out.length;
    out.fill(0xff);
  });
  assert.equal(asked, 32);
  assert.equal(key[0], 0xf8);
  assert.equal(key[31], 0x7f);
  const real = generatePrivateKey(systemRng);
  assert.equal(real[0] & 7, 0);
  assert.equal(real[31] & 0xc0, 0x40);
});

Deno.test("publicKey() and dh() match RFC 7748 §6.1", () => {
  const v = x25519Vectors.diffieHellman;
  assert.equal(toHex(publicKey(hex(v.alicePrivate))), v.alicePublic);
  const out = new Uint8Array(32);
  assert.equal(publicKey(hex(v.bobPrivate), out), out);
  assert.equal(toHex(out), v.bobPublic);
  const shared = new Uint8Array(32);
  assert.equal(dh(shared, hex(v.alicePrivate), hex(v.bobPublic)), true);
  assert.equal(toHex(shared), v.shared);
  shared.fill(0);
  assert.equal(dh(shared, hex(v.bobPrivate), hex(v.alicePublic)), true);
  assert.equal(toHex(shared), v.shared);
});

Deno.test("dh() returns false for every low-order public key from the kernel's netns.sh", () => {
  assert.equal(lowOrder.points.length, 7);
  for (let round = 0; round < 3; round++) {
    const priv = generatePrivateKey(systemRng);
    for (const p of lowOrder.points) {
      const point = base64(p);
      assert.equal(point.length, 32, p);
      const out = new Uint8Array(32).fill(0xee);
      assert.equal(dh(out, priv, point), false, p);
      assert.ok(isZero(out), p);
    }
  }
});

Deno.test("timingSafeEqual() compares contents and lengths", () => {
  const a = hex("00112233445566778899aabbccddeeff");
  assert.equal(timingSafeEqual(a, a.slice()), true);
  assert.equal(timingSafeEqual(new Uint8Array(0), new Uint8Array(0)), true);
  for (let i = 0; i < a.length; i++) {
    const b = a.slice();
    b[i] ^= 0x80;
    assert.equal(timingSafeEqual(a, b), false, `byte ${i}`);
  }
  assert.equal(timingSafeEqual(a, a.subarray(0, 15)), false);
  assert.equal(timingSafeEqual(a.subarray(0, 15), a), false);
});

Deno.test("isZero() is true only for all-zero buffers", () => {
  assert.equal(isZero(new Uint8Array(0)), true);
  assert.equal(isZero(new Uint8Array(32)), true);
  for (const i of [0, 17, 31]) {
    const b = new Uint8Array(32);
    b[i] = 1;
    assert.equal(isZero(b), false, `byte ${i}`);
  }
  const high = new Uint8Array(32);
  high[5] = 0x80;
  assert.equal(isZero(high), false);
});

Deno.test("wipe() zeroes every buffer and skips null and undefined", () => {
  const a = new Uint8Array(32).fill(1);
  const b = new Uint8Array(8).fill(0xff);
  const backing = new Uint8Array(16).fill(9);
  wipe(a, null, b, undefined, backing.subarray(4, 8));
  assert.ok(isZero(a));
  assert.ok(isZero(b));
  assert.deepEqual([...backing], [9, 9, 9, 9, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9]);
  wipe();
});
