// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests of the IFF_VNET_HDR offload logic (`src/tun/offload.ts`): virtio
 * header codec, checksums against a naive byte-pair RFC 1071 sum, GSO split
 * of TSO/USO super-packets, GRO coalescing (wireguard-go's rules), split→GRO
 * round trips back to the original frame, malformed input, and seeded fuzz.
 * The last tests wire it into a real TUN in private `gtoff-` namespaces (root
 * only) through `_offload_helper.ts`.
 */
import assert from "node:assert/strict";
import {
  checksumAdd,
  finishChecksum,
  FRAME_CAPACITY,
  parseVirtioNetHdr,
  pseudoHeaderSum,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_LEN,
  type VirtioNetHdr,
  writeVirtioNetHdr,
} from "../../src/tun/offload.ts";
import { GroBatcher } from "../../src/tun/gro.ts";
import { GsoSplitter } from "../../src/tun/gso_split.ts";
import { seededRng } from "../_util/fake_clock.ts";
import { NETNS_NEEDS, runHelper, sh, uniqueName } from "../conn/_netns.ts";
import { ignoreUnless } from "../_util/needs.ts";

// ---- Independent reference helpers -------------------------------------------------------------

/** RFC 1071 the slow, obvious way: byte pairs, end-around carry, not complemented. */
function naiveSum(b: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i] << 8) | b[i + 1];
  if (b.length & 1) s += b[b.length - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** Pseudo-header sum computed independently from the source module. */
function naivePseudo(pkt: Uint8Array, proto: number, l4len: number): number {
  const v6 = pkt[0] >> 4 === 6;
  const addrs = pkt.subarray(v6 ? 8 : 12, v6 ? 40 : 20);
  return naiveSum(addrs, proto + l4len);
}

function ipHeaderLen(pkt: Uint8Array): number {
  return pkt[0] >> 4 === 6 ? 40 : (pkt[0] & 15) * 4;
}

function protoOf(pkt: Uint8Array): number {
  return pkt[0] >> 4 === 6 ? pkt[6] : pkt[9];
}

/** True when the IPv4 header checksum (if any) and the TCP/UDP checksum verify. */
function checksumsOk(pkt: Uint8Array): boolean {
  const iph = ipHeaderLen(pkt);
  if (pkt[0] >> 4 === 4 && naiveSum(pkt.subarray(0, iph)) !== 0xffff) return false;
  const l4 = pkt.subarray(iph);
  return naiveSum(l4, naivePseudo(pkt, protoOf(pkt), l4.length)) === 0xffff;
}

/** Length fields agree with the byte count. */
function lengthsOk(pkt: Uint8Array): boolean {
  const dv = view(pkt);
  const iph = ipHeaderLen(pkt);
  const ipOk = pkt[0] >> 4 === 6
    ? dv.getUint16(4) === pkt.length - 40
    : dv.getUint16(2) === pkt.length;
  return ipOk && (protoOf(pkt) !== 17 || dv.getUint16(iph + 4) === pkt.length - iph);
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

interface PacketSpec {
  v6?: boolean;
  udp?: boolean;
  src?: number;
  dst?: number;
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  id?: number;
  ttl?: number;
  tos?: number;
  df?: boolean;
  ipOptions?: number[];
  tcpOptions?: number[];
  payload: Uint8Array;
  /** Leave the L4 checksum as the pseudo-header partial (NEEDS_CSUM style). */
  partial?: boolean;
  /** Corrupt the L4 checksum. */
  badCsum?: boolean;
}

const ACK = 0x10, PSH = 0x08, FIN = 0x01, SYN = 0x02, RST = 0x04, URG = 0x20, CWR = 0x80;

/** A complete IPv4/IPv6 + TCP/UDP packet with correct checksums (unless asked otherwise). */
function packet(spec: PacketSpec): Uint8Array {
  const v6 = spec.v6 ?? false, udp = spec.udp ?? false;
  const ipOpt = spec.ipOptions ?? [], tcpOpt = spec.tcpOptions ?? [];
  const iph = v6 ? 40 : 20 + ipOpt.length;
  const l4h = udp ? 8 : 20 + tcpOpt.length;
  const p = new Uint8Array(iph + l4h + spec.payload.length);
  const dv = view(p);
  if (v6) {
    dv.setUint32(0, 0x60000000 | ((spec.tos ?? 0) << 20) | 0x12345);
    dv.setUint16(4, p.length - 40);
    p[6] = udp ? 17 : 6;
    p[7] = spec.ttl ?? 64;
    p[8] = 0xfd;
    p[23] = spec.src ?? 1;
    p[24] = 0xfd;
    p[39] = spec.dst ?? 2;
  } else {
    p[0] = 0x40 | (iph / 4);
    p[1] = spec.tos ?? 0;
    dv.setUint16(2, p.length);
    dv.setUint16(4, spec.id ?? 0x1234);
    p[6] = (spec.df ?? true) ? 0x40 : 0;
    p[8] = spec.ttl ?? 64;
    p[9] = udp ? 17 : 6;
    p.set([10, 0, 0, spec.src ?? 1], 12);
    p.set([10, 0, 0, spec.dst ?? 2], 16);
    p.set(ipOpt, 20);
    dv.setUint16(10, ~naiveSum(p.subarray(0, iph)) & 0xffff);
  }
  dv.setUint16(iph, spec.sport ?? 40000);
  dv.setUint16(iph + 2, spec.dport ?? 5201);
  let csumAt: number;
  if (udp) {
    dv.setUint16(iph + 4, p.length - iph);
    csumAt = iph + 6;
  } else {
    dv.setUint32(iph + 4, (spec.seq ?? 1000) >>> 0);
    dv.setUint32(iph + 8, spec.ack ?? 77);
    p[iph + 12] = (l4h / 4) << 4;
    p[iph + 13] = spec.flags ?? ACK;
    dv.setUint16(iph + 14, 65000);
    p.set(tcpOpt, iph + 20);
    csumAt = iph + 16;
  }
  p.set(spec.payload, iph + l4h);
  const ps = naivePseudo(p, udp ? 17 : 6, p.length - iph);
  if (spec.partial) {
    dv.setUint16(csumAt, ps);
  } else {
    let c = ~naiveSum(p.subarray(iph), ps) & 0xffff;
    if (c === 0 && udp) c = 0xffff;
    if (spec.badCsum) c ^= 0x5a5a;
    dv.setUint16(csumAt, c);
  }
  return p;
}

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 17 + (i >> 8)) & 0xff;
  return b;
}

