// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Deterministic time and randomness for tests: {@link FakeClock} implements
 * the protocol {@link Clock} with time that only moves when a test calls
 * {@link FakeClock.advance}, and {@link seededRng} is a reproducible
 * (NOT cryptographic) {@link Rng}. std's `FakeTime` is the model; JSR is not
 * reachable, so this is our own.
 *
 * ```ts
 * const clock = new FakeClock();
 * clock.after(5_000, () => fired++);
 * clock.advance(4_999); // nothing yet
 * clock.advance(1);     // fires, clock.now() === 5_000 inside the callback
 * ```
 */
import type { Clock, Rng } from "../../src/clock.ts";

/** Default wall time of a new FakeClock: 2024-01-01T00:00:00Z. */
export const FAKE_WALL_START = Date.UTC(2024, 0, 1);

interface Timer {
  due: number;
  seq: number;
  handle: number;
  fn: () => void;
}

/**
 * FakeClock is a {@link Clock} whose time moves only in {@link advance}.
 *
 * - `now()` starts at `opts.now` (default 0) and never goes backwards.
 * - `wall()` starts at `opts.wall` (default {@link FAKE_WALL_START}) and moves
 *   with `now()`; {@link setWall} jumps it without touching `now()`, like a
 *   system clock change.
 * - `after(ms, fn)` never runs `fn` synchronously: it runs during a later
 *   `advance` whose target reaches `now() + max(0, ms)`. So `after(0, fn)` runs
 *   on the next `advance(0)`.
 * - `advance(ms)` runs due callbacks one at a time in deadline order (ties in
 *   scheduling order), with `now()` set to each callback's deadline while it
 *   runs; callbacks scheduled meanwhile run too if due by the target. Then
 *   `now()` is the target. A throwing callback propagates out of `advance`;
 *   the clock then stays at that callback's deadline and the remaining timers
 *   stay scheduled.
 */
export class FakeClock implements Clock {
  #now: number;
  /** wall() − now(), changed by setWall. */
  #wallOffset: number;
  #heap: Timer[] = [];
  /** Live handles; a cancelled timer stays in the heap until it surfaces. */
  #live = new Set<number>();
  #nextHandle = 1;
  #seq = 0;

  constructor(opts: { now?: number; wall?: number } = {}) {
    this.#now = opts.now ?? 0;
    this.#wallOffset = (opts.wall ?? FAKE_WALL_START) - this.#now;
  }

  now(): number {
    return this.#now;
  }

  wall(): number {
    return this.#now + this.#wallOffset;
  }

  after(ms: number, fn: () => void): number {
    const handle = this.#nextHandle++;
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.#push({ due: this.#now + delay, seq: this.#seq++, handle, fn });
    this.#live.add(handle);
    return handle;
  }

  cancel(handle: number): void {
    this.#live.delete(handle);
  }

  /** Sets the wall clock to `ms` (Unix epoch ms); monotonic time is unchanged. */
  setWall(ms: number): void {
    this.#wallOffset = ms - this.#now;
  }

  /** Number of scheduled, not cancelled, callbacks. */
  get pending(): number {
    return this.#live.size;
  }

  /** Deadline of the earliest live callback, or undefined when none. */
  nextDeadline(): number | undefined {
    this.#dropCancelled();
    return this.#heap.length > 0 ? this.#heap[0].due : undefined;
  }

  /** Moves time forward by `ms` ≥ 0, running every callback that falls due. */
  advance(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) {
      throw new RangeError(`Cannot advance a FakeClock by ${ms} ms`);
    }
    const target = this.#now + ms;
    for (;;) {
      this.#dropCancelled();
      const top = this.#heap[0];
      if (top === undefined || top.due > target) break;
      this.#pop();
      this.#live.delete(top.handle);
      this.#now = top.due;
      top.fn();
    }
    this.#now = target;
  }

  /** Advances to each next deadline until none is left within `maxMs`. */
  runAll(maxMs = 3_600_000): void {
    const limit = this.#now + maxMs;
    for (;;) {
      const due = this.nextDeadline();
      if (due === undefined || due > limit) return;
      this.advance(due - this.#now);
    }
  }

  #dropCancelled(): void {
    while (this.#heap.length > 0 && !this.#live.has(this.#heap[0].handle)) this.#pop();
  }

  static #less(a: Timer, b: Timer): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  #push(t: Timer): void {
    const h = this.#heap;
    let i = h.length;
    h.push(t);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!FakeClock.#less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < h.length && FakeClock.#less(h[l], h[m])) m = l;
      if (r < h.length && FakeClock.#less(h[r], h[m])) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
}

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
