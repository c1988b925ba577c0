// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Receiver index table (whitepaper §5.4.2: sender/receiver "index" fields).
 * Each handshake and keypair we own gets a random 32-bit index that the peer
 * echoes in every message it sends us, so a received message finds its state
 * in O(1). Indices are uniformly random, not counters, so they reveal nothing
 * about how many sessions exist (kernel `peerlookup.c`, wireguard-go
 * `device/indextable.go`). Unlike those two, 0 is never issued, so callers can
 * use 0 to mean "no index"; the peer cannot tell the difference.
 */
import type { Rng } from "./clock.ts";

/**
 * Draws this many random indices at most before concluding that the RNG is
 * broken (a healthy one almost never needs a second draw).
 */
const MAX_DRAWS = 1 << 16;

/** IndexTable maps random u32 receiver indices to values. */
export class IndexTable<T> {
  #rng: Rng;
  /**
   * Keyed by the index as an int32 (`index | 0`): a u32 above 2^31 − 1 is not
   * a small integer to V8, and every lookup with it would allocate a number.
   */
  #map = new Map<number, T>();
  #buf = new Uint8Array(4);

  constructor(rng: Rng) {
    this.#rng = rng;
  }

  /**
   * Stores `value` under a fresh random nonzero index that is not in use and
   * returns the index. Throws an Error only if the RNG keeps returning used
   * indices.
   */
  insert(value: T): number {
    const b = this.#buf;
    for (let i = 0; i < MAX_DRAWS; i++) {
      this.#rng(b);
      const index = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
      if (index !== 0 && !this.#map.has(index | 0)) {
        this.#map.set(index | 0, value);
        return index;
      }
    }
    throw new Error(`Cannot find a free receiver index after ${MAX_DRAWS} draws: broken RNG`);
  }

  /**
   * Puts `value` under an index that is already in use, keeping the index (a
   * handshake's index becomes its keypair's, wireguard-go
   * SwapIndexForKeypair). Does nothing if the index is not in use.
   */
  replace(index: number, value: T): void {
    if (index === index >>> 0 && this.#map.has(index | 0)) this.#map.set(index | 0, value);
  }

  /** The value stored under `index`, or undefined. Never throws on any number. */
  lookup(index: number): T | undefined {
    return index === index >>> 0 ? this.#map.get(index | 0) : undefined;
  }

  /** Frees `index`; unknown indices are ignored. */
  delete(index: number): void {
    if (index === index >>> 0) this.#map.delete(index | 0);
  }

  /** Indices in use. */
  get size(): number {
    return this.#map.size;
  }
}
