// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The read half of the TUN offloads: {@link GsoSplitter} turns a GSO
 * super-packet read with its `virtio_net_hdr` (TSO/USO: one IP/TCP or UDP
 * header followed by many `gso_size` payloads, L4 checksum partial) back into
 * normal packets with complete headers and checksums, as the kernel's
 * `tcp_gso_segment`/`__udp_gso_segment` would. Pure byte work; the header
 * layout and the checksums are in `./offload.ts`. Malformed input never
 * throws: it is dropped and counted.
 */
import { ViewCache } from "../view_cache.ts";
import {
  checksumAdd,
  finishChecksum,
  FRAME_CAPACITY,
  get16,
  get32,
  IPPROTO_TCP,
  IPPROTO_UDP,
  pseudoHeaderSum,
  set16,
  set32,
  TCP_CWR,
  TCP_FIN,
  TCP_PSH,
  VIEWS,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_LEN,
} from "./offload.ts";

// ---- Read path: split ------------------------------------------------------------------------

/** Counters of a {@link GsoSplitter}. */
export interface SplitStats {
  /** GSO super-packets split. */
  gsoFrames: number;
  /** Packets produced from them. */
  gsoSegments: number;
  /** Non-GSO packets whose partial checksum we completed. */
  csumCompleted: number;
  /** Frames dropped: bad virtio header, unsupported GSO type, inconsistent IP/L4 headers. */
  malformed: number;
}

// Splitter memory: [0,6) padding, [6,16) virtio header, [16,…) the packet, so the IP header
// is 16-byte aligned (fast checksums); then the segment scratch, also aligned.
const READ_AT = 6;
const PKT_AT = READ_AT + VIRTIO_NET_HDR_LEN;
const SEG_AT = (PKT_AT + FRAME_CAPACITY + 63) & ~63;
const SPLIT_MEM = SEG_AT + FRAME_CAPACITY;

/**
 * GsoSplitter turns one TUN read (virtio header + packet) into normal IP
 * packets. Read into {@link GsoSplitter.frame}, then call
 * {@link GsoSplitter.split} with the byte count.
 *
 * For a GSO frame, each segment gets the original headers with: IPv4 total
 * length, ID + i and a fresh header checksum, or the IPv6 payload length;
 * TCP sequence number + i·gso_size, FIN and PSH kept only on the last segment
 * and CWR only on the first (kernel `tcp_gso_segment`); the UDP length; and a
 * full L4 checksum over the pseudo header. `hdr_len` from the kernel is not
 * trusted for layout (it can cover the whole first packet on the forward
 * path, wireguard-go `handleVirtioRead`): the header length is re-derived
 * from `csum_start` and the TCP data offset.
 */
export class GsoSplitter {
  /** Where the next TUN read goes: virtio header then packet, {@link FRAME_CAPACITY} bytes. */
  readonly frame: Uint8Array;
  /** Counters, updated in place. */
  readonly stats: SplitStats = { gsoFrames: 0, gsoSegments: 0, csumCompleted: 0, malformed: 0 };
  #mem: Uint8Array;
  #pktViews: ViewCache;
  #segViews: ViewCache;

  constructor() {
    this.#mem = new Uint8Array(SPLIT_MEM);
    this.frame = this.#mem.subarray(READ_AT, READ_AT + FRAME_CAPACITY);
    this.#pktViews = new ViewCache(this.#mem, VIEWS);
    this.#segViews = new ViewCache(this.#mem, VIEWS);
  }

