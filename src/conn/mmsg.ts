// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The byte layout of a `recvmmsg`/`sendmmsg` batch (struct mmsghdr, iovec,
 * sockaddr and control messages) for the Linux UDP edge (`./udp.ts`), kept
 * apart from the socket logic: this file writes and parses memory, it makes
 * no system call.
 *
 * Memory: every struct the kernel reads through a pointer (mmsghdr, iovec,
 * sockaddr, cmsg, packet data) is carved from one long-lived ArrayBuffer, an
 * {@link Arena}, per direction and socket, kept referenced by its owner,
 * because V8 may free a buffer whose address we only stored in another
 * struct. Each arena holds 64 slots of 64 KiB (a GRO-coalesced message is at
 * most 64 KiB, and a truncated one would lose every datagram in it).
 *
 * Receiving ({@link RxBatch}): after `recvmmsg`, {@link RxBatch.readFrom}
 * fills one scratch {@link Endpoint} from a message's sockaddr and control
 * messages (the IP_PKTINFO / IPV6_PKTINFO sticky source, the UDP_GRO segment
 * size), and {@link RxBatch.data} hands out views of its payload, the same
 * view object again while the message and segment land on the same bytes, so
 * a steady stream allocates nothing per datagram.
 *
 * Sending ({@link TxBatch}): {@link TxBatch.add} copies a datagram into its
 * slot with its sockaddr and pktinfo; {@link TxBatch.layout} then points the
 * mmsghdrs at the slots, merging a run of datagrams to one destination into
 * one UDP GSO message (its iovecs are the run's consecutive slots, and a
 * UDP_SEGMENT cmsg follows the pktinfo one) when GSO is on. Limits: 64
 * segments and a total that fits one IP packet (65535 − 20 − 8 for IPv4,
 * 65535 − 8 for IPv6, wireguard-go's `maxIPv4PayloadLen`/`maxIPv6PayloadLen`;
 * more is EMSGSIZE).
 */
import { Endpoint } from "./endpoint.ts";
import { ViewCache } from "../view_cache.ts";
import {
  addressOf,
  AF_INET,
  AF_INET6,
  cstr,
  IP_PKTINFO,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPPROTO_UDP,
  IPV6_PKTINFO,
  libc,
  SIZEOF_CMSGHDR,
  SIZEOF_IOVEC,
  SIZEOF_MMSGHDR,
  SIZEOF_SOCKADDR_IN,
  SIZEOF_SOCKADDR_IN6,
} from "../sys/libc.ts";

/** Datagrams per recvmmsg/sendmmsg call (wireguard-go uses 128; 64 keeps arenas small). */
export const BATCH_SIZE = 64;
/** Most datagrams in one GSO message: the kernel's `UDP_MAX_SEGMENTS`. */
export const GSO_MAX_SEGMENTS = 64;
/** Largest datagram we receive or send: a full UDP payload. */
export const MAX_DATAGRAM_SIZE = 65535;

// Socket options of the UDP level (linux/udp.h); SOL_UDP is IPPROTO_UDP.
export const SOL_UDP = IPPROTO_UDP;
export const UDP_SEGMENT = 103;
export const UDP_GRO = 104;
/** Largest GSO message payload (udp_sendmsg → EMSGSIZE beyond one IP packet). */
const MAX_GSO_PAYLOAD4 = 65535 - 20 - 8;
const MAX_GSO_PAYLOAD6 = 65535 - 8;

