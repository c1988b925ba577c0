// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The receive path (kernel `receive.c`, wireguard-go `receive.go`): a UDP
 * payload is either a handshake message, queued for the handshake worker
 * (with cookie replies and the rate limiter once the device is under load),
 * or a transport message, queued in the device's {@link CryptoQueue} to be
 * opened. Opened messages come back in queue order to {@link Receive.opened}:
 * replay check, key confirmation, roaming, timers, then the inner packet's
 * length and source address are checked against the sender's allowed IPs
 * before it goes to the TUN.
 *
 * The steady path (a transport message on an established session) allocates
 * nothing: the message is copied into the batch arena, the source endpoint
 * into a reused per-job copy, and the TUN gets a cached view of the arena.
 */
import type { AllowedIps } from "./allowedips.ts";
import { type Clock, nowTick } from "./clock.ts";
import type { Bind } from "./conn/bind.ts";
import type { Endpoint } from "./conn/endpoint.ts";
import {
  AEAD_TAG_SIZE,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  MESSAGE_TRANSPORT_HEADER_SIZE,
  QUEUE_HANDSHAKE_SIZE,
  REJECT_AFTER_TIME,
  UNDER_LOAD_AFTER_TIME,
  UNDER_LOAD_QUEUE_DEPTH,
} from "./constants.ts";
import { F_HI, F_LO, JOB_FIELDS, type JobBatch, V_PACKET } from "./crypto_pool.ts";
import type { DeviceStats } from "./device_stats.ts";
import type { IndexTable } from "./index_table.ts";
import type { Logger } from "./log.ts";
import { messageType, readU32 } from "./messages.ts";
import type { CookieChecker } from "./noise/cookie.ts";
import {
  consumeInitiation,
  consumeResponse,
  finishInitiation,
  handshakeSender,
  HandshakeState,
  responseReceiver,
  type StaticIdentity,
} from "./noise/handshake.ts";
import type { HandshakeOffload } from "./handshake_workers.ts";
import type { Keypair } from "./noise/keypair.ts";
import type { IndexEntry, Peer } from "./peer.ts";
import type { CryptoQueue } from "./queueing.ts";
import type { Ratelimiter } from "./ratelimiter.ts";
import type { Send } from "./send.ts";
import type { Tun } from "./tun/tun.ts";

/** What the receive path needs from its device. */
export interface ReceiveHost {
  readonly clock: Clock;
  readonly log: Logger;
  readonly identity: StaticIdentity;
  readonly indexTable: IndexTable<IndexEntry>;
  readonly allowedIps: AllowedIps<Peer>;
  readonly cookieChecker: CookieChecker;
  readonly ratelimiter: Ratelimiter;
  readonly tun: Tun;
  readonly bind: Bind;
  readonly stats: DeviceStats;
  readonly isUp: boolean;
  /** Other threads that answer initiations (null: all inline). */
  readonly handshakeOffload: HandshakeOffload | null;
  lookupPeer(publicKey: Uint8Array): Peer | undefined;
  /** Runs a turn of the handshake queue and flushes the output. */
  processHandshakes(): void;
}

/** Most handshakes (DH work) done per turn before yielding to traffic. */
const HANDSHAKES_PER_TURN = 64;
/** Most time (ms on the device clock) spent on handshakes per turn. */
const HANDSHAKE_TURN_BUDGET_MS = 2;
/** Handshake messages waiting at the start of a turn that start the offload's threads. */
const OFFLOAD_WARM_DEPTH = 4;

interface QueuedHandshake {
  data: Uint8Array;
  from: Endpoint;
}

