// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The Linux UDP edge: two FFI sockets, IPv4 and IPv6 (IPV6_V6ONLY) on one
 * port, as wireguard-go's `conn/bind_std.go` with its Linux sticky-socket and
 * batching parts (`sticky_linux.go`, `controlfns_linux.go`). Deno's own
 * `listenDatagram` has no fwmark, V6ONLY, buffer-size or batching options, and
 * FFI `recvmmsg`/`sendmmsg` is about twice as fast (measured on Deno 2.9.6).
 *
 * Receiving: the owner waits for readability with an {@link EventLoop} on
 * {@link LinuxBind.fds} and calls {@link LinuxBind.drain}, which reads
 * batches of 64 with `recvmmsg(MSG_DONTWAIT)` until EAGAIN and hands each
 * datagram to the `receive` callback with one reused scratch {@link Endpoint}
 * per socket (the device clones what it keeps).
 *
 * Sending: {@link LinuxBind.send} copies into a batch slot; a full batch, or
 * {@link LinuxBind.flush}, goes out with one `sendmmsg` per family.
 *
 * UDP GSO on send (`UDP_SEGMENT`, Linux ≥ 4.18; wireguard-go
 * `coalesceMessages`): at flush, a run of queued datagrams to the same
 * destination (address, port, sticky source) whose sizes are all equal, the
 * last one possibly shorter, becomes ONE message whose iovecs are the
 * datagrams' slots and whose control buffer carries a `UDP_SEGMENT` cmsg with
 * that size (after the pktinfo cmsg, when there is one). The kernel builds a
 * single skb and cuts it back into datagrams as late as possible (on the NIC,
 * or in software at the device), so one pass through the stack carries up to
 * 64 datagrams (`UDP_MAX_SEGMENTS`). Limits: 64 segments and a total that fits
 * one IP packet (65535 − 20 − 8 for IPv4, 65535 − 8 for IPv6, wireguard-go's
 * `maxIPv4PayloadLen`/`maxIPv6PayloadLen`; more is EMSGSIZE).
 * The kernel refuses a GSO message (`udp_send_skb`) with EIO when the route
 * goes through xfrm (IPsec) or, before Linux 6.11, when the device cannot
 * checksum (wireguard-go `errShouldDisableUDPGSO`); with EMSGSIZE (EINVAL
 * before 6.x) when a segment plus headers exceeds the route MTU, where a plain
 * send would fragment; with EINVAL when the socket has checksums off. Then the
 * socket turns GSO off for good (until the next {@link LinuxBind.open}) and
 * the rest of the batch is laid out again datagram by datagram and resent, so
 * nothing is lost. EINVAL on a message with a sticky source is ambiguous (a
 * vanished IPv6 source says EINVAL too, and addresses vanish routinely, e.g.
 * expiring temporary addresses): that run alone is resent datagram by
 * datagram first; if they go out, GSO was the problem; if the first fails,
 * the source is cleared as below and GSO stays on. Support is probed at open
 * with `getsockopt(SOL_UDP, UDP_SEGMENT)` as wireguard-go does.
 *
 * UDP GRO on receive (`UDP_GRO`): turned on at open when the kernel accepts
 * it and is at least 5.12 (wireguard-go leaves it off before that). The
 * kernel may then hand us several
 * datagrams of one flow as a single message, with a `UDP_GRO` cmsg giving the
 * segment size; {@link LinuxBind.drain} cuts the payload back into datagrams
 * and calls `receive` once per datagram with a view into the slot (no copy).
 * Every receive slot is 64 KiB so that a coalesced message (at most 64 KiB)
 * never truncates.
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
 * (the FFI pitfalls listed in src/sys/libc.ts). Each arena holds 64 slots of 64 KiB, so a
 * socket costs about 2 × 4 MiB and an open bind (IPv4 + IPv6) about 16 MiB,
 * allocated once at the first open and reused by later ones.
 */
