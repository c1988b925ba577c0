// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Runs one LinuxTun offload scenario inside the network namespace it was
 * started in (`ip netns exec`, from offload_test.ts) and prints its findings
 * as one JSON line. Usage: `_offload_helper.ts <scenario> <ifname> [arg]`.
 *
 * The traffic scenarios use a reflector: the TUN holds address A, traffic
 * to B is routed into it, and every TCP/UDP packet read is written back with
 * source and destination addresses swapped (ports kept). A local client
 * talking to B:port thus reaches a local server on A:port, which sees the
 * client as B. Swapping addresses keeps every checksum valid (the pseudo
 * header sums both), so whatever arrives proves that the split read and
 * the coalesced write were both right.
 */
import { LinuxTun } from "../../src/tun/linux.ts";
import { LinuxBind } from "../../src/conn/udp.ts";
import { EventLoop } from "../../src/event_loop.ts";
import { runSlices, runUntil } from "../_util/run_loop.ts";
import {
  addressOf,
  AF_INET,
  AF_INET6,
  closeQuietly,
  errno,
  F_DUPFD_CLOEXEC,
  libc,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  strerror,
} from "../../src/sys/libc.ts";

const [scenario, ifname, arg] = Deno.args;
const SOL_UDP = 17;
const UDP_SEGMENT = 103;

