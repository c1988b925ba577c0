// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * ChaCha20-Poly1305 (RFC 8439) through OpenSSL 3's EVP cipher API, with as
 * few FFI calls and as little OpenSSL bookkeeping per packet as the API
 * allows: a seal is four calls (nonce, Update, Final, read the tag), an open
 * three (nonce and expected tag together, Update, Final that compares).
 *
 * - Keys: each direction has {@link SLOTS} cipher contexts, each keeping one
 *   key; the key's first byte picks the slot and a byte compare with the
 *   slot's copy decides whether the context must be re-keyed (a key rewritten
 *   in place is a new key). Traffic alternating between a few peers' keys
 *   re-keys only where two of them share a slot.
 * - Nonce: OpenSSL's "tlsivfixed" parameter of ChaCha20-Poly1305 stores the
 *   full 12-byte nonce into the cipher state (TLS sets the record nonce this
 *   way, RFC 7905), and the next Update starts a new message from it: block 0
 *   keys Poly1305, lengths restart. That is one `EVP_CIPHER_CTX_set_params`
 *   with an OSSL_PARAM array prepared once, about half the work of
 *   `EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1)`. For an open, the same
 *   array also carries the expected tag. It holds only at a message
 *   boundary, which every successful Final leaves; a context that failed in
 *   any call is re-keyed before its next use, which resets all of it.
 *   Construction checks this path against `EVP_CipherInit_ex` on two nonces
 *   and falls back to the latter (plus a separate tag parameter) if they
 *   differ.
 * - Memory: the nonce, the tag, the `int *outl` cell and the OSSL_PARAM
 *   arrays live in one arena whose pointers are computed once, so the calls
 *   pass prepared pointers; only the caller's input and output go as buffers.
 *   No allocation per packet in JS or in C.
 *
 * A failed open zeroes the bytes it decrypted: no unauthenticated plaintext
 * is left in `out` (OpenSSL decrypts before Final checks the tag).
 *
 * Secrets: the contexts and the slots' copies keep up to {@link SLOTS} keys per
 * direction (XChaCha20 subkeys included) until replaced, as any long-lived
 * cipher context keeps its key.
 */
import { cstr } from "../sys/libc.ts";

/** The libcrypto functions this file calls (merged into the backend's symbol table). */
export const AEAD_SYMBOLS = {
  EVP_CIPHER_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_CipherInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "pointer", "i32"],
    result: "i32",
  },
  EVP_EncryptUpdate: {
    parameters: ["pointer", "buffer", "pointer", "buffer", "i32"],
    result: "i32",
  },
  EVP_DecryptUpdate: {
    parameters: ["pointer", "buffer", "pointer", "buffer", "i32"],
    result: "i32",
  },
  EVP_EncryptFinal_ex: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
  EVP_DecryptFinal_ex: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
  EVP_CIPHER_CTX_set_params: { parameters: ["pointer", "pointer"], result: "i32" },
  EVP_CIPHER_CTX_get_params: { parameters: ["pointer", "pointer"], result: "i32" },
  ERR_clear_error: { parameters: [], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

type AeadSym = Deno.DynamicLibrary<typeof AEAD_SYMBOLS>["symbols"];

/** Cipher contexts (keys kept) per direction; a power of two. */
export const SLOTS = 8;
const TAG_SIZE = 16;
const KEY_SIZE = 32;
const NONCE_SIZE = 12;
// <openssl/core.h>
const OSSL_PARAM_OCTET_STRING = 5;
/** sizeof(OSSL_PARAM) on LP64: key, data_type (+pad), data, data_size, return_size. */
export const OSSL_PARAM_SIZE = 40;

/**
 * Writes one OSSL_PARAM at `at` in `arena` whose key name and data are at the
 * arena offsets `name` and `data`.
 */
export function writeParam(
  arena: ArrayBuffer,
  at: number,
  name: number,
  type: number,
  data: number,
  size: number,
): void {
  const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(arena)));
  const view = new DataView(arena);
  view.setBigUint64(at, base + BigInt(name), true); // const char *key
  view.setUint32(at + 8, type, true); // unsigned int data_type
  view.setBigUint64(at + 16, base + BigInt(data), true); // void *data
  view.setBigUint64(at + 24, BigInt(size), true); // size_t data_size
  view.setBigUint64(at + 32, 0n, true); // size_t return_size
}

