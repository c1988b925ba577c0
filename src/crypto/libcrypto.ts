// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The native crypto backend: the system's OpenSSL 3 `libcrypto.so.3` through
 * Deno FFI. It implements the same {@link CryptoBackend} contract as the noble
 * backend, byte for byte (test/crypto/libcrypto_test.ts checks it against the
 * RFC vectors and differentially against noble), and is several times faster:
 * the data path's ChaCha20-Poly1305 is four FFI calls per seal and three per
 * open (libcrypto_aead.ts) and the primitives run in OpenSSL's assembly.
 *
 * {@link loadLibcryptoBackend} returns null, never throws, when the library,
 * one of its symbols, an algorithm or the (unscoped) `--allow-ffi` permission
 * is missing; callers then keep noble (see select.ts).
 *
 * How each primitive maps onto OpenSSL 3.0:
 * - ChaCha20-Poly1305: see libcrypto_aead.ts (long-lived contexts that keep
 *   their key, the nonce and tag through prepared OSSL_PARAM arrays, no
 *   per-packet allocation in C or JS, no BigInt).
 * - XChaCha20-Poly1305: OpenSSL has no XChaCha AEAD, so HChaCha20
 *   (draft-irtf-cfrg-xchacha-03 §2.2) derives the subkey here in TypeScript and
 *   the AEAD above runs with the nonce 0^32 ‖ nonce[16..24] (§2.3). Only cookie
 *   replies use it.
 * - BLAKE2s: unkeyed 32-byte digests (HASH, HMAC) use the `BLAKE2S-256`
 *   `EVP_MD`; keyed digests of any length 1–32 (MAC1, MAC2, cookies) use the
 *   `BLAKE2SMAC` `EVP_MAC` with its "size" parameter. OpenSSL 3.0's
 *   BLAKE2S-256 has no settable length, so an *unkeyed* digest shorter than 32
 *   bytes, which WireGuard never asks for, is delegated to noble.
 * - X25519: `EVP_PKEY_derive` of the scalar and the point, each imported with
 *   `EVP_PKEY_fromdata` through one reused X25519 key-management context. The
 *   private key is imported together with a placeholder public key: importing
 *   a bare private key makes OpenSSL compute its public key, a second scalar
 *   multiplication that derive never reads (ecx_exch.c uses only our private
 *   key and the peer's public key). The derive context of each of the two most
 *   recently used private keys (four) is kept (see DeriveSlot), so a handshake's
 *   repeated uses of its ephemeral and static keys skip the import. The base
 *   point (publicKey()) is imported once; OpenSSL's fixed-base public-key
 *   routine measured no faster here. OpenSSL clamps the scalar and masks bit
 *   255 of u itself (RFC 7748 §5), and refuses an all-zero shared secret,
 *   which is written as zeros as the contract asks.
 *
 * Secrets: the scratch copies of private keys are wiped after each call.
 * OpenSSL's long-lived contexts keep the last few ChaCha20 keys and the last
 * MAC key until later calls overwrite them, as any cipher context does.
 *
 * Threads: contexts are per module instance. Each Worker that imports this
 * module loads its own copy and never shares a context with another thread.
 */
import { cstr } from "../sys/libc.ts";
import type { CryptoBackend } from "./backend.ts";
import { timingSafeEqual } from "../crypto.ts";
import { AEAD_SYMBOLS, ChachaPoly, OSSL_PARAM_SIZE, writeParam } from "./libcrypto_aead.ts";
import { nobleBackend } from "./noble.ts";

/** The soname the dynamic loader resolves on every mainstream distribution. */
const SONAME = "libcrypto.so.3";

/** Absolute paths tried when the soname is not on the loader's path. */
const FALLBACK_PATHS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
  "/lib/x86_64-linux-gnu/libcrypto.so.3",
  "/usr/lib/aarch64-linux-gnu/libcrypto.so.3",
  "/lib/aarch64-linux-gnu/libcrypto.so.3",
  "/usr/lib64/libcrypto.so.3",
  "/lib64/libcrypto.so.3",
  "/usr/lib/libcrypto.so.3",
  "/usr/local/lib64/libcrypto.so.3",
  "/usr/local/lib/libcrypto.so.3",
];

