// SPDX-License-Identifier: Apache-2.0
// Packet formats and checksums against packets the Linux kernel sent over a
// veth pair (captured once, hex below), and hand-built hostile variants.
import assert from "node:assert/strict";
import { finish, fold, sumWords, verify } from "../../src/netstack/checksum.ts";
import {
  IpError,
  IpPacket,
  parseIp,
  PROTO_ICMPV6,
  PROTO_TCP,
  PROTO_UDP,
} from "../../src/netstack/ip_packet.ts";
import { parseTcp, TcpError, TcpSegment, writeTcpHeader } from "../../src/netstack/tcp_header.ts";
import {
  icmpChecksumOk,
  IcmpErrorInfo,
  readIcmpError,
  writeEchoReply,
  writeUnreachable,
} from "../../src/netstack/icmp.ts";
import { parseUdp, UdpDatagram, UdpError } from "../../src/netstack/udp_header.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** Kernel packets: 10.9.0.1 ↔ 10.9.0.2, fd09::1 ↔ fd09::2. */
const K = {
  echo4: "45000028c3af4000400163110a0900010a090002080061080f6f0001414141414141414141414141",
  echoReply4: "4500002808d4000040015ded0a0900020a090001000069080f6f0001414141414141414141414141",
  echo6:
    "600a2ea600143a40fd090000000000000000000000000001fd0900000000000000000000000000028000e7891082" +
    "0001424242424242424242424242",
  echoReply6:
    "6004a6f300143a40fd090000000000000000000000000002fd0900000000000000000000000000018100e689" +
    "10820001424242424242424242424242",
  // SYN with MSS 1460, SACK-permitted, timestamps, window scale 10.
  syn4:
    "4500003c16da400040060fce0a0900010a090002a6e815b39b23f74700000000a002faf0e7260000020405b40402" +
    "080a98cd69fc000000000103030a",
  rst4: "4500002800004000400626bc0a0900020a09000115b3a6e8000000009b23f748501400004cb40000",
  syn6:
    "6009f9d500280640fd090000000000000000000000000001fd090000000000000000000000000002c17215b3cbe6" +
    "f96400000000a002fd20a60d0000020405a00402080ade992fc1000000000103030a",
  rst6:
    "6002e55f00140640fd090000000000000000000000000002fd09000000000000000000000000000115b3c1720000" +
    "0000cbe6f9655014000019480000",
  udp4: "450000217c9f40004011aa180a0900010a090002ddaf15b4000db48968656c6c6f",
  unreach4:
    "45c0003d064b000040015fa10a0900020a0900010303113000000000450000217c9f40004011aa180a0900010a09" +
    "0002ddaf15b4000db48968656c6c6f",
  udp6:
    "60095ef4000d1140fd090000000000000000000000000001fd0900000000000000000000000000028c1715b4000d" +
    "202068656c6c6f",
  unreach6:
    "60004b2b003d3a40fd090000000000000000000000000002fd090000000000000000000000000001010434410000" +
    "000060095ef4000d1140fd090000000000000000000000000001fd0900000000000000000000000000028c1715b4" +
    "000d202068656c6c6f",
  // MLDv2 report: hop-by-hop options (router alert) before ICMPv6.
  mld6:
    "6000000000380001fe8000000000000090f22efffe6ba496ff0200000000000000000000000000163a0005020000" +
    "01008f0066f80000000204000000ff0200000000000000000001ff6ba49604000000ff0200000000000000000001" +
    "ff000001",
};

function parsed(h: string): IpPacket {
  const ip = new IpPacket();
  assert.equal(parseIp(hex(h), ip), IpError.None);
  return ip;
}

Deno.test("checksum: RFC 1071 §3 example and odd length", () => {
  const b = hex("0001f203f4f5f6f7");
  assert.equal(fold(sumWords(b, 0, 8, 0)), 0xddf2);
  assert.equal(finish(sumWords(b, 0, 8, 0)), 0x220d);
  // An odd byte is padded with a zero on the right.
  assert.equal(fold(sumWords(hex("0102ab"), 0, 3, 0)), 0xac02);
  assert.ok(verify(hex("4500002808d4000040015ded0a0900020a090001"), 0, 20, 0));
});

Deno.test("ipv4: kernel packets parse; corrupted header checksum, lengths, fragments refused", () => {
  const ip = parsed(K.syn4);
  assert.equal(ip.version, 4);
  assert.equal(ip.proto, PROTO_TCP);
  assert.equal(ip.l4Off, 20);
  assert.equal(ip.l4Len, 40);
  const out = new IpPacket();
  const bad = hex(K.syn4);
  bad[8] ^= 1; // TTL change without checksum update
  assert.equal(parseIp(bad, out), IpError.Malformed);
  const short = hex(K.syn4).subarray(0, 30); // total length 60 > 30 bytes
  assert.equal(parseIp(short, out), IpError.Malformed);
  assert.equal(parseIp(new Uint8Array(0), out), IpError.Malformed);
  assert.equal(parseIp(hex("45"), out), IpError.Malformed);
  // Trailing bytes beyond the total length are ignored.
  const padded = new Uint8Array(hex(K.udp4).length + 7);
  padded.set(hex(K.udp4));
  assert.equal(parseIp(padded, out), IpError.None);
  assert.equal(out.l4Len, 13);
});

