// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * IPv4 (RFC 791) and IPv6 (RFC 8200) headers: {@link parseIp} checks one
 * received packet and finds its upper-layer payload, skipping IPv4 options
 * and IPv6 extension headers; {@link writeIPv4} and {@link writeIPv6} build
 * the headers the stack sends. Parsing fills a reused {@link IpPacket} and
 * allocates nothing.
 *
 * Fragments are refused (the stack does no reassembly; a tunnel MTU the
 * sender honours makes them unneeded), except IPv6 atomic fragments
 * (offset 0, no more fragments, RFC 6946), which are the whole packet.
 */
import { fold, get16, put16, sumWords } from "./checksum.ts";

/** IP protocol numbers the stack knows. */
export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMPV6 = 58;

/** IPv6 extension headers skipped before the upper layer. */
const NH_HOP_BY_HOP = 0;
const NH_ROUTING = 43;
const NH_FRAGMENT = 44;
const NH_AH = 51;
const NH_NONE = 59;
const NH_DEST_OPTS = 60;
/** At most this many extension headers are walked; more is a drop. */
const MAX_EXT_HEADERS = 8;

/** Why {@link parseIp} refused a packet. */
export enum IpError {
  None = 0,
  /** Too short, bad version, lengths that do not fit, bad header checksum, bad extension chain. */
  Malformed = 1,
  /** A fragment of a larger packet. */
  Fragment = 2,
  /** IPv6 routing header with segments left, or no next header. */
  Unsupported = 3,
}

/** One parsed packet; offsets index {@link IpPacket.buf}. */
export class IpPacket {
  buf: Uint8Array = new Uint8Array(0);
  /** 4 or 6. */
  version = 0;
  /** Offset of the source address (4 or 16 bytes). */
  srcOff = 0;
  /** Offset of the destination address. */
  dstOff = 0;
  /** Address length: 4 or 16. */
  alen = 0;
  /** Upper-layer protocol (after IPv6 extension headers). */
  proto = 0;
  /** Offset and length of the upper-layer payload. */
  l4Off = 0;
  l4Len = 0;
  /** IP packet length (the buffer may carry trailing bytes beyond it). */
  length = 0;
}

/** Parses `buf` into `out`; returns {@link IpError.None} when it can be used. */
export function parseIp(buf: Uint8Array, out: IpPacket): IpError {
  out.buf = buf;
  if (buf.length < 1) return IpError.Malformed;
  const version = buf[0] >> 4;
  out.version = version;
  if (version === 4) return parseIPv4(buf, out);
  if (version === 6) return parseIPv6(buf, out);
  return IpError.Malformed;
}

function parseIPv4(buf: Uint8Array, out: IpPacket): IpError {
  if (buf.length < 20) return IpError.Malformed;
  const ihl = (buf[0] & 0x0f) * 4;
  const total = get16(buf, 2);
  if (ihl < 20 || total < ihl || total > buf.length) return IpError.Malformed;
  // The header checksum covers the header including options (RFC 791).
  if (fold(sumWords(buf, 0, ihl, 0)) !== 0xffff) return IpError.Malformed;
  // MF set or a non-zero fragment offset: part of a fragmented packet.
  if ((get16(buf, 6) & 0x3fff) !== 0) return IpError.Fragment;
  out.alen = 4;
  out.srcOff = 12;
  out.dstOff = 16;
  out.proto = buf[9];
  out.l4Off = ihl; // options, if any, are skipped
  out.l4Len = total - ihl;
  out.length = total;
  return IpError.None;
}

