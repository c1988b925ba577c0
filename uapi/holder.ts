// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Who serves a UAPI socket that is in use, for the "unix socket in use"
 * error. The socket is asked directly: a connect and `getsockopt(SO_PEERCRED)`
 * give the process that called listen() on it (through FFI, which the daemon
 * has; Deno's own connect does not expose the descriptor). Its command line
 * comes from /proc/PID/cmdline, and /proc/PID/ns/net tells whether it runs in
 * another network namespace. That is the usual case: /var/run/wireguard is a
 * directory of the file system, shared by every network namespace, so
 * `IFACE.sock` names one daemon across all of them even though each namespace
 * may have its own interface called IFACE.
 */

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
/** sizeof(sun_path). */
const SUN_PATH = 108;

/** The process behind a listening unix socket. */
export interface SocketHolder {
  readonly pid: number;
  readonly uid: number;
}

/**
 * socketHolder() connects to the unix socket at `path` and returns the
 * credentials of its listener, or null when that cannot be learnt (no FFI
 * permission, nothing listening, a backlog so full that a non-blocking
 * connect would wait).
 */
export function socketHolder(path: string): SocketHolder | null {
  const name = new TextEncoder().encode(path);
  if (name.length >= SUN_PATH) return null;
  let lib;
  try {
    lib = Deno.dlopen("libc.so.6", {
      socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
      connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
      getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
    });
  } catch {
    return null;
  }
  try {
    const c = lib.symbols;
    const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return null;
    try {
      const addr = new Uint8Array(2 + SUN_PATH);
      new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
      addr.set(name, 2);
      if (c.connect(fd, addr, 2 + name.length + 1) !== 0) return null;
      const cred = new Uint8Array(12);
      const len = new Uint32Array([cred.length]);
      if (c.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, new Uint8Array(len.buffer)) !== 0) {
        return null;
      }
      const view = new DataView(cred.buffer);
      const pid = view.getInt32(0, true);
      return pid > 0 ? { pid, uid: view.getUint32(4, true) } : null;
    } finally {
      c.close(fd);
    }
  } finally {
    lib.close();
  }
}

/** `deno run` options whose value is the next argument. */
const DENO_VALUE_FLAGS = ["--config", "-c", "--import-map", "--lock", "--location", "--cert"];

/**
 * commandOf() is a short form of a process's command line: for `deno run …
 * SCRIPT ARGS` the script's name and its arguments (`gotatun ux0`),
 * otherwise the program's name and arguments; null when unreadable.
 */
export function commandOf(cmdline: string): string | null {
  const argv = cmdline.split("\0").filter((a, i, all) => a !== "" || i < all.length - 1);
  if (argv.length === 0 || argv[0] === "") return null;
  const base = (p: string) => p.slice(p.lastIndexOf("/") + 1);
  let words = [base(argv[0]), ...argv.slice(1)];
  if (words[0] === "deno" && words[1] === "run") {
    const script = argv.findIndex((a, i) =>
      i > 1 && !a.startsWith("-") && !DENO_VALUE_FLAGS.includes(argv[i - 1])
    );
    if (script > 0) words = [base(argv[script]), ...argv.slice(script + 1)];
  }
  const text = words.join(" ");
  return text.length > 80 ? text.slice(0, 77) + "..." : text;
}

function readLink(path: string): string | null {
  try {
    return Deno.readLinkSync(path);
  } catch {
    return null;
  }
}

/**
 * socketInUseMessage() is the full "unix socket in use" message for `path`:
 * which process holds it, whether it is in another network namespace, and
 * that the socket directory is shared by all network namespaces.
 */
export function socketInUseMessage(path: string): string {
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  const shared = `${dir} is shared by all network namespaces, so one interface name can be ` +
    "served by only one daemon across them: use another interface name, or stop that daemon";
  const holder = socketHolder(path);
  if (holder === null) return `unix socket in use: ${path} is served by another process; ${shared}`;
  let cmd: string | null = null;
  try {
    cmd = commandOf(Deno.readTextFileSync(`/proc/${holder.pid}/cmdline`));
  } catch {
    // gone, or /proc not readable
  }
  const who = `process ${holder.pid}${cmd === null ? "" : ` (${cmd})`}`;
  const theirs = readLink(`/proc/${holder.pid}/ns/net`);
  const ours = readLink("/proc/self/ns/net");
  const where = theirs === null || ours === null
    ? ""
    : theirs === ours
    ? " in this network namespace"
    : " in another network namespace";
  return `unix socket in use: ${path} is served by ${who}${where}; ${shared}`;
}