// Arena layout. Each OSSL_PARAM array ends with an all-zero OSSL_PARAM_END.
const AT_NAME_NONCE = 0; // "tlsivfixed\0"
const AT_NAME_TAG = 16; // "tag\0"
const AT_NONCE = 32;
const AT_TAG = 48;
const AT_OUTL = 64;
/** Final's output: a stream cipher writes nothing there, but it must be valid memory. */
const AT_FINAL_OUT = 80;
/** {tlsivfixed}: a seal's nonce. */
const AT_NONCE_PARAMS = 96;
/** {tlsivfixed, tag}: an open's nonce and expected tag. */
const AT_OPEN_PARAMS = AT_NONCE_PARAMS + 2 * OSSL_PARAM_SIZE;
/** {tag}: a seal's tag out, or (fallback) an open's expected tag in. */
const AT_TAG_PARAMS = AT_OPEN_PARAMS + 3 * OSSL_PARAM_SIZE;
const ARENA_SIZE = AT_TAG_PARAMS + 2 * OSSL_PARAM_SIZE;

/** True when `a` and `b` share memory but do not start at the same byte. */
function partiallyOverlaps(a: Uint8Array, b: Uint8Array): boolean {
  // Offsets first: reading `buffer` costs more, and equal offsets never partially overlap.
  return a.byteOffset !== b.byteOffset && a.byteOffset < b.byteOffset + b.byteLength &&
    b.byteOffset < a.byteOffset + a.byteLength && a.buffer === b.buffer;
}

/** One direction's contexts and the keys they hold. */
class Direction {
  readonly ctx: Deno.PointerObject[] = [];
  /** Slot i's key at 32·i. */
  readonly keys = new Uint8Array(SLOTS * KEY_SIZE);
  /** 1 when slot i's context holds keys[32·i..] and sits at a message boundary. */
  readonly ready = new Uint8Array(SLOTS);

  constructor(s: AeadSym, cipher: Deno.PointerObject, enc: number) {
    for (let i = 0; i < SLOTS; i++) {
      const ctx = s.EVP_CIPHER_CTX_new();
      if (ctx === null) throw new Error("libcrypto: EVP_CIPHER_CTX_new failed");
      if (s.EVP_CipherInit_ex(ctx, cipher, null, null, null, enc) !== 1) {
        throw new Error("libcrypto: EVP_CipherInit_ex failed");
      }
      this.ctx.push(ctx);
    }
  }

  /** The slot for `key`, re-keyed if it held another key; −1 if OpenSSL refused. */
  slotFor(s: AeadSym, key: Uint8Array): number {
    const slot = key[0] & (SLOTS - 1);
    const keys = this.keys, at = slot * KEY_SIZE;
    if (this.ready[slot] === 1) {
      let diff = 0;
      for (let i = 0; i < KEY_SIZE; i++) diff |= keys[at + i] ^ key[i];
      if (diff === 0) return slot;
    }
    // Keying (enc = −1 keeps the direction) also resets the message state.
    if (s.EVP_CipherInit_ex(this.ctx[slot], null, null, key, null, -1) !== 1) {
      this.ready[slot] = 0;
      return -1;
    }
    keys.set(key, at);
    this.ready[slot] = 1;
    return slot;
  }
}

/** ChaCha20-Poly1305 seal and open on long-lived OpenSSL contexts. */
export class ChachaPoly {
  #s: AeadSym;
  #enc: Direction;
  #dec: Direction;
  #arena = new ArrayBuffer(ARENA_SIZE);
  #nonce = new Uint8Array(this.#arena, AT_NONCE, NONCE_SIZE);
  #tag = new Uint8Array(this.#arena, AT_TAG, TAG_SIZE);
  #pNonce: Deno.PointerObject;
  #pOutl: Deno.PointerObject;
  #pFinalOut: Deno.PointerObject;
  #pNonceParams: Deno.PointerObject;
  #pOpenParams: Deno.PointerObject;
  #pTagParams: Deno.PointerObject;
  /** True when "tlsivfixed" starts messages as EVP_CipherInit_ex(iv) does (checked once). */
  #nonceByParam = true;
  #scratch = new Uint8Array(0);

