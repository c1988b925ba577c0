// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The UAPI client: `wg`'s side of the UAPI (wireguard-tools `ipc.c`,
 * `ipc-uapi.h`, `ipc-uapi-unix.h`), for any daemon serving
 * `/var/run/wireguard/<iface>.sock` (gotatun, wireguard-go, boringtun). It is
 * the one client in the repository: `wg` (this directory), `up`/`down`
 * (cli/quick/wg.ts), `top` and `demo` read and change devices through it, as
 * the typed {@link WgDevice} of containers.ts.
 *
 * - **Discovery** lists the socket directory, keeps names ending in `.sock`
 *   whose file is a socket that accepts a connection, and unlinks a socket
 *   whose connect is refused (its daemon is gone). Probes send nothing.
 * - **get** writes `get=1\n\n` and parses lines up to the blank line: device
 *   keys only before the first `public_key`, unknown keys ignored, and the
 *   reply counts only if an `errno=` line said 0. Anything malformed is
 *   EPROTO. The public key is derived from `private_key`.
 * - **set** writes the device fields, then each peer, in `wg`'s order, and
 *   returns the daemon's `errno=` value as is (wireguard-go sends it
 *   negative, so `perror` prints "Invalid argument"; a positive one prints
 *   "Unknown error -N", exactly as with `wg`).
 * - {@link getDevice}/{@link setDevice} are `ipc_get_device`/`ipc_set_device`
 *   (the kernel path when no socket answers); {@link userspaceGetDevice} and
 *   {@link userspaceSetDevice} talk to the socket only. `wg` waits for a
 *   daemon as long as it takes; the other commands give an
 *   {@link IpcContext.timeoutMs} and get ETIMEDOUT, and may leave stale
 *   sockets in place ({@link IpcContext.keepStale}).
 *
 * Kernel WireGuard is reached over generic netlink, which Deno cannot open.
 * Where `wg` would fall back to the kernel, this module reproduces the errors
 * the kernel path gives: EPROTONOSUPPORT when the wireguard module is absent,
 * ENAMETOOLONG for names of 16 bytes or more, ENODEV for a missing interface,
 * and EOPNOTSUPP for an existing one (a kernel WireGuard interface is listed
 * but cannot be read or changed).
 */
import { publicKey } from "../../src/crypto.ts";
import {
  ifname,
  newDevice,
  newPeer,
  type WgAllowedIp,
  type WgDevice,
  WGDEVICE_HAS_FWMARK,
  WGDEVICE_HAS_LISTEN_PORT,
  WGDEVICE_HAS_PRIVATE_KEY,
  WGDEVICE_HAS_PUBLIC_KEY,
  WGDEVICE_REPLACE_PEERS,
  type WgPeer,
  WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL,
  WGPEER_HAS_PRESHARED_KEY,
  WGPEER_HAS_PUBLIC_KEY,
  WGPEER_REMOVE_ME,
  WGPEER_REPLACE_ALLOWEDIPS,
} from "./containers.ts";
import {
  bstr,
  bstrText,
  bytesToBstr,
  charIsDigit,
  EBADF,
  ECONNREFUSED,
  EINVAL,
  ENAMETOOLONG,
  ENETUNREACH,
  ENODEV,
  ENOENT,
  EOPNOTSUPP,
  EPIPE,
  EPROTO,
  EPROTONOSUPPORT,
  errnoOf,
  ETIMEDOUT,
  strtoul,
} from "./cstr.ts";
import { keyFromHex, keyIsZero, keyToHex } from "./encoding.ts";
import { probeSocket, socketNames } from "../../uapi/socket_dir.ts";
import { inetNtop, inetPton4, inetPton6 } from "./inet.ts";
import { formatSockAddr, numericEndpoint, resolveHost, type Resolver } from "./resolve.ts";
import { WgExit } from "./stdio.ts";

/** Where and how to reach daemons. */
export interface IpcContext {
  /** The socket directory, `/var/run/wireguard` for `wg`. */
  socketDir: string;
  resolver: Resolver;
  /** Give up on a request after this long (ETIMEDOUT); none by default, as `wg`. */
  timeoutMs?: number;
  /** Leave a socket whose connect is refused in place (`wg` unlinks it). */
  keepStale?: boolean;
}

/** `sizeof(sun_path) - 1`: longer socket paths are cut, as snprintf cuts them. */
const SUN_PATH_MAX = 107;

function socketPath(ctx: IpcContext, iface: string): string {
  return bstrText(`${bstr(ctx.socketDir)}/${iface}.sock`.slice(0, SUN_PATH_MAX));
}

