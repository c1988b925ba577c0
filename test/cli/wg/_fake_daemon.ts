// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * A scripted UAPI daemon for differential tests: it records every request
 * (`get=1\n\n`, `set=1\n…\n\n`) byte for byte and answers with whatever the
 * test scripts, so stock `wg` and ours can be fed identical replies (no
 * random peer order, crafted handshake times, malformed lines) and their
 * requests compared exactly. Probe connections that send nothing are ignored.
 */

/** Answers one request; null closes the connection without a reply. */
export type FakeScript = (request: string) => string | null;

/** A scripted daemon on `<dir>/<iface>.sock`. */
export class FakeDaemon {
  readonly requests: string[] = [];
  readonly #listener: Deno.UnixListener;
  readonly #done: Promise<void>;
  readonly #conns = new Set<Deno.Conn>();
  script: FakeScript;

  constructor(dir: string, iface: string, script: FakeScript) {
    this.script = script;
    this.#listener = Deno.listen({ transport: "unix", path: `${dir}/${iface}.sock` });
    this.#done = this.#serve();
  }

  async #serve(): Promise<void> {
    const handlers: Promise<void>[] = [];
    try {
      for await (const conn of this.#listener) handlers.push(this.#handle(conn));
    } catch {
      // closed
    }
    await Promise.all(handlers);
  }

  async #handle(conn: Deno.Conn): Promise<void> {
    this.#conns.add(conn);
    const buf = new Uint8Array(65536);
    let text = "";
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
        if (text.includes("\n\n") || text === "\n") break;
      }
      if (text === "") return;
      this.requests.push(text);
      const reply = this.script(text);
      if (reply !== null) {
        const data = new TextEncoder().encode(reply);
        let off = 0;
        while (off < data.length) off += await conn.write(data.subarray(off));
      }
    } catch {
      // the client went away
    } finally {
      this.#conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }

  /** Takes the recorded requests and clears the record. */
  take(): string[] {
    return this.requests.splice(0);
  }

  /** Stops listening (the socket file is removed) and drops open connections. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // already closed
      }
    }
    await this.#done;
  }
}

/** A script that answers every get with `body` (plus errno=0) and every set with errno=`setErrno`. */
export function staticDaemon(body: string, setErrno = 0): FakeScript {
  return (request) =>
    request.startsWith("get=1\n") ? `${body}errno=0\n\n` : `errno=${setErrno}\n\n`;
}
