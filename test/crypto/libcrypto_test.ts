// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The libcrypto backend against the published vectors in `testdata/crypto`
 * (the full per-backend suite also runs it, through BACKENDS in
 * noble_test.ts), and differentially against noble: 2,000 seeded random
 * inputs per primitive must give byte-identical outputs, identical tamper
 * verdicts and identical in-place results. Also: GOTATUN_CRYPTO selection,
 * OpenSSL's error queue after rejections, and that 50k X25519s and seals do
 * not grow the process (every EVP_PKEY is freed).
 *
 * Everything here is ignored when libcrypto.so.3 cannot be loaded, and fails instead under
 * CI=true (test/_util/needs.ts).
 */
import assert from "node:assert/strict";
import { cryptoBackend, setCryptoBackend } from "../../src/crypto.ts";
import type { CryptoBackend } from "../../src/crypto/backend.ts";
import { libcryptoVersion, loadLibcryptoBackend } from "../../src/crypto/libcrypto.ts";
import { nobleBackend } from "../../src/crypto/noble.ts";
import { selectCryptoBackend, useBestCryptoBackend } from "../../src/crypto/select.ts";
import { seededSource } from "../_util/fake_clock.ts";
import { ignoreUnless } from "../_util/needs.ts";
import blake2sVectors from "../../testdata/crypto/blake2s.json" with { type: "json" };
import chachaVectors from "../../testdata/crypto/chacha20poly1305.json" with { type: "json" };
import xchachaVectors from "../../testdata/crypto/xchacha20poly1305.json" with { type: "json" };
import x25519Vectors from "../../testdata/crypto/x25519.json" with { type: "json" };
import lowOrder from "../../testdata/crypto/low_order_points.json" with { type: "json" };

const loaded = loadLibcryptoBackend();
const ignore = ignoreUnless("test/crypto/libcrypto_test.ts", {
  ffi: true,
  other: { "OpenSSL 3's libcrypto.so.3 (Debian: libssl3)": loaded !== null },
});
// Only dereferenced inside tests that are ignored when it is null.
const native = loaded as CryptoBackend;

const hex = (s: string): Uint8Array => Uint8Array.fromHex(s);
const toHex = (b: Uint8Array): string => b.toHex();

const source = seededSource;

/** Splits `data` into 1–4 consecutive pieces (some possibly empty). */
function split(data: Uint8Array, r: ReturnType<typeof source>): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  let at = 0;
  const count = 1 + r.int(3);
  for (let i = 1; i < count; i++) {
    const end = at + r.int(data.length - at);
    pieces.push(data.subarray(at, end));
    at = end;
  }
  pieces.push(data.subarray(at));
  return pieces;
}

// ---------------------------------------------------------------------------
// Published vectors.

