// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * ICMP for IPv4 (RFC 792) and ICMPv6 (RFC 4443): echo replies, the
 * destination-unreachable errors the stack sends for closed UDP ports and
 * unknown protocols, and reading the errors it receives (the invoking packet
 * they quote names the socket they are about).
 *
 * Builders write a whole IP packet into a caller's buffer and return its
 * length (0 when it does not fit). ICMP errors quote as much of the invoking
 * packet as fits in 576 bytes for IPv4 (RFC 1812 §4.3.2.3) and 1280 for
 * IPv6 (RFC 4443 §2.4(c)), and never more than the tunnel MTU.
 */
import { finish, fold, get16, get32, pseudoSum, put16, sumWords } from "./checksum.ts";
import {
  copyBytes,
  type IpPacket,
  PROTO_ICMP,
  PROTO_ICMPV6,
  PROTO_TCP,
  PROTO_UDP,
  writeIPv4,
  writeIPv6,
} from "./ip_packet.ts";

export const ICMP_ECHO_REPLY = 0;
export const ICMP_UNREACHABLE = 3;
export const ICMP_ECHO = 8;
export const ICMP_UNREACH_PROTOCOL = 2;
export const ICMP_UNREACH_PORT = 3;
export const ICMP_UNREACH_NEEDFRAG = 4;
export const ICMPV6_UNREACHABLE = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAM_PROBLEM = 4;
export const ICMPV6_ECHO = 128;
export const ICMPV6_ECHO_REPLY = 129;
export const ICMPV6_UNREACH_PORT = 4;

/** Hop limit / TTL of packets the stack sends. */
export const DEFAULT_TTL = 64;

/** True when the ICMP message in `ip` has a correct checksum (ICMPv6 includes the pseudo-header). */
export function icmpChecksumOk(ip: IpPacket): boolean {
  const initial = ip.version === 6
    ? pseudoSum(ip.buf, ip.srcOff, ip.dstOff, 16, PROTO_ICMPV6, ip.l4Len)
    : 0;
  return fold(sumWords(ip.buf, ip.l4Off, ip.l4Len, initial)) === 0xffff;
}

/** True for ICMP types that are errors (never answered with another error, RFC 1122 §3.2.2, RFC 4443 §2.4(e)). */
export function isIcmpError(ip: IpPacket): boolean {
  const type = ip.buf[ip.l4Off];
  return ip.version === 6 ? type < 128 : type !== ICMP_ECHO && type !== ICMP_ECHO_REPLY &&
    type !== 13 && type !== 14; // timestamp request / reply
}

/** IP header for a reply to `ip` (source and destination swapped); returns its length. */
function writeReplyHeader(
  ip: IpPacket,
  out: Uint8Array,
  proto: number,
  payloadLen: number,
): number {
  if (ip.version === 4) {
    writeIPv4(out, ip.buf, ip.dstOff, ip.buf, ip.srcOff, proto, payloadLen, 0, DEFAULT_TTL);
    return 20;
  }
  writeIPv6(out, ip.buf, ip.dstOff, ip.buf, ip.srcOff, proto, payloadLen, DEFAULT_TTL);
  return 40;
}

/** Puts the ICMP checksum of `out[off..off + len)` in place (ICMPv6 with the pseudo-header of `out`). */
function finishIcmp(out: Uint8Array, off: number, len: number, version: number): void {
  put16(out, off + 2, 0);
  const initial = version === 6 ? pseudoSum(out, 8, 24, 16, PROTO_ICMPV6, len) : 0;
  put16(out, off + 2, finish(sumWords(out, off, len, initial)));
}

/** Writes the echo reply to the echo request `ip` into `out`; 0 when it does not fit. */
export function writeEchoReply(ip: IpPacket, out: Uint8Array): number {
  const hl = ip.version === 4 ? 20 : 40;
  const len = ip.l4Len;
  if (hl + len > out.length) return 0;
  const proto = ip.version === 4 ? PROTO_ICMP : PROTO_ICMPV6;
  writeReplyHeader(ip, out, proto, len);
  copyBytes(ip.buf, ip.l4Off, out, hl, len);
  out[hl] = ip.version === 4 ? ICMP_ECHO_REPLY : ICMPV6_ECHO_REPLY;
  out[hl + 1] = 0;
  finishIcmp(out, hl, len, ip.version);
  return hl + len;
}

