// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * TUN offloads (`IFF_VNET_HDR`) as pure byte work, no I/O: the behaviour of
 * wireguard-go's `tun/offload_linux.go`, written for V8.
 *
 * With IFF_VNET_HDR every TUN read and write starts with a 10-byte
 * `struct virtio_net_hdr` (include/uapi/linux/virtio_net.h, little-endian
 * fields). Once TUNSETOFFLOAD enables TSO/USO, a read may be a GSO
 * super-packet of up to 64 KiB: one IP/TCP (or UDP) header followed by many
 * `gso_size` payloads, with the L4 checksum left partial (NEEDS_CSUM,
 * `CHECKSUM_PARTIAL` in the kernel). GsoSplitter turns it back into
 * normal packets with complete headers and checksums, as the kernel's
 * `tcp_gso_segment`/`__udp_gso_segment` would (`./gso_split.ts`).
 * GroBatcher (`./gro.ts`) goes the other way for the write path: consecutive TCP segments (and UDP datagrams,
 * when the kernel takes USO) of one flow are coalesced into one super-packet
 * that the kernel segments again or delivers whole, so a 64 KiB burst costs one
 * write(2) instead of ~45.
 *
 * This file holds what both halves share: the `virtio_net_hdr` layout, the
 * Internet checksum (RFC 1071) and byte helpers. Everything is allocation-conscious: each class owns one ArrayBuffer
 * for its frames and scratch space, per-packet metadata lives in typed
 * arrays, and the views handed to callbacks are cached (src/view_cache.ts), so
 * steady traffic allocates nothing per packet.
 * Malformed input (from the kernel or from a peer) never throws: it is
 * dropped, or written unchanged, and counted.
 */

/** sizeof(struct virtio_net_hdr): what TUNSETVNETHDRSZ is set to. */
export const VIRTIO_NET_HDR_LEN = 10;
/** `flags`: the L4 checksum is partial; complete it from csum_start (CHECKSUM_PARTIAL). */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** `flags`: the checksum was already verified (CHECKSUM_UNNECESSARY). */
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
/** `gso_type` values. */
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
/** `gso_type` bit: the TCP stream uses ECN (CWR may be set on the first segment). */
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** Largest IP packet we build or accept for coalescing (IPv4 total length is 16 bits). */
export const MAX_IP_PACKET = 65535;
/** Bytes a {@link GsoSplitter.frame} holds: header, 64 KiB and slack for the kernel's GSO limit. */
export const FRAME_CAPACITY = VIRTIO_NET_HDR_LEN + 65536 + 512;

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const TCP_FIN = 0x01;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_CWR = 0x80;

