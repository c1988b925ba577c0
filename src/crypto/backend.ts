// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The contract every crypto backend fulfils. Backends implement only the five
 * primitives; {@link ../crypto.ts} builds HMAC, KDF and the WireGuard helpers on
 * top of them, so a native backend drops in without touching callers.
 *
 * All operations are synchronous and write into caller-provided buffers.
 * `out` may be the very same memory as the input (same buffer, same offset) for
 * the AEAD functions; partially overlapping ranges are not allowed.
 */
export interface CryptoBackend {
  /** Short name shown in logs, e.g. "noble" or "libcrypto". */
  readonly name: string;
  /**
   * BLAKE2s (RFC 7693) of the concatenation of `inputs`, keyed with `key` when
   * given (at most 32 bytes), digest length `out.length` (1–32).
   */
  blake2s(out: Uint8Array, inputs: readonly Uint8Array[], key?: Uint8Array): void;
  /** ChaCha20-Poly1305 (RFC 8439) seal; `out.length` must be `plaintext.length + 16`. */
  seal(
    out: Uint8Array,
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    ad: Uint8Array,
  ): void;
  /**
   * ChaCha20-Poly1305 open; `out.length` must be `ciphertext.length − 16`.
   * Returns false when the tag does not verify; `out` then holds no decrypted
   * byte (it is left as it was or zeroed).
   */
  open(
    out: Uint8Array,
    key: Uint8Array,
    nonce: Uint8Array,
    ciphertext: Uint8Array,
    ad: Uint8Array,
  ): boolean;
  /** XChaCha20-Poly1305 seal with a 24-byte nonce. */
  xseal(
    out: Uint8Array,
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    ad: Uint8Array,
  ): void;
  /**
   * XChaCha20-Poly1305 open with a 24-byte nonce; false when the tag does not
   * verify, with no decrypted byte in `out`, as {@link open}.
   */
  xopen(
    out: Uint8Array,
    key: Uint8Array,
    nonce: Uint8Array,
    ciphertext: Uint8Array,
    ad: Uint8Array,
  ): boolean;
  /**
   * X25519 (RFC 7748) of `scalar` and the u-coordinate `point` into `out`
   * (32 bytes). The scalar is clamped as RFC 7748 requires. An all-zero result
   * is written as zeros, not thrown.
   */
  x25519(out: Uint8Array, scalar: Uint8Array, point: Uint8Array): void;
  /**
   * Drops whatever the backend keeps for the private key `scalar` between
   * x25519 calls (libcrypto keeps a derive context per recent key). Called
   * when a key is wiped; a backend that keeps nothing leaves it out.
   */
  forget?(scalar: Uint8Array): void;
}