function withHeaderChecksum(b: Uint8Array): Uint8Array {
  const ihl = (b[0] & 15) * 4;
  b[10] = b[11] = 0;
  const c = finish(sumWords(b, 0, ihl, 0));
  b[10] = c >> 8;
  b[11] = c & 255;
  return b;
}

Deno.test("ipv4: options are skipped by IHL; fragments are refused", () => {
  // The kernel's UDP datagram with 8 option bytes (NOP ×3, EOL ×5) inserted.
  const orig = hex(K.udp4);
  const b = new Uint8Array(orig.length + 8);
  b.set(orig.subarray(0, 20));
  b.set([1, 1, 1, 0, 0, 0, 0, 0], 20);
  b.set(orig.subarray(20), 28);
  b[0] = 0x47;
  b[3] += 8;
  const ip = new IpPacket();
  assert.equal(parseIp(withHeaderChecksum(b), ip), IpError.None);
  assert.equal(ip.l4Off, 28);
  assert.equal(ip.proto, PROTO_UDP);
  const d = new UdpDatagram();
  assert.equal(parseUdp(ip, d), UdpError.None);
  assert.equal(
    new TextDecoder().decode(ip.buf.subarray(d.dataOff, d.dataOff + d.dataLen)),
    "hello",
  );
  for (const frag of [0x2000, 0x0001]) { // MF; offset 8
    const f = hex(K.udp4);
    f[6] = frag >> 8;
    f[7] = frag & 255;
    assert.equal(parseIp(withHeaderChecksum(f), ip), IpError.Fragment);
  }
  const ihlTooBig = hex(K.udp4);
  ihlTooBig[0] = 0x4f; // 60-byte header in a 33-byte packet
  assert.equal(parseIp(withHeaderChecksum(ihlTooBig), ip), IpError.Malformed);
});

Deno.test("ipv6: hop-by-hop options are skipped (kernel MLD report), bad chains refused", () => {
  const ip = parsed(K.mld6);
  assert.equal(ip.proto, PROTO_ICMPV6);
  assert.equal(ip.l4Off, 48);
  assert.ok(icmpChecksumOk(ip));
  const out = new IpPacket();
  // Hop-by-hop length pointing past the packet.
  const b = hex(K.mld6);
  b[41] = 9;
  assert.equal(parseIp(b, out), IpError.Malformed);
  // A fragment header with offset > 0.
  const udp = hex(K.udp6);
  const frag = new Uint8Array(udp.length + 8);
  frag.set(udp.subarray(0, 40));
  frag.set([17, 0, 0, 8, 0, 0, 0, 1], 40);
  frag.set(udp.subarray(40), 48);
  frag[6] = 44;
  frag[5] += 8;
  assert.equal(parseIp(frag, out), IpError.Fragment);
  // An atomic fragment (offset 0, M clear) is the whole packet.
  frag[43] = 0;
  assert.equal(parseIp(frag, out), IpError.None);
  assert.equal(out.proto, PROTO_UDP);
  assert.equal(out.l4Off, 48);
  // Payload length larger than the buffer.
  const long = hex(K.udp6);
  long[5] += 1;
  assert.equal(parseIp(long, out), IpError.Malformed);
  // Routing header with segments left: not ours to forward.
  frag[6] = 43;
  frag.set([17, 0, 0, 1, 0, 0, 0, 0], 40);
  assert.equal(parseIp(frag, out), IpError.Unsupported);
});

Deno.test("tcp: kernel SYNs parse with all options; RSTs verify; bad checksum and options refused", () => {
  const seg = new TcpSegment();
  for (const [h, mss, wnd] of [[K.syn4, 1460, 0xfaf0], [K.syn6, 1440, 0xfd20]] as const) {
    const ip = parsed(h);
    assert.equal(parseTcp(ip, seg), TcpError.None);
    assert.equal(seg.flags, 0x02);
    assert.equal(seg.mss, mss);
    assert.equal(seg.wscale, 10);
    assert.ok(seg.sackPermitted);
    assert.ok(seg.hasTimestamp);
    assert.equal(seg.tsEcr, 0);
    assert.equal(seg.window, wnd);
    assert.equal(seg.dataLen, 0);
  }
  assert.equal(seg.tsVal, 0xde992fc1);
  for (const h of [K.rst4, K.rst6]) {
    assert.equal(parseTcp(parsed(h), seg), TcpError.None);
    assert.equal(seg.flags, 0x14);
  }
  const ip = parsed(K.syn4);
  ip.buf[ip.l4Off + 30] ^= 0x40; // flip a bit in the timestamp
  assert.equal(parseTcp(ip, seg), TcpError.Checksum);
  // An MSS option with length 3 (checksum made right so only the option is wrong).
  const bad = parsed(K.syn4);
  bad.buf[bad.l4Off + 21] = 3;
  fixTcpChecksum(bad);
  assert.equal(parseTcp(bad, seg), TcpError.Malformed);
  // An option length running past the header.
  const past = parsed(K.syn4);
  past.buf[past.l4Off + 38] = 9; // window scale length
  fixTcpChecksum(past);
  assert.equal(parseTcp(past, seg), TcpError.Malformed);
  // Data offset below 5.
  const doff = parsed(K.rst4);
  doff.buf[doff.l4Off + 12] = 0x40;
  fixTcpChecksum(doff);
  assert.equal(parseTcp(doff, seg), TcpError.Malformed);
});

