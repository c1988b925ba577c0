// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link Ring}: a fixed-capacity byte FIFO for a TCP connection's send and
 * receive buffers. Besides appending and consuming it can copy bytes out at
 * an offset without consuming them (retransmission reads unacknowledged
 * bytes) and write past its end without committing them (out-of-order data
 * waits there until the gap before it is filled).
 */

/** A byte FIFO of fixed capacity; see the module doc. */
export class Ring {
  readonly capacity: number;
  #buf: Uint8Array;
  #head = 0;
  #length = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#buf = new Uint8Array(capacity);
  }

  /** Bytes held. */
  get length(): number {
    return this.#length;
  }

  /** Bytes that can still be appended. */
  get free(): number {
    return this.capacity - this.#length;
  }

  /** Appends up to `free` bytes of `src[off..off + len)`; returns how many. */
  append(src: Uint8Array, off: number, len: number): number {
    const n = Math.min(len, this.free);
    this.writeAt(this.#length, src, off, n);
    this.#length += n;
    return n;
  }

  /**
   * Copies `src[off..off + len)` to the position `at` bytes after the head
   * without changing the length; `at + len` must not exceed the capacity.
   */
  writeAt(at: number, src: Uint8Array, off: number, len: number): void {
    const cap = this.capacity;
    let pos = (this.#head + at) % cap;
    while (len > 0) {
      const n = Math.min(len, cap - pos);
      this.#buf.set(src.subarray(off, off + n), pos);
      off += n;
      len -= n;
      pos = 0;
    }
  }

  /** Makes `n` bytes already written past the end (by {@link writeAt}) part of the content. */
  commit(n: number): void {
    this.#length = Math.min(this.capacity, this.#length + n);
  }

  /** Copies `len` bytes starting `at` bytes after the head into `dst[off]`, without consuming. */
  peek(at: number, dst: Uint8Array, off: number, len: number): void {
    const cap = this.capacity;
    let pos = (this.#head + at) % cap;
    while (len > 0) {
      const n = Math.min(len, cap - pos);
      dst.set(this.#buf.subarray(pos, pos + n), off);
      off += n;
      len -= n;
      pos = 0;
    }
  }

  /** Removes up to `n` bytes from the head; returns how many. */
  consume(n: number): number {
    n = Math.min(n, this.#length);
    this.#head = (this.#head + n) % this.capacity;
    this.#length -= n;
    return n;
  }

  /** Moves up to `len` bytes from the head into `dst[off]`; returns how many. */
  read(dst: Uint8Array, off: number, len: number): number {
    const n = Math.min(len, this.#length);
    this.peek(0, dst, off, n);
    return this.consume(n);
  }
}
