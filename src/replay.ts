// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Anti-replay filter for transport counters: the RFC 6479 sliding window used
 * by the kernel (`receive.c` counter_validate) and wireguard-go (`replay/`).
 * A ring of 128 blocks of 64 bits remembers 8192 counters; the newest block is
 * always partly in the future, so the usable window is (128 − 1) × 64 = 8128
 * counters behind the highest one seen (whitepaper §5.4.6).
 *
 * Counters are unsigned 64-bit and arrive as two u32 halves, because a double
 * cannot hold every value up to REJECT_AFTER_MESSAGES (2^64 − 2^13 − 1). All
 * arithmetic here is exact u32 math on the halves; the only place a difference
 * can be large is the "how far did the window move" step, which only needs to
 * know whether the jump is at least the ring size.
 */
import { REJECT_AFTER_MESSAGES_HI, REJECT_AFTER_MESSAGES_LO } from "./constants.ts";

/** Blocks in the ring (must be a power of two). */
const RING_BLOCKS = 128;
/** Bits per block, and its log2. */
const BLOCK_BITS = 64;
const BLOCK_BIT_LOG = 6;
/** Counters further than this behind the newest one are rejected as too old. */
export const REPLAY_WINDOW_SIZE = (RING_BLOCKS - 1) * BLOCK_BITS;

/**
 * ReplayFilter rejects replayed or too old transport counters for one
 * keypair. A new filter is empty and ready to use.
 */
export class ReplayFilter {
  /** The ring: block b is words 2b (bits 0–31) and 2b+1 (bits 32–63). */
  #ring = new Uint32Array(RING_BLOCKS * 2);
  /** Highest counter accepted so far, as u32 halves. */
  #lastLo = 0;
  #lastHi = 0;

  /** Forgets every counter seen, as for a fresh keypair. */
  reset(): void {
    this.#lastLo = 0;
    this.#lastHi = 0;
    this.#ring.fill(0);
  }

  /**
   * Accepts a counter (`lo`, `hi` are its low and high u32 halves) and records
   * it, or rejects it: counters ≥ REJECT_AFTER_MESSAGES, counters already seen
   * and counters more than {@link REPLAY_WINDOW_SIZE} behind the newest one.
   * Only call this after the packet authenticated, or an attacker could move
   * the window (kernel receive.c does the same).
   */
  validate(lo: number, hi: number): boolean {
    lo >>>= 0;
    hi >>>= 0;
    if (
      hi > REJECT_AFTER_MESSAGES_HI ||
      (hi === REJECT_AFTER_MESSAGES_HI && lo >= REJECT_AFTER_MESSAGES_LO)
    ) {
      return false;
    }
    const lastLo = this.#lastLo, lastHi = this.#lastHi;
    if (hi > lastHi || (hi === lastHi && lo > lastLo)) {
      // Move the window forward, clearing every block between the old newest
      // block (exclusive) and the new one (inclusive), at most the whole ring.
      // With d = counter − last, (counter >> 6) − (last >> 6) equals
      // ((last & 63) + d) >> 6 exactly; d ≥ 2^32 certainly clears everything.
      let diff = RING_BLOCKS;
      if (hi === lastHi || (hi === lastHi + 1 && lo < lastLo)) {
        const d = (lo - lastLo) >>> 0;
        diff = Math.min(RING_BLOCKS, Math.floor(((lastLo & (BLOCK_BITS - 1)) + d) / BLOCK_BITS));
      }
      const current = lastLo >>> BLOCK_BIT_LOG;
      const ring = this.#ring;
      for (let i = 1; i <= diff; i++) {
        const b = ((current + i) & (RING_BLOCKS - 1)) << 1;
        ring[b] = 0;
        ring[b + 1] = 0;
      }
      this.#lastLo = lo;
      this.#lastHi = hi;
    } else {
      // Behind (or equal to) the newest: reject when last − counter > window.
      if (hi !== lastHi && !(hi + 1 === lastHi && lo > lastLo)) return false;
      if (((lastLo - lo) >>> 0) > REPLAY_WINDOW_SIZE) return false;
    }
    // Check and set the counter's bit in its block.
    const block = (lo >>> BLOCK_BIT_LOG) & (RING_BLOCKS - 1);
    const bit = lo & (BLOCK_BITS - 1);
    const word = (block << 1) | (bit >>> 5);
    const mask = 1 << (bit & 31);
    const old = this.#ring[word];
    if ((old & mask) !== 0) return false;
    this.#ring[word] = old | mask;
    return true;
  }
}