function fixTcpChecksum(ip: IpPacket): void {
  const b = ip.buf;
  b[ip.l4Off + 16] = b[ip.l4Off + 17] = 0;
  let s = sumWords(b, ip.srcOff, ip.alen, 0);
  s = sumWords(b, ip.dstOff, ip.alen, s) + PROTO_TCP + ip.l4Len;
  const c = finish(sumWords(b, ip.l4Off, ip.l4Len, s));
  b[ip.l4Off + 16] = c >> 8;
  b[ip.l4Off + 17] = c & 255;
}

Deno.test("tcp: a written header with the kernel's SYN options round-trips byte for byte", () => {
  const ip = parsed(K.syn4);
  const seg = new TcpSegment();
  parseTcp(ip, seg);
  const out = new Uint8Array(60);
  out.set(ip.buf.subarray(0, 20));
  // The kernel lays out MSS, SACK-permitted + timestamps, NOP + window scale, as we do.
  const hl = writeTcpHeader(
    out,
    20,
    seg.srcPort,
    seg.dstPort,
    seg.seq,
    seg.ack,
    seg.flags,
    seg.window,
    {
      mss: 1460,
      wscale: 10,
      sackPermitted: true,
      timestamp: true,
      tsVal: seg.tsVal,
      tsEcr: 0,
      sackCount: 0,
      sackBlocks: null,
    },
  );
  assert.equal(hl, 40);
  const mine = new IpPacket();
  assert.equal(parseIp(out, mine), IpError.None);
  fixTcpChecksum(mine);
  assert.equal(toHex(out), toHex(ip.buf));
});

Deno.test("icmp: echo replies equal the kernel's, v4 and v6", () => {
  const out = new Uint8Array(1500);
  for (
    const [req, rep, hl] of [[K.echo4, K.echoReply4, 20], [K.echo6, K.echoReply6, 40]] as const
  ) {
    const ip = parsed(req);
    assert.ok(icmpChecksumOk(ip));
    const n = writeEchoReply(ip, out);
    const kernel = hex(rep);
    assert.equal(n, kernel.length);
    // The ICMP message is identical; the IP headers differ only in ID / flow label.
    assert.equal(toHex(out.subarray(hl, n)), toHex(kernel.subarray(hl)));
    const mine = new IpPacket();
    assert.equal(parseIp(out.subarray(0, n), mine), IpError.None);
    assert.ok(icmpChecksumOk(mine));
  }
  const bad = parsed(K.echo6);
  bad.buf[bad.l4Off + 10] ^= 1;
  assert.equal(icmpChecksumOk(bad), false);
});

Deno.test("icmp: port unreachable equals the kernel's and reads back", () => {
  const out = new Uint8Array(1500);
  for (const [dgram, err, hl] of [[K.udp4, K.unreach4, 20], [K.udp6, K.unreach6, 40]] as const) {
    const ip = parsed(dgram);
    const n = writeUnreachable(ip, out, hl === 20 ? 3 : 4, 1420);
    const kernel = hex(err);
    assert.equal(n, kernel.length);
    assert.equal(toHex(out.subarray(hl, n)), toHex(kernel.subarray(hl)));
    // The kernel's error, as received by the sender of the datagram.
    const info = new IcmpErrorInfo();
    const got = parsed(err);
    assert.ok(icmpChecksumOk(got));
    assert.ok(readIcmpError(got, info));
    assert.equal(info.hard, true);
    assert.equal(info.proto, PROTO_UDP);
    assert.equal(info.remotePort, 5556);
  }
  // Errors are never sent when even the invoking header does not fit.
  assert.equal(writeUnreachable(parsed(K.udp4), out, 3, 40), 0);
  // A quote of more than 576 bytes is cut (RFC 1812).
  const big = new Uint8Array(1000);
  big.set(hex(K.udp4));
  big[2] = 1000 >> 8;
  big[3] = 1000 & 255;
  const ip = new IpPacket();
  assert.equal(parseIp(withHeaderChecksum(big), ip), IpError.None);
  assert.equal(writeUnreachable(ip, out, 3, 1420), 576);
});
