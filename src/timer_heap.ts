// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link TimerHeap}: the callbacks of a {@link Clock}'s `after`, ordered by
 * deadline (ties in scheduling order) in a binary heap. Both clocks that keep
 * their own timers use it: the tests' {@link FakeClock}, whose time moves only
 * when told, and the data path's {@link EventLoop}, which sleeps in
 * `epoll_wait` until the earliest deadline.
 *
 * Cancelling is O(1): the handle leaves the live set and its entry is dropped
 * when it reaches the top of the heap.
 */

interface Entry {
  due: number;
  seq: number;
  handle: number;
  fn: () => void;
}

function less(a: Entry, b: Entry): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}

/** Deadline-ordered callbacks; see the module doc. */
export class TimerHeap {
  #heap: Entry[] = [];
  #live = new Set<number>();
  #nextHandle = 1;
  #seq = 0;

  /** Schedules `fn` for `due` (any number; earlier runs first). Returns its handle (> 0). */
  add(due: number, fn: () => void): number {
    const handle = this.#nextHandle++;
    this.#push({ due, seq: this.#seq++, handle, fn });
    this.#live.add(handle);
    return handle;
  }

  /** Forgets a scheduled callback; unknown or finished handles are ignored. */
  cancel(handle: number): void {
    this.#live.delete(handle);
  }

  /** Number of scheduled, not cancelled, callbacks. */
  get size(): number {
    return this.#live.size;
  }

  /** Deadline of the earliest live callback, or undefined when none. */
  nextDue(): number | undefined {
    this.#dropCancelled();
    return this.#heap.length > 0 ? this.#heap[0].due : undefined;
  }

  /**
   * Removes the earliest live callback if its deadline is at most `limit`,
   * and returns it (its deadline in {@link lastDue}); null otherwise.
   */
  takeDue(limit: number): (() => void) | null {
    this.#dropCancelled();
    const top = this.#heap[0];
    if (top === undefined || top.due > limit) return null;
    this.#pop();
    this.#live.delete(top.handle);
    this.lastDue = top.due;
    return top.fn;
  }

  /** Deadline of the callback {@link takeDue} returned last. */
  lastDue = 0;

  #dropCancelled(): void {
    while (this.#heap.length > 0 && !this.#live.has(this.#heap[0].handle)) this.#pop();
  }

  #push(t: Entry): void {
    const h = this.#heap;
    let i = h.length;
    h.push(t);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i], h[p])) break;
      const tmp = h[i];
      h[i] = h[p];
      h[p] = tmp;
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
      if (l < h.length && less(h[l], h[m])) m = l;
      if (r < h.length && less(h[r], h[m])) m = r;
      if (m === i) return;
      const tmp = h[i];
      h[i] = h[m];
      h[m] = tmp;
      i = m;
    }
  }
}
