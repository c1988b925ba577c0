// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * TCP port forwarding across a {@link Tunnel}, as `ssh -L` and `ssh -R` do:
 * {@link forwardLocalTcp} takes the connections of a local `Deno.Listener`
 * and connects each through the tunnel; {@link forwardRemoteTcp} takes the
 * connections of a {@link TunnelListener} (a port of the tunnel's stack)
 * and connects each to a local address. {@link relayTcp} (src/tunnel/relay.ts,
 * the same relay as the proxies') copies both ways with back-pressure and
 * half-close.
 *
 * A failed connect (refused, reset, timeout) closes the accepted connection
 * and is logged at verbose, like every per-connection event: the other side
 * decides them. A forward holds at most `maxConnections` connections; one
 * more is closed at once. Only the listener failing is an error.
 */
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import type { TunnelConn } from "./conn.ts";
import type { Tunnel, TunnelListener } from "./tunnel.ts";
import { closeQuietly, relayTcp } from "./relay.ts";

export { type RelayCounts, relayTcp } from "./relay.ts";

/** Options of a forward. */
export interface ForwardOptions {
  /** Where per-connection events (verbose) and listener failures (error) go. */
  logger?: Logger;
  /** Connections open at once (default {@link DEFAULT_MAX_CONNECTIONS}). */
  maxConnections?: number;
  /** Gives up a connect after this many ms (default {@link DEFAULT_CONNECT_TIMEOUT_MS}). */
  connectTimeoutMs?: number;
}

/** Connections a forward holds at once unless told otherwise. */
export const DEFAULT_MAX_CONNECTIONS = 256;
/** Connect timeout of a forward unless told otherwise, ms (as the SOCKS server's). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** A running forward. */
export interface Forwarder {
  /** Connections (TCP) or sessions (UDP) open now. */
  readonly active: number;
  /** Stops listening and closes every connection or session. Idempotent. */
  close(): void;
  /** Settles once the forward has stopped and every connection has ended. */
  readonly done: Promise<void>;
}

/** `host:port`, with an IPv6 host in brackets. */
function hostPort(a: { hostname: string; port: number }): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

/** Bookkeeping shared by both directions: the open connections and the limit. */
class ConnectionSet {
  readonly #open = new Set<{ close(): void }>();
  readonly #relays = new Set<Promise<void>>();
  readonly #max: number;
  #stop!: () => void;
  /** Settles when {@link closeAll} is called: pending connects give up then. */
  readonly stopped = new Promise<null>((r) => this.#stop = () => r(null));
  constructor(max: number) {
    this.#max = max;
  }
  /**
   * `connecting`, or null once the forward is closing; a connection that
   * completes after that is closed.
   */
  async unlessStopped<C extends { close(): void }>(connecting: Promise<C>): Promise<C | null> {
    const c = await Promise.race([connecting, this.stopped]);
    if (c === null) connecting.then(closeQuietly, () => {});
    return c;
  }
  get size(): number {
    return this.#relays.size;
  }
  get full(): boolean {
    return this.#relays.size >= this.#max;
  }
  /** Runs `work` as one connection; `closers` are closed by {@link closeAll}. */
  run(closers: { close(): void }[], work: () => Promise<void>): void {
    for (const c of closers) this.#open.add(c);
    const p = work().catch(() => {}).finally(() => {
      for (const c of closers) this.#open.delete(c);
      this.#relays.delete(p);
    });
    this.#relays.add(p);
  }
  /** Adds a closer for a connection already run (the far side, once connected). */
  track(c: { close(): void }): void {
    this.#open.add(c);
  }
  untrack(c: { close(): void }): void {
    this.#open.delete(c);
  }
  closeAll(): void {
    this.#stop();
    for (const c of [...this.#open]) closeQuietly(c);
  }
  async settled(): Promise<void> {
    while (this.#relays.size > 0) await Promise.allSettled([...this.#relays]);
  }
}

/** Accepts with `accept` until it throws; calls `serve` for each connection. */
function acceptLoop<C extends { close(): void }>(
  accept: () => Promise<C>,
  set: ConnectionSet,
  serve: (c: C) => Promise<void>,
  onRefused: (c: C) => void,
  onEnd: (err: unknown) => void,
): Promise<void> {
  return (async () => {
    for (;;) {
      let c: C;
      try {
        c = await accept();
      } catch (err) {
        onEnd(err);
        return;
      }
      if (set.full) {
        onRefused(c);
        closeQuietly(c);
        continue;
      }
      set.run([c], () => serve(c));
    }
  })();
}

/**
 * `ssh -L`: each connection to `listener` is connected through `tunnel` to
 * `target` (an IP address inside the tunnel, or a name its DNS resolves)
 * and relayed. Stops when the
 * listener closes or {@link Forwarder.close} is called.
 */
export function forwardLocalTcp(
  tunnel: Tunnel,
  listener: Deno.Listener,
  target: { hostname: string; port: number },
  opts: ForwardOptions = {},
): Forwarder {
  const log = opts.logger ?? silentLogger;
  const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const set = new ConnectionSet(opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
  const addr = listener.addr as Deno.NetAddr;
  const name = `forward ${hostPort(addr)} -> ${hostPort(target)}`;
  let closing = false;
  const serve = async (local: Deno.Conn) => {
    const from = hostPort(local.remoteAddr as Deno.NetAddr);
    let t: TunnelConn | null;
    try {
      t = await set.unlessStopped(tunnel.connect({ ...target, timeoutMs }));
    } catch (err) {
      log.verbose(`${name}: connection from ${from}: ${(err as Error).message}`);
      closeQuietly(local);
      return;
    }
    if (t === null) {
      closeQuietly(local);
      return;
    }
    set.track(t);
    const n = await relayTcp(local, t);
    set.untrack(t);
    log.verbose(
      `${name}: connection from ${from} closed (${n.toTunnel} bytes sent, ${n.fromTunnel} received)`,
    );
  };
  const loop = acceptLoop(
    () => listener.accept(),
    set,
    serve,
    (c) =>
      log.verbose(
        `${name}: too many connections, closing ${hostPort(c.remoteAddr as Deno.NetAddr)}`,
      ),
    (err) => {
      if (!closing) log.error(`${name}: accept failed: ${(err as Error).message}`);
    },
  );
  return {
    get active() {
      return set.size;
    },
    close() {
      if (closing) return;
      closing = true;
      closeQuietly(listener);
      set.closeAll();
    },
    done: loop.then(() => set.settled()),
  };
}

/** Connects to a local address, giving up after `timeoutMs`. */
async function connectLocal(
  target: { hostname: string; port: number },
  timeoutMs: number,
): Promise<Deno.TcpConn> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connecting = Deno.connect({ ...target, transport: "tcp" });
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("connect timed out")), timeoutMs);
  });
  try {
    return await Promise.race([connecting, timeout]);
  } catch (err) {
    // A connect that completes after the timeout is closed, not leaked.
    connecting.then(closeQuietly, () => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `ssh -R`: each connection to `listener` (a port of the tunnel's stack) is
 * connected to the local `target` (an address or a name the OS resolves) and
 * relayed. A refused local connect resets the tunnel's connection, so the
 * client there sees "connection reset".
 */
export function forwardRemoteTcp(
  listener: TunnelListener,
  target: { hostname: string; port: number },
  opts: ForwardOptions = {},
): Forwarder {
  const log = opts.logger ?? silentLogger;
  const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const set = new ConnectionSet(opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
  const name = `forward tunnel ${hostPort(listener.addr)} -> ${hostPort(target)}`;
  let closing = false;
  const serve = async (t: TunnelConn) => {
    const from = hostPort(t.remoteAddr);
    let local: Deno.Conn | null;
    try {
      local = await set.unlessStopped(connectLocal(target, timeoutMs));
    } catch (err) {
      log.verbose(`${name}: connection from ${from}: ${(err as Error).message}`);
      t.abort();
      t.close();
      return;
    }
    if (local === null) {
      t.close();
      return;
    }
    set.track(local);
    const n = await relayTcp(local, t);
    set.untrack(local);
    log.verbose(
      `${name}: connection from ${from} closed (${n.fromTunnel} bytes sent, ${n.toTunnel} received)`,
    );
  };
  const loop = acceptLoop(
    () => listener.accept(),
    set,
    serve,
    (t) => log.verbose(`${name}: too many connections, closing ${hostPort(t.remoteAddr)}`),
    (err) => {
      if (!closing) log.error(`${name}: accept failed: ${(err as Error).message}`);
    },
  );
  return {
    get active() {
      return set.size;
    },
    close() {
      if (closing) return;
      closing = true;
      listener.close();
      set.closeAll();
    },
    done: loop.then(() => set.settled()),
  };
}
