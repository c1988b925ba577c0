// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * LinuxBind GSO/GRO scenarios for udp_gso_test.ts, run inside a network
 * namespace with `ip netns exec`. Prints JSON lines on stdout.
 *
 * - `recv <gro:on|off> <count> <timeoutMs>`: opens a bind on a free port,
 *   prints `READY <port> <groV4> <groV6>`, then collects `count` datagrams
 *   (or stops at the timeout) and prints what arrived per stream, with the
 *   bind's GRO counters.
 * - `send <gso:on|off> <plan> [options]`: queues every datagram of the plan
 *   (JSON {@link Datagram} array), flushing once at the end or as
 *   {@link SendOptions} (JSON) say, and prints the GSO counters.
 * - `ethtool <ifname> <gro|tso> <on|off>`: turns a device's GRO or TSO on or
 *   off with the legacy one-feature ioctls (so the `ethtool` tool is not
 *   needed) and prints the resulting state.
 *
 * Payload of a datagram: seq (u32 BE), stream id (u8), then byte
 * `(seq * 7 + stream + i) & 0xff` at every offset i ≥ 5, so the receiver can
 * check each one for size and content without knowing the plan.
 */
import { LinuxBind } from "../../src/conn/udp.ts";
import { Endpoint } from "../../src/conn/endpoint.ts";
import { EventLoop } from "../../src/event_loop.ts";
import { runUntil } from "../_util/run_loop.ts";
import { parseIPv4, parseIPv6 } from "../../src/ip.ts";
import {
  AF_INET,
  closeQuietly,
  errno,
  libc,
  SIZEOF_IFREQ,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOL_SOCKET,
} from "../../src/sys/libc.ts";

/** One planned datagram: destination, optional sticky source, stream id, sequence, size. */
export interface Datagram {
  to: string;
  src?: string;
  stream: number;
  seq: number;
  len: number;
}

/** What the receiver saw of one stream. */
export interface StreamLog {
  seqs: number[];
  lens: number[];
  from: string[];
}

/** Fills `buf` (≥ 5 bytes) as datagram `seq` of `stream`. */
export function fillPayload(buf: Uint8Array, stream: number, seq: number): void {
  buf[0] = seq >>> 24;
  buf[1] = (seq >>> 16) & 0xff;
  buf[2] = (seq >>> 8) & 0xff;
  buf[3] = seq & 0xff;
  buf[4] = stream;
  for (let i = 5; i < buf.length; i++) buf[i] = (seq * 7 + stream + i) & 0xff;
}

/** The (stream, seq) of a payload, or null when its content is damaged. */
export function checkPayload(buf: Uint8Array): { stream: number; seq: number } | null {
  if (buf.length < 5) return null;
  const seq = ((buf[0] << 24) | (buf[1] << 16) | (buf[2] << 8) | buf[3]) >>> 0;
  const stream = buf[4];
  for (let i = 5; i < buf.length; i++) {
    if (buf[i] !== ((seq * 7 + stream + i) & 0xff)) return null;
  }
  return { stream, seq };
}

function print(obj: unknown): void {
  // deno-lint-ignore no-console
  console.log(JSON.stringify(obj));
}

function recv(gro: boolean, count: number, timeoutMs: number): void {
  const bind = new LinuxBind({ gro });
  const streams: Record<number, StreamLog> = {};
  let got = 0, bad = 0;
  const port = bind.open(0, (data, from) => {
    got++;
    const id = checkPayload(data);
    if (id === null) {
      bad++;
      return;
    }
    const log = streams[id.stream] ??= { seqs: [], lens: [], from: [] };
    log.seqs.push(id.seq);
    log.lens.push(data.length);
    const f = from.toString().replace(/:\d+$/, "");
    if (!log.from.includes(f)) log.from.push(f);
  });
  const loop = new EventLoop();
  for (const fd of bind.fds()) loop.add(fd, () => bind.drain());
  // deno-lint-ignore no-console
  console.log(`READY ${port} ${bind.groEnabled(4)} ${bind.groEnabled(6)}`);
  runUntil(loop, () => got >= count, timeoutMs);
  // A short grace period shows extra (duplicated) datagrams, if any.
  runUntil(loop, () => false, 50);
  loop.close();
  print({
    got,
    bad,
    streams,
    groMessages: bind.groMessages,
    groSegments: bind.groSegments,
    recvErrors: bind.recvErrors,
  });
  bind.close();
}

