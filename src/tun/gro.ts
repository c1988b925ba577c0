// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The write half of the TUN offloads: {@link GroBatcher} coalesces
 * consecutive TCP segments (and UDP datagrams, when the kernel takes USO) of
 * one flow into one super-packet with a `virtio_net_hdr`, which the kernel
 * segments again or delivers whole, so a 64 KiB burst costs one write(2)
 * instead of ~45 (wireguard-go's `tun/offload_linux.go` GRO). Pure byte work;
 * the header layout and the checksums are in `./offload.ts`. Packets it
 * cannot coalesce are written unchanged, and counted.
 */
import { ViewCache } from "../view_cache.ts";
import {
  checksumAdd,
  get16,
  get32,
  IPPROTO_TCP,
  IPPROTO_UDP,
  MAX_IP_PACKET,
  pseudoHeaderSum,
  set16,
  setHdr,
  TCP_ACK,
  TCP_PSH,
  VIEWS,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_LEN,
} from "./offload.ts";

// ---- Write path: coalesce --------------------------------------------------------------------

/** Counters of a {@link GroBatcher}. */
export interface GroStats {
  /** Packets taken in by {@link GroBatcher.push}. */
  packets: number;
  /** Frames handed to the writer (coalesced or not). */
  frames: number;
  /** Of those, GSO super-packets built by coalescing. */
  coalescedFrames: number;
  /** Packets that went into coalesced frames. */
  coalescedPackets: number;
  /** Packets not coalesced because their TCP/UDP checksum was wrong. */
  badChecksum: number;
}

/** Options of {@link GroBatcher}. */
export interface GroOptions {
  /** Packets per batch (default 128, wireguard-go `IdealBatchSize`). */
  capacity?: number;
  /** Coalesce TCP (needs TUN_F_TSO4/6 accepted). Default true. */
  tcp?: boolean;
  /** Coalesce UDP (needs TUN_F_USO4/6, Linux ≥ 6.2). Default false. */
  udp?: boolean;
}

const KIND_NONE = 0;
const KIND_TCP4 = 1;
const KIND_TCP6 = 2;
const KIND_UDP4 = 3;
const KIND_UDP6 = 4;
const ITEM_PSH = 1;
const ITEM_CHECKED = 2;
const ITEM_DEAD = 4;
const BUCKETS = 256;
/** Arena for queued packets; any single packet up to {@link MAX_IP_PACKET} fits when empty. */
const ARENA_BYTES = 256 * 1024;
const SCRATCH_AT = ARENA_BYTES + 16;
const GRO_MEM = SCRATCH_AT + 65536 + 64;
/** What the GRO steps return for a packet merged into an item (never a valid `~packet`). */
const MERGED = -0x7fffffff;

/**
 * GroBatcher collects the packets of one write batch and coalesces them, as
 * wireguard-go `handleGRO` does, into GSO frames for a TUN with TSO/USO:
 *
 * - TCP: IPv4 without options and unfragmented, or IPv6 whose next header
 *   is TCP; flags exactly ACK or ACK|PSH; a payload; same addresses, ports
 *   and ACK number (the flow key); same TCP options; equal IPv4 TOS, TTL and
 *   DF bits, or IPv6 version/class/flow label and hop limit; contiguous
 *   sequence numbers (appended, or prepended when one arrives early); every
 *   segment of the same size except a shorter last one; nothing after a PSH;
 *   at most {@link MAX_IP_PACKET} bytes in all.
 * - UDP (when enabled): same rules without sequence numbers, only ever
 *   appended to the newest item of its flow so datagrams keep their order.
 * - A packet is only merged after its TCP/UDP checksum verified: the kernel
 *   recomputes checksums of a coalesced frame (NEEDS_CSUM), which would
 *   otherwise launder a corrupt packet.
 *
 * A coalesced frame carries NEEDS_CSUM with csum_start at the L4 header, the
 * pseudo-header sum in the checksum field, the IPv4 total length and header
 * checksum or IPv6 payload length fixed, and `gso_size` = the first segment's
 * payload. Everything else is written as it came, behind a zero virtio header.
 */
export class GroBatcher {
  /** Counters, updated in place. */
  readonly stats: GroStats = {
    packets: 0,
    frames: 0,
    coalescedFrames: 0,
    coalescedPackets: 0,
    badChecksum: 0,
  };
  /** Coalesce TCP segments. */
  tcp: boolean;
  /** Coalesce UDP datagrams. */
  udp: boolean;
  readonly #cap: number;
  #mem = new Uint8Array(GRO_MEM);
  #w = new Uint32Array(this.#mem.buffer, 0, GRO_MEM >>> 2);
  #scratchViews = new ViewCache(this.#mem, VIEWS, 8);
  /** Views of frames written alone, by their place in the write order. */
  #singleViews: ViewCache;
  #count = 0;
  #used = 0;
  // Per packet.
  #off: Int32Array;
  #len: Int32Array;
  #kind: Uint8Array;
  #l4h: Uint8Array;
  #pay: Int32Array;
  #seq: Uint32Array;
  #hash: Int32Array;
  #next: Int32Array;
  // Per item (a run of packets that will be written as one frame).
  #items = 0;
  #itFirst: Int32Array;
  #itLast: Int32Array;
  #itSeq: Uint32Array;
  #itGso: Int32Array;
  #itPay: Int32Array;
  #itCount: Int32Array;
  #itFlags: Uint8Array;
  #itPrev: Int32Array;
  #buckets = new Int32Array(BUCKETS);
  /** Write order: ≥ 0 an item, < 0 `~packet` for a packet written alone. */
  #order: Int32Array;
  #orderLen = 0;

  constructor(opts: GroOptions = {}) {
    const cap = Math.max(1, Math.floor(opts.capacity ?? 128));
    this.#cap = cap;
    this.tcp = opts.tcp ?? true;
    this.udp = opts.udp ?? false;
    this.#off = new Int32Array(cap);
    this.#len = new Int32Array(cap);
    this.#kind = new Uint8Array(cap);
    this.#l4h = new Uint8Array(cap);
    this.#pay = new Int32Array(cap);
    this.#seq = new Uint32Array(cap);
    this.#hash = new Int32Array(cap);
    this.#next = new Int32Array(cap);
    this.#itFirst = new Int32Array(cap);
    this.#itLast = new Int32Array(cap);
    this.#itSeq = new Uint32Array(cap);
    this.#itGso = new Int32Array(cap);
    this.#itPay = new Int32Array(cap);
    this.#itCount = new Int32Array(cap);
    this.#itFlags = new Uint8Array(cap);
    this.#itPrev = new Int32Array(cap);
    this.#order = new Int32Array(cap);
    this.#singleViews = new ViewCache(this.#mem, cap, 12);
  }

  /** Packets queued since the last {@link GroBatcher.flush}. */
  get count(): number {
    return this.#count;
  }

  /**
   * Copies `packet` into the batch. False (nothing queued) when the batch is
   * full, in packets or bytes: flush and push again. A packet longer than
   * {@link MAX_IP_PACKET} is never accepted.
   */
  push(packet: Uint8Array): boolean {
    const n = packet.length, i = this.#count;
    // Each packet starts 16-aligned with ≥ 10 free bytes before it for its virtio header.
    const off = ((this.#used + 15) & ~15) + 16;
    if (i === this.#cap || n > MAX_IP_PACKET || off + n > ARENA_BYTES) return false;
    this.#mem.set(packet, off);
    this.#off[i] = off;
    this.#len[i] = n;
    this.#used = off + n;
    this.#count = i + 1;
    this.stats.packets++;
    return true;
  }

  /**
   * Coalesces the queued packets and calls `write` with each frame to write
   * (virtio header + IP packet; a view valid only during the call), in the
   * order the frames' first packets were pushed. Empties the batch even if
   * `write` throws. Returns the number of frames.
   */
  flush(write: (frame: Uint8Array) => void): number {
    const n = this.#count;
    if (n === 0) return 0;
    try {
      this.#coalesce(n);
      const mem = this.#mem, order = this.#order;
      for (let k = 0; k < this.#orderLen; k++) {
        const o = order[k];
        if (o >= 0 && this.#itCount[o] > 1) {
          write(this.#build(o));
          this.stats.coalescedFrames++;
          this.stats.coalescedPackets += this.#itCount[o];
        } else {
          const i = o >= 0 ? this.#itFirst[o] : ~o;
          const at = this.#off[i] - VIRTIO_NET_HDR_LEN;
          mem.fill(0, at, at + VIRTIO_NET_HDR_LEN);
          write(this.#singleViews.get(k, at, at + VIRTIO_NET_HDR_LEN + this.#len[i]));
        }
        this.stats.frames++;
      }
      return this.#orderLen;
    } finally {
      this.#count = 0;
      this.#used = 0;
      this.#orderLen = 0;
      this.#items = 0;
    }
  }

  /** Discards the queued packets. */
  clear(): void {
    this.#count = 0;
    this.#used = 0;
  }

  #coalesce(n: number): void {
    this.#buckets.fill(-1);
    this.#items = 0;
    this.#orderLen = 0;
    for (let i = 0; i < n; i++) {
      const kind = this.#classify(i);
      let r: number;
      if (kind === KIND_TCP4 || kind === KIND_TCP6) r = this.#tcpGro(i);
      else if (kind === KIND_UDP4 || kind === KIND_UDP6) r = this.#udpGro(i);
      else r = ~i;
      if (r !== MERGED) this.#order[this.#orderLen++] = r;
    }
  }

  /** Parses packet i's headers into the per-packet arrays; returns its GRO kind. */
  #classify(i: number): number {
    const m = this.#mem, o = this.#off[i], n = this.#len[i];
    this.#kind[i] = KIND_NONE;
    this.#next[i] = -1;
    if (n < 28) return KIND_NONE;
    let iph: number, proto: number;
    const v = m[o] >> 4;
    if (v === 4) {
      // IHL 5 (no options), total length exact, not a fragment.
      if (m[o] !== 0x45 || get16(m, o + 2) !== n || (m[o + 6] & 0x3f) !== 0 || m[o + 7] !== 0) {
        return KIND_NONE;
      }
      iph = 20;
      proto = m[o + 9];
    } else if (v === 6) {
      // Extension headers are left alone: only a next header of TCP/UDP qualifies.
      if (n < 48 || get16(m, o + 4) !== n - 40) return KIND_NONE;
      iph = 40;
      proto = m[o + 6];
    } else {
      return KIND_NONE;
    }
    const l4 = o + iph;
    let kind: number, hl: number;
    if (proto === IPPROTO_TCP && this.tcp) {
      if (n < iph + 20) return KIND_NONE;
      hl = (m[l4 + 12] >> 4) * 4;
      const flags = m[l4 + 13];
      if (hl < 20 || n < iph + hl || (flags !== TCP_ACK && flags !== (TCP_ACK | TCP_PSH))) {
        return KIND_NONE;
      }
      kind = v === 4 ? KIND_TCP4 : KIND_TCP6;
      this.#seq[i] = get32(m, l4 + 4);
    } else if (proto === IPPROTO_UDP && this.udp) {
      hl = 8;
      if (get16(m, l4 + 4) !== n - iph) return KIND_NONE;
      kind = v === 4 ? KIND_UDP4 : KIND_UDP6;
    } else {
      return KIND_NONE;
    }
    const pay = n - iph - hl;
    if (pay < 1) return KIND_NONE;
    this.#kind[i] = kind;
    this.#l4h[i] = hl;
    this.#pay[i] = pay;
    this.#hash[i] = this.#flowHash(i);
    return kind;
  }

  /**
   * The flow key is the run of 32-bit words from the source address through
   * the ports (3 words for IPv4, 9 for IPv6; packets are 16-byte aligned and
   * have no IPv4 options), plus the ACK number for TCP: segments acking
   * different data are not merged (wireguard-go `tcpFlowKey.rxAck`).
   */
  #keyStart(i: number): number {
    const k = this.#kind[i];
    return (this.#off[i] + (k === KIND_TCP4 || k === KIND_UDP4 ? 12 : 8)) >> 2;
  }

  #flowHash(i: number): number {
    const w = this.#w, k = this.#kind[i], at = this.#keyStart(i);
    const v4 = k === KIND_TCP4 || k === KIND_UDP4, words = v4 ? 3 : 9;
    let h = 0x811c9dc5 ^ k;
    for (let x = 0; x < words; x++) h = Math.imul(h ^ w[at + x], 0x01000193);
    if (k === KIND_TCP4 || k === KIND_TCP6) h = Math.imul(h ^ w[at + words + 1], 0x01000193);
    return (h ^ (h >>> 15)) & 0x7fffffff;
  }

  #sameFlow(a: number, b: number): boolean {
    const k = this.#kind[a];
    if (k !== this.#kind[b] || this.#hash[a] !== this.#hash[b]) return false;
    const w = this.#w, x = this.#keyStart(a), y = this.#keyStart(b);
    // TCP: the word after the ports is the sequence number (skipped), then the ACK.
    const last = k === KIND_TCP4 ? 4 : k === KIND_TCP6 ? 10 : k === KIND_UDP4 ? 2 : 8;
    for (let z = 0; z <= last; z++) {
      if ((z === last - 1 && (k === KIND_TCP4 || k === KIND_TCP6)) || w[x + z] === w[y + z]) {
        continue;
      }
      return false;
    }
    return true;
  }

  /** IP header fields that must match for two packets to share a GSO frame. */
  #ipHeadersMatch(a: number, b: number): boolean {
    const m = this.#mem, x = this.#off[a], y = this.#off[b];
    if (m[x] >> 4 === 6) {
      // Version, traffic class and flow label (kernel ipv6_gro_receive), hop limit.
      return m[x] === m[y] && m[x + 1] === m[y + 1] && m[x + 2] === m[y + 2] &&
        m[x + 3] === m[y + 3] && m[x + 7] === m[y + 7];
    }
    // TOS, the DF/MF/reserved bits, TTL.
    return m[x + 1] === m[y + 1] && m[x + 6] >> 5 === m[y + 6] >> 5 && m[x + 8] === m[y + 8];
  }

  #checksumValid(i: number): boolean {
    const m = this.#mem, o = this.#off[i], iph = m[o] >> 4 === 6 ? 40 : 20;
    const k = this.#kind[i];
    const proto = k === KIND_TCP4 || k === KIND_TCP6 ? IPPROTO_TCP : IPPROTO_UDP;
    const l4len = this.#len[i] - iph;
    return checksumAdd(m, o + iph, o + this.#len[i], pseudoHeaderSum(m, o, proto, l4len)) ===
      0xffff;
  }

  /** Validates item k's lone packet once; marks the item dead when it fails. */
  #itemChecksumOk(k: number): boolean {
    const f = this.#itFlags[k];
    if (f & ITEM_CHECKED) return true;
    if (f & ITEM_DEAD) return false;
    if (this.#checksumValid(this.#itFirst[k])) {
      this.#itFlags[k] = f | ITEM_CHECKED;
      return true;
    }
    this.#itFlags[k] = f | ITEM_DEAD;
    this.stats.badChecksum++;
    return false;
  }

  #newItem(i: number, dead: boolean): number {
    const k = this.#items++;
    const b = this.#hash[i] & (BUCKETS - 1);
    this.#itFirst[k] = i;
    this.#itLast[k] = i;
    this.#itSeq[k] = this.#seq[i];
    this.#itGso[k] = this.#pay[i];
    this.#itPay[k] = this.#pay[i];
    this.#itCount[k] = 1;
    const kind = this.#kind[i];
    const psh = (kind === KIND_TCP4 || kind === KIND_TCP6) &&
      (this.#mem[this.#off[i] + (kind === KIND_TCP4 ? 20 : 40) + 13] & TCP_PSH) !== 0;
    this.#itFlags[k] = (psh ? ITEM_PSH : 0) | (dead ? ITEM_DEAD : 0);
    this.#itPrev[k] = this.#buckets[b];
    this.#buckets[b] = k;
    return k;
  }

  /** TCP GRO for packet i: returns an item to write, `~i` to write i alone, or a "merged" marker. */
  #tcpGro(i: number): number {
    const m = this.#mem, oi = this.#off[i], iph = this.#kind[i] === KIND_TCP4 ? 20 : 40;
    const hl = this.#l4h[i], seq = this.#seq[i], gso = this.#pay[i];
    const psh = (m[oi + iph + 13] & TCP_PSH) !== 0;
    // Newest items first: in-order arrivals match at once (wireguard-go tcpGRO).
    for (let k = this.#buckets[this.#hash[i] & (BUCKETS - 1)]; k >= 0; k = this.#itPrev[k]) {
      const f = this.#itFirst[k];
      if (this.#itFlags[k] & ITEM_DEAD || !this.#sameFlow(i, f) || this.#l4h[f] !== hl) continue;
      const of = this.#off[f];
      let same = true;
      for (let b = 20; b < hl && same; b++) same = m[oi + iph + b] === m[of + iph + b];
      if (!same || !this.#ipHeadersMatch(i, f)) continue;
      const itGso = this.#itGso[k], itPay = this.#itPay[k];
      if (iph + hl + itPay + gso > MAX_IP_PACKET) continue;
      let append: boolean;
      if (seq === ((this.#itSeq[k] + itPay) >>> 0)) {
        // After a PSH, or after a short segment, nothing may follow; no larger segment either.
        if (this.#itFlags[k] & ITEM_PSH || itPay % itGso !== 0 || gso > itGso) continue;
        append = true;
      } else if (((seq + gso) >>> 0) === this.#itSeq[k]) {
        if (psh || gso < itGso || (gso > itGso && this.#itCount[k] > 1)) continue;
        append = false;
      } else {
        continue;
      }
      if (!this.#itemChecksumOk(k)) continue;
      if (!this.#checksumValid(i)) {
        this.stats.badChecksum++;
        return ~i;
      }
      if (append) {
        this.#next[this.#itLast[k]] = i;
        this.#itLast[k] = i;
        if (psh) this.#itFlags[k] |= ITEM_PSH;
      } else {
        this.#next[i] = f;
        this.#itFirst[k] = i;
        this.#itSeq[k] = seq;
        if (gso > itGso) this.#itGso[k] = gso;
      }
      this.#itPay[k] = itPay + gso;
      this.#itCount[k]++;
      return MERGED;
    }
    return this.#newItem(i, false);
  }

  /** UDP GRO for packet i: only the flow's newest item is a candidate, so order is kept. */
  #udpGro(i: number): number {
    const gso = this.#pay[i];
    for (let k = this.#buckets[this.#hash[i] & (BUCKETS - 1)]; k >= 0; k = this.#itPrev[k]) {
      const f = this.#itFirst[k];
      if (!this.#sameFlow(i, f)) continue;
      const itGso = this.#itGso[k], itPay = this.#itPay[k];
      const iph = this.#kind[i] === KIND_UDP4 ? 20 : 40;
      if (
        this.#itFlags[k] & ITEM_DEAD || !this.#ipHeadersMatch(i, f) || itPay % itGso !== 0 ||
        gso > itGso || iph + 8 + itPay + gso > MAX_IP_PACKET || !this.#itemChecksumOk(k)
      ) {
        break;
      }
      if (!this.#checksumValid(i)) {
        this.stats.badChecksum++;
        return this.#newItem(i, true);
      }
      this.#next[this.#itLast[k]] = i;
      this.#itLast[k] = i;
      this.#itPay[k] = itPay + gso;
      this.#itCount[k]++;
      return MERGED;
    }
    return this.#newItem(i, false);
  }

  /** Assembles item k into the scratch area behind its virtio header; returns the frame. */
  #build(k: number): Uint8Array {
    const m = this.#mem, f = this.#itFirst[k], o = this.#off[f], kind = this.#kind[f];
    const v6 = kind === KIND_TCP6 || kind === KIND_UDP6;
    const tcp = kind === KIND_TCP4 || kind === KIND_TCP6;
    const iph = v6 ? 40 : 20, hl = this.#l4h[f], s = SCRATCH_AT;
    m.copyWithin(s, o, o + this.#len[f]);
    let pos = s + this.#len[f];
    for (let j = this.#next[f]; j >= 0; j = this.#next[j]) {
      const from = this.#off[j] + iph + hl, len = this.#pay[j];
      m.copyWithin(pos, from, from + len);
      pos += len;
    }
    const total = pos - s, l4 = s + iph, l4len = total - iph;
    if (v6) {
      set16(m, s + 4, l4len);
    } else {
      set16(m, s + 2, total);
      m[s + 10] = m[s + 11] = 0;
      set16(m, s + 10, ~checksumAdd(m, s, s + 20) & 0xffff);
    }
    let csumOffset: number;
    if (tcp) {
      if (this.#itFlags[k] & ITEM_PSH) m[l4 + 13] |= TCP_PSH;
      csumOffset = 16;
    } else {
      set16(m, l4 + 4, l4len);
      csumOffset = 6;
    }
    // The kernel completes the checksum from csum_start, seeded with the pseudo-header sum.
    set16(m, l4 + csumOffset, pseudoHeaderSum(m, s, tcp ? IPPROTO_TCP : IPPROTO_UDP, l4len));
    const gsoType = tcp
      ? (v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4)
      : VIRTIO_NET_HDR_GSO_UDP_L4;
    setHdr(
      m,
      s - VIRTIO_NET_HDR_LEN,
      VIRTIO_NET_HDR_F_NEEDS_CSUM,
      gsoType,
      iph + hl,
      this.#itGso[k],
      iph,
      csumOffset,
    );
    const at = s - VIRTIO_NET_HDR_LEN, n = VIRTIO_NET_HDR_LEN + total;
    return this.#scratchViews.get(n & (VIEWS - 1), at, at + n);
  }
}
