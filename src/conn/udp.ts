// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The Linux UDP edge: two FFI sockets, IPv4 and IPv6 (IPV6_V6ONLY) on one
 * port, as wireguard-go's `conn/bind_std.go` with its Linux sticky-socket and
 * batching parts (`sticky_linux.go`, `controlfns_linux.go`). Deno's own
 * `listenDatagram` has no fwmark, V6ONLY, buffer-size or batching options, and
 * FFI `recvmmsg`/`sendmmsg` is about twice as fast (deno-platform.md §2).
 *
 * Receiving: the owner waits for readability with a {@link Poller} on
 * {@link LinuxBind.fds} and calls {@link LinuxBind.drain}, which reads
 * batches of 64 with `recvmmsg(MSG_DONTWAIT)` until EAGAIN and hands each
 * datagram to the `receive` callback with one reused scratch {@link Endpoint}
 * per socket (the device clones what it keeps).
 *
 * Sending: {@link LinuxBind.send} copies into a batch slot; a full batch, or
 * {@link LinuxBind.flush}, goes out with one `sendmmsg` per family.
 *
 * Sticky sources: IP_PKTINFO / IPV6_RECVPKTINFO tell us which local address
 * and interface each datagram arrived on; that goes into
 * `endpoint.srcAddress`/`srcIfindex`, and a send to an endpoint that carries
 * it adds the same pktinfo as a control message, so replies leave from the
 * address the peer used (wireguard-go `getSrcFromControl`/`setSrcControl`).
 * If that address has vanished (EINVAL, EADDRNOTAVAIL, ENETUNREACH), the source is cleared
 * on the endpoint and the datagram retried once without it.
 *
 * Memory: every struct the kernel reads through a pointer (mmsghdr, iovec,
 * sockaddr, cmsg, packet data) is carved from one long-lived ArrayBuffer per
 * direction and socket, kept referenced by the socket object, because V8 may
 * free a buffer whose address we only stored in another struct
 * (deno-platform.md §1 pitfalls).
 */
import { type Bind, BindError, type ReceiveFn } from "./bind.ts";
import { Endpoint } from "./endpoint.ts";
import {
  addressOf,
  AF_INET,
  AF_INET6,
  closeQuietly,
  cstr,
  EADDRINUSE,
  EADDRNOTAVAIL,
  EAFNOSUPPORT,
  EAGAIN,
  EINTR,
  EINVAL,
  ENETUNREACH,
  ENODEV,
  errno,
  getsockoptInt,
  IP_PKTINFO,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPV6_PKTINFO,
  IPV6_RECVPKTINFO,
  IPV6_V6ONLY,
  type Libc,
  libc,
  MSG_DONTWAIT,
  MSG_TRUNC,
  SIZEOF_CMSGHDR,
  SIZEOF_IOVEC,
  SIZEOF_MMSGHDR,
  SIZEOF_SOCKADDR_IN,
  SIZEOF_SOCKADDR_IN6,
  SO_MARK,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_SOCKET,
  strerror,
} from "../sys/libc.ts";

/** Datagrams per recvmmsg/sendmmsg call (wireguard-go uses 128; 64 keeps arenas small). */
export const BATCH_SIZE = 64;
/** Largest datagram we receive or send: a full UDP payload. */
export const MAX_DATAGRAM_SIZE = 65535;
/** Socket buffer size requested, as wireguard-go's `socketBufferSize` (7 MiB). */
export const SOCKET_BUFFER_SIZE = 7 << 20;
/** Attempts to find a port free for both families when asked for port 0 (wireguard-go). */
const PORT_RETRIES = 100;

