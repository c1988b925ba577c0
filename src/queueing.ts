// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The data path's queue of crypto work (kernel `queueing.c`): transport
 * messages to seal (send path) and to open (receive path) go into one
 * {@link JobBatch}; the {@link CryptoPool} runs the whole batch; then every job
 * is committed in queue order to its {@link Committer}, so packet order per
 * peer is kept however the pool split the work.
 *
 * Per job the queue remembers the peer, the keypair (opens only) and the
 * source endpoint (opens only, a reused copy), in arrays indexed by job, so
 * queueing a packet allocates nothing.
 */
import { Endpoint } from "./conn/endpoint.ts";
import { type CryptoPool, JOB_OPEN, JOB_SEAL, JobBatch, MAX_JOBS } from "./crypto_pool.ts";
import { readU32 } from "./messages.ts";
import type { Keypair } from "./noise/keypair.ts";
import type { Peer } from "./peer.ts";

/** Where finished jobs go, one at a time, in queue order. */
export interface Committer {
  /** Job `i` of `batch` was sealed for `peer`: send it. */
  sealed(peer: Peer, batch: JobBatch, i: number): void;
  /** Job `i` of `batch` was opened (or failed to) with `kp`; it came from `from`. */
  opened(peer: Peer, kp: Keypair, batch: JobBatch, i: number, from: Endpoint): void;
}

/** CryptoQueue is a device's batch of seal and open jobs and their commit order. */
export class CryptoQueue {
  #pool: CryptoPool;
  #committer: Committer;
  #queued: () => void;
  #batch: JobBatch | null = null;
  #jobPeer: (Peer | null)[] = new Array(MAX_JOBS).fill(null);
  #jobKeypair: (Keypair | null)[] = new Array(MAX_JOBS).fill(null);
  #jobFrom: Endpoint[] = [];
  #committing = false;

  /** `queued` is called after each job is added (the device schedules a flush). */
  constructor(pool: CryptoPool, committer: Committer, queued: () => void) {
    this.#pool = pool;
    this.#committer = committer;
    this.#queued = queued;
  }

  /** True while a batch is being committed (nothing can be queued then). */
  get committing(): boolean {
    return this.#committing;
  }

  /** Jobs queued for the next run. */
  get length(): number {
    return this.#batch?.count ?? 0;
  }

  /** The batch arena (4 MiB), made when the first job is queued. */
  get batch(): JobBatch {
    if (this.#batch === null) {
      this.#batch = new JobBatch({ shared: this.#pool.shared });
      this.#pool.attach?.(this.#batch);
    }
    return this.#batch;
  }

  /**
   * Reserves a seal job of `length` message bytes for `peer` with `kp`'s send
   * key and counter, running the batch first when it is full. Returns the job
   * index (the caller writes the message at `batch.offsetOf(i)`), or −1 while
   * committing, when the caller must seal and send at once.
   */
  addSeal(peer: Peer, kp: Keypair, length: number): number {
    if (this.#committing) return -1;
    const batch = this.batch;
    let i = batch.add(JOB_SEAL, length, kp.sendKey, kp.sendLo, kp.sendHi);
    if (i < 0) {
      this.run();
      i = batch.add(JOB_SEAL, length, kp.sendKey, kp.sendLo, kp.sendHi);
    }
    if (i >= 0) {
      this.#jobPeer[i] = peer;
      this.#queued();
    }
    return i;
  }

  /**
   * Queues the transport message `data` from `from` to be opened with `kp`'s
   * receive key for `peer` (copied into the batch). False when it cannot be
   * queued (while committing: nothing receives then).
   */
  addOpen(peer: Peer, kp: Keypair, data: Uint8Array, from: Endpoint): boolean {
    if (this.#committing) return false;
    const batch = this.batch;
    const lo = readU32(data, 8), hi = readU32(data, 12);
    let i = batch.add(JOB_OPEN, data.length, kp.receiveKey, lo, hi);
    if (i < 0) {
      this.run();
      i = batch.add(JOB_OPEN, data.length, kp.receiveKey, lo, hi);
      if (i < 0) return false;
    }
    batch.data.set(data, batch.offsetOf(i));
    this.#jobPeer[i] = peer;
    this.#jobKeypair[i] = kp;
    let ep = this.#jobFrom[i];
    if (!ep) ep = this.#jobFrom[i] = new Endpoint(4, new Uint8Array(4), 0);
    ep.copyFrom(from);
    this.#queued();
    return true;
  }

  /** Runs the queued jobs and commits them in order (a no-op while committing). */
  run(): void {
    const batch = this.#batch;
    if (batch === null || this.#committing) return;
    const n = batch.count;
    if (n === 0) return;
    this.#pool.run(batch);
    this.#committing = true;
    try {
      for (let i = 0; i < n; i++) {
        const peer = this.#jobPeer[i];
        if (peer === null) continue; // dropped: its peer was removed
        const kp = this.#jobKeypair[i];
        if (kp === null) this.#committer.sealed(peer, batch, i);
        else this.#committer.opened(peer, kp, batch, i, this.#jobFrom[i]);
        this.#jobPeer[i] = null;
        this.#jobKeypair[i] = null;
      }
    } finally {
      this.#committing = false;
      batch.reset();
    }
  }

  /** Runs batches until nothing is queued (a no-op while committing). */
  drain(): void {
    if (this.#committing) return;
    while (this.length > 0) this.run();
  }

  /** Forgets queued jobs (of `peer` only, when given) without committing them. */
  drop(peer?: Peer): void {
    const batch = this.#batch;
    if (batch === null) return;
    if (peer === undefined) {
      this.#jobPeer.fill(null);
      this.#jobKeypair.fill(null);
      batch.reset();
      return;
    }
    for (let i = 0; i < batch.count; i++) {
      if (this.#jobPeer[i] === peer) {
        this.#jobPeer[i] = null;
        this.#jobKeypair[i] = null;
      }
    }
  }

  /** Stops the pool's threads. */
  close(): void {
    this.#pool.close();
  }
}