// Arena layout: BATCH_SIZE of each, then the data slots.
const SLOT = 65536;
const NAME_SLOT = 32; // sockaddr_in6 (28) rounded up
// Control: CMSG_SPACE(in6_pktinfo) = 40 plus CMSG_SPACE(u16 UDP_SEGMENT) = 24 on
// send, or CMSG_SPACE(int UDP_GRO) = 24 on receive: 64 at most, in either order.
const CTRL_SLOT = 64;
const IOV_OFF = BATCH_SIZE * SIZEOF_MMSGHDR;
const NAME_OFF = IOV_OFF + BATCH_SIZE * SIZEOF_IOVEC;
const CTRL_OFF = NAME_OFF + BATCH_SIZE * NAME_SLOT;
const DATA_OFF = CTRL_OFF + BATCH_SIZE * CTRL_SLOT;
const ARENA_SIZE = DATA_OFF + BATCH_SIZE * SLOT;
// struct msghdr offsets inside struct mmsghdr (64-bit Linux), in 32-bit words.
const MH_NAME = 0;
const MH_NAMELEN = 2;
const MH_IOV = 4;
const MH_IOVLEN = 6;
const MH_CONTROL = 8;
const MH_CONTROLLEN = 10;
const MH_FLAGS = 12;
const MH_LEN = 14;
const MMSG_WORDS = SIZEOF_MMSGHDR >> 2;
// CMSG_LEN/CMSG_SPACE of in_pktinfo (12 bytes) and in6_pktinfo (20 bytes).
const PKTINFO4_LEN = SIZEOF_CMSGHDR + 12;
const PKTINFO4_SPACE = SIZEOF_CMSGHDR + 16;
const PKTINFO6_LEN = SIZEOF_CMSGHDR + 20;
const PKTINFO6_SPACE = SIZEOF_CMSGHDR + 24;
// CMSG_LEN/CMSG_SPACE of the u16 UDP_SEGMENT size (the kernel wants exactly CMSG_LEN(2)).
const SEGMENT_LEN = SIZEOF_CMSGHDR + 2;
const SEGMENT_SPACE = SIZEOF_CMSGHDR + 8;
/** Cached payload views per received message: one per GRO segment, up to 64 (then shared). */
const SEGMENT_VIEWS = 64;
const TWO_32 = 2 ** 32;

/** One long-lived buffer of BATCH_SIZE messages with their names, control and data. */
class Arena {
  readonly buf = new ArrayBuffer(ARENA_SIZE);
  readonly u8 = new Uint8Array(this.buf);
  readonly u32 = new Uint32Array(this.buf);
  /** `u8` from message i on, for resuming a partly sent batch without allocating. */
  readonly fromMsg: Uint8Array[] = [];
  /**
   * Addresses of slot i's sockaddr, iovec and control buffer as low/high
   * 32-bit halves, so a flush can point any message at any slot with plain
   * u32 stores (no BigInt per packet).
   */
  readonly nameLo = new Uint32Array(BATCH_SIZE);
  readonly nameHi = new Uint32Array(BATCH_SIZE);
  readonly iovLo = new Uint32Array(BATCH_SIZE);
  readonly iovHi = new Uint32Array(BATCH_SIZE);
  readonly ctrlLo = new Uint32Array(BATCH_SIZE);
  readonly ctrlHi = new Uint32Array(BATCH_SIZE);

  constructor() {
    const dv = new DataView(this.buf);
    const base = addressOf(this.buf);
    // User-space addresses are below 2^57, so they are exact as doubles.
    const baseNum = Number(base);
    for (let i = 0; i < BATCH_SIZE; i++) {
      const name = baseNum + NAME_OFF + i * NAME_SLOT;
      const iovAt = baseNum + IOV_OFF + i * SIZEOF_IOVEC;
      const ctrl = baseNum + CTRL_OFF + i * CTRL_SLOT;
      this.nameLo[i] = name % TWO_32;
      this.nameHi[i] = Math.floor(name / TWO_32);
      this.iovLo[i] = iovAt % TWO_32;
      this.iovHi[i] = Math.floor(iovAt / TWO_32);
      this.ctrlLo[i] = ctrl % TWO_32;
      this.ctrlHi[i] = Math.floor(ctrl / TWO_32);
    }
    for (let i = 0; i < BATCH_SIZE; i++) {
      const m = i * SIZEOF_MMSGHDR, iov = IOV_OFF + i * SIZEOF_IOVEC;
      dv.setBigUint64(m + MH_NAME * 4, base + BigInt(NAME_OFF + i * NAME_SLOT), true);
      dv.setBigUint64(m + MH_IOV * 4, base + BigInt(iov), true);
      dv.setBigUint64(m + MH_IOVLEN * 4, 1n, true);
      dv.setBigUint64(m + MH_CONTROL * 4, base + BigInt(CTRL_OFF + i * CTRL_SLOT), true);
      dv.setBigUint64(iov, base + BigInt(DATA_OFF + i * SLOT), true);
      dv.setBigUint64(iov + 8, BigInt(SLOT), true);
      this.fromMsg.push(this.u8.subarray(m));
    }
  }
}

