// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link EventLoop}: the data path's own event loop, for a thread that does
 * nothing else (the daemon's data-plane Worker). It blocks in a synchronous
 * `epoll_wait` over the TUN, the UDP sockets and a wake-up eventfd, with the
 * timeout set to the earliest timer, then calls the handlers of the ready fds
 * and the callbacks that fell due, and waits again. Deno's own event loop is
 * never entered, so a packet costs no promise, no thread-pool hop and no
 * turn of Deno's loop, and an idle tunnel sleeps in the kernel until its next
 * timer (a keepalive) or packet: no periodic wake-ups.
 *
 * It is also the {@link Clock} of the device it serves: `now()` is
 * `performance.now()`, and `after()` puts the callback in a {@link TimerHeap}
 * that the loop runs. Callbacks never run inside `after`; `after(0, fn)` runs
 * `fn` before the next wait.
 *
 * Level-triggered: a handler that stops early (a batch limit) is called again
 * on the next round. EPOLLERR/EPOLLHUP are always reported, so a handler whose
 * fd died (a deleted TUN) must {@link EventLoop.remove} it.
 *
 * Another thread wakes the loop by writing to {@link EventLoop.wakeFd} (an
 * eventfd); the loop then calls the `onWake` handler.
 */
import type { Clock } from "./clock.ts";
import { TimerHeap } from "./timer_heap.ts";
import {
  closeQuietly,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_EVENT_DATA_OFFSET,
  EPOLLIN,
  errno,
  type Libc,
  libc,
  SIZEOF_EPOLL_EVENT,
  strerror,
} from "./sys/libc.ts";

/** Ready events fetched per wait. */
const MAX_EVENTS = 64;
/** Longest single wait in ms (epoll_wait takes an int; a day is plenty). */
const MAX_WAIT_MS = 86_400_000;
const EIGHT = 8n;

/** Options for {@link EventLoop}. */
export interface EventLoopOptions {
  /**
   * Called when a handler or timer callback throws; the loop goes on. Without
   * it the error ends {@link EventLoop.run}, which throws it.
   */
  onError?: (err: unknown) => void;
  /** Called (on the loop's thread) after another thread wrote to {@link EventLoop.wakeFd}. */
  onWake?: () => void;
  /**
   * An eventfd made by the waking side, used instead of one of our own and
   * never closed here: its owner decides when the number may be reused.
   */
  wakeFd?: number;
}

/** A synchronous epoll loop with timers; see the module doc. */
export class EventLoop implements Clock {
  #c: Libc;
  #epfd: number;
  #wakefd: number;
  #handlers = new Map<number, () => void>();
  #timers = new TimerHeap();
  #events = new Uint8Array(MAX_EVENTS * SIZEOF_EPOLL_EVENT);
  #eventsView = new DataView(this.#events.buffer);
  #ctlEvent = new Uint8Array(SIZEOF_EPOLL_EVENT);
  #ctlView = new DataView(this.#ctlEvent.buffer);
  #drainBuf = new BigUint64Array(1);
  #onError: ((err: unknown) => void) | undefined;
  #onWake: (() => void) | undefined;
  #ownsWakeFd: boolean;
  #stopped = false;
  #running = false;
  /** Waits that returned, for tests and metrics. */
  wakeups = 0;
  /** {@link Clock.tick}: `now()` when this turn began (set after each wait and before timers run). */
  readonly tick = new Float64Array([performance.now()]);

  /** Creates the epoll set and its wake-up eventfd. Throws if the kernel refuses. */
  constructor(opts: EventLoopOptions = {}) {
    this.#c = libc();
    this.#onError = opts.onError;
    this.#onWake = opts.onWake;
    this.#epfd = this.#c.epoll_create1(EPOLL_CLOEXEC);
    if (this.#epfd < 0) throw new Error(`epoll_create1: ${strerror(errno())}`);
    this.#ownsWakeFd = opts.wakeFd === undefined;
    this.#wakefd = opts.wakeFd ?? this.#c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.#wakefd < 0) {
      const e = errno();
      closeQuietly(this.#epfd);
      throw new Error(`eventfd: ${strerror(e)}`);
    }
    this.#ctl(EPOLL_CTL_ADD, this.#wakefd);
  }

  /** The eventfd another thread writes an 8-byte count to, to wake the loop. */
  get wakeFd(): number {
    return this.#wakefd;
  }

  /** Sets the handler for wake-ups through {@link wakeFd}. */
  set onWake(fn: (() => void) | undefined) {
    this.#onWake = fn;
  }

  // ---- Clock

  now(): number {
    return performance.now();
  }

  wall(): number {
    return Date.now();
  }

  after(ms: number, fn: () => void): number {
    return this.#timers.add(performance.now() + (ms > 0 ? ms : 0), fn);
  }

  cancel(handle: number): void {
    this.#timers.cancel(handle);
  }

  // ---- fds

  /** Watches `fd` for readability; `handler` runs while it is readable or failed. */
  add(fd: number, handler: () => void): void {
    if (this.#epfd < 0) throw new Error("EventLoop is closed");
    if (!this.#handlers.has(fd)) this.#ctl(EPOLL_CTL_ADD, fd);
    this.#handlers.set(fd, handler);
  }

  /** Stops watching `fd` (call it before closing the fd). Unknown fds are ignored. */
  remove(fd: number): void {
    if (!this.#handlers.delete(fd) || this.#epfd < 0) return;
    // An fd closed already has left the set by itself (EBADF/ENOENT): fine.
    this.#c.epoll_ctl(this.#epfd, EPOLL_CTL_DEL, fd, this.#ctlEvent);
  }

  /** The fds watched, besides the wake-up eventfd. */
  watched(): IterableIterator<number> {
    return this.#handlers.keys();
  }

  #ctl(op: number, fd: number): void {
    this.#ctlView.setUint32(0, EPOLLIN, true);
    this.#ctlView.setBigUint64(EPOLL_EVENT_DATA_OFFSET, BigInt(fd), true);
    if (this.#c.epoll_ctl(this.#epfd, op, fd, this.#ctlEvent) < 0) {
      throw new Error(`epoll_ctl(${fd}): ${strerror(errno())}`);
    }
  }

  // ---- the loop

  /**
   * Runs until {@link stop}: blocks this thread. Throws what a handler threw
   * when no `onError` was given. A stopped loop may be run again (its fds
   * and timers stay), so a thread can also run it in slices. A stop() asked
   * for while the loop was not running (by code that runs before it, such as
   * a setup step that finds its fd gone) makes the next run() return at once.
   */
  run(): void {
    if (this.#running) throw new Error("EventLoop is already running");
    if (this.#epfd < 0) throw new Error("EventLoop is closed");
    this.#running = true;
    const c = this.#c, view = this.#eventsView, handlers = this.#handlers;
    try {
      while (!this.#stopped) {
        this.#runTimers();
        if (this.#stopped) break;
        const due = this.#timers.nextDue();
        let timeout = -1;
        if (due !== undefined) {
          timeout = Math.min(MAX_WAIT_MS, Math.max(0, Math.ceil(due - performance.now())));
        }
        // −1 is EINTR (a signal handled on this thread): simply look again.
        const n = c.epoll_wait(this.#epfd, this.#events, MAX_EVENTS, timeout);
        this.wakeups++;
        this.tick[0] = performance.now();
        for (let i = 0; i < n && !this.#stopped; i++) {
          const fd = view.getInt32(i * SIZEOF_EPOLL_EVENT + EPOLL_EVENT_DATA_OFFSET, true);
          if (fd === this.#wakefd) {
            c.read(fd, this.#drainBuf, EIGHT);
            if (this.#onWake !== undefined) this.#call(this.#onWake);
            continue;
          }
          // A handler earlier in this round may have removed this fd.
          const handler = handlers.get(fd);
          if (handler !== undefined) this.#call(handler);
        }
      }
    } finally {
      this.#running = false;
      this.#stopped = false;
    }
  }

  /** Runs every timer callback due by now (and those they schedule for now). */
  #runTimers(): void {
    const now = performance.now();
    this.tick[0] = now;
    for (;;) {
      if (this.#stopped) return;
      const fn = this.#timers.takeDue(now);
      if (fn === null) return;
      this.#call(fn);
    }
  }

  #call(fn: () => void): void {
    if (this.#onError === undefined) {
      fn();
      return;
    }
    try {
      fn();
    } catch (err) {
      this.#onError(err);
    }
  }

  /**
   * Makes {@link run} return after the current handler, or, called while the
   * loop is not running, makes the next run() return at once. Idempotent.
   */
  stop(): void {
    this.#stopped = true;
  }

  /** Stops and releases the epoll set and its own eventfd (not the watched fds). Idempotent. */
  close(): void {
    if (this.#epfd < 0) return;
    this.stop();
    this.#handlers.clear();
    closeQuietly(this.#epfd);
    if (this.#ownsWakeFd) closeQuietly(this.#wakefd);
    this.#epfd = -1;
    this.#wakefd = -1;
  }
}