  /**
   * Contexts on `s`. `tryNonceParam` false skips the "tlsivfixed" path and
   * starts every message with EVP_CipherInit_ex (the fallback, for tests).
   */
  constructor(s: AeadSym, tryNonceParam = true) {
    this.#s = s;
    const cipher = s.EVP_CIPHER_fetch(null, cstr("ChaCha20-Poly1305"), null);
    if (cipher === null) throw new Error("libcrypto: ChaCha20-Poly1305 fetch failed");
    this.#enc = new Direction(s, cipher, 1);
    this.#dec = new Direction(s, cipher, 0);
    const a = this.#arena;
    const bytes = new Uint8Array(a);
    bytes.set(cstr("tlsivfixed"), AT_NAME_NONCE);
    bytes.set(cstr("tag"), AT_NAME_TAG);
    const T = OSSL_PARAM_OCTET_STRING;
    writeParam(a, AT_NONCE_PARAMS, AT_NAME_NONCE, T, AT_NONCE, NONCE_SIZE);
    writeParam(a, AT_OPEN_PARAMS, AT_NAME_NONCE, T, AT_NONCE, NONCE_SIZE);
    writeParam(a, AT_OPEN_PARAMS + OSSL_PARAM_SIZE, AT_NAME_TAG, T, AT_TAG, TAG_SIZE);
    writeParam(a, AT_TAG_PARAMS, AT_NAME_TAG, T, AT_TAG, TAG_SIZE);
    const base = Deno.UnsafePointer.of(a);
    const at = (offset: number) => Deno.UnsafePointer.offset(base!, offset)!;
    this.#pNonce = at(AT_NONCE);
    this.#pOutl = at(AT_OUTL);
    this.#pFinalOut = at(AT_FINAL_OUT);
    this.#pNonceParams = at(AT_NONCE_PARAMS);
    this.#pOpenParams = at(AT_OPEN_PARAMS);
    this.#pTagParams = at(AT_TAG_PARAMS);
    this.#nonceByParam = tryNonceParam && this.#nonceParamAgrees();
  }

  /** Whether the nonce path is the parameter (true) or EVP_CipherInit_ex (false). */
  get nonceByParam(): boolean {
    return this.#nonceByParam;
  }

