// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Minimal IPv4/IPv6 packet builders for in-memory tests: a UDP datagram with a
 * correct header length field and a payload, enough for the device's length
 * checks and allowed-IPs routing. Checksums are not computed (nothing checks them).
 */
import { parseIPv4, parseIPv6 } from "../../src/ip.ts";

/** An IPv4 packet (protocol UDP) from `src` to `dst` carrying `payload`. */
export function ipv4Packet(src: string, dst: string, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + 8 + payload.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(parseIPv4(src)!, 12);
  p.set(parseIPv4(dst)!, 16);
  p[24] = 0x30;
  p[25] = 0x39;
  p[26] = 0x30;
  p[27] = 0x39;
  p[28 - 4] = (8 + payload.length) >> 8;
  p.set(payload, 28);
  return p;
}

/** An IPv6 packet (next header UDP) from `src` to `dst` carrying `payload`. */
export function ipv6Packet(src: string, dst: string, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(40 + payload.length);
  p[0] = 0x60;
  p[4] = payload.length >> 8;
  p[5] = payload.length & 0xff;
  p[6] = 17;
  p[7] = 64;
  p.set(parseIPv6(src)!, 8);
  p.set(parseIPv6(dst)!, 24);
  p.set(payload, 40);
  return p;
}

/** `n` bytes of a recognisable pattern. */
export function payload(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** The Internet checksum (RFC 1071) of `data`, starting from `initial`. */
export function internetChecksum(data: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < data.length; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (data.length & 1) sum += data[data.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function icmpv6Checksum(p: Uint8Array): number {
  const body = p.subarray(40);
  const pseudo = new Uint8Array(40);
  pseudo.set(p.subarray(8, 40), 0);
  pseudo[34] = body.length >> 8;
  pseudo[35] = body.length & 0xff;
  pseudo[39] = 58;
  let sum = 0;
  for (let i = 0; i < 40; i += 2) sum += (pseudo[i] << 8) | pseudo[i + 1];
  return internetChecksum(body, sum);
}

/** A valid ICMP (v4) or ICMPv6 echo request, checksums included. */
export function echoRequest(src: string, dst: string, id: number, seq: number): Uint8Array {
  const data = payload(56, seq);
  const v4 = parseIPv4(src);
  if (v4) {
    const p = new Uint8Array(20 + 8 + data.length);
    p[0] = 0x45;
    p[2] = p.length >> 8;
    p[3] = p.length & 0xff;
    p[8] = 64;
    p[9] = 1;
    p.set(v4, 12);
    p.set(parseIPv4(dst)!, 16);
    const ck = internetChecksum(p.subarray(0, 20));
    p[10] = ck >> 8;
    p[11] = ck & 0xff;
    p[20] = 8;
    p[24] = id >> 8;
    p[25] = id & 0xff;
    p[26] = seq >> 8;
    p[27] = seq & 0xff;
    p.set(data, 28);
    const ick = internetChecksum(p.subarray(20));
    p[22] = ick >> 8;
    p[23] = ick & 0xff;
    return p;
  }
  const p = new Uint8Array(40 + 8 + data.length);
  p[0] = 0x60;
  p[4] = (8 + data.length) >> 8;
  p[5] = (8 + data.length) & 0xff;
  p[6] = 58;
  p[7] = 64;
  p.set(parseIPv6(src)!, 8);
  p.set(parseIPv6(dst)!, 24);
  p[40] = 128;
  p[44] = id >> 8;
  p[45] = id & 0xff;
  p[46] = seq >> 8;
  p[47] = seq & 0xff;
  p.set(data, 48);
  const ck = icmpv6Checksum(p);
  p[42] = ck >> 8;
  p[43] = ck & 0xff;
  return p;
}

/** Turns an echo request into its reply (addresses swapped, checksums fixed); null if not one. */
export function echoReply(request: Uint8Array): Uint8Array | null {
  const p = request.slice();
  if (p[0] >> 4 === 4) {
    const ihl = (p[0] & 15) * 4;
    if (p[9] !== 1 || p[ihl] !== 8) return null;
    const src = p.slice(12, 16);
    p.copyWithin(12, 16, 20);
    p.set(src, 16);
    p[10] = p[11] = 0;
    const ck = internetChecksum(p.subarray(0, ihl));
    p[10] = ck >> 8;
    p[11] = ck & 0xff;
    p[ihl] = 0;
    p[ihl + 2] = p[ihl + 3] = 0;
    const ick = internetChecksum(p.subarray(ihl));
    p[ihl + 2] = ick >> 8;
    p[ihl + 3] = ick & 0xff;
    return p;
  }
  if (p[6] !== 58 || p[40] !== 128) return null;
  const src = p.slice(8, 24);
  p.copyWithin(8, 24, 40);
  p.set(src, 24);
  p[40] = 129;
  p[42] = p[43] = 0;
  const ck = icmpv6Checksum(p);
  p[42] = ck >> 8;
  p[43] = ck & 0xff;
  return p;
}

/** True when `p` is an ICMP/ICMPv6 echo reply. */
export function isEchoReply(p: Uint8Array): boolean {
  if (p[0] >> 4 === 4) return p[9] === 1 && p[(p[0] & 15) * 4] === 0;
  return p[0] >> 4 === 6 && p[6] === 58 && p[40] === 129;
}
