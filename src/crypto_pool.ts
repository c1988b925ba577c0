// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The data path's crypto work, in batches. The device queues transport
 * messages to seal or open into a {@link JobBatch} (one arena, a
 * SharedArrayBuffer when Workers share it), then a {@link CryptoPool} runs the
 * whole batch, and the device commits the results in queue order, so packet
 * order per peer is kept however the work was split (as the kernel's and
 * wireguard-go's per-peer sequential senders and receivers keep it).
 *
 * A job's bytes are a whole transport message at `offset`: the 16-byte header,
 * then the plaintext (seal) or ciphertext and tag (open), processed in place.
 */
import { aeadOpen, aeadSeal } from "./crypto.ts";
import { ViewCache } from "./view_cache.ts";

/** Seal: encrypt the plaintext after the header in place, appending the tag. */
export const JOB_SEAL = 0;
/** Open: decrypt the ciphertext after the header in place; result 1 when it authenticates. */
export const JOB_OPEN = 1;
/** Most jobs in one batch. */
export const MAX_JOBS = 256;
/** Int32 fields per job in {@link JobBatch.meta}. */
export const JOB_FIELDS = 6;
/** Field indices in a job's meta record. */
export const F_OP = 0, F_OFFSET = 1, F_LENGTH = 2, F_LO = 3, F_HI = 4, F_RESULT = 5;
/** Views per job in {@link JobBatch.views}, and which is which. */
export const VIEWS_PER_JOB = 4;
/** Job views: after the header to the end; the same without the tag; the whole message; the inner packet. */
export const V_BODY = 0, V_TEXT = 1, V_MESSAGE = 2, V_PACKET = 3;

const EMPTY = new Uint8Array(0);
const counter = { lo: 0, hi: 0 };

/** JobBatch is the shared arena of one batch of crypto jobs. */
export class JobBatch {
  /** Message bytes of all jobs. */
  readonly data: Uint8Array;
  /** 32-byte keys, one per job (copied at queue time, so a key wiped later does not matter). */
  readonly keys: Uint8Array;
  /** JOB_FIELDS int32 per job. */
  readonly meta: Int32Array;
  /** Jobs queued. */
  count = 0;
  /** Bytes of `data` in use. */
  used = 0;
  /** Views of `data`, VIEWS_PER_JOB a job (index `i * VIEWS_PER_JOB + V_…`). */
  readonly views: ViewCache;
  /** `keys` of job `i`, made once. */
  readonly keyViews: Uint8Array[] = [];

  /** The memory behind the batch (post it to a Worker to share the batch). */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** Size of the message arena. */
  readonly dataSize: number;

  /**
   * A new batch, or a view of an existing one's `buffer` (in a Worker).
   */
  constructor(
    opts: { shared?: boolean; dataSize?: number; buffer?: ArrayBuffer | SharedArrayBuffer } = {},
  ) {
    const dataSize = opts.dataSize ?? 4 << 20;
    const size = dataSize + MAX_JOBS * 32 + MAX_JOBS * JOB_FIELDS * 4;
    const buffer = opts.buffer ??
      (opts.shared ? new SharedArrayBuffer(size) : new ArrayBuffer(size));
    this.buffer = buffer;
    this.dataSize = dataSize;
    this.data = new Uint8Array(buffer, 0, dataSize);
    this.keys = new Uint8Array(buffer, dataSize, MAX_JOBS * 32);
    this.meta = new Int32Array(buffer, dataSize + MAX_JOBS * 32, MAX_JOBS * JOB_FIELDS);
    this.views = new ViewCache(this.data, MAX_JOBS * VIEWS_PER_JOB, 13);
    for (let i = 0; i < MAX_JOBS; i++) this.keyViews.push(this.keys.subarray(i * 32, i * 32 + 32));
  }

  /** View `which` (V_…) of job `i`: `data[start, end)`, cached while the range repeats. */
  view(i: number, which: number, start: number, end: number): Uint8Array {
    return this.views.get(i * VIEWS_PER_JOB + which, start, end);
  }

  /**
   * Reserves a job of `length` message bytes; returns its index, or −1 when
   * the batch is full (run it first). The caller fills the bytes at
   * `offsetOf(index)`.
   */
  add(op: number, length: number, key: Uint8Array, lo: number, hi: number): number {
    const offset = (this.used + 15) & ~15;
    if (this.count >= MAX_JOBS || offset + length > this.data.length) return -1;
    const i = this.count++;
    this.used = offset + length;
    const m = i * JOB_FIELDS;
    this.meta[m + F_OP] = op;
    this.meta[m + F_OFFSET] = offset;
    this.meta[m + F_LENGTH] = length;
    this.meta[m + F_LO] = lo | 0;
    this.meta[m + F_HI] = hi | 0;
    this.meta[m + F_RESULT] = 0;
    this.keys.set(key, i * 32);
    return i;
  }

  /** Byte offset of job `i`'s message. */
  offsetOf(i: number): number {
    return this.meta[i * JOB_FIELDS + F_OFFSET];
  }

  /** Message length of job `i`. */
  lengthOf(i: number): number {
    return this.meta[i * JOB_FIELDS + F_LENGTH];
  }

  /** True when job `i` (an open) authenticated. */
  ok(i: number): boolean {
    return this.meta[i * JOB_FIELDS + F_RESULT] === 1;
  }

  /** Empties the batch (keys are wiped). */
  reset(): void {
    this.keys.fill(0, 0, this.count * 32);
    this.count = 0;
    this.used = 0;
  }
}

/** Runs jobs [from, to) of `batch` with the crypto backend of this thread. */
export function runJobs(batch: JobBatch, from: number, to: number): void {
  const { meta, keyViews } = batch;
  for (let i = from; i < to; i++) {
    const m = i * JOB_FIELDS;
    const off = meta[m + F_OFFSET];
    const len = meta[m + F_LENGTH];
    // body = header..end (ciphertext and tag), text = header..end − tag (plaintext).
    const body = batch.view(i, V_BODY, off + 16, off + len);
    const text = batch.view(i, V_TEXT, off + 16, off + len - 16);
    counter.lo = meta[m + F_LO] >>> 0;
    counter.hi = meta[m + F_HI] >>> 0;
    if (meta[m + F_OP] === JOB_SEAL) {
      aeadSeal(body, keyViews[i], counter, text, EMPTY);
      meta[m + F_RESULT] = 1;
    } else {
      meta[m + F_RESULT] = aeadOpen(text, keyViews[i], counter, body, EMPTY) ? 1 : 0;
    }
  }
}

/** A CryptoPool runs a whole batch before returning. */
export interface CryptoPool {
  /** True when batches must live in a SharedArrayBuffer (Workers read them). */
  readonly shared: boolean;
  /** Called once with the batch the device will run (to share it with Workers). */
  attach?(batch: JobBatch): void;
  /** Runs every job of `batch`. */
  run(batch: JobBatch): void;
  /** Stops any threads. */
  close(): void;
}

/** Runs every job on the calling thread. */
export class InlineCryptoPool implements CryptoPool {
  readonly shared = false;
  run(batch: JobBatch): void {
    runJobs(batch, 0, batch.count);
  }
  close(): void {}
}