async function ip(...args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(10_000),
  }).output();
  const dec = new TextDecoder();
  if (!out.success) throw new Error(`ip ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout);
}

/** Naive RFC 1071 sum (not complemented), independent of src/tun/offload.ts. */
function sum(b: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i] << 8) | b[i + 1];
  if (b.length & 1) s += b[b.length - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** IPv4 header and TCP/UDP checksums of `p` verify. */
function checksumsOk(p: Uint8Array): boolean {
  const v6 = p[0] >> 4 === 6;
  const iph = v6 ? 40 : (p[0] & 15) * 4;
  if (!v6 && sum(p.subarray(0, iph)) !== 0xffff) return false;
  const proto = v6 ? p[6] : p[9];
  const l4 = p.subarray(iph);
  const pseudo = sum(p.subarray(v6 ? 8 : 12, v6 ? 40 : 20), proto + l4.length);
  return sum(l4, pseudo) === 0xffff;
}

/** Counters kept by {@link reflector}. */
interface ReflectStats {
  reflected: number;
  badChecksums: number;
  maxPacket: number;
}

/**
 * An event loop handler that drains the TUN, checks every TCP/UDP packet's
 * checksums, swaps its addresses and writes it back, then flushes.
 */
function reflector(tun: LinuxTun, st: ReflectStats): () => void {
  function reflect(p: Uint8Array): void {
    const v6 = p[0] >> 4 === 6;
    const proto = v6 ? p[6] : p[9];
    if (proto !== 6 && proto !== 17) return; // ICMPv6 router solicitations, MLD, …
    if (v6 && p[8] === 0xff) return;
    st.maxPacket = Math.max(st.maxPacket, p.length);
    if (!checksumsOk(p)) st.badChecksums++;
    const at = v6 ? 8 : 12, n = v6 ? 16 : 4;
    for (let i = 0; i < n; i++) {
      const t = p[at + i];
      p[at + i] = p[at + n + i];
      p[at + n + i] = t;
    }
    st.reflected++;
    tun.write(p);
  }
  return () => {
    tun.drain(reflect, 1024);
    tun.flush();
  };
}

/** SHA-256 hex of `b`. */
async function sha(b: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  return d.toHex();
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `data` as one UDP_SEGMENT (GSO) datagram train from an FFI socket. */
class GsoSender {
  #fd: number;
  #v6: boolean;
  #mem = new ArrayBuffer(128);
  #u8 = new Uint8Array(this.#mem);
  #dv = new DataView(this.#mem);

  constructor(v6: boolean, segment: number) {
    const c = libc();
    this.#v6 = v6;
    this.#fd = c.socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (this.#fd < 0) throw new Error(`socket: ${strerror(errno())}`);
    const opt = new Int32Array([segment]);
    if (c.setsockopt(this.#fd, SOL_UDP, UDP_SEGMENT, opt, 4) < 0) {
      throw new Error(`UDP_SEGMENT: ${strerror(errno())}`);
    }
  }

  send(addr: Uint8Array, port: number, data: Uint8Array<ArrayBuffer>): void {
    // msghdr @0 (56 bytes), iovec @64 (16), sockaddr @96 (28).
    const dv = this.#dv, base = addressOf(this.#mem);
    this.#u8.fill(0);
    dv.setUint16(96, this.#v6 ? AF_INET6 : AF_INET, true);
    dv.setUint16(98, port);
    this.#u8.set(addr, this.#v6 ? 104 : 100);
    dv.setBigUint64(64, addressOf(data), true);
    dv.setBigUint64(72, BigInt(data.length), true);
    dv.setBigUint64(0, base + 96n, true);
    dv.setUint32(8, this.#v6 ? 28 : 16, true);
    dv.setBigUint64(16, base + 64n, true);
    dv.setBigUint64(24, 1n, true);
    const n = libc().sendmsg(this.#fd, this.#u8, 0);
    if (n < 0n) throw new Error(`sendmsg: ${strerror(errno())}`);
  }

  close(): void {
    closeQuietly(this.#fd);
  }
}

const result: Record<string, unknown> = {};

switch (scenario) {
  case "setup": {
    const tun = LinuxTun.create(ifname, { offload: true });
    result.vnetHdr = tun.vnetHdr;
    result.offloadFlags = tun.offloadFlags;
    const plain = LinuxTun.create(ifname + "p");
    result.plainVnetHdr = plain.vnetHdr;
    result.plainOffloadFlags = plain.offloadFlags;
    plain.close();
    const dup = libc().fcntl(tun.fd, F_DUPFD_CLOEXEC, 0);
    const adopted = LinuxTun.fromFd(dup, { mtu: 0 });
    result.fromFdVnet = adopted.vnetHdr;
    result.fromFdFlags = adopted.offloadFlags;
    adopted.close();
    const states = [tun.linkState()];
    await ip("link", "set", ifname, "up");
    states.push(tun.linkState());
    await ip("link", "set", ifname, "down");
    states.push(tun.linkState());
    result.states = states;
    // In another namespace only the probe write (behind a virtio header) can tell.
    await ip("link", "set", ifname, "netns", arg);
    await ip("-n", arg, "link", "set", ifname, "up");
    const moved = [tun.linkState()];
    await ip("-n", arg, "link", "set", ifname, "down");
    moved.push(tun.linkState());
    await ip("-n", arg, "link", "del", ifname);
    moved.push(tun.linkState());
    result.movedStates = moved;
    result.drainAfterDelete = tun.drain(() => {});
    tun.close();
    break;
  }
  case "tcp": {
    const v6 = arg === "6";
    const a = v6 ? "fd77::1" : "10.77.0.1", b = v6 ? "fd77::2" : "10.77.0.2";
    const tun = LinuxTun.create(ifname, { offload: true });
    await ip("addr", "add", v6 ? `${a}/64` : `${a}/24`, "dev", ifname, ...(v6 ? ["nodad"] : []));
    await ip("link", "set", ifname, "up");
    const st: ReflectStats = { reflected: 0, badChecksums: 0, maxPacket: 0 };
    const loop = new EventLoop();
    loop.add(tun.fd, reflector(tun, st));
    const data = new Uint8Array(1 << 20);
    crypto.getRandomValues(data.subarray(0, 65536));
    for (let i = 65536; i < data.length; i += 65536) data.copyWithin(i, 0, 65536);
    data[data.length - 1] ^= 0x5a;
    const listener = Deno.listen({ hostname: a, port: 5201 });
    // Deno's sockets need Deno's event loop: the reflector runs in slices.
    let settled = false;
    const transfer = (async () => {
      const serve = (async () => {
        const conn = await listener.accept();
        const got = new Uint8Array(data.length + 1);
        let n = 0;
        for (;;) {
          const r = await conn.read(got.subarray(n));
          if (r === null) break;
          n += r;
        }
        conn.close();
        return got.subarray(0, n);
      })();
      const client = await withTimeout(
        Deno.connect({ hostname: b, port: 5201 }),
        10_000,
        "connect",
      );
      await withTimeout(
        (async () => {
          for (let off = 0; off < data.length;) off += await client.write(data.subarray(off));
          await client.closeWrite();
        })(),
        30_000,
        "send",
      );
      const got = await withTimeout(serve, 30_000, "receive");
      client.close();
      return got;
    })().finally(() => settled = true);
    try {
      if (!await runSlices(loop, () => settled, 60_000)) throw new Error("timed out: transfer");
      const got = await transfer;
      result.received = got.length;
      result.sameData = got.length === data.length && await sha(got.slice()) === await sha(data);
    } finally {
      listener.close();
      loop.close();
    }
    result.mtu = tun.mtu;
    result.maxPacket = st.maxPacket;
    result.reflected = st.reflected;
    result.badChecksums = st.badChecksums;
    result.gsoFrames = tun.splitStats!.gsoFrames;
    result.gsoSegments = tun.splitStats!.gsoSegments;
    result.csumCompleted = tun.splitStats!.csumCompleted;
    result.malformed = tun.splitStats!.malformed;
    result.coalescedFrames = tun.groStats!.coalescedFrames;
    result.coalescedPackets = tun.groStats!.coalescedPackets;
    result.framesWritten = tun.groStats!.frames;
    result.writeErrors = tun.writeErrors;
    result.offloadFlags = tun.offloadFlags;
    tun.close();
    break;
  }
  case "udp": {
    const tun = LinuxTun.create(ifname, { offload: true });
    await ip("addr", "add", "10.77.0.1/24", "dev", ifname);
    await ip("addr", "add", "fd77::1/64", "dev", ifname, "nodad");
    await ip("link", "set", ifname, "up");
    const st: ReflectStats = { reflected: 0, badChecksums: 0, maxPacket: 0 };
    const loop = new EventLoop();
    loop.add(tun.fd, reflector(tun, st));
    const seen = new Set<string>();
    let bad = 0;
    const bind = new LinuxBind();
    const port = bind.open(0, (d) => {
      // Each datagram: [send#, segment#, then a pattern of both].
      const ok = d.length === 1000 &&
        d.every((x, i) => i < 2 || x === ((d[0] * 7 + d[1] + i) & 0xff));
      if (ok) seen.add(`${d[0]}/${d[1]}`);
      else bad++;
    });
    for (const fd of bind.fds()) loop.add(fd, () => bind.drain());
    const sends = 16, segs = 8;
    for (const fam of ["v4", "v6"]) {
      seen.clear();
      const v6 = fam === "v6";
      const sender = new GsoSender(v6, 1000);
      const dst = v6
        ? new Uint8Array([0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2])
        : new Uint8Array([10, 77, 0, 2]);
      const before = st.badChecksums;
      for (let s = 0; s < sends; s++) {
        const buf = new Uint8Array(segs * 1000);
        for (let g = 0; g < segs; g++) {
          const d = buf.subarray(g * 1000, (g + 1) * 1000);
          for (let i = 0; i < 1000; i++) d[i] = ((s + (v6 ? 100 : 0)) * 7 + g + i) & 0xff;
          d[0] = s + (v6 ? 100 : 0);
          d[1] = g;
        }
        sender.send(dst, port, buf);
      }
      sender.close();
      // The datagrams wait in the TUN's queue until the loop reflects them.
      runUntil(loop, () => seen.size === sends * segs, 10_000);
      result[fam] = {
        sent: sends * segs,
        received: seen.size,
        sameData: bad === 0,
        badChecksums: st.badChecksums - before,
      };
    }
    loop.close();
    bind.close();
    result.uso = (tun.offloadFlags & 0x60) === 0x60;
    result.gsoFrames = tun.splitStats!.gsoFrames;
    result.gsoSegments = tun.splitStats!.gsoSegments;
    result.coalescedFrames = tun.groStats!.coalescedFrames;
    result.coalescedPackets = tun.groStats!.coalescedPackets;
    result.writeErrors = tun.writeErrors;
    result.maxPacket = st.maxPacket;
    tun.close();
    break;
  }
  default:
    throw new Error(`unknown scenario ${scenario}`);
}

// deno-lint-ignore no-console
console.log(JSON.stringify(result));
