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
