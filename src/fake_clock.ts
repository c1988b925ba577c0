// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link FakeClock}: the protocol {@link Clock} with time that only moves when
 * its owner calls {@link FakeClock.advance}. Tests drive devices with it, and
 * the daemon's start-up warm-up (src/warmup.ts) runs two throwaway devices on
 * it. std's `FakeTime` is the model; JSR is not reachable, so this is our own.
 *
 * ```ts
 * const clock = new FakeClock();
 * clock.after(5_000, () => fired++);
 * clock.advance(4_999); // nothing yet
 * clock.advance(1);     // fires, clock.now() === 5_000 inside the callback
 * ```
 */
import type { Clock } from "./clock.ts";

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
