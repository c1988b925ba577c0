// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Driving an {@link EventLoop} from the edge tests' helper scripts, which
 * otherwise await things (subprocesses, Deno sockets): {@link runUntil} runs
 * it on this thread until a condition holds, {@link runSlices} runs it in
 * short slices with a turn of Deno's event loop between them, for when
 * Deno's own I/O must make progress meanwhile.
 */
import { setImmediate } from "node:timers";
import type { EventLoop } from "../../src/event_loop.ts";

/** How often {@link runUntil} looks at its condition, in ms. */
const CHECK_MS = 5;

/**
 * Runs `loop` on this thread until `done()` is true (looked at every few ms
 * and before the first wait), until a handler stops the loop, or for at most
 * `ms`. Returns `done()`.
 */
export function runUntil(loop: EventLoop, done: () => boolean, ms: number): boolean {
  const deadline = performance.now() + ms;
  let check = 0;
  const look = () => {
    if (done() || performance.now() >= deadline) loop.stop();
    else check = loop.after(Math.min(CHECK_MS, deadline - performance.now()), look);
  };
  check = loop.after(0, look);
  loop.run();
  loop.cancel(check);
  return done();
}

/**
 * Like {@link runUntil}, but runs `loop` for at most `sliceMs` at a time and
 * lets Deno's event loop (timers, sockets, subprocesses) run in between.
 */
export async function runSlices(
  loop: EventLoop,
  done: () => boolean,
  ms: number,
  sliceMs = 2,
): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!done() && performance.now() < deadline) {
    runUntil(loop, done, Math.min(sliceMs, deadline - performance.now()));
    await new Promise((resolve) => setImmediate(resolve));
  }
  return done();
}
