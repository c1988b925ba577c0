// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * A request/response channel between two threads over one SharedArrayBuffer:
 * the daemon's main thread (UAPI socket, signals, metrics) asks, the
 * data-plane thread answers. The data-plane thread never enters Deno's event
 * loop (it blocks in `epoll_wait`), so it cannot receive `postMessage`; the
 * asking side therefore writes its request into the buffer, writes to the
 * answering loop's eventfd to wake it, and blocks in `Atomics.wait` until the
 * answer is stored. One request is in flight at a time; requests are rare
 * (a `wg` command, a metrics scrape, shutdown), so blocking the asking thread
 * for the few microseconds to milliseconds an answer takes is the simple and
 * correct choice: each request is applied atomically with respect to the
 * packets, as wireguard-go's device lock makes it.
 *
 * Layout: an Int32 header (request sequence, answer sequence, op, argument,
 * payload length, status, more-follows, closed) and a data area. Once the
 * answering side has closed the channel (its loop ended), requests fail at
 * once instead of waiting out their timeout. Answers larger than
 * the area are sent in pieces: the asking side fetches the rest with the
 * reserved op {@link OP_MORE}, so the area bounds memory, not answers.
 */
import { libc } from "./sys/libc.ts";

const REQ = 0, ACK = 1, OP = 2, ARG = 3, LEN = 4, STATUS = 5, MORE = 6, CLOSED = 7;
const HEADER_BYTES = 64;
/** Default size of the data area. */
export const CONTROL_CAPACITY = 256 * 1024;
/** Reserved op: the next piece of a long answer. */
export const OP_MORE = 0;
const ONE = new BigUint64Array([1n]);
const EIGHT = 8n;

/** An answer: a status chosen by the ops (0 = ok by convention), a number and bytes. */
export interface ControlAnswer {
  status: number;
  arg: number;
  data: Uint8Array;
}

/** Makes the shared buffer of a channel. */
export function createControlBuffer(capacity = CONTROL_CAPACITY): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + capacity);
}

/** The asking side: {@link ControlClient.call} blocks until the answer is there. */
export class ControlClient {
  #h: Int32Array;
  #data: Uint8Array;
  #wakeFd: number;
  #timeoutMs: number;
  #seq = 0;

  /**
   * `wakeFd` is the answering loop's eventfd; `timeoutMs` bounds each wait
   * (a data plane that stopped answering is a fatal error for the caller).
   */
  constructor(buffer: SharedArrayBuffer, wakeFd: number, timeoutMs = 30_000) {
    this.#h = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#data = new Uint8Array(buffer, HEADER_BYTES);
    this.#wakeFd = wakeFd;
    this.#timeoutMs = timeoutMs;
  }

  /** Largest request payload. */
  get capacity(): number {
    return this.#data.length;
  }

