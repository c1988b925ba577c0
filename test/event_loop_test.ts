// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * EventLoop over pipes and eventfds made with FFI (pipe2, eventfd); needs
 * only --allow-ffi, not root. The loop blocks the test's thread, so every
 * test arms a generous guard timer that stops it if the awaited event never
 * comes, and asserts that the guard did not fire: nothing is timed.
 */
import assert from "node:assert/strict";
import { EventLoop } from "../src/event_loop.ts";
import {
  closeQuietly,
  EAGAIN,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  errno,
  F_GETFD,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
} from "../src/sys/libc.ts";

/** How long a test waits for what it expects before giving up (never reached when it passes). */
const GUARD_MS = 10_000;

const ffi = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
const ignore = Deno.build.os !== "linux" || !ffi;

/** A non-blocking pipe: [read end, write end]. */
function pipe(): [number, number] {
  const fds = new Int32Array(2);
  assert.equal(libc().pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  return [fds[0], fds[1]];
}

function put(fd: number, bytes: number[]): void {
  assert.equal(libc().write(fd, new Uint8Array(bytes), BigInt(bytes.length)), BigInt(bytes.length));
}

/** Reads until EAGAIN or EOF (level-triggered handlers must drain); returns the bytes read. */
function drain(fd: number): number[] {
  const buf = new Uint8Array(64);
  const out: number[] = [];
  for (;;) {
    const n = Number(libc().read(fd, buf, 64n));
    if (n > 0) {
      out.push(...buf.subarray(0, n));
      continue;
    }
    if (n < 0) assert.equal(errno(), EAGAIN);
    return out;
  }
}

/** True while `fd` is an open descriptor of this process. */
function isOpen(fd: number): boolean {
  return libc().fcntl(fd, F_GETFD, 0) >= 0;
}

/** Stops `loop` after {@link GUARD_MS}; `fired()` tells whether it had to. */
function guard(loop: EventLoop): { fired(): boolean } {
  let fired = false;
  loop.after(GUARD_MS, () => {
    fired = true;
    loop.stop();
  });
  return { fired: () => fired };
}

function test(name: string, fn: () => void | Promise<void>): void {
  Deno.test({ name, ignore, fn });
}

test("EventLoop calls the handler of a readable fd, also for data written by a timer", () => {
  const [r, w] = pipe();
  const loop = new EventLoop();
  try {
    const g = guard(loop);
    const got: number[] = [];
    loop.add(r, () => {
      got.push(...drain(r));
      if (got.length === 4) loop.stop();
    });
    put(w, [1, 2]);
    loop.after(1, () => put(w, [3, 4]));
    loop.run();
    assert.equal(g.fired(), false, "the data was never seen");
    assert.deepEqual(got, [1, 2, 3, 4]);
    assert.deepEqual([...loop.watched()], [r]);
  } finally {
    loop.close();
    closeQuietly(r);
    closeQuietly(w);
  }
});

test("EventLoop runs timers in deadline order, ties in scheduling order, after(0) first", () => {
  const loop = new EventLoop();
  try {
    const g = guard(loop);
    const order: string[] = [];
    loop.after(30, () => {
      order.push("30");
      loop.stop();
    });
    loop.after(10, () => order.push("10a"));
    loop.after(0, () => order.push("0"));
    loop.after(10, () => order.push("10b"));
    loop.after(-5, () => order.push("-5 (as 0)"));
    assert.deepEqual(order, [], "after() never runs a callback itself");
    loop.run();
    assert.equal(g.fired(), false);
    assert.deepEqual(order, ["0", "-5 (as 0)", "10a", "10b", "30"]);
  } finally {
    loop.close();
  }
});

test("EventLoop.cancel() drops a timer, also one due in the same round", () => {
  const loop = new EventLoop();
  try {
    const g = guard(loop);
    const ran: string[] = [];
    const later = loop.after(5, () => ran.push("cancelled early"));
    loop.cancel(later);
    let sameRound = 0;
    loop.after(0, () => {
      ran.push("a");
      loop.cancel(sameRound);
    });
    sameRound = loop.after(0, () => ran.push("cancelled in the same round"));
    loop.after(20, () => {
      ran.push("end");
      loop.stop();
    });
    loop.cancel(12345); // unknown handles are ignored
    loop.run();
    assert.equal(g.fired(), false);
    assert.deepEqual(ran, ["a", "end"]);
  } finally {
    loop.close();
  }
});

test("EventLoop runs timers scheduled from callbacks and handlers; after(0) comes before a wait", () => {
  const [r, w] = pipe();
  const loop = new EventLoop();
  try {
    const g = guard(loop);
    const order: string[] = [];
    let chain = 0;
    const step = () => {
      order.push(`chain ${chain}`);
      if (++chain < 3) loop.after(0, step);
      else loop.after(2, () => put(w, [9]));
    };
    loop.after(0, step);
    loop.add(r, () => {
      drain(r);
      order.push("fd");
      // Nothing else is pending but the guard: a wait before this callback
      // would last until the guard fires.
      loop.after(0, () => {
        order.push("after(0) from a handler");
        loop.stop();
      });
    });
    loop.run();
    assert.equal(g.fired(), false);
    assert.deepEqual(order, ["chain 0", "chain 1", "chain 2", "fd", "after(0) from a handler"]);
  } finally {
    loop.close();
    closeQuietly(r);
    closeQuietly(w);
  }
});

test("EventLoop skips an fd that an earlier handler of the same round removed", () => {
  const [r1, w1] = pipe();
  const [r2, w2] = pipe();
  const loop = new EventLoop();
  try {
    const g = guard(loop);
    const calls: number[] = [];
    // Both are readable before the first wait, so one epoll_wait reports both;
    // whichever handler runs first removes the other fd.
    const handler = (mine: number, other: number) => () => {
      calls.push(mine);
      drain(mine);
      loop.remove(other);
      loop.after(0, () => loop.stop());
    };
    loop.add(r1, handler(r1, r2));
    loop.add(r2, handler(r2, r1));
    put(w1, [1]);
    put(w2, [2]);
    loop.run();
    assert.equal(g.fired(), false);
    assert.equal(calls.length, 1, `handlers called: ${calls}`);
    assert.equal([...loop.watched()].length, 1);
    loop.remove(r1);
    loop.remove(r1); // unknown fds are ignored
  } finally {
    loop.close();
    for (const fd of [r1, w1, r2, w2]) closeQuietly(fd);
  }
});

test("EventLoop reports a hung-up fd on every round until it is removed", () => {
  const [r, w] = pipe();
  const [r2, w2] = pipe();
  const loop = new EventLoop();
  try {
    const g = guard(loop);
    let hupCalls = 0, eof = false;
    loop.add(r, () => {
      hupCalls++;
      eof = libc().read(r, new Uint8Array(8), 8n) === 0n;
      if (hupCalls === 3) {
        loop.remove(r);
        // A later round in which the hung-up fd would be reported again if
        // it were still watched; its handler ends the run after that round.
        put(w2, [1]);
      }
    });
    loop.add(r2, () => {
      drain(r2);
      loop.after(0, () => loop.stop());
    });
    closeQuietly(w);
    loop.run();
    assert.equal(g.fired(), false);
    assert.equal(eof, true, "the read end sees end-of-file");
    assert.equal(hupCalls, 3);
  } finally {
    loop.close();
    for (const fd of [r, r2, w2]) closeQuietly(fd);
  }
});

test("EventLoop: onError gets what handlers and timers throw and the loop goes on; without it run() throws", () => {
  const [r, w] = pipe();
  const errors: string[] = [];
  const lenient: EventLoop = new EventLoop({
    onError: (e) => {
      errors.push((e as Error).message);
      // The loop goes on after an error: this timer still runs.
      if (errors.length === 2) lenient.after(0, () => lenient.stop());
    },
  });
  const strict = new EventLoop();
  try {
    const g = guard(lenient);
    lenient.add(r, () => {
      drain(r);
      throw new Error("from a handler");
    });
    lenient.after(0, () => {
      throw new Error("from a timer");
    });
    lenient.after(1, () => put(w, [1]));
    lenient.run();
    assert.equal(g.fired(), false);
    assert.deepEqual(errors, ["from a timer", "from a handler"]);

    strict.after(0, () => {
      throw new Error("boom");
    });
    assert.throws(() => strict.run(), /boom/);
    // The loop is usable again: run() was left cleanly.
    strict.after(0, () => strict.stop());
    strict.run();
  } finally {
    lenient.close();
    strict.close();
    closeQuietly(r);
    closeQuietly(w);
  }
});

test("EventLoop.stop() from a handler ends run() after that handler; run() may start again", () => {
  const [r, w] = pipe();
  const loop = new EventLoop();
  try {
    const g = guard(loop);
    const seen: string[] = [];
    loop.add(r, () => {
      seen.push(`fd ${drain(r)}`);
      loop.stop();
    });
    loop.after(0, () => put(w, [1]));
    loop.run();
    assert.equal(g.fired(), false);
    assert.deepEqual(seen, ["fd 1"]);
    // Its fds stay across runs.
    put(w, [2]);
    loop.run();
    assert.equal(g.fired(), false);
    assert.deepEqual(seen, ["fd 1", "fd 2"]);
    // A handler cannot nest a run; the error ends the outer one (no onError).
    loop.add(r, () => loop.run());
    put(w, [3]);
    assert.throws(() => loop.run(), /already running/);
  } finally {
    loop.close();
    closeQuietly(r);
    closeQuietly(w);
  }
});

test("EventLoop.stop() before run() makes that run() return at once; the next one runs", () => {
  const [r, w] = pipe();
  const loop = new EventLoop();
  try {
    const g = guard(loop);
    const seen: number[][] = [];
    loop.add(r, () => {
      seen.push(drain(r));
      loop.stop();
    });
    put(w, [1]);
    loop.stop();
    loop.run();
    assert.deepEqual(seen, [], "no handler ran");
    loop.run();
    assert.equal(g.fired(), false);
    assert.deepEqual(seen, [[1]]);
  } finally {
    loop.close();
    closeQuietly(r);
    closeQuietly(w);
  }
});

test("EventLoop wakes for a write to its wakeFd from another thread and calls onWake", async () => {
  const worker = new Worker(new URL("./_util/wake_worker.ts", import.meta.url), {
    type: "module",
  });
  const messages: unknown[] = [];
  let next: (() => void) | null = null;
  worker.onmessage = (e) => {
    messages.push(e.data);
    next?.();
  };
  const message = () => new Promise<void>((resolve) => (next = resolve));
  const loop = new EventLoop();
  try {
    await message(); // "ready"
    const g = guard(loop);
    let wakes = 0;
    loop.onWake = () => {
      wakes++;
      loop.stop();
    };
    const written = message();
    // Posted now, handled on the Worker's thread while this one is blocked in epoll_wait.
    worker.postMessage({ fd: loop.wakeFd });
    loop.run();
    assert.equal(g.fired(), false, "onWake never ran");
    assert.equal(wakes, 1);
    await written;
    assert.deepEqual(messages, ["ready", { written: 8 }]);
    // The loop drained the eventfd's counter.
    assert.equal(libc().read(loop.wakeFd, new BigUint64Array(1), 8n), -1n);
    assert.equal(errno(), EAGAIN);
  } finally {
    loop.close();
    worker.terminate();
  }
});

test("EventLoop: an idle loop with one timer wakes once for it, not periodically", () => {
  const loop = new EventLoop();
  try {
    const g = guard(loop);
    loop.after(300, () => loop.stop());
    loop.run();
    assert.equal(g.fired(), false);
    // One wait that ends at the deadline; a signal (EINTR) could add one.
    assert.ok(loop.wakeups <= 2, `${loop.wakeups} wake-ups`);
  } finally {
    loop.close();
  }
});

test("EventLoop.close() is idempotent and closes its own eventfd, never an adopted one", () => {
  const own = new EventLoop();
  const ownWake = own.wakeFd;
  assert.equal(isOpen(ownWake), true);
  own.close();
  assert.equal(isOpen(ownWake), false, "its own eventfd is closed");
  own.close();
  assert.equal(own.wakeFd, -1);
  assert.throws(() => own.add(0, () => {}), /closed/);
  assert.throws(() => own.run(), /closed/);
  own.remove(0); // ignored

  const efd = libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  assert.ok(efd >= 0);
  const adopted = new EventLoop({ wakeFd: efd });
  try {
    assert.equal(adopted.wakeFd, efd);
    adopted.close();
    adopted.close();
    assert.equal(isOpen(efd), true, "the adopted eventfd belongs to its maker");
  } finally {
    closeQuietly(efd);
  }
});
