// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The one place that talks to glibc through Deno FFI (`Deno.dlopen("libc.so.6")`,
 * opened lazily on first use, so importing this module costs nothing and needs
 * no permission). The TUN, UDP and event-loop edges use these bindings; protocol
 * code never does.
 *
 * Pitfalls, measured on Deno 2.9.6:
 * - **errno is thread-local.** {@link errno} is only meaningful right after a
 *   *synchronous* call, with no other FFI call and no allocation-heavy work in
 *   between. (`nonblocking: true` calls would run on a Tokio pool thread,
 *   where errno is unknowable; none is declared here: the data path waits in
 *   a synchronous `epoll_wait` on a thread of its own.)
 * - **64-bit integers are bigint.** `u64`/`usize`/`isize` results are bigint,
 *   and `deno check` requires bigint arguments for them. Precompute constant
 *   ones (buffer lengths, ioctl numbers) once; hot paths avoid creating them
 *   ({@link usize} keeps one per packet length; `read32`/`write32` return a number).
 * - **Keep buffers reachable.** When the address of a buffer is written into
 *   another struct (iovec, msghdr, cmsg), the JS object must stay referenced
 *   for as long as the kernel may use the address, or GC frees it and the
 *   kernel answers EFAULT. Carve such structs from one long-lived ArrayBuffer.
 * - `open`, `ioctl` and `fcntl` are variadic in C. Fixed signatures are correct
 *   on x86_64 and aarch64 for the integer/pointer arguments used here.
 * - Struct layouts below are for 64-bit Linux (x86_64, aarch64), except
 *   `struct epoll_event`, which is packed (12 bytes) on x86_64 only.
 */

/** The symbols we use, all synchronous. */
const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /**
   * read/write whose ssize_t result is taken as its low 32 bits: a number, where
   * "isize" makes a new bigint on every call. Reading half of the result
   * register is ABI-safe on x86_64 and aarch64, and exact for counts below
   * 2^31 and −1. The size argument stays "usize" (the callee reads all 64
   * bits of its register): pass {@link usize} for it.
   */
  read32: { name: "read", parameters: ["i32", "buffer", "usize"], result: "i32" },
  write32: { name: "write", parameters: ["i32", "buffer", "usize"], result: "i32" },
  /** ioctl with a pointer argument (struct ifreq, int*). */
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  /** ioctl with an integer argument (TUNSETOFFLOAD, TUNSETPERSIST). */
  ioctl_val: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  /** recvmmsg(fd, msgvec, vlen, flags, timeout): pass null as timeout. */
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  umask: { parameters: ["u32"], result: "u32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound libc symbols. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let library: Deno.DynamicLibrary<typeof SYMBOLS> | null = null;
/** The main (or this Worker's) thread's errno, as a 4-byte view of its TLS slot. */
let errnoCell: Int32Array | null = null;

/** The libc symbols, opening `libc.so.6` on first use (needs `--allow-ffi`). */
export function libc(): Libc {
  if (library === null) {
    library = Deno.dlopen("libc.so.6", SYMBOLS);
    // Map errno's thread-local slot once, here, so that reading it after a failed call is a
    // plain typed-array load: no FFI call, op or allocation (each a chance for the runtime to
    // overwrite errno) between the failing syscall and the read. The first read used to call
    // __errno_location() and build a pointer view right after the failure; a CI machine once
    // reported TUNSETIFF's EPERM as ENOENT there (not reproduced here).
    const p = library.symbols.__errno_location();
    if (p !== null) errnoCell = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(p, 4));
    errno(); // compile the reader now rather than on the first failure
  }
  return library.symbols;
}

/**
 * The calling thread's errno. Only valid immediately after a synchronous libc
 * call that failed (each Worker loads its own copy of this module, so the
 * cell is its own thread's).
 */
export function errno(): number {
  if (errnoCell === null) libc();
  return errnoCell === null ? 0 : errnoCell[0];
}

/** glibc's message for an errno, e.g. "Operation not permitted". */
export function strerror(code: number): string {
  const p = libc().strerror(code);
  return p === null ? `errno ${code}` : Deno.UnsafePointerView.getCString(p);
}

/** A NUL-terminated UTF-8 copy of `s` for `const char *` arguments. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  const enc = new TextEncoder().encode(s);
  const out = new Uint8Array(enc.length + 1);
  out.set(enc);
  return out;
}

/**
 * The address of a buffer's first byte as a bigint, for storing in kernel
 * structs (iovec, msghdr). The caller must keep `buf` referenced.
 */