/** Options of the `send` scenario. */
export interface SendOptions {
  /** Flush after every this many datagrams (default: once, at the end). */
  flushEvery?: number;
  /** Pause between those flushes, in ms. */
  pauseMs?: number;
  /**
   * Set SO_NO_CHECK on the IPv4 socket: the kernel then refuses GSO sends with
   * EINVAL (udp_send_skb), a way to make it refuse without a special route.
   */
  noCheck?: boolean;
}

async function send(gso: boolean, plan: Datagram[], opts: SendOptions): Promise<void> {
  const bind = new LinuxBind({ gso });
  bind.open(0, () => {});
  if (opts.noCheck) {
    const SO_NO_CHECK = 11;
    const one = new Int32Array([1]);
    if (libc().setsockopt(bind.fds()[0], SOL_SOCKET, SO_NO_CHECK, one, 4) < 0) {
      throw new Error(`SO_NO_CHECK: errno ${errno()}`);
    }
  }
  const before = { v4: bind.gsoEnabled(4), v6: bind.gsoEnabled(6) };
  let refused = 0, queued = 0;
  for (const d of plan) {
    const ep = Endpoint.parse(d.to);
    if (d.src !== undefined) {
      ep.srcAddress = d.src.includes(":") ? parseIPv6(d.src) : parseIPv4(d.src);
    }
    const buf = new Uint8Array(d.len);
    fillPayload(buf, d.stream, d.seq);
    if (!bind.send(buf, ep)) refused++;
    if (opts.flushEvery !== undefined && ++queued % opts.flushEvery === 0) {
      bind.flush();
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  }
  bind.flush();
  print({
    refused,
    gsoBefore: before,
    gsoAfter: { v4: bind.gsoEnabled(4), v6: bind.gsoEnabled(6) },
    gsoMessages: bind.gsoMessages,
    gsoSegments: bind.gsoSegments,
    gsoFallbacks: bind.gsoFallbacks,
    sendErrors: bind.sendErrors,
    lastSendErrno: bind.lastSendErrno,
  });
  bind.close();
}

/** SIOCETHTOOL with a struct ethtool_value {cmd, data}; returns data, or −errno. */
function ethtoolValue(ifname: string, cmd: number, data: number): number {
  const SIOCETHTOOL = 0x8946;
  const c = libc();
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno();
  try {
    const val = new Uint32Array([cmd, data]);
    const req = new Uint8Array(SIZEOF_IFREQ);
    req.set(new TextEncoder().encode(ifname));
    // ifr_data (a pointer) sits at offset 16; `val` stays referenced until the call returns.
    new DataView(req.buffer).setBigUint64(
      16,
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(val))),
      true,
    );
    if (c.ioctl(fd, BigInt(SIOCETHTOOL), req) < 0) return -errno();
    return val[1];
  } finally {
    closeQuietly(fd);
  }
}

const [scenario, ...args] = Deno.args;
switch (scenario) {
  case "recv":
    recv(args[0] === "on", Number(args[1]), Number(args[2]));
    break;
  case "send":
    await send(args[0] === "on", JSON.parse(args[1]), JSON.parse(args[2] ?? "{}"));
    break;
  case "ethtool": {
    // Legacy one-feature ioctls (linux/ethtool.h): ETHTOOL_{G,S}GRO, ETHTOOL_{G,S}TSO.
    const [get, set] = args[1] === "tso" ? [0x1e, 0x1f] : [0x2b, 0x2c];
    const r = ethtoolValue(args[0], set, args[2] === "on" ? 1 : 0);
    print({ set: r < 0 ? r : 0, value: ethtoolValue(args[0], get, 0) });
    break;
  }
  default:
    throw new Error(`unknown scenario ${scenario}`);
}
