// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * UDP datagram format (RFC 768). A zero checksum means "none" over IPv4 and
 * is invalid over IPv6 (RFC 8200 §8.1); a computed zero is sent as 0xffff.
 */
import { fold, get16, pseudoSum, put16, sumWords } from "./checksum.ts";
import { type IpPacket, PROTO_UDP } from "./ip_packet.ts";

/** Why {@link parseUdp} refused a datagram. */
export enum UdpError {
  None = 0,
  /** Shorter than 8 bytes, or a UDP length that does not fit the IP payload. */
  Malformed = 1,
  Checksum = 2,
}

/** One received datagram; payload is `buf[dataOff..dataOff + dataLen)`. */
export class UdpDatagram {
  srcPort = 0;
  dstPort = 0;
  dataOff = 0;
  dataLen = 0;
}

/** Parses the UDP datagram carried by `ip` into `out`. */
export function parseUdp(ip: IpPacket, out: UdpDatagram): UdpError {
  const buf = ip.buf;
  const off = ip.l4Off;
  if (ip.l4Len < 8) return UdpError.Malformed;
  const len = get16(buf, off + 4);
  // Bytes after the UDP length (IP padding) are ignored.
  if (len < 8 || len > ip.l4Len) return UdpError.Malformed;
  const sum = get16(buf, off + 6);
  if (sum !== 0 || ip.version === 6) {
    const initial = pseudoSum(buf, ip.srcOff, ip.dstOff, ip.alen, PROTO_UDP, len);
    if (sum === 0 || fold(sumWords(buf, off, len, initial)) !== 0xffff) return UdpError.Checksum;
  }
  out.srcPort = get16(buf, off);
  out.dstPort = get16(buf, off + 2);
  out.dataOff = off + 8;
  out.dataLen = len - 8;
  return UdpError.None;
}

/**
 * Writes the UDP header for `buf[off + 8..off + 8 + dataLen)` at `buf[off]`,
 * with the checksum over the IP header's addresses at `srcOff`/`dstOff`.
 */
export function writeUdpHeader(
  buf: Uint8Array,
  off: number,
  srcPort: number,
  dstPort: number,
  dataLen: number,
  srcOff: number,
  dstOff: number,
  alen: number,
): void {
  const len = 8 + dataLen;
  put16(buf, off, srcPort);
  put16(buf, off + 2, dstPort);
  put16(buf, off + 4, len);
  put16(buf, off + 6, 0);
  const sum = sumWords(buf, off, len, pseudoSum(buf, srcOff, dstOff, alen, PROTO_UDP, len));
  put16(buf, off + 6, ~fold(sum) & 0xffff || 0xffff);
}
