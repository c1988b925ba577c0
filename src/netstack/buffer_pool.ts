// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link BufferPool}: the storage behind the stack's TCP buffers. A ring
 * takes storage when it first holds data and gives it back when it is empty
 * again, so an idle connection holds no buffer; the pool keeps up to
 * `maxBytes` of returned buffers for reuse, so a busy connection that empties
 * and refills its ring takes the same buffer back instead of allocating.
 */

/** Buffers by size, bounded; see the module doc. */
export class BufferPool {
  /** Bytes kept for reuse at most. */
  readonly maxBytes: number;
  /** Bytes handed out and not yet given back. */
  inUse = 0;
  /** Bytes held for reuse. */
  pooled = 0;
  readonly #free = new Map<number, Uint8Array[]>();

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** A buffer of exactly `size` bytes (its content is stale). */
  take(size: number): Uint8Array {
    this.inUse += size;
    const list = this.#free.get(size);
    if (list && list.length > 0) {
      this.pooled -= size;
      return list.pop()!;
    }
    return new Uint8Array(size);
  }

  /** Gives a buffer from {@link take} back. */
  give(buf: Uint8Array): void {
    const size = buf.length;
    this.inUse -= size;
    if (this.pooled + size > this.maxBytes) return;
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push(buf);
    this.pooled += size;
  }
}
