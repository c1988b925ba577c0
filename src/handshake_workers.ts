// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Handshake initiations answered on other cores (the kernel's handshake
 * workqueue, wireguard-go's RoutineHandshake goroutines). Answering an
 * initiation costs four X25519 operations (es, the responder's ephemeral
 * key, ee, se), and none of them needs peer state: {@link prepareInitiation}
 * does them all from the message and the device's static keys. The device's
 * thread keeps everything else: the cheap checks before (mac1, and under load
 * mac2 and the rate limiter), and after the DH work the peer lookup, the
 * timestamp's replay and flood checks, the response and the session
 * ({@link finishInitiation}, createResponse).
 *
 * {@link HandshakeWorkers} shares a SharedArrayBuffer of job slots with its
 * Workers. Each slot holds one initiation, a copy of the static keys (wiped
 * by the Worker as soon as it has read them) and the result; its state word
 * goes FREE → QUEUED (device thread) → TAKEN → DONE (a Worker) → FREE
 * (device thread). Workers sleep in Atomics.wait on a sequence number the
 * device bumps, and wake the device's event loop through an eventfd once a
 * job is done. The device thread never waits for a Worker: when no slot is
 * free or no Worker is running yet, {@link HandshakeOffload.submit} returns
 * false and the initiation is answered inline, so both cores work under a
 * flood and nothing queues without bound.
 *
 * The Workers start at the first sign of handshake load
 * ({@link HandshakeOffload.warm}), not before: an idle or ordinary tunnel
 * never pays a Worker's memory.
 */
import type { Endpoint } from "./conn/endpoint.ts";
import { systemRng } from "./clock.ts";
import { useBestCryptoBackend } from "./crypto/select.ts";
import { MESSAGE_INITIATION_SIZE } from "./constants.ts";
import { INITIATION_WORK_SIZE, prepareInitiation, type ResponderKeys } from "./noise/handshake.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, errno, libc, strerror, usize } from "./sys/libc.ts";

/** What the receive path needs to hand initiations to other threads. */
export interface HandshakeOffload {
  /** Initiations handed over and not yet collected by {@link drain}. */
  readonly inFlight: number;
  /** True when finished jobs wait for {@link drain}. */
  readonly hasResults: boolean;
  /** Asks for the helper threads to start (idempotent; they come up asynchronously). */
  warm(): void;
  /**
   * Hands over an initiation whose mac1 (and, under load, mac2 and rate
   * limit) passed. False when it cannot take it now (no Worker yet, or each
   * already has its share queued): the caller answers it inline, so the
   * calling thread works too. `msg` is copied.
   */
  submit(msg: Uint8Array, from: Endpoint, keys: ResponderKeys): boolean;
  /**
   * Collects finished jobs: `done(msg, from, work)` for each, with `work`
   * null when the message did not authenticate. The views are valid only
   * during the call.
   */
  drain(done: (msg: Uint8Array, from: Endpoint, work: Uint8Array | null) => void): void;
  /** Drops every job in flight (the device went down): their results are discarded. */
  cancel(): void;
  close(): void;
}

// Control words (Int32 indexes).
const SEQ = 0, STOP = 1, READY = 2, WRITING = 3, DONE = 4;
const CTL_WORDS = 16;
// Slot states.
const FREE = 0, QUEUED = 1, TAKEN = 2, DONE_OK = 3, DONE_FAIL = 4;
// Slot layout (bytes).
const AT_MSG = 0;
const AT_PRIV = 160;
const AT_PUB = 192;
const AT_WORK = 224;
const SLOT_SIZE = AT_WORK + INITIATION_WORK_SIZE + 32; // 448: whole cache lines
/**
 * Jobs in flight per Worker: one it works on and two queued, so it never
 * waits for the device thread between jobs, while the device thread answers
 * the rest of a burst itself.
 */
const DEFAULT_PER_WORKER = 3;

/** The message that starts a handshake Worker. */
export interface HandshakeWorkerInit {
  kind: "gotatun-handshake-worker";
  shared: SharedArrayBuffer;
  slots: number;
  wakeFd: number;
  cryptoEnv?: string;
}

