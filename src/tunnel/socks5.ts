// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * A SOCKS5 server (RFC 1928) whose CONNECTs go through a {@link Tunnel}:
 * no authentication (method 0x00), or with {@link Socks5Options.auth}
 * username/password only (method 0x02, RFC 1929); a client that offers
 * neither gets 0xFF. The negotiation up to the request must finish within
 * {@link Socks5Options.negotiationTimeoutMs}. CONNECT to
 * an IPv4 or IPv6 address or a domain name (ATYP 3, `socks5h`), which is
 * resolved through the tunnel ({@link Tunnel.resolve}), and UDP ASSOCIATE
 * (src/tunnel/socks5_udp.ts); BIND is 0x07 "command not supported". A
 * connection the peer resets is 0x05 "connection refused", one that times
 * out 0x04 "host unreachable", as is an ICMP unreachable and a name that
 * does not resolve (or is refused, such as `localhost`); no tunnel address
 * of the requested family is 0x03 "network unreachable". UDP ASSOCIATE
 * without `Deno.listenDatagram` (no `--unstable-net`) is 0x07, a relay
 * socket that cannot be opened 0x01.
 *
 * {@link readSocksRequest} and {@link socksReply} are pure; {@link serveSocks5}
 * runs the accept loop on a `Deno.Listener`.
 */
import type { Tunnel } from "./tunnel.ts";
import { formatAddress, type TunnelConn, TunnelError } from "./conn.ts";
import { DnsError } from "./dns.ts";
import { udpAssociate } from "./socks5_udp.ts";
import { type ProxyCredentials, readSocksUserPass, socksUserPassReply } from "./proxy_auth.ts";
import { acceptClients, closeQuietly, relayTcp, writeFull } from "./relay.ts";

export const SOCKS_VERSION = 5;
export const REP_SUCCEEDED = 0x00;
export const REP_GENERAL_FAILURE = 0x01;
export const REP_NETWORK_UNREACHABLE = 0x03;
export const REP_HOST_UNREACHABLE = 0x04;
export const REP_CONNECTION_REFUSED = 0x05;
export const REP_COMMAND_NOT_SUPPORTED = 0x07;
export const REP_ADDRESS_TYPE_NOT_SUPPORTED = 0x08;

const METHOD_NO_AUTH = 0x00;
const METHOD_USERPASS = 0x02;
const METHOD_NONE_ACCEPTABLE = 0xff;

const CMD_CONNECT = 1;
const CMD_UDP_ASSOCIATE = 3;
const ATYP_IPV4 = 1;
const ATYP_DOMAIN = 3;
const ATYP_IPV6 = 4;

/** A parsed request: `address` is 4 or 16 bytes, or null for a name in `name`. */
export interface SocksRequest {
  cmd: number;
  atyp: number;
  address: Uint8Array | null;
  name: string;
  port: number;
  /** Bytes the request took. */
  length: number;
}

/**
 * Parses a request at the start of `b`; null when more bytes are needed.
 * Throws on a version other than 5 or an unknown address type.
 */
export function readSocksRequest(b: Uint8Array): SocksRequest | null {
  if (b.length < 5) return null;
  if (b[0] !== SOCKS_VERSION) throw new Error(`SOCKS version ${b[0]}`);
  const atyp = b[3];
  let addrLen: number;
  let at = 4;
  if (atyp === ATYP_IPV4) addrLen = 4;
  else if (atyp === ATYP_IPV6) addrLen = 16;
  else if (atyp === ATYP_DOMAIN) {
    addrLen = b[4];
    at = 5;
  } else throw new Error(`SOCKS address type ${atyp}`);
  const length = at + addrLen + 2;
  if (b.length < length) return null;
  const raw = b.slice(at, at + addrLen);
  return {
    cmd: b[1],
    atyp,
    address: atyp === ATYP_DOMAIN ? null : raw,
    name: atyp === ATYP_DOMAIN ? new TextDecoder().decode(raw) : "",
    port: (b[at + addrLen] << 8) | b[at + addrLen + 1],
    length,
  };
}

/** A reply with code `rep` and the bound address (4 or 16 bytes; none: 0.0.0.0:0). */
export function socksReply(rep: number, bound: Uint8Array | null = null, port = 0): Uint8Array {
  const a = bound ?? new Uint8Array(4);
  const out = new Uint8Array(6 + a.length);
  out.set([SOCKS_VERSION, rep, 0, a.length === 4 ? ATYP_IPV4 : ATYP_IPV6]);
  out.set(a, 4);
  out[4 + a.length] = port >> 8;
  out[5 + a.length] = port & 0xff;
  return out;
}

/** The reply code for a failed connect. */
export function replyForError(err: unknown): number {
  if (err instanceof DnsError) return REP_HOST_UNREACHABLE;
  if (err instanceof TunnelError) {
    if (err.code === "refused" || err.code === "reset") return REP_CONNECTION_REFUSED;
    if (err.code === "timeout" || err.code === "unreachable") return REP_HOST_UNREACHABLE;
    return REP_GENERAL_FAILURE;
  }
  if (err instanceof Error && /No IPv[46] address/.test(err.message)) {
    return REP_NETWORK_UNREACHABLE;
  }
  return REP_GENERAL_FAILURE;
}

/** Options for {@link serveSocks5}. */
export interface Socks5Options {
  /** Connect timeout through the tunnel, ms (default 30 000). */
  connectTimeoutMs?: number;
  /** Called with each failure to report (bad client, connect error). */
  onError?: (message: string) => void;
  /** When given, clients must authenticate with one of these (RFC 1929); else no auth. */
  auth?: ProxyCredentials;
  /** Time for the greeting, authentication and request, ms (default 10 000). */
  negotiationTimeoutMs?: number;
  /**
   * Clients served at once (default 1024, about 18 MiB of idle connections);
   * more are closed at once, as a full server's backlog would refuse them.
   */
  maxClients?: number;
}

