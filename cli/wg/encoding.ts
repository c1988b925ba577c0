// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Key encodings exactly as wireguard-tools `encoding.c` accepts and prints
 * them: base64 of 44 characters whose last is `=` and whose digit before it
 * carries no stray low bits (so every key has exactly one spelling), and
 * 64-digit hex in either case (the UAPI form).
 *
 * Encoding, and decoding hex (which only daemon replies carry), is the
 * platform's, through src/keys.ts. The base64 decoder is written out here
 * because `wg` reads base64 keys from users (config files, `wg set`, `wg
 * pubkey`) and decodes them in constant time: each character's value is
 * computed without branching on it, so the time taken does not depend on the
 * secret. `Uint8Array.fromBase64` makes no such promise, and it also takes
 * input that `key_from_base64` refuses (a missing `=`, whitespace), which
 * `wg` must reject with its own message.
 */
import { isZeroKey, keyFromHex, keyToBase64, keyToHex } from "../../src/keys.ts";

/** Key length in bytes. */
export const WG_KEY_LEN = 32;
/** Length of a base64 key, without the terminating NUL of the C buffer. */
export const WG_KEY_LEN_BASE64 = 44;
/** Length of a hex key. */
export const WG_KEY_LEN_HEX = 64;

/** keyToBase64() is the 44-character base64 of a 32-byte key (src/keys.ts). */
export { keyToBase64 };

/** The 6-bit value of one base64 character, or -1 (computed without branches on `c`). */
function decodeChar(c: number): number {
  const inRange = (lo: number, hi: number) => ((((lo - 1 - c) & (c - (hi + 1))) >> 8) & 1);
  return -1 +
    inRange(65, 90) * (c - 64) +
    inRange(97, 122) * (c - 70) +
    inRange(48, 57) * (c + 5) +
    inRange(43, 43) * 63 +
    inRange(47, 47) * 64;
}

/**
 * keyFromBase64() decodes a byte string as `key_from_base64` does, or returns
 * null: it must be exactly 44 characters (a NUL ends it early), end in `=`,
 * and use canonical padding bits.
 */
export function keyFromBase64(s: string): Uint8Array | null {
  const nul = s.indexOf("\0");
  if (nul >= 0) s = s.slice(0, nul);
  if (s.length !== WG_KEY_LEN_BASE64 || s[43] !== "=") return null;
  const key = new Uint8Array(WG_KEY_LEN);
  let bad = 0;
  for (let i = 0; i < 11; i++) {
    let val = 0;
    for (let j = 0; j < 4; j++) {
      // The last group decodes its "=" as "A" (zero bits), as the C does.
      const c = i === 10 && j === 3 ? 65 : s.charCodeAt(i * 4 + j);
      const d = decodeChar(c);
      bad |= d >>> 31;
      val |= (d & 63) << (18 - 6 * j);
    }
    key[i * 3] = (val >> 16) & 0xff;
    key[i * 3 + 1] = (val >> 8) & 0xff;
    if (i < 10) key[i * 3 + 2] = val & 0xff;
    else bad |= val & 0xff;
  }
  return bad === 0 ? key : null;
}

/** keyToHex() is the lowercase hex of a 32-byte key (src/keys.ts). */
export { keyToHex };

/** keyFromHex() decodes 64 hex digits (either case), or returns null (src/keys.ts). */
export { keyFromHex };

/** keyIsZero() tells whether all 32 bytes are zero (an absent key in UAPI). */
export { isZeroKey as keyIsZero };