Deno.test({
  name: "libcrypto backend matches every vector in testdata/crypto",
  ignore,
  async fn(t) {
    await t.step("BLAKE2s: RFC 7693 Appendix B and the reference KATs", () => {
      const out = new Uint8Array(32);
      native.blake2s(out, [hex(blake2sVectors.rfc7693AppendixB.input)]);
      assert.equal(toHex(out), blake2sVectors.rfc7693AppendixB.digest);
      for (const group of [blake2sVectors.unkeyed, blake2sVectors.keyed]) {
        for (const v of group.vectors) {
          native.blake2s(out, [hex(v.in)], v.key === "" ? undefined : hex(v.key));
          assert.equal(toHex(out), v.out, `${group.source}: in ${v.in.length / 2} bytes`);
        }
      }
    });
    await t.step("ChaCha20-Poly1305: RFC 8439", () => {
      for (const v of chachaVectors.vectors) {
        const key = hex(v.key), nonce = hex(v.nonce), aad = hex(v.aad);
        const plaintext = hex(v.plaintext);
        const out = new Uint8Array(plaintext.length + 16);
        native.seal(out, key, nonce, plaintext, aad);
        assert.equal(toHex(out), v.ciphertext + v.tag, v.name);
        const opened = new Uint8Array(plaintext.length);
        assert.equal(native.open(opened, key, nonce, out, aad), true, v.name);
        assert.equal(toHex(opened), v.plaintext, v.name);
      }
    });
    await t.step("XChaCha20-Poly1305: draft-irtf-cfrg-xchacha-03", () => {
      for (const v of xchachaVectors.vectors) {
        const key = hex(v.key), nonce = hex(v.nonce), aad = hex(v.aad);
        const plaintext = hex(v.plaintext);
        const out = new Uint8Array(plaintext.length + 16);
        native.xseal(out, key, nonce, plaintext, aad);
        assert.equal(toHex(out), v.ciphertext + v.tag, v.name);
        const opened = new Uint8Array(plaintext.length);
        assert.equal(native.xopen(opened, key, nonce, out, aad), true, v.name);
        assert.equal(toHex(opened), v.plaintext, v.name);
      }
    });
    await t.step("X25519: RFC 7748 §5.2, iterated ×1,000, §6.1, low-order points", () => {
      const out = new Uint8Array(32);
      for (const v of x25519Vectors.scalarMult) {
        native.x25519(out, hex(v.scalar), hex(v.u));
        assert.equal(toHex(out), v.output, v.source);
      }
      let k: Uint8Array = hex(x25519Vectors.iterated.initial);
      let u: Uint8Array = k.slice();
      for (let i = 1; i <= 1000; i++) {
        const next = new Uint8Array(32);
        native.x25519(next, k, u);
        u = k;
        k = next;
        const want = x25519Vectors.iterated.results.find((r) => r.iterations === i);
        if (want) assert.equal(toHex(k), want.output, `after ${i} iterations`);
      }
      const dh = x25519Vectors.diffieHellman;
      native.x25519(out, hex(dh.alicePrivate), hex(dh.bobPublic));
      assert.equal(toHex(out), dh.shared);
      for (const p of lowOrder.points) {
        const point = Uint8Array.fromBase64(p);
        out.fill(0xa5);
        native.x25519(out, hex(dh.alicePrivate), point);
        assert.equal(toHex(out), "00".repeat(32), p);
      }
    });
  },
});

// ---------------------------------------------------------------------------
// Differential tests against noble.

const CASES = 2000;

Deno.test({
  name: "libcrypto seal()/open() equal noble on 2,000 random inputs, tampering included",
  ignore,
  fn() {
    const r = source(1);
    for (let i = 0; i < CASES; i++) {
      const key = r.bytes(32), nonce = r.bytes(12);
      const plaintext = r.bytes(r.int(2000)), ad = r.bytes(r.int(3) === 0 ? 0 : r.int(80));
      const want = new Uint8Array(plaintext.length + 16);
      const got = new Uint8Array(plaintext.length + 16);
      nobleBackend.seal(want, key, nonce, plaintext, ad);
      native.seal(got, key, nonce, plaintext, ad);
      assert.equal(toHex(got), toHex(want), `case ${i}: ${plaintext.length} B, AD ${ad.length} B`);
      const opened = new Uint8Array(plaintext.length);
      assert.equal(native.open(opened, key, nonce, got, ad), true, `case ${i}`);
      assert.deepEqual(opened, plaintext, `case ${i}`);
      // One flipped bit anywhere in ciphertext or tag, the AD or the nonce.
      const bad = got.slice();
      bad[r.int(bad.length - 1)] ^= 1 << r.int(7);
      assert.equal(native.open(opened, key, nonce, bad, ad), false, `case ${i} tampered`);
      assert.equal(nobleBackend.open(opened, key, nonce, bad, ad), false, `case ${i} tampered`);
      if (ad.length > 0) {
        const badAd = ad.slice();
        badAd[r.int(ad.length - 1)] ^= 0x40;
        assert.equal(native.open(opened, key, nonce, got, badAd), false, `case ${i} AD`);
      }
      const badNonce = nonce.slice();
      badNonce[r.int(11)] ^= 0x02;
      assert.equal(native.open(opened, key, badNonce, got, ad), false, `case ${i} nonce`);
    }
  },
});

Deno.test({
  name: "libcrypto x25519() keeps per-key derive contexts that never mix keys up",
  ignore,
  fn() {
    // Six keys used in a seeded random order (more keys than kept contexts,
    // so contexts are reused, evicted and refilled), with forget() and
    // low-order points (which drop a context) in between: every result
    // must equal noble's.
    const r = source(9);
    const keys = Array.from({ length: 6 }, () => r.bytes(32));
    const one = new Uint8Array(32);
    one[0] = 1;
    const base = new Uint8Array(32);
    base[0] = 9;
    const want = new Uint8Array(32), got = new Uint8Array(32);
    for (let i = 0; i < 600; i++) {
      const key = keys[r.int(keys.length - 1)];
      const kind = r.int(9);
      if (kind === 0) native.forget?.(key);
      const point = kind === 1 ? one : kind === 2 ? base : r.bytes(32);
      nobleBackend.x25519(want, key, point);
      native.x25519(got, key, point);
      assert.equal(toHex(got), toHex(want), `case ${i}`);
    }
    // A key that changes in place (as the handshake's ephemeral does) is not
    // answered from the context of its old value.
    const key = keys[0].slice(), point = r.bytes(32);
    native.x25519(got, key, point);
    key[7] ^= 0x20;
    native.x25519(got, key, point);
    nobleBackend.x25519(want, key, point);
    assert.equal(toHex(got), toHex(want));
  },
});

