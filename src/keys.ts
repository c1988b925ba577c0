// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Text forms of 32-byte keys, shared by the device, UAPI and the toolkit:
 * lowercase hex (UAPI, wireguard-go's `keyf`; also the device's peer-map key)
 * and base64 (what `wg` prints and config files hold).
 */
import { isZero } from "./crypto.ts";

/** Key length in bytes (Curve25519 keys and preshared keys). */
export const KEY_BYTES = 32;

const HEX = "0123456789abcdef";
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Lowercase hex of a key: 64 characters for 32 bytes. */
export function keyToHex(key: Uint8Array): string {
  let s = "";
  for (let i = 0; i < key.length; i++) s += HEX[key[i] >> 4] + HEX[key[i] & 0xf];
  return s;
}

function hexNibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30; // 0-9
  if (c >= 0x61 && c <= 0x66) return c - 0x57; // a-f
  if (c >= 0x41 && c <= 0x46) return c - 0x37; // A-F
  return -1;
}

/**
 * Parses exactly 64 hex characters (either case) into 32 bytes, as
 * wireguard-go's `loadExactHex` (`hex.DecodeString` plus a length check).
 * Returns null for anything else.
 */
export function keyFromHex(text: string): Uint8Array | null {
  if (text.length !== KEY_BYTES * 2) return null;
  const out = new Uint8Array(KEY_BYTES);
  for (let i = 0; i < KEY_BYTES; i++) {
    const hi = hexNibble(text.charCodeAt(2 * i));
    const lo = hexNibble(text.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** The 44-character base64 of a 32-byte key, as `wg` prints it. */
export function keyToBase64(key: Uint8Array): string {
  let out = "";
  for (let i = 0; i < 30; i += 3) {
    const v = (key[i] << 16) | (key[i + 1] << 8) | key[i + 2];
    out += B64[(v >> 18) & 63] + B64[(v >> 12) & 63] + B64[(v >> 6) & 63] + B64[v & 63];
  }
  const v = (key[30] << 16) | (key[31] << 8);
  return out + B64[(v >> 18) & 63] + B64[(v >> 12) & 63] + B64[(v >> 6) & 63] + "=";
}

/** True when every byte is zero (an all-zero key means "none" over UAPI). */
export function isZeroKey(key: Uint8Array): boolean {
  return isZero(key);
}
