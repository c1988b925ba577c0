// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Text forms of 32-byte keys, shared by the device, UAPI and the toolkit:
 * lowercase hex (UAPI, wireguard-go's `keyf`; also the device's peer-map key)
 * and base64 (what `wg` prints and config files hold). The coding itself is
 * the platform's (`Uint8Array.prototype.toHex`/`toBase64`, `Uint8Array.fromHex`).
 */
import { isZero } from "./crypto.ts";

/** Key length in bytes (Curve25519 keys and preshared keys). */
export const KEY_BYTES = 32;

/** Lowercase hex of a key: 64 characters for 32 bytes. */
export function keyToHex(key: Uint8Array): string {
  return key.toHex();
}

/**
 * Parses exactly 64 hex characters (either case) into 32 bytes, as
 * wireguard-go's `loadExactHex` (`hex.DecodeString` plus a length check).
 * Returns null for anything else.
 */
export function keyFromHex(text: string): Uint8Array | null {
  if (text.length !== KEY_BYTES * 2) return null;
  try {
    return Uint8Array.fromHex(text);
  } catch {
    return null;
  }
}

/** The 44-character base64 of a 32-byte key, as `wg` prints it. */
export function keyToBase64(key: Uint8Array): string {
  return key.toBase64();
}

/** True when every byte is zero (an all-zero key means "none" over UAPI). */
export function isZeroKey(key: Uint8Array): boolean {
  return isZero(key);
}
