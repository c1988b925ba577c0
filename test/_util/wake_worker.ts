// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * A Worker for test/event_loop_test.ts: another thread that wakes an
 * {@link EventLoop} through its eventfd. Posts "ready" once it listens; on
 * `{ fd }` it adds 1 to that eventfd's counter and posts the write's result.
 */
import { libc } from "../../src/sys/libc.ts";

const self = globalThis as unknown as {
  onmessage: ((e: MessageEvent<{ fd: number }>) => void) | null;
  postMessage(m: unknown): void;
};

self.onmessage = (e) => {
  const n = libc().write(e.data.fd, new BigUint64Array([1n]), 8n);
  self.postMessage({ written: Number(n) });
};
self.postMessage("ready");
