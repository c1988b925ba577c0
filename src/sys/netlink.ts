// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link LinkEvents}: a NETLINK_ROUTE socket subscribed to the link group
 * (RTMGRP_LINK), as wireguard-go's netlink listener on Linux. The kernel
 * sends an RTM_NEWLINK when an interface of this network namespace goes up
 * or down or changes its MTU, and an RTM_DELLINK when one is deleted or
 * leaves the namespace. The data plane watches its fd in its event loop and
 * re-reads its link's state when one arrives, so it follows `ip link set up`
 * at once instead of on a periodic check, and an idle daemon does not wake
 * up to poll.
 *
 * Only the message types and interface indices are read; the state itself
 * is asked of the TUN (SIOCGIFFLAGS, SIOCGIFMTU), so a lost or truncated
 * message (ENOBUFS when the socket's queue overflowed) only means "look".
 */
import {
  closeQuietly,
  EAGAIN,
  errno,
  libc,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  strerror,
  usize,
} from "./libc.ts";

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const NETLINK_ROUTE = 0;
const RTMGRP_LINK = 1;
const SIZEOF_SOCKADDR_NL = 12;
const NLMSG_HDRLEN = 16;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
/** ifinfomsg.ifi_index sits after the 16-byte nlmsghdr, family (1), pad (1) and type (2). */
const IFI_INDEX_OFFSET = NLMSG_HDRLEN + 4;
const BUFFER_BYTES = 16 * 1024;

/** Link change notifications from the kernel; see the module doc. */
export class LinkEvents {
  #fd: number;
  #buf = new Uint8Array(BUFFER_BYTES);
  #view = new DataView(this.#buf.buffer);

  /** Opens and binds the socket. Throws if the kernel refuses (then poll instead). */
  constructor() {
    const c = libc();
    const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw new Error(`netlink socket: ${strerror(errno())}`);
    const addr = new Uint8Array(SIZEOF_SOCKADDR_NL);
    const v = new DataView(addr.buffer);
    v.setUint16(0, AF_NETLINK, true);
    v.setUint32(8, RTMGRP_LINK, true);
    if (c.bind(fd, addr, SIZEOF_SOCKADDR_NL) < 0) {
      const e = errno();
      closeQuietly(fd);
      throw new Error(`netlink bind: ${strerror(e)}`);
    }
    this.#fd = fd;
  }

  /** The socket, for the event loop; −1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /**
   * Reads every queued message. Returns true when one may concern the link
   * `ifindex` (a link message for it, or a read error such as an overflowed
   * queue, after which nothing can be ruled out); false when only other
   * links changed or nothing was queued.
   */
  drain(ifindex: number): boolean {
    const c = libc();
    let concerned = false;
    for (;;) {
      const n = c.read32(this.#fd, this.#buf, usize(this.#buf.length));
      if (n === 0) return concerned;
      if (n < 0) {
        // EAGAIN: all read. Anything else (ENOBUFS: messages were lost): look anyway.
        return concerned || errno() !== EAGAIN;
      }
      for (let off = 0; off + NLMSG_HDRLEN <= n;) {
        const len = this.#view.getUint32(off, true);
        const type = this.#view.getUint16(off + 4, true);
        if (len < NLMSG_HDRLEN) break;
        if (type === RTM_NEWLINK || type === RTM_DELLINK) {
          const index = off + IFI_INDEX_OFFSET + 4 <= n
            ? this.#view.getInt32(off + IFI_INDEX_OFFSET, true)
            : 0;
          if (index === ifindex || index === 0 || ifindex === 0) concerned = true;
        }
        off += (len + 3) & ~3;
      }
    }
  }

  /** Closes the socket. Idempotent. */
  close(): void {
    closeQuietly(this.#fd);
    this.#fd = -1;
  }
}