/** Receive is one device's receive path. */
export class Receive {
  #host: ReceiveHost;
  #queue: CryptoQueue;
  #send: Send;
  #handshakeQueue: QueuedHandshake[] = [];
  #handshakeHead = 0;
  #handshakeScheduled = false;
  #processingHandshakes = false;
  #underLoadUntil = -Infinity;
  #cookieScratch = new Uint8Array(MESSAGE_COOKIE_REPLY_SIZE);
  #lookupPeer: (publicKey: Uint8Array) => Peer | undefined;
  #handshakeTurn = () => {
    this.#handshakeScheduled = false;
    this.#host.processHandshakes();
  };

  constructor(host: ReceiveHost, queue: CryptoQueue, send: Send) {
    this.#host = host;
    this.#queue = queue;
    this.#send = send;
    this.#lookupPeer = (pub) => host.lookupPeer(pub);
  }

  /** Handles one UDP payload from `from`. Never throws on hostile input. */
  handleDatagram(data: Uint8Array, from: Endpoint): void {
    const host = this.#host;
    if (!host.isUp) return;
    const type = messageType(data);
    if (type === MESSAGE_TRANSPORT) {
      this.#receiveTransport(data, from);
      return;
    }
    if (type === 0) {
      host.stats.invalidMessages++;
      return;
    }
    if (type !== MESSAGE_COOKIE_REPLY && !host.cookieChecker.checkMac1(data)) {
      host.stats.invalidMac++;
      return;
    }
    // Cookie replies carry no MAC of ours: queue only those answering a
    // handshake we have in flight, so that junk cannot fill the queue and put
    // us under load.
    if (type === MESSAGE_COOKIE_REPLY && !host.indexTable.lookup(readU32(data, 4))) {
      host.stats.unknownIndex++;
      return;
    }
    if (this.handshakeQueueLength >= QUEUE_HANDSHAKE_SIZE) {
      host.stats.handshakeQueueFull++;
      return;
    }
    this.#handshakeQueue.push({ data: data.slice(), from: from.clone() });
    this.#scheduleHandshakes();
  }

  #scheduleHandshakes(): void {
    if (this.#handshakeScheduled) return;
    this.#handshakeScheduled = true;
    this.#host.clock.after(0, this.#handshakeTurn);
  }

  /** Handshake messages waiting to be processed. */
  get handshakeQueueLength(): number {
    return this.#handshakeQueue.length - this.#handshakeHead;
  }

  /** Forgets every queued handshake message (the device went down). */
  clearHandshakes(): void {
    this.#handshakeQueue.length = 0;
    this.#handshakeHead = 0;
    this.#host.handshakeOffload?.cancel();
  }

  /**
   * True when the handshake queue is deep, and for UNDER_LOAD_AFTER_TIME
   * afterwards (wireguard-go IsUnderLoad).
   */
  isUnderLoad(): boolean {
    const now = this.#host.clock.now();
    const depth = this.handshakeQueueLength + (this.#host.handshakeOffload?.inFlight ?? 0);
    const latched = this.#underLoadUntil > now;
    // Enter at UNDER_LOAD_QUEUE_DEPTH; while latched, any backlog of an eighth
    // of that keeps the latch alive. We drain the queue right after each read
    // (cheaply, once under load), so it rarely stays deep: without this the
    // latch would lapse every second mid-flood and let a burst of DH through.
    if (depth >= UNDER_LOAD_QUEUE_DEPTH || (latched && depth >= UNDER_LOAD_QUEUE_DEPTH / 8)) {
      this.#underLoadUntil = now + UNDER_LOAD_AFTER_TIME;
      return true;
    }
    return latched;
  }

  /**
   * Processes queued handshake messages, for at most HANDSHAKE_TURN_BUDGET_MS
   * or HANDSHAKES_PER_TURN DH computations (no flush). What is left waits for
   * the next turn, so data keeps flowing during a flood.
   */
  runHandshakes(): void {
    if (this.#processingHandshakes) return;
    this.#processingHandshakes = true;
    const host = this.#host;
    try {
      let work = 0;
      const q = this.#handshakeQueue;
      const deadline = host.clock.now() + HANDSHAKE_TURN_BUDGET_MS;
      if (this.handshakeQueueLength >= OFFLOAD_WARM_DEPTH) host.handshakeOffload?.warm();
      const offload = host.handshakeOffload;
      while (this.#handshakeHead < q.length && work < HANDSHAKES_PER_TURN) {
        if (!host.isUp) break;
        // Answer what the Workers finished first, which frees their slots.
        if (offload !== null && offload.hasResults) offload.drain(this.#collected);
        const underLoad = this.isUnderLoad();
        const item = q[this.#handshakeHead];
        q[this.#handshakeHead++] = undefined as unknown as QueuedHandshake;
        if (this.#handleHandshake(item.data, item.from, underLoad)) {
          work++;
          if (host.clock.now() > deadline) break;
        }
      }
      if (this.#handshakeHead >= q.length) {
        q.length = 0;
        this.#handshakeHead = 0;
      } else if (this.#handshakeHead > 256) {
        q.splice(0, this.#handshakeHead);
        this.#handshakeHead = 0;
      }
      if (this.handshakeQueueLength > 0 && host.isUp) this.#scheduleHandshakes();
    } finally {
      this.#processingHandshakes = false;
    }
  }

  /** Returns true when it did DH work. */
  #handleHandshake(data: Uint8Array, from: Endpoint, underLoad: boolean): boolean {
    const host = this.#host;
    const type = data[0];
    if (type === MESSAGE_COOKIE_REPLY) {
      const entry = host.indexTable.lookup(readU32(data, 4));
      if (!entry) return false;
      if (entry.peer.cookieGenerator.consumeReply(data)) {
        entry.peer.verbose("Received cookie response");
      }
      return false;
    }
    if (underLoad) {
      const source = from.dstToBytes();
      if (!host.cookieChecker.checkMac2(data, source)) {
        host.cookieChecker.createReply(this.#cookieScratch, data, handshakeSender(data), source);
        host.stats.cookieRepliesSent++;
        host.bind.send(this.#cookieScratch, from);
        return false;
      }
      if (!host.ratelimiter.allow(from.family, from.address)) {
        host.stats.ratelimited++;
        return false;
      }
    }
    const now = host.clock.now();
    if (type === MESSAGE_INITIATION) {
      const offload = host.handshakeOffload;
      if (offload && host.identity.hasIdentity && offload.submit(data, from, host.identity)) {
        return false; // answered in collectHandshakes()
      }
      const peer = consumeInitiation(data, host.identity, this.#lookupPeer, { now });
      this.#answerInitiation(peer, data, from, undefined);
      return true;
    }
    if (type === MESSAGE_RESPONSE) {
      const entry = host.indexTable.lookup(responseReceiver(data));
      const peer = entry?.peer;
      if (
        !peer || entry.keypair !== null ||
        peer.handshake.state !== HandshakeState.InitiationCreated ||
        !consumeResponse(data, peer.handshake, host.identity)
      ) {
        host.stats.handshakeRejected++;
        host.log.verbose(`Received invalid response message from ${from}`);
        return true;
      }
      peer.setEndpointFromPacket(from);
      peer.verbose("Received handshake response");
      peer.addRxBytes(data.length);
      peer.timers.anyAuthenticatedPacketTraversal();
      peer.timers.anyAuthenticatedPacketReceived();
      if (!peer.beginSymmetricSession()) return true;
      peer.timers.sessionDerived();
      peer.handshakeComplete();
      peer.sendKeepalive();
      return true;
    }
    return false;
  }

  /**
   * Answers the initiations the offload's threads have prepared (call when
   * its fd is readable; no flush).
   */
  collectHandshakes(): void {
    this.#host.handshakeOffload?.drain(this.#collected);
  }

  #collected = (data: Uint8Array, from: Endpoint, work: Uint8Array | null): void => {
    const host = this.#host;
    if (!host.isUp) return;
    const peer = work === null
      ? null
      : finishInitiation(data, work, this.#lookupPeer, { now: host.clock.now() });
    this.#answerInitiation(peer, data, from, work ?? undefined);
  };

  /** After an initiation was consumed (`peer`) or rejected (null): the response. */
  #answerInitiation(
    peer: Peer | null,
    data: Uint8Array,
    from: Endpoint,
    work: Uint8Array | undefined,
  ): void {
    const host = this.#host;
    if (!peer) {
      host.stats.handshakeRejected++;
      host.log.verbose(`Received invalid initiation message from ${from}`);
      return;
    }
    peer.timers.anyAuthenticatedPacketTraversal();
    peer.timers.anyAuthenticatedPacketReceived();
    peer.setEndpointFromPacket(from);
    peer.verbose("Received handshake initiation");
    peer.addRxBytes(data.length);
    this.#send.sendHandshakeResponse(peer, work);
  }

  #receiveTransport(data: Uint8Array, from: Endpoint): void {
    const host = this.#host;
    const entry = host.indexTable.lookup(readU32(data, 4));
    const kp = entry?.keypair;
    if (!entry || !kp) {
      host.stats.unknownIndex++;
      return;
    }
    const clock = host.clock;
    if (
      (clock.tick ?? nowTick(clock))[0] - kp.created >= REJECT_AFTER_TIME
    ) {
      host.stats.expiredKeypair++;
      return;
    }
    this.#queue.addOpen(entry.peer, kp, data, from);
  }

  /**
   * Committer: delivers job `i` of `batch`, a transport message opened with
   * `kp` (wireguard-go RoutineSequentialReceiver).
   */
  opened(peer: Peer, kp: Keypair, batch: JobBatch, i: number, from: Endpoint): void {
    const host = this.#host;
    if (!batch.ok(i)) {
      host.stats.decryptFailed++;
      return;
    }
    const m = i * JOB_FIELDS;
    if (!kp.replay.validate(batch.meta[m + F_LO] >>> 0, batch.meta[m + F_HI] >>> 0)) {
      host.stats.replayed++;
      return;
    }
    const len = batch.lengthOf(i);
    const plain = batch.offsetOf(i) + MESSAGE_TRANSPORT_HEADER_SIZE;
    const plainLength = len - MESSAGE_TRANSPORT_HEADER_SIZE - AEAD_TAG_SIZE;
    peer.setEndpointFromPacket(from);
    if (peer.receivedWithKeypair(kp)) {
      peer.handshakeComplete();
      peer.sendStagedPackets();
    }
    this.#send.keepKeyFreshReceiving(peer);
    peer.timers.anyAuthenticatedPacketTraversal();
    peer.timers.anyAuthenticatedPacketReceived();
    peer.addRxBytes(len);
    if (plainLength === 0) {
      peer.verbose("Receiving keepalive packet");
      return;
    }
    peer.timers.dataReceived();
    // Check the inner packet and trim padding (wireguard-go RoutineSequentialReceiver).
    const data = batch.data;
    let length: number;
    let source: Peer | undefined;
    const version = data[plain] >> 4;
    if (version === 4 && plainLength >= 20) {
      length = (data[plain + 2] << 8) | data[plain + 3];
      if (length < 20 || length > plainLength) {
        host.stats.invalidPackets++;
        return;
      }
      source = host.allowedIps.lookup(4, data, plain + 12);
    } else if (version === 6 && plainLength >= 40) {
      length = 40 + ((data[plain + 4] << 8) | data[plain + 5]);
      if (length > plainLength) {
        host.stats.invalidPackets++;
        return;
      }
      source = host.allowedIps.lookup(6, data, plain + 8);
    } else {
      host.stats.invalidPackets++;
      return;
    }
    if (source !== peer) {
      host.stats.badSource++;
      return;
    }
    host.tun.write(batch.view(i, V_PACKET, plain, plain + length));
  }
}