/** The receive side of one socket: its arena, scratch endpoint and payload views. */
export class RxBatch {
  readonly family: 4 | 6;
  readonly #a = new Arena();
  /** The scratch endpoint handed to the receive callback, filled by {@link RxBatch.readFrom}. */
  readonly from: Endpoint;
  readonly #fromSrc: Uint8Array;
  readonly #views: ViewCache;
  #zoneId = 0;
  #zone = "";

  constructor(family: 4 | 6) {
    this.family = family;
    const n = family === 4 ? 4 : 16;
    this.from = new Endpoint(family, new Uint8Array(n), 0);
    this.#fromSrc = new Uint8Array(n);
    this.#views = new ViewCache(this.#a.u8, BATCH_SIZE * SEGMENT_VIEWS, 13);
  }

  /** The mmsghdr array to pass to recvmmsg. */
  get msgvec(): Uint8Array {
    return this.#a.u8;
  }

  /** Resets the name and control room of messages [0, vlen) before a recvmmsg. */
  prepare(vlen: number): void {
    const u32 = this.#a.u32;
    const nameLen = this.family === 4 ? SIZEOF_SOCKADDR_IN : SIZEOF_SOCKADDR_IN6;
    for (let i = 0; i < vlen; i++) {
      const m = i * MMSG_WORDS;
      u32[m + MH_NAMELEN] = nameLen;
      u32[m + MH_CONTROLLEN] = CTRL_SLOT;
    }
  }

  /** msg_flags of received message i (MSG_TRUNC, MSG_CTRUNC). */
  flags(i: number): number {
    return this.#a.u32[i * MMSG_WORDS + MH_FLAGS];
  }

  /** Bytes received in message i. */
  length(i: number): number {
    return this.#a.u32[i * MMSG_WORDS + MH_LEN];
  }

  /**
   * Fills {@link RxBatch.from} from message i: address, port and scope from
   * its sockaddr, and from its control messages the sticky source (the local
   * address the datagram was addressed to, IPv4 `ipi_spec_dst` or IPv6
   * `ipi6_addr`, and the interface it arrived on; cleared when absent).
   * Returns the UDP_GRO segment size, 0 when the message holds one datagram.
   * The kernel writes UDP_GRO as an int (`udp_cmsg_recv`); sizes fit in its
   * low 16 bits, which is all wireguard-go reads (`getGSOSize`).
   */
  readFrom(i: number): number {
    const u8 = this.#a.u8, ep = this.from, addr = ep.address, v4 = this.family === 4;
    const o = NAME_OFF + i * NAME_SLOT;
    ep.port = (u8[o + 2] << 8) | u8[o + 3];
    if (v4) {
      for (let k = 0; k < 4; k++) addr[k] = u8[o + 4 + k];
    } else {
      for (let k = 0; k < 16; k++) addr[k] = u8[o + 8 + k];
      const scope = le32(u8, o + 24) >>> 0;
      ep.scopeId = scope;
      ep.zone = this.#zoneFor(scope);
    }
    const c = CTRL_OFF + i * CTRL_SLOT;
    const end = c + Math.min(this.#a.u32[i * MMSG_WORDS + MH_CONTROLLEN], CTRL_SLOT);
    let p = c, seg = 0, found = false;
    while (p + SIZEOF_CMSGHDR <= end) {
      // cmsg_len is a size_t; a sane one fits in its low 32 bits.
      const clen = le32(u8, p);
      if (clen < SIZEOF_CMSGHDR || p + clen > end) break;
      const level = le32(u8, p + 8), type = le32(u8, p + 12);
      const d = p + SIZEOF_CMSGHDR;
      if (level === SOL_UDP && type === UDP_GRO && clen >= SEGMENT_LEN) {
        seg = u8[d] | (u8[d + 1] << 8);
      } else if (v4 && level === IPPROTO_IP && type === IP_PKTINFO && clen >= PKTINFO4_LEN) {
        const src = this.#fromSrc;
        for (let k = 0; k < 4; k++) src[k] = u8[d + 4 + k];
        ep.srcAddress = src;
        ep.srcIfindex = le32(u8, d);
        found = true;
      } else if (
        !v4 && level === IPPROTO_IPV6 && type === IPV6_PKTINFO && clen >= PKTINFO6_LEN
      ) {
        const src = this.#fromSrc;
        for (let k = 0; k < 16; k++) src[k] = u8[d + k];
        ep.srcAddress = src;
        ep.srcIfindex = le32(u8, d + 16);
        found = true;
      }
      p += (clen + 7) & ~7;
    }
    if (!found) {
      ep.srcAddress = null;
      ep.srcIfindex = 0;
    }
    return seg;
  }

  /**
   * Bytes [start, end) of message i's payload; `seg` is the GRO segment's
   * number (0 for a plain datagram). Valid until the next recvmmsg.
   */
  data(i: number, seg: number, start: number, end: number): Uint8Array {
    const off = DATA_OFF + i * SLOT;
    return this.#views.get(i * SEGMENT_VIEWS + (seg & (SEGMENT_VIEWS - 1)), off + start, off + end);
  }

  /** Zone text for a scope id, cached (link-local peers repeat the same one). */
  #zoneFor(scopeId: number): string {
    if (scopeId === 0) return "";
    if (scopeId !== this.#zoneId) {
      this.#zoneId = scopeId;
      this.#zone = String(scopeId);
    }
    return this.#zone;
  }
}