  seal(out: Uint8Array, key: Uint8Array, nonce: Uint8Array, pt: Uint8Array, ad: Uint8Array): void {
    const n = pt.length;
    if (key.length !== KEY_SIZE) throw new RangeError("ChaCha20-Poly1305 key must be 32 bytes");
    if (nonce.length !== NONCE_SIZE) {
      throw new RangeError("ChaCha20-Poly1305 nonce must be 12 bytes");
    }
    if (out.length < n + TAG_SIZE) throw new RangeError("seal output shorter than input + 16");
    const copied = partiallyOverlaps(out, pt);
    if (copied) pt = this.#copyToScratch(pt);
    const s = this.#s, dir = this.#enc, pOutl = this.#pOutl;
    const slot = dir.slotFor(s, key);
    // Each call returns 1 on success; `bad` collects anything else (0, or −1).
    let bad = slot >>> 31;
    if (bad === 0) {
      const ctx = dir.ctx[slot];
      this.#setNonce(nonce);
      bad = this.#startMessage(ctx) ^ 1;
      if (ad.length > 0) bad |= s.EVP_EncryptUpdate(ctx, null, pOutl, ad, ad.length) ^ 1;
      if (n > 0) bad |= s.EVP_EncryptUpdate(ctx, out, pOutl, pt, n) ^ 1;
      // Final writes no bytes for a stream cipher; it finishes Poly1305 into the context.
      bad |= s.EVP_EncryptFinal_ex(ctx, this.#pFinalOut, pOutl) ^ 1;
      bad |= s.EVP_CIPHER_CTX_get_params(ctx, this.#pTagParams) ^ 1;
      if (bad !== 0) dir.ready[slot] = 0;
    }
    if (copied) this.#scratch.fill(0);
    if (bad !== 0) {
      s.ERR_clear_error();
      throw new Error("libcrypto: ChaCha20-Poly1305 seal failed");
    }
    const tag = this.#tag;
    for (let i = 0; i < TAG_SIZE; i++) out[n + i] = tag[i];
  }

  open(
    out: Uint8Array,
    key: Uint8Array,
    nonce: Uint8Array,
    ct: Uint8Array,
    ad: Uint8Array,
  ): boolean {
    if (key.length !== KEY_SIZE) throw new RangeError("ChaCha20-Poly1305 key must be 32 bytes");
    if (nonce.length !== NONCE_SIZE) {
      throw new RangeError("ChaCha20-Poly1305 nonce must be 12 bytes");
    }
    if (ct.length < TAG_SIZE) return false;
    const n = ct.length - TAG_SIZE;
    if (out.length < n) throw new RangeError("open output shorter than input − 16");
    const s = this.#s, dir = this.#dec, pOutl = this.#pOutl, tag = this.#tag;
    for (let i = 0; i < TAG_SIZE; i++) tag[i] = ct[n + i];
    const copied = partiallyOverlaps(out, ct);
    if (copied) ct = this.#copyToScratch(ct);
    const slot = dir.slotFor(s, key);
    let bad = slot >>> 31;
    if (bad === 0) {
      const ctx = dir.ctx[slot];
      this.#setNonce(nonce);
      if (this.#nonceByParam) {
        bad = s.EVP_CIPHER_CTX_set_params(ctx, this.#pOpenParams) ^ 1;
      } else {
        bad = this.#startMessage(ctx) ^ 1;
        bad |= s.EVP_CIPHER_CTX_set_params(ctx, this.#pTagParams) ^ 1;
      }
      if (ad.length > 0) bad |= s.EVP_DecryptUpdate(ctx, null, pOutl, ad, ad.length) ^ 1;
      if (n > 0) bad |= s.EVP_DecryptUpdate(ctx, out, pOutl, ct, n) ^ 1;
      // Final computes the tag and compares it (CRYPTO_memcmp) with the one set above.
      bad |= s.EVP_DecryptFinal_ex(ctx, this.#pFinalOut, pOutl) ^ 1;
      if (bad !== 0) dir.ready[slot] = 0;
    }
    if (copied) this.#scratch.fill(0);
    if (bad !== 0) {
      // No unauthenticated plaintext stays behind, and a forged packet leaves
      // no entries on OpenSSL's per-thread error queue.
      out.fill(0, 0, n);
      s.ERR_clear_error();
      return false;
    }
    return true;
  }

  #setNonce(nonce: Uint8Array): void {
    const x = this.#nonce;
    for (let i = 0; i < NONCE_SIZE; i++) x[i] = nonce[i];
  }

  /** Starts a message at the arena's nonce; 1 on success. */
  #startMessage(ctx: Deno.PointerObject): number {
    return this.#nonceByParam
      ? this.#s.EVP_CIPHER_CTX_set_params(ctx, this.#pNonceParams)
      : this.#s.EVP_CipherInit_ex(ctx, null, null, null, this.#pNonce, -1);
  }

  /**
   * Seals one message per nonce path on two nonces each and compares: the
   * parameter must give what EVP_CipherInit_ex gives, on a fresh key and on
   * a context that just finished a message.
   */
  #nonceParamAgrees(): boolean {
    const key = Uint8Array.from({ length: KEY_SIZE }, (_, i) => 0x80 + i);
    const pt = Uint8Array.from({ length: 80 }, (_, i) => i);
    const sealed = (byParam: boolean, nonceByte: number) => {
      this.#nonceByParam = byParam;
      const out = new Uint8Array(pt.length + TAG_SIZE);
      this.seal(out, key, new Uint8Array(NONCE_SIZE).fill(nonceByte), pt, new Uint8Array(0));
      return out;
    };
    try {
      const want1 = sealed(false, 1), want2 = sealed(false, 2);
      this.#enc.ready.fill(0);
      const got1 = sealed(true, 1), got2 = sealed(true, 2);
      const same = (a: Uint8Array, b: Uint8Array) => a.every((x, i) => x === b[i]);
      return same(got1, want1) && same(got2, want2) && !same(want1, want2);
    } catch {
      return false;
    } finally {
      this.#enc.ready.fill(0);
    }
  }

  /** A copy of `data` in the scratch buffer, for partially overlapping in/out. */
  #copyToScratch(data: Uint8Array): Uint8Array {
    if (this.#scratch.length < data.length) this.#scratch = new Uint8Array(data.length);
    const copy = this.#scratch.subarray(0, data.length);
    copy.set(data);
    return copy;
  }
}
