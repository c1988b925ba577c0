// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The Linux TUN edge: `/dev/net/tun` through FFI, as wireguard-go's
 * `tun/tun_linux.go`. The fd is non-blocking; the owner waits for readiness
 * with an {@link EventLoop} (epoll) and then calls {@link LinuxTun.drain}, which
 * reads synchronously until EAGAIN (about 10× cheaper per packet than awaiting
 * one FFI read per packet). Writes are synchronous too: a TUN write never
 * blocks.
 *
 * The interface is not persistent (no TUNSETPERSIST): it disappears when the
 * last fd closes, and `ip link del` detaches our fd, after which reads fail
 * with EBADFD (or EFAULT for a read in flight) and {@link LinuxTun.drain}
 * reports −1, the daemon's cue to exit (wireguard-go `tun_linux.go` Read →
 * `os.ErrClosed`).
 *
 * Offloads are opt-in (`offload: true`, wireguard-go always asks for them):
 * TUNSETIFF gains IFF_VNET_HDR, TUNSETVNETHDRSZ is set to 10 and
 * TUNSETOFFLOAD to CSUM|TSO4|TSO6, plus USO4|USO6 when the kernel takes them
 * (Linux ≥ 6.2), falling back to fewer offloads when it refuses
 * (wireguard-go `initFromFlags`). Then every read and write carries a
 * `virtio_net_hdr`: {@link LinuxTun.drain} splits GSO super-packets into
 * normal packets with a {@link GsoSplitter}, and {@link LinuxTun.write}
 * queues packets in a {@link GroBatcher} that {@link LinuxTun.flush}
 * coalesces into TSO/USO frames (`./offload.ts`). Without the option nothing
 * of this runs and the fd is a plain IFF_TUN|IFF_NO_PI one.
 *
 * @see {@link EventLoop} in `../event_loop.ts`.
 */
import type { Tun } from "./tun.ts";
import { FRAME_CAPACITY, VIRTIO_NET_HDR_LEN } from "./offload.ts";
import { GroBatcher, type GroStats } from "./gro.ts";
import { GsoSplitter, type SplitStats } from "./gso_split.ts";
import {
  AF_INET,
  closeQuietly,
  cstr,
  EAGAIN,
  EINTR,
  EINVAL,
  EIO,
  errno,
  F_GETFL,
  F_SETFL,
  IFF_NO_PI,
  IFF_TAP,
  IFF_TUN,
  IFF_VNET_HDR,
  IFNAMSIZ,
  type Libc,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  SIOCGIFINDEX,
  SIOCGIFMTU,
  SIOCSIFMTU,
  SIZEOF_IFREQ,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  strerror,
  TUNGETIFF,
  TUNSETIFF,
  TUNSETOFFLOAD,
  TUNSETVNETHDRSZ,
  usize,
} from "../sys/libc.ts";
import { ViewCache } from "../view_cache.ts";

/** wireguard-go `device.DefaultMTU`: 1500 minus the 80-byte worst-case IPv6+UDP+WireGuard overhead. */
export const DEFAULT_MTU = 1420;
/**
 * The largest MTU we report: a transport message (32 bytes of overhead) must
 * fit in one 65535-byte UDP payload (wireguard-go `MaxContentSize`).
 */
export const MAX_MTU = 65535 - 32;
/** Size of `struct virtio_net_hdr`, for when IFF_VNET_HDR is enabled. */
export const VNET_HDR_LEN = 10;

// TUNSETOFFLOAD flags (linux/if_tun.h).
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_UFO = 0x10;
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;
/** What we ask for first; TSO with ECN is left out, as in wireguard-go. */
const TCP_OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
const UDP_OFFLOADS = TUN_F_USO4 | TUN_F_USO6;

