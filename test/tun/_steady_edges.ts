// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Pushes packets through the Linux edges inside a network namespace and
 * reports what that cost the heap (steady_edges_test.ts runs it). Run it as
 *
 *   ip netns exec NS deno run -A \
 *     --v8-flags=--expose-gc,--trace-gc,--max-semi-space-size=1 \
 *     test/tun/_steady_edges.ts [rounds]
 *
 * Each round:
 * - UDP: 32 datagrams over IPv4 and 32 over IPv6 loopback from one
 *   LinuxBind to another (sendmmsg with UDP GSO, recvmmsg with UDP GRO where
 *   the kernel has them), all received;
 * - a plain TUN: 16 ICMP echo requests written, 16 replies read back;
 * - a TUN with offloads (IFF_VNET_HDR): 8 TCP segments of one flow, which
 *   the write side coalesces into one TSO frame, to a closed port (the
 *   kernel answers with a RST, whose partial checksum the read side
 *   completes), and an echo request written alone; its reply and a RST read.
 *
 * Setup and warm-up rounds run first; then `gc()` (a "testing" line in the
 * --trace-gc output), the measured rounds, and `gc()` again. Every scavenge
 * V8 prints between those two lines happened during the measured rounds;
 * with a 1 MiB young generation, 8 bytes a packet would show. stdout carries
 * only V8's lines; the JSON summary goes to stderr.
 */
import { LinuxBind } from "../../src/conn/udp.ts";
import { Endpoint } from "../../src/conn/endpoint.ts";
import { LinuxTun } from "../../src/tun/linux.ts";
import { libc, POLLIN } from "../../src/sys/libc.ts";
import { echoRequest, internetChecksum } from "../_util/packets.ts";

