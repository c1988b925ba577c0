// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The hash of a TCP connection's remote address and both ports, seeded with
 * a secret per stack so that a peer cannot choose ports that all land in
 * one bucket of the connection table. FNV-1a over the bytes, then a
 * 32-bit finalizer (murmur3 fmix32).
 */

/** Hash of `buf[off..off + alen)` with the two ports under `seed`. */
export function tupleHash(
  seed: number,
  buf: Uint8Array,
  off: number,
  alen: number,
  rport: number,
  lport: number,
): number {
  let h = (seed ^ 0x811c9dc5) >>> 0;
  h = Math.imul(h ^ rport, 0x01000193);
  h = Math.imul(h ^ lport, 0x01000193);
  for (let i = 0; i < alen; i++) h = Math.imul(h ^ buf[off + i], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