/**
 * Writes a destination-unreachable error about the invoking packet `ip`
 * (type 3 for IPv4, type 1 for IPv6, with `code`) into `out`, quoting at
 * most `limit` bytes in all; 0 when nothing fits.
 */
export function writeUnreachable(
  ip: IpPacket,
  out: Uint8Array,
  code: number,
  limit: number,
): number {
  const v4 = ip.version === 4;
  const hl = v4 ? 20 : 40;
  const max = Math.min(limit, v4 ? 576 : 1280, out.length);
  const quoted = Math.min(ip.length, max - hl - 8);
  if (quoted < (v4 ? 28 : 48)) return 0;
  const len = 8 + quoted;
  writeReplyHeader(ip, out, v4 ? PROTO_ICMP : PROTO_ICMPV6, len);
  out[hl] = v4 ? ICMP_UNREACHABLE : ICMPV6_UNREACHABLE;
  out[hl + 1] = code;
  out.fill(0, hl + 4, hl + 8);
  copyBytes(ip.buf, 0, out, hl + 8, quoted);
  finishIcmp(out, hl, len, ip.version);
  return hl + len;
}

/** What an ICMP error says, and about which of our packets. */
export class IcmpErrorInfo {
  /** The error is fatal for a connection attempt (port or protocol unreachable). */
  hard = false;
  /** Packet too big / fragmentation needed: the MTU it reports, else 0. */
  mtu = 0;
  /** The quoted packet: protocol, our (source) port, their port, TCP sequence number. */
  proto = 0;
  localPort = 0;
  remotePort = 0;
  seq = 0;
  /** Offsets (into the ICMP packet's buffer) of the quoted addresses: ours and theirs. */
  localOff = 0;
  remoteOff = 0;
}

/**
 * Reads an ICMP error whose quoted packet is a TCP or UDP packet we sent;
 * false when it is not an error, or the quote is too short or not ours to
 * read. Checksums must have been checked.
 */
export function readIcmpError(ip: IpPacket, out: IcmpErrorInfo): boolean {
  const buf = ip.buf;
  const off = ip.l4Off;
  if (ip.l4Len < 8) return false;
  const type = buf[off];
  const code = buf[off + 1];
  out.mtu = 0;
  if (ip.version === 4) {
    if (type !== ICMP_UNREACHABLE) return false;
    out.hard = code === ICMP_UNREACH_PORT || code === ICMP_UNREACH_PROTOCOL;
    if (code === ICMP_UNREACH_NEEDFRAG) out.mtu = get16(buf, off + 6);
  } else {
    if (type !== ICMPV6_UNREACHABLE && type !== ICMPV6_PACKET_TOO_BIG) return false;
    out.hard = type === ICMPV6_UNREACHABLE && code === ICMPV6_UNREACH_PORT;
    if (type === ICMPV6_PACKET_TOO_BIG) out.mtu = get32(buf, off + 4);
  }
  const q = off + 8;
  const end = off + ip.l4Len;
  if (end - q < 1 || buf[q] >> 4 !== ip.version) return false;
  let l4: number;
  if (ip.version === 4) {
    l4 = q + (buf[q] & 0x0f) * 4;
    out.proto = buf[q + 9];
    out.localOff = q + 12;
    out.remoteOff = q + 16;
  } else {
    // Extension headers in the quote are not walked: TCP and UDP right after the header only.
    l4 = q + 40;
    out.proto = buf[q + 6];
    out.localOff = q + 8;
    out.remoteOff = q + 24;
  }
  if (out.proto !== PROTO_TCP && out.proto !== PROTO_UDP) return false;
  if (l4 + 8 > end) return false;
  out.localPort = get16(buf, l4);
  out.remotePort = get16(buf, l4 + 2);
  out.seq = get32(buf, l4 + 4);
  return true;
}