  /**
   * Splits the `n` bytes read into {@link GsoSplitter.frame}, calling
   * `onPacket` once per resulting IP packet with a view that is valid only
   * during the call (it may be modified). Returns the number of packets, 0
   * when the frame was dropped (counted in {@link SplitStats.malformed}).
   */
  split(n: number, onPacket: (pkt: Uint8Array) => void): number {
    const m = this.#mem, st = this.stats;
    if (n <= VIRTIO_NET_HDR_LEN || n > FRAME_CAPACITY) {
      st.malformed++;
      return 0;
    }
    const flags = m[READ_AT];
    const gsoType = m[READ_AT + 1] & ~VIRTIO_NET_HDR_GSO_ECN;
    const hdrLen = m[READ_AT + 2] | (m[READ_AT + 3] << 8);
    const gsoSize = m[READ_AT + 4] | (m[READ_AT + 5] << 8);
    const csumStart = m[READ_AT + 6] | (m[READ_AT + 7] << 8);
    const csumOffset = m[READ_AT + 8] | (m[READ_AT + 9] << 8);
    const p = PKT_AT, len = n - VIRTIO_NET_HDR_LEN, end = p + len;

    if (gsoType === VIRTIO_NET_HDR_GSO_NONE) {
      if (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        if (!finishChecksum(this.#packet(len), csumStart, csumOffset)) {
          st.malformed++;
          return 0;
        }
        st.csumCompleted++;
      }
      onPacket(this.#packet(len));
      return 1;
    }

    // A GSO frame: check everything the loop below relies on.
    const v = m[p] >> 4;
    let isTcp = false, typeOk = false;
    if (gsoType === VIRTIO_NET_HDR_GSO_TCPV4) {
      isTcp = true;
      typeOk = v === 4;
    } else if (gsoType === VIRTIO_NET_HDR_GSO_TCPV6) {
      isTcp = true;
      typeOk = v === 6;
    } else if (gsoType === VIRTIO_NET_HDR_GSO_UDP_L4) {
      typeOk = v === 4 || v === 6;
    }
    const proto = isTcp ? IPPROTO_TCP : IPPROTO_UDP;
    let iph = csumStart;
    let ok = typeOk && gsoSize > 0 && hdrLen <= len && csumOffset === (isTcp ? 16 : 6);
    if (ok && v === 4) {
      iph = (m[p] & 15) * 4;
      // No options beyond the IHL, the protocol matches, and no fragment (MF or offset).
      ok = len >= 20 && iph >= 20 && csumStart === iph && m[p + 9] === proto &&
        (m[p + 6] & 0x3f) === 0 && m[p + 7] === 0;
    } else if (ok) {
      // IPv6: csum_start past any extension headers; with none, the next header must match.
      ok = len >= 40 && csumStart >= 40 && (csumStart > 40 || m[p + 6] === proto);
    }
    let hl = 0;
    if (ok) {
      if (isTcp) {
        ok = len >= iph + 20;
        hl = iph + (m[p + iph + 12] >> 4) * 4;
        ok = ok && hl >= iph + 20;
      } else {
        hl = iph + 8;
      }
      ok = ok && len > hl;
    }
    if (!ok) {
      st.malformed++;
      return 0;
    }

    const s = SEG_AT, payload = len - hl;
    const count = Math.ceil(payload / gsoSize);
    const l4 = s + iph;
    const seq0 = isTcp ? get32(m, p + iph + 4) : 0;
    const id0 = v === 4 ? get16(m, p + 4) : 0;
    const addrSum = pseudoHeaderSum(m, p, proto, 0);
    let data = p + hl;
    for (let i = 0; i < count; i++) {
      const segLen = Math.min(gsoSize, end - data);
      const total = hl + segLen;
      m.copyWithin(s, p, p + hl);
      m.copyWithin(s + hl, data, data + segLen);
      if (v === 4) {
        set16(m, s + 2, total);
        set16(m, s + 4, (id0 + i) & 0xffff);
        m[s + 10] = m[s + 11] = 0;
        set16(m, s + 10, ~checksumAdd(m, s, s + iph) & 0xffff);
      } else {
        set16(m, s + 4, total - 40);
      }
      let c: number;
      if (isTcp) {
        set32(m, l4 + 4, (seq0 + i * gsoSize) >>> 0);
        let f = m[l4 + 13];
        if (i > 0) f &= ~TCP_CWR;
        if (i < count - 1) f &= ~(TCP_FIN | TCP_PSH);
        m[l4 + 13] = f;
        m[l4 + 16] = m[l4 + 17] = 0;
        c = ~checksumAdd(m, l4, s + total, addrSum + total - iph) & 0xffff;
      } else {
        set16(m, l4 + 4, total - iph);
        m[l4 + 6] = m[l4 + 7] = 0;
        // RFC 768: a computed zero is sent as all ones.
        c = ~checksumAdd(m, l4, s + total, addrSum + total - iph) & 0xffff || 0xffff;
      }
      set16(m, l4 + csumOffset, c);
      onPacket(this.#segViews.get(total & (VIEWS - 1), s, s + total));
      data += segLen;
    }
    st.gsoFrames++;
    st.gsoSegments += count;
    return count;
  }

  /** The `len` bytes read after the virtio header. */
  #packet(len: number): Uint8Array {
    return this.#pktViews.get(len & (VIEWS - 1), PKT_AT, PKT_AT + len);
  }
}
