// SPDX-License-Identifier: Apache-2.0
// NetStack as a host: ICMP echo, UDP sockets, unreachable errors both ways,
// and two stacks as the Tuns of two WireGuard devices.
import assert from "node:assert/strict";
import { link } from "./_link.ts";
import { devicePair } from "../_util/device_pair.ts";
import { NetStack } from "../../src/netstack/stack.ts";
import { TcpState } from "../../src/netstack/tcp_state.ts";
import { parseIPv4 } from "../../src/ip.ts";
import { IpPacket, parseIp } from "../../src/netstack/ip_packet.ts";
import { ICMP_UNREACH_PORT, writeUnreachable } from "../../src/netstack/icmp.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));

Deno.test("stack: answers ICMP echo for its own addresses only", () => {
  const l = link();
  const replies: Uint8Array[] = [];
  l.tap = (p, from) => {
    if (from === "b") replies.push(p);
    return false;
  };
  // A kernel echo request 10.9.0.1 → 10.9.0.2, readdressed to B by a fresh header checksum.
  const req = hex(
    "45000028c3af4000400100000a0000010a000002080061080f6f0001414141414141414141414141",
  );
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (req[i] << 8) | req[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  req[10] = (~s >> 8) & 255;
  req[11] = ~s & 255;
  l.b.write(req);
  assert.equal(replies.length, 1);
  assert.equal(replies[0][20], 0); // echo reply
  assert.deepEqual(replies[0].subarray(16, 20), parseIPv4("10.0.0.1"));
  assert.equal(l.b.stats.icmpEchoReplies, 1);
  const other = req.slice();
  other[19] = 3; // 10.0.0.3 is not B: dropped (header checksum made right)
  other[11] -= 1;
  l.b.write(other);
  assert.equal(replies.length, 1);
  assert.equal(l.b.stats.ipNotForUs, 1);
});

Deno.test("stack: UDP both families, bounded queue, port unreachable reaches the sender", () => {
  const l = link({ stack: { udpQueueBytes: 1000 } });
  const a = l.a.udp(5353);
  const b = l.b.udp(53);
  assert.ok(a.sendTo(new Uint8Array([1, 2, 3]), parseIPv4("10.0.0.2")!, 53));
  l.run(5, 1);
  const buf = new Uint8Array(100);
  assert.equal(b.receive(buf), 3);
  assert.equal(b.from.port, 5353);
  assert.equal(b.receive(buf), -1);
  // Flood: the queue holds what fits in 1000 bytes, the rest is counted.
  for (let i = 0; i < 50; i++) a.sendTo(new Uint8Array(100), parseIPv4("10.0.0.2")!, 53);
  l.run(5, 1);
  assert.equal(l.b.stats.udpQueueFull, 50 - Math.floor(1000 / 121));
  // A closed port: B answers port unreachable, A's socket hears of it.
  let err: [boolean, number] | null = null;
  a.onError = (hard, port) => err = [hard, port];
  a.sendTo(
    new Uint8Array([9]),
    new Uint8Array(16).fill(0).map((_, i) => i === 0 ? 0xfd : i === 15 ? 2 : 0),
    54,
  );
  l.run(5, 1);
  assert.deepEqual(err, [true, 54]);
  assert.equal(l.b.stats.udpNoPort, 1);
  assert.equal(l.b.stats.icmpErrorsOut, 1);
});

Deno.test("stack: ICMP port unreachable aborts a TCP connect (hard error in SYN_SENT); blind errors are ignored", () => {
  const l = link();
  l.tap = (_p, from) => from === "b"; // A's SYN never reaches B
  const c = l.a.connect("10.0.0.2", 80);
  const syn = l.a.tx.slice(0, 20 + 40); // the SYN A just built: 20 + 20 + 20 option bytes
  const ip = new IpPacket();
  assert.equal(parseIp(syn, ip), 0);
  const out = new Uint8Array(1500);
  // An error quoting a sequence number A never sent: ignored (RFC 5927).
  const blind = syn.slice();
  blind[24] ^= 0x80;
  const ipBlind = new IpPacket();
  parseIp(blind, ipBlind);
  l.a.write(out.slice(0, writeUnreachable(ipBlind, out, ICMP_UNREACH_PORT, 1420)));
  assert.equal(c.state, TcpState.SynSent);
  assert.equal(l.a.stats.icmpErrorsIgnored, 1);
  // The error as B's side would send it: the connect fails.
  let closed: string | null = "none";
  c.onClose = (e) => closed = e;
  l.a.write(out.slice(0, writeUnreachable(ip, out, ICMP_UNREACH_PORT, 1420)));
  assert.equal(c.state, TcpState.Closed);
  assert.equal(closed, "unreachable");
  assert.equal(l.a.stats.icmpErrorsIn, 1);
});

Deno.test("stack: two stacks as the Tuns of two WireGuard devices carry TCP through the tunnel", () => {
  const pair = devicePair({ network: { latency: 1 } });
  const mk = (addrs: string[]) =>
    new NetStack({ clock: pair.clock, rng: pair.rng, addresses: addrs });
  const sa = mk(["10.0.0.1", "fd00::1"]);
  const sb = mk(["10.0.0.2", "fd00::2"]);
  // The devices were built with MemoryTuns: route what they deliver into the stacks.
  pair.a.tun.onPacket = (p) => sa.write(p);
  pair.b.tun.onPacket = (p) => sb.write(p);
  sa.attach(pair.a.device);
  sb.attach(pair.b.device);
  const lis = sb.listen(8080);
  const c = sa.connect("fd00::2", 8080);
  const data = new Uint8Array(200_000).map((_, i) => (i * 7 + (i >> 9)) & 255);
  let sent = 0;
  const pump = () => {
    sent += c.write(data, sent);
    if (sent === data.length) c.shutdown();
  };
  c.onConnect = pump;
  c.onWritable = pump;
  const got = new Uint8Array(data.length);
  let n = 0;
  let eof = false;
  lis.onAcceptable = () => {
    const s = lis.accept()!;
    s.onReadable = () => {
      for (let k; (k = s.read(got, n)) !== 0;) {
        if (k < 0) {
          eof = true;
          return;
        }
        n += k;
      }
    };
  };
  for (let t = 0; t < 30_000 && !eof; t += 5) pair.clock.advance(5);
  assert.ok(eof, `got ${n}`);
  assert.deepEqual(got, data);
});
