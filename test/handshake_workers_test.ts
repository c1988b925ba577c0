// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Initiations answered through {@link HandshakeWorkers} (a real Worker):
 * every response authenticates at its initiator and gives the same session
 * keys on both sides; replays, unknown peers and garbage that pass mac1 are
 * rejected exactly as inline; results of jobs in flight when the device goes
 * down are dropped; close() ends the Worker and releases the eventfd.
 */
import assert from "node:assert/strict";
import { Device } from "../src/device.ts";
import type { Bind } from "../src/conn/bind.ts";
import { Endpoint } from "../src/conn/endpoint.ts";
import { generatePrivateKey } from "../src/crypto.ts";
import { HandshakeWorkers } from "../src/handshake_workers.ts";
import { CookieGenerator } from "../src/noise/cookie.ts";
import {
  beginSession,
  consumeResponse,
  createInitiation,
  Handshake,
  StaticIdentity,
} from "../src/noise/handshake.ts";
import { Keypair } from "../src/noise/keypair.ts";
import { MemoryTun } from "../src/tun/memory.ts";
import { FakeClock, seededRng } from "./_util/fake_clock.ts";

const ENTRY = new URL("./_util/handshake_worker_entry.ts", import.meta.url).href;

/** A Bind that records what the device sends. */
class RecordingBind implements Bind {
  sent: { data: Uint8Array; to: Endpoint }[] = [];
  open(port: number): number {
    return port || 51820;
  }
  close(): void {}
  setMark(): void {}
  send(data: Uint8Array, to: Endpoint): boolean {
    this.sent.push({ data: data.slice(), to: to.clone() });
    return true;
  }
}

interface Initiator {
  id: StaticIdentity;
  hs: Handshake;
  macs: CookieGenerator;
  from: Endpoint;
}

function setup(peers: number, perWorker = 64) {
  const clock = new FakeClock();
  const rng = seededRng(41);
  const bind = new RecordingBind();
  const workers = new HandshakeWorkers({ workers: 1, entry: ENTRY, perWorker });
  const device = new Device({
    tun: new MemoryTun(),
    bind,
    clock,
    rng,
    autoFlush: false,
    handshakeOffload: workers,
  });
  device.setPrivateKey(generatePrivateKey(rng));
  device.setListenPort(51820);
  device.up();
  const initiators: Initiator[] = [];
  for (let i = 0; i < peers; i++) {
    const id = new StaticIdentity();
    id.set(generatePrivateKey(rng));
    device.newPeer(id.publicKey);
    const hs = new Handshake(device.identity.publicKey);
    hs.precompute(id);
    initiators.push({
      id,
      hs,
      macs: new CookieGenerator(clock, device.identity.publicKey),
      from: Endpoint.parse(`192.0.2.${i + 1}:${40000 + i}`),
    });
  }
  return { clock, rng, bind, workers, device, initiators };
}

function initiation(t: ReturnType<typeof setup>, ini: Initiator, index: number): Uint8Array {
  const msg = new Uint8Array(148);
  const ok = createInitiation(msg, ini.hs, ini.id, index, {
    rng: t.rng,
    now: t.clock.now(),
    wall: 1.7e12 + t.clock.now() + index,
  });
  assert.ok(ok);
  ini.macs.addMacs(msg);
  return msg;
}

/**
 * Counts the initiations the device hands to the Workers. The Worker may
 * finish (and the device's turn collect) the first jobs before flush()
 * returns, so `inFlight` alone would race with it.
 */
function countSubmits(t: ReturnType<typeof setup>): () => number {
  let submitted = 0;
  const submit = t.workers.submit.bind(t.workers);
  t.workers.submit = (msg, from, keys) => {
    const ok = submit(msg, from, keys);
    if (ok) submitted++;
    return ok;
  };
  return () => submitted;
}