// Arena layout, per socket and direction: BATCH_SIZE of each, then the data slots.
const SLOT = 65536;
const NAME_SLOT = 32; // sockaddr_in6 (28) rounded up
const CTRL_SLOT = 64; // one pktinfo cmsg: CMSG_SPACE(20) = 40
const IOV_OFF = BATCH_SIZE * SIZEOF_MMSGHDR;
const NAME_OFF = IOV_OFF + BATCH_SIZE * SIZEOF_IOVEC;
const CTRL_OFF = NAME_OFF + BATCH_SIZE * NAME_SLOT;
const DATA_OFF = CTRL_OFF + BATCH_SIZE * CTRL_SLOT;
const ARENA_SIZE = DATA_OFF + BATCH_SIZE * SLOT;
// struct msghdr offsets inside struct mmsghdr (64-bit Linux).
const MH_NAME = 0;
const MH_NAMELEN = 8;
const MH_IOV = 16;
const MH_IOVLEN = 24;
const MH_CONTROL = 32;
const MH_CONTROLLEN = 40;
const MH_FLAGS = 48;
const MH_LEN = 56;
// CMSG_LEN/CMSG_SPACE of in_pktinfo (12 bytes) and in6_pktinfo (20 bytes).
const PKTINFO4_LEN = SIZEOF_CMSGHDR + 12;
const PKTINFO4_SPACE = SIZEOF_CMSGHDR + 16;
const PKTINFO6_LEN = SIZEOF_CMSGHDR + 20;
const PKTINFO6_SPACE = SIZEOF_CMSGHDR + 24;

/** One long-lived buffer of BATCH_SIZE messages with their names, control and data. */
class Arena {
  readonly buf = new ArrayBuffer(ARENA_SIZE);
  readonly u8 = new Uint8Array(this.buf);
  readonly u32 = new Uint32Array(this.buf);
  /** `u8` from message i on, for resuming a partly sent batch without allocating. */
  readonly fromMsg: Uint8Array[] = [];

  constructor() {
    const dv = new DataView(this.buf);
    const base = addressOf(this.buf);
    for (let i = 0; i < BATCH_SIZE; i++) {
      const m = i * SIZEOF_MMSGHDR, iov = IOV_OFF + i * SIZEOF_IOVEC;
      dv.setBigUint64(m + MH_NAME, base + BigInt(NAME_OFF + i * NAME_SLOT), true);
      dv.setBigUint64(m + MH_IOV, base + BigInt(iov), true);
      dv.setBigUint64(m + MH_IOVLEN, 1n, true);
      dv.setBigUint64(m + MH_CONTROL, base + BigInt(CTRL_OFF + i * CTRL_SLOT), true);
      dv.setBigUint64(iov, base + BigInt(DATA_OFF + i * SLOT), true);
      dv.setBigUint64(iov + 8, BigInt(SLOT), true);
      this.fromMsg.push(this.u8.subarray(m));
    }
  }
}

/** One socket of the bind (IPv4 or IPv6) with its arenas and scratch endpoint. */
class Sock {
  readonly family: 4 | 6;
  fd = -1;
  readonly rx = new Arena();
  readonly tx = new Arena();
  /** Endpoints of the queued datagrams, to clear a vanished sticky source. */
  readonly txEndpoints: (Endpoint | null)[] = new Array(BATCH_SIZE).fill(null);
  txCount = 0;
  /** True once recvmmsg said EAGAIN in the current drain. */
  drained = false;
  /** The scratch endpoint handed to the receive callback. */
  readonly from: Endpoint;
  readonly fromSrc: Uint8Array;
  #zoneId = 0;
  #zone = "";

  constructor(family: 4 | 6) {
    this.family = family;
    const n = family === 4 ? 4 : 16;
    this.from = new Endpoint(family, new Uint8Array(n), 0);
    this.fromSrc = new Uint8Array(n);
  }

  /** Zone text for a scope id, cached (link-local peers repeat the same one). */
  zoneFor(scopeId: number): string {
    if (scopeId === 0) return "";
    if (scopeId !== this.#zoneId) {
      this.#zoneId = scopeId;
      this.#zone = String(scopeId);
    }
    return this.#zone;
  }
}

