// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The UAPI socket, `/var/run/wireguard/<iface>.sock`, as wireguard-go serves it
 * (`ipc/uapi_unix.go` `UAPIOpen`, `ipc/uapi_linux.go` `UAPIListen`,
 * `device/uapi.go` `IpcHandle`):
 *
 * - the directory is created 0755 and the socket 0700 (umask 077 around bind);
 * - a stale socket (nothing answers a connect) is removed and replaced, a live
 *   one is refused with "unix socket in use", naming the process that serves
 *   it and telling that the directory is shared by all network namespaces
 *   (see holder.ts);
 * - several operations per connection; `get=1\n` must be followed by exactly
 *   `\n`; any other operation line closes the connection without a reply;
 * - connections that send nothing (`wg`'s discovery probe) are fine;
 * - deleting the socket file resolves {@link UapiServer.closed}, as
 *   wireguard-go's inotify watch makes its daemon exit.
 *
 * Where this differs from wireguard-go, on purpose (a wedged client must not
 * wedge the daemon, and memory stays bounded):
 * - A `set` is buffered until its blank line (up to {@link
 *   UapiServerOptions.maxRequestBytes}) and then applied in one synchronous
 *   step, so concurrent connections never interleave with it and a client that
 *   stalls mid-request blocks nobody. wireguard-go instead holds a mutex while
 *   it reads, so one stalled `set` blocks every other `get`/`set`. Larger
 *   requests are applied in batches of that size as they arrive. The reply
 *   therefore comes after the blank line even when an early line fails;
 *   wireguard-go answers at the failing line. `wg` writes the whole request
 *   before reading, so it cannot tell.
 * - After a failed line the rest of the request is read and discarded up to
 *   its blank line, and the connection stays usable. wireguard-go stops
 *   reading, and whatever its line scanner had not buffered is then misread as
 *   operation lines (which usually closes the connection).
 * - Operations pipelined right after a `set` are served; wireguard-go's
 *   scanner may swallow them.
 * - An operation line longer than 64 KiB closes the connection (wireguard-go
 *   buffers it without limit), and so does a `set` line of 64 KiB right after
 *   its `errno=-5` reply (wireguard-go closes once it has misread the rest of
 *   that line as an operation). At most `maxConnections` connections are
 *   kept; the one idle the longest is dropped to admit a new one.
 * - {@link UapiServer.closed} watches the directory (Deno.watchFs), so a rename
 *   of the socket counts as a deletion too; inotify on the file does not. When
 *   the watch cannot be had or fails (wireguard-go then fails to start, or
 *   exits), it logs an error and checks for the socket once a second.
 * - {@link UapiServer.listen} refuses a socket directory that someone else
 *   could write to: one owned by a user other than root (or ourselves, for an
 *   unprivileged daemon), or writable by its group or by others. In such a
 *   directory another user could plant a socket under our name for root's
 *   `wg` to talk to, or replace ours (wireguard-go creates it 0755 but uses
 *   whatever it finds).
 */
import type { Logger } from "../src/log.ts";
import { silentLogger } from "../src/log.ts";
import { libc } from "../src/sys/libc.ts";
import { socketInUseMessage } from "./holder.ts";
import { checkSocketDir, DEFAULT_SOCKET_DIR } from "./socket_dir.ts";
import { UapiConnection, type UapiHandler } from "./protocol.ts";
import type { UapiSession } from "./remote.ts";

export type { UapiHandler, UapiSetSession } from "./protocol.ts";
export { checkSocketDir, DEFAULT_SOCKET_DIR } from "./socket_dir.ts";

/** Options for {@link UapiServer.listen} and {@link UapiServer.fromFd}. */
export interface UapiServerOptions {
  /** Interface name; the socket is `<dir>/<iface>.sock`. */
  iface: string;
  /** Applies the operations on this thread (tests, the library); or give {@link open}. */
  handle?: UapiHandler;
  /**
   * Makes the protocol state of each new connection, with replies going to
   * `write`: the daemon's sessions proxied to its data-plane thread.
   * Default: a {@link UapiConnection} over {@link handle}.
   */
  open?: (write: (text: string) => void) => UapiSession;
  /** Socket directory, `/var/run/wireguard` by default (as `wg` expects). */
  dir?: string;
  logger?: Logger;
  /** Connections kept open at once (default 64); the longest idle one is dropped for a new one. */
  maxConnections?: number;
  /**
   * Bytes of a `set` request buffered before its blank line (default 1 MiB);
   * beyond this, complete lines are applied as they arrive.
   */
  maxRequestBytes?: number;
  /**
   * Watches the socket directory (default `Deno.watchFs(dir)`). When it
   * cannot be had (no inotify instance left: `fs.inotify.max_user_instances`)
   * or fails later (an overflowed event queue), the server logs an error and
   * checks for its socket once a second instead of stopping: only the
   * socket's removal ends the daemon.
   */
  watch?: (dir: string) => Deno.FsWatcher;
}

/** How often the socket's presence is checked when the directory cannot be watched. */
const POLL_MS = 1000;

const DEFAULT_MAX_CONNECTIONS = 64;

const INTERNAL = Symbol("UapiServer.internal");

/** A byte stream as the server uses it (Deno.Conn or a node:net socket). */
interface Stream {
  read(buf: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<void>;
  close(): void;
}

/** Sets the process umask, returning the old one; null when neither FFI nor Deno.umask is allowed. */
function setUmask(mask: number): number | null {
  try {
    return libc().umask(mask);
  } catch {
    try {
      return Deno.umask(mask);
    } catch {
      return null;
    }
  }
}

/**
 * A UAPI listener. Create with {@link UapiServer.listen} (or
 * {@link UapiServer.fromFd} for a socket inherited through `WG_UAPI_FD`).
 */
export class UapiServer {
  /** The socket path. */
  readonly path: string;
  /**
   * Resolves when the socket file is deleted (the daemon should then exit, as
   * wireguard-go does), when accepting fails, or after {@link close}.
   */
  readonly closed: Promise<void>;

  #opts: UapiServerOptions;
  #log: Logger;
  #maxConnections: number;
  #stopAccept: () => void;
  #watcher: Deno.FsWatcher | null = null;
  #poll: ReturnType<typeof setInterval> | null = null;
  #resolveClosed!: () => void;
  /** Inode of our socket file, to recognise it at close. */
  #ino: number | null;
  #done = false;
  /** Open connections, least recently active first (Map keeps insertion order). */
  #conns = new Map<Stream, true>();

  /** Internal: use {@link UapiServer.listen} or {@link UapiServer.fromFd}. */
  constructor(
    token: typeof INTERNAL,
    path: string,
    opts: UapiServerOptions,
    stopAccept: () => void,
  ) {
    if (token !== INTERNAL) throw new TypeError("Use UapiServer.listen() or UapiServer.fromFd()");
    this.path = path;
    this.#opts = opts;
    this.#log = opts.logger ?? silentLogger;
    this.#maxConnections = Math.max(1, opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
    this.#stopAccept = stopAccept;
    try {
      this.#ino = Deno.lstatSync(path).ino;
    } catch {
      this.#ino = null;
    }
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /**
   * Creates `<dir>/<iface>.sock` and starts serving. Throws
   * `Error("unix socket in use: …")` when another process answers on that path.
   */
  static async listen(opts: UapiServerOptions): Promise<UapiServer> {
    const dir = opts.dir ?? DEFAULT_SOCKET_DIR;
    const path = socketPath(dir, opts.iface);
    Deno.mkdirSync(dir, { recursive: true, mode: 0o755 });
    checkSocketDir(dir);
    let listener: Deno.UnixListener;
    try {
      listener = listenUnix(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse)) throw err;
      // Something is at the path. If a process answers it is ours no more.
      if (await canConnect(path)) throw new Error(socketInUseMessage(path));
      Deno.removeSync(path);
      listener = listenUnix(path);
    }
    const server = new UapiServer(INTERNAL, path, opts, () => listener.close());
    try {
      server.#watch(dir);
    } catch (err) {
      listener.close();
      throw err;
    }
    server.#acceptDeno(listener);
    return server;
  }

  /**
   * Serves an already listening unix socket inherited as file descriptor `fd`
   * (wireguard-go's `WG_UAPI_FD`). Its path must be `<dir>/<iface>.sock`.
   */
  static async fromFd(fd: number, opts: UapiServerOptions): Promise<UapiServer> {
    const net = await import("node:net");
    const dir = opts.dir ?? DEFAULT_SOCKET_DIR;
    const path = socketPath(dir, opts.iface);
    const nodeServer = net.createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      nodeServer.once("error", reject);
      nodeServer.listen({ fd }, () => {
        nodeServer.off("error", reject);
        resolve();
      });
    });
    const server = new UapiServer(INTERNAL, path, opts, () => nodeServer.close());
    try {
      server.#watch(dir);
    } catch (err) {
      nodeServer.close();
      throw err;
    }
    nodeServer.on("connection", (socket) => server.#serve(nodeStream(socket)));
    nodeServer.on("error", (err) => {
      server.#log.error(`UAPI listener failed: ${err.message}`);
      server.#finish();
    });
    return server;
  }

  /** Stops listening, drops all connections and unlinks the socket. Idempotent. */
  close(): void {
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    try {
      this.#stopAccept();
    } catch {
      // Already closed.
    }
    // Unlink now, as wireguard-go's listener does (SetUnlinkOnClose): Deno
    // unlinks only once a pending accept has been torn down, and node never
    // unlinks an adopted fd. Only our own inode is removed, never a socket
    // another process has since created at the same path.
    try {
      const st = Deno.lstatSync(this.path);
      if (st.isSocket && st.ino === this.#ino) Deno.removeSync(this.path);
    } catch {
      // Already gone.
    }
    this.#closeWatcher();
    if (this.#poll !== null) clearInterval(this.#poll);
    for (const conn of this.#conns.keys()) conn.close();
    this.#conns.clear();
    this.#resolveClosed();
  }

  /** Watches the directory for the deletion of our socket (wireguard-go uses inotify). */
  #watch(dir: string): void {
    let watcher: Deno.FsWatcher;
    try {
      watcher = (this.#opts.watch ?? ((d) => Deno.watchFs(d, { recursive: false })))(dir);
    } catch (err) {
      this.#pollInstead(dir, err);
      return;
    }
    this.#watcher = watcher;
    const base = this.path.slice(this.path.lastIndexOf("/") + 1);
    (async () => {
      // Checked after the watch is in place, so a deletion cannot slip between.
      if (this.#gone()) return this.#removed();
      for await (const event of watcher) {
        if (this.#done) return;
        if (event.paths.some((p) => p.endsWith("/" + base) || p === base) && this.#gone()) {
          return this.#removed();
        }
      }
      // The watch ended without our socket going away (only close() ends it normally).
      this.#pollInstead(dir, new Error("the watch ended"));
    })().catch((err) => this.#pollInstead(dir, err));
  }

  /** Stops the directory watch, if any (it may have failed or ended already). */
  #closeWatcher(): void {
    try {
      this.#watcher?.close();
    } catch {
      // Already closed.
    }
    this.#watcher = null;
  }

  /** The socket file is no longer there (deleted or renamed). */
  #gone(): boolean {
    try {
      Deno.lstatSync(this.path);
      return false;
    } catch {
      return true;
    }
  }

  #removed(): void {
    if (this.#done) return;
    this.#log.verbose(`UAPI socket ${this.path} was removed`);
    this.#finish();
  }

  /** Without a working directory watch: look for the socket once a second. */
  #pollInstead(dir: string, err: unknown): void {
    if (this.#done || this.#poll !== null) return;
    // A watch that ended because the directory went away took the socket with it.
    if (this.#gone()) return this.#removed();
    this.#closeWatcher();
    this.#log.error(
      `Cannot watch ${dir} for the removal of ${this.path} (${
        err instanceof Error ? err.message : String(err)
      }); checking for it every ${POLL_MS / 1000} s instead`,
    );
    this.#poll = setInterval(() => {
      if (this.#gone()) this.#removed();
    }, POLL_MS);
  }

  async #acceptDeno(listener: Deno.UnixListener): Promise<void> {
    try {
      for await (const conn of listener) {
        if (this.#done) {
          conn.close();
          break;
        }
        this.#serve(denoStream(conn));
      }
    } catch (err) {
      if (!this.#done) this.#log.error(`UAPI listener failed: ${(err as Error).message}`);
    }
    this.#finish();
  }

  async #serve(stream: Stream): Promise<void> {
    if (this.#done) {
      stream.close();
      return;
    }
    if (this.#conns.size >= this.#maxConnections) {
      // Evict the connection that has been idle the longest, so a client
      // holding connections open cannot lock others out.
      const oldest = this.#conns.keys().next().value;
      if (oldest) {
        this.#conns.delete(oldest);
        oldest.close();
      }
    }
    this.#conns.set(stream, true);
    const out: string[] = [];
    const write = (text: string) => out.push(text);
    let conn: UapiSession;
    try {
      conn = this.#opts.open?.(write) ?? new UapiConnection(this.#opts.handle!, write, {
        logger: this.#log,
        maxRequestBytes: this.#opts.maxRequestBytes,
      });
    } catch (err) {
      this.#log.error(`UAPI: ${err instanceof Error ? err.message : String(err)}`);
      this.#conns.delete(stream);
      stream.close();
      return;
    }
    const buf = new Uint8Array(READ_BUFFER_BYTES);
    const outBuf = new Uint8Array(WRITE_PIECE_BYTES);
    const flush = async (): Promise<void> => {
      while (out.length > 0) await writeText(stream, out.shift()!, outBuf);
    };
    try {
      while (!conn.closed) {
        const n = await stream.read(buf);
        if (!this.#conns.has(stream)) return; // evicted or server closed
        // Mark as recently active.
        this.#conns.delete(stream);
        this.#conns.set(stream, true);
        // Each reply is written (and awaited) before more input is handled,
        // so a client that pipelines requests and never reads cannot make
        // replies queue up.
        if (n === null) {
          conn.end();
          await flush();
          break;
        }
        for (let off = 0; off < n && !conn.closed;) {
          off += conn.feed(buf.subarray(off, n));
          await flush();
        }
        await flush();
      }
    } catch {
      // Reset by peer or closed under us: nothing to answer.
    } finally {
      this.#conns.delete(stream);
      stream.close();
      try {
        conn.dispose?.();
      } catch {
        // The data plane is shutting down.
      }
    }
  }
}

/** Bytes read per call: `wg setconf` of 100 000 allowed IPs sends megabytes. */
const READ_BUFFER_BYTES = 64 * 1024;
/** The largest single write of a reply (a `get` of 130 000 allowed IPs is 3.6 MiB). */
const WRITE_PIECE_BYTES = 64 * 1024;
/** UTF-16 units per piece: each encodes to at most 3 bytes (a surrogate pair, 2 units, to 4). */
const WRITE_PIECE_UNITS = Math.floor(WRITE_PIECE_BYTES / 3);
const encoder = new TextEncoder();

/**
 * Writes `text` as UTF-8 in pieces of at most {@link WRITE_PIECE_BYTES}
 * through `scratch`, so a large reply is never encoded whole.
 */
async function writeText(stream: Stream, text: string, scratch: Uint8Array): Promise<void> {
  for (let off = 0; off < text.length;) {
    let end = Math.min(text.length, off + WRITE_PIECE_UNITS);
    // Never split a surrogate pair (each half alone would encode as U+FFFD).
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    const piece = off === 0 && end === text.length ? text : text.slice(off, end);
    const { written } = encoder.encodeInto(piece, scratch);
    // The stream may keep the buffer until the write settles; it is awaited.
    await stream.write(scratch.subarray(0, written));
    off = end;
  }
}

function socketPath(dir: string, iface: string): string {
  if (iface === "" || iface.includes("/") || iface.includes("\0")) {
    throw new TypeError(`Invalid interface name "${iface}"`);
  }
  return `${dir.replace(/\/+$/, "")}/${iface}.sock`;
}

/** Binds the socket with umask 077, so the file is `srwx------` (wireguard-go `UAPIOpen`). */
function listenUnix(path: string): Deno.UnixListener {
  const old = setUmask(0o077);
  try {
    const listener = Deno.listen({ transport: "unix", path });
    if (old === null) Deno.chmodSync(path, 0o700);
    return listener;
  } finally {
    if (old !== null) setUmask(old);
  }
}

/** True when something accepts connections at `path` (a live daemon). */
async function canConnect(path: string): Promise<boolean> {
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

function denoStream(conn: Deno.Conn): Stream {
  let closed = false;
  return {
    read: (buf) => conn.read(buf),
    async write(data) {
      for (let o = 0; o < data.length;) o += await conn.write(data.subarray(o));
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    },
  };
}

/** Adapts a node:net socket (used for an inherited fd) to the pull-style Stream. */
function nodeStream(socket: import("node:net").Socket): Stream {
  const chunks: Uint8Array[] = [];
  let ended = false;
  let failed: Error | null = null;
  let wake: (() => void) | null = null;
  function notify(): void {
    const w = wake;
    wake = null;
    w?.();
  }
  socket.on("data", (chunk: Uint8Array) => {
    chunks.push(chunk);
    // Back-pressure: stop reading until the server has consumed this chunk.
    socket.pause();
    notify();
  });
  socket.on("end", () => {
    ended = true;
    notify();
  });
  socket.on("error", (err: Error) => {
    failed = err;
    notify();
  });
  socket.on("close", () => {
    ended = true;
    notify();
  });
  return {
    async read(buf) {
      while (chunks.length === 0 && !ended && failed === null) {
        await new Promise<void>((resolve) => (wake = resolve));
      }
      if (chunks.length > 0) {
        const chunk = chunks[0];
        const n = Math.min(buf.length, chunk.length);
        buf.set(chunk.subarray(0, n));
        if (n === chunk.length) {
          chunks.shift();
          if (chunks.length === 0) socket.resume();
        } else {
          chunks[0] = chunk.subarray(n);
        }
        return n;
      }
      if (failed) throw failed;
      return null;
    },
    write(data) {
      return new Promise((resolve, reject) => {
        socket.write(data, (err) => (err ? reject(err) : resolve()));
      });
    },
    close() {
      socket.destroy();
    },
  };
}
