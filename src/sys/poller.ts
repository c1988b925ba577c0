// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * One epoll set for every fd of the data path (the TUN and the UDP sockets).
 * {@link Poller.run} awaits `epoll_wait` as a `nonblocking: true` FFI call,
 * which runs on a Tokio pool thread, so Deno's own event loop (timers, the
 * UAPI server, signals) keeps running meanwhile; then it calls the handlers of
 * the ready fds synchronously on the main thread, and they drain their fd with
 * synchronous FFI calls until EAGAIN (measured on Deno 2.9.6: about 1 µs per
 * packet against 8 µs for one awaited read per packet).
 *
 * Level-triggered: a handler that stops early (a batch limit) is simply called
 * again on the next round. POLLERR/POLLHUP are always reported, so a handler
 * whose fd died (a deleted TUN) must {@link Poller.remove} it or it is called
 * on every round.
 *
 * {@link Poller.stop} writes to an eventfd that sits in the same epoll set, so
 * a pending wait returns at once instead of at its timeout.
 */
import { setImmediate } from "node:timers";
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
} from "./libc.ts";

/** Ready events fetched per wait. */
const MAX_EVENTS = 64;
/** Longest time Deno's event loop waits while the poller spins or holds, in ms. */
const YIELD_MS = 2;

/** Lets Deno's event loop run once (I/O, timers) and comes back. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
const ONE = new BigUint64Array([1n]);
const EIGHT = 8n;

/** Options for {@link Poller}. */
export interface PollerOptions {
  /** epoll_wait timeout in ms (0 < t ≤ 1000); bounds how long a lost wakeup could last. */
  timeoutMs?: number;
  /**
   * After events, keep looking synchronously for this many µs before going
   * back to the awaited wait (default 0: never spin).
   */
  spinUs?: number;
  /**
   * After events, keep waiting on the main thread for this many ms: a
   * synchronous `epoll_wait` that sleeps in the kernel (no CPU) in slices of
   * at most 2 ms, with a turn for Deno's event loop between slices, instead of
   * the awaited wait (default 0: off). Lowers latency for traffic with gaps
   * (pings, request/response) by skipping the thread-pool hop; costs up to
   * 2 ms of delay for timers and the UAPI socket while traffic flows, and a
   * wake-up every 2 ms for this long after the last packet.
   */
  holdMs?: number;
  /**
   * Called when a handler throws. Without it the error ends {@link Poller.run}
   * (which rejects with it); with it the loop logs and continues.
   */
  onError?: (err: unknown) => void;
}

/** Readiness loop over an epoll set; see the module doc. */
export class Poller {
  #c: Libc;
  #epfd: number;
  #wakefd: number;
  #handlers = new Map<number, () => void>();
  #events = new Uint8Array(MAX_EVENTS * SIZEOF_EPOLL_EVENT);
  #eventsView = new DataView(this.#events.buffer);
  #ctlEvent = new Uint8Array(SIZEOF_EPOLL_EVENT);
  #ctlView = new DataView(this.#ctlEvent.buffer);
  #drainBuf = new BigUint64Array(1);
  #timeout: number;
  #spinMs: number;
  #holdMs: number;
  #onError: ((err: unknown) => void) | undefined;
  #stopped = false;
  #running = false;
  #closePending = false;

