// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * stdout and stderr as a C program has them, so that output interleaves the
 * way stock `wg`'s does when both go to one file (`wg show 2>&1 | …`):
 * stdout is line-buffered on a terminal and otherwise fully buffered in
 * 4096-byte blocks (glibc's st_blksize for pipes and most files), stderr is
 * unbuffered, and everything reaches the descriptors in one global order.
 * Text is byte strings (see cstr.ts), written byte for byte.
 */
import { bstrBytes, bytesToBstr, strerror } from "./cstr.ts";

/** Where output goes: `Deno.stdout`/`Deno.stderr` or anything shaped like them. */
export interface WgWriter {
  write(p: Uint8Array): Promise<number>;
  isTerminal?(): boolean;
}

/** Where input comes from: `Deno.stdin` or anything shaped like it. */
export interface WgReader {
  read(p: Uint8Array): Promise<number | null>;
}

/** glibc's buffer size for a non-terminal stdout. */
const BLOCK = 4096;

/** Thrown to end the command early with an exit status (C `exit()` or a fatal signal). */
export class WgExit extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.name = "WgExit";
    this.code = code;
  }
}

async function writeAll(w: WgWriter, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const n = await w.write(data.subarray(off));
    if (n <= 0) return;
    off += n;
  }
}

/** The two output streams of one `wg` invocation. */
export class Stdio {
  readonly #out: WgWriter;
  readonly #err: WgWriter;
  readonly #lineBuffered: boolean;
  /** Buffered stdout as byte strings (converted to bytes only when written). */
  #buf: string[] = [];
  #buffered = 0;
  #chain: Promise<void> = Promise.resolve();

  constructor(out: WgWriter, err: WgWriter) {
    this.#out = out;
    this.#err = err;
    this.#lineBuffered = isTerminal(out);
  }

  /** Whether stdout is a terminal (`isatty(fileno(stdout))`). */
  get stdoutIsTerminal(): boolean {
    return this.#lineBuffered;
  }

  #queue(w: WgWriter, data: Uint8Array): void {
    this.#chain = this.#chain.then(() => writeAll(w, data)).catch(() => {
      // A closed stdout loses output, as it does for wg (which would die of SIGPIPE).
    });
  }

  /** Hands the first `n` buffered stdout bytes to the writer. */
  #emit(n: number): void {
    const all = this.#buf.join("");
    this.#queue(this.#out, bstrBytes(all.slice(0, n)));
    this.#buf = n < all.length ? [all.slice(n)] : [];
    this.#buffered = all.length - n;
  }

  /** printf() to stdout: a byte string, buffered like glibc. */
  out(s: string | Uint8Array): void {
    const text = typeof s === "string" ? s : bytesToBstr(s);
    if (text.length === 0) return;
    this.#buf.push(text);
    this.#buffered += text.length;
    if (this.#lineBuffered) {
      const nl = text.lastIndexOf("\n");
      if (nl >= 0) this.#emit(this.#buffered - (text.length - nl - 1));
    } else if (this.#buffered >= BLOCK) {
      this.#emit(this.#buffered - (this.#buffered % BLOCK));
    }
  }

  /** fprintf(stderr, …): unbuffered, one write per call. */
  err(s: string | Uint8Array): void {
    this.#queue(this.#err, typeof s === "string" ? bstrBytes(s) : s);
  }

  /** perror(prefix) with `errno`. */
  perror(prefix: string, errno: number): void {
    this.err(`${prefix}: ${strerror(errno)}\n`);
  }

  /** Drops buffered stdout, as a crash loses it. */
  discardStdout(): void {
    this.#buf = [];
    this.#buffered = 0;
  }

  /** Writes what stdout still buffers (exit()) and waits for every write. */
  async flush(): Promise<void> {
    if (this.#buffered > 0) this.#emit(this.#buffered);
    await this.#chain;
  }
}

function isTerminal(w: WgWriter): boolean {
  try {
    return typeof w.isTerminal === "function" && w.isTerminal();
  } catch {
    return false;
  }
}

/** readAll() reads a reader to its end. */
export async function readAll(r: WgReader): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await r.read(buf);
    if (n === null || n === 0) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