/** UDP sockets for one device; see the module doc. */
export class LinuxBind implements Bind {
  #c: Libc;
  #v4: Sock | null = null;
  #v6: Sock | null = null;
  #port = 0;
  #mark = 0;
  #receive: ReceiveFn | null = null;
  /** Bumped by open/close so a drain notices a close from inside its callback. */
  #gen = 0;
  #sendErrors = 0;
  #recvErrors = 0;
  #lastSendErrno = 0;
  #lastRecvErrno = 0;
  #int = new Int32Array(1);
  #sa = new Uint8Array(SIZEOF_SOCKADDR_IN6);
  #saLen = new Uint32Array(1);

  constructor() {
    this.#c = libc();
  }

  /** The bound port while open, 0 when closed. */
  get port(): number {
    return this.#port;
  }

  /** The fwmark applied to the sockets (0 = none). */
  get mark(): number {
    return this.#mark;
  }

  /** True between a successful {@link LinuxBind.open} and {@link LinuxBind.close}. */
  get isOpen(): boolean {
    return this.#receive !== null;
  }

  /** Datagrams that could not be sent (dropped after queuing). */
  get sendErrors(): number {
    return this.#sendErrors;
  }

  /** Receive failures and truncated datagrams. */
  get recvErrors(): number {
    return this.#recvErrors;
  }

  /** errno of the last failed send, 0 if none yet. */
  get lastSendErrno(): number {
    return this.#lastSendErrno;
  }

  /** errno of the last failed receive, 0 if none yet. */
  get lastRecvErrno(): number {
    return this.#lastRecvErrno;
  }

