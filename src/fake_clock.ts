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
import { TimerHeap } from "./timer_heap.ts";

/** Default wall time of a new FakeClock: 2024-01-01T00:00:00Z. */
export const FAKE_WALL_START = Date.UTC(2024, 0, 1);

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
  /** {@link Clock.tick}: always holds `now()` (a fake clock has no turns). */
  readonly tick = new Float64Array(1);
  /** wall() − now(), changed by setWall. */
  #wallOffset: number;
  #timers = new TimerHeap();

  constructor(opts: { now?: number; wall?: number } = {}) {
    this.#now = this.tick[0] = opts.now ?? 0;
    this.#wallOffset = (opts.wall ?? FAKE_WALL_START) - this.#now;
  }

  now(): number {
    return this.#now;
  }

  wall(): number {
    return this.#now + this.#wallOffset;
  }

  after(ms: number, fn: () => void): number {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    return this.#timers.add(this.#now + delay, fn);
  }

  cancel(handle: number): void {
    this.#timers.cancel(handle);
  }

  /** Sets the wall clock to `ms` (Unix epoch ms); monotonic time is unchanged. */
  setWall(ms: number): void {
    this.#wallOffset = ms - this.#now;
  }

  /** Number of scheduled, not cancelled, callbacks. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Deadline of the earliest live callback, or undefined when none. */
  nextDeadline(): number | undefined {
    return this.#timers.nextDue();
  }

  /** Moves time forward by `ms` ≥ 0, running every callback that falls due. */
  advance(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) {
      throw new RangeError(`Cannot advance a FakeClock by ${ms} ms`);
    }
    const target = this.#now + ms;
    for (;;) {
      const fn = this.#timers.takeDue(target);
      if (fn === null) break;
      this.#now = this.tick[0] = this.#timers.lastDue;
      fn();
    }
    this.#now = this.tick[0] = target;
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
}