function parseIPv6(buf: Uint8Array, out: IpPacket): IpError {
  if (buf.length < 40) return IpError.Malformed;
  const total = 40 + get16(buf, 4);
  if (total > buf.length) return IpError.Malformed;
  out.alen = 16;
  out.srcOff = 8;
  out.dstOff = 24;
  out.length = total;
  let nh = buf[6];
  let off = 40;
  for (let n = 0;; n++) {
    if (
      nh !== NH_HOP_BY_HOP && nh !== NH_ROUTING && nh !== NH_FRAGMENT && nh !== NH_AH &&
      nh !== NH_DEST_OPTS
    ) {
      break;
    }
    // Hop-by-hop options are allowed only right after the fixed header (RFC 8200 §4.1).
    if (n >= MAX_EXT_HEADERS || off + 8 > total || (nh === NH_HOP_BY_HOP && n > 0)) {
      return IpError.Malformed;
    }
    let len: number;
    if (nh === NH_FRAGMENT) {
      // Offset 0 and M clear: an atomic fragment, which is the whole packet.
      if ((get16(buf, off + 2) & 0xfff9) !== 0) return IpError.Fragment;
      len = 8;
    } else if (nh === NH_AH) {
      len = (buf[off + 1] + 2) * 4;
    } else {
      len = (buf[off + 1] + 1) * 8;
      // A routing header with segments left asks us to forward: not a host's job.
      if (nh === NH_ROUTING && buf[off + 3] !== 0) return IpError.Unsupported;
    }
    if (off + len > total) return IpError.Malformed;
    nh = buf[off];
    off += len;
  }
  if (nh === NH_NONE) return IpError.Unsupported;
  out.proto = nh;
  out.l4Off = off;
  out.l4Len = total - off;
  return IpError.None;
}

/** IPv4 header flags: don't fragment. */
const IPV4_DF = 0x4000;

/**
 * Writes a 20-byte IPv4 header (no options, DF set, TTL `ttl`) at `buf[0]`
 * for a payload of `payloadLen` bytes, with its checksum.
 */
export function writeIPv4(
  buf: Uint8Array,
  src: Uint8Array,
  srcOff: number,
  dst: Uint8Array,
  dstOff: number,
  proto: number,
  payloadLen: number,
  id: number,
  ttl: number,
): void {
  buf[0] = 0x45;
  buf[1] = 0;
  put16(buf, 2, 20 + payloadLen);
  put16(buf, 4, id & 0xffff);
  put16(buf, 6, IPV4_DF);
  buf[8] = ttl;
  buf[9] = proto;
  buf[10] = 0;
  buf[11] = 0;
  copyBytes(src, srcOff, buf, 12, 4);
  copyBytes(dst, dstOff, buf, 16, 4);
  put16(buf, 10, ~fold(sumWords(buf, 0, 20, 0)) & 0xffff);
}

/** Writes a 40-byte IPv6 header at `buf[0]` (traffic class and flow label zero). */
export function writeIPv6(
  buf: Uint8Array,
  src: Uint8Array,
  srcOff: number,
  dst: Uint8Array,
  dstOff: number,
  nextHeader: number,
  payloadLen: number,
  hopLimit: number,
): void {
  buf[0] = 0x60;
  buf[1] = 0;
  buf[2] = 0;
  buf[3] = 0;
  put16(buf, 4, payloadLen);
  buf[6] = nextHeader;
  buf[7] = hopLimit;
  copyBytes(src, srcOff, buf, 8, 16);
  copyBytes(dst, dstOff, buf, 24, 16);
}

/** Copies `n` bytes without making views (addresses are 4 or 16 bytes). */
export function copyBytes(
  src: Uint8Array,
  srcOff: number,
  dst: Uint8Array,
  dstOff: number,
  n: number,
): void {
  for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i];
}

/** True when `a[aOff..aOff + n)` equals `b[bOff..bOff + n)`. */
export function equalBytes(
  a: Uint8Array,
  aOff: number,
  b: Uint8Array,
  bOff: number,
  n: number,
): boolean {
  for (let i = 0; i < n; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** True for addresses that must never be the source of a packet we answer (RFC 1122 §3.2.1.3, RFC 4443 §2.4). */
export function isUnanswerableSource(buf: Uint8Array, off: number, alen: number): boolean {
  if (alen === 4) {
    const a = buf[off];
    // 0.0.0.0/8, multicast 224/4 and reserved 240/4, limited broadcast.
    return a === 0 || a >= 224;
  }
  if (buf[off] === 0xff) return true; // multicast
  for (let i = 0; i < 16; i++) if (buf[off + i] !== 0) return false;
  return true; // unspecified ::
}

/** True for multicast or broadcast destinations, which get no ICMP errors and no TCP. */
export function isGroupDestination(buf: Uint8Array, off: number, alen: number): boolean {
  if (alen === 4) return buf[off] >= 224;
  return buf[off] === 0xff;
}
