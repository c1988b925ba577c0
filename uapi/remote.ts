// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * UAPI connections served across threads. The daemon's main thread accepts
 * on the UAPI socket (Deno's async I/O), while the device lives on the
 * data-plane thread; each connection's protocol state ({@link UapiConnection})
 * lives with the device, and the main thread forwards the bytes it reads and
 * writes back the replies, through the control channel (`src/control.ts`).
 *
 * - {@link UapiSessions} is the data-plane side: the connections, by number.
 * - {@link RemoteUapiSession} is the main-thread side of one connection, with
 *   the same `feed`/`end`/`closed` contract as {@link UapiConnection}, so the
 *   server drives either the same way.
 *
 * Each `feed` is one request: it is applied on the data-plane thread between
 * two batches of packets, so every operation is atomic with respect to the
 * traffic and to other connections.
 */
import type { ControlClient, ControlReply } from "../src/control.ts";
import type { Logger } from "../src/log.ts";
import { UapiConnection, type UapiHandler } from "./protocol.ts";

/** Control ops of the UAPI proxy (op 0 is the channel's own). */
export const OP_UAPI_OPEN = 1;
export const OP_UAPI_FEED = 2;
export const OP_UAPI_END = 3;
export const OP_UAPI_CLOSE = 4;

/** One connection as the server drives it: {@link UapiConnection} or a {@link RemoteUapiSession}. */
export interface UapiSession {
  /** Handles received bytes; returns how many were consumed (see UapiConnection.feed). */
  feed(chunk: Uint8Array): number;
  /** End of input. */
  end(): void;
  /** True once the connection should be closed (after writing what was written). */
  readonly closed: boolean;
  /** Releases the session (the connection is gone). */
  dispose?(): void;
}

/** At most this many connections at once on the data-plane side (the server keeps fewer). */
const MAX_SESSIONS = 1024;
const encoder = new TextEncoder();

interface Entry {
  conn: UapiConnection;
  out: string[];
}

/** The data-plane side: one {@link UapiConnection} per connection number. */
export class UapiSessions {
  #handler: UapiHandler;
  #log: Logger;
  #sessions = new Map<number, Entry>();
  #next = 1;

  constructor(handler: UapiHandler, logger: Logger) {
    this.#handler = handler;
    this.#log = logger;
  }

  /** Number of open sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Answers one UAPI proxy op; returns null for ops that are not ours. */
  handle(op: number, arg: number, payload: Uint8Array): ControlReply | null {
    switch (op) {
      case OP_UAPI_OPEN: {
        if (this.#sessions.size >= MAX_SESSIONS) throw new Error("too many UAPI connections");
        const id = this.#next++;
        const out: string[] = [];
        const conn = new UapiConnection(this.#handler, (text) => out.push(text), {
          logger: this.#log,
        });
        this.#sessions.set(id, { conn, out });
        return { arg: id };
      }
      case OP_UAPI_FEED:
      case OP_UAPI_END: {
        const e = this.#sessions.get(arg);
        if (e === undefined) return { status: 1 };
        let consumed = 0;
        if (op === OP_UAPI_FEED) consumed = e.conn.feed(payload);
        else e.conn.end();
        const text = e.out.join("");
        e.out.length = 0;
        return { status: e.conn.closed ? 1 : 0, arg: consumed, data: encoder.encode(text) };
      }
      case OP_UAPI_CLOSE:
        this.#sessions.delete(arg);
        return {};
    }
    return null;
  }
}

/** The main-thread side of one connection; replies go to `write`. */
export class RemoteUapiSession implements UapiSession {
  #client: ControlClient;
  #write: (text: string) => void;
  #id: number;
  #closed = false;
  #decoder = new TextDecoder("utf-8", { ignoreBOM: true });

  constructor(client: ControlClient, write: (text: string) => void) {
    this.#client = client;
    this.#write = write;
    this.#id = client.call(OP_UAPI_OPEN).arg;
  }

  get closed(): boolean {
    return this.#closed;
  }

  feed(chunk: Uint8Array): number {
    // One request carries at most the channel's capacity; the caller feeds the rest.
    const piece = chunk.length > this.#client.capacity
      ? chunk.subarray(0, this.#client.capacity)
      : chunk;
    const a = this.#client.call(OP_UAPI_FEED, this.#id, piece);
    this.#answer(a.status, a.data);
    return a.arg;
  }

  end(): void {
    const a = this.#client.call(OP_UAPI_END, this.#id);
    this.#answer(a.status, a.data);
  }

  dispose(): void {
    this.#client.call(OP_UAPI_CLOSE, this.#id);
  }

  #answer(status: number, data: Uint8Array): void {
    if (status < 0) throw new Error(new TextDecoder().decode(data));
    if (data.length > 0) this.#write(this.#decoder.decode(data));
    if (status === 1) this.#closed = true;
  }
}
