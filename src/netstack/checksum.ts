// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The Internet checksum (RFC 1071): the 16-bit ones' complement of the ones'
 * complement sum of big-endian 16-bit words, and the pseudo-header sums that
 * TCP, UDP (RFC 768, RFC 8200 §8.1) and ICMPv6 (RFC 4443 §2.3) add to it.
 *
 * Sums are kept unfolded in a plain number between calls: a 64 KiB packet
 * adds at most 2^15 words of at most 2^16 − 1, far below 2^53.
 */

/** Adds the big-endian 16-bit words of `buf[off..off + len)` to `sum`; an odd last byte is padded with zero. */
export function sumWords(buf: Uint8Array, off: number, len: number, sum: number): number {
  const end = off + (len & ~1);
  let i = off;
  for (; i < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (len & 1) sum += buf[end] << 8;
  return sum;
}

/** Folds a sum to 16 bits with end-around carry. */
export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The checksum field value for a sum: ones' complement of the folded sum. */
export function finish(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/**
 * The pseudo-header sum for an upper-layer checksum: for IPv4 (`alen` 4)
 * source, destination, zero, protocol and 16-bit length (RFC 793 §3.1); for
 * IPv6 (`alen` 16) source, destination, 32-bit length and next header
 * (RFC 8200 §8.1). Addresses are read from `buf` at `srcOff` and `dstOff`.
 */
export function pseudoSum(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  alen: number,
  proto: number,
  l4len: number,
): number {
  let sum = sumWords(buf, srcOff, alen, 0);
  sum = sumWords(buf, dstOff, alen, sum);
  return sum + proto + (l4len & 0xffff) + Math.floor(l4len / 0x10000);
}

/** True when `buf[off..off + len)` plus `initial` sums to all ones (a valid checksum is included). */
export function verify(buf: Uint8Array, off: number, len: number, initial: number): boolean {
  return fold(sumWords(buf, off, len, initial)) === 0xffff;
}

/** Writes `value` big-endian at `buf[off]`, `buf[off + 1]`. */
export function put16(buf: Uint8Array, off: number, value: number): void {
  buf[off] = value >>> 8;
  buf[off + 1] = value & 0xff;
}

/** Reads a big-endian 16-bit value. */
export function get16(buf: Uint8Array, off: number): number {
  return (buf[off] << 8) | buf[off + 1];
}

/** Writes `value` big-endian as 32 bits. */
export function put32(buf: Uint8Array, off: number, value: number): void {
  buf[off] = value >>> 24;
  buf[off + 1] = (value >>> 16) & 0xff;
  buf[off + 2] = (value >>> 8) & 0xff;
  buf[off + 3] = value & 0xff;
}

/** Reads a big-endian unsigned 32-bit value. */
export function get32(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}
