// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * UDP port forwarding across a {@link Tunnel}, on the stack's UDP sockets
 * ({@link UdpSocket}) and Deno's (`Deno.listenDatagram`, so
 * `--unstable-net`). UDP has no connections, so each client address gets a
 * session ({@link UdpSessions}: ended after an idle time, bounded in number)
 * with a socket of its own on the far side; answers from the target come
 * back through that socket to the client that owns it. Datagrams from any
 * other source to a session's socket are dropped, as a connected socket
 * would.
 *
 * {@link forwardLocalUdp} (`-L …/udp`): datagrams to a local socket go out
 * of an ephemeral port of the tunnel's stack to an address in the tunnel.
 * {@link forwardRemoteUdp} (`-R …/udp`): datagrams to a port of the stack
 * go out of an ephemeral local socket to a local address.
 *
 * A datagram that cannot be sent (larger than the tunnel's MTU allows, no
 * tunnel address of the target's family, a local send error) is dropped,
 * counted in `dropped` and logged at verbose.
 */
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../ip.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { UdpSocket } from "../netstack/udp.ts";
import type { Forwarder } from "./forward.ts";
import { closeQuietly } from "./relay.ts";
import type { Tunnel } from "./tunnel.ts";
import { UdpSessions } from "./udp_sessions.ts";

/** Options of a UDP forward. */
export interface UdpForwardOptions {
  /** Where session events and drops (verbose) and socket failures (error) go. */
  logger?: Logger;
  /** Client addresses served at once (default {@link DEFAULT_MAX_SESSIONS}). */
  maxSessions?: number;
  /** A session ends after this many ms without a datagram (default {@link DEFAULT_UDP_IDLE_MS}). */
  idleTimeoutMs?: number;
}

/** Sessions of a UDP forward unless told otherwise. */
export const DEFAULT_MAX_SESSIONS = 256;
/** Idle time after which a UDP session ends unless told otherwise, ms. */
export const DEFAULT_UDP_IDLE_MS = 60_000;

/** A running UDP forward: a {@link Forwarder} with its drop counter. */
export interface UdpForwarder extends Forwarder {
  /** Datagrams that could not be sent on. */
  readonly dropped: number;
}

/** The largest UDP payload. */
const MAX_DATAGRAM = 65535;

function hostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** 4 or 16 bytes for an IP literal (brackets allowed), or null. */
function ipBytes(text: string): Uint8Array | null {
  const host = text.replace(/^\[(.*)\]$/, "$1");
  return parseIPv4(host) ?? parseIPv6(host);
}

function formatBytes(a: Uint8Array): string {
  return a.length === 4 ? formatIPv4(a) : formatIPv6(a);
}

/** Whether the sender in `from` is `address` (4 or 16 bytes). */
function sameAddress(from: UdpSocket["from"], address: Uint8Array): boolean {
  if ((from.family === 4) !== (address.length === 4)) return false;
  for (let i = 0; i < address.length; i++) if (from.address[i] !== address[i]) return false;
  return true;
}

interface LocalSession {
  /** The stack's socket this client's datagrams leave from. */
  sock: UdpSocket;
  client: Deno.NetAddr;
}

/**
 * `-L [BIND:]PORT:HOST:PORT/udp`: datagrams to `socket` are sent through
 * `tunnel` to `target`, whose hostname must be an IP address; answers from
 * `target` go back to the client that sent to it. Stops when `socket`
 * closes or {@link Forwarder.close} is called.
 */
export function forwardLocalUdp(
  tunnel: Tunnel,
  socket: Deno.DatagramConn,
  target: { hostname: string; port: number },
  opts: UdpForwardOptions = {},
): UdpForwarder {
  const address = ipBytes(target.hostname);
  if (!address) throw new TypeError(`Not an IP address: ${target.hostname}`);
  const log = opts.logger ?? silentLogger;
  const addr = socket.addr as Deno.NetAddr;
  const name = `forward ${hostPort(addr.hostname, addr.port)}/udp -> ${
    hostPort(formatBytes(address), target.port)
  }`;
  let dropped = 0;
  let closing = false;
  const sessions = new UdpSessions<LocalSession>({
    clock: tunnel.stack.clock,
    idleMs: opts.idleTimeoutMs ?? DEFAULT_UDP_IDLE_MS,
    max: opts.maxSessions ?? DEFAULT_MAX_SESSIONS,
    onEnd: (key, s, why) => {
      s.sock.close();
      log.verbose(`${name}: session of ${key} ended (${why})`);
    },
  });
  const buf = new Uint8Array(MAX_DATAGRAM);
  /** Sends what the stack has queued for one session back to its client. */
  const drain = (key: string, s: LocalSession) => {
    let len: number;
    while ((len = s.sock.receive(buf)) >= 0) {
      if (s.sock.from.port !== target.port || !sameAddress(s.sock.from, address)) continue;
      sessions.touch(key);
      socket.send(buf.slice(0, Math.min(len, buf.length)), s.client).catch((err) => {
        dropped++;
        log.verbose(`${name}: answer to ${key}: ${(err as Error).message}`);
      });
    }
  };
  const loop = (async () => {
    for (;;) {
      let data: Uint8Array, from: Deno.Addr;
      try {
        [data, from] = await socket.receive();
      } catch (err) {
        if (!closing) log.error(`${name}: receive failed: ${(err as Error).message}`);
        break;
      }
      const client = from as Deno.NetAddr;
      const key = hostPort(client.hostname, client.port);
      let s = sessions.touch(key);
      if (!s) {
        let sock: UdpSocket;
        try {
          sock = tunnel.stack.udp(0);
        } catch (err) {
          dropped++;
          log.verbose(`${name}: no port for ${key}: ${(err as Error).message}`);
          continue;
        }
        const session: LocalSession = { sock, client };
        sock.onReadable = () => drain(key, session);
        sock.onError = (hard) => {
          if (hard) log.verbose(`${name}: ${key}: the target answered port unreachable`);
        };
        sessions.add(key, session);
        log.verbose(`${name}: session of ${key} from tunnel port ${sock.port}`);
        s = session;
      }
      if (!s.sock.sendTo(data, address, target.port)) {
        dropped++;
        log.verbose(`${name}: dropped ${data.length} bytes from ${key} (MTU or address family)`);
      }
    }
    sessions.close();
  })();
  return {
    get active() {
      return sessions.size;
    },
    get dropped() {
      return dropped;
    },
    close() {
      if (closing) return;
      closing = true;
      closeQuietly(socket);
      sessions.close();
    },
    done: loop,
  };
}

interface RemoteSession {
  /** The local socket this tunnel client's datagrams leave from. */
  local: Deno.DatagramConn;
  /** The tunnel client: 4 or 16 bytes, and its port. */
  address: Uint8Array;
  port: number;
  reading: Promise<void>;
}

/**
 * `-R PORT:HOST:PORT/udp`: datagrams to `port` of the tunnel's stack are
 * sent from a local socket to `target` (an IP address); answers from
 * `target` go back through the tunnel to the client that sent to it.
 * Throws when the stack's port is taken.
 */
export function forwardRemoteUdp(
  tunnel: Tunnel,
  port: number,
  target: { hostname: string; port: number },
  opts: UdpForwardOptions = {},
): UdpForwarder {
  const targetBytes = ipBytes(target.hostname);
  if (!targetBytes) throw new TypeError(`Not an IP address: ${target.hostname}`);
  const targetHost = formatBytes(targetBytes);
  const to: Deno.NetAddr = { transport: "udp", hostname: targetHost, port: target.port };
  // Loopback targets are reached from loopback; others from any address of the family.
  const bindHost = targetHost === "::1"
    ? "::1"
    : targetBytes.length === 16
    ? "::"
    : targetBytes[0] === 127
    ? "127.0.0.1"
    : "0.0.0.0";
  const log = opts.logger ?? silentLogger;
  const sock = tunnel.stack.udp(port);
  const name = `forward tunnel ${hostPort(tunnel.config.addresses[0] ?? "", port)}/udp -> ${
    hostPort(targetHost, target.port)
  }`;
  let dropped = 0;
  let closing = false;
  let stopped!: () => void;
  const stop = new Promise<void>((r) => stopped = r);
  const readers = new Set<Promise<void>>();
  const sessions = new UdpSessions<RemoteSession>({
    clock: tunnel.stack.clock,
    idleMs: opts.idleTimeoutMs ?? DEFAULT_UDP_IDLE_MS,
    max: opts.maxSessions ?? DEFAULT_MAX_SESSIONS,
    onEnd: (key, s, why) => {
      closeQuietly(s.local);
      log.verbose(`${name}: session of ${key} ended (${why})`);
    },
  });
  /** Carries the target's answers on one session's local socket back into the tunnel. */
  const read = async (key: string, s: RemoteSession) => {
    for (;;) {
      let data: Uint8Array, from: Deno.Addr;
      try {
        [data, from] = await s.local.receive();
      } catch {
        return; // the session ended
      }
      const f = from as Deno.NetAddr;
      const fb = ipBytes(f.hostname);
      if (f.port !== target.port || !fb || formatBytes(fb) !== targetHost) continue;
      sessions.touch(key);
      if (!sock.sendTo(data, s.address, s.port)) {
        dropped++;
        log.verbose(`${name}: dropped ${data.length} bytes to ${key} (MTU or address family)`);
      }
    }
  };
  const buf = new Uint8Array(MAX_DATAGRAM);
  sock.onReadable = () => {
    let len: number;
    while ((len = sock.receive(buf)) >= 0) {
      const from = sock.from;
      const address = from.address.slice(0, from.family === 4 ? 4 : 16);
      const key = hostPort(formatBytes(address), from.port);
      let s = sessions.touch(key);
      if (!s) {
        let local: Deno.DatagramConn;
        try {
          local = Deno.listenDatagram({ transport: "udp", hostname: bindHost, port: 0 });
        } catch (err) {
          dropped++;
          log.verbose(`${name}: no local socket for ${key}: ${(err as Error).message}`);
          continue;
        }
        const session: RemoteSession = { local, address, port: from.port, reading: stop };
        const reading = read(key, session).finally(() => readers.delete(reading));
        session.reading = reading;
        readers.add(reading);
        sessions.add(key, session);
        const la = local.addr as Deno.NetAddr;
        log.verbose(`${name}: session of ${key} from ${hostPort(la.hostname, la.port)}`);
        s = session;
      }
      s.local.send(buf.slice(0, Math.min(len, buf.length)), to).catch((err) => {
        dropped++;
        log.verbose(`${name}: datagram from ${key}: ${(err as Error).message}`);
      });
    }
  };
  return {
    get active() {
      return sessions.size;
    },
    get dropped() {
      return dropped;
    },
    close() {
      if (closing) return;
      closing = true;
      sock.close();
      sessions.close();
      stopped();
    },
    done: stop.then(async () => {
      while (readers.size > 0) await Promise.allSettled([...readers]);
    }),
  };
}
