// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * TAI64N timestamps for handshake initiations (whitepaper §5.1, §5.4.2): 8
 * bytes of big-endian seconds offset by 2^62 + 10, then 4 bytes of big-endian
 * nanoseconds. A responder accepts an initiation only if its timestamp is
 * later than the last one from that peer, which stops replayed initiations.
 *
 * The nanoseconds are rounded down to a multiple of 2^24 ns (≈16.8 ms), as the
 * kernel's `tai64n_now()` and wireguard-go's `tai64n.stamp` do: the kernel
 * rounds to the power of two below 1 s / INITIATIONS_PER_SECOND (50) so the
 * timestamp does not leak a precise clock, while still increasing faster than
 * initiations may be sent.
 */

/** Bytes in a TAI64N label. */
export const TAI64N_SIZE = 12;

/** 2^24 ns: the whitening granularity (kernel noise.c, wireguard-go whitenerMask + 1). */
const WHITEN_NS = 0x1000000;
/** High u32 of the TAI64 base 0x400000000000000a; the low u32 is 10. */
const BASE_HI = 0x40000000;
const BASE_LO = 10;

/**
 * Encodes a wall-clock time (Unix epoch milliseconds, fractional allowed, as
 * `Clock.wall()`) as a whitened TAI64N label into `out` (a new 12-byte
 * array by default) and returns it.
 */
export function tai64n(wallMs: number, out: Uint8Array = new Uint8Array(TAI64N_SIZE)): Uint8Array {
  if (out.length < TAI64N_SIZE) {
    throw new RangeError(`Cannot write a TAI64N label into ${out.length} bytes`);
  }
  // Seconds are floored like Go's time.Unix(), so the nanoseconds are in [0, 1e9).
  const secs = Math.floor(wallMs / 1000);
  let ns = Math.floor((wallMs - secs * 1000) * 1e6);
  if (ns > 999_999_999) ns = 999_999_999;
  if (ns < 0) ns = 0;
  ns -= ns % WHITEN_NS;
  // 2^62 + 10 + secs, split exactly: secs is an integer well inside ±2^53.
  const lo = secs + BASE_LO;
  const carry = Math.floor(lo / 2 ** 32);
  const hi = (BASE_HI + carry) >>> 0;
  const lo32 = (lo - carry * 2 ** 32) >>> 0;
  writeU32(out, 0, hi);
  writeU32(out, 4, lo32);
  writeU32(out, 8, ns);
  return out;
}

/** True when label `a` is strictly later than `b` (bytewise big-endian compare, as Go). */
export function tai64nAfter(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < TAI64N_SIZE; i++) {
    if (a[i] !== b[i]) return a[i] > b[i];
  }
  return false;
}

function writeU32(out: Uint8Array, off: number, v: number): void {
  out[off] = v >>> 24;
  out[off + 1] = v >>> 16;
  out[off + 2] = v >>> 8;
  out[off + 3] = v;
}
