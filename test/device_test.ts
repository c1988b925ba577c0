// SPDX-License-Identifier: Apache-2.0
/**
 * Two devices over the in-memory edges with a fake clock: the whole protocol
 * (handshake, sessions, timers, roaming, cookies, crypto-routing) end to end,
 * deterministic and without root.
 */
import assert, { deepEqual, equal } from "node:assert/strict";
import { type DevicePair, devicePair, type DevicePairOptions } from "./_util/device_pair.ts";
import { ipv4Packet, ipv6Packet, payload } from "./_util/packets.ts";
import {
  KEEPALIVE_TIMEOUT,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  REJECT_AFTER_TIME,
  REKEY_AFTER_TIME,
  ZERO_KEY_MATERIAL_AFTER,
} from "../src/constants.ts";
import { Endpoint } from "../src/conn/endpoint.ts";
import { isZero } from "../src/crypto.ts";
import type { MemoryDatagram } from "../src/conn/memory.ts";
import { seededRng } from "./_util/fake_clock.ts";

/** Runs everything due now (deliveries, handshake processing) until quiet. */
function settle(p: DevicePair): void {
  for (let i = 0; i < 50; i++) p.clock.advance(0);
}

/** Advances time in steps of `step` ms, settling after each. */
function advance(p: DevicePair, ms: number, step = 1000, each?: (t: number) => void): void {
  const end = p.clock.now() + ms;
  while (p.clock.now() < end) {
    p.clock.advance(Math.min(step, end - p.clock.now()));
    settle(p);
    each?.(p.clock.now());
  }
}

/** Records every datagram on the network with its time. */
function record(p: DevicePair): { t: number; d: MemoryDatagram }[] {
  const log: { t: number; d: MemoryDatagram }[] = [];
  const prev = p.net.tap;
  p.net.tap = (d) => {
    log.push({ t: p.clock.now(), d });
    return prev ? prev(d) : true;
  };
  return log;
}

function fromA(p: DevicePair, d: MemoryDatagram): boolean {
  return d.from.port === p.a.device.listenPort;
}

function v4(src: string, dst: string, n = 100, seed = 1): Uint8Array {
  return ipv4Packet(src, dst, payload(n, seed));
}

for (const psk of [false, true]) {
  for (const inner of [4, 6] as const) {
    for (const initiator of ["a", "b"] as const) {
      Deno.test(`Device ping: ${initiator.toUpperCase()} initiates, inner IPv${inner}${psk ? ", psk" : ""}`, () => {
        const p = devicePair({ psk });
        const [s, r] = initiator === "a" ? [p.a, p.b] : [p.b, p.a];
        const sAddr = inner === 4
          ? (initiator === "a" ? "10.0.0.1" : "10.0.0.2")
          : (initiator === "a" ? "fd00::1" : "fd00::2");
        const rAddr = inner === 4
          ? (initiator === "a" ? "10.0.0.2" : "10.0.0.1")
          : (initiator === "a" ? "fd00::2" : "fd00::1");
        const mk = (src: string, dst: string, seed: number) =>
          inner === 4
            ? ipv4Packet(src, dst, payload(77, seed))
            : ipv6Packet(src, dst, payload(77, seed));
        const ping = mk(sAddr, rAddr, 1);
        s.device.handleTunPacket(ping);
        s.device.flush();
        settle(p);
        equal(r.tun.received.length, 1, "request delivered after the handshake");
        deepEqual(r.tun.received[0], ping);
        const pong = mk(rAddr, sAddr, 2);
        r.device.handleTunPacket(pong);
        r.device.flush();
        settle(p);
        equal(s.tun.received.length, 1);
        deepEqual(s.tun.received[0], pong);
        assert(s.peer.lastHandshakeTime().sec > 0);
        assert(r.peer.lastHandshakeTime().sec > 0);
        // Counters agree across the wire: what one sent, the other received.
        equal(s.peer.txBytes, r.peer.rxBytes);
        equal(r.peer.txBytes, s.peer.rxBytes);
        assert(s.peer.keypairs.current!.isInitiator);
        assert(!r.peer.keypairs.current!.isInitiator);
      });
    }
  }
}

