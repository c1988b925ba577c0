// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Deterministic time and randomness for tests: {@link FakeClock} (from
 * src/fake_clock.ts, which the daemon's warm-up uses too) implements the
 * protocol Clock with time that only moves when a test calls
 * {@link FakeClock.advance}, and {@link seededRng} is a reproducible
 * (NOT cryptographic) {@link Rng}.
 */
import type { Rng } from "../../src/clock.ts";
export { FAKE_WALL_START, FakeClock } from "../../src/fake_clock.ts";

/**
 * A deterministic {@link Rng} for tests: xoshiro128** seeded through
 * splitmix32, so every seed (including 0) gives a distinct, well-mixed stream.
 * NOT cryptographically secure; never use it outside tests.
 */
export function seededRng(seed: number): Rng {
  let x = seed >>> 0;
  function splitmix32(): number {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
  let s0 = splitmix32(), s1 = splitmix32(), s2 = splitmix32(), s3 = splitmix32();
  function next(): number {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  }
  return function fill(out: Uint8Array): void {
    let i = 0;
    for (; i + 4 <= out.length; i += 4) {
      const v = next();
      out[i] = v;
      out[i + 1] = v >>> 8;
      out[i + 2] = v >>> 16;
      out[i + 3] = v >>> 24;
    }
    if (i < out.length) {
      let v = next();
      for (; i < out.length; i++, v >>>= 8) out[i] = v;
    }
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * Convenience over an {@link Rng}: uniform integers and bytes for randomized
 * tests. `int(n)` is uniform in [0, n) for n ≤ 2^32 (rejection sampling).
 */
export class RandomSource {
  #rng: Rng;
  #buf = new Uint8Array(4);

  constructor(rng: Rng) {
    this.#rng = rng;
  }

  /** A uniform u32. */
  u32(): number {
    this.#rng(this.#buf);
    const b = this.#buf;
    return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  }

  /** A uniform integer in [0, n), 1 ≤ n ≤ 2^32. */
  int(n: number): number {
    if (!(n >= 1 && n <= 2 ** 32) || !Number.isInteger(n)) {
      throw new RangeError(`Cannot draw an integer below ${n}`);
    }
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const v = this.u32();
      if (v < limit) return v % n;
    }
  }

  /** `n` fresh random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    this.#rng(out);
    return out;
  }
}

/** Seeded random bytes and integers for tests, on {@link seededRng}. */
export function seededSource(seed: number): {
  bytes(n: number): Uint8Array;
  int(max: number): number;
} {
  const rng = seededRng(seed);
  const word = new Uint8Array(4);
  return {
    bytes(n: number): Uint8Array {
      const out = new Uint8Array(n);
      rng(out);
      return out;
    },
    /** An integer in [0, max]. */
    int(max: number): number {
      rng(word);
      return ((word[0] | (word[1] << 8) | (word[2] << 16) | (word[3] << 24)) >>> 0) % (max + 1);
    },
  };
}