/** The send side of one socket: queued datagrams and the messages laid out for them. */
export class TxBatch {
  readonly family: 4 | 6;
  readonly #a = new Arena();
  /** Datagrams queued in slots [0, count). */
  count = 0;
  /** Endpoints of the queued datagrams, to clear a vanished sticky source. */
  readonly endpoints: (Endpoint | null)[] = new Array(BATCH_SIZE).fill(null);
  /** Who sent each queued datagram (told when it fails later). */
  readonly owners: (object | null)[] = new Array(BATCH_SIZE).fill(null);
  /** Bytes of pktinfo control written for each queued datagram (0, 32 or 40). */
  readonly ctrlLen = new Uint8Array(BATCH_SIZE);
  /** For each laid-out message: its first queued datagram and how many it carries. */
  readonly outFirst = new Uint8Array(BATCH_SIZE);
  readonly outCount = new Uint8Array(BATCH_SIZE);

  constructor(family: 4 | 6) {
    this.family = family;
  }

  /** The mmsghdr array from laid-out message j on, to pass to sendmmsg. */
  msgvec(j: number): Uint8Array {
    return this.#a.fromMsg[j];
  }

  /** Size of queued datagram i. */
  size(i: number): number {
    return this.#a.u32[(IOV_OFF + i * SIZEOF_IOVEC + 8) >> 2];
  }

  /**
   * Copies `data` into the next slot with `ep`'s sockaddr (`mapped`: an
   * IPv4-mapped IPv6 endpoint going out on the IPv4 socket) and sticky
   * source; returns the number queued. The caller checks the room.
   */
  add(data: Uint8Array, ep: Endpoint, mapped: boolean, owner: object | null): number {
    const u8 = this.#a.u8, u32 = this.#a.u32, i = this.count;
    const name = NAME_OFF + i * NAME_SLOT;
    // sockaddr_in / sockaddr_in6: family (host order), port (network order), address.
    const addr = ep.address;
    u8[name + 2] = ep.port >> 8;
    u8[name + 3] = ep.port & 0xff;
    if (this.family === 4) {
      u8[name] = AF_INET;
      u8[name + 1] = 0;
      const from = mapped ? 12 : 0;
      for (let k = 0; k < 4; k++) u8[name + 4 + k] = addr[from + k];
      // sin_zero: kept zero so that layout can compare whole names.
      u32[(name + 8) >> 2] = 0;
      u32[(name + 12) >> 2] = 0;
    } else {
      u8[name] = AF_INET6;
      u8[name + 1] = 0;
      u32[(name + 4) >> 2] = 0; // flowinfo
      for (let k = 0; k < 16; k++) u8[name + 8 + k] = addr[k];
      // A zone given by name ("fe80::1%eth0") has scopeId 0 until resolved here.
      u32[(name + 24) >> 2] = ep.scopeId !== 0 || ep.zone === "" ? ep.scopeId : zoneIndex(ep.zone);
    }
    u8.set(data, DATA_OFF + i * SLOT);
    u32[(IOV_OFF + i * SIZEOF_IOVEC + 8) >> 2] = data.length;
    this.ctrlLen[i] = writePktinfo(u8, u32, CTRL_OFF + i * CTRL_SLOT, this.family, ep);
    this.endpoints[i] = ep;
    this.owners[i] = owner;
    return (this.count = i + 1);
  }