import { type Bind, BindError, type ReceiveFn, type SendErrorFn } from "./bind.ts";
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
  EIO,
  EMSGSIZE,
  ENETUNREACH,
  ENODEV,
  errno,
  getsockoptInt,
  IP_PKTINFO,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPPROTO_UDP,
  IPV6_PKTINFO,
  IPV6_RECVPKTINFO,
  IPV6_V6ONLY,
  type Libc,
  libc,
  MSG_CTRUNC,
  MSG_DONTWAIT,
  MSG_TRUNC,
  O_CLOEXEC,
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
/** Most datagrams in one GSO message: the kernel's `UDP_MAX_SEGMENTS`. */
export const GSO_MAX_SEGMENTS = 64;
/** Largest datagram we receive or send: a full UDP payload. */
export const MAX_DATAGRAM_SIZE = 65535;
/** Socket buffer size requested, as wireguard-go's `socketBufferSize` (7 MiB). */
export const SOCKET_BUFFER_SIZE = 7 << 20;
/** Attempts to find a port free for both families when asked for port 0 (wireguard-go). */
const PORT_RETRIES = 100;

// Socket options of the UDP level (linux/udp.h); SOL_UDP is IPPROTO_UDP.
const SOL_UDP = IPPROTO_UDP;
const UDP_SEGMENT = 103;
const UDP_GRO = 104;
/** Largest GSO message payload (udp_sendmsg → EMSGSIZE beyond one IP packet). */
const MAX_GSO_PAYLOAD4 = 65535 - 20 - 8;
const MAX_GSO_PAYLOAD6 = 65535 - 8;

// Arena layout, per socket and direction: BATCH_SIZE of each, then the data slots.
// Every slot is a full 64 KiB: a GRO-coalesced message is at most 64 KiB, and a
// truncated one would lose every datagram in it.
const SLOT = 65536;
const NAME_SLOT = 32; // sockaddr_in6 (28) rounded up
// Control: CMSG_SPACE(in6_pktinfo) = 40 plus CMSG_SPACE(u16 UDP_SEGMENT) = 24 on
// send, or CMSG_SPACE(int UDP_GRO) = 24 on receive: 64 at most, in either order.
const CTRL_SLOT = 64;
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
// CMSG_LEN/CMSG_SPACE of the u16 UDP_SEGMENT size (the kernel wants exactly CMSG_LEN(2)).
const SEGMENT_LEN = SIZEOF_CMSGHDR + 2;
const SEGMENT_SPACE = SIZEOF_CMSGHDR + 8;
const TWO_32 = 2 ** 32;

/** One long-lived buffer of BATCH_SIZE messages with their names, control and data. */
class Arena {
  readonly buf = new ArrayBuffer(ARENA_SIZE);
  readonly u8 = new Uint8Array(this.buf);
  readonly u32 = new Uint32Array(this.buf);
  /** `u8` from message i on, for resuming a partly sent batch without allocating. */
  readonly fromMsg: Uint8Array[] = [];
  /**
   * Addresses of slot i's sockaddr, iovec and control buffer as low/high
   * 32-bit halves, so a flush can point any message at any slot with plain
   * u32 stores (no BigInt per packet).
   */
  readonly nameLo = new Uint32Array(BATCH_SIZE);
  readonly nameHi = new Uint32Array(BATCH_SIZE);
  readonly iovLo = new Uint32Array(BATCH_SIZE);
  readonly iovHi = new Uint32Array(BATCH_SIZE);
  readonly ctrlLo = new Uint32Array(BATCH_SIZE);
  readonly ctrlHi = new Uint32Array(BATCH_SIZE);