/** Bytes from a Deno.Conn, buffered so that the request can be read whole. */
class Reader {
  buf = new Uint8Array(0);
  readonly #conn: Deno.Conn;
  readonly #chunk = new Uint8Array(1024);
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  /** Reads more; false at end of stream. */
  async more(): Promise<boolean> {
    const n = await this.#conn.read(this.#chunk);
    if (n === null) return false;
    const next = new Uint8Array(this.buf.length + n);
    next.set(this.buf);
    next.set(this.#chunk.subarray(0, n), this.buf.length);
    this.buf = next;
    return true;
  }
  /** Waits for `n` bytes; false if the stream ends first. */
  async need(n: number): Promise<boolean> {
    while (this.buf.length < n) if (!await this.more()) return false;
    return true;
  }
  take(n: number): Uint8Array {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}

/** Serves one client; resolves when both directions are done. */
export async function handleSocksClient(
  conn: Deno.Conn,
  tunnel: Tunnel,
  opts: Socks5Options = {},
): Promise<void> {
  const r = new Reader(conn);
  let tconn: TunnelConn | null = null;
  // A client that stalls before its request is complete is closed: its read fails.
  const stall = setTimeout(() => {
    closeQuietly(conn);
  }, opts.negotiationTimeoutMs ?? 10_000);
  try {
    if (!await negotiateMethod(r, conn, opts.auth)) return;
    let req: SocksRequest | null;
    while ((req = readSocksRequest(r.buf)) === null) if (!await r.more()) return;
    r.take(req.length);
    clearTimeout(stall);
    if (req.cmd === CMD_UDP_ASSOCIATE) {
      if (!("listenDatagram" in Deno)) {
        opts.onError?.("UDP ASSOCIATE needs Deno.listenDatagram (run with --unstable-net)");
        await writeFull(conn, socksReply(REP_COMMAND_NOT_SUPPORTED));
        return;
      }
      const s = await udpAssociate(conn, tunnel, req.port, {
        reply: (rep, bound, port) => writeFull(conn, socksReply(rep, bound, port)),
        onError: opts.onError,
      });
      opts.onError?.(
        `UDP ASSOCIATE ended: ${s.up} up, ${s.down} down, dropped ${s.dropped} ` +
          `+ ${s.foreign} foreign + ${s.fragments} fragments`,
      );
      return;
    }
    if (req.cmd !== CMD_CONNECT) {
      await writeFull(conn, socksReply(REP_COMMAND_NOT_SUPPORTED));
      return;
    }
    const hostname = req.address ? formatAddress(req.address) : req.name;
    try {
      tconn = await tunnel.connect({
        hostname,
        port: req.port,
        timeoutMs: opts.connectTimeoutMs ?? 30_000,
      });
    } catch (err) {
      opts.onError?.(`CONNECT ${hostname}:${req.port}: ${(err as Error).message}`);
      await writeFull(conn, socksReply(replyForError(err)));
      return;
    }
    await writeFull(conn, socksReply(REP_SUCCEEDED, tconn.localAddress, tconn.localAddr.port));
    await relayTcp(conn, tconn, r.buf);
  } catch (err) {
    opts.onError?.(`SOCKS client: ${(err as Error).message}`);
    (tconn as TunnelConn | null)?.close();
  } finally {
    clearTimeout(stall);
    closeQuietly(conn);
  }
}

/**
 * The greeting (VER NMETHODS METHODS) and, with `auth`, the RFC 1929
 * sub-negotiation; true when the client may send its request. Without
 * `auth` only method 0 is accepted, with it only method 2.
 */
async function negotiateMethod(
  r: Reader,
  conn: Deno.Conn,
  auth: ProxyCredentials | undefined,
): Promise<boolean> {
  if (!await r.need(2)) return false;
  if (r.buf[0] !== SOCKS_VERSION) throw new Error(`SOCKS version ${r.buf[0]}`);
  const nMethods = r.buf[1];
  if (!await r.need(2 + nMethods)) return false;
  const methods = r.take(2 + nMethods).subarray(2);
  const method = auth ? METHOD_USERPASS : METHOD_NO_AUTH;
  if (!methods.includes(method)) {
    await writeFull(conn, new Uint8Array([SOCKS_VERSION, METHOD_NONE_ACCEPTABLE]));
    return false;
  }
  await writeFull(conn, new Uint8Array([SOCKS_VERSION, method]));
  if (!auth) return true;
  let up;
  while ((up = readSocksUserPass(r.buf)) === null) if (!await r.more()) return false;
  r.take(up.length);
  const ok = auth.check(up.user, up.password);
  await writeFull(conn, socksUserPassReply(ok));
  if (!ok) throw new Error("SOCKS authentication failed");
  return true;
}

/** Accepts clients on `listener` until it is closed; each is served by {@link handleSocksClient}. */
export async function serveSocks5(
  listener: Deno.Listener,
  tunnel: Tunnel,
  opts: Socks5Options = {},
): Promise<void> {
  const max = opts.maxClients ?? 1024;
  await acceptClients(listener, (conn) => handleSocksClient(conn, tunnel, opts), {
    max,
    refuse(conn) {
      opts.onError?.(`SOCKS5 client: more than ${max} clients, closed`);
      closeQuietly(conn);
    },
  });
}