Deno.test("Device pads transport plaintext to 16 bytes, clamped to the MTU", () => {
  const p = devicePair();
  const log = record(p);
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2", 1)); // 29-byte packet
  p.a.device.flush();
  settle(p);
  const data = log.filter((x) => x.d.data[0] === MESSAGE_TRANSPORT && fromA(p, x.d));
  equal(data.length, 1);
  equal(data[0].d.data.length, 16 + 32 + 16, "29 bytes padded to 32");
  p.a.tun.mtu = 1400;
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2", 1372)); // 1400 bytes: no padding over the MTU
  settle(p);
  const last = log.filter((x) => x.d.data[0] === MESSAGE_TRANSPORT && fromA(p, x.d)).pop()!;
  equal(last.d.data.length, 16 + 1400 + 16);
  equal(p.b.tun.received.length, 2);
});

Deno.test("Device keeps traffic flowing across rekeys (REKEY_AFTER_TIME)", () => {
  const p = devicePair();
  let sent = 0;
  const keypairs = new Set<unknown>();
  // B answers every packet, like ping (perfectly simultaneous initiations from
  // both sides would livelock in any implementation until timing differs).
  p.b.tun.onPacket = (pkt) => {
    p.b.device.handleTunPacket(v4("10.0.0.2", "10.0.0.1", 50, pkt[30]));
    p.b.device.flush();
  };
  advance(p, 400_000, 1000, () => {
    p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2", 50, sent));
    p.a.device.flush();
    sent++;
    keypairs.add(p.a.peer.keypairs.current);
  });
  settle(p);
  equal(
    p.b.tun.received.length,
    sent,
    `every packet A sent arrived: ${JSON.stringify(p.b.device.stats)} ${
      JSON.stringify(p.a.device.stats)
    }`,
  );
  equal(p.a.tun.received.length, sent, "every packet B sent arrived");
  assert(
    keypairs.size >= 3,
    `expected rekeys about every ${REKEY_AFTER_TIME / 1000} s, saw ${keypairs.size} sessions`,
  );
  equal(p.b.device.stats.decryptFailed, 0);
  equal(p.b.device.stats.replayed, 0);
});

Deno.test("Device rejects data on a session older than REJECT_AFTER_TIME", () => {
  const p = devicePair();
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2"));
  p.a.device.flush();
  settle(p);
  equal(p.b.tun.received.length, 1);
  // Withhold a fresh data packet from A, then deliver it after the session expired.
  let held: MemoryDatagram | null = null;
  p.net.tap = (d) => {
    if (!held && d.data[0] === MESSAGE_TRANSPORT && d.data.length > 32 && fromA(p, d)) {
      held = d;
      return false;
    }
    return true;
  };
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2", 60, 9));
  p.a.device.flush();
  settle(p);
  assert(held);
  p.net.tap = null;
  p.clock.advance(REJECT_AFTER_TIME + 1);
  settle(p);
  const h = held as MemoryDatagram;
  const before = p.b.device.stats.expiredKeypair;
  p.b.device.handleDatagram(h.data, h.from);
  equal(p.b.device.stats.expiredKeypair, before + 1);
  equal(p.b.tun.received.length, 1, "the stale packet was not delivered");
  // A does not send on the expired session either: it handshakes first, then delivers.
  const log = record(p);
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2", 61, 10));
  p.a.device.flush();
  settle(p);
  equal(log[0].d.data[0], MESSAGE_INITIATION);
  equal(p.b.tun.received.length, 2);
});

Deno.test("Device sends 20 initiations, then gives up when the peer is gone", () => {
  const p = devicePair();
  p.b.device.down();
  const log = record(p);
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2"));
  p.a.device.flush();
  advance(p, 300_000, 100);
  const inits = log.filter((x) => x.d.data[0] === MESSAGE_INITIATION);
  equal(inits.length, 20);
  for (let i = 1; i < inits.length; i++) {
    const gap = inits[i].t - inits[i - 1].t;
    assert(
      gap >= 5000 && gap <= 5000 + 333 + 100,
      `gap ${gap} between initiations ${i - 1} and ${i}`,
    );
  }
  equal(p.a.peer.stagedCount, 0, "staged packets flushed when giving up");
});

Deno.test("Device zeroes all keys ZERO_KEY_MATERIAL_AFTER (540 s) after the last session", () => {
  const p = devicePair();
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2"));
  p.a.device.flush();
  settle(p);
  p.b.device.handleTunPacket(v4("10.0.0.2", "10.0.0.1"));
  p.b.device.flush();
  settle(p);
  const kpA = p.a.peer.keypairs.current!;
  const kpB = p.b.peer.keypairs.current!;
  assert(kpA && kpB);
  advance(p, ZERO_KEY_MATERIAL_AFTER - 5000, 5000);
  assert(p.a.peer.keypairs.current, "still there just before 540 s");
  advance(p, 10_000, 1000);
  equal(p.a.peer.keypairs.current, null);
  equal(p.b.peer.keypairs.current, null);
  equal(p.a.peer.keypairs.previous, null);
  assert(isZero(kpA.sendKey) && isZero(kpA.receiveKey), "A's keys wiped");
  assert(isZero(kpB.sendKey) && isZero(kpB.receiveKey), "B's keys wiped");
  equal(p.a.device.indexTable.size, 0);
});