const rounds = Number(Deno.args[0] ?? 2000);
const WARMUP = 300;
const gc = (globalThis as unknown as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");

const c = libc();
const pollfds = new Int32Array(4); // two struct pollfd { int fd; short events, revents; }
const ONE = 1n, TWO = 2n;

/** Waits up to 2 s for `fd` (and `fd2`, if ≥ 0) to be readable; throws when nothing comes. */
function waitReadable(fd: number, fd2: number, what: string): void {
  pollfds[0] = fd;
  pollfds[1] = POLLIN;
  pollfds[2] = fd2;
  pollfds[3] = POLLIN;
  if (c.poll(pollfds, fd2 >= 0 ? TWO : ONE, 2000) <= 0) throw new Error(`${what}: nothing to read`);
}

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

// ---- UDP: one LinuxBind to another over loopback, IPv4 and IPv6.

// Counters stay small integers: a module-level number past 2^30 is a heap number, and every
// update would allocate one (the helper's own cost, not the edges').
let datagrams = 0, badDatagrams = 0;
const onDatagram = (data: Uint8Array, _ep: Endpoint): void => {
  datagrams++;
  const ok = data.length === 1452 ? data[1451] === 0x5a : data.length === 300 && data[299] === 0xa5;
  if (!ok) badDatagrams++;
};
const rx = new LinuxBind(), tx = new LinuxBind();
const port = rx.open(0, onDatagram);
tx.open(0, () => {});
const [rx4, rx6] = rx.fds();
const to4 = new Endpoint(4, new Uint8Array([127, 0, 0, 1]), port);
const loopback6 = new Uint8Array(16);
loopback6[15] = 1;
const to6 = new Endpoint(6, loopback6, port);
// Equal sizes then a shorter last one: what a GSO message may carry.
const full = new Uint8Array(1452).fill(0x5a), short = new Uint8Array(300).fill(0xa5);

function udpRound(): void {
  const want = datagrams + 64;
  for (let i = 0; i < 32; i++) tx.send(i === 31 ? short : full, to4);
  for (let i = 0; i < 32; i++) tx.send(i === 31 ? short : full, to6);
  tx.flush();
  while (datagrams < want) {
    waitReadable(rx4, rx6, "UDP");
    rx.drain();
  }
}

// ---- A plain TUN: echo requests in, replies out.

const TUN_PLAIN = "gtsteady0", TUN_VNET = "gtsteady1";
const plain = LinuxTun.create(TUN_PLAIN);
await ip("address", "add", "10.77.0.1/24", "dev", TUN_PLAIN);
await ip("link", "set", TUN_PLAIN, "up");
const echoPlain = echoRequest("10.77.0.2", "10.77.0.1", 7, 1);
let plainReplies = 0;
const onPlain = (p: Uint8Array): void => {
  if (p[9] === 1 && p[20] === 0) plainReplies++;
};

function plainRound(): void {
  const want = plainReplies + 16;
  for (let i = 0; i < 16; i++) plain.write(echoPlain);
  while (plainReplies < want) {
    waitReadable(plain.fd, -1, "plain TUN");
    if (plain.drain(onPlain) < 0) throw new Error("plain TUN gone");
  }
}

// ---- A TUN with offloads: a TCP flow coalesced on write, RSTs and echo replies read.

const vnet = LinuxTun.create(TUN_VNET, { offload: true });
await ip("address", "add", "10.78.0.1/24", "dev", TUN_VNET);
await ip("link", "set", TUN_VNET, "up");
const echoVnet = echoRequest("10.78.0.2", "10.78.0.1", 7, 2);
const segments = Array.from({ length: 8 }, (_, i) => tcpSegment(1_000_000 + i * 1000, 1000));
let vnetReplies = 0, resets = 0;
const onVnet = (p: Uint8Array): void => {
  if (p[9] === 1 && p[20] === 0) vnetReplies++;
  else if (p[9] === 6 && (p[33] & 0x04) !== 0) resets++;
};

function vnetRound(): void {
  const wantReplies = vnetReplies + 1, wantResets = resets + 1;
  for (let i = 0; i < segments.length; i++) vnet.write(segments[i]);
  vnet.write(echoVnet);
  vnet.flush();
  while (vnetReplies < wantReplies || resets < wantResets) {
    waitReadable(vnet.fd, -1, "offload TUN");
    if (vnet.drain(onVnet) < 0) throw new Error("offload TUN gone");
  }
}

/** An IPv4 TCP ACK segment 10.78.0.2:40000 → 10.78.0.1:9 (closed) with `len` bytes at `seq`. */
function tcpSegment(seq: number, len: number): Uint8Array {
  const p = new Uint8Array(40 + len);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, p.length);
  p[6] = 0x40; // DF
  p[8] = 64;
  p[9] = 6;
  p.set([10, 78, 0, 2, 10, 78, 0, 1], 12);
  dv.setUint16(10, internetChecksum(p.subarray(0, 20)));
  dv.setUint16(20, 40000);
  dv.setUint16(22, 9);
  dv.setUint32(24, seq);
  dv.setUint32(28, 1);
  p[32] = 5 << 4;
  p[33] = 0x10; // ACK
  dv.setUint16(34, 65535);
  for (let i = 0; i < len; i++) p[40 + i] = (seq + i) & 0xff;
  // Pseudo header: addresses, protocol, TCP length.
  let pseudo = 6 + 20 + len;
  for (let o = 12; o < 20; o += 2) pseudo += dv.getUint16(o);
  dv.setUint16(36, internetChecksum(p.subarray(20), pseudo));
  return p;
}

function round(): void {
  udpRound();
  plainRound();
  vnetRound();
}

for (let i = 0; i < WARMUP; i++) round();
gc();
const heapBefore = Deno.memoryUsage().heapUsed;
const before = { datagrams, plainReplies, vnetReplies, resets };
for (let i = 0; i < rounds; i++) round();
const heapAfter = Deno.memoryUsage().heapUsed;
gc();

const packets = (datagrams - before.datagrams) + 16 * rounds +
  (plainReplies - before.plainReplies) +
  9 * rounds + (vnetReplies - before.vnetReplies) + (resets - before.resets);
const summary = {
  rounds,
  datagrams: datagrams - before.datagrams,
  badDatagrams,
  plainReplies: plainReplies - before.plainReplies,
  vnetReplies: vnetReplies - before.vnetReplies,
  resets: resets - before.resets,
  gro: { on: rx.groEnabled(4), messages: rx.groMessages, segments: rx.groSegments },
  gso: { on: tx.gsoEnabled(4), messages: tx.gsoMessages, segments: tx.gsoSegments },
  coalescedFrames: vnet.groStats?.coalescedFrames ?? 0,
  csumCompleted: vnet.splitStats?.csumCompleted ?? 0,
  writeErrors: plain.writeErrors + vnet.writeErrors,
  sendErrors: tx.sendErrors,
  recvErrors: rx.recvErrors,
  bytesPerPacket: (heapAfter - heapBefore) / packets,
};
rx.close();
tx.close();
plain.close();
vnet.close();
Deno.stderr.writeSync(new TextEncoder().encode(JSON.stringify(summary) + "\n"));
