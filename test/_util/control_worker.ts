// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * A Worker for test/control_test.ts: a {@link ControlServer} answered from an
 * {@link EventLoop} that blocks this thread, as the daemon's data plane does.
 * Started with `{ buffer }`, it posts `{ wakeFd }` and runs until op
 * {@link OP_STOP}; then it closes the channel and posts "stopped".
 *
 * Ops: {@link OP_ECHO} answers the payload with arg + 1 and status 7;
 * {@link OP_BIG} answers `arg` bytes of {@link bigByte} with status 3 and arg
 * 42; {@link OP_THROW} throws an Error whose message is the payload;
 * {@link OP_THROW_STRING} throws a string.
 */
import { ControlServer } from "../../src/control.ts";
import { EventLoop } from "../../src/event_loop.ts";

export const OP_ECHO = 1;
export const OP_BIG = 2;
export const OP_THROW = 3;
export const OP_THROW_STRING = 4;
export const OP_STOP = 5;

/** Byte `i` of an {@link OP_BIG} answer. */
export function bigByte(i: number): number {
  return (i * 31 + (i >> 8)) & 0xff;
}

const self = globalThis as unknown as {
  onmessage: ((e: MessageEvent<{ buffer: SharedArrayBuffer }>) => void) | null;
  postMessage(m: unknown): void;
};

/** Starts the server on the first message; the test imports this module only for its constants. */
function start(e: MessageEvent<{ buffer: SharedArrayBuffer }>): void {
  self.onmessage = null;
  const loop = new EventLoop();
  const dec = new TextDecoder();
  const server = new ControlServer(e.data.buffer, (op, arg, payload) => {
    switch (op) {
      case OP_ECHO:
        return { status: 7, arg: arg + 1, data: payload.slice() };
      case OP_BIG: {
        const data = new Uint8Array(arg);
        for (let i = 0; i < arg; i++) data[i] = bigByte(i);
        return { status: 3, arg: 42, data };
      }
      case OP_THROW:
        throw new Error(dec.decode(payload));
      case OP_THROW_STRING:
        throw "a string";
      case OP_STOP:
        loop.stop();
        return {};
    }
    throw new Error(`unknown op ${op}`);
  });
  loop.onWake = () => server.poll();
  self.postMessage({ wakeFd: loop.wakeFd });
  loop.run();
  loop.close();
  server.close();
  self.postMessage("stopped");
}

if ("WorkerGlobalScope" in globalThis) self.onmessage = start;