  constructor() {
    const dv = new DataView(this.buf);
    const base = addressOf(this.buf);
    // User-space addresses are below 2^57, so they are exact as doubles.
    const baseNum = Number(base);
    for (let i = 0; i < BATCH_SIZE; i++) {
      const name = baseNum + NAME_OFF + i * NAME_SLOT;
      const iovAt = baseNum + IOV_OFF + i * SIZEOF_IOVEC;
      const ctrl = baseNum + CTRL_OFF + i * CTRL_SLOT;
      this.nameLo[i] = name % TWO_32;
      this.nameHi[i] = Math.floor(name / TWO_32);
      this.iovLo[i] = iovAt % TWO_32;
      this.iovHi[i] = Math.floor(iovAt / TWO_32);
      this.ctrlLo[i] = ctrl % TWO_32;
      this.ctrlHi[i] = Math.floor(ctrl / TWO_32);
    }
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
  /** Who sent each queued datagram (told when it fails later). */
  readonly txOwners: (object | null)[] = new Array(BATCH_SIZE).fill(null);
  /** Bytes of pktinfo control written for each queued datagram (0, 32 or 40). */
  readonly txCtrlLen = new Uint8Array(BATCH_SIZE);
  /** For each laid-out message: its first queued datagram and how many it carries. */
  readonly outFirst = new Uint8Array(BATCH_SIZE);
  readonly outCount = new Uint8Array(BATCH_SIZE);
  txCount = 0;
  /** UDP_SEGMENT usable: probed at open, turned off when the kernel refuses a GSO send. */
  gso = false;
  /** UDP_GRO turned on at open: received messages may carry several datagrams. */
  gro = false;
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

/** Options for {@link LinuxBind}. */
export interface LinuxBindOptions {
  /** Use UDP GSO on send when the kernel supports it (default true). */
  gso?: boolean;
  /** Turn on UDP GRO on receive when the kernel supports it (default true). */
  gro?: boolean;
}

/** UDP sockets for one device; see the module doc. */
export class LinuxBind implements Bind {
  #c: Libc;
  #gsoAllowed: boolean;
  #groAllowed: boolean;
  #gsoMessages = 0;
  #gsoSegments = 0;
  #gsoFallbacks = 0;
  #groMessages = 0;
  #groSegments = 0;
  #v4: Sock | null = null;
  #v6: Sock | null = null;
  #port = 0;
  #mark = 0;
  #receive: ReceiveFn | null = null;
  /** Bumped by open/close so a drain notices a close from inside its callback. */
  #gen = 0;
  #sendErrors = 0;
  #onSendError: SendErrorFn | null = null;
  #recvErrors = 0;
  #lastSendErrno = 0;
  #lastRecvErrno = 0;
  #int = new Int32Array(1);
  #sa = new Uint8Array(SIZEOF_SOCKADDR_IN6);
  #saLen = new Uint32Array(1);

  constructor(options: LinuxBindOptions = {}) {
    this.#c = libc();
    this.#gsoAllowed = options.gso ?? true;
    this.#groAllowed = options.gro ?? true;
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

  /**
   * Whether the open socket of `family` currently sends with UDP GSO (false
   * when closed, unsupported, disabled by option, or turned off after the
   * kernel refused a GSO send).
   */
  gsoEnabled(family: 4 | 6): boolean {
    const s = family === 4 ? this.#v4 : this.#v6;
    return s !== null && s.fd >= 0 && s.gso;
  }

  /** Whether the open socket of `family` has UDP GRO on. */
  groEnabled(family: 4 | 6): boolean {
    const s = family === 4 ? this.#v4 : this.#v6;
    return s !== null && s.fd >= 0 && s.gro;
  }

  /** Messages sent carrying two or more datagrams with a UDP_SEGMENT cmsg. */
  get gsoMessages(): number {
    return this.#gsoMessages;
  }

  /** Datagrams sent inside those GSO messages (coalesced on send). */
  get gsoSegments(): number {
    return this.#gsoSegments;
  }

  /** Times a socket turned GSO off because the kernel refused a GSO send (EIO, EMSGSIZE, EINVAL). */
  get gsoFallbacks(): number {
    return this.#gsoFallbacks;
  }

  /** Received messages that carried several datagrams (UDP GRO) and were split. */
  get groMessages(): number {
    return this.#groMessages;
  }

  /** Datagrams delivered out of those GRO messages. */
  get groSegments(): number {
    return this.#groSegments;
  }

  /** The open socket fds, for the event loop (IPv4 first). */
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
  open(port: number, receive: ReceiveFn, onSendError?: SendErrorFn): number {
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
    if (fd4 >= 0) this.#probeOffloads(this.#v4 ??= new Sock(4), fd4);
    if (fd6 >= 0) this.#probeOffloads(this.#v6 ??= new Sock(6), fd6);
    this.#port = bound;
    this.#receive = receive;
    this.#onSendError = onSendError ?? null;
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

  /**
   * Adopts `fd` into `s` and decides its offloads, as wireguard-go's
   * `supportsUDPOffload`: GSO when `getsockopt(UDP_SEGMENT)` is understood,
   * GRO when `setsockopt(UDP_GRO, 1)` is accepted on Linux ≥ 5.12.
   */
  #probeOffloads(s: Sock, fd: number): void {
    s.fd = fd;
    s.gso = this.#gsoAllowed && getsockoptInt(fd, SOL_UDP, UDP_SEGMENT) >= 0;
    s.gro = this.#groAllowed && kernelAtLeast(5, 12) && this.#setInt(fd, SOL_UDP, UDP_GRO, 1);
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
      s.gso = false;
      s.gro = false;
      s.txCount = 0;
      s.txEndpoints.fill(null);
      s.txOwners.fill(null);
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
   * `max` is checked between batches of up to 64 messages; with GRO one
   * message may hold up to 64 datagrams, so one call can deliver more.
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
    const nameOff = NAME_OFF, flagsWord = MH_FLAGS >> 2, ctrlLenWord = MH_CONTROLLEN >> 2;
    let delivered = 0;
    for (let i = 0; i < n; i++) {
      const m = (i * SIZEOF_MMSGHDR) >> 2;
      const flags = u32[m + flagsWord];
      // A truncated control buffer could have lost the UDP_GRO size, and then a
      // coalesced message would be delivered as one bogus datagram: drop it instead.
      if ((flags & MSG_TRUNC) !== 0 || ((flags & MSG_CTRUNC) !== 0 && s.gro)) {
        this.#recvErrors++;
        continue;
      }
      const len = u32[m + (MH_LEN >> 2)];
      const ctrl = CTRL_OFF + i * CTRL_SLOT, ctrlLen = u32[m + ctrlLenWord];
      const name = nameOff + i * NAME_SLOT;
      readName(u8, name, s);
      const seg = readControl(u8, ctrl, ctrlLen, s);
      const off = DATA_OFF + i * SLOT;
      if (seg === 0 || seg >= len) {
        delivered++;
        receive(u8.subarray(off, off + len), ep);
        if (this.#gen !== gen) return -1;
        continue;
      }
      // UDP GRO: `len` bytes are ⌈len / seg⌉ datagrams of `seg` bytes, the last
      // possibly shorter (udp_gro_receive_segment only appends a shorter one last).
      this.#groMessages++;
      for (let p = 0; p < len; p += seg) {
        if (p !== 0) {
          // The callback may have changed the scratch endpoint; every datagram gets the same.
          readName(u8, name, s);
          readControl(u8, ctrl, ctrlLen, s);
        }
        const end = p + seg < len ? p + seg : len;
        this.#groSegments++;
        delivered++;
        receive(u8.subarray(off + p, off + end), ep);
        if (this.#gen !== gen) return -1;
      }
    }
    return delivered;
  }

  /**
   * Queues one datagram (copied) to `ep`, flushing when the batch is full.
   * IPv4-mapped IPv6 endpoints go out on the IPv4 socket. Returns false when
   * the bind is closed, has no socket for that family, or `data` is too big.
   */
  send(data: Uint8Array, ep: Endpoint, owner?: object): boolean {
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
      // sin_zero: kept zero so that flush can compare whole names.
      u32[(name + 8) >> 2] = 0;
      u32[(name + 12) >> 2] = 0;
    } else {
      u8[name] = AF_INET6;
      u8[name + 1] = 0;
      u32[(name + 4) >> 2] = 0; // flowinfo
      for (let k = 0; k < 16; k++) u8[name + 8 + k] = addr[k];
      // A zone given by name ("fe80::1%eth0") has scopeId 0 until resolved here.
      u32[(name + 24) >> 2] = ep.scopeId !== 0 || ep.zone === "" ? ep.scopeId : zoneIndex(ep.zone);
    }
    const off = DATA_OFF + i * SLOT;
    u8.set(data, off);
    u32[(IOV_OFF + i * SIZEOF_IOVEC + 8) >> 2] = data.length;
    s.txCtrlLen[i] = writePktinfo(u8, u32, CTRL_OFF + i * CTRL_SLOT, s.family, ep);
    s.txEndpoints[i] = ep;
    s.txOwners[i] = owner ?? null;
    s.txCount = i + 1;
    if (s.txCount === BATCH_SIZE) this.#flushSock(s);
    return true;
  }

  /** Sends everything queued by {@link LinuxBind.send}. */
  flush(): void {
    if (this.#v4 !== null && this.#v4.txCount > 0) this.#flushSock(this.#v4);
    if (this.#v6 !== null && this.#v6.txCount > 0) this.#flushSock(this.#v6);
  }

  /**
   * Sends the queued datagrams of `s`, GSO-merged by {@link layoutBatch}, and
   * recovers from the refusals described in the module doc.
   */
  #flushSock(s: Sock): void {
    const count = s.txCount, a = s.tx, outFirst = s.outFirst, outCount = s.outCount;
    s.txCount = 0;
    let msgs = layoutBatch(s, 0, count, 0), start = 0;
    /** First datagram of a GSO run being resent one by one to learn who refused it. */
    let suspect = -1;
    while (start < msgs && s.fd >= 0) {
      const n = this.#c.sendmmsg(s.fd, a.fromMsg[start], msgs - start, 0);
      if (n > 0) {
        let gsoRefused = false;
        for (let j = start; j < start + n; j++) {
          const k = outCount[j];
          if (k > 1) {
            this.#gsoMessages++;
            this.#gsoSegments += k;
          }
          if (outFirst[j] === suspect) gsoRefused = true;
        }
        start += n;
        if (gsoRefused) {
          // The run went out datagram by datagram with the same pktinfo: GSO was refused.
          suspect = -1;
          this.#disableGso(s);
          if (start < msgs) {
            msgs = layoutBatch(s, outFirst[start], count, 0);
            start = 0;
          }
        }
        continue;
      }
      const e = n < 0 ? errno() : EAGAIN;
      if (e === EINTR) continue;
      this.#lastSendErrno = e;
      const first = outFirst[start], k = outCount[start];
      if (e === EAGAIN) {
        // Socket buffer full even at 7 MiB: drop the rest rather than block the loop.
        this.#sendErrors += count - first;
        this.#failed(s, first, count);
        break;
      }
      if (k > 1 && (e === EIO || e === EINVAL || e === EMSGSIZE)) {
        if (e === EINVAL && s.txCtrlLen[first] !== 0) {
          // Ambiguous: a vanished IPv6 sticky source says EINVAL too. Resend this run
          // datagram by datagram, keeping GSO for now: if they go out, GSO was refused;
          // if the first fails with EINVAL, the source is gone (handled below).
          suspect = first;
          msgs = layoutBatch(s, first, count, first + k);
          start = 0;
          continue;
        }
        // The kernel will not segment this: EIO for xfrm routes (and, before 6.11,
        // devices without checksum offload); EINVAL (EMSGSIZE on recent kernels, 6.18
        // here) when a segment plus headers exceeds the route MTU, where a plain send
        // would fragment (udp_send_skb). Stop using GSO on this socket and send the
        // rest datagram by datagram (wireguard-go: errShouldDisableUDPGSO, EIO only).
        this.#disableGso(s);
        msgs = layoutBatch(s, first, count, 0);
        start = 0;
        continue;
      }
      if (
        (e === EINVAL || e === EADDRNOTAVAIL || e === ENETUNREACH || e === ENODEV) &&
        s.txCtrlLen[first] !== 0
      ) {
        // The sticky source vanished (address removed, interface gone): forget it and
        // retry from whatever address routing picks, for every queued datagram that
        // uses it. IPv6 says EINVAL (ip6_datagram_send_ctl); IPv4 says ENETUNREACH on
        // current kernels (ip_route_output_key_hash_rcu: saddr not local), EINVAL on old ones.
        if (first === suspect) suspect = -1;
        clearSource(s, first, count);
        msgs = layoutBatch(s, first, count, 0);
        start = 0;
        continue;
      }
      this.#sendErrors += k;
      this.#failed(s, first, first + k);
      start++;
    }
    if (start < msgs && s.fd < 0) {
      this.#sendErrors += count - outFirst[start];
      this.#failed(s, outFirst[start], count);
    }
    s.txEndpoints.fill(null, 0, count);
    s.txOwners.fill(null, 0, count);
  }

  /** Tells the owners of queued datagrams [from, to) that they were not sent. */
  #failed(s: Sock, from: number, to: number): void {
    const cb = this.#onSendError;
    if (cb === null) return;
    const u32 = s.tx.u32;
    for (let i = from; i < to; i++) {
      const owner = s.txOwners[i];
      if (owner !== null) cb(owner, u32[(IOV_OFF + i * SIZEOF_IOVEC + 8) >> 2]);
    }
  }

  #disableGso(s: Sock): void {
    if (!s.gso) return;
    s.gso = false;
    this.#gsoFallbacks++;
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
 * Reads the control messages at `o` (`len` bytes) of a received datagram:
 * sets or clears `s.from`'s sticky source, the local address the datagram was
 * addressed to (IPv4 `ipi_spec_dst`, IPv6 `ipi6_addr`) and the interface it
 * arrived on, and returns the UDP_GRO segment size (0 when the message holds
 * one datagram). The kernel writes UDP_GRO as an int (`udp_cmsg_recv`); sizes
 * fit in its low 16 bits, which is all wireguard-go reads (`getGSOSize`).
 */
function readControl(u8: Uint8Array, o: number, len: number, s: Sock): number {
  const ep = s.from;
  let p = o, seg = 0, found = false;
  const end = o + Math.min(len, CTRL_SLOT);
  while (p + SIZEOF_CMSGHDR <= end) {
    // cmsg_len is a size_t; a sane one fits in its low 32 bits.
    const clen = le32(u8, p);
    if (clen < SIZEOF_CMSGHDR || p + clen > end) break;
    const level = le32(u8, p + 8), type = le32(u8, p + 12);
    const d = p + SIZEOF_CMSGHDR;
    if (level === SOL_UDP && type === UDP_GRO && clen >= SEGMENT_LEN) {
      seg = u8[d] | (u8[d + 1] << 8);
    } else if (
      s.family === 4 && level === IPPROTO_IP && type === IP_PKTINFO && clen >= PKTINFO4_LEN
    ) {
      const src = s.fromSrc;
      for (let k = 0; k < 4; k++) src[k] = u8[d + 4 + k];
      ep.srcAddress = src;
      ep.srcIfindex = le32(u8, d);
      found = true;
    } else if (
      s.family === 6 && level === IPPROTO_IPV6 && type === IPV6_PKTINFO && clen >= PKTINFO6_LEN
    ) {
      const src = s.fromSrc;
      for (let k = 0; k < 16; k++) src[k] = u8[d + k];
      ep.srcAddress = src;
      ep.srcIfindex = le32(u8, d + 16);
      found = true;
    }
    p += (clen + 7) & ~7;
  }
  if (!found) {
    ep.srcAddress = null;
    ep.srcIfindex = 0;
  }
  return seg;
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

/**
 * Lays out queued datagrams `from` … `count − 1` of `s` as messages 0, 1, …
 * of its tx arena and returns how many messages that made. With GSO on, a
 * run of datagrams to the same destination and sticky source, all of one
 * size except a shorter last one, shares one message: its iovecs are the
 * run's consecutive slots and a UDP_SEGMENT cmsg follows the pktinfo one.
 * Datagrams before `singlesUntil` get a message each. Records in
 * `s.outFirst`/`s.outCount` which datagrams each message carries.
 */
function layoutBatch(s: Sock, from: number, count: number, singlesUntil: number): number {
  const a = s.tx, u8 = a.u8, u32 = a.u32, ctrlLen = s.txCtrlLen;
  const v4 = s.family === 4;
  const nameLen = v4 ? SIZEOF_SOCKADDR_IN : SIZEOF_SOCKADDR_IN6;
  const maxTotal = v4 ? MAX_GSO_PAYLOAD4 : MAX_GSO_PAYLOAD6;
  const lenWord = (IOV_OFF + 8) >> 2, iovWords = SIZEOF_IOVEC >> 2;
  let j = 0;
  for (let i = from; i < count; j++) {
    const size = u32[lenWord + i * iovWords];
    let k = 1;
    if (s.gso && size > 0 && i >= singlesUntil) {
      let total = size;
      while (i + k < count && k < GSO_MAX_SEGMENTS) {
        const next = u32[lenWord + (i + k) * iovWords];
        if (next === 0 || next > size || total + next > maxTotal) break;
        if (!sameDestination(u32, ctrlLen, i, i + k, nameLen)) break;
        total += next;
        k++;
        // Only the last segment may be shorter (udp_send_skb cuts at gso_size).
        if (next < size) break;
      }
    }
    const m = (j * SIZEOF_MMSGHDR) >> 2;
    u32[m + (MH_NAME >> 2)] = a.nameLo[i];
    u32[m + (MH_NAME >> 2) + 1] = a.nameHi[i];
    u32[m + (MH_NAMELEN >> 2)] = nameLen;
    u32[m + (MH_IOV >> 2)] = a.iovLo[i];
    u32[m + (MH_IOV >> 2) + 1] = a.iovHi[i];
    u32[m + (MH_IOVLEN >> 2)] = k;
    u32[m + (MH_IOVLEN >> 2) + 1] = 0;
    u32[m + (MH_CONTROL >> 2)] = a.ctrlLo[i];
    u32[m + (MH_CONTROL >> 2) + 1] = a.ctrlHi[i];
    let clen = ctrlLen[i];
    if (k > 1) clen = writeSegment(u8, u32, CTRL_OFF + i * CTRL_SLOT + clen, size) + clen;
    u32[m + (MH_CONTROLLEN >> 2)] = clen;
    u32[m + (MH_CONTROLLEN >> 2) + 1] = 0;
    u32[m + (MH_FLAGS >> 2)] = 0;
    s.outFirst[j] = i;
    s.outCount[j] = k;
    i += k;
  }
  return j;
}

/** Whether queued datagrams `a` and `b` have the same sockaddr and the same pktinfo. */
function sameDestination(
  u32: Uint32Array,
  ctrlLen: Uint8Array,
  a: number,
  b: number,
  nameLen: number,
): boolean {
  const na = (NAME_OFF + a * NAME_SLOT) >> 2, nb = (NAME_OFF + b * NAME_SLOT) >> 2;
  for (let w = 0; w < nameLen >> 2; w++) if (u32[na + w] !== u32[nb + w]) return false;
  const len = ctrlLen[a];
  if (ctrlLen[b] !== len) return false;
  const ca = (CTRL_OFF + a * CTRL_SLOT) >> 2, cb = (CTRL_OFF + b * CTRL_SLOT) >> 2;
  for (let w = 0; w < len >> 2; w++) if (u32[ca + w] !== u32[cb + w]) return false;
  return true;
}

/**
 * Clears the sticky source of queued datagram `first` and of every later one
 * (up to `count`) that carries the same pktinfo, on the datagrams and on
 * their endpoints.
 */
function clearSource(s: Sock, first: number, count: number): void {
  const u32 = s.tx.u32, ctrlLen = s.txCtrlLen, eps = s.txEndpoints, len = ctrlLen[first];
  const ref = (CTRL_OFF + first * CTRL_SLOT) >> 2;
  for (let d = first; d < count; d++) {
    if (ctrlLen[d] !== len) continue;
    const c = (CTRL_OFF + d * CTRL_SLOT) >> 2;
    let same = true;
    for (let w = 0; w < len >> 2 && same; w++) same = u32[c + w] === u32[ref + w];
    if (!same) continue;
    eps[d]?.clearSrc();
    ctrlLen[d] = 0;
  }
}

/** Writes a UDP_SEGMENT cmsg of `size` at `o` (8-aligned); returns its CMSG_SPACE. */
function writeSegment(u8: Uint8Array, u32: Uint32Array, o: number, size: number): number {
  const w = o >> 2;
  u32[w] = SEGMENT_LEN;
  u32[w + 1] = 0;
  u32[w + 2] = SOL_UDP;
  u32[w + 3] = UDP_SEGMENT;
  u32[w + 4] = 0;
  u32[w + 5] = 0;
  u8[o + 16] = size & 0xff;
  u8[o + 17] = size >> 8;
  return SEGMENT_SPACE;
}

let kernelRelease: number[] | null = null;

/**
 * Whether the running kernel is at least `major.minor`, from
 * /proc/sys/kernel/osrelease read through libc (Deno's own file API would need
 * `-A` for /proc). True when it cannot be read: the feature probe decides then.
 */
function kernelAtLeast(major: number, minor: number): boolean {
  if (kernelRelease === null) {
    kernelRelease = [];
    const c = libc();
    const fd = c.open(cstr("/proc/sys/kernel/osrelease"), O_CLOEXEC, 0); // O_RDONLY = 0
    if (fd >= 0) {
      const buf = new Uint8Array(64);
      const n = Number(c.read(fd, buf, BigInt(buf.length)));
      closeQuietly(fd);
      const m = /^(\d+)\.(\d+)/.exec(new TextDecoder().decode(buf.subarray(0, n > 0 ? n : 0)));
      if (m) kernelRelease = [Number(m[1]), Number(m[2])];
    }
  }
  if (kernelRelease.length < 2) return true;
  const [ma, mi] = kernelRelease;
  return ma > major || (ma === major && mi >= minor);
}

/** SO_MARK of a socket (for tests and diagnostics); −1 on error. */
export function socketMark(fd: number): number {
  return getsockoptInt(fd, SOL_SOCKET, SO_MARK);
}
