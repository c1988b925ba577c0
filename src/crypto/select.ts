// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Chooses the process's crypto backend from the `GOTATUN_CRYPTO` setting:
 * `native` forces libcrypto (OpenSSL 3 through FFI) and fails loudly when it
 * cannot be used, `noble` forces the pure-TypeScript backend, and unset or
 * `auto` takes libcrypto when it loads and agrees with noble on a quick
 * self-test, else noble. noble is always the reference: a native library that
 * is present but computes anything differently is never used silently.
 *
 * The caller passes the variable's value (the daemon reads it with
 * `Deno.env.get("GOTATUN_CRYPTO")`), so this module needs no env permission.
 */
import { setCryptoBackend } from "../crypto.ts";
import type { CryptoBackend } from "./backend.ts";
import { libcryptoVersion, loadLibcryptoBackend } from "./libcrypto.ts";
import { nobleBackend } from "./noble.ts";

/** The backend chosen and a one-line reason for the start-up log. */
export interface CryptoSelection {
  backend: CryptoBackend;
  reason: string;
}

/**
 * The backend for a `GOTATUN_CRYPTO` value (case-insensitive; surrounding
 * blanks ignored): `native`, `noble`, or `auto`/empty/undefined. Throws an
 * Error for any other value, and for `native` when libcrypto cannot be loaded
 * or fails its self-test.
 */
export function selectCryptoBackend(env?: string): CryptoSelection {
  const mode = (env ?? "").trim().toLowerCase();
  if (mode === "noble") {
    return {
      backend: nobleBackend,
      reason: "crypto: noble (pure TypeScript; GOTATUN_CRYPTO=noble)",
    };
  }
  if (mode !== "native" && mode !== "auto" && mode !== "") {
    throw new Error(
      `GOTATUN_CRYPTO must be "native", "noble" or "auto", got ${JSON.stringify(env)}`,
    );
  }
  const native = loadLibcryptoBackend();
  if (native === null) {
    const why = `${SONAME_TEXT} could not be loaded${
      ffiDenied() ? " (needs unscoped --allow-ffi)" : ""
    }`;
    if (mode === "native") throw new Error(`GOTATUN_CRYPTO=native: ${why}`);
    return { backend: nobleBackend, reason: `crypto: noble (pure TypeScript; ${why})` };
  }
  const version = libcryptoVersion() ?? "OpenSSL 3";
  const mismatch = selfTest(native);
  if (mismatch !== null) {
    const why = `${version} failed its self-test against noble (${mismatch})`;
    if (mode === "native") throw new Error(`GOTATUN_CRYPTO=native: ${why}`);
    return { backend: nobleBackend, reason: `crypto: noble (pure TypeScript; ${why})` };
  }
  const how = mode === "native" ? "GOTATUN_CRYPTO=native" : "auto";
  return {
    backend: native,
    reason: `crypto: libcrypto (${version} via FFI, self-test passed; ${how})`,
  };
}

/**
 * {@link selectCryptoBackend}, then installs the result for the whole process
 * with {@link setCryptoBackend}. Throws like selectCryptoBackend, before
 * changing anything.
 */
export function useBestCryptoBackend(env?: string): CryptoSelection {
  const selection = selectCryptoBackend(env);
  setCryptoBackend(selection.backend);
  return selection;
}

const SONAME_TEXT = "OpenSSL 3 libcrypto.so.3";

function ffiDenied(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state !== "granted";
  } catch {
    return false;
  }
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 29 + seed * 7 + (i >> 3)) & 0xff;
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Compares `b` with noble on one input per primitive: the RFC 8439 §2.8.2
 * AEAD (plus its opening and a forged tag), an XChaCha20-Poly1305 seal, a
 * non-base-point X25519 and a low-order point, unkeyed BLAKE2s-256 and keyed
 * 16-byte BLAKE2s (HASH and MAC). Returns what differed, or null.
 */
function selfTest(b: CryptoBackend): string | null {
  try {
    // RFC 8439 §2.8.2: key 80..9f, nonce 07000000 40414243 44454647, AAD 50515253 c0..c7.
    const key = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
    const nonce = Uint8Array.of(7, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47);
    const aad = Uint8Array.of(
      0x50,
      0x51,
      0x52,
      0x53,
      0xc0,
      0xc1,
      0xc2,
      0xc3,
      0xc4,
      0xc5,
      0xc6,
      0xc7,
    );
    const plaintext = bytes(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for " +
        "the future, sunscreen would be it.",
    );
    const want = new Uint8Array(plaintext.length + 16);
    const got = new Uint8Array(plaintext.length + 16);
    nobleBackend.seal(want, key, nonce, plaintext, aad);
    b.seal(got, key, nonce, plaintext, aad);
    if (!equal(got, want)) return "ChaCha20-Poly1305 seal";
    const opened = new Uint8Array(plaintext.length);
    if (!b.open(opened, key, nonce, got, aad) || !equal(opened, plaintext)) {
      return "ChaCha20-Poly1305 open";
    }
    got[got.length - 1] ^= 1;
    if (b.open(opened, key, nonce, got, aad)) return "ChaCha20-Poly1305 forged tag accepted";

    const xnonce = pattern(24, 1);
    nobleBackend.xseal(want, key, xnonce, plaintext, aad);
    b.xseal(got, key, xnonce, plaintext, aad);
    if (!equal(got, want)) return "XChaCha20-Poly1305 seal";

    const scalar = pattern(32, 2), point = pattern(32, 3);
    const dhWant = new Uint8Array(32), dhGot = new Uint8Array(32);
    nobleBackend.x25519(dhWant, scalar, point);
    b.x25519(dhGot, scalar, point);
    if (!equal(dhGot, dhWant)) return "X25519";
    // u = 1 has order 4 (RFC 7748 §6.1 low-order point): the result is all zeros.
    const one = new Uint8Array(32);
    one[0] = 1;
    dhGot.fill(0xa5);
    b.x25519(dhGot, scalar, one);
    if (!equal(dhGot, new Uint8Array(32))) return "X25519 low-order point";

    const input = pattern(148, 4);
    const hWant = new Uint8Array(32), hGot = new Uint8Array(32);
    nobleBackend.blake2s(hWant, [input, aad]);
    b.blake2s(hGot, [input, aad]);
    if (!equal(hGot, hWant)) return "BLAKE2s-256";
    const mWant = new Uint8Array(16), mGot = new Uint8Array(16);
    nobleBackend.blake2s(mWant, [input], key);
    b.blake2s(mGot, [input], key);
    if (!equal(mGot, mWant)) return "keyed BLAKE2s-128";
    return null;
  } catch (e) {
    return `threw ${e instanceof Error ? e.message : String(e)}`;
  }
}