/** True for a {@link HandshakeWorkerInit} message. */
export function isHandshakeWorkerInit(m: unknown): m is HandshakeWorkerInit {
  return typeof m === "object" && m !== null &&
    (m as { kind?: unknown }).kind === "gotatun-handshake-worker";
}

function layout(shared: SharedArrayBuffer, slots: number) {
  return {
    ctl: new Int32Array(shared, 0, CTL_WORDS),
    states: new Int32Array(shared, CTL_WORDS * 4, slots),
    bytes: new Uint8Array(shared, CTL_WORDS * 4 + slots * 4),
  };
}

function sharedSize(slots: number): number {
  return CTL_WORDS * 4 + slots * 4 + slots * SLOT_SIZE;
}

/**
 * The Worker side: serves jobs until the device stops the pool. Call it
 * from the Worker's module with the first message it receives.
 */
export function runHandshakeWorker(init: HandshakeWorkerInit): void {
  useBestCryptoBackend(init.cryptoEnv);
  const { ctl, states, bytes } = layout(init.shared, init.slots);
  const keys = { privateKey: new Uint8Array(32), publicKey: new Uint8Array(32) };
  const one = new BigUint64Array([1n]);
  const eight = usize(8);
  const c = libc();
  Atomics.add(ctl, READY, 1);
  for (;;) {
    const seen = Atomics.load(ctl, SEQ);
    if (Atomics.load(ctl, STOP) !== 0) break;
    let worked = false;
    for (let i = 0; i < init.slots; i++) {
      if (Atomics.compareExchange(states, i, QUEUED, TAKEN) !== QUEUED) continue;
      worked = true;
      const at = i * SLOT_SIZE;
      keys.privateKey.set(bytes.subarray(at + AT_PRIV, at + AT_PRIV + 32));
      keys.publicKey.set(bytes.subarray(at + AT_PUB, at + AT_PUB + 32));
      bytes.fill(0, at + AT_PRIV, at + AT_PRIV + 32);
      let ok = false;
      try {
        ok = prepareInitiation(
          bytes.subarray(at + AT_MSG, at + AT_MSG + MESSAGE_INITIATION_SIZE),
          keys,
          systemRng,
          bytes.subarray(at + AT_WORK, at + AT_WORK + INITIATION_WORK_SIZE),
        );
      } catch {
        ok = false; // a crypto failure rejects the message, as inline
      }
      Atomics.store(states, i, ok ? DONE_OK : DONE_FAIL);
      Atomics.add(ctl, DONE, 1);
      // The device closes the eventfd only once STOP is set and no Worker is
      // between these two atomics, so the write never reaches a reused fd.
      Atomics.add(ctl, WRITING, 1);
      if (Atomics.load(ctl, STOP) === 0) c.write(init.wakeFd, one, eight);
      Atomics.sub(ctl, WRITING, 1);
    }
    keys.privateKey.fill(0);
    if (!worked) Atomics.wait(ctl, SEQ, seen);
  }
  Atomics.sub(ctl, READY, 1);
}

/** Options of {@link HandshakeWorkers}. */
export interface HandshakeWorkersOptions {
  /** Number of Workers (at least 1). */
  workers: number;
  /** Module the Workers run; it must call runHandshakeWorker() for a HandshakeWorkerInit. */
  entry: string | URL;
  /** GOTATUN_CRYPTO for the Workers' backend selection. */
  cryptoEnv?: string;
  /** Jobs in flight per Worker at most (default 3). */
  perWorker?: number;
  /** Logs why the Workers could not start. */
  onError?: (err: unknown) => void;
}

/** The device-thread side of the Worker pool; see the module doc. */
export class HandshakeWorkers implements HandshakeOffload {
  /** The eventfd the Workers write when a job is done (watch it for readability). */
  readonly fd: number;
  #opts: HandshakeWorkersOptions;
  #slots: number;
  #ctl: Int32Array;
  #states: Int32Array;
  #bytes: Uint8Array;
  #shared: SharedArrayBuffer;
  #from: (Endpoint | null)[];
  #epochOf: Int32Array;
  #epoch = 0;
  #free: number[] = [];
  #inFlight = 0;
  #workers: Worker[] = [];
  #started = false;
  #closed = false;
  #drainBuf = new BigUint64Array(1);