Deno.test("Device sends a passive keepalive KEEPALIVE_TIMEOUT after receiving data", () => {
  const p = devicePair();
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2"));
  p.a.device.flush();
  settle(p);
  const t0 = p.clock.now();
  const log = record(p);
  advance(p, 30_000, 100);
  const keepalives = log.filter((x) => x.d.data[0] === MESSAGE_TRANSPORT && x.d.data.length === 32);
  equal(keepalives.length, 1, "one keepalive from B");
  assert(!fromA(p, keepalives[0].d));
  const dt = keepalives[0].t - t0;
  assert(dt >= KEEPALIVE_TIMEOUT && dt <= KEEPALIVE_TIMEOUT + 100, `keepalive after ${dt} ms`);
});

Deno.test("Device sends persistent keepalives every interval of silence", () => {
  const p = devicePair();
  p.b.peer.setPersistentKeepaliveInterval(25);
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2"));
  p.a.device.flush();
  settle(p);
  const log = record(p);
  const t0 = p.clock.now();
  advance(p, 100_000, 100);
  const fromB = log.filter((x) =>
    !fromA(p, x.d) && x.d.data[0] === MESSAGE_TRANSPORT && x.d.data.length === 32
  );
  // The passive keepalive at 10 s, then persistent ones 25 s after the last packet sent.
  const times = fromB.map((x) => Math.round((x.t - t0) / 100) / 10);
  assert(times.length >= 4, `keepalives at ${times}`);
  for (let i = 1; i < times.length; i++) {
    const gap = times[i] - times[i - 1];
    assert(gap <= 25.1, `gap ${gap} s in ${times}`);
  }
  assert(Math.abs(times[times.length - 1] - times[times.length - 2] - 25) < 0.2, `${times}`);
});

Deno.test("Device roams to the source of authenticated packets", () => {
  const p = devicePair();
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2"));
  p.a.device.flush();
  settle(p);
  equal(p.a.peer.endpoint!.toString(), `192.0.2.2:${p.b.device.listenPort}`);
  p.b.bind.setAddress(4, "198.51.100.7");
  p.b.device.handleTunPacket(v4("10.0.0.2", "10.0.0.1"));
  p.b.device.flush();
  settle(p);
  equal(p.a.tun.received.length, 1);
  equal(p.a.peer.endpoint!.toString(), `198.51.100.7:${p.b.device.listenPort}`);
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2", 30, 5));
  p.a.device.flush();
  settle(p);
  equal(p.b.tun.received.length, 2, "replies follow the peer to its new address");
});

Deno.test("Device rejects a replayed data packet and a replayed initiation", () => {
  const p = devicePair();
  const log = record(p);
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2"));
  p.a.device.flush();
  settle(p);
  equal(p.b.tun.received.length, 1);
  const data = log.find((x) => x.d.data[0] === MESSAGE_TRANSPORT && fromA(p, x.d))!.d;
  p.b.device.handleDatagram(data.data, data.from);
  p.b.device.flush();
  equal(p.b.device.stats.replayed, 1);
  equal(p.b.tun.received.length, 1);
  const init = log.find((x) => x.d.data[0] === MESSAGE_INITIATION)!.d;
  p.clock.advance(1000);
  const sent = p.b.bind.sent;
  p.b.device.handleDatagram(init.data, init.from);
  settle(p);
  equal(p.b.device.stats.handshakeRejected, 1);
  equal(p.b.bind.sent, sent, "no response to a replayed initiation");
});

Deno.test("Device drops packets whose inner source is not the sender's (crypto-routing)", () => {
  const p = devicePair();
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2"));
  p.a.device.flush();
  settle(p);
  equal(p.b.tun.received.length, 1);
  // A claims a source B routes to nobody, and one B routes to another peer.
  const other = p.b.device.newPeer(new Uint8Array(32).fill(9));
  p.b.device.allowedIps.insert(4, new Uint8Array([10, 0, 0, 0]), 24, other);
  p.a.device.handleTunPacket(v4("10.0.0.77", "10.0.0.2"));
  p.a.device.handleTunPacket(v4("172.16.0.1", "10.0.0.2"));
  p.a.device.flush();
  settle(p);
  equal(p.b.tun.received.length, 1);
  equal(p.b.device.stats.badSource, 2);
});

