// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Creating and configuring one UDP socket of the Linux bind (`./udp.ts`):
 * buffer sizes, V6ONLY, pktinfo, fwmark and bind (wireguard-go
 * `controlfns_linux.go`), the UDP offload probes (wireguard-go
 * `supportsUDPOffload`), and the errors a failed bind reports over UAPI.
 */
import { BindError } from "./bind.ts";
import { SOL_UDP, UDP_GRO, UDP_SEGMENT } from "./mmsg.ts";
import {
  AF_INET,
  AF_INET6,
  closeQuietly,
  cstr,
  EADDRINUSE,
  errno,
  getsockoptInt,
  IP_PKTINFO,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPV6_RECVPKTINFO,
  IPV6_V6ONLY,
  libc,
  O_CLOEXEC,
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

/** Socket buffer size requested, as wireguard-go's `socketBufferSize` (7 MiB). */
export const SOCKET_BUFFER_SIZE = 7 << 20;

const int = new Int32Array(1);
const sa = new Uint8Array(SIZEOF_SOCKADDR_IN6);
const saLen = new Uint32Array(1);

/**
 * A non-blocking socket of `family`, configured and bound to `port` (0: the
 * kernel picks), or −errno when socket() or bind() failed. Throws BindError
 * when the fwmark `mark` (0: none) cannot be set.
 */
export function openSocket(family: 4 | 6, port: number, mark: number): number {
  const c = libc();
  const fd = c.socket(
    family === 4 ? AF_INET : AF_INET6,
    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
    0,
  );
  if (fd < 0) return -errno();
  // Large buffers absorb bursts while the main thread is busy with crypto; the FORCE
  // variants ignore net.core.{r,w}mem_max but need CAP_NET_ADMIN (controlfns_linux.go).
  if (!setIntOption(fd, SOL_SOCKET, SO_RCVBUFFORCE, SOCKET_BUFFER_SIZE)) {
    setIntOption(fd, SOL_SOCKET, SO_RCVBUF, SOCKET_BUFFER_SIZE);
  }
  if (!setIntOption(fd, SOL_SOCKET, SO_SNDBUFFORCE, SOCKET_BUFFER_SIZE)) {
    setIntOption(fd, SOL_SOCKET, SO_SNDBUF, SOCKET_BUFFER_SIZE);
  }
  if (family === 6) {
    // V6ONLY must be set before bind, so the IPv4 socket can share the port.
    if (!setIntOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1)) return failSocket(fd);
    setIntOption(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
  } else {
    setIntOption(fd, IPPROTO_IP, IP_PKTINFO, 1);
  }
  if (mark !== 0 && !setIntOption(fd, SOL_SOCKET, SO_MARK, mark | 0)) {
    const e = errno();
    closeQuietly(fd);
    throw markError(mark, e);
  }
  sa.fill(0);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, family === 4 ? AF_INET : AF_INET6, true);
  dv.setUint16(2, port, false);
  if (c.bind(fd, sa, family === 4 ? SIZEOF_SOCKADDR_IN : SIZEOF_SOCKADDR_IN6) < 0) {
    return failSocket(fd);
  }
  return fd;
}

/** setsockopt of an int; false when the kernel refuses. */
export function setIntOption(fd: number, level: number, name: number, value: number): boolean {
  int[0] = value;
  return libc().setsockopt(fd, level, name, int, 4) === 0;
}

/** The port `fd` is bound to, 0 when getsockname fails. */
export function localPort(fd: number): number {
  saLen[0] = SIZEOF_SOCKADDR_IN6;
  if (libc().getsockname(fd, sa, saLen) < 0) return 0;
  return (sa[2] << 8) | sa[3];
}

/** Whether the kernel knows UDP_SEGMENT (GSO on send, Linux ≥ 4.18). */
export function gsoSupported(fd: number): boolean {
  return getsockoptInt(fd, SOL_UDP, UDP_SEGMENT) >= 0;
}

/** Turns UDP_GRO on when the kernel is at least 5.12 and accepts it; returns whether it is on. */
export function enableGro(fd: number): boolean {
  return kernelAtLeast(5, 12) && setIntOption(fd, SOL_UDP, UDP_GRO, 1);
}

/** SO_MARK of a socket (for tests and diagnostics); −1 on error. */
export function socketMark(fd: number): number {
  return getsockoptInt(fd, SOL_SOCKET, SO_MARK);
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

/** The error of a failed bind on `port`. */
export function bindError(family: 4 | 6, port: number, e: number): BindError {
  // Every bind failure is −EADDRINUSE over UAPI, as wireguard-go's IpcErrorPortInUse;
  // the text follows Go's "listen udp4 :51820: bind: address already in use".
  return new BindError(-EADDRINUSE, `listen udp${family} :${port}: bind: ${goErrorText(e)}`);
}

/** The error of a refused SO_MARK. */
export function markError(mark: number, e: number): BindError {
  return new BindError(
    -EADDRINUSE,
    `failed to update fwmark 0x${mark.toString(16)}: ${goErrorText(e)}`,
  );
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
      const n = c.read32(fd, buf, BigInt(buf.length));
      closeQuietly(fd);
      const m = /^(\d+)\.(\d+)/.exec(new TextDecoder().decode(buf.subarray(0, n > 0 ? n : 0)));
      if (m) kernelRelease = [Number(m[1]), Number(m[2])];
    }
  }
  if (kernelRelease.length < 2) return true;
  const [ma, mi] = kernelRelease;
  return ma > major || (ma === major && mi >= minor);
}
