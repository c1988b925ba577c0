// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The control channel between two threads: a {@link ControlClient} on the
 * test's thread (it blocks in Atomics.wait) and a {@link ControlServer} in a
 * Worker whose {@link EventLoop} blocks in epoll_wait and answers when the
 * client writes to its eventfd (test/_util/control_worker.ts). Needs
 * --allow-ffi; nothing is timed.
 */
import assert from "node:assert/strict";
import { ControlClient, createControlBuffer } from "../src/control.ts";
import { closeQuietly, EFD_CLOEXEC, EFD_NONBLOCK, libc } from "../src/sys/libc.ts";
import {
  bigByte,
  OP_BIG,
  OP_ECHO,
  OP_STOP,
  OP_THROW,
  OP_THROW_STRING,
} from "./_util/control_worker.ts";

const ffi = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
const ignore = Deno.build.os !== "linux" || !ffi;

/** A Worker answering on a channel of `capacity` bytes, and the client that asks it. */
interface Served {
  client: ControlClient;
  buffer: SharedArrayBuffer;
  wakeFd: number;
  /** Stops the Worker's loop (through the channel) and ends the Worker. */
  stop(): Promise<void>;
}

async function serve(capacity: number): Promise<Served> {
  const buffer = createControlBuffer(capacity);
  const worker = new Worker(new URL("./_util/control_worker.ts", import.meta.url), {
    type: "module",
  });
  const messages: unknown[] = [];
  const waiting: (() => void)[] = [];
  worker.onmessage = (e) => {
    messages.push(e.data);
    waiting.shift()?.();
  };
  const next = () => new Promise<void>((resolve) => waiting.push(resolve));
  const started = next();
  worker.postMessage({ buffer });
  await started;
  const { wakeFd } = messages[0] as { wakeFd: number };
  // Generous: only a Worker that never answers reaches it.
  const client = new ControlClient(buffer, wakeFd, 30_000);
  return {
    client,
    buffer,
    wakeFd,
    async stop() {
      const stopped = next();
      assert.equal(client.call(OP_STOP).status, 0);
      await stopped;
      assert.equal(messages[1], "stopped");
      worker.terminate();
    },
  };
}

function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore, fn });
}

const enc = new TextEncoder(), dec = new TextDecoder();

test("ControlClient.call() round trips: op, arg, status and payload come back", async () => {
  const { client, stop } = await serve(4096);
  try {
    assert.equal(client.capacity, 4096);
    for (let i = 0; i < 200; i++) {
      const payload = new Uint8Array(i * 20).map((_, j) => (i + j) & 0xff);
      const r = client.call(OP_ECHO, i, payload);
      assert.equal(r.status, 7);
      assert.equal(r.arg, i + 1);
      assert.deepEqual(r.data, payload);
    }
    const full = new Uint8Array(4096).fill(0xab);
    assert.deepEqual(client.call(OP_ECHO, -5, full).data, full);
    const none = client.call(OP_ECHO);
    assert.equal(none.arg, 1);
    assert.equal(none.data.length, 0);
  } finally {
    await stop();
  }
});

test("ControlClient.call() reassembles an answer larger than the buffer exactly", async () => {
  const cap = 1000;
  const { client, stop } = await serve(cap);
  try {
    for (const size of [0, cap - 1, cap, cap + 1, 2 * cap, 2.5 * cap, 10 * cap + 3]) {
      const r = client.call(OP_BIG, size);
      assert.equal(r.status, 3, `status for ${size}`);
      assert.equal(r.arg, 42, `arg for ${size}`);
      assert.equal(r.data.length, size);
      const wrong = r.data.findIndex((b, i) => b !== bigByte(i));
      assert.equal(wrong, -1, `answer of ${size} bytes differs at byte ${wrong}`);
      // Nothing of a long answer is left behind for the next call.
      const echo = client.call(OP_ECHO, size, enc.encode("after"));
      assert.equal(dec.decode(echo.data), "after");
      assert.equal(echo.arg, size + 1);
    }
  } finally {
    await stop();
  }
});

test("ControlServer answers status −1 with the message when a handler throws", async () => {
  const { client, stop } = await serve(256);
  try {
    const r = client.call(OP_THROW, 9, enc.encode("no such peer"));
    assert.equal(r.status, -1);
    assert.equal(dec.decode(r.data), "no such peer");
    const s = client.call(OP_THROW_STRING);
    assert.equal(s.status, -1);
    assert.equal(dec.decode(s.data), "a string");
    const unknown = client.call(99);
    assert.equal(unknown.status, -1);
    assert.equal(dec.decode(unknown.data), "unknown op 99");
    // The channel still works.
    assert.equal(client.call(OP_ECHO, 1).status, 7);
  } finally {
    await stop();
  }
});

test("ControlClient.call() refuses a request larger than the buffer with a RangeError", async () => {
  const { client, stop } = await serve(128);
  try {
    assert.throws(() => client.call(OP_ECHO, 0, new Uint8Array(129)), RangeError);
    assert.throws(
      () => client.call(OP_ECHO, 0, new Uint8Array(10_000)),
      /control request of 10000 bytes exceeds 128/,
    );
    // Nothing was sent: the next call is answered normally.
    const r = client.call(OP_ECHO, 4, new Uint8Array(128).fill(1));
    assert.equal(r.arg, 5);
    assert.equal(r.data.length, 128);
  } finally {
    await stop();
  }
});

test("ControlClient.call() throws after its timeout when nobody answers", () => {
  // An eventfd nobody waits on: the request is posted, no answer ever comes.
  const efd = libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  assert.ok(efd >= 0);
  try {
    const client = new ControlClient(createControlBuffer(64), efd, 50);
    assert.throws(() => client.call(OP_ECHO), /did not answer within 50 ms/);
    // The wake-up was written all the same.
    const count = new BigUint64Array(1);
    assert.equal(libc().read(efd, count, 8n), 8n);
    assert.equal(count[0], 1n);
  } finally {
    closeQuietly(efd);
  }
  return Promise.resolve();
});

test("after the server closed the channel, a call fails at once instead of timing out", async () => {
  const s = await serve(64);
  await s.stop();
  // A 10-minute timeout: only the CLOSED flag can end this call.
  assert.throws(
    () => new ControlClient(s.buffer, s.wakeFd, 600_000).call(OP_ECHO),
    /the data plane has stopped/,
  );
});