/** A byte-string line reader over a connection, as `getline` on a `FILE *`. */
class LineReader {
  readonly #conn: Deno.Conn;
  #pending = "";
  #offset = 0;
  #eof = false;
  readonly #buf = new Uint8Array(65536);
  /** errno of a failed read, else 0. */
  error = 0;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /**
   * The next buffered line with its "\n" (at the end of the stream the last
   * one may lack it); null at end of stream or error; undefined when more
   * must be read first ({@link fill}).
   */
  next(): string | null | undefined {
    const nl = this.#pending.indexOf("\n", this.#offset);
    if (nl >= 0) {
      const line = this.#pending.slice(this.#offset, nl + 1);
      this.#offset = nl + 1;
      return line;
    }
    if (!this.#eof) return undefined;
    if (this.#offset >= this.#pending.length) return null;
    const line = this.#pending.slice(this.#offset);
    this.#pending = "";
    this.#offset = 0;
    return line;
  }

  /** Reads more from the connection (end of stream and errors included). */
  async fill(): Promise<void> {
    try {
      const n = await this.#conn.read(this.#buf);
      if (n === null) {
        this.#eof = true;
        return;
      }
      this.#pending = this.#pending.slice(this.#offset) + bytesToBstr(this.#buf.subarray(0, n));
      this.#offset = 0;
    } catch (e) {
      this.error = errnoOf(e);
      this.#eof = true;
      this.#pending = "";
      this.#offset = 0;
    }
  }

  /** The next line, reading as needed; null at end of stream or error. */
  async line(): Promise<string | null> {
    for (;;) {
      const line = this.next();
      if (line !== undefined) return line;
      await this.fill();
    }
  }
}

/**
 * userspace_interface_file(): connects to the interface's socket, or returns
 * an errno (EINVAL for a name with "/", EBADF for a file that is not a
 * socket, the stat or connect error otherwise; a refused socket is unlinked).
 */
async function openInterface(ctx: IpcContext, iface: string): Promise<Deno.Conn | number> {
  if (iface.includes("/")) return EINVAL;
  const path = socketPath(ctx, iface);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    return errnoOf(e);
  }
  if (!info.isSocket) return EBADF;
  try {
    return await Deno.connect({ transport: "unix", path });
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === ECONNREFUSED && !ctx.keepStale) await Deno.remove(path).catch(() => {});
    return errno;
  }
}

/**
 * userspace_has_wireguard_interface(): the socket exists, is a socket, and a
 * connection is not refused (other connect errors still count as present).
 */
export async function hasUserspaceInterface(ctx: IpcContext, iface: string): Promise<boolean> {
  if (iface.includes("/")) return false;
  const path = socketPath(ctx, iface);
  const state = await probeSocket(path);
  if (state === "refused" && !ctx.keepStale) await Deno.remove(path).catch(() => {});
  return state === "live" || state === "failed";
}

function kernelModuleLoaded(): boolean {
  try {
    return Deno.statSync("/sys/module/wireguard").isDirectory;
  } catch {
    return false;
  }
}

function kernelInterfaceKind(iface: string): "missing" | "wireguard" | "other" {
  if (iface === "" || iface === "." || iface === ".." || iface.includes("/")) return "missing";
  try {
    const uevent = Deno.readTextFileSync(`/sys/class/net/${bstrText(iface)}/uevent`);
    return /^DEVTYPE=wireguard$/m.test(uevent) ? "wireguard" : "other";
  } catch {
    return "missing";
  }
}

/** The errno of `kernel_get_device`/`kernel_set_device` for `iface` (never 0: see the module doc). */
function kernelError(iface: string): number {
  if (!kernelModuleLoaded()) return EPROTONOSUPPORT;
  return kernelInterfaceKind(iface) === "missing" ? ENODEV : EOPNOTSUPP;
}

/** Kernel WireGuard interfaces by ifindex (what an RTM_GETLINK dump would list). */
function kernelInterfaces(): string[] {
  if (!kernelModuleLoaded()) return [];
  const found: [number, string][] = [];
  try {
    for (const e of Deno.readDirSync("/sys/class/net")) {
      const name = bstr(e.name);
      if (kernelInterfaceKind(name) !== "wireguard") continue;
      try {
        const index = Number(Deno.readTextFileSync(`/sys/class/net/${e.name}/ifindex`).trim());
        found.push([index, name]);
      } catch {
        // raced with removal
      }
    }
  } catch {
    // no sysfs
  }
  return found.sort((a, b) => a[0] - b[0]).map(([, n]) => n);
}