  /** Creates the epoll set and its wakeup eventfd. Throws if the kernel refuses. */
  constructor(opts: PollerOptions = {}) {
    this.#c = libc();
    this.#timeout = Math.min(1000, Math.max(1, Math.floor(opts.timeoutMs ?? 1000)));
    this.#spinMs = Math.max(0, opts.spinUs ?? 0) / 1000;
    this.#holdMs = Math.max(0, opts.holdMs ?? 0);
    this.#onError = opts.onError;
    this.#epfd = this.#c.epoll_create1(EPOLL_CLOEXEC);
    if (this.#epfd < 0) throw new Error(`epoll_create1: ${strerror(errno())}`);
    this.#wakefd = this.#c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.#wakefd < 0) {
      const e = errno();
      closeQuietly(this.#epfd);
      throw new Error(`eventfd: ${strerror(e)}`);
    }
    this.#ctl(EPOLL_CTL_ADD, this.#wakefd);
  }

  /** True while {@link Poller.run} is looping. */
  get running(): boolean {
    return this.#running;
  }

  /**
   * Watches `fd` for readability and calls `handler` whenever it is readable
   * (or has an error). Adding a watched fd again replaces its handler.
   */
  add(fd: number, handler: () => void): void {
    if (this.#epfd < 0) throw new Error("Poller is closed");
    if (!this.#handlers.has(fd)) this.#ctl(EPOLL_CTL_ADD, fd);
    this.#handlers.set(fd, handler);
  }

  /** Stops watching `fd`. Call it before closing the fd. Unknown fds are ignored. */
  remove(fd: number): void {
    if (!this.#handlers.delete(fd) || this.#epfd < 0) return;
    // An fd that was already closed has left the set by itself (EBADF/ENOENT): fine.
    this.#c.epoll_ctl(this.#epfd, EPOLL_CTL_DEL, fd, this.#ctlEvent);
  }

  #ctl(op: number, fd: number): void {
    this.#ctlView.setUint32(0, EPOLLIN, true);
    this.#ctlView.setBigUint64(EPOLL_EVENT_DATA_OFFSET, BigInt(fd), true);
    if (this.#c.epoll_ctl(this.#epfd, op, fd, this.#ctlEvent) < 0) {
      throw new Error(`epoll_ctl(${fd}): ${strerror(errno())}`);
    }
  }

  /**
   * Waits and dispatches until {@link Poller.stop}. Resolves after the stop;
   * a poller that was stopped stays stopped. Rejects if a handler throws and
   * no `onError` was given.
   */
  async run(): Promise<void> {
    if (this.#running) throw new Error("Poller is already running");
    if (this.#epfd < 0) throw new Error("Poller is closed");
    this.#running = true;
    const c = this.#c, view = this.#eventsView, handlers = this.#handlers;
    try {
      let spinUntil = 0;
      let holdUntil = 0;
      let lastYield = performance.now();
      while (!this.#stopped) {
        let n = 0;
        let now = performance.now();
        if ((spinUntil > 0 || holdUntil > now) && now - lastYield >= YIELD_MS) {
          // Waiting on the main thread: Deno's own loop (timers, the UAPI socket,
          // signals) still gets a turn at least every YIELD_MS.
          await yieldToEventLoop();
          lastYield = now = performance.now();
        }
        // After activity, look again before the awaited wait: an awaited FFI call
        // hops through a thread-pool thread and back (two wake-ups), while the
        // next packet (a reply the kernel just queued on the TUN, the next ping,
        // the rest of a burst) often comes soon. First spin (spinUs), then sleep
        // in a synchronous epoll_wait on this thread (holdMs), in slices.
        if (spinUntil > 0) {
          n = c.epoll_wait(this.#epfd, this.#events, MAX_EVENTS, 0);
          if (n <= 0) {
            if (now < spinUntil) continue;
            spinUntil = 0;
          }
        }
        if (n <= 0 && now < holdUntil) {
          const ms = Math.min(YIELD_MS - (now - lastYield), holdUntil - now);
          // −1 is EINTR (a signal for Deno's handler): look again.
          n = c.epoll_wait(this.#epfd, this.#events, MAX_EVENTS, Math.max(0, Math.ceil(ms)));
          if (n <= 0) continue;
        }
        if (n <= 0) {
          // errno of a nonblocking call is unknowable (another thread); a −1 here can only be
          // EINTR in practice, so simply wait again.
          n = await c.epoll_wait_nb(this.#epfd, this.#events, MAX_EVENTS, this.#timeout);
          lastYield = performance.now();
        }
        if (n > 0 && (this.#spinMs > 0 || this.#holdMs > 0)) {
          const t = performance.now();
          if (this.#spinMs > 0) spinUntil = t + this.#spinMs;
          if (this.#holdMs > 0) holdUntil = t + this.#holdMs;
        }
        for (let i = 0; i < n && !this.#stopped; i++) {
          const fd = view.getInt32(i * SIZEOF_EPOLL_EVENT + EPOLL_EVENT_DATA_OFFSET, true);
          if (fd === this.#wakefd) {
            c.read(fd, this.#drainBuf, EIGHT);
            continue;
          }
          // A handler earlier in this round may have removed this fd.
          const handler = handlers.get(fd);
          if (handler === undefined) continue;
          if (this.#onError === undefined) {
            handler();
          } else {
            try {
              handler();
            } catch (err) {
              this.#onError(err);
            }
          }
        }
      }
    } finally {
      this.#running = false;
      if (this.#closePending) this.#closeFds();
    }
  }

  /** Makes {@link Poller.run} return promptly (after the current handler). Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#wakefd >= 0) this.#c.write(this.#wakefd, ONE, EIGHT);
  }

  /**
   * Stops and releases the epoll set and eventfd (not the watched fds, which
   * belong to their owners). If {@link Poller.run} is still waiting, the fds are
   * closed when it returns.
   */
  close(): void {
    this.stop();
    this.#handlers.clear();
    if (this.#running) this.#closePending = true;
    else this.#closeFds();
  }

  #closeFds(): void {
    closeQuietly(this.#epfd);
    closeQuietly(this.#wakefd);
    this.#epfd = -1;
    this.#wakefd = -1;
  }
}
