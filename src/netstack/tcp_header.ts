// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * TCP segment format (RFC 9293 §3.1) and the options the stack speaks: MSS
 * (kind 2), window scale (kind 3, RFC 7323 §2), SACK-permitted and SACK
 * (kinds 4 and 5, RFC 2018) and timestamps (kind 8, RFC 7323 §3).
 * {@link parseTcp} checks a received segment (length, data offset, option
 * lengths, checksum over the pseudo-header) into a reused {@link TcpSegment};
 * {@link writeTcpHeader} builds an outgoing header with its options.
 */
import { fold, get16, get32, pseudoSum, put16, put32, sumWords } from "./checksum.ts";
import { type IpPacket, PROTO_TCP } from "./ip_packet.ts";

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;

const OPT_END = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WSCALE = 3;
const OPT_SACK_PERMITTED = 4;
const OPT_SACK = 5;
const OPT_TIMESTAMP = 8;

/** At most four SACK blocks fit in 40 option bytes. */
export const MAX_SACK_BLOCKS = 4;

/** Why {@link parseTcp} refused a segment. */
export enum TcpError {
  None = 0,
  /** Shorter than a header, data offset out of range, or an option whose length does not fit. */
  Malformed = 1,
  /** Checksum mismatch. */
  Checksum = 2,
}

/** One received segment; data is `buf[dataOff..dataOff + dataLen)`. */
export class TcpSegment {
  buf: Uint8Array = new Uint8Array(0);
  srcPort = 0;
  dstPort = 0;
  seq = 0;
  ack = 0;
  flags = 0;
  /** Window field, not yet scaled. */
  window = 0;
  urgent = 0;
  dataOff = 0;
  dataLen = 0;
  /** MSS option, or -1. */
  mss = -1;
  /** Window-scale shift option, or -1. */
  wscale = -1;
  sackPermitted = false;
  /** Timestamp option present, and its values. */
  hasTimestamp = false;
  tsVal = 0;
  tsEcr = 0;
  /** SACK blocks as [left, right) pairs. */
  sackCount = 0;
  readonly sack: Uint32Array = new Uint32Array(MAX_SACK_BLOCKS * 2);
}

/** Parses the TCP segment carried by `ip` into `out`. */
export function parseTcp(ip: IpPacket, out: TcpSegment): TcpError {
  const buf = ip.buf;
  const off = ip.l4Off;
  const len = ip.l4Len;
  if (len < 20) return TcpError.Malformed;
  const hlen = (buf[off + 12] >> 4) * 4;
  if (hlen < 20 || hlen > len) return TcpError.Malformed;
  const initial = pseudoSum(buf, ip.srcOff, ip.dstOff, ip.alen, PROTO_TCP, len);
  if (fold(sumWords(buf, off, len, initial)) !== 0xffff) return TcpError.Checksum;
  out.buf = buf;
  out.srcPort = get16(buf, off);
  out.dstPort = get16(buf, off + 2);
  out.seq = get32(buf, off + 4);
  out.ack = get32(buf, off + 8);
  out.flags = buf[off + 13] & 0x3f;
  out.window = get16(buf, off + 14);
  out.urgent = get16(buf, off + 18);
  out.dataOff = off + hlen;
  out.dataLen = len - hlen;
  return parseOptions(buf, off + 20, off + hlen, out) ? TcpError.None : TcpError.Malformed;
}

/** Options in `buf[i..end)`; false when a length is wrong for its kind or runs past the header. */
function parseOptions(buf: Uint8Array, i: number, end: number, out: TcpSegment): boolean {
  out.mss = -1;
  out.wscale = -1;
  out.sackPermitted = false;
  out.hasTimestamp = false;
  out.sackCount = 0;
  while (i < end) {
    const kind = buf[i];
    if (kind === OPT_END) break;
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return false;
    const olen = buf[i + 1];
    if (olen < 2 || i + olen > end) return false;
    switch (kind) {
      case OPT_MSS:
        if (olen !== 4) return false;
        out.mss = get16(buf, i + 2);
        break;
      case OPT_WSCALE:
        if (olen !== 3) return false;
        // RFC 7323 §2.3: a shift above 14 is used as 14.
        out.wscale = Math.min(buf[i + 2], 14);
        break;
      case OPT_SACK_PERMITTED:
        if (olen !== 2) return false;
        out.sackPermitted = true;
        break;
      case OPT_SACK: {
        if ((olen - 2) % 8 !== 0 || olen === 2) return false;
        const n = Math.min((olen - 2) / 8, MAX_SACK_BLOCKS);
        for (let b = 0; b < n; b++) {
          out.sack[b * 2] = get32(buf, i + 2 + b * 8);
          out.sack[b * 2 + 1] = get32(buf, i + 6 + b * 8);
        }
        out.sackCount = n;
        break;
      }
      case OPT_TIMESTAMP:
        if (olen !== 10) return false;
        out.hasTimestamp = true;
        out.tsVal = get32(buf, i + 2);
        out.tsEcr = get32(buf, i + 6);
        break;
      default:
        break; // unknown options are skipped by their length (RFC 9293 §3.2)
    }
    i += olen;
  }
  return true;
}

