// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The crypto façade: WireGuard's HASH, MAC, HMAC, KDF1/2/3, AEAD, XAEAD and DH
 * (whitepaper §5.4), over a swappable {@link CryptoBackend}. Everything is
 * synchronous and writes into caller-provided buffers.
 *
 * Constant time: MACs and tags are compared with {@link timingSafeEqual}, which
 * has no data-dependent branches. The JIT and the garbage collector give no
 * formal constant-time guarantee in JavaScript (the same caveat noble and Deno
 * std state); the native backend keeps the primitives themselves in C.
 */
import type { CryptoBackend } from "./crypto/backend.ts";
import { nobleBackend } from "./crypto/noble.ts";
import type { Rng } from "./clock.ts";

export type { CryptoBackend } from "./crypto/backend.ts";

let backend: CryptoBackend = nobleBackend;

/** Replaces the crypto backend for the whole process (all callers see it at once). */
export function setCryptoBackend(b: CryptoBackend): void {
  backend = b;
}

/** The backend in use. */
export function cryptoBackend(): CryptoBackend {
  return backend;
}

const BLAKE2S_BLOCK = 64;
const ipad = new Uint8Array(BLAKE2S_BLOCK);
const opad = new Uint8Array(BLAKE2S_BLOCK);
const inner = new Uint8Array(32);
const nonce12 = new Uint8Array(12);
const nonce12View = new DataView(nonce12.buffer);
const one = new Uint8Array([1]);
const two = new Uint8Array([2]);
const three = new Uint8Array([3]);
const kdfT0 = new Uint8Array(32);
const kdfT = new Uint8Array(32);

/** HASH(inputs…): BLAKE2s-256 of the concatenation, into `out` (32 bytes). */
export function hash(out: Uint8Array, ...inputs: Uint8Array[]): void {
  backend.blake2s(out, inputs);
}

/** MAC(key, inputs…): keyed BLAKE2s with a 16-byte digest, into `out` (16 bytes). */
export function mac(out: Uint8Array, key: Uint8Array, ...inputs: Uint8Array[]): void {
  backend.blake2s(out, inputs, key);
}

/** HMAC(key, inputs…) with BLAKE2s-256 (RFC 2104), into `out` (32 bytes). */
export function hmac(out: Uint8Array, key: Uint8Array, ...inputs: Uint8Array[]): void {
  if (key.length > BLAKE2S_BLOCK) throw new RangeError("HMAC key longer than a block");
  ipad.fill(0x36);
  opad.fill(0x5c);
  for (let i = 0; i < key.length; i++) {
    ipad[i] ^= key[i];
    opad[i] ^= key[i];
  }
  backend.blake2s(inner, [ipad, ...inputs]);
  backend.blake2s(out, [opad, inner]);
  ipad.fill(0);
  opad.fill(0);
  inner.fill(0);
}

/**
 * KDF_n(key, input) for n = outs.length (1 to 3), whitepaper §5.4:
 * τ0 = HMAC(key, input), τ1 = HMAC(τ0, 0x1), τi = HMAC(τ0, τi−1 ‖ i).
 * Each output is 32 bytes. Outputs may alias `key`.
 */
export function kdf(outs: Uint8Array[], key: Uint8Array, input: Uint8Array): void {
  if (outs.length < 1 || outs.length > 3) throw new RangeError("KDF produces 1 to 3 outputs");
  hmac(kdfT0, key, input);
  hmac(kdfT, kdfT0, one);
  outs[0].set(kdfT);
  if (outs.length > 1) {
    hmac(kdfT, kdfT0, kdfT, two);
    outs[1].set(kdfT);
  }
  if (outs.length > 2) {
    hmac(kdfT, kdfT0, kdfT, three);
    outs[2].set(kdfT);
  }
  kdfT0.fill(0);
  kdfT.fill(0);
}

function setCounterNonce(lo: number, hi: number): void {
  // 32 zero bits, then the 64-bit counter little-endian (whitepaper §5.4).
  nonce12View.setUint32(4, lo >>> 0, true);
  nonce12View.setUint32(8, hi >>> 0, true);
}

/**
 * AEAD(key, counter, plaintext, ad): ChaCha20-Poly1305 with the nonce
 * 0^32 ‖ LE64(counter); the counter is given as its low and high u32 halves.
 * `out.length` must be `plaintext.length + 16`.
 */
export function aeadSeal(
  out: Uint8Array,
  key: Uint8Array,
  counter: { lo: number; hi: number },
  plaintext: Uint8Array,
  ad: Uint8Array,
): void {
  setCounterNonce(counter.lo, counter.hi);
  backend.seal(out, key, nonce12, plaintext, ad);
}

/** Opens an {@link aeadSeal} ciphertext; false when it does not authenticate. */
export function aeadOpen(
  out: Uint8Array,
  key: Uint8Array,
  counter: { lo: number; hi: number },
  ciphertext: Uint8Array,
  ad: Uint8Array,
): boolean {
  if (ciphertext.length < 16) return false;
  setCounterNonce(counter.lo, counter.hi);
  return backend.open(out, key, nonce12, ciphertext, ad);
}

/** Counter zero, used by the handshake's AEADs. */
export const ZERO_COUNTER: { readonly lo: number; readonly hi: number } = { lo: 0, hi: 0 };

/** XAEAD(key, nonce, plaintext, ad): XChaCha20-Poly1305 with a 24-byte nonce. */
export function xaeadSeal(
  out: Uint8Array,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  ad: Uint8Array,
): void {
  backend.xseal(out, key, nonce, plaintext, ad);
}

/** Opens an {@link xaeadSeal} ciphertext; false when it does not authenticate. */
export function xaeadOpen(
  out: Uint8Array,
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  ad: Uint8Array,
): boolean {
  if (ciphertext.length < 16) return false;
  return backend.xopen(out, key, nonce, ciphertext, ad);
}

/** Clamps a Curve25519 private key in place (RFC 7748 §5) and returns it. */
export function clampPrivateKey(key: Uint8Array): Uint8Array {
  key[0] &= 248;
  key[31] = (key[31] & 127) | 64;
  return key;
}

/** A new random, clamped private key. */
export function generatePrivateKey(rng: Rng): Uint8Array {
  const key = new Uint8Array(32);
  rng(key);
  return clampPrivateKey(key);
}

const BASE_POINT = new Uint8Array(32);
BASE_POINT[0] = 9;

/** The public key of `privateKey`, into `out` (32 bytes), and returns `out`. */
export function publicKey(
  privateKey: Uint8Array,
  out: Uint8Array = new Uint8Array(32),
): Uint8Array {
  backend.x25519(out, privateKey, BASE_POINT);
  return out;
}

/**
 * DH(privateKey, publicKey) into `out` (32 bytes). Returns false when the
 * result is all zeros (a low-order public key), which the protocol must reject.
 */
export function dh(out: Uint8Array, privateKey: Uint8Array, publicKey: Uint8Array): boolean {
  backend.x25519(out, privateKey, publicKey);
  return !isZero(out);
}

/**
 * Tells the backend that `privateKey` is about to be wiped, so it drops any
 * copy it keeps (see {@link CryptoBackend.forget}).
 */
export function forgetPrivateKey(privateKey: Uint8Array): void {
  backend.forget?.(privateKey);
}

/** Compares two byte strings without data-dependent branches on their contents. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** True when every byte is zero, in time independent of the contents. */
export function isZero(a: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i];
  return acc === 0;
}

/** Overwrites each buffer with zeros. */
export function wipe(...arrays: (Uint8Array | null | undefined)[]): void {
  for (const a of arrays) a?.fill(0);
}