Deno.test({
  name: "libcrypto xseal()/xopen() equal noble on 2,000 random inputs, tampering included",
  ignore,
  fn() {
    const r = source(2);
    for (let i = 0; i < CASES; i++) {
      const key = r.bytes(32), nonce = r.bytes(24);
      const plaintext = r.bytes(r.int(2000)), ad = r.bytes(r.int(64));
      const want = new Uint8Array(plaintext.length + 16);
      const got = new Uint8Array(plaintext.length + 16);
      nobleBackend.xseal(want, key, nonce, plaintext, ad);
      native.xseal(got, key, nonce, plaintext, ad);
      assert.equal(toHex(got), toHex(want), `case ${i}: ${plaintext.length} B`);
      const opened = new Uint8Array(plaintext.length);
      assert.equal(native.xopen(opened, key, nonce, got, ad), true, `case ${i}`);
      assert.deepEqual(opened, plaintext, `case ${i}`);
      const bad = got.slice();
      bad[r.int(bad.length - 1)] ^= 1 << r.int(7);
      assert.equal(native.xopen(opened, key, nonce, bad, ad), false, `case ${i} tampered`);
      assert.equal(nobleBackend.xopen(opened, key, nonce, bad, ad), false, `case ${i} tampered`);
      // The HChaCha20 half of the nonce and the ChaCha20 half both matter.
      const badNonce = nonce.slice();
      badNonce[r.int(23)] ^= 0x10;
      assert.equal(native.xopen(opened, key, badNonce, got, ad), false, `case ${i} nonce`);
    }
  },
});

Deno.test({
  name: "libcrypto blake2s() equals noble on 2,000 random inputs, keyed and unkeyed, 16 and 32 B",
  ignore,
  fn() {
    const r = source(3);
    for (let i = 0; i < CASES; i++) {
      const data = r.bytes(r.int(2000));
      const inputs = split(data, r);
      // Alternate the output length, so the MAC context switches size often.
      const len = i % 4 < 2 ? 32 : 16;
      const keyed = i % 2 === 1;
      const key = keyed ? r.bytes(1 + r.int(31)) : undefined;
      // Unkeyed digests shorter than 32 B are delegated to noble; still check them.
      const want = new Uint8Array(len), got = new Uint8Array(len);
      nobleBackend.blake2s(want, [data], key);
      native.blake2s(got, inputs, key);
      assert.equal(toHex(got), toHex(want), `case ${i}: ${data.length} B, key ${key?.length}`);
    }
    // Every keyed digest length 1–32.
    for (let len = 1; len <= 32; len++) {
      const key = r.bytes(32), data = r.bytes(148);
      const want = new Uint8Array(len), got = new Uint8Array(len);
      nobleBackend.blake2s(want, [data], key);
      native.blake2s(got, [data], key);
      assert.equal(toHex(got), toHex(want), `keyed, ${len} B`);
    }
  },
});

Deno.test({
  name: "libcrypto blake2s() rejects what noble rejects: empty or long keys, bad lengths",
  ignore,
  fn() {
    for (const b of [nobleBackend, native]) {
      assert.throws(() => b.blake2s(new Uint8Array(32), [], new Uint8Array(0)), b.name);
      assert.throws(() => b.blake2s(new Uint8Array(32), [], new Uint8Array(33)), b.name);
      assert.throws(() => b.blake2s(new Uint8Array(33), []), b.name);
      assert.throws(() => b.blake2s(new Uint8Array(0), [], new Uint8Array(16)), b.name);
    }
  },
});

