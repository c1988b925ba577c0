// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Benchmarks of the TUN offload logic: splitting one 64 KiB TSO super-packet
 * (the read path under a bulk TCP upload) and coalescing 44 MSS segments
 * (the write path under a bulk download), next to the checksum they are
 * built on. `deno bench test/tun/offload_bench.ts`.
 */
import {
  checksumAdd,
  pseudoHeaderSum,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_LEN,
  writeVirtioNetHdr,
} from "../../src/tun/offload.ts";
import { GroBatcher } from "../../src/tun/gro.ts";
import { GsoSplitter } from "../../src/tun/gso_split.ts";

const MSS = 1380;

/** An IPv4/TCP (or UDP) packet with a pseudo-header (partial) or full checksum. */
function packet(payload: number, seq: number, udp: boolean, full: boolean): Uint8Array {
  const hl = udp ? 28 : 40;
  const p = new Uint8Array(hl + payload);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, p.length);
  p[6] = 0x40;
  p[8] = 64;
  p[9] = udp ? 17 : 6;
  p.set([10, 0, 0, 1, 10, 0, 0, 2], 12);
  dv.setUint16(10, ~checksumAdd(p, 0, 20) & 0xffff);
  dv.setUint32(20, 0x9c405201);
  if (udp) {
    dv.setUint16(24, p.length - 20);
  } else {
    dv.setUint32(24, seq);
    dv.setUint32(28, 1);
    p[32] = 0x50;
    p[33] = 0x10;
  }
  for (let i = hl; i < p.length; i++) p[i] = i * 13;
  const at = udp ? 26 : 36;
  const ps = pseudoHeaderSum(p, 0, p[9], p.length - 20);
  dv.setUint16(at, full ? ~checksumAdd(p, 20, p.length, ps) & 0xffff : ps);
  return p;
}

function superFrame(payload: number, gso: number, udp: boolean): Uint8Array {
  const pkt = packet(payload, 1000, udp, false);
  const f = new Uint8Array(VIRTIO_NET_HDR_LEN + pkt.length);
  writeVirtioNetHdr(f, 0, {
    flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
    gsoType: udp ? VIRTIO_NET_HDR_GSO_UDP_L4 : VIRTIO_NET_HDR_GSO_TCPV4,
    hdrLen: udp ? 28 : 40,
    gsoSize: gso,
    csumStart: 20,
    csumOffset: udp ? 6 : 16,
  });
  f.set(pkt, VIRTIO_NET_HDR_LEN);
  return f;
}

let sink = 0;
function count(p: Uint8Array): void {
  sink += p.length;
}

// Split: the frame stays in place (the GSO path only reads it), so each iteration is one read's work.
const tso = superFrame(65535 - 40, MSS, false);
const tsoSplitter = new GsoSplitter();
tsoSplitter.frame.set(tso);
const uso = superFrame(8000, 1000, true);
const usoSplitter = new GsoSplitter();
usoSplitter.frame.set(uso);

Deno.bench({
  name: "GsoSplitter.split() 64 KiB TSO4 → 48 segments of 1380",
  group: "split",
  baseline: true,
  fn() {
    tsoSplitter.split(tso.length, count);
  },
});

Deno.bench({
  name: "GsoSplitter.split() USO4 8000 B → 8 datagrams of 1000",
  group: "split",
  fn() {
    usoSplitter.split(uso.length, count);
  },
});

// Coalesce: 44 consecutive, fully checksummed segments (what the device decrypts in one batch).
const segs: Uint8Array[] = [];
for (let i = 0; i < 44; i++) segs.push(packet(MSS, 1000 + i * MSS, false, true));
const gro = new GroBatcher();
const plain: Uint8Array[] = [];
for (let i = 0; i < 44; i++) plain.push(packet(MSS, 1000 + i * MSS, true, true));
const noGro = new GroBatcher({ udp: false });
function frame(f: Uint8Array): void {
  sink += f.length;
}

Deno.bench({
  name: "GroBatcher push ×44 + flush(): 44 TCP4 segments → 1 TSO frame",
  group: "coalesce",
  baseline: true,
  fn() {
    for (let i = 0; i < 44; i++) gro.push(segs[i]);
    gro.flush(frame);
  },
});

Deno.bench({
  name: "GroBatcher push ×44 + flush(): 44 UDP packets, GRO off → 44 frames",
  group: "coalesce",
  fn() {
    for (let i = 0; i < 44; i++) noGro.push(plain[i]);
    noGro.flush(frame);
  },
});

const big = new Uint8Array(65536 + 64);
for (let i = 0; i < big.length; i++) big[i] = i * 7;

Deno.bench({
  name: "checksumAdd() 1400 B",
  group: "checksum",
  baseline: true,
  fn() {
    sink += checksumAdd(big, 16, 16 + 1400);
  },
});

Deno.bench({
  name: "checksumAdd() 64 KiB",
  group: "checksum",
  fn() {
    sink += checksumAdd(big, 16, 16 + 65536);
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === -1) throw new Error("unreachable");
});
