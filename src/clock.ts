// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Time and randomness as parameters. Protocol code never reads the system clock
 * or the system RNG directly: it receives a {@link Clock} and a {@link Rng}, so
 * tests drive it with a fake clock and a seeded generator.
 */
/** Clock gives monotonic time for timers and wall time for TAI64N and UAPI. */
export interface Clock {
  /** Monotonic milliseconds (fractional allowed); never jumps with the system clock. */
  now(): number;
  /**
   * Optional: one element holding `now()` as of the start of the current turn
   * of the clock's event loop (at most one turn old). Per-packet code (session
   * age, timer re-arms) reads it instead of calling `now()`: a fractional
   * number that comes back from a call, or from a field whose layout differs
   * between clock classes (the warm-up's and the daemon's), reaches the
   * caller as a heap number V8 allocates, which at full rate was nearly all of
   * the data path's garbage, while a Float64Array element is read as a raw
   * double. Clocks without turns leave it out (see {@link nowTick}).
   */
  readonly tick?: Float64Array;
  /** Wall-clock milliseconds since the Unix epoch (fractional allowed). */
  wall(): number;
  /**
   * Runs `fn` once after `ms` milliseconds. Returns a handle for {@link Clock.cancel}.
   * Callbacks never run synchronously inside `after`.
   */
  after(ms: number, fn: () => void): number;
  /** Cancels a callback scheduled with {@link Clock.after}; unknown handles are ignored. */
  cancel(handle: number): void;
}

/** The array {@link nowTick} hands out (one thread uses it at a time). */
const freshTick = new Float64Array(1);

/**
 * For a clock without {@link Clock.tick}: an array holding `clock.now()`,
 * to be read at once. Per-packet code reads `(clock.tick ?? nowTick(clock))[0]`,
 * so the time always comes out of a Float64Array element: a choice between
 * that element and a call's result would make V8 allocate for the element too.
 */
export function nowTick(clock: Clock): Float64Array {
  freshTick[0] = clock.now();
  return freshTick;
}

/** Rng fills a buffer with cryptographically secure random bytes. */
export type Rng = (out: Uint8Array) => void;

const immediates = new Map<number, ReturnType<typeof setImmediate>>();
let nextImmediate = -1;

/**
 * The system clock: `performance.now()`, `Date.now()`, and `setTimeout` —
 * except that `after(0, …)` uses `setImmediate` (a few µs), because nested
 * zero-delay timeouts are stretched to 4 ms and the device uses zero delays
 * to yield between batches of work. `setImmediate` is Deno's global, not an
 * import of `node:timers`: a static `node:` import is loaded in every isolate
 * of the bundled daemon (main thread and data-plane Worker) though the daemon
 * never uses this clock.
 */
export const realClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
  after(ms, fn) {
    if (!(ms > 0)) {
      const id = nextImmediate--;
      immediates.set(
        id,
        setImmediate(() => {
          immediates.delete(id);
          fn();
        }),
      );
      return id;
    }
    const t = setTimeout(fn, ms) as unknown as number;
    // Timers must not keep a process alive on their own (Deno unrefTimer).
    Deno.unrefTimer(t);
    return t;
  },
  cancel(handle) {
    if (handle < 0) {
      const i = immediates.get(handle);
      if (i !== undefined) clearImmediate(i);
      immediates.delete(handle);
      return;
    }
    clearTimeout(handle);
  },
};

/** The system CSPRNG (`crypto.getRandomValues`), in 64 KiB pieces. */
export function systemRng(out: Uint8Array): void {
  if (out.length <= 65536) {
    // No view for the common case: timer jitter draws 2 bytes per data packet sent after a receive.
    crypto.getRandomValues(out);
    return;
  }
  for (let i = 0; i < out.length; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(out.length, i + 65536)));
  }
}