/** 2^255 − 19 and its neighbours, little-endian: non-canonical u must be reduced. */
function edgePoints(): Uint8Array[] {
  const p = new Uint8Array(32).fill(0xff);
  p[0] = 0xed;
  p[31] = 0x7f;
  const pMinus1 = p.slice();
  pMinus1[0] = 0xec;
  const pPlus1 = p.slice();
  pPlus1[0] = 0xee;
  const all = new Uint8Array(32).fill(0xff);
  const nine = new Uint8Array(32);
  nine[0] = 9;
  const nineHigh = nine.slice();
  nineHigh[31] = 0x80;
  return [new Uint8Array(32), p, pMinus1, pPlus1, all, nine, nineHigh];
}

Deno.test({
  name: "libcrypto x25519() equals noble on 2,000 random inputs and non-canonical points",
  ignore,
  fn() {
    const r = source(4);
    const scalars: Uint8Array[] = [];
    const points: Uint8Array[] = [];
    for (let i = 0; i < CASES; i++) {
      scalars.push(r.bytes(32));
      // Every 8th point is the base point (publicKey()).
      const point = i % 8 === 0 ? edgePoints()[5] : r.bytes(32);
      points.push(point);
    }
    for (const p of edgePoints()) {
      scalars.push(r.bytes(32));
      points.push(p);
    }
    for (let i = 0; i < scalars.length; i++) {
      const want = new Uint8Array(32), got = new Uint8Array(32).fill(0x5a);
      nobleBackend.x25519(want, scalars[i], points[i]);
      native.x25519(got, scalars[i], points[i]);
      assert.equal(toHex(got), toHex(want), `case ${i}: u = ${toHex(points[i])}`);
    }
  },
});

Deno.test({
  name: "libcrypto x25519() leaves its inputs unchanged and clamps like RFC 7748",
  ignore,
  fn() {
    const r = source(5);
    const scalar = r.bytes(32), point = r.bytes(32);
    const scalarCopy = scalar.slice(), pointCopy = point.slice();
    const a = new Uint8Array(32), b = new Uint8Array(32);
    native.x25519(a, scalar, point);
    assert.deepEqual(scalar, scalarCopy);
    assert.deepEqual(point, pointCopy);
    // Clamping ignores the low 3 bits and bit 255, and sets bit 254.
    const clamped = scalar.slice();
    clamped[0] &= 248;
    clamped[31] = (clamped[31] & 127) | 64;
    native.x25519(b, clamped, point);
    assert.deepEqual(a, b);
  },
});

// ---------------------------------------------------------------------------
// In place and overlapping.

Deno.test({
  name: "libcrypto seal()/open()/xseal()/xopen() in place equal noble out of place",
  ignore,
  fn() {
    const r = source(6);
    for (let i = 0; i < 500; i++) {
      const key = r.bytes(32), nonce = r.bytes(12), xnonce = r.bytes(24);
      const plaintext = r.bytes(r.int(1500)), ad = r.bytes(r.int(40));
      const n = plaintext.length;
      const want = new Uint8Array(n + 16), xwant = new Uint8Array(n + 16);
      nobleBackend.seal(want, key, nonce, plaintext, ad);
      nobleBackend.xseal(xwant, key, xnonce, plaintext, ad);
      // A packet buffer with a header before and slack after, as the send path has.
      const at = r.int(32);
      const packet = new Uint8Array(at + n + 16 + r.int(32)).subarray(at, at + n + 16);
      packet.set(plaintext);
      native.seal(packet, key, nonce, packet.subarray(0, n), ad);
      assert.equal(toHex(packet), toHex(want), `case ${i} seal`);
      assert.equal(native.open(packet.subarray(0, n), key, nonce, packet, ad), true, `case ${i}`);
      assert.deepEqual(packet.subarray(0, n), plaintext, `case ${i} open`);
      packet.set(plaintext);
      native.xseal(packet, key, xnonce, packet.subarray(0, n), ad);
      assert.equal(toHex(packet), toHex(xwant), `case ${i} xseal`);
      assert.equal(native.xopen(packet.subarray(0, n), key, xnonce, packet, ad), true);
      assert.deepEqual(packet.subarray(0, n), plaintext, `case ${i} xopen`);
    }
  },
});