/**
 * ipc_list_devices(): kernel WireGuard interfaces, then userspace ones in
 * directory order; an errno when the directory cannot be read (a missing
 * directory is an empty list).
 */
export async function listDevices(ctx: IpcContext): Promise<string[] | number> {
  const names = kernelInterfaces();
  let entries: string[];
  try {
    entries = (await socketNames(ctx.socketDir)).map(bstr);
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === ENOENT) return names;
    return errno;
  }
  for (const iface of entries) {
    if (await hasUserspaceInterface(ctx, iface)) names.push(iface);
  }
  return names;
}

/** The result of {@link getDevice}: `ret` as `ipc_get_device` returns it. */
export interface GetResult {
  /**
   * 0 on success; a negative errno on failure; or +ENETUNREACH when the
   * daemon reported an endpoint that does not resolve (a `wg` quirk: `wg
   * show` then crashes, `wg showconf` prints "Unknown error -101").
   */
  ret: number;
  device: WgDevice | null;
}

/** `NUM(max)` of ipc-uapi.h: a decimal that starts with a digit and is ≤ max, else null. */
function num(value: string, max: bigint): bigint | null {
  if (!charIsDigit(value.charCodeAt(0))) return null;
  const r = strtoul(value, 10);
  if (r.end !== value.length || r.value > max) return null;
  return r.value;
}

/** Splits `host:port` / `[host]:port` as `wg` does, or null. */
export function splitEndpoint(value: string): { host: string; port: string } | null {
  if (value.length === 0) return null;
  if (value[0] === "[") {
    const close = value.indexOf("]");
    if (close < 0) return null;
    if (value[close + 1] !== ":" || close + 2 >= value.length) return null;
    return { host: value.slice(1, close), port: value.slice(close + 2) };
  }
  const colon = value.lastIndexOf(":");
  if (colon < 0 || colon + 1 >= value.length) return null;
  return { host: value.slice(0, colon), port: value.slice(colon + 1) };
}

/**
 * parseGetLines() is userspace_get_device's parser: feeds lines (each with
 * its "\n") and returns the final `ret` once the blank line, a bad line or
 * the end arrives.
 */
export class GetParser {
  readonly device: WgDevice;
  readonly #resolver: Resolver;
  #peer: WgPeer | null = null;
  #ret = -EPROTO;
  #done: number | null = null;

  constructor(iface: string, resolver: Resolver) {
    this.device = newDevice();
    this.device.name = ifname(iface);
    this.#resolver = resolver;
  }

  /** The result once finished, else null. */
  get result(): number | null {
    return this.#done;
  }