  /** Forgets the endpoints and owners of slots [0, count) (after a flush or close). */
  release(count: number): void {
    this.endpoints.fill(null, 0, count);
    this.owners.fill(null, 0, count);
  }

  /**
   * Lays out queued datagrams `from` … `count − 1` as messages 0, 1, … and
   * returns how many messages that made. With `gso`, a run of datagrams to
   * the same destination and sticky source, all of one size except a shorter
   * last one, shares one message. Datagrams before `singlesUntil` get a
   * message each. Records in {@link TxBatch.outFirst}/{@link TxBatch.outCount}
   * which datagrams each message carries.
   */
  layout(from: number, count: number, singlesUntil: number, gso: boolean): number {
    const a = this.#a, u8 = a.u8, u32 = a.u32, ctrlLen = this.ctrlLen;
    const v4 = this.family === 4;
    const nameLen = v4 ? SIZEOF_SOCKADDR_IN : SIZEOF_SOCKADDR_IN6;
    const maxTotal = v4 ? MAX_GSO_PAYLOAD4 : MAX_GSO_PAYLOAD6;
    const lenWord = (IOV_OFF + 8) >> 2, iovWords = SIZEOF_IOVEC >> 2;
    let j = 0;
    for (let i = from; i < count; j++) {
      const size = u32[lenWord + i * iovWords];
      let k = 1;
      if (gso && size > 0 && i >= singlesUntil) {
        let total = size;
        while (i + k < count && k < GSO_MAX_SEGMENTS) {
          const next = u32[lenWord + (i + k) * iovWords];
          if (next === 0 || next > size || total + next > maxTotal) break;
          if (!this.#sameDestination(i, i + k, nameLen)) break;
          total += next;
          k++;
          // Only the last segment may be shorter (udp_send_skb cuts at gso_size).
          if (next < size) break;
        }
      }
      const m = j * MMSG_WORDS;
      u32[m + MH_NAME] = a.nameLo[i];
      u32[m + MH_NAME + 1] = a.nameHi[i];
      u32[m + MH_NAMELEN] = nameLen;
      u32[m + MH_IOV] = a.iovLo[i];
      u32[m + MH_IOV + 1] = a.iovHi[i];
      u32[m + MH_IOVLEN] = k;
      u32[m + MH_IOVLEN + 1] = 0;
      u32[m + MH_CONTROL] = a.ctrlLo[i];
      u32[m + MH_CONTROL + 1] = a.ctrlHi[i];
      let clen = ctrlLen[i];
      if (k > 1) clen += writeSegment(u8, u32, CTRL_OFF + i * CTRL_SLOT + clen, size);
      u32[m + MH_CONTROLLEN] = clen;
      u32[m + MH_CONTROLLEN + 1] = 0;
      u32[m + MH_FLAGS] = 0;
      this.outFirst[j] = i;
      this.outCount[j] = k;
      i += k;
    }
    return j;
  }

  /** Whether queued datagrams `a` and `b` have the same sockaddr and the same pktinfo. */
  #sameDestination(a: number, b: number, nameLen: number): boolean {
    const u32 = this.#a.u32, ctrlLen = this.ctrlLen;
    const na = (NAME_OFF + a * NAME_SLOT) >> 2, nb = (NAME_OFF + b * NAME_SLOT) >> 2;
    for (let w = 0; w < nameLen >> 2; w++) if (u32[na + w] !== u32[nb + w]) return false;
    const len = ctrlLen[a];
    if (ctrlLen[b] !== len) return false;
    const ca = (CTRL_OFF + a * CTRL_SLOT) >> 2, cb = (CTRL_OFF + b * CTRL_SLOT) >> 2;
    for (let w = 0; w < len >> 2; w++) if (u32[ca + w] !== u32[cb + w]) return false;
    return true;
  }