Deno.test({
  name: "libcrypto seal()/open() with partially overlapping buffers equal noble",
  ignore,
  fn() {
    const r = source(7);
    for (let i = 0; i < 200; i++) {
      const key = r.bytes(32), nonce = r.bytes(12);
      const plaintext = r.bytes(1 + r.int(300)), ad = r.bytes(r.int(20));
      const n = plaintext.length;
      const want = new Uint8Array(n + 16);
      nobleBackend.seal(want, key, nonce, plaintext, ad);
      const shift = 1 + r.int(15);
      const buf = new Uint8Array(n + 16 + 32);
      // Output starts `shift` bytes after the input, then before it.
      buf.set(plaintext, 16);
      native.seal(
        buf.subarray(16 + shift, 16 + shift + n + 16),
        key,
        nonce,
        buf.subarray(16, 16 + n),
        ad,
      );
      assert.equal(
        toHex(buf.subarray(16 + shift, 16 + shift + n + 16)),
        toHex(want),
        `case ${i} +`,
      );
      buf.fill(0).set(plaintext, 16);
      native.seal(
        buf.subarray(16 - shift, 16 - shift + n + 16),
        key,
        nonce,
        buf.subarray(16, 16 + n),
        ad,
      );
      assert.equal(
        toHex(buf.subarray(16 - shift, 16 - shift + n + 16)),
        toHex(want),
        `case ${i} −`,
      );
      buf.fill(0).set(want, 16);
      const out = buf.subarray(16 + shift, 16 + shift + n);
      assert.equal(native.open(out, key, nonce, buf.subarray(16, 16 + n + 16), ad), true);
      assert.deepEqual(out, plaintext, `case ${i} open`);
    }
  },
});

Deno.test({
  name: "libcrypto seal()/open()/blake2s() work on SharedArrayBuffer views (Worker rings)",
  ignore,
  fn() {
    const r = source(9);
    const sab = new SharedArrayBuffer(8192);
    const key = new Uint8Array(sab, 0, 32), nonce = new Uint8Array(sab, 32, 12);
    const plaintext = new Uint8Array(sab, 100, 1420), sealed = new Uint8Array(sab, 1600, 1436);
    key.set(r.bytes(32));
    nonce.set(r.bytes(12));
    plaintext.set(r.bytes(1420));
    const want = new Uint8Array(1436);
    nobleBackend.seal(want, key.slice(), nonce.slice(), plaintext.slice(), new Uint8Array(0));
    native.seal(sealed, key, nonce, plaintext, new Uint8Array(0));
    assert.deepEqual(sealed.slice(), want);
    const opened = new Uint8Array(sab, 3200, 1420);
    assert.equal(native.open(opened, key, nonce, sealed, new Uint8Array(0)), true);
    assert.deepEqual(opened.slice(), plaintext.slice());
    const digest = new Uint8Array(sab, 4800, 32), wantDigest = new Uint8Array(32);
    nobleBackend.blake2s(wantDigest, [plaintext.slice()]);
    native.blake2s(digest, [plaintext]);
    assert.deepEqual(digest.slice(), wantDigest);
  },
});

// ---------------------------------------------------------------------------
// Rejections leave no OpenSSL state behind; no leaks.

Deno.test({
  name: "libcrypto open() and low-order x25519() leave OpenSSL's error queue empty",
  ignore,
  fn() {
    // The same (reference-counted) library; the queue is per thread.
    const lib = Deno.dlopen("libcrypto.so.3", {
      ERR_peek_error: { parameters: [], result: "u64" },
    });
    try {
      const key = new Uint8Array(32), nonce = new Uint8Array(12);
      const sealed = new Uint8Array(64 + 16);
      native.seal(sealed, key, nonce, new Uint8Array(64), new Uint8Array(0));
      sealed[3] ^= 1;
      assert.equal(native.open(new Uint8Array(64), key, nonce, sealed, new Uint8Array(0)), false);
      assert.equal(lib.symbols.ERR_peek_error(), 0n);
      native.x25519(new Uint8Array(32), new Uint8Array(32).fill(7), new Uint8Array(32));
      assert.equal(lib.symbols.ERR_peek_error(), 0n);
    } finally {
      lib.close();
    }
  },
});

function rssMiB(): number {
  return Deno.memoryUsage().rss / (1 << 20);
}