/** Options of {@link LinuxTun.create} and {@link LinuxTun.fromFd}. */
export interface LinuxTunOptions {
  /** MTU to set (default {@link DEFAULT_MTU}; 0 leaves it alone). */
  mtu?: number;
  /**
   * Open with IFF_VNET_HDR and TSO/USO offloads (default false). `fromFd`
   * cannot add IFF_VNET_HDR to an fd that lacks it; an fd that has it always
   * gets offload handling, whatever this says.
   */
  offload?: boolean;
}

/** Largest read: a 64 KiB IP packet plus room for a virtio header. */
const READ_BUFFER_SIZE = 65536 + VNET_HDR_LEN;
const SIOCGIFFLAGS = 0x8913;
const IFF_UP = 0x1;
const BIG_TUNSETIFF = BigInt(TUNSETIFF);
const BIG_TUNGETIFF = BigInt(TUNGETIFF);
const BIG_SIOCGIFMTU = BigInt(SIOCGIFMTU);
const BIG_SIOCSIFMTU = BigInt(SIOCSIFMTU);
const BIG_SIOCGIFINDEX = BigInt(SIOCGIFINDEX);
const BIG_SIOCGIFFLAGS = BigInt(SIOCGIFFLAGS);
const BIG_TUNSETOFFLOAD = BigInt(TUNSETOFFLOAD);
const BIG_TUNSETVNETHDRSZ = BigInt(TUNSETVNETHDRSZ);
const BIG_FRAME_CAPACITY = BigInt(FRAME_CAPACITY);
/** Read views cached by `length & (READ_VIEWS − 1)`: a few packet sizes dominate any flow. */
const READ_VIEWS = 256;

/** Up/down as the kernel's IFF_UP, or "gone" once the link was deleted. */
export type LinkState = "up" | "down" | "gone";

/**
 * A TUN interface in IFF_TUN|IFF_NO_PI mode: one IP packet per read/write,
 * or with IFF_VNET_HDR, one virtio header + (super-)packet (see the module doc).
 */
export class LinuxTun implements Tun {
  /** The interface name as the kernel reports it. */
  readonly name: string;
  #fd: number;
  #c: Libc;
  #mtu = 0;
  #ifindex = 0;
  /** Bytes before the IP packet in each read/write (a virtio_net_hdr once enabled). */
  #hdrLen = 0;
  /** The one read buffer; `drain` passes views of it. */
  #buf = new Uint8Array(READ_BUFFER_SIZE);
  #views = new ViewCache(this.#buf, READ_VIEWS);
  #bigBufLen = BigInt(READ_BUFFER_SIZE);
  /** An AF_INET datagram socket for the SIOC*IF* ioctls (they need a socket fd, not the TUN fd). */
  #ctl = -1;
  #ifr = new Uint8Array(SIZEOF_IFREQ);
  #ifrView = new DataView(this.#ifr.buffer);
  #probe = new Uint8Array([0x40]);
  #probeLen = 1n;
  #writeErrors = 0;
  #lastWriteErrno = 0;
  // Offload state: all null/0 on the default path.
  #splitter: GsoSplitter | null = null;
  #gro: GroBatcher | null = null;
  #offloadFlags = 0;
  /** A zero virtio header then the packet, for writes while GRO is unavailable. */
  #frame: Uint8Array | null = null;
  #writeFrame = (frame: Uint8Array): void => {
    if (this.#c.write32(this.#fd, frame, usize(frame.length)) >= 0) return;
    const e = errno();
    this.#lastWriteErrno = e;
    this.#writeErrors++;
    // A kernel that refuses our coalesced frames (tailscale#13041, gluetun#3424) gets plain
    // packets from now on; TCP retransmits what this one carried.
    if (e === EINVAL && frame[1] !== 0 && this.#gro !== null) {
      this.#gro.tcp = false;
      this.#gro.udp = false;
    }
  };

  private constructor(fd: number, name: string) {
    this.#c = libc();
    this.#fd = fd;
    this.name = name;
  }