export function addressOf(buf: BufferSource): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/** Sizes below this have their bigint kept by {@link usize}: every TUN frame (≤ 66058) fits. */
const USIZE_CACHED = 66560;
const usizes: (bigint | undefined)[] = new Array(USIZE_CACHED);

/**
 * `BigInt(n)` for a "usize" argument, the same bigint for the same `n` below
 * 65 KiB (made once, on first use), so that passing a packet length to FFI
 * allocates nothing per packet.
 */
export function usize(n: number): bigint {
  if (n >= USIZE_CACHED || n < 0) return BigInt(n);
  const b = usizes[n];
  return b !== undefined ? b : (usizes[n] = BigInt(n));
}

/** An int socket option, or −1 when getsockopt fails. */
export function getsockoptInt(fd: number, level: number, name: number): number {
  const val = new Int32Array(1);
  const len = new Uint32Array([4]);
  return libc().getsockopt(fd, level, name, val, len) < 0 ? -1 : val[0];
}

/** Closes `fd`, ignoring errors (used on cleanup paths). */
export function closeQuietly(fd: number): void {
  if (fd >= 0) libc().close(fd);
}

// errno values (asm-generic/errno-base.h, asm-generic/errno.h; same on x86_64 and aarch64).
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const EBADFD = 77;
export const EMSGSIZE = 90;
export const ENOPROTOOPT = 92;
export const EPROTONOSUPPORT = 93;
export const EAFNOSUPPORT = 97;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENETDOWN = 100;
export const ENETUNREACH = 101;
export const ENOBUFS = 105;
export const ECONNREFUSED = 111;
export const EHOSTUNREACH = 113;

// open(2) / fcntl(2) flags (asm-generic/fcntl.h).
export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_DUPFD_CLOEXEC = 1030;
export const FD_CLOEXEC = 1;

// Sockets (linux/socket.h, linux/in.h, linux/in6.h, asm-generic/socket.h).
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = O_NONBLOCK;
export const SOCK_CLOEXEC = O_CLOEXEC;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const SO_MARK = 36;
export const IPPROTO_IP = 0;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IP_PKTINFO = 8;
export const IPV6_V6ONLY = 26;
export const IPV6_RECVPKTINFO = 49;
export const IPV6_PKTINFO = 50;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const MSG_CTRUNC = 0x08;
/** sizeof(struct sockaddr_in). */
export const SIZEOF_SOCKADDR_IN = 16;
/** sizeof(struct sockaddr_in6). */
export const SIZEOF_SOCKADDR_IN6 = 28;
/** sizeof(struct mmsghdr) on 64-bit Linux: msghdr (56) + msg_len (4) + padding. */
export const SIZEOF_MMSGHDR = 64;
/** sizeof(struct iovec) on 64-bit Linux. */
export const SIZEOF_IOVEC = 16;
/** sizeof(struct cmsghdr) on 64-bit Linux (cmsg_len is size_t). CMSG_ALIGN is 8. */
export const SIZEOF_CMSGHDR = 16;

// epoll (sys/epoll.h).
export const EPOLL_CLOEXEC = O_CLOEXEC;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
/** sizeof(struct epoll_event): packed on x86_64 only (arch/x86 `__EPOLL_PACKED`). */
export const SIZEOF_EPOLL_EVENT = Deno.build.arch === "x86_64" ? 12 : 16;
/** Offset of `epoll_event.data` (see {@link SIZEOF_EPOLL_EVENT}). */
export const EPOLL_EVENT_DATA_OFFSET = Deno.build.arch === "x86_64" ? 4 : 8;
export const EFD_NONBLOCK = O_NONBLOCK;
export const EFD_CLOEXEC = O_CLOEXEC;

// poll(2).
export const POLLIN = 0x001;

// Network device ioctls (linux/sockios.h, linux/if_tun.h). `struct ifreq` is 40 bytes:
// ifr_name[16] then a union (flags i16, mtu i32, ifindex i32 all at offset 16).
export const SIOCGIFMTU = 0x8921;
export const SIOCSIFMTU = 0x8922;
export const SIOCGIFINDEX = 0x8933;
export const SIZEOF_IFREQ = 40;
export const IFNAMSIZ = 16;
export const TUNSETIFF = 0x400454ca;
export const TUNGETIFF = 0x800454d2;
export const TUNSETOFFLOAD = 0x400454d0;
export const TUNSETVNETHDRSZ = 0x400454d8;
export const TUNGETFEATURES = 0x800454cf;
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