Deno.test({
  name: "libcrypto x25519() and seal() do not leak: RSS grows < 20 MB over 50,000 calls each",
  ignore,
  fn() {
    const r = source(8);
    const scalar = r.bytes(32), point = r.bytes(32), out = new Uint8Array(32);
    const key = r.bytes(32), nonce = r.bytes(12), plaintext = r.bytes(1420);
    const sealed = new Uint8Array(1420 + 16), ad = r.bytes(32);
    // Warm up: the allocator's arenas and V8's heap reach their working size first.
    for (let i = 0; i < 5_000; i++) {
      native.x25519(out, scalar, point);
      native.seal(sealed, key, nonce, plaintext, ad);
      native.open(plaintext, key, nonce, sealed, ad);
    }
    const before = rssMiB();
    for (let i = 0; i < 50_000; i++) {
      scalar[0] = i;
      native.x25519(out, scalar, point);
    }
    const afterDh = rssMiB();
    for (let i = 0; i < 50_000; i++) {
      nonce[0] = i;
      native.seal(sealed, key, nonce, plaintext, ad);
      native.open(plaintext, key, nonce, sealed, ad);
      native.blake2s(out, [plaintext], key);
    }
    const after = rssMiB();
    assert.ok(
      afterDh - before < 20,
      `x25519: RSS ${before.toFixed(1)} → ${afterDh.toFixed(1)} MiB`,
    );
    assert.ok(
      after - afterDh < 20,
      `seal/open: RSS ${afterDh.toFixed(1)} → ${after.toFixed(1)} MiB`,
    );
  },
});

// ---------------------------------------------------------------------------
// Selection.

Deno.test({
  name: "selectCryptoBackend() picks libcrypto for native, auto and unset, noble for noble",
  ignore,
  fn() {
    for (const env of ["native", "NATIVE", " native "]) {
      const s = selectCryptoBackend(env);
      assert.equal(s.backend, native, env);
      assert.match(s.reason, /libcrypto .*OpenSSL 3.*self-test passed.*GOTATUN_CRYPTO=native/);
    }
    for (const env of [undefined, "", "auto", "Auto"]) {
      const s = selectCryptoBackend(env);
      assert.equal(s.backend, native, String(env));
      assert.match(s.reason, /libcrypto .*self-test passed; auto/);
    }
    assert.ok(libcryptoVersion()?.startsWith("OpenSSL 3"));
    const s = selectCryptoBackend("noble");
    assert.equal(s.backend, nobleBackend);
    assert.match(s.reason, /noble.*GOTATUN_CRYPTO=noble/);
    assert.equal(s.reason.includes("\n"), false);
  },
});

Deno.test("selectCryptoBackend() throws a clear error for an unknown GOTATUN_CRYPTO value", () => {
  for (const env of ["garbage", "openssl", "native,noble"]) {
    assert.throws(
      () => selectCryptoBackend(env),
      (e: Error) =>
        e.message === `GOTATUN_CRYPTO must be "native", "noble" or "auto", got "${env}"`,
    );
  }
});

Deno.test({
  name: "useBestCryptoBackend() installs the selected backend for the façade",
  ignore,
  fn() {
    const previous = cryptoBackend();
    try {
      assert.equal(useBestCryptoBackend("noble").backend, nobleBackend);
      assert.equal(cryptoBackend(), nobleBackend);
      const s = useBestCryptoBackend();
      assert.equal(s.backend, native);
      assert.equal(cryptoBackend(), native);
      setCryptoBackend(nobleBackend);
      assert.throws(() => useBestCryptoBackend("garbage"));
      assert.equal(cryptoBackend(), nobleBackend, "a failed selection changes nothing");
    } finally {
      setCryptoBackend(previous);
    }
  },
});

Deno.test("selectCryptoBackend() without --allow-ffi: auto falls back to noble, native throws", async () => {
  const code = `
    import { selectCryptoBackend } from ${
    JSON.stringify(new URL("../../src/crypto/select.ts", import.meta.url).href)
  };
    const auto = selectCryptoBackend("auto");
    let native = "no error";
    try { selectCryptoBackend("native"); } catch (e) { native = e.message; }
    console.log(JSON.stringify({ name: auto.backend.name, reason: auto.reason, native }));
  `;
  const config = new URL("../../deno.json", import.meta.url).pathname;
  // `deno eval` grants every permission, so run a file with none.
  const script = await Deno.makeTempFile({ prefix: "gotatun_select_", suffix: ".ts" });
  let out: Deno.CommandOutput;
  try {
    await Deno.writeTextFile(script, code);
    out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--config", config, script],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
  } finally {
    await Deno.remove(script);
  }
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(result.name, "noble");
  assert.match(result.reason, /^crypto: noble .*needs unscoped --allow-ffi/);
  assert.match(result.native, /^GOTATUN_CRYPTO=native: .*could not be loaded/);
});
