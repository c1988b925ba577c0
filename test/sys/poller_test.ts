// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Poller over pipes made with FFI pipe2(); needs only --allow-ffi, not root.
 */
import assert from "node:assert/strict";
import { Poller } from "../../src/sys/poller.ts";
import { closeQuietly, EAGAIN, errno, libc, O_CLOEXEC, O_NONBLOCK } from "../../src/sys/libc.ts";

/** A non-blocking pipe: [read end, write end]. */
function pipe(): [number, number] {
  const fds = new Int32Array(2);
  assert.equal(libc().pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  return [fds[0], fds[1]];
}

function put(fd: number, bytes: number[]): void {
  assert.equal(libc().write(fd, new Uint8Array(bytes), BigInt(bytes.length)), BigInt(bytes.length));
}

/** Reads until EAGAIN (level-triggered handlers must drain); returns the bytes read. */
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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves with the value of `p`, or rejects after `ms` (so a broken stop() cannot hang). */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`not settled within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

Deno.test("Poller.run() calls the handler of a readable fd while timers keep running", async () => {
  const [r, w] = pipe();
  const poller = new Poller();
  try {
    const got: number[] = [];
    poller.add(r, () => got.push(...drain(r)));
    const running = poller.run();
    let ticks = 0;
    const iv = setInterval(() => ticks++, 10);
    await sleep(100);
    assert.ok(ticks >= 3, `timers ran ${ticks} times during epoll_wait`);
    put(w, [1, 2, 3]);
    await sleep(50);
    put(w, [4]);
    await sleep(50);
    clearInterval(iv);
    assert.deepEqual(got, [1, 2, 3, 4]);
    poller.stop();
    await within(running, 1000);
  } finally {
    poller.close();
    closeQuietly(r);
    closeQuietly(w);
  }
});

Deno.test("Poller.stop() makes run() return well before the epoll timeout", async () => {
  const poller = new Poller({ timeoutMs: 1000 });
  try {
    const running = poller.run();
    await sleep(50);
    const t0 = performance.now();
    poller.stop();
    await within(running, 900);
    assert.ok(performance.now() - t0 < 500, `stopped in ${performance.now() - t0} ms`);
    assert.equal(poller.running, false);
    // A stopped poller stays stopped: run() returns at once.
    await within(poller.run(), 200);
  } finally {
    poller.close();
  }
});

Deno.test("Poller.remove() stops calls; add() again replaces the handler", async () => {
  const [r, w] = pipe();
  const poller = new Poller({ timeoutMs: 50 });
  try {
    let first = 0, second = 0;
    poller.add(r, () => {
      first++;
      drain(r);
    });
    const running = poller.run();
    put(w, [1]);
    await sleep(50);
    assert.equal(first, 1);
    poller.remove(r);
    poller.remove(r); // unknown fds are ignored
    put(w, [2]);
    await sleep(100);
    assert.equal(first, 1, "no calls after remove()");
    poller.add(r, () => {
      second++;
      drain(r);
    });
    await sleep(50);
    assert.equal(second, 1, "the data written while removed is reported after add()");
    poller.add(r, () => {
      second += 10;
      drain(r);
    });
    put(w, [3]);
    await sleep(50);
    assert.equal(second, 11);
    poller.stop();
    await within(running, 1000);
  } finally {
    poller.close();
    closeQuietly(r);
    closeQuietly(w);
  }
});

Deno.test("Poller.run() rejects when a handler throws, unless onError is given", async () => {
  const [r, w] = pipe();
  const errors: unknown[] = [];
  const strict = new Poller({ timeoutMs: 50 });
  const lenient = new Poller({ timeoutMs: 50, onError: (e) => errors.push(e) });
  try {
    strict.add(r, () => {
      drain(r);
      throw new Error("boom");
    });
    put(w, [1]);
    await assert.rejects(within(strict.run(), 1000), /boom/);
    strict.close();

    let calls = 0;
    lenient.add(r, () => {
      drain(r);
      if (++calls === 1) throw new Error("once");
    });
    const running = lenient.run();
    put(w, [2]);
    await sleep(50);
    put(w, [3]);
    await sleep(50);
    lenient.stop();
    await within(running, 1000);
    assert.equal(calls, 2);
    assert.equal(errors.length, 1);
  } finally {
    strict.close();
    lenient.close();
    closeQuietly(r);
    closeQuietly(w);
  }
});

Deno.test("Poller reports a hung-up fd (level-triggered) until it is removed", async () => {
  const [r, w] = pipe();
  const poller = new Poller({ timeoutMs: 50 });
  try {
    let calls = 0;
    poller.add(r, () => {
      calls++;
      drain(r);
      if (calls === 3) poller.remove(r);
    });
    const running = poller.run();
    closeQuietly(w); // EPOLLHUP on the read end, reported on every round
    await sleep(100);
    assert.equal(calls, 3);
    poller.stop();
    await within(running, 1000);
  } finally {
    poller.close();
    closeQuietly(r);
  }
});

Deno.test("Poller.close() while running closes after run() returns", async () => {
  const poller = new Poller({ timeoutMs: 1000 });
  const running = poller.run();
  await sleep(20);
  poller.close();
  await within(running, 900);
  assert.throws(() => poller.add(0, () => {}), /closed/);
});

Deno.test("Poller holdMs: after activity it waits on the main thread, yet timers run, data flows and stop() is prompt", async () => {
  const [r, w] = pipe();
  const poller = new Poller({ holdMs: 10_000 });
  try {
    const got: number[] = [];
    poller.add(r, () => got.push(...drain(r)));
    const running = poller.run();
    put(w, [0]); // activity: from here on the poller holds for 10 s
    await sleep(20);
    let ticks = 0;
    const iv = setInterval(() => {
      ticks++;
      if (ticks % 2 === 0) put(w, [ticks & 0xff]);
    }, 5);
    await sleep(200);
    clearInterval(iv);
    await sleep(20);
    // Timers every 5 ms for 200 ms: Deno's loop got a turn at least every few ms.
    assert.ok(ticks >= 15, `timers ran ${ticks} times while the poller held`);
    assert.equal(got.length, 1 + Math.floor(ticks / 2), "every write was read");
    const t0 = performance.now();
    poller.stop();
    await within(running, 500);
    assert.ok(performance.now() - t0 < 100, `stopped in ${performance.now() - t0} ms`);
  } finally {
    poller.close();
    closeQuietly(r);
    closeQuietly(w);
  }
});
