// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The native crypto backend: the system's OpenSSL 3 `libcrypto.so.3` through
 * Deno FFI. It implements the same {@link CryptoBackend} contract as the noble
 * backend, byte for byte (test/crypto/libcrypto_test.ts checks it against the
 * RFC vectors and differentially against noble), and is several times faster:
 * the data path's ChaCha20-Poly1305 is four FFI calls per packet and the
 * primitives themselves run in OpenSSL's assembly.
 *
 * {@link loadLibcryptoBackend} returns null, never throws, when the library,
 * one of its symbols, an algorithm or the (unscoped) `--allow-ffi` permission
 * is missing; callers then keep noble (see select.ts).
 *
 * How each primitive maps onto OpenSSL 3.0:
 * - ChaCha20-Poly1305: one long-lived `EVP_CIPHER_CTX` per direction, re-keyed
 *   per call with `EVP_{En,De}cryptInit_ex(ctx, NULL, NULL, key, iv)` (this
 *   keeps the fetched cipher, no per-packet allocation in C or JS). AD goes
 *   through `Update` with a NULL output; the tag through `EVP_CIPHER_CTX_ctrl`.
 *   All lengths are C `int`, so no BigInt is created per packet.
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
 *   key and the peer's public key), which would double the cost of DH. The
 *   base point (publicKey()) goes the same way; OpenSSL's fixed-base
 *   public-key routine measured no faster here. OpenSSL clamps the scalar and
 *   masks bit 255 of u itself (RFC 7748 §5), and refuses an all-zero shared
 *   secret, which is written as zeros as the contract asks. Every EVP_PKEY and
 *   EVP_PKEY_CTX is freed before returning.
 *
 * Secrets: the scratch copies of private keys are wiped after each call.
 * OpenSSL's long-lived contexts keep the last ChaCha20 key and the last MAC key
 * until the next call overwrites them, as any cipher context does.
 *
 * Threads: contexts are per module instance. Each Worker that imports this
 * module loads its own copy and never shares a context with another thread.
 */
import type { CryptoBackend } from "./backend.ts";
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
  OpenSSL_version_num: { parameters: [], result: "u64" },
  OpenSSL_version: { parameters: ["i32"], result: "pointer" },
  ERR_clear_error: { parameters: [], result: "void" },
  EVP_CIPHER_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_EncryptInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  EVP_DecryptInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  EVP_EncryptUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_DecryptUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_EncryptFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_DecryptFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
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

// <openssl/evp.h>, <openssl/core.h>, <openssl/core_dispatch.h> (OpenSSL 3.0).
const EVP_CTRL_AEAD_GET_TAG = 0x10;
const EVP_CTRL_AEAD_SET_TAG = 0x11;
const OSSL_PARAM_UNSIGNED_INTEGER = 2;
const OSSL_PARAM_OCTET_STRING = 5;
/** EVP_PKEY_PUBLIC_KEY: all parameters | OSSL_KEYMGMT_SELECT_PUBLIC_KEY. */
const EVP_PKEY_PUBLIC_KEY = 0x86;
/** EVP_PKEY_KEYPAIR: EVP_PKEY_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_PRIVATE_KEY. */
const EVP_PKEY_KEYPAIR = 0x87;
const TAG_SIZE = 16;
/** sizeof(OSSL_PARAM) on LP64: key, data_type (+pad), data, data_size, return_size. */
const OSSL_PARAM_SIZE = 40;

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