function hdr(over: Partial<VirtioNetHdr> = {}): VirtioNetHdr {
  return {
    flags: 0,
    gsoType: 0,
    hdrLen: 0,
    gsoSize: 0,
    csumStart: 0,
    csumOffset: 0,
    ...over,
  };
}

/** A frame the way the kernel hands a GSO super-packet to us: NEEDS_CSUM, partial checksum. */
function superFrame(spec: PacketSpec, gsoSize: number, over: Partial<VirtioNetHdr> = {}) {
  const pkt = packet({ ...spec, partial: true });
  const iph = ipHeaderLen(pkt);
  const l4h = spec.udp ? 8 : 20 + (spec.tcpOptions?.length ?? 0);
  const gsoType = spec.udp
    ? VIRTIO_NET_HDR_GSO_UDP_L4
    : spec.v6
    ? VIRTIO_NET_HDR_GSO_TCPV6
    : VIRTIO_NET_HDR_GSO_TCPV4;
  const frame = new Uint8Array(VIRTIO_NET_HDR_LEN + pkt.length);
  writeVirtioNetHdr(
    frame,
    0,
    hdr({
      flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
      gsoType,
      hdrLen: iph + l4h,
      gsoSize,
      csumStart: iph,
      csumOffset: spec.udp ? 6 : 16,
      ...over,
    }),
  );
  frame.set(pkt, VIRTIO_NET_HDR_LEN);
  return frame;
}

/** Splits a frame with a fresh (or given) splitter; returns copies of the packets. */
function split(frame: Uint8Array, s = new GsoSplitter()): Uint8Array[] {
  const out: Uint8Array[] = [];
  s.frame.set(frame);
  const n = s.split(frame.length, (p) => out.push(p.slice()));
  assert.equal(n, out.length);
  return out;
}

/** Pushes packets into a batcher and returns copies of the frames it writes. */
function gro(pkts: Uint8Array[], g = new GroBatcher()): Uint8Array[] {
  for (const p of pkts) assert.ok(g.push(p), "push");
  const out: Uint8Array[] = [];
  const n = g.flush((f) => out.push(f.slice()));
  assert.equal(n, out.length);
  return out;
}

function frameHdr(f: Uint8Array): VirtioNetHdr {
  const h = hdr();
  assert.ok(parseVirtioNetHdr(f, 0, h));
  return h;
}

