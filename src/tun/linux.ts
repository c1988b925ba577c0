// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The Linux TUN edge: `/dev/net/tun` through FFI, as wireguard-go's
 * `tun/tun_linux.go`. The fd is non-blocking; the owner waits for readiness
 * with a {@link Poller} and then calls {@link LinuxTun.drain}, which reads
 * synchronously until EAGAIN (about 10× cheaper per packet than awaiting one
 * FFI read per packet, deno-platform.md §1). Writes are synchronous too: a TUN
 * write never blocks.
 *
 * The interface is not persistent (no TUNSETPERSIST): it disappears when the
 * last fd closes, and `ip link del` detaches our fd, after which reads fail
 * with EBADFD (or EFAULT for a read in flight) and {@link LinuxTun.drain}
 * reports −1, the daemon's cue to exit (wireguard-go `tun_linux.go` Read →
 * `os.ErrClosed`).
 *
 * No IFF_VNET_HDR yet. When it is added, TUNSETIFF gains IFF_VNET_HDR, each
 * read starts with a 10-byte `virtio_net_hdr` that `drain` must strip (and
 * split GSO super-packets), and `write` must prepend one; the read offset
 * {@link VNET_HDR_LEN}/`#hdrLen` is already threaded through for that.
 *
 * @see {@link Poller} in `../sys/poller.ts`.
 */
import type { Tun } from "./tun.ts";
import {
  AF_INET,
  closeQuietly,
  cstr,
  EAGAIN,
  EINTR,
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
} from "../sys/libc.ts";

/** wireguard-go `device.DefaultMTU`: 1500 minus the 80-byte worst-case IPv6+UDP+WireGuard overhead. */
export const DEFAULT_MTU = 1420;
/**
 * The largest MTU we report: a transport message (32 bytes of overhead) must
 * fit in one 65535-byte UDP payload (wireguard-go `MaxContentSize`).
 */
export const MAX_MTU = 65535 - 32;
/** Size of `struct virtio_net_hdr`, for when IFF_VNET_HDR is enabled. */
export const VNET_HDR_LEN = 10;

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

/** Up/down as the kernel's IFF_UP, or "gone" once the link was deleted. */
export type LinkState = "up" | "down" | "gone";

/** A TUN interface in IFF_TUN|IFF_NO_PI mode: one IP packet per read/write. */
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
  #bigBufLen = BigInt(READ_BUFFER_SIZE);
  /** An AF_INET datagram socket for the SIOC*IF* ioctls (they need a socket fd, not the TUN fd). */
  #ctl = -1;
  #ifr = new Uint8Array(SIZEOF_IFREQ);
  #ifrView = new DataView(this.#ifr.buffer);
  #probe = new Uint8Array([0x40]);
  #writeErrors = 0;
  #lastWriteErrno = 0;

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
  static create(name: string, opts: { mtu?: number } = {}): LinuxTun {
    const nameBytes = new TextEncoder().encode(name);
    if (nameBytes.length === 0 || nameBytes.length >= IFNAMSIZ || name.includes("%")) {
      throw new Error(`Failed to create TUN device: invalid interface name "${name}"`);
    }
    const c = libc();
    const fd = c.open(cstr("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0) throw new Error(`Failed to create TUN device: ${strerror(errno())}`);
    const ifr = new Uint8Array(SIZEOF_IFREQ);
    ifr.set(nameBytes);
    new DataView(ifr.buffer).setInt16(16, IFF_TUN | IFF_NO_PI, true);
    if (c.ioctl(fd, BIG_TUNSETIFF, ifr) < 0) {
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
   * wireguard-go's `CreateTUNFromFile(file, DefaultMTU)`. On success it owns
   * `fd` ({@link LinuxTun.close} closes it); on failure (throws) it does not.
   */
  static fromFd(fd: number, opts: { mtu?: number } = {}): LinuxTun {
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
    if (tunFlags & IFF_VNET_HDR) {
      throw new Error(`Failed to use TUN fd ${fd}: IFF_VNET_HDR is not supported yet`);
    }
    const tun = new LinuxTun(fd, ifrName(ifr));
    try {
      tun.#init(opts.mtu ?? DEFAULT_MTU);
    } catch (err) {
      // The fd stays the caller's on failure; only our control socket is released.
      closeQuietly(tun.#ctl);
      throw err;
    }
    return tun;
  }

  /** The TUN fd (for the poller); −1 after {@link LinuxTun.close}. */
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
   */
  write(packet: Uint8Array): void {
    if (this.#fd < 0) {
      this.#writeErrors++;
      return;
    }
    // usize must be a bigint (deno check); creating a small one is cheap next to the syscall.
    if (this.#c.write(this.#fd, packet, BigInt(packet.length)) < 0n) {
      this.#lastWriteErrno = errno();
      this.#writeErrors++;
    }
  }

  /**
   * Reads packets synchronously until EAGAIN or `max`, calling `onPacket`
   * with a view of the one shared read buffer (valid only during the call).
   * Returns the number of packets read, or −1 when the interface is gone
   * (EBADFD after `ip link del`, EFAULT for a read cut short, EIO, or a closed
   * tun): the owner should then stop and close.
   */
  drain(onPacket: (pkt: Uint8Array) => void, max = 256): number {
    const c = this.#c, buf = this.#buf, len = this.#bigBufLen, hdr = this.#hdrLen;
    let count = 0;
    while (count < max) {
      const fd = this.#fd;
      if (fd < 0) return -1;
      const n = Number(c.read(fd, buf, len));
      if (n < 0) {
        const e = errno();
        if (e === EAGAIN) break;
        if (e === EINTR) continue;
        // EBADFD, EFAULT, EIO, EBADF (closed under us): the link is gone.
        return -1;
      }
      if (n <= hdr) continue;
      count++;
      onPacket(buf.subarray(hdr, n));
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
    if (this.#c.write(this.#fd, this.#probe, 1n) >= 0n) return "up";
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
