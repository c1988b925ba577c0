// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link UdpSessions}: the table of a UDP forward, one session per client
 * address (as socat's `fork`, onetun, or the kernel's conntrack for UDP).
 * A session ends after `idleMs` without a datagram either way; when the
 * table is full, a new client takes the place of the least recently active
 * one, so a flood of source addresses costs at most `max` sessions. One
 * timer on the injected clock serves the whole table: the map is kept in
 * order of last activity, so the oldest entry is always first.
 */
import type { Clock } from "../clock.ts";

/** Why a session ended. */
export type SessionEnd = "idle" | "evicted" | "closed";

/** Options of {@link UdpSessions}. */
export interface UdpSessionsOptions<S> {
  clock: Clock;
  /** A session ends after this many ms without traffic. */
  idleMs: number;
  /** Sessions at once; the least recently active gives way to a new one. */
  max: number;
  /** Called once per session as it ends (close its socket here). */
  onEnd: (key: string, session: S, why: SessionEnd) => void;
}

interface Entry<S> {
  session: S;
  last: number;
}

/** Sessions by client key; see the module doc. */
export class UdpSessions<S> {
  readonly #map = new Map<string, Entry<S>>();
  readonly #opts: UdpSessionsOptions<S>;
  #timer: number | null = null;
  #closed = false;
  /** Sessions ended for being idle, and for making room. */
  expired = 0;
  evicted = 0;

  constructor(opts: UdpSessionsOptions<S>) {
    if (!(opts.max >= 1)) throw new RangeError(`max sessions must be at least 1, not ${opts.max}`);
    if (!(opts.idleMs > 0)) {
      throw new RangeError(`idle timeout must be positive, not ${opts.idleMs}`);
    }
    this.#opts = opts;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The session of `key` marked active now, or undefined. */
  touch(key: string): S | undefined {
    const e = this.#map.get(key);
    if (!e) return undefined;
    e.last = this.#opts.clock.now();
    // Re-inserting moves it to the end: the map stays in order of activity.
    this.#map.delete(key);
    this.#map.set(key, e);
    return e.session;
  }

  /**
   * Adds a session for a new `key` (not in the table), ending the least
   * recently active one first when the table is full. Ignored once closed
   * (the session is ended at once, as "closed").
   */
  add(key: string, session: S): void {
    if (this.#closed) {
      this.#opts.onEnd(key, session, "closed");
      return;
    }
    while (this.#map.size >= this.#opts.max) {
      const [oldKey, old] = this.#map.entries().next().value!;
      this.#map.delete(oldKey);
      this.evicted++;
      this.#opts.onEnd(oldKey, old.session, "evicted");
    }
    this.#map.set(key, { session, last: this.#opts.clock.now() });
    this.#arm();
  }

  /** Ends the session of `key` now, if there is one. */
  delete(key: string): void {
    const e = this.#map.get(key);
    if (!e) return;
    this.#map.delete(key);
    this.#opts.onEnd(key, e.session, "closed");
  }

  /** Ends every session and stops the timer; later {@link add}s end at once. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) this.#opts.clock.cancel(this.#timer);
    this.#timer = null;
    for (const [key, e] of [...this.#map]) {
      this.#map.delete(key);
      this.#opts.onEnd(key, e.session, "closed");
    }
  }

  /** Schedules the sweep for when the oldest session would expire. */
  #arm(): void {
    if (this.#timer !== null || this.#map.size === 0) return;
    const first = this.#map.values().next().value!;
    const { clock, idleMs } = this.#opts;
    const wait = Math.max(0, first.last + idleMs - clock.now());
    this.#timer = clock.after(wait, () => {
      this.#timer = null;
      this.#sweep();
    });
  }

  #sweep(): void {
    const { clock, idleMs, onEnd } = this.#opts;
    const now = clock.now();
    for (const [key, e] of this.#map) {
      if (e.last + idleMs > now) break;
      this.#map.delete(key);
      this.expired++;
      onEnd(key, e.session, "idle");
    }
    this.#arm();
  }
}