  /** Finishes without a blank line (end of stream): EPROTO. */
  end(): number {
    if (this.#done === null) this.#done = -EPROTO;
    return this.#done;
  }

  /**
   * Handles one line; returns the result when parsing is over, else null.
   * Synchronous except for an endpoint that needs a name lookup.
   */
  line(raw: string): number | null | Promise<number | null> {
    if (this.#done !== null) return this.#done;
    if (raw === "\n") return (this.#done = this.#ret);
    const eq = raw.indexOf("=");
    // C measures the line with strlen(): a NUL hides the "\n" after it.
    if (eq < 0 || !raw.endsWith("\n") || raw.includes("\0")) return (this.#done = -EPROTO);
    const ok = this.#apply(raw.slice(0, eq), raw.slice(eq + 1, -1));
    return ok instanceof Promise ? ok.then((v) => this.#settle(v)) : this.#settle(ok);
  }

  #settle(ok: boolean | number): number | null {
    if (ok === false) return (this.#done = -EPROTO);
    if (typeof ok === "number") return (this.#done = ok);
    return null;
  }

  /** An endpoint through the resolver (names, scopes, service names). */
  async #resolveEndpoint(peer: WgPeer, host: string, port: string): Promise<boolean | number> {
    const r = await resolveHost(this.#resolver, host, port);
    if (!r.ok) return ENETUNREACH;
    if (!r.addr) return false;
    peer.endpoint = r.addr;
    return true;
  }

  /** true: handled; false: malformed (EPROTO); a number: stop with that ret. */
  #apply(key: string, value: string): boolean | number | Promise<boolean | number> {
    const dev = this.device;
    const peer = this.#peer;
    if (!peer && key === "private_key") {
      const k = keyFromHex(value);
      if (!k) return false;
      dev.privateKey = k;
      dev.publicKey = publicKey(k);
      dev.flags |= WGDEVICE_HAS_PRIVATE_KEY | WGDEVICE_HAS_PUBLIC_KEY;
    } else if (!peer && key === "listen_port") {
      const n = num(value, 0xffffn);
      if (n === null) return false;
      dev.listenPort = Number(n);
      dev.flags |= WGDEVICE_HAS_LISTEN_PORT;
    } else if (!peer && key === "fwmark") {
      const n = num(value, 0xffffffffn);
      if (n === null) return false;
      dev.fwmark = Number(n);
      dev.flags |= WGDEVICE_HAS_FWMARK;
    } else if (key === "public_key") {
      const p = newPeer();
      dev.peers.push(p);
      this.#peer = p;
      const k = keyFromHex(value);
      if (!k) return false;
      p.publicKey = k;
      p.flags |= WGPEER_HAS_PUBLIC_KEY;
    } else if (peer && key === "preshared_key") {
      const k = keyFromHex(value);
      if (!k) return false;
      peer.presharedKey = k;
      if (!keyIsZero(k)) peer.flags |= WGPEER_HAS_PRESHARED_KEY;
    } else if (peer && key === "endpoint") {
      const parts = splitEndpoint(value);
      if (!parts) return false;
      const fast = numericEndpoint(parts.host, parts.port);
      if (!fast?.ok || !fast.addr) return this.#resolveEndpoint(peer, parts.host, parts.port);
      peer.endpoint = fast.addr;
    } else if (peer && key === "persistent_keepalive_interval") {
      const n = num(value, 0xffffn);
      if (n === null) return false;
      peer.persistentKeepalive = Number(n);
      peer.flags |= WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL;
    } else if (peer && key === "allowed_ip") {
      const slash = value.indexOf("/");
      if (slash < 0) return false;
      const ipText = value.slice(0, slash);
      const mask = value.slice(slash + 1);
      if (!charIsDigit(mask.charCodeAt(0))) return false;
      const ip = ipText.includes(":") ? inetPton6(ipText) : inetPton4(ipText);
      // The C stores the prefix length in a uint8_t before checking it.
      const r = strtoul(mask, 10);
      const cidr = Number(r.value & 0xffn);
      const entry: WgAllowedIp | null = ip
        ? { family: ip.length === 4 ? 4 : 6, addr: ip, cidr, remove: false }
        : null;
      if (r.end !== mask.length || !entry) return false;
      if ((entry.family === 6 && cidr > 128) || (entry.family === 4 && cidr > 32)) return false;
      peer.allowedIps.push(entry);
    } else if (peer && key === "last_handshake_time_sec") {
      const n = num(value, 0x7fffffffffffffffn);
      if (n === null) return false;
      peer.lastHandshakeSec = n;
    } else if (peer && key === "last_handshake_time_nsec") {
      const n = num(value, 0x7fffffffffffffffn);
      if (n === null) return false;
      peer.lastHandshakeNsec = n;
    } else if (peer && key === "rx_bytes") {
      const n = num(value, 0xffffffffffffffffn);
      if (n === null) return false;
      peer.rxBytes = n;
    } else if (peer && key === "tx_bytes") {
      const n = num(value, 0xffffffffffffffffn);
      if (n === null) return false;
      peer.txBytes = n;
    } else if (key === "errno") {
      const n = num(value, 0x7fffffffn);
      if (n === null) return false;
      this.#ret = n === 0n ? 0 : -Number(n);
    }
    return true;
  }
}

/**
 * ipc_get_device(): the userspace daemon when its socket answers, else the
 * kernel path (see the module doc).
 */
export async function getDevice(ctx: IpcContext, iface: string): Promise<GetResult> {
  if (!(await hasUserspaceInterface(ctx, iface))) {
    if (iface.length >= 16) return { ret: -ENAMETOOLONG, device: null };
    return { ret: -kernelError(iface), device: null };
  }
  return await userspaceGetDevice(ctx, iface);
}

/** userspace_get_device(): a `get` over the interface's socket. */
export async function userspaceGetDevice(ctx: IpcContext, iface: string): Promise<GetResult> {
  const parser = new GetParser(iface, ctx.resolver);
  const ret = await exchange(ctx, iface, "get=1\n\n", false, async (reader) => {
    for (;;) {
      let line = reader.next();
      if (line === undefined) line = await reader.line();
      if (line === null) return parser.end();
      let r = parser.line(line);
      if (r instanceof Promise) r = await r;
      if (r !== null) return r;
    }
  });
  return { ret, device: ret === 0 ? parser.device : null };
}

/**
 * exchange() writes `request` on a new connection to `iface`'s socket and
 * returns what `reply` makes of the answer; a negative errno when the socket
 * cannot be opened or written to, -ETIMEDOUT when {@link IpcContext.timeoutMs}
 * passes first. With `sigpipe`, a daemon that hangs up while the request is
 * still being written kills `wg` as SIGPIPE would, with status 141
 * ({@link WgExit}), as it does for a set.
 */
async function exchange(
  ctx: IpcContext,
  iface: string,
  request: string,
  sigpipe: boolean,
  reply: (reader: LineReader) => Promise<number>,
): Promise<number> {
  const conn = await openInterface(ctx, iface);
  if (typeof conn === "number") return -conn;
  let timedOut = false;
  const timer = ctx.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    close(conn);
  }, ctx.timeoutMs);
  try {
    try {
      await writeAll(conn, request);
    } catch (e) {
      if (timedOut) return -ETIMEDOUT;
      const errno = errnoOf(e);
      if (sigpipe && errno === EPIPE) throw new WgExit(128 + 13);
      return -errno;
    }
    const ret = await reply(new LineReader(conn));
    return timedOut ? -ETIMEDOUT : ret;
  } finally {
    clearTimeout(timer);
    close(conn);
  }
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

async function writeAll(conn: Deno.Conn, text: string): Promise<void> {
  const data = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) data[i] = text.charCodeAt(i) & 0xff;
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** The text of a UAPI set for `dev`, in `userspace_set_device`'s order. */
export function formatSet(dev: WgDevice, resolver: Resolver): string {
  let out = "set=1\n";
  if (dev.flags & WGDEVICE_HAS_PRIVATE_KEY) out += `private_key=${keyToHex(dev.privateKey)}\n`;
  if (dev.flags & WGDEVICE_HAS_LISTEN_PORT) out += `listen_port=${dev.listenPort}\n`;
  if (dev.flags & WGDEVICE_HAS_FWMARK) out += `fwmark=${dev.fwmark >>> 0}\n`;
  if (dev.flags & WGDEVICE_REPLACE_PEERS) out += "replace_peers=true\n";
  for (const peer of dev.peers) {
    out += `public_key=${keyToHex(peer.publicKey)}\n`;
    if (peer.flags & WGPEER_REMOVE_ME) {
      out += "remove=true\n";
      continue;
    }
    if (peer.flags & WGPEER_HAS_PRESHARED_KEY) {
      out += `preshared_key=${keyToHex(peer.presharedKey)}\n`;
    }
    if (peer.endpoint) out += `endpoint=${formatSockAddr(peer.endpoint, resolver)}\n`;
    if (peer.flags & WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL) {
      out += `persistent_keepalive_interval=${peer.persistentKeepalive}\n`;
    }
    if (peer.flags & WGPEER_REPLACE_ALLOWEDIPS) out += "replace_allowed_ips=true\n";
    for (const ip of peer.allowedIps) {
      out += `allowed_ip=${ip.remove ? "-" : ""}${inetNtop(ip.addr)}/${ip.cidr}\n`;
    }
  }
  return out + "\n";
}

/** errno=N of a set reply: an optional "-", then digits, within `int` range. */
function parseSetErrno(value: string): number | null {
  if (!/^-?[0-9]+$/.test(value)) return null;
  const n = BigInt(value);
  if (n > 0x7fffffffn || n < -0x80000000n) return null;
  return Number(n);
}

/**
 * ipc_set_device(): sends the set and returns `ret` as `wg` gets it: the
 * daemon's errno value (0 for success), -EPROTO when the reply has no blank
 * line, or a negative errno when the socket failed (the kernel path's error
 * when no socket answers).
 */
export async function setDevice(ctx: IpcContext, dev: WgDevice): Promise<number> {
  if (!(await hasUserspaceInterface(ctx, dev.name))) return -kernelError(dev.name);
  return await userspaceSetDevice(ctx, dev);
}

/** userspace_set_device(): a `set` over the interface's socket ({@link setDevice}). */
export async function userspaceSetDevice(ctx: IpcContext, dev: WgDevice): Promise<number> {
  return await exchange(ctx, dev.name, formatSet(dev, ctx.resolver), true, async (reader) => {
    let setErrno = -EPROTO;
    for (;;) {
      const line = await reader.line();
      if (line === null) break;
      if (line === "\n") return setErrno;
      const eq = line.indexOf("=");
      if (eq < 0 || !line.endsWith("\n") || line.includes("\0")) break;
      if (line.slice(0, eq) === "errno") {
        const n = parseSetErrno(line.slice(eq + 1, -1));
        if (n === null) break;
        setErrno = n;
      }
    }
    return reader.error ? -reader.error : -EPROTO;
  });
}
