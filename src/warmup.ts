// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Warm-up: one handshake and a few data packets each way (IPv4 and IPv6)
 * between two throwaway devices on the in-memory edges, run once when the
 * daemon starts. V8 compiles a function the first time it runs, and a
 * handshake plus the first packets touch a few hundred of them on each side:
 * without this, the first ping through a fresh tunnel took ~12 ms on the
 * reference machine (wireguard-go: ~1.5 ms), nearly all of it compilation.
 * Nothing here touches the system: the devices have their own keys, clock,
 * network and TUN, and are closed (their keys wiped) before it returns.
 */
import type { Rng } from "./clock.ts";
import { MemoryNetwork } from "./conn/memory.ts";
import { generatePrivateKey, publicKey } from "./crypto.ts";
import { Device } from "./device.ts";
import { FakeClock } from "./fake_clock.ts";
import { MemoryTun } from "./tun/memory.ts";
import { MESSAGE_INITIATION_SIZE, MESSAGE_RESPONSE_SIZE } from "./constants.ts";
import {
  beginSession,
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  finishInitiation,
  Handshake,
  INITIATION_WORK_SIZE,
  prepareInitiation,
  StaticIdentity,
} from "./noise/handshake.ts";
import { Keypair } from "./noise/keypair.ts";

/** A minimal IPv4 (20-byte header) or IPv6 (40-byte header) packet, ICMP-ish payload. */
function packet(family: 4 | 6, src: number, dst: number, size: number): Uint8Array {
  const p = new Uint8Array(size);
  const view = new DataView(p.buffer);
  if (family === 4) {
    p[0] = 0x45;
    view.setUint16(2, size);
    p[8] = 64; // TTL
    p[9] = 1; // ICMP
    p.set([10, 203, 0, src], 12);
    p.set([10, 203, 0, dst], 16);
  } else {
    p[0] = 0x60;
    view.setUint16(4, size - 40);
    p[6] = 58; // ICMPv6
    p[7] = 64;
    p.set([0xfd, 0xcb], 8);
    p[23] = src;
    p.set([0xfd, 0xcb], 24);
    p[39] = dst;
  }
  return p;
}

/**
 * Runs the warm-up with `rng` for the throwaway keys; returns the number of
 * packets that came through (for the start-up log and the test: 0 means the
 * core failed to talk to itself, which is worth a warning).
 */
export function warmUp(rng: Rng, rounds = 4): number {
  // Later timers (keepalives, rekeys, the 540 s key wipe) stay pending and go with the clock.
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock, { rng });
  const tunA = new MemoryTun();
  const tunB = new MemoryTun();
  const bindB = net.createBind({ v4: "192.0.2.2", v6: "2001:db8::2" });
  const a = new Device({
    tun: tunA,
    bind: net.createBind({ v4: "192.0.2.1", v6: "2001:db8::1" }),
    clock,
    rng,
    autoFlush: false,
  });
  const b = new Device({
    tun: tunB,
    bind: bindB,
    clock,
    rng,
    autoFlush: false,
  });
  try {
    const keyA = generatePrivateKey(rng);
    const keyB = generatePrivateKey(rng);
    a.setPrivateKey(keyA);
    b.setPrivateKey(keyB);
    b.setListenPort(51821);
    const pa = a.newPeer(publicKey(keyB));
    const pb = b.newPeer(publicKey(keyA));
    keyA.fill(0);
    keyB.fill(0);
    a.allowedIps.insert(4, new Uint8Array([10, 203, 0, 2]), 32, pa);
    a.allowedIps.insert(6, packet(6, 0, 2, 40).subarray(24, 40), 128, pa);
    b.allowedIps.insert(4, new Uint8Array([10, 203, 0, 1]), 32, pb);
    b.allowedIps.insert(6, packet(6, 0, 1, 40).subarray(24, 40), 128, pb);
    a.up();
    b.up();
    pa.setEndpoint(bindB.endpoint(4));
    pa.start();
    pb.start();
    const step = () => {
      for (let i = 0; i < 8; i++) {
        a.flush();
        b.flush();
        clock.advance(5);
      }
    };
    for (let r = 0; r < rounds; r++) {
      for (const family of [4, 6] as const) {
        a.handleTunPacket(packet(family, 1, 2, 84 + 16 * r));
        step();
        b.handleTunPacket(packet(family, 2, 1, 84 + 16 * r));
        step();
      }
    }
    return tunA.take().length + tunB.take().length;
  } finally {
    a.close();
    b.close();
  }
}

/**
 * Runs `count` handshakes between two throwaway identities straight through
 * the noise functions, in both roles, half of them by the split path of the
 * handshake Workers (prepareInitiation, finishInitiation), so that V8 has
 * optimized them before the first real handshake. Measured on the reference
 * machine, an isolated handshake (both sides, after 300 ms idle) took 0.8 to
 * 1.8 ms after a single earlier handshake, about 0.8 ms after 20 and 0.6 ms
 * after 100. The default of 16 costs about 8 ms once and 1 MiB of idle RSS
 * (64 cost 5 MiB, for a first ping not measurably faster). Returns the
 * number that completed (the test checks all of them do).
 */
export function warmUpHandshakes(rng: Rng, count = 16): number {
  const a = new StaticIdentity(), b = new StaticIdentity();
  const keyA = generatePrivateKey(rng), keyB = generatePrivateKey(rng);
  a.set(keyA);
  b.set(keyB);
  keyA.fill(0);
  keyB.fill(0);
  const hsA = new Handshake(b.publicKey), hsB = new Handshake(a.publicKey);
  hsA.precompute(a);
  hsB.precompute(b);
  const owner = { handshake: hsB };
  const lookup = () => owner;
  const init = new Uint8Array(MESSAGE_INITIATION_SIZE);
  const resp = new Uint8Array(MESSAGE_RESPONSE_SIZE);
  const work = new Uint8Array(INITIATION_WORK_SIZE);
  let done = 0;
  try {
    for (let i = 0; i < count; i++) {
      // 21 ms apart: past the responder's one-initiation-per-20-ms limit.
      const now = 21 * (i + 1);
      if (!createInitiation(init, hsA, a, i + 1, { rng, now, wall: 1.7e12 + now })) continue;
      const split = (i & 1) === 1;
      const consumed = split
        ? prepareInitiation(init, b, rng, work) && finishInitiation(init, work, lookup, { now })
        : consumeInitiation(init, b, lookup, { now });
      if (!consumed || !createResponse(resp, hsB, i + 1, { rng }, split ? work : undefined)) {
        continue;
      }
      if (!consumeResponse(resp, hsA, a)) continue;
      const kpA = new Keypair(true, now, i + 1, i + 1), kpB = new Keypair(false, now, i + 1, i + 1);
      if (beginSession(hsA, kpA) && beginSession(hsB, kpB)) done++;
      kpA.wipe();
      kpB.wipe();
    }
    return done;
  } finally {
    hsA.wipe();
    hsB.wipe();
    a.clear();
    b.clear();
  }
}