/** The fields of a `struct virtio_net_hdr`. */
export interface VirtioNetHdr {
  flags: number;
  gsoType: number;
  /** Length of the headers (advisory: the kernel may report more, see {@link GsoSplitter}). */
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** parseVirtioNetHdr() fills `out` from `b[offset..offset+10)`; false when too short. */
export function parseVirtioNetHdr(b: Uint8Array, offset: number, out: VirtioNetHdr): boolean {
  if (offset < 0 || b.length - offset < VIRTIO_NET_HDR_LEN) return false;
  out.flags = b[offset];
  out.gsoType = b[offset + 1];
  out.hdrLen = b[offset + 2] | (b[offset + 3] << 8);
  out.gsoSize = b[offset + 4] | (b[offset + 5] << 8);
  out.csumStart = b[offset + 6] | (b[offset + 7] << 8);
  out.csumOffset = b[offset + 8] | (b[offset + 9] << 8);
  return true;
}

/** writeVirtioNetHdr() stores `h` at `b[offset..offset+10)`; RangeError when it does not fit. */
export function writeVirtioNetHdr(b: Uint8Array, offset: number, h: VirtioNetHdr): void {
  if (offset < 0 || b.length - offset < VIRTIO_NET_HDR_LEN) {
    throw new RangeError("no room for a virtio_net_hdr");
  }
  setHdr(b, offset, h.flags, h.gsoType, h.hdrLen, h.gsoSize, h.csumStart, h.csumOffset);
}

export function setHdr(
  b: Uint8Array,
  o: number,
  flags: number,
  gsoType: number,
  hdrLen: number,
  gsoSize: number,
  csumStart: number,
  csumOffset: number,
): void {
  b[o] = flags;
  b[o + 1] = gsoType;
  b[o + 2] = hdrLen;
  b[o + 3] = hdrLen >> 8;
  b[o + 4] = gsoSize;
  b[o + 5] = gsoSize >> 8;
  b[o + 6] = csumStart;
  b[o + 7] = csumStart >> 8;
  b[o + 8] = csumOffset;
  b[o + 9] = csumOffset >> 8;
}

// ---- Internet checksum (RFC 1071) ------------------------------------------------------------

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** A few recently used ArrayBuffers and their Uint32Array views, so sums need not allocate. */
const wordBufs: (ArrayBufferLike | null)[] = [null, null, null, null];
const wordViews: Uint32Array[] = [
  new Uint32Array(0),
  new Uint32Array(0),
  new Uint32Array(0),
  new Uint32Array(0),
];
let wordNext = 0;

function wordsOf(buf: ArrayBufferLike): Uint32Array {
  for (let i = 0; i < 4; i++) if (wordBufs[i] === buf) return wordViews[i];
  const v = new Uint32Array(buf, 0, buf.byteLength >>> 2);
  wordBufs[wordNext] = buf;
  wordViews[wordNext] = v;
  wordNext = (wordNext + 1) & 3;
  return v;
}

/** Folds a non-negative sum (< 2^53) into 16 bits with end-around carry. */
export function fold(s: number): number {
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/**
 * checksumAdd() is the one's-complement sum of `b[start..end)` read as
 * big-endian 16-bit words (an odd last byte is padded with zero), plus
 * `initial`, folded to 16 bits and NOT complemented. Long aligned runs are
 * summed as host-order 16-bit words read 32 bits at a time and byte-swapped
 * once at the end, which RFC 1071 §2(B) allows and which is faster in V8
 * than byte pairs.
 */
export function checksumAdd(b: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let p = start;
  if (end - p >= 64 && ((b.byteOffset + p) & 1) === 0) {
    if ((b.byteOffset + p) & 2) {
      sum += (b[p] << 8) | b[p + 1];
      p += 2;
    }
    const w = wordsOf(b.buffer);
    const count = (end - p) >> 2;
    let i = (b.byteOffset + p) >> 2;
    const n = i + count;
    // Two sums of 16-bit halves stay below 2^31 for any frame (≤ 16 514 words × 0xffff), so
    // they remain integers: a running sum of whole words would be a double, and boxing it
    // cost a heap number per call.
    let lo = 0, hi = 0;
    for (; i < n; i++) {
      const x = w[i];
      lo += x & 0xffff;
      hi += x >>> 16;
    }
    p += count << 2;
    const acc = fold((lo & 0xffff) + (lo >>> 16) + (hi & 0xffff) + (hi >>> 16));
    sum += LITTLE_ENDIAN ? ((acc & 0xff) << 8) | (acc >> 8) : acc;
  }
  for (; p + 1 < end; p += 2) sum += (b[p] << 8) | b[p + 1];
  if (p < end) sum += b[p] << 8;
  return fold(sum);
}

/**
 * pseudoHeaderSum() is the unfolded-then-folded sum of the TCP/UDP pseudo
 * header (RFC 793 §3.1, RFC 8200 §8.1) of the IP packet at `b[ip]`:
 * source and destination addresses, protocol and L4 length.
 */
export function pseudoHeaderSum(b: Uint8Array, ip: number, proto: number, l4Len: number): number {
  const v6 = b[ip] >> 4 === 6;
  return checksumAdd(
    b,
    ip + (v6 ? 8 : 12),
    ip + (v6 ? 40 : 20),
    proto + (l4Len & 0xffff) + (l4Len >>> 16),
  );
}

/**
 * finishChecksum() completes a NEEDS_CSUM (CHECKSUM_PARTIAL) packet: the
 * field at `csumStart + csumOffset` holds the pseudo-header sum, and the
 * complement of the sum from `csumStart` to the end replaces it, a zero
 * result written as 0xffff (kernel `skb_checksum_help`, `CSUM_MANGLED_0`).
 * False, with `pkt` untouched, when the offsets do not fit.
 */
export function finishChecksum(pkt: Uint8Array, csumStart: number, csumOffset: number): boolean {
  const at = csumStart + csumOffset;
  if (at + 2 > pkt.length) return false;
  const initial = (pkt[at] << 8) | pkt[at + 1];
  pkt[at] = pkt[at + 1] = 0;
  const c = ~checksumAdd(pkt, csumStart, pkt.length, initial) & 0xffff || 0xffff;
  pkt[at] = c >> 8;
  pkt[at + 1] = c & 0xff;
  return true;
}

export function get16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

export function set16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >> 8;
  b[o + 1] = v;
}

export function get32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

export function set32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/** Views cached by `length & (VIEWS − 1)` (see src/view_cache.ts): a few sizes dominate a flow. */
export const VIEWS = 256;