async function until(what: string, done: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Runs the device's half of the offload until nothing is in flight. */
async function collect(t: ReturnType<typeof setup>): Promise<void> {
  await until("the Worker's results", () => {
    t.device.collectHandshakes();
    return t.workers.inFlight === 0;
  });
}

Deno.test("handshake Workers answer initiations: each response authenticates with the same keys", async () => {
  const t = setup(24);
  try {
    t.workers.warm();
    await until("the Worker to start", () => t.workers.readyWorkers === 1);
    const msgs = t.initiators.map((ini, i) => initiation(t, ini, 1000 + i));
    const submitted = countSubmits(t);
    t.initiators.forEach((ini, i) => t.device.handleDatagram(msgs[i], ini.from));
    t.device.flush();
    assert.equal(submitted(), 24, "every initiation went to the Worker");
    assert.equal(t.workers.inFlight + t.bind.sent.length, 24, "nothing answered inline");
    await collect(t);
    assert.equal(t.bind.sent.length, 24);
    for (const { data, to } of t.bind.sent) {
      const i = t.initiators.findIndex((ini) => ini.from.equals(to));
      assert.ok(i >= 0, `response to ${to}`);
      const ini = t.initiators[i];
      assert.equal(data[0], 2, "a handshake response");
      assert.ok(consumeResponse(data, ini.hs, ini.id), `response ${i} authenticates`);
      const mine = new Keypair(true, 0, 1000 + i, 0);
      assert.ok(beginSession(ini.hs, mine));
      const peer = t.device.lookupPeer(ini.id.publicKey)!;
      const theirs = peer.keypairs.next!;
      assert.deepEqual(theirs.receiveKey, mine.sendKey, `peer ${i}: keys agree`);
      assert.deepEqual(theirs.sendKey, mine.receiveKey, `peer ${i}: keys agree`);
    }
    assert.equal(t.device.stats.handshakeRejected, 0);
  } finally {
    t.device.close();
    t.workers.close();
  }
});

Deno.test("handshake Workers: replays, unknown keys and garbage are rejected as inline", async () => {
  const t = setup(4);
  try {
    t.workers.warm();
    await until("the Worker to start", () => t.workers.readyWorkers === 1);
    const first = initiation(t, t.initiators[0], 7);
    t.device.handleDatagram(first, t.initiators[0].from);
    t.device.flush();
    await collect(t);
    assert.equal(t.bind.sent.length, 1);
    // The same initiation again (a replay, 30 ms later: past the flood limit).
    t.clock.advance(30);
    t.device.handleDatagram(first, t.initiators[0].from);
    // An initiator the device does not know (its mac1 is right).
    const stranger = new StaticIdentity();
    stranger.set(generatePrivateKey(t.rng));
    const hs = new Handshake(t.device.identity.publicKey);
    hs.precompute(stranger);
    const unknown: Initiator = {
      id: stranger,
      hs,
      macs: new CookieGenerator(t.clock, t.device.identity.publicKey),
      from: Endpoint.parse("198.51.100.9:9"),
    };
    t.device.handleDatagram(initiation(t, unknown, 8), unknown.from);
    // Garbage with a valid mac1: the static key does not decrypt.
    const junk = initiation(t, t.initiators[1], 9);
    junk[40] ^= 0xff;
    t.initiators[1].macs.addMacs(junk);
    const submitted = countSubmits(t);
    t.device.handleDatagram(junk, t.initiators[1].from);
    t.device.flush();
    assert.equal(submitted(), 3, "all three went to the Worker");
    await collect(t);
    assert.equal(t.bind.sent.length, 1, "no response to any of them");
    assert.equal(t.device.stats.handshakeRejected, 3);
  } finally {
    t.device.close();
    t.workers.close();
  }
});

Deno.test("handshake Workers: results for a device that went down are dropped", async () => {
  const t = setup(12);
  try {
    t.workers.warm();
    await until("the Worker to start", () => t.workers.readyWorkers === 1);
    const submitted = countSubmits(t);
    t.initiators.forEach((ini, i) => t.device.handleDatagram(initiation(t, ini, i + 1), ini.from));
    t.device.flush();
    assert.equal(submitted(), 12);
    // Whatever the Worker finished during that turn was answered then; the rest is in flight.
    const answered = t.bind.sent.length;
    assert.equal(t.workers.inFlight, 12 - answered);
    assert.ok(t.workers.inFlight > 0, "jobs in flight when the device goes down");
    t.device.down();
    t.device.up();
    await collect(t);
    assert.equal(t.bind.sent.length, answered, "nothing answered after the restart");
    // The slots are free again: a new round goes through.
    t.clock.advance(30);
    t.initiators.forEach((ini, i) => t.device.handleDatagram(initiation(t, ini, i + 21), ini.from));
    t.device.flush();
    await collect(t);
    assert.equal(t.bind.sent.length, answered + 12);
  } finally {
    t.device.close();
    t.workers.close();
  }
});

Deno.test("handshake Workers take their share of a burst, the device thread answers the rest", async () => {
  const t = setup(10, 3);
  try {
    t.workers.warm();
    await until("the Worker to start", () => t.workers.readyWorkers === 1);
    t.initiators.forEach((ini, i) => t.device.handleDatagram(initiation(t, ini, i + 1), ini.from));
    t.device.flush();
    // Three handed over (or already collected during the turn), the rest inline.
    assert.equal(t.workers.inFlight + t.bind.sent.length, 10);
    assert.ok(t.bind.sent.length >= 7, `${t.bind.sent.length} answered inline or collected`);
    await collect(t);
    assert.equal(t.bind.sent.length, 10);
    assert.equal(t.device.stats.handshakeRejected, 0);
  } finally {
    t.device.close();
    t.workers.close();
  }
});

Deno.test("handshake Workers: without a running Worker, initiations are answered inline", () => {
  const t = setup(2);
  try {
    // Not warmed: submit() refuses, the device answers on its own thread.
    t.initiators.forEach((ini, i) => t.device.handleDatagram(initiation(t, ini, i + 1), ini.from));
    t.device.flush();
    assert.equal(t.workers.inFlight, 0);
    assert.equal(t.bind.sent.length, 2);
  } finally {
    t.device.close();
    t.workers.close();
  }
});