Deno.test("Device answers with a cookie under load and accepts the retry with mac2", () => {
  const p = devicePair();
  const attacker = new Endpoint(4, new Uint8Array([203, 0, 113, 9]), 1234);
  let held: MemoryDatagram[] = [];
  p.net.tap = (d) => {
    if (d.data[0] === MESSAGE_INITIATION) {
      held.push(d);
      return false;
    }
    return true;
  };
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2"));
  p.a.device.flush();
  settle(p);
  equal(held.length, 1);
  const flood = (msg: MemoryDatagram) => {
    for (let i = 0; i < 200; i++) p.b.device.handleDatagram(msg.data, attacker);
    p.b.device.handleDatagram(msg.data, msg.from);
  };
  flood(held[0]);
  assert(p.b.device.isUnderLoad());
  settle(p);
  assert(p.b.device.stats.cookieRepliesSent >= 1);
  equal(p.b.peer.keypairs.next, null, "no session for an initiation without mac2 under load");
  // A got the cookie; its retry carries mac2.
  held = [];
  advance(p, 6000, 100);
  equal(held.length, 1);
  const retry = held[0];
  assert(!isZero(retry.data.subarray(132, 148)), "mac2 set on the retry");
  p.net.tap = null;
  flood(retry);
  settle(p);
  assert(p.a.peer.keypairs.current, "handshake completed under load thanks to the cookie");
  equal(p.b.tun.received.length, 1, "and the staged packet arrived");
});

Deno.test("Device receive path never throws on random and mutated datagrams", () => {
  const p = devicePair();
  const log = record(p);
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2"));
  p.a.device.flush();
  settle(p);
  p.b.device.handleTunPacket(v4("10.0.0.2", "10.0.0.1"));
  p.b.device.flush();
  settle(p);
  const samples = log.map((x) => x.d.data);
  const rng = seededRng(42);
  const r = new Uint8Array(4);
  const rand = (n: number) => {
    rng(r);
    return new DataView(r.buffer).getUint32(0) % n;
  };
  const from = new Endpoint(4, new Uint8Array([192, 0, 2, 1]), p.a.device.listenPort);
  for (let i = 0; i < 20_000; i++) {
    let d: Uint8Array;
    const kind = rand(4);
    if (kind === 0) {
      d = new Uint8Array(rand(300));
      rng(d);
    } else {
      d = samples[rand(samples.length)].slice();
      if (kind === 1) d[rand(d.length)] ^= 1 << rand(8);
      else if (kind === 2) d = d.subarray(0, rand(d.length + 1));
      else {
        const e = new Uint8Array(d.length + rand(40));
        e.set(d);
        d = e;
      }
    }
    if (rand(2) === 0 && d.length > 0) d[0] = 1 + rand(4);
    p.b.device.handleDatagram(d, from);
    p.a.device.handleDatagram(d, from);
    if (i % 500 === 0) settle(p);
  }
  settle(p);
  // The tunnel still works afterwards.
  p.clock.advance(1000);
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2", 40, 3));
  p.a.device.flush();
  settle(p);
  assert(p.b.tun.received.length >= 2);
});

Deno.test("Device handshake survives loss, duplication and reordering", () => {
  const opts: DevicePairOptions = { network: { loss: 0.2, duplicate: 0.2, jitter: 30 }, seed: 7 };
  const p = devicePair(opts);
  let sent = 0;
  advance(p, 60_000, 250, () => {
    p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2", 50, sent++));
    p.a.device.flush();
  });
  const got = p.b.tun.received.length;
  assert(got > sent * 0.5, `only ${got} of ${sent} delivered`);
  assert(p.b.device.stats.replayed > 0, "duplicates were caught by the replay window");
  equal(p.b.device.stats.decryptFailed, 0);
});

Deno.test("Device.setPrivateKey removes a peer with our own public key and expires sessions", () => {
  const p = devicePair();
  p.a.device.handleTunPacket(v4("10.0.0.1", "10.0.0.2"));
  p.a.device.flush();
  settle(p);
  const kp = p.a.peer.keypairs.current!;
  // Taking B's key: the peer with that public key disappears.
  p.a.device.setPrivateKey(p.b.privateKey);
  equal(p.a.device.peerCount, 0);
  equal(p.a.device.allowedIps.lookup(4, new Uint8Array([10, 0, 0, 2])), undefined);
  assert(isZero(kp.sendKey));
  void MESSAGE_RESPONSE;
  void MESSAGE_COOKIE_REPLY;
});
