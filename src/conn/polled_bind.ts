// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link PolledLinuxBind}: the FFI {@link LinuxBind} (recvmmsg/sendmmsg in
 * batches, UDP GSO and GRO) for a device that lives on Deno's own event loop,
 * such as a `Tunnel`'s, where no EventLoop thread may block in `epoll_wait`.
 * A `poll(2)` declared `nonblocking: true` waits on a Tokio pool thread for
 * the sockets or a wake-up eventfd; when it returns, the bind drains every
 * datagram waiting (synchronously, on the calling thread) and calls
 * `afterDrain` (the Tunnel passes `Device.flush`), then polls again. One
 * thread hop per wake-up, not per datagram: under load a wake-up carries
 * tens of datagrams. Sends are batched by LinuxBind and go out at the
 * device's flush.
 *
 * {@link preferredBind} picks it on Linux when FFI is permitted and libc
 * loads, and {@link DenoUdpBind} otherwise.
 */
import type { Bind, ReceiveFn, SendErrorFn } from "./bind.ts";
import { DenoUdpBind } from "./deno_udp.ts";
import { LinuxBind } from "./udp.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, libc, POLLIN, usize } from "../sys/libc.ts";

/** `poll(2)` on a pool thread; the one FFI wait that leaves Deno's event loop running. */
const POLL_SYMBOLS = {
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

let pollLib: Deno.DynamicLibrary<typeof POLL_SYMBOLS> | null = null;

/** Datagrams one wake-up drains at most before the device gets a flush turn. */
const DRAIN_MAX = 1024;

/** LinuxBind driven from Deno's event loop; see the module doc. */
export class PolledLinuxBind implements Bind {
  readonly inner: LinuxBind;
  /** Called after each drain (e.g. the device's flush); set before open. */
  afterDrain: (() => void) | null = null;
  #wakeFd = -1;
  #gen = 0;
  #loops = new Set<Promise<void>>();
  /** Wake-ups (polls that returned) and datagrams drained, for tuning. */
  wakeups = 0;
  drained = 0;
  /** The last exception a drain or `afterDrain` threw (none expected), or undefined. */
  lastError: unknown = undefined;

  constructor(inner = new LinuxBind()) {
    this.inner = inner;
  }

  get port(): number {
    return this.inner.port;
  }

  open(port: number, receive: ReceiveFn, onSendError?: SendErrorFn): number {
    this.close();
    const bound = this.inner.open(port, receive, onSendError);
    const c = libc();
    const wake = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake < 0) {
      this.inner.close();
      throw new Error("eventfd failed");
    }
    this.#wakeFd = wake;
    const loop = this.#loop(++this.#gen, this.inner.fds(), wake);
    this.#loops.add(loop);
    loop.finally(() => this.#loops.delete(loop));
    return bound;
  }

  /** Settles once every wait started by {@link open} has returned (after {@link close}). */
  async stopped(): Promise<void> {
    while (this.#loops.size > 0) await Promise.allSettled([...this.#loops]);
  }

  async #loop(gen: number, fds: number[], wake: number): Promise<void> {
    pollLib ??= Deno.dlopen("libc.so.6", POLL_SYMBOLS);
    const poll = pollLib.symbols.poll;
    // struct pollfd { int fd; short events; short revents; }: 8 bytes each, the eventfd last.
    const n = fds.length + 1;
    const pfd = new Int32Array(n * 2);
    [...fds, wake].forEach((fd, i) => {
      pfd[i * 2] = fd;
      pfd[i * 2 + 1] = POLLIN; // events (low half); revents (high half) cleared
    });
    const count = BigInt(n);
    try {
      for (;;) {
        for (let i = 0; i < n; i++) pfd[i * 2 + 1] = POLLIN;
        const r = await poll(pfd, count, -1);
        if (gen !== this.#gen) return;
        if (r < 0) continue; // EINTR
        this.wakeups++;
        try {
          this.drained += this.inner.drain(DRAIN_MAX);
          if (gen !== this.#gen) return;
          this.afterDrain?.();
        } catch (err) {
          // The device never throws here; if it did, receiving goes on and the error is kept.
          this.lastError = err;
        }
      }
    } finally {
      // Closed only here, after the pool thread has let go of it.
      libc().close(wake);
    }
  }

  close(): void {
    if (this.#wakeFd >= 0) {
      this.#gen++;
      const one = new BigUint64Array([1n]);
      libc().write(this.#wakeFd, new Uint8Array(one.buffer), usize(8));
      this.#wakeFd = -1;
    }
    this.inner.close();
  }

  setMark(mark: number): void {
    this.inner.setMark(mark);
  }

  send(data: Uint8Array, endpoint: Parameters<Bind["send"]>[1], owner?: object): boolean {
    return this.inner.send(data, endpoint, owner);
  }

  flush(): void {
    this.inner.flush();
  }
}

/**
 * The fastest UDP edge this process may use for a `Tunnel`: a
 * {@link PolledLinuxBind} on Linux with FFI permitted, else a
 * {@link DenoUdpBind} (needs `--unstable-net`).
 */
export function preferredBind(): Bind {
  if (Deno.build.os !== "linux") return new DenoUdpBind();
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return new DenoUdpBind();
    return new PolledLinuxBind();
  } catch {
    return new DenoUdpBind();
  }
}