  /**
   * Clears the sticky source of queued datagram `first` and of every later one
   * (up to `count`) that carries the same pktinfo, on the datagrams and on
   * their endpoints.
   */
  clearSource(first: number, count: number): void {
    const u32 = this.#a.u32, ctrlLen = this.ctrlLen, eps = this.endpoints, len = ctrlLen[first];
    const ref = (CTRL_OFF + first * CTRL_SLOT) >> 2;
    for (let d = first; d < count; d++) {
      if (ctrlLen[d] !== len) continue;
      const c = (CTRL_OFF + d * CTRL_SLOT) >> 2;
      let same = true;
      for (let w = 0; w < len >> 2 && same; w++) same = u32[c + w] === u32[ref + w];
      if (!same) continue;
      eps[d]?.clearSrc();
      ctrlLen[d] = 0;
    }
  }
}

/** Whether `a` is an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
export function isV4Mapped(a: Uint8Array): boolean {
  if (a.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (a[i] !== 0) return false;
  return a[10] === 0xff && a[11] === 0xff;
}

/** The interface index for an IPv6 zone name, 0 if unknown (never cached: links come and go). */
function zoneIndex(zone: string): number {
  return libc().if_nametoindex(cstr(zone));
}

/** The little-endian (host order) int32 at `o`. */
function le32(u8: Uint8Array, o: number): number {
  return u8[o] | (u8[o + 1] << 8) | (u8[o + 2] << 16) | (u8[o + 3] << 24);
}

/**
 * Writes an IP_PKTINFO/IPV6_PKTINFO control message for `ep`'s sticky source
 * at `o`, returning msg_controllen (0 when there is none to send).
 */
function writePktinfo(
  u8: Uint8Array,
  u32: Uint32Array,
  o: number,
  family: 4 | 6,
  ep: Endpoint,
): number {
  const src = ep.srcAddress;
  if (src === null) return 0;
  const w = o >> 2;
  if (family === 4) {
    let from: number;
    if (src.length === 4) from = 0;
    else if (isV4Mapped(src)) from = 12;
    else return 0;
    u32[w] = PKTINFO4_LEN;
    u32[w + 1] = 0;
    u32[w + 2] = IPPROTO_IP;
    u32[w + 3] = IP_PKTINFO;
    // in_pktinfo { ipi_ifindex, ipi_spec_dst (our source), ipi_addr (ignored on send) }
    u32[w + 4] = ep.srcIfindex;
    for (let k = 0; k < 4; k++) u8[o + 20 + k] = src[from + k];
    u32[w + 6] = 0;
    u32[w + 7] = 0;
    return PKTINFO4_SPACE;
  }
  if (src.length !== 16) return 0;
  u32[w] = PKTINFO6_LEN;
  u32[w + 1] = 0;
  u32[w + 2] = IPPROTO_IPV6;
  u32[w + 3] = IPV6_PKTINFO;
  // in6_pktinfo { ipi6_addr (our source), ipi6_ifindex }
  for (let k = 0; k < 16; k++) u8[o + 16 + k] = src[k];
  u32[w + 8] = ep.srcIfindex;
  u32[w + 9] = 0;
  return PKTINFO6_SPACE;
}

/** Writes a UDP_SEGMENT cmsg of `size` at `o` (8-aligned); returns its CMSG_SPACE. */
function writeSegment(u8: Uint8Array, u32: Uint32Array, o: number, size: number): number {
  const w = o >> 2;
  u32[w] = SEGMENT_LEN;
  u32[w + 1] = 0;
  u32[w + 2] = SOL_UDP;
  u32[w + 3] = UDP_SEGMENT;
  u32[w + 4] = 0;
  u32[w + 5] = 0;
  u8[o + 16] = size & 0xff;
  u8[o + 17] = size >> 8;
  return SEGMENT_SPACE;
}
