// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link Ring}: a byte FIFO of bounded capacity for a TCP connection's send
 * and receive buffers. Besides appending and consuming it can copy bytes out
 * at an offset without consuming them (retransmission reads unacknowledged
 * bytes) and write past its end without committing them (out-of-order data
 * waits there until the gap before it is filled).
 *
 * The capacity is a limit, not an allocation: storage comes from a
 * {@link BufferPool} when the first byte arrives, doubles (from
 * {@link MIN_STORAGE} bytes, up to the capacity) when more is needed, and goes
 * back to the pool when the ring is empty, with nothing written past its end.
 * The next fill takes the size it had before, so a steady stream does not
 * grow again each time.
 */
import type { BufferPool } from "./buffer_pool.ts";

/** Smallest storage a ring takes. */
export const MIN_STORAGE = 4096;

const EMPTY = new Uint8Array(0);

/** A byte FIFO with storage on demand; see the module doc. */
export class Ring {
  readonly capacity: number;
  readonly #pool: BufferPool;
  #buf: Uint8Array = EMPTY;
  #head = 0;
  #length = 0;
  /** Bytes from the head that hold data: the content plus what was written past it. */
  #extent = 0;
  /** Storage size to take at the next fill. */
  #want = 0;

  constructor(capacity: number, pool: BufferPool) {
    this.capacity = capacity;
    this.#pool = pool;
  }

  /** Bytes held. */
  get length(): number {
    return this.#length;
  }

  /** Bytes that can still be appended. */
  get free(): number {
    return this.capacity - this.#length;
  }

  /** Bytes of storage the ring holds now. */
  get reserved(): number {
    return this.#buf.length;
  }

  /** Appends up to `free` bytes of `src[off..off + len)`; returns how many. */
  append(src: Uint8Array, off: number, len: number): number {
    const n = Math.min(len, this.free);
    if (n <= 0) return 0;
    this.writeAt(this.#length, src, off, n);
    this.#length += n;
    return n;
  }

  /**
   * Copies `src[off..off + len)` to the position `at` bytes after the head
   * without changing the length; `at + len` must not exceed the capacity.
   */
  writeAt(at: number, src: Uint8Array, off: number, len: number): void {
    if (len <= 0) return;
    const end = at + len;
    if (end > this.#buf.length) this.#grow(end);
    if (end > this.#extent) this.#extent = end;
    const buf = this.#buf;
    const cap = buf.length;
    let pos = (this.#head + at) % cap;
    while (len > 0) {
      const n = Math.min(len, cap - pos);
      buf.set(src.subarray(off, off + n), pos);
      off += n;
      len -= n;
      pos = 0;
    }
  }

  /** Makes `n` bytes already written past the end (by {@link writeAt}) part of the content. */
  commit(n: number): void {
    this.#length = Math.min(this.capacity, this.#length + n);
    if (this.#length > this.#extent) this.#extent = this.#length;
  }

  /** Copies `len` bytes starting `at` bytes after the head into `dst[off]`, without consuming. */
  peek(at: number, dst: Uint8Array, off: number, len: number): void {
    const buf = this.#buf;
    const cap = buf.length;
    if (len <= 0) return;
    let pos = (this.#head + at) % cap;
    while (len > 0) {
      const n = Math.min(len, cap - pos);
      dst.set(buf.subarray(pos, pos + n), off);
      off += n;
      len -= n;
      pos = 0;
    }
  }

  /** Removes up to `n` bytes from the head; returns how many. */
  consume(n: number): number {
    n = Math.min(n, this.#length);
    if (n <= 0) return 0;
    this.#length -= n;
    this.#extent -= n;
    if (this.#length === 0 && this.#extent === 0) {
      this.release();
      return n;
    }
    this.#head = (this.#head + n) % this.#buf.length;
    return n;
  }

  /** Moves up to `len` bytes from the head into `dst[off]`; returns how many. */
  read(dst: Uint8Array, off: number, len: number): number {
    const n = Math.min(len, this.#length);
    this.peek(0, dst, off, n);
    return this.consume(n);
  }

  /** Gives the storage back to the pool and forgets everything held. */
  release(): void {
    if (this.#buf !== EMPTY) {
      this.#want = this.#buf.length;
      this.#pool.give(this.#buf);
      this.#buf = EMPTY;
    }
    this.#head = this.#length = this.#extent = 0;
  }

  /** Moves to storage of at least `need` bytes, the held bytes first. */
  #grow(need: number): void {
    const old = this.#buf;
    let size = Math.max(MIN_STORAGE, old.length * 2, old === EMPTY ? this.#want : 0);
    while (size < need) size *= 2;
    if (size > this.capacity) size = this.capacity;
    const buf = this.#pool.take(size);
    if (old !== EMPTY) {
      this.#copyOut(old, buf);
      this.#pool.give(old);
    }
    this.#buf = buf;
    this.#head = 0;
  }

  /** Copies the first #extent bytes from the head of `old` to the start of `to`. */
  #copyOut(old: Uint8Array, to: Uint8Array): void {
    const first = Math.min(this.#extent, old.length - this.#head);
    to.set(old.subarray(this.#head, this.#head + first), 0);
    if (first < this.#extent) to.set(old.subarray(0, this.#extent - first), first);
  }
}