  /**
   * Creates the interface `name` (exactly that name: a kernel-chosen name such
   * as from "tun%d" is refused) and sets its MTU (default {@link DEFAULT_MTU}).
   * Throws an Error such as "Failed to create TUN device: Operation not permitted".
   */
  static create(name: string, opts: LinuxTunOptions = {}): LinuxTun {
    const nameBytes = new TextEncoder().encode(name);
    if (nameBytes.length === 0 || nameBytes.length >= IFNAMSIZ || name.includes("%")) {
      throw new Error(`Failed to create TUN device: invalid interface name "${name}"`);
    }
    const c = libc();
    const fd = c.open(cstr("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0) throw new Error(`Failed to create TUN device: ${strerror(errno())}`);
    const ifr = new Uint8Array(SIZEOF_IFREQ);
    ifr.set(nameBytes);
    const vnet = opts.offload === true ? IFF_VNET_HDR : 0;
    new DataView(ifr.buffer).setInt16(16, IFF_TUN | IFF_NO_PI | vnet, true);
    // A refused TUNSETIFF changes nothing, so the reason is read from a second, identical
    // attempt: the first is also the process's first ioctl through FFI, and one CI machine
    // reported its EPERM as ENOENT (errno overwritten between the call and the read).
    if (c.ioctl(fd, BIG_TUNSETIFF, ifr) < 0 && c.ioctl(fd, BIG_TUNSETIFF, ifr) < 0) {
      const e = errno();
      closeQuietly(fd);
      throw new Error(`Failed to create TUN device: ${strerror(e)}`);
    }
    const got = ifrName(ifr);
    if (got !== name) {
      closeQuietly(fd);
      throw new Error(`Failed to create TUN device: kernel named it "${got}", not "${name}"`);
    }
    const tun = new LinuxTun(fd, got);
    try {
      if (vnet) tun.#enableOffload();
      tun.#init(opts.mtu ?? DEFAULT_MTU);
    } catch (err) {
      tun.close();
      throw err;
    }
    return tun;
  }

  /**
   * Adopts an existing TUN fd (wireguard-go `WG_TUN_FD`): makes it
   * non-blocking, asks the kernel for its name (TUNGETIFF) and sets the MTU
   * like {@link LinuxTun.create} (pass `mtu: 0` to leave it alone), as
   * wireguard-go's `CreateTUNFromFile(file, DefaultMTU)`. An fd opened with
   * IFF_VNET_HDR gets the offload handling of `create({offload: true})`. On
   * success it owns `fd` ({@link LinuxTun.close} closes it); on failure
   * (throws) it does not.
   */
  static fromFd(fd: number, opts: LinuxTunOptions = {}): LinuxTun {
    const c = libc();
    const flags = c.fcntl(fd, F_GETFL, 0);
    if (flags < 0 || c.fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
      throw new Error(`Failed to use TUN fd ${fd}: ${strerror(errno())}`);
    }
    const ifr = new Uint8Array(SIZEOF_IFREQ);
    if (c.ioctl(fd, BIG_TUNGETIFF, ifr) < 0) {
      throw new Error(`Failed to use TUN fd ${fd}: ${strerror(errno())}`);
    }
    const tunFlags = new DataView(ifr.buffer).getUint16(16, true);
    if ((tunFlags & (IFF_TUN | IFF_TAP)) !== IFF_TUN || !(tunFlags & IFF_NO_PI)) {
      throw new Error(`Failed to use TUN fd ${fd}: not an IFF_TUN|IFF_NO_PI device`);
    }
    const tun = new LinuxTun(fd, ifrName(ifr));
    try {
      // Frames on such an fd carry a virtio header whatever we want (wireguard-go's parent
      // process creates it so), so handle them.
      if (tunFlags & IFF_VNET_HDR) tun.#enableOffload();
      tun.#init(opts.mtu ?? DEFAULT_MTU);
    } catch (err) {
      // The fd stays the caller's on failure; only our control socket is released.
      closeQuietly(tun.#ctl);
      throw err;
    }
    return tun;
  }

  /** The TUN fd (for the event loop); −1 after {@link LinuxTun.close}. */
  get fd(): number {
    return this.#fd;
  }

  /** The interface MTU, cached; see {@link LinuxTun.refreshMtu}. */
  get mtu(): number {
    return this.#mtu;
  }

  /** The interface index seen at creation (in the namespace it was created in). */
  get ifindex(): number {
    return this.#ifindex;
  }

  /** Writes that failed (bad packet, link down, interface gone). */
  get writeErrors(): number {
    return this.#writeErrors;
  }

  /** errno of the last failed write, 0 if none yet. */
  get lastWriteErrno(): number {
    return this.#lastWriteErrno;
  }

  /** True when reads and writes carry a virtio_net_hdr (IFF_VNET_HDR). */
  get vnetHdr(): boolean {
    return this.#splitter !== null;
  }

  /** The TUN_F_* offloads the kernel accepted; 0 without IFF_VNET_HDR. */
  get offloadFlags(): number {
    return this.#offloadFlags;
  }

  /** Read-side offload counters, null without IFF_VNET_HDR. */
  get splitStats(): Readonly<SplitStats> | null {
    return this.#splitter?.stats ?? null;
  }

  /** Write-side coalescing counters, null unless TSO was accepted. */
  get groStats(): Readonly<GroStats> | null {
    return this.#gro?.stats ?? null;
  }

  /**
   * Sets the virtio header size and asks for offloads, from most to least:
   * TCP+UDP segmentation, TCP only, none (the header stays, every frame is
   * then GSO_NONE). USO4/6 exist since Linux 6.2 and TUNSETOFFLOAD refuses
   * unknown bits with EINVAL; TSO has been there since 2.6.27.
   */
  #enableOffload(): void {
    const size = new Int32Array([VIRTIO_NET_HDR_LEN]);
    if (this.#c.ioctl(this.#fd, BIG_TUNSETVNETHDRSZ, size) < 0) {
      throw new Error(`Failed to set TUN virtio header size: ${strerror(errno())}`);
    }
    let flags = 0;
    for (const want of [TCP_OFFLOADS | UDP_OFFLOADS, TCP_OFFLOADS, 0]) {
      if (this.#c.ioctl_val(this.#fd, BIG_TUNSETOFFLOAD, BigInt(want)) === 0) {
        flags = want;
        break;
      }
    }
    this.#offloadFlags = flags;
    this.#splitter = new GsoSplitter();
    if (flags & TUN_F_TSO4) {
      this.#gro = new GroBatcher({ tcp: true, udp: (flags & UDP_OFFLOADS) === UDP_OFFLOADS });
    } else {
      this.#frame = new Uint8Array(VIRTIO_NET_HDR_LEN + 65536);
    }
    // linkState()'s one-byte write needs a (zero) virtio header in front.
    this.#probe = new Uint8Array(VIRTIO_NET_HDR_LEN + 1);
    this.#probe[VIRTIO_NET_HDR_LEN] = 0x40;
    this.#probeLen = BigInt(this.#probe.length);
  }

  #init(mtu: number): void {
    const ctl = this.#c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (ctl < 0) throw new Error(`Failed to create TUN device: ${strerror(errno())}`);
    this.#ctl = ctl;
    if (this.#ifreq(BIG_SIOCGIFINDEX) === 0) this.#ifindex = this.#ifrView.getInt32(16, true);
    if (mtu > 0) {
      if (this.#ifreq(BIG_SIOCSIFMTU, mtu) < 0) {
        throw new Error(`Failed to set MTU ${mtu} on ${this.name}: ${strerror(errno())}`);
      }
    }
    this.refreshMtu();
  }

  /**
   * Runs an SIOC*IF* ioctl with `#ifr` = {our name, int `value`}; returns the
   * ioctl result, with the kernel's answer left at `#ifr` offset 16.
   */
  #ifreq(req: bigint, value = 0): number {
    if (this.#ifr[0] === 0) this.#ifr.set(new TextEncoder().encode(this.name));
    this.#ifr.fill(0, IFNAMSIZ);
    this.#ifrView.setInt32(IFNAMSIZ, value, true);
    return this.#c.ioctl(this.#ctl, req, this.#ifr);
  }

  /**
   * Re-reads the MTU (SIOCGIFMTU), capped at {@link MAX_MTU}. Returns true
   * when it changed. Fails quietly (false) once the link has left our network
   * namespace or is gone.
   */
  refreshMtu(): boolean {
    if (this.#ctl < 0 || this.#ifreq(BIG_SIOCGIFMTU) < 0) return false;
    const mtu = Math.min(this.#ifrView.getInt32(16, true), MAX_MTU);
    if (mtu === this.#mtu || mtu <= 0) return false;
    this.#mtu = mtu;
    return true;
  }

  /**
   * Writes one IP packet. Never throws: failures (EINVAL for a malformed
   * packet, EIO while the link is down, EBADFD once it is gone) are counted.
   * With offloads the packet is copied into a batch that goes out at the next
   * {@link LinuxTun.flush} (the device flushes after every batch).
   */
  write(packet: Uint8Array): void {
    if (this.#fd < 0) {
      this.#writeErrors++;
      return;
    }
    if (this.#splitter !== null) {
      this.#writeVnet(packet);
      return;
    }
    if (this.#c.write32(this.#fd, packet, usize(packet.length)) < 0) {
      this.#lastWriteErrno = errno();
      this.#writeErrors++;
    }
  }

  /**
   * With offloads: queues a copy for {@link LinuxTun.flush} (flushing first
   * when the batch is full), or, when TSO was refused, writes it at once
   * behind a zero virtio header.
   */
  #writeVnet(packet: Uint8Array): void {
    const gro = this.#gro;
    if (gro !== null) {
      if (gro.push(packet)) return;
      this.flush();
      if (gro.push(packet)) return;
      // Longer than any IP packet: the kernel would refuse it too.
      this.#lastWriteErrno = EINVAL;
      this.#writeErrors++;
      return;
    }
    const frame = this.#frame!;
    if (packet.length > frame.length - VIRTIO_NET_HDR_LEN) {
      this.#lastWriteErrno = EINVAL;
      this.#writeErrors++;
      return;
    }
    frame.set(packet, VIRTIO_NET_HDR_LEN);
    if (this.#c.write32(this.#fd, frame, usize(VIRTIO_NET_HDR_LEN + packet.length)) < 0) {
      this.#lastWriteErrno = errno();
      this.#writeErrors++;
    }
  }

  /**
   * Writes what {@link LinuxTun.write} queued, coalesced into TSO/USO
   * frames (one write(2) per frame). A no-op without offloads, where writes
   * are immediate. Never throws; failed frames count in
   * {@link LinuxTun.writeErrors}, and an EINVAL for a coalesced frame turns
   * coalescing off for good.
   */
  flush(): void {
    const gro = this.#gro;
    if (gro === null || gro.count === 0) return;
    if (this.#fd < 0) {
      this.#writeErrors += gro.count;
      gro.clear();
      return;
    }
    gro.flush(this.#writeFrame);
  }

  /** Writes `packets[0..count)` and flushes: the batch form of {@link LinuxTun.write}. */
  writeBatch(packets: readonly Uint8Array[], count = packets.length): void {
    const n = Math.min(count, packets.length);
    for (let i = 0; i < n; i++) this.write(packets[i]);
    this.flush();
  }

  /**
   * Reads packets synchronously until EAGAIN or `max`, calling `onPacket`
   * with a view of the one shared read buffer (valid only during the call;
   * the same view object comes back for the next packet of the same length).
   * Returns the number of packets read, or −1 when the interface is gone
   * (EBADFD after `ip link del`, EFAULT for a read cut short, EIO, or a closed
   * tun): the owner should then stop and close.
   */
  drain(onPacket: (pkt: Uint8Array) => void, max = 256): number {
    if (this.#splitter !== null) return this.#drainVnet(this.#splitter, onPacket, max);
    const c = this.#c, buf = this.#buf, len = this.#bigBufLen, hdr = this.#hdrLen;
    const views = this.#views;
    let count = 0;
    while (count < max) {
      const fd = this.#fd;
      if (fd < 0) return -1;
      const n = c.read32(fd, buf, len);
      if (n < 0) {
        const e = errno();
        if (e === EAGAIN) break;
        if (e === EINTR) continue;
        // EBADFD, EFAULT, EIO, EBADF (closed under us): the link is gone.
        return -1;
      }
      if (n <= hdr) continue;
      count++;
      onPacket(views.get(n & (READ_VIEWS - 1), hdr, n));
    }
    return count;
  }

  /**
   * {@link LinuxTun.drain} with virtio headers: each read (up to `max`) goes
   * through the splitter, so one GSO read may yield dozens of packets, all
   * views of the splitter's preallocated memory.
   */
  #drainVnet(s: GsoSplitter, onPacket: (pkt: Uint8Array) => void, max: number): number {
    const c = this.#c, frame = s.frame;
    let count = 0;
    for (let reads = 0; count < max && reads < max; reads++) {
      const fd = this.#fd;
      if (fd < 0) return -1;
      const n = c.read32(fd, frame, BIG_FRAME_CAPACITY);
      if (n < 0) {
        const e = errno();
        if (e === EAGAIN) break;
        if (e === EINTR) continue;
        return -1;
      }
      count += s.split(n, onPacket);
    }
    return count;
  }

  /**
   * The link's state, seen through our fd so that it still works after
   * `ip link set <name> netns <other>`, where our namespace no longer sees it
   * (wireguard-go `routineHackListener`).
   *
   * wireguard-go writes zero bytes and reads EINVAL as up and EIO as down,
   * but kernels since the IFF_NO_PI version check
   * (`tun_get_user`: `skb->len ? data[0] >> 4 : 0`) answer EINVAL to an
   * empty write in both states. So: while the link is visible in our
   * namespace under its name and original index, ask SIOCGIFFLAGS (no side
   * effects); otherwise write a one-byte IPv4 stub, which `tun_get_user`
   * refuses with EIO when the device is down and hands to `ip_rcv` (which
   * drops it as a header error) when it is up. EBADFD means gone.
   */
  linkState(): LinkState {
    if (this.#fd < 0) return "gone";
    if (
      this.#ctl >= 0 && this.#ifreq(BIG_SIOCGIFINDEX) === 0 &&
      this.#ifrView.getInt32(16, true) === this.#ifindex && this.#ifreq(BIG_SIOCGIFFLAGS) === 0
    ) {
      return this.#ifrView.getInt16(16, true) & IFF_UP ? "up" : "down";
    }
    if (this.#c.write(this.#fd, this.#probe, this.#probeLen) >= 0n) return "up";
    const e = errno();
    if (e === EIO) return "down";
    return "gone";
  }

  /** Closes the fd (which deletes the interface unless another fd holds it). Idempotent. */
  close(): void {
    closeQuietly(this.#fd);
    closeQuietly(this.#ctl);
    this.#fd = -1;
    this.#ctl = -1;
  }
}

/** The NUL-terminated name at the start of a struct ifreq. */
function ifrName(ifr: Uint8Array): string {
  let end = 0;
  while (end < IFNAMSIZ && ifr[end] !== 0) end++;
  return new TextDecoder().decode(ifr.subarray(0, end));
}