/** Options to put on an outgoing segment. */
export interface TcpOptionsOut {
  /** MSS to announce (SYN only), or -1. */
  mss: number;
  /** Our window-scale shift (SYN only), or -1. */
  wscale: number;
  /** Announce SACK-permitted (SYN only). */
  sackPermitted: boolean;
  /** Send a timestamp option with these values. */
  timestamp: boolean;
  tsVal: number;
  tsEcr: number;
  /** SACK blocks to send: `sackCount` [left, right) pairs of `sackBlocks` (0 when none). */
  sackCount: number;
  sackBlocks: Uint32Array | null;
}

/** A new option block that announces nothing (no MSS, scale, SACK or timestamp). */
export function noTcpOptions(): TcpOptionsOut {
  return {
    mss: -1,
    wscale: -1,
    sackPermitted: false,
    timestamp: false,
    tsVal: 0,
    tsEcr: 0,
    sackCount: 0,
    sackBlocks: null,
  };
}

/** Bytes a SACK option with `n` blocks takes, with its two NOPs of padding. */
export function sackOptionLength(n: number): number {
  return n > 0 ? 4 + 8 * n : 0;
}

/** Bytes the options in `o` take (a multiple of 4). */
export function optionsLength(o: TcpOptionsOut): number {
  // SACK-permitted shares the timestamp option's 4-byte alignment padding.
  return (o.mss >= 0 ? 4 : 0) + (o.wscale >= 0 ? 4 : 0) +
    (o.timestamp ? 12 : o.sackPermitted ? 4 : 0) + sackOptionLength(o.sackCount);
}

/**
 * Writes a TCP header with options `o` at `buf[off]`; the checksum field is
 * left zero for {@link finishTcpChecksum}. Returns the header length.
 */
export function writeTcpHeader(
  buf: Uint8Array,
  off: number,
  srcPort: number,
  dstPort: number,
  seq: number,
  ack: number,
  flags: number,
  window: number,
  o: TcpOptionsOut,
): number {
  const hlen = 20 + optionsLength(o);
  put16(buf, off, srcPort);
  put16(buf, off + 2, dstPort);
  put32(buf, off + 4, seq >>> 0);
  put32(buf, off + 8, ack >>> 0);
  buf[off + 12] = (hlen / 4) << 4;
  buf[off + 13] = flags;
  put16(buf, off + 14, window);
  put16(buf, off + 16, 0);
  put16(buf, off + 18, 0);
  let i = off + 20;
  if (o.mss >= 0) {
    buf[i] = OPT_MSS;
    buf[i + 1] = 4;
    put16(buf, i + 2, o.mss);
    i += 4;
  }
  // Laid out as Linux does: SACK-permitted (or two NOPs) then timestamps.
  if (o.sackPermitted || o.timestamp) {
    buf[i] = o.sackPermitted ? OPT_SACK_PERMITTED : OPT_NOP;
    buf[i + 1] = o.sackPermitted ? 2 : OPT_NOP;
    i += 2;
    if (!o.timestamp) {
      buf[i] = OPT_NOP;
      buf[i + 1] = OPT_NOP;
      i += 2;
    }
  }
  if (o.timestamp) {
    buf[i] = OPT_TIMESTAMP;
    buf[i + 1] = 10;
    put32(buf, i + 2, o.tsVal >>> 0);
    put32(buf, i + 6, o.tsEcr >>> 0);
    i += 10;
  }
  if (o.sackCount > 0) {
    buf[i] = OPT_NOP;
    buf[i + 1] = OPT_NOP;
    buf[i + 2] = OPT_SACK;
    buf[i + 3] = 2 + 8 * o.sackCount;
    i += 4;
    const b = o.sackBlocks!;
    for (let k = 0; k < o.sackCount * 2; k++, i += 4) put32(buf, i, b[k] >>> 0);
  }
  if (o.wscale >= 0) {
    buf[i] = OPT_NOP;
    buf[i + 1] = OPT_WSCALE;
    buf[i + 2] = 3;
    buf[i + 3] = o.wscale;
    i += 4;
  }
  return hlen;
}

/**
 * Fills the checksum of the TCP segment `buf[off..off + len)` whose IP
 * header addresses are at `srcOff`/`dstOff` (`alen` bytes each).
 */
export function finishTcpChecksum(
  buf: Uint8Array,
  off: number,
  len: number,
  srcOff: number,
  dstOff: number,
  alen: number,
): void {
  put16(buf, off + 16, 0);
  const sum = sumWords(buf, off, len, pseudoSum(buf, srcOff, dstOff, alen, PROTO_TCP, len));
  put16(buf, off + 16, ~fold(sum) & 0xffff);
}
