// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The Linux UDP edge: two FFI sockets, IPv4 and IPv6 (IPV6_V6ONLY) on one
 * port, as wireguard-go's `conn/bind_std.go` with its Linux sticky-socket and
 * batching parts (`sticky_linux.go`, `controlfns_linux.go`). Deno's own
 * `listenDatagram` has no fwmark, V6ONLY, buffer-size or batching options, and
 * FFI `recvmmsg`/`sendmmsg` is about twice as fast. The batches' memory
 * layout (mmsghdr, sockaddr, cmsg) is `./mmsg.ts`; this file owns the
 * sockets and what to do when the kernel refuses.
 *
 * Receiving: the owner waits for readability (the data plane's EventLoop)
 * on {@link LinuxBind.fds} and
 * calls {@link LinuxBind.drain}, which reads batches of 64 with
 * `recvmmsg(MSG_DONTWAIT)` until EAGAIN and hands each datagram, a view into
 * the batch, to the `receive` callback with one reused scratch
 * {@link Endpoint} per socket (the device clones what it keeps). Neither the
 * views nor the endpoint are new per datagram.
 *
 * Sending: {@link LinuxBind.send} copies into a batch slot; a full batch, or
 * {@link LinuxBind.flush}, goes out with one `sendmmsg` per family.
 *
 * UDP GSO on send (`UDP_SEGMENT`, Linux ≥ 4.18; wireguard-go
 * `coalesceMessages`): at flush, a run of queued datagrams to the same
 * destination (address, port, sticky source) whose sizes are all equal, the
 * last one possibly shorter, becomes ONE message carrying a `UDP_SEGMENT`
 * cmsg with that size. The kernel builds a single skb and cuts it back into
 * datagrams as late as possible, so one pass through the stack carries up to
 * 64 datagrams (`UDP_MAX_SEGMENTS`) within one IP packet's size.
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
 * kernel may then hand us several datagrams of one flow as a single message,
 * with a `UDP_GRO` cmsg giving the segment size; {@link LinuxBind.drain} cuts
 * the payload back into datagrams and calls `receive` once per datagram with
 * a view into the slot (no copy).
 *
 * Sticky sources: IP_PKTINFO / IPV6_RECVPKTINFO tell us which local address
 * and interface each datagram arrived on; that goes into
 * `endpoint.srcAddress`/`srcIfindex`, and a send to an endpoint that carries
 * it adds the same pktinfo as a control message, so replies leave from the
 * address the peer used (wireguard-go `getSrcFromControl`/`setSrcControl`).
 * If that address has vanished (EINVAL, EADDRNOTAVAIL, ENETUNREACH), the source is cleared
 * on the endpoint and the datagram retried once without it.
 *
 * Memory: two 4 MiB arenas per socket (receive and send, see `./mmsg.ts`),
 * so an open bind (IPv4 + IPv6) holds about 16 MiB, allocated at the first
 * open and reused by later ones.
 */
import type { Bind, ReceiveFn, SendErrorFn } from "./bind.ts";
import type { Endpoint } from "./endpoint.ts";
import { BATCH_SIZE, isV4Mapped, MAX_DATAGRAM_SIZE, RxBatch, TxBatch } from "./mmsg.ts";
import {
  bindError,
  enableGro,
  gsoSupported,
  localPort,
  markError,
  openSocket,
  setIntOption,
} from "./udp_socket.ts";
import {
  closeQuietly,
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
  type Libc,
  libc,
  MSG_CTRUNC,
  MSG_DONTWAIT,
  MSG_TRUNC,
  SO_MARK,
  SOL_SOCKET,
} from "../sys/libc.ts";

export { BATCH_SIZE, GSO_MAX_SEGMENTS, MAX_DATAGRAM_SIZE } from "./mmsg.ts";
export { SOCKET_BUFFER_SIZE, socketMark } from "./udp_socket.ts";
/** Attempts to find a port free for both families when asked for port 0 (wireguard-go). */
const PORT_RETRIES = 100;

/** One socket of the bind (IPv4 or IPv6) with its batches. */
class Sock {
  readonly family: 4 | 6;
  fd = -1;
  readonly rx: RxBatch;
  readonly tx: TxBatch;
  /** UDP_SEGMENT usable: probed at open, turned off when the kernel refuses a GSO send. */
  gso = false;
  /** UDP_GRO turned on at open: received messages may carry several datagrams. */
  gro = false;
  /** True once recvmmsg said EAGAIN in the current drain. */
  drained = false;

  constructor(family: 4 | 6) {
    this.family = family;
    this.rx = new RxBatch(family);
    this.tx = new TxBatch(family);
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
        fd4 = openSocket(4, port, this.#mark);
        if (fd4 < 0 && fd4 !== -EAFNOSUPPORT) throw bindError(4, port, -fd4);
        if (fd4 >= 0) bound = localPort(fd4);
        fd6 = openSocket(6, fd4 >= 0 ? bound : port, this.#mark);
        if (fd6 === -EADDRINUSE && port === 0 && fd4 >= 0 && tries < PORT_RETRIES) {
          closeQuietly(fd4);
          fd4 = -1;
          continue;
        }
        if (fd6 < 0 && fd6 !== -EAFNOSUPPORT && fd6 !== -EADDRNOTAVAIL) {
          throw bindError(6, bound, -fd6);
        }
        if (fd4 < 0 && fd6 < 0) throw bindError(4, port, EAFNOSUPPORT);
        if (fd4 < 0) bound = localPort(fd6);
        break;
      }
    } catch (err) {
      closeQuietly(fd4);
      closeQuietly(fd6);
      throw err;
    }
    if (fd4 >= 0) this.#adopt(this.#v4 ??= new Sock(4), fd4);
    if (fd6 >= 0) this.#adopt(this.#v6 ??= new Sock(6), fd6);
    this.#port = bound;
    this.#receive = receive;
    this.#onSendError = onSendError ?? null;
    this.#gen++;
    return bound;
  }

  /**
   * Adopts `fd` into `s` and decides its offloads, as wireguard-go's
   * `supportsUDPOffload`: GSO when `getsockopt(UDP_SEGMENT)` is understood,
   * GRO when `setsockopt(UDP_GRO, 1)` is accepted on Linux ≥ 5.12.
   */
  #adopt(s: Sock, fd: number): void {
    s.fd = fd;
    s.gso = this.#gsoAllowed && gsoSupported(fd);
    s.gro = this.#groAllowed && enableGro(fd);
  }

  /** Closes both sockets; queued datagrams are dropped. Idempotent. */
  close(): void {
    for (const s of [this.#v4, this.#v6]) {
      if (s === null) continue;
      closeQuietly(s.fd);
      s.fd = -1;
      s.gso = false;
      s.gro = false;
      s.tx.release(s.tx.count);
      s.tx.count = 0;
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
      if (!setIntOption(s.fd, SOL_SOCKET, SO_MARK, mark | 0)) throw markError(mark, errno());
    }
  }

  /**
   * Reads what is waiting on both sockets, a batch at a time, alternating
   * between them, until both say EAGAIN or `max` datagrams were delivered.
   * Returns the number delivered. Stops at once if the callback closes the bind.
   * `max` is checked between batches of up to 64 messages; with GRO one
   * message may hold up to 64 datagrams, so one call can deliver more.
   *
   * `only` (one of {@link fds}) reads that socket alone: an event loop that
   * was told which fd is readable saves the other socket's recvmmsg, which
   * would only return EAGAIN (one syscall per wake-up of an idle tunnel).
   */
  drain(max = 1024, only = -1): number {
    const v4 = this.#v4, v6 = this.#v6, gen = this.#gen;
    if (v4 !== null) v4.drained = v4.fd < 0 || (only >= 0 && v4.fd !== only);
    if (v6 !== null) v6.drained = v6.fd < 0 || (only >= 0 && v6.fd !== only);
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
    const rx = s.rx;
    const vlen = room < BATCH_SIZE ? room : BATCH_SIZE;
    rx.prepare(vlen);
    const n = this.#c.recvmmsg(s.fd, rx.msgvec, vlen, MSG_DONTWAIT, null);
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
    const ep = rx.from;
    let delivered = 0;
    for (let i = 0; i < n; i++) {
      const flags = rx.flags(i);
      // A truncated control buffer could have lost the UDP_GRO size, and then a
      // coalesced message would be delivered as one bogus datagram: drop it instead.
      if ((flags & MSG_TRUNC) !== 0 || ((flags & MSG_CTRUNC) !== 0 && s.gro)) {
        this.#recvErrors++;
        continue;
      }
      const len = rx.length(i);
      const seg = rx.readFrom(i);
      if (seg === 0 || seg >= len) {
        delivered++;
        receive(rx.data(i, 0, 0, len), ep);
        if (this.#gen !== gen) return -1;
        continue;
      }
      // UDP GRO: `len` bytes are ⌈len / seg⌉ datagrams of `seg` bytes, the last
      // possibly shorter (udp_gro_receive_segment only appends a shorter one last).
      this.#groMessages++;
      for (let p = 0, k = 0; p < len; p += seg, k++) {
        // The callback may have changed the scratch endpoint; every datagram gets the same.
        if (k !== 0) rx.readFrom(i);
        const end = p + seg < len ? p + seg : len;
        this.#groSegments++;
        delivered++;
        receive(rx.data(i, k, p, end), ep);
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
    if (s.tx.add(data, ep, mapped, owner ?? null) === BATCH_SIZE) this.#flushSock(s);
    return true;
  }

  /** Sends everything queued by {@link LinuxBind.send}. */
  flush(): void {
    if (this.#v4 !== null && this.#v4.tx.count > 0) this.#flushSock(this.#v4);
    if (this.#v6 !== null && this.#v6.tx.count > 0) this.#flushSock(this.#v6);
  }

  /**
   * Sends the queued datagrams of `s`, GSO-merged by {@link TxBatch.layout}, and
   * recovers from the refusals described in the module doc.
   */
  #flushSock(s: Sock): void {
    const tx = s.tx, count = tx.count, outFirst = tx.outFirst, outCount = tx.outCount;
    tx.count = 0;
    let msgs = tx.layout(0, count, 0, s.gso), start = 0;
    /** First datagram of a GSO run being resent one by one to learn who refused it. */
    let suspect = -1;
    while (start < msgs && s.fd >= 0) {
      const n = this.#c.sendmmsg(s.fd, tx.msgvec(start), msgs - start, 0);
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
            msgs = tx.layout(outFirst[start], count, 0, s.gso);
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
        if (e === EINVAL && tx.ctrlLen[first] !== 0) {
          // Ambiguous: a vanished IPv6 sticky source says EINVAL too. Resend this run
          // datagram by datagram, keeping GSO for now: if they go out, GSO was refused;
          // if the first fails with EINVAL, the source is gone (handled below).
          suspect = first;
          msgs = tx.layout(first, count, first + k, s.gso);
          start = 0;
          continue;
        }
        // The kernel will not segment this: EIO for xfrm routes (and, before 6.11,
        // devices without checksum offload); EINVAL (EMSGSIZE on recent kernels, 6.18
        // here) when a segment plus headers exceeds the route MTU, where a plain send
        // would fragment (udp_send_skb). Stop using GSO on this socket and send the
        // rest datagram by datagram (wireguard-go: errShouldDisableUDPGSO, EIO only).
        this.#disableGso(s);
        msgs = tx.layout(first, count, 0, s.gso);
        start = 0;
        continue;
      }
      if (
        (e === EINVAL || e === EADDRNOTAVAIL || e === ENETUNREACH || e === ENODEV) &&
        tx.ctrlLen[first] !== 0
      ) {
        // The sticky source vanished (address removed, interface gone): forget it and
        // retry from whatever address routing picks, for every queued datagram that
        // uses it. IPv6 says EINVAL (ip6_datagram_send_ctl); IPv4 says ENETUNREACH on
        // current kernels (ip_route_output_key_hash_rcu: saddr not local), EINVAL on old ones.
        if (first === suspect) suspect = -1;
        tx.clearSource(first, count);
        msgs = tx.layout(first, count, 0, s.gso);
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
    tx.release(count);
  }

  /** Tells the owners of queued datagrams [from, to) that they were not sent. */
  #failed(s: Sock, from: number, to: number): void {
    const cb = this.#onSendError;
    if (cb === null) return;
    const tx = s.tx;
    for (let i = from; i < to; i++) {
      const owner = tx.owners[i];
      if (owner !== null) cb(owner, tx.size(i));
    }
  }

  #disableGso(s: Sock): void {
    if (!s.gso) return;
    s.gso = false;
    this.#gsoFallbacks++;
  }
}
