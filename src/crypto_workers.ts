// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * A {@link CryptoPool} that uses more cores: each batch is cut into equal
 * ranges, Workers seal or open theirs in the shared arena while the calling
 * thread does its own, and the call returns when all ranges are done. Results
 * are then delivered by the device in queue order, so per-peer packet order is
 * kept. Hand-off is through Atomics on a SharedArrayBuffer (no postMessage per
 * batch, which would cost microseconds per packet).
 *
 * Each Worker loads its own crypto backend (its own OpenSSL contexts). The
 * Worker runs the module at `entry`, which must call {@link runCryptoWorker}
 * when it finds itself in a Worker (see {@link inWorker}); the daemon uses its
 * own main module, so a single-file bundle works too.
 */
import { type CryptoPool, JobBatch, runJobs } from "./crypto_pool.ts";
import { useBestCryptoBackend } from "./crypto/select.ts";

/** Int32 slots per Worker in the control array (64 bytes: no false sharing). */
const STRIDE = 16;
const SEQ = 0, FROM = 1, TO = 2, DONE = 3, READY = 4;
/** Batches smaller than this run on the calling thread alone. */
const MIN_JOBS_TO_SPLIT = 8;

/** True when this code runs inside a Web Worker. */
export function inWorker(): boolean {
  const g = globalThis as unknown as { WorkerGlobalScope?: { new (): unknown } };
  return typeof g.WorkerGlobalScope === "function" && globalThis instanceof g.WorkerGlobalScope;
}

interface InitMessage {
  kind: "gotatun-crypto-worker";
  ctl: SharedArrayBuffer;
  index: number;
  batch: SharedArrayBuffer;
  dataSize: number;
  cryptoEnv?: string;
}

/**
 * The Worker side: waits for the pool's first message, then serves ranges of
 * the shared batch until told to stop. Call it from the Worker's module.
 */
export function runCryptoWorker(): void {
  const scope = globalThis as unknown as {
    onmessage: ((e: MessageEvent<InitMessage>) => void) | null;
    close(): void;
  };
  scope.onmessage = (e) => {
    const m = e.data;
    if (!m || m.kind !== "gotatun-crypto-worker") return;
    scope.onmessage = null;
    useBestCryptoBackend(m.cryptoEnv);
    const batch = new JobBatch({ buffer: m.batch, dataSize: m.dataSize });
    const c = new Int32Array(m.ctl);
    const base = m.index * STRIDE;
    Atomics.store(c, base + READY, 1);
    let seen = Atomics.load(c, base + SEQ);
    for (;;) {
      Atomics.wait(c, base + SEQ, seen);
      const seq = Atomics.load(c, base + SEQ);
      if (seq === -1) break;
      if (seq === seen) continue;
      seen = seq;
      runJobs(batch, c[base + FROM], c[base + TO]);
      Atomics.store(c, base + DONE, seq);
      Atomics.notify(c, base + DONE);
    }
    scope.close();
  };
}

/** Options of {@link WorkerCryptoPool}. */
export interface WorkerCryptoPoolOptions {
  /** Number of Workers (the calling thread works too). */
  workers: number;
  /** Module the Workers run; it must call runCryptoWorker() in a Worker. */
  entry: string | URL;
  /** GOTATUN_CRYPTO for the Workers' backend selection. */
  cryptoEnv?: string;
}

/** WorkerCryptoPool splits each batch between the calling thread and Workers. */
export class WorkerCryptoPool implements CryptoPool {
  readonly shared = true;
  #opts: WorkerCryptoPoolOptions;
  #workers: Worker[] = [];
  #ctl: Int32Array;
  #seq = 0;
  #attached = false;

  constructor(opts: WorkerCryptoPoolOptions) {
    this.#opts = opts;
    this.#ctl = new Int32Array(new SharedArrayBuffer(Math.max(1, opts.workers) * STRIDE * 4));
  }

  /** Workers that have loaded and are serving. */
  get readyWorkers(): number {
    let n = 0;
    for (let i = 0; i < this.#workers.length; i++) {
      if (Atomics.load(this.#ctl, i * STRIDE + READY) === 1) n++;
    }
    return n;
  }

  attach(batch: JobBatch): void {
    if (this.#attached) throw new Error("WorkerCryptoPool serves one batch");
    if (!(batch.buffer instanceof SharedArrayBuffer)) {
      throw new TypeError("WorkerCryptoPool needs a shared batch");
    }
    this.#attached = true;
    for (let i = 0; i < this.#opts.workers; i++) {
      const w = new Worker(this.#opts.entry, { type: "module" });
      const init: InitMessage = {
        kind: "gotatun-crypto-worker",
        ctl: this.#ctl.buffer as SharedArrayBuffer,
        index: i,
        batch: batch.buffer,
        dataSize: batch.dataSize,
        cryptoEnv: this.#opts.cryptoEnv,
      };
      w.postMessage(init);
      this.#workers.push(w);
    }
  }

  run(batch: JobBatch): void {
    const n = batch.count;
    const c = this.#ctl;
    const ready: number[] = [];
    if (n >= MIN_JOBS_TO_SPLIT) {
      for (let i = 0; i < this.#workers.length; i++) {
        if (Atomics.load(c, i * STRIDE + READY) === 1) ready.push(i);
      }
    }
    if (ready.length === 0) {
      runJobs(batch, 0, n);
      return;
    }
    const parts = ready.length + 1;
    const chunk = Math.ceil(n / parts);
    const seq = ++this.#seq;
    for (let k = 0; k < ready.length; k++) {
      const base = ready[k] * STRIDE;
      c[base + FROM] = Math.min(n, chunk * (k + 1));
      c[base + TO] = Math.min(n, chunk * (k + 2));
      Atomics.store(c, base + SEQ, seq);
      Atomics.notify(c, base + SEQ);
    }
    runJobs(batch, 0, Math.min(n, chunk));
    for (const i of ready) {
      const base = i * STRIDE;
      for (;;) {
        const done = Atomics.load(c, base + DONE);
        if (done === seq) break;
        Atomics.wait(c, base + DONE, done, 50);
      }
    }
  }

  close(): void {
    for (let i = 0; i < this.#workers.length; i++) {
      Atomics.store(this.#ctl, i * STRIDE + SEQ, -1);
      Atomics.notify(this.#ctl, i * STRIDE + SEQ);
    }
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
  }
}