  constructor(opts: HandshakeWorkersOptions) {
    if (!(opts.workers >= 1)) throw new RangeError("HandshakeWorkers needs at least one Worker");
    this.#opts = opts;
    const slots = this.#slots = opts.workers * (opts.perWorker ?? DEFAULT_PER_WORKER);
    this.#shared = new SharedArrayBuffer(sharedSize(slots));
    const l = layout(this.#shared, slots);
    this.#ctl = l.ctl;
    this.#states = l.states;
    this.#bytes = l.bytes;
    this.#from = new Array(slots).fill(null);
    this.#epochOf = new Int32Array(slots);
    for (let i = slots - 1; i >= 0; i--) this.#free.push(i);
    const fd = libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) throw new Error(`eventfd: ${strerror(errno())}`);
    this.fd = fd;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get hasResults(): boolean {
    return Atomics.load(this.#ctl, DONE) !== 0;
  }

  /** Workers that have started and serve jobs. */
  get readyWorkers(): number {
    return Atomics.load(this.#ctl, READY);
  }

  warm(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    try {
      for (let i = 0; i < this.#opts.workers; i++) {
        const w = new Worker(this.#opts.entry, { type: "module" });
        const init: HandshakeWorkerInit = {
          kind: "gotatun-handshake-worker",
          shared: this.#shared,
          slots: this.#slots,
          wakeFd: this.fd,
          cryptoEnv: this.#opts.cryptoEnv,
        };
        w.postMessage(init);
        this.#workers.push(w);
      }
    } catch (err) {
      this.#opts.onError?.(err);
    }
  }

  submit(msg: Uint8Array, from: Endpoint, keys: ResponderKeys): boolean {
    if (msg.length !== MESSAGE_INITIATION_SIZE || this.#closed) return false;
    if (Atomics.load(this.#ctl, READY) === 0) return false;
    const i = this.#free.pop();
    if (i === undefined) return false;
    const at = i * SLOT_SIZE, b = this.#bytes;
    b.set(msg, at + AT_MSG);
    b.set(keys.privateKey, at + AT_PRIV);
    b.set(keys.publicKey, at + AT_PUB);
    this.#from[i] = from.clone();
    this.#epochOf[i] = this.#epoch;
    this.#inFlight++;
    Atomics.store(this.#states, i, QUEUED);
    Atomics.add(this.#ctl, SEQ, 1);
    Atomics.notify(this.#ctl, SEQ, 1);
    return true;
  }

  drain(done: (msg: Uint8Array, from: Endpoint, work: Uint8Array | null) => void): void {
    libc().read(this.fd, this.#drainBuf, usize(8));
    const states = this.#states, b = this.#bytes;
    for (let i = 0; i < this.#slots; i++) {
      const state = Atomics.load(states, i);
      if (state !== DONE_OK && state !== DONE_FAIL) continue;
      const at = i * SLOT_SIZE;
      const from = this.#from[i]!;
      this.#from[i] = null;
      const work = b.subarray(at + AT_WORK, at + AT_WORK + INITIATION_WORK_SIZE);
      try {
        if (this.#epochOf[i] === this.#epoch) {
          done(
            b.subarray(at + AT_MSG, at + AT_MSG + MESSAGE_INITIATION_SIZE),
            from,
            state === DONE_OK ? work : null,
          );
        }
      } finally {
        work.fill(0);
        Atomics.sub(this.#ctl, DONE, 1);
        Atomics.store(states, i, FREE);
        this.#free.push(i);
        this.#inFlight--;
      }
    }
  }

  cancel(): void {
    this.#epoch = (this.#epoch + 1) | 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#ctl, STOP, 1);
    Atomics.add(this.#ctl, SEQ, 1);
    Atomics.notify(this.#ctl, SEQ);
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
    // A Worker that checked STOP before it was set may still be writing.
    while (Atomics.load(this.#ctl, WRITING) !== 0) Atomics.wait(this.#ctl, SEQ, -1, 1);
    this.#bytes.fill(0);
    libc().close(this.fd);
  }
}