  /** Sends `op` with `arg` and `payload` (at most {@link capacity} bytes) and waits for the whole answer. */
  call(op: number, arg = 0, payload?: Uint8Array): ControlAnswer {
    let answer = this.#once(op, arg, payload);
    if (Atomics.load(this.#h, MORE) === 0) return answer;
    const pieces = [answer.data];
    let total = answer.data.length;
    while (Atomics.load(this.#h, MORE) !== 0) {
      answer = this.#once(OP_MORE, 0, undefined);
      pieces.push(answer.data);
      total += answer.data.length;
    }
    const data = new Uint8Array(total);
    let off = 0;
    for (const p of pieces) {
      data.set(p, off);
      off += p.length;
    }
    return { status: answer.status, arg: answer.arg, data };
  }

  #once(op: number, arg: number, payload: Uint8Array | undefined): ControlAnswer {
    const h = this.#h;
    const len = payload?.length ?? 0;
    if (len > this.#data.length) {
      throw new RangeError(`control request of ${len} bytes exceeds ${this.#data.length}`);
    }
    if (Atomics.load(h, CLOSED) !== 0) throw new Error("the data plane has stopped");
    if (payload !== undefined) this.#data.set(payload);
    h[OP] = op;
    h[ARG] = arg;
    h[LEN] = len;
    const seq = this.#seq = (this.#seq + 1) | 0;
    Atomics.store(h, REQ, seq);
    if (libc().write(this.#wakeFd, ONE, EIGHT) < 0) {
      throw new Error("the data plane is gone (its wake-up fd is closed)");
    }
    const deadline = performance.now() + this.#timeoutMs;
    for (;;) {
      const ack = Atomics.load(h, ACK);
      if (ack === seq) break;
      // Checked after reading ACK: a server that closes changes ACK after
      // setting CLOSED, so the wait below cannot miss it.
      if (Atomics.load(h, CLOSED) !== 0) throw new Error("the data plane has stopped");
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`the data plane did not answer within ${this.#timeoutMs} ms`);
      Atomics.wait(h, ACK, ack, left);
    }
    return {
      status: h[STATUS],
      arg: h[ARG],
      data: this.#data.slice(0, h[LEN]),
    };
  }
}

/** What an op handler returns. */
export interface ControlReply {
  status?: number;
  arg?: number;
  data?: Uint8Array;
}

/** The answering side; call {@link ControlServer.poll} when woken. */
export class ControlServer {
  #h: Int32Array;
  #data: Uint8Array;
  #handler: (op: number, arg: number, payload: Uint8Array) => ControlReply;
  #rest: Uint8Array | null = null;
  #restStatus = 0;
  #restArg = 0;

  constructor(
    buffer: SharedArrayBuffer,
    handler: (op: number, arg: number, payload: Uint8Array) => ControlReply,
  ) {
    this.#h = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#data = new Uint8Array(buffer, HEADER_BYTES);
    this.#handler = handler;
  }

  /**
   * Answers no more: a request in flight, and every later one, fails at once
   * on the asking side instead of waiting for its timeout. Idempotent.
   */
  close(): void {
    const h = this.#h;
    Atomics.store(h, CLOSED, 1);
    // A request sent but not answered: move ACK off the value its waiter
    // holds, so the wait returns and sees CLOSED. (An asker that has not yet
    // looked at CLOSED sees it before it waits.) An answered request keeps its ACK.
    if (Atomics.load(h, REQ) !== Atomics.load(h, ACK)) {
      Atomics.store(h, ACK, Atomics.load(h, ACK) ^ 0x40000000);
      Atomics.notify(h, ACK);
    }
  }

  /**
   * Answers the pending request, if any. The payload view is only valid
   * during the handler. A handler that throws answers status −1 with the
   * error's message.
   */
  poll(): void {
    const h = this.#h;
    if (Atomics.load(h, CLOSED) !== 0) return;
    const seq = Atomics.load(h, REQ);
    if (seq === Atomics.load(h, ACK)) return;
    const op = h[OP];
    let status = 0, arg = 0;
    let data: Uint8Array = EMPTY;
    if (op === OP_MORE) {
      data = this.#rest ?? EMPTY;
      status = this.#restStatus;
      arg = this.#restArg;
    } else {
      this.#rest = null;
      try {
        const r = this.#handler(op, h[ARG], this.#data.subarray(0, h[LEN]));
        status = r.status ?? 0;
        arg = r.arg ?? 0;
        data = r.data ?? EMPTY;
      } catch (err) {
        status = -1;
        data = new TextEncoder().encode(err instanceof Error ? err.message : String(err));
      }
    }
    const cap = this.#data.length;
    if (data.length > cap) {
      this.#rest = data.subarray(cap);
      this.#restStatus = status;
      this.#restArg = arg;
      data = data.subarray(0, cap);
      h[MORE] = 1;
    } else {
      this.#rest = null;
      h[MORE] = 0;
    }
    this.#data.set(data);
    h[LEN] = data.length;
    h[STATUS] = status;
    h[ARG] = arg;
    Atomics.store(h, ACK, seq);
    Atomics.notify(h, ACK);
  }
}

const EMPTY = new Uint8Array(0);