  /** The open socket fds, for the poller (IPv4 first). */
  fds(): number[] {
    const out: number[] = [];
    if (this.#v4 !== null && this.#v4.fd >= 0) out.push(this.#v4.fd);
    if (this.#v6 !== null && this.#v6.fd >= 0) out.push(this.#v6.fd);
    return out;
  }

  /**
   * Binds IPv4 and IPv6 sockets on `port` (0: a free port, the same for both,
   * retrying up to 100 times as wireguard-go). Carries on IPv4-only (or
   * IPv6-only) when the other family is unavailable. Throws BindError(−98)
   * when the port is in use or the fwmark cannot be applied.
   */
  open(port: number, receive: ReceiveFn): number {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(`Invalid UDP port ${port}`);
    }
    this.close();
    let fd4 = -1, fd6 = -1, bound = port;
    try {
      for (let tries = 0;; tries++) {
        fd4 = this.#openSocket(4, port);
        if (fd4 < 0 && fd4 !== -EAFNOSUPPORT) throw bindError(4, port, -fd4);
        if (fd4 >= 0) bound = this.#localPort(fd4);
        fd6 = this.#openSocket(6, fd4 >= 0 ? bound : port);
        if (fd6 === -EADDRINUSE && port === 0 && fd4 >= 0 && tries < PORT_RETRIES) {
          closeQuietly(fd4);
          fd4 = -1;
          continue;
        }
        if (fd6 < 0 && fd6 !== -EAFNOSUPPORT && fd6 !== -EADDRNOTAVAIL) {
          throw bindError(6, bound, -fd6);
        }
        if (fd4 < 0 && fd6 < 0) throw bindError(4, port, EAFNOSUPPORT);
        if (fd4 < 0) bound = this.#localPort(fd6);
        break;
      }
    } catch (err) {
      closeQuietly(fd4);
      closeQuietly(fd6);
      throw err;
    }
    if (fd4 >= 0) (this.#v4 ??= new Sock(4)).fd = fd4;
    if (fd6 >= 0) (this.#v6 ??= new Sock(6)).fd = fd6;
    this.#port = bound;
    this.#receive = receive;
    this.#gen++;
    return bound;
  }

  /**
   * A configured socket bound to `port`, or −errno when socket() or bind()
   * failed. Throws BindError when the fwmark cannot be set.
   */
  #openSocket(family: 4 | 6, port: number): number {
    const c = this.#c;
    const fd = c.socket(
      family === 4 ? AF_INET : AF_INET6,
      SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
      0,
    );
    if (fd < 0) return -errno();
    // Large buffers absorb bursts while the main thread is busy with crypto; the FORCE
    // variants ignore net.core.{r,w}mem_max but need CAP_NET_ADMIN (controlfns_linux.go).
    if (!this.#setInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, SOCKET_BUFFER_SIZE)) {
      this.#setInt(fd, SOL_SOCKET, SO_RCVBUF, SOCKET_BUFFER_SIZE);
    }
    if (!this.#setInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, SOCKET_BUFFER_SIZE)) {
      this.#setInt(fd, SOL_SOCKET, SO_SNDBUF, SOCKET_BUFFER_SIZE);
    }
    if (family === 6) {
      // V6ONLY must be set before bind, so the IPv4 socket can share the port.
      if (!this.#setInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1)) return failSocket(fd);
      this.#setInt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    } else {
      this.#setInt(fd, IPPROTO_IP, IP_PKTINFO, 1);
    }
    if (this.#mark !== 0 && !this.#setInt(fd, SOL_SOCKET, SO_MARK, this.#mark | 0)) {
      const e = errno();
      closeQuietly(fd);
      throw markError(this.#mark, e);
    }
    const sa = this.#sa;
    sa.fill(0);
    const dv = new DataView(sa.buffer);
    dv.setUint16(0, family === 4 ? AF_INET : AF_INET6, true);
    dv.setUint16(2, port, false);
    if (c.bind(fd, sa, family === 4 ? SIZEOF_SOCKADDR_IN : SIZEOF_SOCKADDR_IN6) < 0) {
      return failSocket(fd);
    }
    return fd;
  }

  #setInt(fd: number, level: number, name: number, value: number): boolean {
    this.#int[0] = value;
    return this.#c.setsockopt(fd, level, name, this.#int, 4) === 0;
  }

  #localPort(fd: number): number {
    this.#saLen[0] = SIZEOF_SOCKADDR_IN6;
    if (this.#c.getsockname(fd, this.#sa, this.#saLen) < 0) return 0;
    return (this.#sa[2] << 8) | this.#sa[3];
  }

  /** Closes both sockets; queued datagrams are dropped. Idempotent. */
  close(): void {
    for (const s of [this.#v4, this.#v6]) {
      if (s === null) continue;
      closeQuietly(s.fd);
      s.fd = -1;
      s.txCount = 0;
      s.txEndpoints.fill(null);
    }
    this.#port = 0;
    this.#receive = null;
    this.#gen++;
  }

  /**
   * Sets SO_MARK on the open sockets and remembers it for later opens
   * (wireguard-go `BindSetMark`: remembered even when applying fails). Throws
   * BindError(−98) when the kernel refuses (EPERM without CAP_NET_ADMIN).
   */
  setMark(mark: number): void {
    if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) {
      throw new RangeError(`Invalid fwmark ${mark}`);
    }
    const old = this.#mark;
    this.#mark = mark;
    if (mark === old) return;
    for (const s of [this.#v4, this.#v6]) {
      if (s === null || s.fd < 0) continue;
      if (!this.#setInt(s.fd, SOL_SOCKET, SO_MARK, mark | 0)) throw markError(mark, errno());
    }
  }

  /**
   * Reads what is waiting on both sockets, a batch at a time, alternating
   * between them, until both say EAGAIN or `max` datagrams were delivered.
   * Returns the number delivered. Stops at once if the callback closes the bind.
   */
  drain(max = 1024): number {
    const v4 = this.#v4, v6 = this.#v6, gen = this.#gen;
    if (v4 !== null) v4.drained = v4.fd < 0;
    if (v6 !== null) v6.drained = v6.fd < 0;
    let total = 0;
    while (total < max) {
      let busy = false;
      if (v4 !== null && !v4.drained) {
        const n = this.#receiveBatch(v4, max - total, gen);
        if (n < 0) return total;
        total += n;
        busy = true;
      }
      if (v6 !== null && !v6.drained && total < max) {
        const n = this.#receiveBatch(v6, max - total, gen);
        if (n < 0) return total;
        total += n;
        busy = true;
      }
      if (!busy) break;
    }
    return total;
  }

  /** One recvmmsg on `s`; returns datagrams delivered, or −1 if the bind was closed meanwhile. */
  #receiveBatch(s: Sock, room: number, gen: number): number {
    const a = s.rx, u8 = a.u8, u32 = a.u32;
    const vlen = room < BATCH_SIZE ? room : BATCH_SIZE;
    const nameLen = s.family === 4 ? SIZEOF_SOCKADDR_IN : SIZEOF_SOCKADDR_IN6;
    for (let i = 0; i < vlen; i++) {
      const m = (i * SIZEOF_MMSGHDR) >> 2;
      u32[m + (MH_NAMELEN >> 2)] = nameLen;
      u32[m + (MH_CONTROLLEN >> 2)] = CTRL_SLOT;
    }
    const n = this.#c.recvmmsg(s.fd, u8, vlen, MSG_DONTWAIT, null);
    if (n < 0) {
      const e = errno();
      if (e !== EAGAIN && e !== EINTR) {
        this.#recvErrors++;
        this.#lastRecvErrno = e;
      }
      if (e !== EINTR) s.drained = true;
      return 0;
    }
    if (n < vlen) s.drained = true;
    const receive = this.#receive!;
    const ep = s.from;
    let delivered = 0;
    for (let i = 0; i < n; i++) {
      const m = (i * SIZEOF_MMSGHDR) >> 2;
      if (u32[m + (MH_FLAGS >> 2)] & MSG_TRUNC) {
        this.#recvErrors++;
        continue;
      }
      const len = u32[m + (MH_LEN >> 2)];
      readName(u8, NAME_OFF + i * NAME_SLOT, s);
      readPktinfo(u8, CTRL_OFF + i * CTRL_SLOT, u32[m + (MH_CONTROLLEN >> 2)], s);
      const off = DATA_OFF + i * SLOT;
      delivered++;
      receive(u8.subarray(off, off + len), ep);
      if (this.#gen !== gen) return -1;
    }
    return delivered;
  }

  /**
   * Queues one datagram (copied) to `ep`, flushing when the batch is full.
   * IPv4-mapped IPv6 endpoints go out on the IPv4 socket. Returns false when
   * the bind is closed, has no socket for that family, or `data` is too big.
   */
  send(data: Uint8Array, ep: Endpoint): boolean {
    let mapped = false;
    let s: Sock | null;
    if (ep.family === 4) {
      s = this.#v4;
    } else if (isV4Mapped(ep.address)) {
      mapped = true;
      s = this.#v4;
    } else {
      s = this.#v6;
    }
    if (s === null || s.fd < 0 || data.length > MAX_DATAGRAM_SIZE) return false;
    const a = s.tx, u8 = a.u8, u32 = a.u32, i = s.txCount;
    const m = (i * SIZEOF_MMSGHDR) >> 2;
    const name = NAME_OFF + i * NAME_SLOT;
    // sockaddr_in / sockaddr_in6: family (host order), port (network order), address.
    const addr = ep.address;
    u8[name + 2] = ep.port >> 8;
    u8[name + 3] = ep.port & 0xff;
    if (s.family === 4) {
      u8[name] = AF_INET;
      u8[name + 1] = 0;
      const from = mapped ? 12 : 0;
      for (let k = 0; k < 4; k++) u8[name + 4 + k] = addr[from + k];
      u32[m + (MH_NAMELEN >> 2)] = SIZEOF_SOCKADDR_IN;
    } else {
      u8[name] = AF_INET6;
      u8[name + 1] = 0;
      u32[(name + 4) >> 2] = 0; // flowinfo
      for (let k = 0; k < 16; k++) u8[name + 8 + k] = addr[k];
      // A zone given by name ("fe80::1%eth0") has scopeId 0 until resolved here.
      u32[(name + 24) >> 2] = ep.scopeId !== 0 || ep.zone === "" ? ep.scopeId : zoneIndex(ep.zone);
      u32[m + (MH_NAMELEN >> 2)] = SIZEOF_SOCKADDR_IN6;
    }
    const off = DATA_OFF + i * SLOT;
    u8.set(data, off);
    u32[(IOV_OFF + i * SIZEOF_IOVEC + 8) >> 2] = data.length;
    u32[m + (MH_CONTROLLEN >> 2)] = writePktinfo(u8, u32, CTRL_OFF + i * CTRL_SLOT, s.family, ep);
    s.txEndpoints[i] = ep;
    s.txCount = i + 1;
    if (s.txCount === BATCH_SIZE) this.#flushSock(s);
    return true;
  }

  /** Sends everything queued by {@link LinuxBind.send}. */
  flush(): void {
    if (this.#v4 !== null && this.#v4.txCount > 0) this.#flushSock(this.#v4);
    if (this.#v6 !== null && this.#v6.txCount > 0) this.#flushSock(this.#v6);
  }

  #flushSock(s: Sock): void {
    const count = s.txCount, a = s.tx, u32 = a.u32, eps = s.txEndpoints;
    s.txCount = 0;
    let start = 0;
    while (start < count && s.fd >= 0) {
      const n = this.#c.sendmmsg(s.fd, a.fromMsg[start], count - start, 0);
      if (n > 0) {
        start += n;
        continue;
      }
      const e = n < 0 ? errno() : EAGAIN;
      if (e === EINTR) continue;
      this.#lastSendErrno = e;
      if (e === EAGAIN) {
        // Socket buffer full even at 7 MiB: drop the rest rather than block the loop.
        this.#sendErrors += count - start;
        break;
      }
      const cl = ((start * SIZEOF_MMSGHDR) >> 2) + (MH_CONTROLLEN >> 2);
      if (
        (e === EINVAL || e === EADDRNOTAVAIL || e === ENETUNREACH || e === ENODEV) &&
        u32[cl] !== 0
      ) {
        // The sticky source vanished (address removed, interface gone): forget it and
        // retry this datagram once from whatever address routing picks. IPv6 says EINVAL
        // (ip6_datagram_send_ctl); IPv4 says ENETUNREACH on current kernels
        // (ip_route_output_key_hash_rcu: saddr not local), EINVAL on old ones.
        eps[start]?.clearSrc();
        u32[cl] = 0;
        continue;
      }
      this.#sendErrors++;
      start++;
    }
    if (start < count && s.fd < 0) this.#sendErrors += count - start;
    eps.fill(null, 0, count);
  }
}

/** Closes `fd` and returns −errno of the call that just failed. */
function failSocket(fd: number): number {
  const e = errno();
  closeQuietly(fd);
  return -e;
}

function goErrorText(e: number): string {
  const text = strerror(e);
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function bindError(family: 4 | 6, port: number, e: number): BindError {
  // Every bind failure is −EADDRINUSE over UAPI, as wireguard-go's IpcErrorPortInUse;
  // the text follows Go's "listen udp4 :51820: bind: address already in use".
  return new BindError(-EADDRINUSE, `listen udp${family} :${port}: bind: ${goErrorText(e)}`);
}

function markError(mark: number, e: number): BindError {
  return new BindError(
    -EADDRINUSE,
    `failed to update fwmark 0x${mark.toString(16)}: ${goErrorText(e)}`,
  );
}

/** The interface index for an IPv6 zone name, 0 if unknown (never cached: links come and go). */
function zoneIndex(zone: string): number {
  return libc().if_nametoindex(cstr(zone));
}

/** The little-endian (host order) int32 at `o`. */
function le32(u8: Uint8Array, o: number): number {
  return u8[o] | (u8[o + 1] << 8) | (u8[o + 2] << 16) | (u8[o + 3] << 24);
}

function isV4Mapped(a: Uint8Array): boolean {
  if (a.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (a[i] !== 0) return false;
  return a[10] === 0xff && a[11] === 0xff;
}

/** Fills `s.from` (address, port, scope) from the sockaddr at `o`. */
function readName(u8: Uint8Array, o: number, s: Sock): void {
  const ep = s.from, addr = ep.address;
  ep.port = (u8[o + 2] << 8) | u8[o + 3];
  if (s.family === 4) {
    for (let k = 0; k < 4; k++) addr[k] = u8[o + 4 + k];
  } else {
    for (let k = 0; k < 16; k++) addr[k] = u8[o + 8 + k];
    const scope = le32(u8, o + 24) >>> 0;
    ep.scopeId = scope;
    ep.zone = s.zoneFor(scope);
  }
}

/**
 * Sets or clears `s.from`'s sticky source from the control messages at `o`
 * (`len` bytes): the local address the datagram was addressed to (IPv4
 * `ipi_spec_dst`, IPv6 `ipi6_addr`) and the interface it arrived on.
 */
function readPktinfo(u8: Uint8Array, o: number, len: number, s: Sock): void {
  const ep = s.from;
  let p = o;
  const end = o + Math.min(len, CTRL_SLOT);
  while (p + SIZEOF_CMSGHDR <= end) {
    // cmsg_len is a size_t; a sane one fits in its low 32 bits.
    const clen = le32(u8, p);
    if (clen < SIZEOF_CMSGHDR || p + clen > end) break;
    const level = le32(u8, p + 8), type = le32(u8, p + 12);
    const d = p + SIZEOF_CMSGHDR;
    if (s.family === 4 && level === IPPROTO_IP && type === IP_PKTINFO && clen >= PKTINFO4_LEN) {
      const src = s.fromSrc;
      for (let k = 0; k < 4; k++) src[k] = u8[d + 4 + k];
      ep.srcAddress = src;
      ep.srcIfindex = le32(u8, d);
      return;
    }
    if (s.family === 6 && level === IPPROTO_IPV6 && type === IPV6_PKTINFO && clen >= PKTINFO6_LEN) {
      const src = s.fromSrc;
      for (let k = 0; k < 16; k++) src[k] = u8[d + k];
      ep.srcAddress = src;
      ep.srcIfindex = le32(u8, d + 16);
      return;
    }
    p += (clen + 7) & ~7;
  }
  ep.srcAddress = null;
  ep.srcIfindex = 0;
}

/**
 * Writes an IP_PKTINFO/IPV6_PKTINFO control message for `ep`'s sticky source
 * at `o`, returning msg_controllen (0 when there is none to send).
 */
function writePktinfo(
  u8: Uint8Array,
  u32: Uint32Array,
  o: number,
  family: 4 | 6,
  ep: Endpoint,
): number {
  const src = ep.srcAddress;
  if (src === null) return 0;
  const w = o >> 2;
  if (family === 4) {
    let from: number;
    if (src.length === 4) from = 0;
    else if (isV4Mapped(src)) from = 12;
    else return 0;
    u32[w] = PKTINFO4_LEN;
    u32[w + 1] = 0;
    u32[w + 2] = IPPROTO_IP;
    u32[w + 3] = IP_PKTINFO;
    // in_pktinfo { ipi_ifindex, ipi_spec_dst (our source), ipi_addr (ignored on send) }
    u32[w + 4] = ep.srcIfindex;
    for (let k = 0; k < 4; k++) u8[o + 20 + k] = src[from + k];
    u32[w + 6] = 0;
    u32[w + 7] = 0;
    return PKTINFO4_SPACE;
  }
  if (src.length !== 16) return 0;
  u32[w] = PKTINFO6_LEN;
  u32[w + 1] = 0;
  u32[w + 2] = IPPROTO_IPV6;
  u32[w + 3] = IPV6_PKTINFO;
  // in6_pktinfo { ipi6_addr (our source), ipi6_ifindex }
  for (let k = 0; k < 16; k++) u8[o + 16 + k] = src[k];
  u32[w + 8] = ep.srcIfindex;
  u32[w + 9] = 0;
  return PKTINFO6_SPACE;
}

/** SO_MARK of a socket (for tests and diagnostics); −1 on error. */
export function socketMark(fd: number): number {
  return getsockoptInt(fd, SOL_SOCKET, SO_MARK);
}