/** A zero-header frame around `pkt`. */
function raw(pkt: Uint8Array): Uint8Array {
  const f = new Uint8Array(VIRTIO_NET_HDR_LEN + pkt.length);
  f.set(pkt, VIRTIO_NET_HDR_LEN);
  return f;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function payloadOf(pkt: Uint8Array): Uint8Array {
  const iph = ipHeaderLen(pkt);
  return pkt.subarray(iph + (protoOf(pkt) === 17 ? 8 : (pkt[iph + 12] >> 4) * 4));
}

/** Integer in [0, n) from a seeded Rng. */
function intFrom(rng: (b: Uint8Array) => void): (n: number) => number {
  const b = new Uint8Array(4);
  return (n) => {
    rng(b);
    return (((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0) % n;
  };
}

// ---- virtio_net_hdr --------------------------------------------------------------------------

Deno.test("parseVirtioNetHdr()/writeVirtioNetHdr() round-trip little-endian fields", () => {
  const b = new Uint8Array(12);
  const h = hdr({
    flags: 1,
    gsoType: 5,
    hdrLen: 28,
    gsoSize: 1000,
    csumStart: 20,
    csumOffset: 6,
  });
  writeVirtioNetHdr(b, 2, h);
  // The layout the kernel reads: flags, gso_type (u8), then hdr_len, gso_size, csum_start,
  // csum_offset as little-endian u16.
  assert.deepEqual([...b.subarray(2)], [1, 5, 28, 0, 0xe8, 0x03, 20, 0, 6, 0]);
  const got = hdr();
  assert.equal(parseVirtioNetHdr(b, 2, got), true);
  assert.deepEqual(got, h);
  assert.equal(parseVirtioNetHdr(b, 3, got), false, "9 bytes are too few");
  assert.equal(parseVirtioNetHdr(b, -1, got), false);
  assert.throws(() => writeVirtioNetHdr(b, 3, h), RangeError);
});

// ---- checksums -------------------------------------------------------------------------------

Deno.test("checksumAdd() equals a naive byte-pair sum at every alignment and length", () => {
  const int = intFrom(seededRng(7));
  const big = new Uint8Array(4096 + 64);
  seededRng(8)(big);
  for (let t = 0; t < 2000; t++) {
    const off = int(16);
    const start = int(64);
    const len = t < 300 ? t : int(4000);
    const b = big.subarray(off, off + start + len + 1);
    const init = int(3) === 0 ? int(0x20000) : 0;
    const want = naiveSum(b.subarray(start, start + len), init);
    assert.equal(
      checksumAdd(b, start, start + len, init),
      want,
      `off ${off} start ${start} len ${len}`,
    );
  }
  // All ones and all zeros, the representations that differ between sum methods.
  const ones = new Uint8Array(256).fill(0xff);
  assert.equal(checksumAdd(ones, 0, 256), 0xffff);
  assert.equal(checksumAdd(new Uint8Array(256), 0, 256), 0);
  // Shared memory works too.
  const sab = new Uint8Array(new SharedArrayBuffer(1024));
  sab.set(big.subarray(0, 1024));
  assert.equal(checksumAdd(sab, 4, 1000), naiveSum(sab.subarray(4, 1000)));
});

Deno.test("pseudoHeaderSum() covers addresses, protocol and length (IPv4 and IPv6)", () => {
  for (const v6 of [false, true]) {
    const p = packet({ v6, payload: bytes(100) });
    assert.equal(pseudoHeaderSum(p, 0, 6, 120), naivePseudo(p, 6, 120));
  }
});

Deno.test("finishChecksum() completes a partial checksum; bad offsets leave the packet alone", () => {
  for (const v6 of [false, true]) {
    for (const udp of [false, true]) {
      const p = packet({ v6, udp, payload: bytes(333), partial: true });
      const iph = ipHeaderLen(p);
      assert.equal(checksumsOk(p), false);
      assert.equal(finishChecksum(p, iph, udp ? 6 : 16), true);
      assert.equal(checksumsOk(p), true, `v6=${v6} udp=${udp}`);
      assert.deepEqual(p, packet({ v6, udp, payload: bytes(333) }));
    }
  }
  const p = packet({ payload: bytes(10), partial: true });
  const before = p.slice();
  assert.equal(finishChecksum(p, 20, p.length - 21), false);
  assert.equal(finishChecksum(p, p.length, 0), false);
  assert.deepEqual(p, before);
});

// ---- GSO split -------------------------------------------------------------------------------

Deno.test("GsoSplitter.split() cuts a 64 KiB TSO4 frame into MSS segments with exact headers", () => {
  const payload = bytes(64000);
  const frame = superFrame(
    { payload, seq: 0xfffff000, id: 0xfffe, flags: ACK | PSH | FIN, ack: 99 },
    1380,
  );
  const s = new GsoSplitter();
  const segs = split(frame, s);
  assert.equal(segs.length, Math.ceil(64000 / 1380));
  assert.deepEqual(s.stats, {
    gsoFrames: 1,
    gsoSegments: segs.length,
    csumCompleted: 0,
    malformed: 0,
  });
  segs.forEach((seg, i) => {
    const dv = view(seg);
    const last = i === segs.length - 1;
    assert.equal(seg.length, last ? 40 + (64000 - 1380 * i) : 40 + 1380);
    assert.ok(lengthsOk(seg) && checksumsOk(seg), `segment ${i}`);
    assert.equal(dv.getUint16(4), (0xfffe + i) & 0xffff, "IPv4 ID increments and wraps");
    assert.equal(dv.getUint32(24), (0xfffff000 + 1380 * i) >>> 0, "sequence number wraps");
    assert.equal(dv.getUint32(28), 99);
    assert.equal(seg[33], last ? ACK | PSH | FIN : ACK, "FIN/PSH only on the last segment");
    assert.equal(seg[6], 0x40, "DF kept");
  });
  assert.deepEqual(concat(segs.map(payloadOf)), payload);
});

Deno.test("GsoSplitter.split() handles TSO6, CWR only on the first segment, options copied", () => {
  const payload = bytes(20000, 3);
  const tcpOptions = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]; // NOP NOP timestamps
  const frame = superFrame(
    { v6: true, payload, tcpOptions, flags: ACK | CWR | PSH, seq: 5 },
    1208,
    { gsoType: VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN },
  );
  const segs = split(frame);
  assert.equal(segs.length, Math.ceil(20000 / 1208));
  segs.forEach((seg, i) => {
    const last = i === segs.length - 1;
    assert.ok(lengthsOk(seg) && checksumsOk(seg), `segment ${i}`);
    assert.equal(seg[40 + 13], (i === 0 ? CWR : 0) | (last ? PSH : 0) | ACK);
    assert.deepEqual([...seg.subarray(60, 72)], tcpOptions);
    assert.equal(view(seg).getUint32(44), 5 + 1208 * i);
    assert.equal(seg[0] >> 4, 6);
    assert.equal(view(seg).getUint32(0) & 0xfffff, 0x12345, "flow label kept");
  });
  assert.deepEqual(concat(segs.map(payloadOf)), payload);
});

Deno.test("GsoSplitter.split() splits USO4/USO6 into datagrams with their own length and checksum", () => {
  for (const v6 of [false, true]) {
    const payload = bytes(8000, 5);
    const segs = split(superFrame({ v6, udp: true, payload }, 1000));
    assert.equal(segs.length, 8);
    for (const seg of segs) {
      assert.equal(seg.length, (v6 ? 48 : 28) + 1000);
      assert.ok(lengthsOk(seg) && checksumsOk(seg));
    }
    assert.deepEqual(concat(segs.map(payloadOf)), payload);
    // A shorter last datagram.
    const odd = split(superFrame({ v6, udp: true, payload: bytes(2500) }, 1000));
    assert.deepEqual(odd.map((p) => payloadOf(p).length), [1000, 1000, 500]);
    assert.ok(odd.every(checksumsOk));
  }
});

Deno.test("GsoSplitter.split() sends a UDP checksum that computes to zero as 0xffff", () => {
  for (const v6 of [false, true]) {
    // Choose the last two payload bytes so that the whole datagram sums to 0xffff.
    const payload = bytes(1000, 9);
    payload[998] = payload[999] = 0;
    const probe = packet({ v6, udp: true, payload });
    const iph = v6 ? 40 : 20;
    probe[iph + 6] = probe[iph + 7] = 0;
    const x = 0xffff - naiveSum(probe.subarray(iph), naivePseudo(probe, 17, probe.length - iph));
    payload[998] = x >> 8;
    payload[999] = x & 0xff;
    const [seg] = split(superFrame({ v6, udp: true, payload }, 1000));
    assert.equal(view(seg).getUint16(iph + 6), 0xffff, "RFC 768: zero is sent as all ones");
    assert.ok(checksumsOk(seg));
    const partial = packet({ v6, udp: true, payload, partial: true });
    assert.ok(finishChecksum(partial, iph, 6));
    assert.equal(view(partial).getUint16(iph + 6), 0xffff);
  }
});

Deno.test("GsoSplitter.split() exact multiple, single segment, and IPv4 options", () => {
  assert.deepEqual(
    split(superFrame({ payload: bytes(4000) }, 1000)).map((p) => p.length),
    [1040, 1040, 1040, 1040],
  );
  const one = split(superFrame({ payload: bytes(500), flags: ACK | PSH }, 1000));
  assert.equal(one.length, 1);
  assert.equal(one[0][33], ACK | PSH);
  assert.ok(checksumsOk(one[0]));
  const opts = split(superFrame({ payload: bytes(3000), ipOptions: [1, 1, 1, 0] }, 1400));
  assert.equal(opts.length, 3);
  for (const seg of opts) {
    assert.equal(seg[0], 0x46);
    assert.ok(lengthsOk(seg) && checksumsOk(seg));
  }
});

Deno.test("GsoSplitter.split() re-derives the header length when hdr_len lies", () => {
  const payload = bytes(5000);
  const want = split(superFrame({ payload }, 1400));
  const pktLen = 40 + 5000;
  for (const hdrLen of [0, 20, 54, 1440, pktLen]) {
    assert.deepEqual(split(superFrame({ payload }, 1400, { hdrLen })), want, `hdr_len ${hdrLen}`);
  }
  const s = new GsoSplitter();
  assert.deepEqual(split(superFrame({ payload }, 1400, { hdrLen: pktLen + 1 }), s), []);
  assert.equal(s.stats.malformed, 1, "hdr_len beyond the packet is dropped");
});

Deno.test("GsoSplitter.split() passes non-GSO packets and completes NEEDS_CSUM", () => {
  const s = new GsoSplitter();
  const plain = packet({ payload: bytes(100) });
  assert.deepEqual(split(raw(plain), s), [plain]);
  const icmpish = new Uint8Array([
    0x45,
    0,
    0,
    21,
    0,
    0,
    0,
    0,
    64,
    1,
    0,
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
  ]);
  assert.deepEqual(split(raw(icmpish), s), [icmpish], "anything passes untouched");
  for (const v6 of [false, true]) {
    for (const udp of [false, true]) {
      const partial = packet({ v6, udp, payload: bytes(777), partial: true });
      const f = raw(partial);
      writeVirtioNetHdr(
        f,
        0,
        hdr({
          flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
          csumStart: v6 ? 40 : 20,
          csumOffset: udp ? 6 : 16,
        }),
      );
      assert.deepEqual(split(f, s), [packet({ v6, udp, payload: bytes(777) })]);
    }
  }
  assert.equal(s.stats.csumCompleted, 4);
  assert.equal(s.stats.malformed, 0);
});

Deno.test("GsoSplitter.split() drops malformed frames, counts them and never throws", () => {
  const good = superFrame({ payload: bytes(3000) }, 1000);
  const good6 = superFrame({ v6: true, payload: bytes(3000) }, 1000);
  const cases: [string, Uint8Array][] = [];
  function mutate(name: string, base: Uint8Array, f: (b: Uint8Array, dv: DataView) => void) {
    const b = base.slice();
    f(b, view(b));
    cases.push([name, b]);
  }
  cases.push(["empty", new Uint8Array(0)], ["header only", new Uint8Array(10)]);
  cases.push(["short header", new Uint8Array(7)]);
  mutate("gso_size 0", good, (_, dv) => dv.setUint16(4, 0, true));
  mutate("UFO type", good, (b) => b[1] = VIRTIO_NET_HDR_GSO_UDP);
  mutate("unknown type 2", good, (b) => b[1] = 2);
  mutate("unknown type 0x7f", good, (b) => b[1] = 0x7f);
  mutate("TCPV6 on IPv4", good, (b) => b[1] = VIRTIO_NET_HDR_GSO_TCPV6);
  mutate("TCPV4 on IPv6", good6, (b) => b[1] = VIRTIO_NET_HDR_GSO_TCPV4);
  mutate("csum_start != IHL", good, (_, dv) => dv.setUint16(6, 24, true));
  mutate("csum_start inside IPv6 header", good6, (_, dv) => dv.setUint16(6, 20, true));
  mutate("csum_offset wrong", good, (_, dv) => dv.setUint16(8, 6, true));
  mutate("UDP type on TCP", good, (b) => b[1] = VIRTIO_NET_HDR_GSO_UDP_L4);
  mutate("IPv6 next header mismatch", good6, (b) => b[10 + 6] = 17);
  mutate("IHL < 5", good, (b) => b[10] = 0x44);
  mutate("version 5", good, (b) => b[10] = 0x55);
  mutate("IPv4 MF", good, (b) => b[10 + 6] |= 0x20);
  mutate("IPv4 fragment offset", good, (b) => b[10 + 7] = 1);
  mutate("TCP data offset < 5", good, (b) => b[10 + 32] = 0x40);
  mutate("TCP header past the end", good.slice(0, 10 + 70), (b) => b[10 + 32] = 0xf0);
  mutate("hdr_len past the end", good, (_, dv) => dv.setUint16(2, 60000, true));
  cases.push(["no payload", superFrame({ payload: new Uint8Array(0) }, 1000)]);
  cases.push(["truncated IPv4", good.slice(0, 10 + 15)]);
  cases.push(["truncated TCP", good.slice(0, 10 + 30)]);
  cases.push(["truncated IPv6", good6.slice(0, 10 + 30)]);
  const noneBad = raw(packet({ payload: bytes(10) }));
  writeVirtioNetHdr(
    noneBad,
    0,
    hdr({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: 60, csumOffset: 16 }),
  );
  cases.push(["NEEDS_CSUM past the end", noneBad]);
  const s = new GsoSplitter();
  for (const [name, frame] of cases) {
    let n = -1;
    s.frame.set(frame);
    assert.doesNotThrow(() => n = s.split(frame.length, () => assert.fail(name)), name);
    assert.equal(n, 0, name);
  }
  assert.equal(s.stats.malformed, cases.length);
  assert.equal(s.split(FRAME_CAPACITY + 1, () => {}), 0, "a length beyond the frame");
  // And the splitter still works afterwards.
  assert.equal(split(good, s).length, 3);
});

Deno.test("GsoSplitter.split() reuses its views: no allocation per segment", () => {
  const s = new GsoSplitter();
  const frame = superFrame({ payload: bytes(64000) }, 1380);
  const seen = new Set<Uint8Array>();
  for (let round = 0; round < 3; round++) {
    s.frame.set(frame);
    s.split(frame.length, (p) => seen.add(p));
  }
  assert.equal(seen.size, 2, "one view for full segments, one for the short last one");
});

// ---- GRO -------------------------------------------------------------------------------------

/** Consecutive segments of one flow. */
function segments(n: number, size: number, spec: Partial<PacketSpec> = {}, first = 1000) {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    out.push(packet({ ...spec, seq: first + i * size, id: i, payload: bytes(size, i) }));
  }
  return out;
}

Deno.test("GroBatcher.flush() coalesces a TCP4 flow into one TSO frame the kernel can take", () => {
  const segs = segments(44, 1380);
  const g = new GroBatcher();
  const frames = gro(segs, g);
  assert.equal(frames.length, 1);
  const h = frameHdr(frames[0]);
  assert.deepEqual(h, {
    flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
    gsoType: VIRTIO_NET_HDR_GSO_TCPV4,
    hdrLen: 40,
    gsoSize: 1380,
    csumStart: 20,
    csumOffset: 16,
  });
  const pkt = frames[0].subarray(10);
  assert.equal(pkt.length, 40 + 44 * 1380);
  assert.ok(lengthsOk(pkt));
  assert.equal(naiveSum(pkt.subarray(0, 20)), 0xffff, "IPv4 header checksum");
  assert.equal(view(pkt).getUint16(36), naivePseudo(pkt, 6, pkt.length - 20), "partial = pseudo");
  assert.equal(view(pkt).getUint32(24), 1000);
  assert.equal(view(pkt).getUint16(4), 0, "the first segment's IPv4 ID");
  assert.deepEqual(payloadOf(pkt), concat(segs.map(payloadOf)));
  assert.deepEqual(g.stats, {
    packets: 44,
    frames: 1,
    coalescedFrames: 1,
    coalescedPackets: 44,
    badChecksum: 0,
  });
  // Splitting it gives back the very packets that went in.
  assert.deepEqual(split(frames[0]), segs);
});

Deno.test("GroBatcher.flush() coalesces TCP6 and keeps IPv6 payload length right", () => {
  const segs = segments(10, 1200, { v6: true });
  const frames = gro(segs);
  assert.equal(frames.length, 1);
  assert.equal(frameHdr(frames[0]).gsoType, VIRTIO_NET_HDR_GSO_TCPV6);
  assert.equal(frameHdr(frames[0]).csumStart, 40);
  assert.ok(lengthsOk(frames[0].subarray(10)));
  assert.deepEqual(split(frames[0]), segs);
});

Deno.test("GroBatcher.flush() writes non-candidates alone behind a zero header", () => {
  const p = (s: Partial<PacketSpec>) => packet({ payload: bytes(100), ...s });
  const hopByHop = packet({ v6: true, payload: bytes(100) });
  hopByHop[6] = 0; // next header: hop-by-hop options (an extension header)
  const icmp = p({});
  icmp[9] = 1;
  const cases: [string, Uint8Array[]][] = [
    ["SYN", [p({ flags: SYN | ACK, seq: 1000 }), p({ seq: 1100 })]],
    ["FIN", [p({ seq: 1000 }), p({ flags: FIN | ACK, seq: 1100 })]],
    ["RST", [p({ seq: 1000 }), p({ flags: RST | ACK, seq: 1100 })]],
    ["URG", [p({ seq: 1000 }), p({ flags: URG | ACK, seq: 1100 })]],
    ["CWR", [p({ seq: 1000 }), p({ flags: CWR | ACK, seq: 1100 })]],
    ["no ACK", [p({ seq: 1000, flags: 0 }), p({ seq: 1100, flags: 0 })]],
    ["pure ACKs", [packet({ payload: new Uint8Array(0) }), packet({ payload: new Uint8Array(0) })]],
    ["IPv4 options", [
      p({ seq: 1000, ipOptions: [1, 1, 1, 0] }),
      p({ seq: 1100, ipOptions: [1, 1, 1, 0] }),
    ]],
    ["fragments", [p({ seq: 1000 }), p({ seq: 1100 })].map((x) => (x[6] |= 0x20, fixIp(x)))],
    ["IPv6 extension header", [hopByHop, hopByHop]],
    ["ICMP", [icmp, icmp]],
    ["UDP while UDP GRO is off", [p({ udp: true }), p({ udp: true })]],
    ["bad IPv4 total length", [p({ seq: 1000 }), p({ seq: 1100 })].map((x) => x.subarray(0, 120))],
    ["short junk", [new Uint8Array([0x45, 0, 0]), new Uint8Array(0)]],
  ];
  for (const [name, pkts] of cases) {
    const g = new GroBatcher();
    const frames = gro(pkts, g);
    assert.deepEqual(frames, pkts.map(raw), name);
    assert.equal(g.stats.coalescedFrames, 0, name);
  }
});

/** Recomputes an IPv4 header checksum after a test edit. */
function fixIp(p: Uint8Array): Uint8Array {
  p[10] = p[11] = 0;
  view(p).setUint16(10, ~naiveSum(p.subarray(0, 20)) & 0xffff);
  return p;
}

Deno.test("GroBatcher.flush() keeps flows apart and needs contiguous, matching segments", () => {
  const base = { payload: bytes(100) };
  const cases: [string, Uint8Array[], number[]][] = [
    ["two flows interleaved", [
      packet({ ...base, seq: 0 }),
      packet({ ...base, seq: 0, sport: 1 }),
      packet({ ...base, seq: 100 }),
      packet({ ...base, seq: 100, sport: 1 }),
    ], [2, 2]],
    ["gap in sequence", [packet({ ...base, seq: 0 }), packet({ ...base, seq: 101 })], [1, 1]],
    ["different ACK", [packet({ ...base, seq: 0 }), packet({ ...base, seq: 100, ack: 5 })], [1, 1]],
    ["different TTL", [packet({ ...base, seq: 0 }), packet({ ...base, seq: 100, ttl: 3 })], [1, 1]],
    ["different TOS", [packet({ ...base, seq: 0 }), packet({ ...base, seq: 100, tos: 4 })], [1, 1]],
    ["DF differs", [packet({ ...base, seq: 0 }), packet({ ...base, seq: 100, df: false })], [1, 1]],
    ["different dst", [packet({ ...base, seq: 0 }), packet({ ...base, seq: 100, dst: 9 })], [1, 1]],
    ["options differ", [
      packet({ ...base, seq: 0, tcpOptions: [1, 1, 1, 1] }),
      packet({ ...base, seq: 100, tcpOptions: [1, 1, 1, 0] }),
    ], [1, 1]],
    ["options equal", [
      packet({ ...base, seq: 0, tcpOptions: [1, 1, 1, 1] }),
      packet({ ...base, seq: 100, tcpOptions: [1, 1, 1, 1] }),
    ], [2]],
    ["IPv6 hop limit", [
      packet({ ...base, v6: true, seq: 0 }),
      packet({ ...base, v6: true, seq: 100, ttl: 1 }),
    ], [1, 1]],
    ["IPv6 traffic class", [
      packet({ ...base, v6: true, seq: 0 }),
      packet({ ...base, v6: true, seq: 100, tos: 1 }),
    ], [1, 1]],
    ["IPv4 and IPv6", [packet({ ...base, seq: 0 }), packet({ ...base, v6: true, seq: 100 })], [
      1,
      1,
    ]],
  ];
  for (const [name, pkts, want] of cases) {
    const frames = gro(pkts);
    const counts = frames.map((f) => {
      const h = frameHdr(f);
      return h.gsoType === VIRTIO_NET_HDR_GSO_NONE ? 1 : payloadOf(f.subarray(10)).length / 100;
    });
    assert.deepEqual(counts, want, name);
  }
});

Deno.test("GroBatcher.flush() PSH ends a frame; a short segment ends a frame", () => {
  const s = (seq: number, size: number, flags = ACK) =>
    packet({ seq, flags, payload: bytes(size, seq) });
  // PSH on the second: it closes the frame (and the frame carries PSH); the third starts anew.
  let frames = gro([s(0, 100), s(100, 100, ACK | PSH), s(200, 100)]);
  assert.equal(frames.length, 2);
  assert.equal(frames[0][10 + 33], ACK | PSH);
  assert.equal(frameHdr(frames[0]).gsoSize, 100);
  assert.equal(frameHdr(frames[1]).gsoType, VIRTIO_NET_HDR_GSO_NONE);
  // 100, 50, 100: the short one ends the first frame.
  frames = gro([s(0, 100), s(100, 50), s(150, 100)]);
  assert.deepEqual(frames.map((f) => f.length - 50), [150, 100]);
  // A larger one cannot follow a smaller one.
  frames = gro([s(0, 50), s(50, 100)]);
  assert.equal(frames.length, 2);
  // Split of the PSH frame puts PSH back on its last segment only.
  const again = split(gro([s(0, 100), s(100, 100), s(200, 100, ACK | PSH)])[0]);
  assert.deepEqual(again.map((p) => p[33]), [ACK, ACK, ACK | PSH]);
});

Deno.test("GroBatcher.flush() prepends a segment that arrived after its successor", () => {
  const a = packet({ seq: 0, payload: bytes(100, 1) });
  const b = packet({ seq: 100, payload: bytes(100, 2) });
  const c = packet({ seq: 200, payload: bytes(100, 3) });
  const frames = gro([b, a, c]);
  assert.equal(frames.length, 1);
  assert.equal(view(frames[0]).getUint32(10 + 24), 0);
  assert.deepEqual(split(frames[0]).map(payloadOf), [a, b, c].map(payloadOf));
  // A PSH segment is never prepended.
  const pa = packet({ seq: 0, flags: ACK | PSH, payload: bytes(100, 1) });
  assert.equal(gro([b, pa]).length, 2);
});

Deno.test("GroBatcher.flush() does not merge packets with bad checksums and counts them", () => {
  const segs = segments(4, 500);
  const bad = packet({ seq: 1000 + 4 * 500, payload: bytes(500, 4), badCsum: true });
  const g = new GroBatcher();
  let frames = gro([...segs, bad, ...segments(1, 500, {}, 1000 + 5 * 500)], g);
  assert.equal(g.stats.badChecksum, 1);
  assert.equal(frames.length, 3, "good run, the bad one alone, the next one alone");
  assert.deepEqual(frames[1], raw(bad), "the bad packet is written unchanged");
  // A bad first packet does not absorb the good ones.
  const g2 = new GroBatcher();
  const badHead = packet({ seq: 0, payload: bytes(100), badCsum: true });
  frames = gro([badHead, packet({ seq: 100, payload: bytes(100) })], g2);
  assert.equal(frames.length, 2);
  assert.equal(g2.stats.badChecksum, 1);
});

Deno.test("GroBatcher.flush() stays within 65535 bytes per frame", () => {
  const segs = segments(100, 1400);
  const frames = gro(segs);
  assert.ok(frames.length >= 3);
  for (const f of frames) assert.ok(f.length - 10 <= 65535);
  assert.deepEqual(frames.flatMap((f) => split(f)), segs);
});

Deno.test("GroBatcher.flush() coalesces UDP only when enabled, in order, never after a short one", () => {
  for (const v6 of [false, true]) {
    const d = (size: number, seed: number) =>
      packet({ v6, udp: true, id: seed - 1, payload: bytes(size, seed) });
    const dgrams = [d(1000, 1), d(1000, 2), d(1000, 3), d(400, 4), d(1000, 5)];
    assert.equal(gro(dgrams).length, 5, "UDP GRO is off by default");
    const g = new GroBatcher({ udp: true });
    const frames = gro(dgrams, g);
    assert.equal(frames.length, 2);
    assert.deepEqual(frameHdr(frames[0]), {
      flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
      gsoType: VIRTIO_NET_HDR_GSO_UDP_L4,
      hdrLen: v6 ? 48 : 28,
      gsoSize: 1000,
      csumStart: v6 ? 40 : 20,
      csumOffset: 6,
    });
    const pkt = frames[0].subarray(10);
    assert.ok(lengthsOk(pkt));
    assert.deepEqual(split(frames[0]), dgrams.slice(0, 4));
    assert.deepEqual(frames[1], raw(dgrams[4]));
    // An IPv4 datagram without a checksum (0) is never merged.
    if (!v6) {
      const noCsum = dgrams.slice(0, 2).map((p) => {
        const c = p.slice();
        c[26] = c[27] = 0;
        return c;
      });
      assert.equal(gro(noCsum, new GroBatcher({ udp: true })).length, 2);
    }
  }
});

Deno.test("GroBatcher.push() refuses when full; flush() empties the batch even if write throws", () => {
  const g = new GroBatcher({ capacity: 3 });
  const p = packet({ payload: bytes(10) });
  assert.ok(g.push(p) && g.push(p) && g.push(p));
  assert.equal(g.push(p), false, "capacity");
  assert.equal(g.count, 3);
  assert.throws(() =>
    g.flush(() => {
      throw new Error("boom");
    })
  );
  assert.equal(g.count, 0);
  const big = new GroBatcher();
  assert.equal(big.push(new Uint8Array(65536)), false, "larger than an IP packet");
  let n = 0;
  while (big.push(new Uint8Array(60000))) n++;
  assert.equal(n, 4, "the 256 KiB arena");
  assert.equal(big.flush(() => {}), 4);
  assert.equal(big.flush(() => {}), 0);
});

Deno.test("GsoSplitter → GroBatcher round trip rebuilds the original frame", () => {
  const specs: [string, PacketSpec, number][] = [
    ["TSO4 64K", { payload: bytes(65535 - 40) }, 1380],
    ["TSO4 exact", { payload: bytes(13800) }, 1380],
    ["TSO4 PSH", { payload: bytes(9000), flags: ACK | PSH }, 1448],
    [
      "TSO4 options",
      { payload: bytes(9000), tcpOptions: [1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8] },
      1436,
    ],
    ["TSO6", { v6: true, payload: bytes(60000) }, 1220],
    ["USO4", { udp: true, payload: bytes(8000) }, 1000],
    ["USO6", { v6: true, udp: true, payload: bytes(7777) }, 1232],
  ];
  for (const [name, spec, mss] of specs) {
    const frame = superFrame(spec, mss);
    // The kernel's super-packet has an arbitrary IPv4 header checksum; ours is fresh.
    if (!spec.v6) fixIp(frame.subarray(10));
    const frames = gro(split(frame), new GroBatcher({ udp: true }));
    assert.equal(frames.length, 1, name);
    assert.deepEqual(frames[0], frame, name);
  }
});

// ---- fuzz ------------------------------------------------------------------------------------

Deno.test("GroBatcher/GsoSplitter fuzz: random flows survive coalesce → split unchanged", () => {
  const rng = seededRng(20240611);
  const int = intFrom(rng);
  const g = new GroBatcher({ udp: true, capacity: 64 });
  const s = new GsoSplitter();
  for (let round = 0; round < 300; round++) {
    // A few flows, each a run of segments, interleaved randomly; some dropped or reordered.
    const flows = 1 + int(4);
    const queues: Uint8Array[][] = [];
    for (let f = 0; f < flows; f++) {
      const v6 = int(2) === 1, udp = int(4) === 0;
      const size = 1 + int(1400), n = 1 + int(30);
      const q: Uint8Array[] = [];
      let seq = int(0x100000000);
      for (let i = 0; i < n; i++) {
        const len = i === n - 1 && int(2) ? 1 + int(size) : size;
        const flags = int(10) === 0 ? ACK | PSH : int(40) === 0 ? ACK | FIN : ACK;
        q.push(packet({
          v6,
          udp,
          src: f + 1,
          sport: 1000 + f,
          seq,
          id: i,
          flags,
          payload: bytes(len, round * 7 + i),
          badCsum: int(50) === 0,
        }));
        seq = (seq + len) >>> 0;
      }
      if (n > 2 && int(4) === 0) [q[1], q[2]] = [q[2], q[1]];
      if (n > 2 && int(6) === 0) q.splice(1, 1);
      queues.push(q);
    }
    const input: Uint8Array[] = [];
    while (queues.some((q) => q.length > 0)) {
      const q = queues[int(queues.length)];
      if (q.length > 0) input.push(q.shift()!);
    }
    const batch = input.slice(0, 64);
    for (const p of batch) assert.ok(g.push(p));
    const out: Uint8Array[] = [];
    g.flush((frame) => {
      assert.ok(frame.length - 10 <= 65535);
      s.frame.set(frame);
      s.split(frame.length, (p) => out.push(p.slice()));
    });
    // Same packets, same per-flow order for UDP; IPv4 IDs and header checksums may differ.
    const norm = (p: Uint8Array) => {
      const c = p.slice();
      if (c[0] >> 4 === 4) {
        c[4] =
          c[5] =
          c[10] =
          c[11] =
            0;
      }
      let h = 0x811c9dc5;
      for (const x of c) h = Math.imul(h ^ x, 0x01000193);
      return `${c.length}:${(h >>> 0).toString(16)}`;
    };
    assert.deepEqual(out.map(norm).sort(), batch.map(norm).sort(), `round ${round}`);
    // Per flow (the source address differs per flow), in the order written; sort is stable.
    const flowOf = (p: Uint8Array) => p[0] >> 4 === 6 ? 100 + p[23] : p[15];
    const udpOrder = (ps: Uint8Array[]) =>
      ps.filter((p) => protoOf(p) === 17).sort((a, b) => flowOf(a) - flowOf(b)).map(norm);
    assert.deepEqual(udpOrder(out), udpOrder(batch), `UDP order, round ${round}`);
  }
  assert.equal(s.stats.malformed, 0);
  assert.ok(g.stats.coalescedFrames > 100, `coalesced ${g.stats.coalescedFrames}`);
  assert.ok(g.stats.badChecksum > 0);
});

Deno.test("GsoSplitter/GroBatcher fuzz: random and mutated input never throws", () => {
  const rng = seededRng(99);
  const int = intFrom(rng);
  const s = new GsoSplitter();
  const g = new GroBatcher({ udp: true, capacity: 16 });
  const seeds = [
    superFrame({ payload: bytes(3000) }, 1000),
    superFrame({ v6: true, payload: bytes(3000) }, 700),
    superFrame({ udp: true, payload: bytes(3000) }, 999),
    superFrame({ v6: true, udp: true, payload: bytes(300) }, 64),
    raw(packet({ payload: bytes(50) })),
  ];
  let emitted = 0;
  for (let t = 0; t < 5000; t++) {
    let f: Uint8Array;
    if (t % 5 === 0) {
      f = new Uint8Array(int(200));
      rng(f);
    } else {
      f = seeds[int(seeds.length)].slice(0, 11 + int(3100));
      for (let k = int(4); k >= 0; k--) f[int(Math.min(f.length, 80))] = int(256);
    }
    s.frame.set(f);
    const n = s.split(f.length, (p) => {
      assert.ok(p.length > 0 && p.length <= FRAME_CAPACITY);
      emitted++;
      if (!g.push(p)) {
        g.flush(() => {});
        g.push(p);
      }
    });
    assert.ok(n >= 0);
    if (t % 7 === 0) {
      g.flush((frame) => {
        assert.ok(frame.length >= 10 && frame.length - 10 <= 65535);
      });
    }
  }
  assert.ok(s.stats.malformed > 1000, `malformed ${s.stats.malformed}`);
  assert.ok(emitted > 1000, `emitted ${emitted}`);
});

// ---- LinuxTun wiring, root only -------------------------------------------------------------

const ignore = ignoreUnless("test/tun/offload_test.ts", NETNS_NEEDS);
const helper = new URL("./_offload_helper.ts", import.meta.url);

async function withNs<T>(fn: (ns: string) => Promise<T>): Promise<T> {
  const ns = uniqueName("gtoff-");
  const add = await sh(["ip", "netns", "add", ns]);
  if (add.code !== 0) throw new Error(`ip netns add: ${add.stderr}`);
  try {
    await sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
    return await fn(ns);
  } finally {
    await sh(["ip", "netns", "del", ns]);
  }
}

Deno.test({
  name: "LinuxTun.create({offload}) negotiates TUNSETOFFLOAD and keeps linkState() working",
  ignore,
  async fn() {
    await withNs(async (ns) => {
      await withNs(async (other) => {
        const r = await runHelper(ns, helper, ["setup", "gtofftun0", other]);
        assert.equal(r.vnetHdr, true);
        // TUN_F_CSUM|TSO4|TSO6 always; USO4|USO6 on Linux ≥ 6.2.
        assert.equal(Number(r.offloadFlags) & 0x07, 0x07, `flags ${r.offloadFlags}`);
        assert.equal(r.plainVnetHdr, false, "the default path has no virtio header");
        assert.equal(r.plainOffloadFlags, 0);
        assert.equal(r.fromFdVnet, true, "an adopted IFF_VNET_HDR fd is handled");
        assert.equal(r.fromFdFlags, r.offloadFlags);
        assert.deepEqual(r.states, ["down", "up", "down"]);
        assert.deepEqual(r.movedStates, ["up", "down", "gone"], "the probe write works");
        assert.equal(r.drainAfterDelete, -1);
      });
    });
  },
});

for (const family of ["4", "6"]) {
  Deno.test({
    name:
      `LinuxTun offload: a 1 MB TCP${family === "4" ? "v4" : "v6"} stream is split, verified, ` +
      "coalesced and delivered",
    ignore,
    async fn() {
      await withNs(async (ns) => {
        const r = await runHelper(ns, helper, ["tcp", "gtofftun0", family], 60_000);
        assert.equal(r.received, 1 << 20, "all bytes arrived");
        assert.equal(r.sameData, true);
        assert.ok(Number(r.gsoFrames) > 0, "the kernel sent TSO super-packets");
        assert.equal(r.badChecksums, 0);
        assert.ok(Number(r.maxPacket) <= Number(r.mtu), `max ${r.maxPacket} > mtu ${r.mtu}`);
        assert.ok(Number(r.coalescedFrames) > 0, "GRO frames were written");
        assert.equal(r.writeErrors, 0, "the kernel accepted every coalesced write");
        assert.equal(r.malformed, 0);
      });
    },
  });
}

Deno.test({
  name: "LinuxTun offload: UDP GSO sends are split and USO-coalesced echoes are delivered",
  ignore,
  async fn() {
    await withNs(async (ns) => {
      const r = await runHelper(ns, helper, ["udp", "gtofftun0"], 60_000);
      for (const fam of ["v4", "v6"]) {
        const x = r[fam] as Record<string, number | boolean>;
        assert.equal(x.received, x.sent, `${fam}: every datagram came back`);
        assert.equal(x.sameData, true, fam);
        assert.equal(x.badChecksums, 0, fam);
      }
      if (r.uso) {
        assert.ok(Number(r.gsoFrames) > 0, "UDP_SEGMENT sends arrived as USO frames");
        assert.ok(Number(r.coalescedFrames) > 0, "UDP GRO frames were written");
      }
      assert.equal(r.writeErrors, 0);
    });
  },
});