const SYMBOLS = {
  ...AEAD_SYMBOLS,
  OpenSSL_version_num: { parameters: [], result: "u64" },
  OpenSSL_version: { parameters: ["i32"], result: "pointer" },
  EVP_MD_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  EVP_MD_CTX_new: { parameters: [], result: "pointer" },
  EVP_DigestInit_ex2: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
  EVP_DigestUpdate: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  EVP_DigestFinal_ex: { parameters: ["pointer", "buffer", "pointer"], result: "i32" },
  EVP_MAC_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  EVP_MAC_CTX_new: { parameters: ["pointer"], result: "pointer" },
  EVP_MAC_CTX_set_params: { parameters: ["pointer", "buffer"], result: "i32" },
  EVP_MAC_init: { parameters: ["pointer", "buffer", "usize", "pointer"], result: "i32" },
  EVP_MAC_update: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  EVP_MAC_final: { parameters: ["pointer", "buffer", "buffer", "usize"], result: "i32" },
  EVP_PKEY_CTX_new_from_name: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  EVP_PKEY_CTX_new_from_pkey: { parameters: ["pointer", "pointer", "pointer"], result: "pointer" },
  EVP_PKEY_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_fromdata_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_fromdata: { parameters: ["pointer", "buffer", "i32", "buffer"], result: "i32" },
  EVP_PKEY_derive_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_derive_set_peer_ex: { parameters: ["pointer", "pointer", "i32"], result: "i32" },
  EVP_PKEY_derive: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_PKEY_free: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;
type Sym = Lib["symbols"];

// <openssl/core.h>, <openssl/core_dispatch.h> (OpenSSL 3.0).
const OSSL_PARAM_UNSIGNED_INTEGER = 2;
const OSSL_PARAM_OCTET_STRING = 5;
/** EVP_PKEY_PUBLIC_KEY: all parameters | OSSL_KEYMGMT_SELECT_PUBLIC_KEY. */
const EVP_PKEY_PUBLIC_KEY = 0x86;
/** EVP_PKEY_KEYPAIR: EVP_PKEY_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_PRIVATE_KEY. */
const EVP_PKEY_KEYPAIR = 0x87;

// Layout of the arena: the OSSL_PARAM key names, the key material and cells
// they point at, then the OSSL_PARAM arrays (each ends with an all-zero
// OSSL_PARAM_END entry, left zero in the arena).
const AT_NAME_PRIV = 0;
const AT_NAME_PUB = 8;
const AT_NAME_SIZE = 16;
const AT_PRIV = 32;
const AT_PUB = 64;
/** The placeholder public key of the private-key import: 32 zero bytes. */
const AT_PLACEHOLDER_PUB = 96;
const AT_MAC_SIZE = 128;
const AT_PPKEY = 136;
const AT_SIZE_CELL = 144;
const AT_KEYPAIR_PARAMS = 152;
const AT_PUB_PARAMS = AT_KEYPAIR_PARAMS + 3 * OSSL_PARAM_SIZE;
const AT_SIZE_PARAMS = AT_PUB_PARAMS + 2 * OSSL_PARAM_SIZE;
const ARENA_SIZE = AT_SIZE_PARAMS + 2 * OSSL_PARAM_SIZE;

/** Small lengths as bigint: BLAKE2s of handshake-sized inputs creates none per call. */
const SMALL_BIGINT: readonly bigint[] = Array.from({ length: 257 }, (_, i) => BigInt(i));

function big(n: number): bigint {
  return n < SMALL_BIGINT.length ? SMALL_BIGINT[n] : BigInt(n);
}

/** The XChaCha20 nonce layout of draft-irtf-cfrg-xchacha-03 §2.3. */
const HCHACHA_NONCE = 16;
const XNONCE_SIZE = 24;

/**
 * HChaCha20 (draft-irtf-cfrg-xchacha-03 §2.2): the ChaCha20 block function's
 * 20 rounds over key and a 16-byte nonce, without the final addition; the
 * subkey is state words 0–3 and 12–15, little-endian.
 */
function hchacha20(out: Uint8Array, key: Uint8Array, nonce: Uint8Array): void {
  const s = hchachaState;
  s[0] = 0x61707865; // "expand 32-byte k"
  s[1] = 0x3320646e;
  s[2] = 0x79622d32;
  s[3] = 0x6b206574;
  for (let i = 0; i < 8; i++) s[4 + i] = readLE32(key, 4 * i);
  for (let i = 0; i < 4; i++) s[12 + i] = readLE32(nonce, 4 * i);
  let x0 = s[0], x1 = s[1], x2 = s[2], x3 = s[3], x4 = s[4], x5 = s[5], x6 = s[6], x7 = s[7];
  let x8 = s[8], x9 = s[9], x10 = s[10], x11 = s[11], x12 = s[12], x13 = s[13], x14 = s[14];
  let x15 = s[15];
  for (let round = 0; round < 20; round += 2) {
    // Column round.
    x0 = (x0 + x4) | 0, x12 = rotl(x12 ^ x0, 16), x8 = (x8 + x12) | 0, x4 = rotl(x4 ^ x8, 12);
    x0 = (x0 + x4) | 0, x12 = rotl(x12 ^ x0, 8), x8 = (x8 + x12) | 0, x4 = rotl(x4 ^ x8, 7);
    x1 = (x1 + x5) | 0, x13 = rotl(x13 ^ x1, 16), x9 = (x9 + x13) | 0, x5 = rotl(x5 ^ x9, 12);
    x1 = (x1 + x5) | 0, x13 = rotl(x13 ^ x1, 8), x9 = (x9 + x13) | 0, x5 = rotl(x5 ^ x9, 7);
    x2 = (x2 + x6) | 0, x14 = rotl(x14 ^ x2, 16), x10 = (x10 + x14) | 0, x6 = rotl(x6 ^ x10, 12);
    x2 = (x2 + x6) | 0, x14 = rotl(x14 ^ x2, 8), x10 = (x10 + x14) | 0, x6 = rotl(x6 ^ x10, 7);
    x3 = (x3 + x7) | 0, x15 = rotl(x15 ^ x3, 16), x11 = (x11 + x15) | 0, x7 = rotl(x7 ^ x11, 12);
    x3 = (x3 + x7) | 0, x15 = rotl(x15 ^ x3, 8), x11 = (x11 + x15) | 0, x7 = rotl(x7 ^ x11, 7);
    // Diagonal round.
    x0 = (x0 + x5) | 0, x15 = rotl(x15 ^ x0, 16), x10 = (x10 + x15) | 0, x5 = rotl(x5 ^ x10, 12);
    x0 = (x0 + x5) | 0, x15 = rotl(x15 ^ x0, 8), x10 = (x10 + x15) | 0, x5 = rotl(x5 ^ x10, 7);
    x1 = (x1 + x6) | 0, x12 = rotl(x12 ^ x1, 16), x11 = (x11 + x12) | 0, x6 = rotl(x6 ^ x11, 12);
    x1 = (x1 + x6) | 0, x12 = rotl(x12 ^ x1, 8), x11 = (x11 + x12) | 0, x6 = rotl(x6 ^ x11, 7);
    x2 = (x2 + x7) | 0, x13 = rotl(x13 ^ x2, 16), x8 = (x8 + x13) | 0, x7 = rotl(x7 ^ x8, 12);
    x2 = (x2 + x7) | 0, x13 = rotl(x13 ^ x2, 8), x8 = (x8 + x13) | 0, x7 = rotl(x7 ^ x8, 7);
    x3 = (x3 + x4) | 0, x14 = rotl(x14 ^ x3, 16), x9 = (x9 + x14) | 0, x4 = rotl(x4 ^ x9, 12);
    x3 = (x3 + x4) | 0, x14 = rotl(x14 ^ x3, 8), x9 = (x9 + x14) | 0, x4 = rotl(x4 ^ x9, 7);
  }
  writeLE32(out, 0, x0);
  writeLE32(out, 4, x1);
  writeLE32(out, 8, x2);
  writeLE32(out, 12, x3);
  writeLE32(out, 16, x12);
  writeLE32(out, 20, x13);
  writeLE32(out, 24, x14);
  writeLE32(out, 28, x15);
  s.fill(0);
}

const hchachaState = new Uint32Array(16);

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

function readLE32(b: Uint8Array, i: number): number {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
}

function writeLE32(b: Uint8Array, i: number, v: number): void {
  b[i] = v;
  b[i + 1] = v >>> 8;
  b[i + 2] = v >>> 16;
  b[i + 3] = v >>> 24;
}

function failed(what: string): Error {
  return new Error(`libcrypto: ${what} failed`);
}

/**
 * One loaded libcrypto with its contexts and scratch memory. Fields that
 * OpenSSL reads through a pointer stored in another struct (the OSSL_PARAM
 * arrays) live in {@link #arena}, one explicitly allocated ArrayBuffer, so the
 * addresses never move and stay alive as long as this object.
 */
/**
 * A private key's X25519 derive context (EVP_PKEY_CTX after
 * EVP_PKEY_derive_init), kept so the next DH with the same key costs one
 * set_peer and one derive. Importing the key, creating the context and
 * initialising it cost ~14 µs per DH here on top of the ~34 µs of the scalar
 * multiplication (`openssl speed ecdhx25519`). A handshake uses each
 * ephemeral key three times (public key and two DHs) and the static key once
 * or twice, so two slots serve one side of it (four: both sides in one
 * process, as tests and benchmarks run it). The key lives in OpenSSL's memory until
 * the slot is reused or {@link CryptoBackend.forget} drops it, which the
 * handshake does when it wipes its ephemeral key; OpenSSL clears a key's
 * bytes when it frees it.
 */
interface DeriveSlot {
  scalar: Uint8Array;
  ctx: Deno.PointerObject | null;
  used: number;
}

function newSlot(): DeriveSlot {
  return { scalar: new Uint8Array(32), ctx: null, used: 0 };
}

const BASE_POINT = new Uint8Array(32);
BASE_POINT[0] = 9;

class Libcrypto {
  readonly version: string;
  /** Held so the library is never unloaded while the backend is reachable. */
  #lib: Lib;
  #s: Sym;
  #aead: ChachaPoly;
  #mdCtx: Deno.PointerObject;
  #macCtx: Deno.PointerObject;
  #macSize = 0;
  #pkeyCtx: Deno.PointerObject;
  /** Derive contexts of the four most recently used private keys. */
  #slots: DeriveSlot[] = [newSlot(), newSlot(), newSlot(), newSlot()];
  #uses = 0;
  /** The imported base point (9), kept for publicKey(). */
  #basePoint: Deno.PointerObject | null = null;
  #subkey = new Uint8Array(32);
  #xnonce = new Uint8Array(12);
  #arena = new ArrayBuffer(ARENA_SIZE);
  /** Private key bytes the keypair OSSL_PARAM array points at (wiped after use). */
  #priv = new Uint8Array(this.#arena, AT_PRIV, 32);
  /** Peer public key bytes the public OSSL_PARAM array points at. */
  #pub = new Uint8Array(this.#arena, AT_PUB, 32);
  /** The value of the BLAKE2SMAC "size" parameter. */
  #macSizeValue = new BigUint64Array(this.#arena, AT_MAC_SIZE, 1);
  /** `EVP_PKEY **` out-cell for EVP_PKEY_fromdata. */
  #ppkey = new BigUint64Array(this.#arena, AT_PPKEY, 1);
  /** `size_t *` in/out length cell for EVP_PKEY_derive and EVP_MAC_final. */
  #sizeCell = new BigUint64Array(this.#arena, AT_SIZE_CELL, 1);
  /** {priv, placeholder pub}: a private key import that computes no public key. */
  #keypairParams = new Uint8Array(this.#arena, AT_KEYPAIR_PARAMS, 3 * OSSL_PARAM_SIZE);
  /** {pub}: the peer's public key. */
  #pubParams = new Uint8Array(this.#arena, AT_PUB_PARAMS, 2 * OSSL_PARAM_SIZE);
  /** {size}: the keyed BLAKE2s digest length. */
  #sizeParams = new Uint8Array(this.#arena, AT_SIZE_PARAMS, 2 * OSSL_PARAM_SIZE);

  constructor(lib: Lib) {
    this.#lib = lib;
    const s = this.#s = lib.symbols;
    if (s.OpenSSL_version_num() < 0x30000000n) throw failed("version check (need OpenSSL 3)");
    const v = s.OpenSSL_version(0);
    this.version = v === null ? "OpenSSL 3" : Deno.UnsafePointerView.getCString(v);

    this.#aead = new ChachaPoly(s);
    const md = s.EVP_MD_fetch(null, cstr("BLAKE2S-256"), null);
    const mac = s.EVP_MAC_fetch(null, cstr("BLAKE2SMAC"), null);
    if (md === null || mac === null) throw failed("algorithm fetch");
    this.#mdCtx = notNull(s.EVP_MD_CTX_new(), "EVP_MD_CTX_new");
    if (s.EVP_DigestInit_ex2(this.#mdCtx, md, null) !== 1) throw failed("EVP_DigestInit_ex2");
    this.#macCtx = notNull(s.EVP_MAC_CTX_new(mac), "EVP_MAC_CTX_new");
    this.#pkeyCtx = notNull(
      s.EVP_PKEY_CTX_new_from_name(null, cstr("X25519"), null),
      "EVP_PKEY_CTX_new_from_name",
    );
    if (s.EVP_PKEY_fromdata_init(this.#pkeyCtx) !== 1) throw failed("EVP_PKEY_fromdata_init");
    this.#buildParams();
  }

  /** Writes the constant OSSL_PARAM arrays (and their key names) into the arena. */
  #buildParams(): void {
    const bytes = new Uint8Array(this.#arena);
    bytes.set(cstr("priv"), AT_NAME_PRIV);
    bytes.set(cstr("pub"), AT_NAME_PUB);
    bytes.set(cstr("size"), AT_NAME_SIZE);
    const a = this.#arena, T = OSSL_PARAM_OCTET_STRING;
    writeParam(a, AT_KEYPAIR_PARAMS, AT_NAME_PRIV, T, AT_PRIV, 32);
    writeParam(a, AT_KEYPAIR_PARAMS + OSSL_PARAM_SIZE, AT_NAME_PUB, T, AT_PLACEHOLDER_PUB, 32);
    writeParam(a, AT_PUB_PARAMS, AT_NAME_PUB, T, AT_PUB, 32);
    writeParam(a, AT_SIZE_PARAMS, AT_NAME_SIZE, OSSL_PARAM_UNSIGNED_INTEGER, AT_MAC_SIZE, 8);
  }

  seal(out: Uint8Array, key: Uint8Array, nonce: Uint8Array, pt: Uint8Array, ad: Uint8Array): void {
    this.#aead.seal(out, key, nonce, pt, ad);
  }

  open(
    out: Uint8Array,
    key: Uint8Array,
    nonce: Uint8Array,
    ct: Uint8Array,
    ad: Uint8Array,
  ): boolean {
    return this.#aead.open(out, key, nonce, ct, ad);
  }

  xseal(out: Uint8Array, key: Uint8Array, nonce: Uint8Array, pt: Uint8Array, ad: Uint8Array): void {
    this.#xkey(key, nonce);
    try {
      this.seal(out, this.#subkey, this.#xnonce, pt, ad);
    } finally {
      this.#subkey.fill(0);
    }
  }

  xopen(
    out: Uint8Array,
    key: Uint8Array,
    nonce: Uint8Array,
    ct: Uint8Array,
    ad: Uint8Array,
  ): boolean {
    this.#xkey(key, nonce);
    try {
      return this.open(out, this.#subkey, this.#xnonce, ct, ad);
    } finally {
      this.#subkey.fill(0);
    }
  }

  /** Subkey = HChaCha20(key, nonce[0..16]); nonce12 = 0^32 ‖ nonce[16..24]. */
  #xkey(key: Uint8Array, nonce: Uint8Array): void {
    if (key.length !== 32) throw new RangeError("XChaCha20-Poly1305 key must be 32 bytes");
    if (nonce.length !== XNONCE_SIZE) {
      throw new RangeError("XChaCha20-Poly1305 nonce must be 24 bytes");
    }
    hchacha20(this.#subkey, key, nonce);
    const x = this.#xnonce;
    for (let i = 0; i < 8; i++) x[4 + i] = nonce[HCHACHA_NONCE + i];
  }

  blake2s(out: Uint8Array, inputs: readonly Uint8Array[], key?: Uint8Array): void {
    const len = out.length;
    if (len < 1 || len > 32) throw new RangeError("BLAKE2s digest length must be 1 to 32 bytes");
    const s = this.#s;
    if (key === undefined) {
      if (len !== 32) {
        // OpenSSL 3.0's BLAKE2S-256 cannot be shortened; WireGuard never needs this.
        nobleBackend.blake2s(out, inputs);
        return;
      }
      const ctx = this.#mdCtx;
      let bad = s.EVP_DigestInit_ex2(ctx, null, null) ^ 1;
      for (const input of inputs) {
        if (input.length > 0) bad |= s.EVP_DigestUpdate(ctx, input, big(input.length)) ^ 1;
      }
      bad |= s.EVP_DigestFinal_ex(ctx, out, null) ^ 1;
      if (bad !== 0) throw failed("BLAKE2s digest");
      return;
    }
    if (key.length < 1 || key.length > 32) {
      throw new RangeError("BLAKE2s key must be 1 to 32 bytes");
    }
    const ctx = this.#macCtx;
    let bad = 0;
    if (len !== this.#macSize) {
      this.#macSizeValue[0] = big(len);
      bad = s.EVP_MAC_CTX_set_params(ctx, this.#sizeParams) ^ 1;
      this.#macSize = bad === 0 ? len : 0;
    }
    // Re-initialising with a key restarts BLAKE2s with the stored digest length.
    bad |= s.EVP_MAC_init(ctx, key, big(key.length), null) ^ 1;
    for (const input of inputs) {
      if (input.length > 0) bad |= s.EVP_MAC_update(ctx, input, big(input.length)) ^ 1;
    }
    bad |= s.EVP_MAC_final(ctx, out, this.#sizeCell, big(len)) ^ 1;
    if (bad !== 0) throw failed("keyed BLAKE2s");
  }

  x25519(out: Uint8Array, scalar: Uint8Array, point: Uint8Array): void {
    if (scalar.length !== 32 || point.length !== 32 || out.length !== 32) {
      throw new RangeError("X25519 scalar, point and output must be 32 bytes");
    }
    const s = this.#s;
    const slot = this.#deriveSlot(scalar);
    const isBase = timingSafeEqual(point, BASE_POINT);
    let peer = isBase ? this.#basePoint : null;
    if (peer === null) {
      this.#pub.set(point);
      peer = this.#importKey(this.#pubParams, EVP_PKEY_PUBLIC_KEY);
      if (peer === null) throw failed("X25519 public key import");
      if (isBase) this.#basePoint = peer;
    }
    this.#sizeCell[0] = 32n;
    const ok = s.EVP_PKEY_derive_set_peer_ex(slot.ctx, peer, 0) === 1 &&
      s.EVP_PKEY_derive(slot.ctx, out, this.#sizeCell) === 1;
    // The context holds its own reference to the peer key until the next set_peer.
    if (!isBase) s.EVP_PKEY_free(peer);
    if (!ok) {
      // OpenSSL refuses an all-zero shared secret (a low-order point, RFC 7748
      // §6.1); the contract is to write zeros and let the caller reject it.
      // The context is dropped rather than trusted after a failure.
      out.fill(0);
      s.ERR_clear_error();
      this.#dropSlot(slot);
    }
  }

  /** Frees the derive context kept for `scalar`, if any (see {@link DeriveSlot}). */
  forget(scalar: Uint8Array): void {
    for (const slot of this.#slots) {
      if (slot.ctx !== null && timingSafeEqual(slot.scalar, scalar)) this.#dropSlot(slot);
    }
  }

  /**
   * The derive context of `scalar`: the slot that holds it, or the least
   * recently used slot, refilled (import, new context, derive_init).
   */
  #deriveSlot(scalar: Uint8Array): DeriveSlot & { ctx: Deno.PointerObject } {
    const slots = this.#slots;
    let victim = slots[0];
    for (const slot of slots) {
      if (slot.ctx !== null && timingSafeEqual(slot.scalar, scalar)) {
        slot.used = ++this.#uses;
        return slot as DeriveSlot & { ctx: Deno.PointerObject };
      }
      if (slot.used < victim.used) victim = slot;
    }
    this.#dropSlot(victim);
    const s = this.#s;
    this.#priv.set(scalar);
    const priv = this.#importKey(this.#keypairParams, EVP_PKEY_KEYPAIR);
    this.#priv.fill(0);
    if (priv === null) throw failed("X25519 private key import");
    // The context holds its own reference to the key.
    const ctx = s.EVP_PKEY_CTX_new_from_pkey(null, priv, null);
    s.EVP_PKEY_free(priv);
    if (ctx === null) throw failed("EVP_PKEY_CTX_new_from_pkey");
    if (s.EVP_PKEY_derive_init(ctx) !== 1) {
      s.EVP_PKEY_CTX_free(ctx);
      s.ERR_clear_error();
      throw failed("EVP_PKEY_derive_init");
    }
    victim.scalar.set(scalar);
    victim.ctx = ctx;
    victim.used = ++this.#uses;
    return victim as DeriveSlot & { ctx: Deno.PointerObject };
  }

  #dropSlot(slot: DeriveSlot): void {
    if (slot.ctx !== null) this.#s.EVP_PKEY_CTX_free(slot.ctx);
    slot.ctx = null;
    slot.scalar.fill(0);
    slot.used = 0;
  }

  #importKey(params: Uint8Array, selection: number): Deno.PointerObject | null {
    this.#ppkey[0] = 0n;
    const ok = this.#s.EVP_PKEY_fromdata(this.#pkeyCtx, this.#ppkey, selection, params);
    if (ok !== 1) {
      // EVP_PKEY_fromdata frees the key it allocated and resets *ppkey itself.
      this.#s.ERR_clear_error();
      return null;
    }
    return Deno.UnsafePointer.create(this.#ppkey[0]);
  }
}

function notNull(p: Deno.PointerValue, what: string): Deno.PointerObject {
  if (p === null) throw failed(what);
  return p;
}

function open(): Lib | null {
  // Deno.UnsafePointer.of (for the OSSL_PARAM arrays) needs the unscoped FFI
  // permission. Without it, do not even try: a dlopen would prompt on a
  // terminal instead of failing.
  if (!ffiGranted()) return null;
  for (const path of [SONAME, ...FALLBACK_PATHS]) {
    try {
      return Deno.dlopen(path, SYMBOLS);
    } catch {
      // Not found, or a symbol missing (not OpenSSL 3): try the next.
    }
  }
  return null;
}

function ffiGranted(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

let loaded: { backend: CryptoBackend; version: string } | null | undefined;

/**
 * The libcrypto backend, or null when OpenSSL 3's libcrypto (or one of the
 * symbols or algorithms above, or the FFI permission) is unavailable. The
 * library is opened once per module instance; later calls return the same
 * backend. Never throws.
 */
export function loadLibcryptoBackend(): CryptoBackend | null {
  if (loaded === undefined) loaded = load();
  return loaded?.backend ?? null;
}

/** The OpenSSL version string of the loaded backend ("OpenSSL 3.0.19 27 Jan 2026"), or null. */
export function libcryptoVersion(): string | null {
  if (loaded === undefined) loaded = load();
  return loaded?.version ?? null;
}

function load(): { backend: CryptoBackend; version: string } | null {
  const lib = open();
  if (lib === null) return null;
  let impl: Libcrypto;
  try {
    impl = new Libcrypto(lib);
  } catch {
    try {
      lib.close();
    } catch {
      // Closing is best effort.
    }
    return null;
  }
  // A plain object like nobleBackend, so its methods also work when detached.
  const backend: CryptoBackend = {
    name: "libcrypto",
    blake2s(out, inputs, key) {
      impl.blake2s(out, inputs, key);
    },
    seal(out, key, nonce, pt, ad) {
      impl.seal(out, key, nonce, pt, ad);
    },
    open(out, key, nonce, ct, ad) {
      return impl.open(out, key, nonce, ct, ad);
    },
    xseal(out, key, nonce, pt, ad) {
      impl.xseal(out, key, nonce, pt, ad);
    },
    xopen(out, key, nonce, ct, ad) {
      return impl.xopen(out, key, nonce, ct, ad);
    },
    x25519(out, scalar, point) {
      impl.x25519(out, scalar, point);
    },
    forget(scalar) {
      impl.forget(scalar);
    },
  };
  return { backend, version: impl.version };
}