/** True when `a` and `b` share memory but do not start at the same byte. */
function partiallyOverlaps(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset !== b.byteOffset &&
    a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

function cstring(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
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
class Libcrypto {
  readonly version: string;
  /** Held so the library is never unloaded while the backend is reachable. */
  #lib: Lib;
  #s: Sym;
  #encCtx: Deno.PointerObject;
  #decCtx: Deno.PointerObject;
  #mdCtx: Deno.PointerObject;
  #macCtx: Deno.PointerObject;
  #macSize = 0;
  #pkeyCtx: Deno.PointerObject;
  /** The `int *outl` cell every EVP_*Update/Final call writes. */
  #outl = new Int32Array(1);
  #tag = new Uint8Array(TAG_SIZE);
  #subkey = new Uint8Array(32);
  #xnonce = new Uint8Array(12);
  #scratch = new Uint8Array(0);
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

    const cipher = s.EVP_CIPHER_fetch(null, cstring("ChaCha20-Poly1305"), null);
    const md = s.EVP_MD_fetch(null, cstring("BLAKE2S-256"), null);
    const mac = s.EVP_MAC_fetch(null, cstring("BLAKE2SMAC"), null);
    if (cipher === null || md === null || mac === null) throw failed("algorithm fetch");
    this.#encCtx = notNull(s.EVP_CIPHER_CTX_new(), "EVP_CIPHER_CTX_new");
    this.#decCtx = notNull(s.EVP_CIPHER_CTX_new(), "EVP_CIPHER_CTX_new");
    if (
      s.EVP_EncryptInit_ex(this.#encCtx, cipher, null, null, null) !== 1 ||
      s.EVP_DecryptInit_ex(this.#decCtx, cipher, null, null, null) !== 1
    ) throw failed("EVP_CipherInit_ex");
    this.#mdCtx = notNull(s.EVP_MD_CTX_new(), "EVP_MD_CTX_new");
    if (s.EVP_DigestInit_ex2(this.#mdCtx, md, null) !== 1) throw failed("EVP_DigestInit_ex2");
    this.#macCtx = notNull(s.EVP_MAC_CTX_new(mac), "EVP_MAC_CTX_new");
    this.#pkeyCtx = notNull(
      s.EVP_PKEY_CTX_new_from_name(null, cstring("X25519"), null),
      "EVP_PKEY_CTX_new_from_name",
    );
    if (s.EVP_PKEY_fromdata_init(this.#pkeyCtx) !== 1) throw failed("EVP_PKEY_fromdata_init");
    this.#buildParams();
  }

  /** Writes the constant OSSL_PARAM arrays (and their key names) into the arena. */
  #buildParams(): void {
    const bytes = new Uint8Array(this.#arena);
    bytes.set(cstring("priv"), AT_NAME_PRIV);
    bytes.set(cstring("pub"), AT_NAME_PUB);
    bytes.set(cstring("size"), AT_NAME_SIZE);
    const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#arena)));
    const view = new DataView(this.#arena);
    function param(at: number, name: number, type: number, data: number, size: number): void {
      view.setBigUint64(at, base + BigInt(name), true); // const char *key
      view.setUint32(at + 8, type, true); // unsigned int data_type
      view.setBigUint64(at + 16, base + BigInt(data), true); // void *data
      view.setBigUint64(at + 24, BigInt(size), true); // size_t data_size
      view.setBigUint64(at + 32, 0n, true); // size_t return_size
    }
    param(AT_KEYPAIR_PARAMS, AT_NAME_PRIV, OSSL_PARAM_OCTET_STRING, AT_PRIV, 32);
    param(
      AT_KEYPAIR_PARAMS + OSSL_PARAM_SIZE,
      AT_NAME_PUB,
      OSSL_PARAM_OCTET_STRING,
      AT_PLACEHOLDER_PUB,
      32,
    );
    param(AT_PUB_PARAMS, AT_NAME_PUB, OSSL_PARAM_OCTET_STRING, AT_PUB, 32);
    param(AT_SIZE_PARAMS, AT_NAME_SIZE, OSSL_PARAM_UNSIGNED_INTEGER, AT_MAC_SIZE, 8);
  }

  seal(out: Uint8Array, key: Uint8Array, nonce: Uint8Array, pt: Uint8Array, ad: Uint8Array): void {
    const n = pt.length;
    if (key.length !== 32) throw new RangeError("ChaCha20-Poly1305 key must be 32 bytes");
    if (nonce.length !== 12) throw new RangeError("ChaCha20-Poly1305 nonce must be 12 bytes");
    if (out.length < n + TAG_SIZE) throw new RangeError("seal output shorter than input + 16");
    const copied = partiallyOverlaps(out, pt);
    if (copied) pt = this.#copyToScratch(pt);
    const s = this.#s, ctx = this.#encCtx, outl = this.#outl, tag = this.#tag;
    // Each call returns 1 on success; `bad` collects anything else (0, or −1).
    let bad = s.EVP_EncryptInit_ex(ctx, null, null, key, nonce) ^ 1;
    if (ad.length > 0) bad |= s.EVP_EncryptUpdate(ctx, null, outl, ad, ad.length) ^ 1;
    if (n > 0) bad |= s.EVP_EncryptUpdate(ctx, out, outl, pt, n) ^ 1;
    // Final writes no bytes for a stream cipher; it finishes Poly1305 into the context.
    bad |= s.EVP_EncryptFinal_ex(ctx, tag, outl) ^ 1;
    bad |= s.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_SIZE, tag) ^ 1;
    if (copied) this.#scratch.fill(0);
    if (bad !== 0) throw failed("ChaCha20-Poly1305 seal");
    out.set(tag, n);
  }

  open(
    out: Uint8Array,
    key: Uint8Array,
    nonce: Uint8Array,
    ct: Uint8Array,
    ad: Uint8Array,
  ): boolean {
    if (key.length !== 32) throw new RangeError("ChaCha20-Poly1305 key must be 32 bytes");
    if (nonce.length !== 12) throw new RangeError("ChaCha20-Poly1305 nonce must be 12 bytes");
    if (ct.length < TAG_SIZE) return false;
    const n = ct.length - TAG_SIZE;
    if (out.length < n) throw new RangeError("open output shorter than input − 16");
    const s = this.#s, ctx = this.#decCtx, outl = this.#outl, tag = this.#tag;
    for (let i = 0; i < TAG_SIZE; i++) tag[i] = ct[n + i];
    const copied = partiallyOverlaps(out, ct);
    if (copied) ct = this.#copyToScratch(ct);
    let bad = s.EVP_DecryptInit_ex(ctx, null, null, key, nonce) ^ 1;
    bad |= s.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_SIZE, tag) ^ 1;
    if (ad.length > 0) bad |= s.EVP_DecryptUpdate(ctx, null, outl, ad, ad.length) ^ 1;
    if (n > 0) bad |= s.EVP_DecryptUpdate(ctx, out, outl, ct, n) ^ 1;
    // Final computes the tag and compares it (CRYPTO_memcmp) with the one set above.
    bad |= s.EVP_DecryptFinal_ex(ctx, tag, outl) ^ 1;
    if (copied) this.#scratch.fill(0);
    if (bad !== 0) {
      // A forged packet must not leave entries on OpenSSL's per-thread error queue.
      s.ERR_clear_error();
      return false;
    }
    return true;
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
    this.#priv.set(scalar);
    const priv = this.#importKey(this.#keypairParams, EVP_PKEY_KEYPAIR);
    this.#priv.fill(0);
    if (priv === null) throw failed("X25519 private key import");
    this.#pub.set(point);
    const peer = this.#importKey(this.#pubParams, EVP_PKEY_PUBLIC_KEY);
    if (peer === null) {
      s.EVP_PKEY_free(priv);
      throw failed("X25519 public key import");
    }
    const ctx = s.EVP_PKEY_CTX_new_from_pkey(null, priv, null);
    this.#sizeCell[0] = 32n;
    const ok = ctx !== null && s.EVP_PKEY_derive_init(ctx) === 1 &&
      s.EVP_PKEY_derive_set_peer_ex(ctx, peer, 0) === 1 &&
      s.EVP_PKEY_derive(ctx, out, this.#sizeCell) === 1;
    if (ctx !== null) s.EVP_PKEY_CTX_free(ctx);
    s.EVP_PKEY_free(peer);
    s.EVP_PKEY_free(priv);
    if (!ok) {
      // OpenSSL refuses an all-zero shared secret (a low-order point, RFC 7748
      // §6.1); the contract is to write zeros and let the caller reject it.
      out.fill(0);
      s.ERR_clear_error();
    }
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

  /** A copy of `data` in the scratch buffer, for partially overlapping in/out. */
  #copyToScratch(data: Uint8Array): Uint8Array {
    if (this.#scratch.length < data.length) this.#scratch = new Uint8Array(data.length);
    const copy = this.#scratch.subarray(0, data.length);
    copy.set(data);
    return copy;
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
  };
  return { backend, version: impl.version };
}
