// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The send path (kernel `send.c`, wireguard-go `send.go`): a packet read from
 * the TUN is routed to its peer by destination (crypto-routing), then sent
 * with the current session or staged behind a handshake; transport messages
 * get their header, padding and counter here and are sealed in the device's
 * {@link CryptoQueue}, which hands them back in order to {@link Send.sealed}
 * for the UDP edge. Handshake initiations and responses, keepalives and the
 * key-freshness rules of whitepaper §6 live here too.
 *
 * The steady path (a routed packet on an established session) allocates
 * nothing: the message is written straight into the batch arena and handed
 * to the bind as a cached view of it.
 */
import type { AllowedIps } from "./allowedips.ts";
import { type Clock, nowTick, type Rng } from "./clock.ts";
import type { Bind } from "./conn/bind.ts";
import {
  AEAD_TAG_SIZE,
  MAX_MESSAGE_SIZE,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_TRANSPORT,
  MESSAGE_TRANSPORT_HEADER_SIZE,
  QUEUE_STAGED_SIZE,
  REJECT_AFTER_TIME,
  REKEY_AFTER_TIME,
  REKEY_ON_RECEIVE_AGE,
  REKEY_TIMEOUT,
} from "./constants.ts";
import { aeadSeal } from "./crypto.ts";
import { type JobBatch, V_MESSAGE } from "./crypto_pool.ts";
import type { DeviceStats } from "./device_stats.ts";
import type { IndexTable } from "./index_table.ts";
import type { Logger } from "./log.ts";
import { readU32, writeU32 } from "./messages.ts";
import { createInitiation, createResponse, type StaticIdentity } from "./noise/handshake.ts";
import type { Keypair } from "./noise/keypair.ts";
import { type IndexEntry, paddingSize, type Peer, type PeerSend } from "./peer.ts";
import type { CryptoQueue } from "./queueing.ts";
import type { Tun } from "./tun/tun.ts";

/** What the send path needs from its device. */
export interface SendHost {
  readonly clock: Clock;
  readonly rng: Rng;
  readonly log: Logger;
  readonly identity: StaticIdentity;
  readonly indexTable: IndexTable<IndexEntry>;
  readonly allowedIps: AllowedIps<Peer>;
  /** Its `mtu` drives padding. */
  readonly tun: Tun;
  readonly bind: Bind;
  readonly stats: DeviceStats;
  readonly isUp: boolean;
}

const EMPTY = new Uint8Array(0);
const MESSAGE_TRANSPORT_OVERHEAD = MESSAGE_TRANSPORT_HEADER_SIZE + AEAD_TAG_SIZE;
/** Largest inner packet the send path takes (room for header, tag and padding). */
const MAX_PACKET = MAX_MESSAGE_SIZE - MESSAGE_TRANSPORT_OVERHEAD - 16;

/** Send is one device's send path. */
export class Send implements PeerSend {
  #host: SendHost;
  #queue: CryptoQueue;
  #scratch = new Uint8Array(MAX_MESSAGE_SIZE + 64);

  constructor(host: SendHost, queue: CryptoQueue) {
    this.#host = host;
    this.#queue = queue;
  }

  /** Routes an IP packet read from the TUN to its peer by destination and sends it. */
  handleTunPacket(packet: Uint8Array): void {
    const host = this.#host;
    if (!host.isUp) return;
    const version = packet.length > 0 ? packet[0] >> 4 : 0;
    let peer: Peer | undefined;
    if (version === 4 && packet.length >= 20) peer = host.allowedIps.lookup(4, packet, 16);
    else if (version === 6 && packet.length >= 40) peer = host.allowedIps.lookup(6, packet, 24);
    else {
      host.stats.invalidPackets++;
      return;
    }
    if (!peer || !peer.isRunning) {
      host.stats.noRoute++;
      return;
    }
    if (packet.length > MAX_PACKET) {
      host.stats.invalidPackets++;
      return;
    }
    this.sendPacket(peer, packet);
  }

  /**
   * Sends `packet` straight away when a usable session exists and nothing is
   * staged, otherwise stages a copy (at most QUEUE_STAGED_SIZE, oldest dropped
   * first) behind a handshake.
   */
  sendPacket(peer: Peer, packet: Uint8Array): void {
    if (peer.staged.length === 0) {
      const kp = this.#usableKeypair(peer);
      if (kp) {
        this.#encryptAndSend(peer, kp, packet);
        this.#afterDataSent(peer, packet.length > 0);
        return;
      }
    }
    this.#stage(peer, packet.slice());
    this.sendStagedPackets(peer);
  }

  #stage(peer: Peer, packet: Uint8Array): void {
    if (peer.staged.length >= QUEUE_STAGED_SIZE) {
      peer.staged.shift();
      this.#host.stats.stagedDropped++;
    }
    peer.staged.push(packet);
  }

  #usableKeypair(peer: Peer): Keypair | null {
    const kp = peer.keypairs.current;
    if (!kp || kp.sendExhausted) return null;
    const clock = this.#host.clock;
    if (
      (clock.tick ?? nowTick(clock))[0] - kp.created >= REJECT_AFTER_TIME
    ) return null;
    return kp;
  }

  /** Sends staged packets if a session allows, else starts a handshake (wireguard-go SendStagedPackets). */
  sendStagedPackets(peer: Peer): void {
    const staged = peer.staged;
    if (staged.length === 0 || !this.#host.isUp) return;
    const kp = this.#usableKeypair(peer);
    if (!kp) {
      this.sendHandshakeInitiation(peer, false);
      return;
    }
    let data = false;
    while (staged.length > 0) {
      if (kp.sendExhausted) {
        this.sendHandshakeInitiation(peer, false);
        break;
      }
      const packet = staged.shift()!;
      if (packet.length > 0) data = true;
      this.#encryptAndSend(peer, kp, packet);
    }
    this.#afterDataSent(peer, data);
  }

  /** Stages a keepalive (an empty transport message) unless packets wait, then sends them. */
  sendKeepalive(peer: Peer): void {
    if (peer.staged.length === 0 && peer.isRunning) {
      peer.verbose("Sending keepalive packet");
      this.#stage(peer, EMPTY);
    }
    this.sendStagedPackets(peer);
  }

  #encryptAndSend(peer: Peer, kp: Keypair, packet: Uint8Array): void {
    const plainLength = packet.length + paddingSize(packet.length, this.#host.tun.mtu);
    this.#queueSeal(peer, kp, packet, plainLength);
    kp.nextSend();
    peer.timers.anyAuthenticatedPacketTraversal();
    peer.timers.anyAuthenticatedPacketSent();
  }

  /**
   * Queues `packet` to be sealed with `kp` for `peer`: header, padding to
   * `plainLength` and the counter are fixed now, in the batch arena;
   * encryption and sending happen when the batch runs.
   */
  #queueSeal(peer: Peer, kp: Keypair, packet: Uint8Array, plainLength: number): void {
    const total = MESSAGE_TRANSPORT_OVERHEAD + plainLength;
    const i = this.#queue.addSeal(peer, kp, total);
    if (i < 0) {
      // While a batch is being committed (e.g. staged packets released by a
      // key confirmation), seal and send at once.
      const out = this.#scratch.subarray(0, total);
      writeTransport(out, 0, kp, packet, plainLength);
      sealNow(out, kp);
      this.#sendTransport(peer, out);
      return;
    }
    const batch = this.#queue.batch;
    writeTransport(batch.data, batch.offsetOf(i), kp, packet, plainLength);
  }

  /** Committer: job `i` of `batch` is a sealed message for `peer`. */
  sealed(peer: Peer, batch: JobBatch, i: number): void {
    const off = batch.offsetOf(i);
    this.#sendTransport(peer, batch.view(i, V_MESSAGE, off, off + batch.lengthOf(i)));
  }

  /** Sends a sealed transport message; logs when the peer has no endpoint. */
  #sendTransport(peer: Peer, msg: Uint8Array): void {
    if (!this.sendDatagram(peer, msg) && !peer.endpoint) {
      this.#host.log.error(`${peer} - Failed to send data packets: no known endpoint for peer`);
    }
  }

  /** Sends one datagram to the peer's endpoint; counts it; false when there is none or it failed. */
  sendDatagram(peer: Peer, data: Uint8Array): boolean {
    const ep = peer.endpoint;
    if (!ep) return false;
    if (!this.#host.bind.send(data, ep, peer)) {
      this.#host.stats.sendErrors++;
      return false;
    }
    peer.addTxBytes(data.length);
    return true;
  }

  #afterDataSent(peer: Peer, data: boolean): void {
    if (data) peer.timers.dataSent();
    const kp = peer.keypairs.current;
    if (!kp) return;
    const clock = this.#host.clock;
    if (
      kp.sendNeedsRekey ||
      (kp.isInitiator &&
        (clock.tick ?? nowTick(clock))[0] - kp.created > REKEY_AFTER_TIME)
    ) {
      this.sendHandshakeInitiation(peer, false);
    }
  }

  /** After authenticated data arrived: the initiator rekeys before its session expires. */
  keepKeyFreshReceiving(peer: Peer): void {
    if (peer.timers.sentLastMinuteHandshake) return;
    const kp = peer.keypairs.current;
    const clock = this.#host.clock;
    if (
      kp && kp.isInitiator &&
      (clock.tick ?? nowTick(clock))[0] - kp.created > REKEY_ON_RECEIVE_AGE
    ) {
      peer.timers.sentLastMinuteHandshake = true;
      this.sendHandshakeInitiation(peer, false);
    }
  }

  /** Starts a handshake, at most one per REKEY_TIMEOUT. */
  sendHandshakeInitiation(peer: Peer, isRetry: boolean): void {
    if (!isRetry) peer.timers.handshakeAttempts = 0;
    const host = this.#host;
    const hs = peer.handshake;
    const now = host.clock.now();
    if (now - hs.lastSentHandshake < REKEY_TIMEOUT) return;
    hs.lastSentHandshake = now;
    const msg = new Uint8Array(MESSAGE_INITIATION_SIZE);
    host.indexTable.delete(hs.localIndex);
    const index = host.indexTable.insert({ peer, keypair: null });
    const ok = createInitiation(msg, hs, host.identity, index, {
      rng: host.rng,
      now,
      wall: host.clock.wall(),
    });
    if (!ok) {
      host.indexTable.delete(index);
      hs.clear();
      host.log.error(
        `${peer} - Failed to create initiation message: invalid key or no private key`,
      );
      return;
    }
    peer.verbose("Sending handshake initiation");
    peer.counters.initiationsSent++;
    peer.cookieGenerator.addMacs(msg);
    peer.timers.anyAuthenticatedPacketTraversal();
    peer.timers.anyAuthenticatedPacketSent();
    if (!this.sendDatagram(peer, msg)) {
      host.log.error(
        `${peer} - Failed to send handshake initiation: ${
          peer.endpoint ? "send failed" : "no known endpoint for peer"
        }`,
      );
    }
    peer.timers.handshakeInitiated();
  }

  /**
   * Answers a consumed initiation and derives the responder's session (into
   * `next`); `work` is prepareInitiation()'s when it ran on another thread.
   */
  sendHandshakeResponse(peer: Peer, work?: Uint8Array): void {
    const host = this.#host;
    const hs = peer.handshake;
    hs.lastSentHandshake = host.clock.now();
    const msg = new Uint8Array(MESSAGE_RESPONSE_SIZE);
    host.indexTable.delete(hs.localIndex);
    const index = host.indexTable.insert({ peer, keypair: null });
    if (!createResponse(msg, hs, index, { rng: host.rng }, work)) {
      host.indexTable.delete(index);
      host.log.error(`${peer} - Failed to create response message`);
      return;
    }
    peer.verbose("Sending handshake response");
    peer.counters.responsesSent++;
    peer.cookieGenerator.addMacs(msg);
    if (!peer.beginSymmetricSession()) return;
    peer.timers.sessionDerived();
    peer.timers.anyAuthenticatedPacketTraversal();
    peer.timers.anyAuthenticatedPacketSent();
    if (!this.sendDatagram(peer, msg)) {
      host.log.error(`${peer} - Failed to send handshake response`);
    }
  }
}

/**
 * Writes a transport message at `buf[off…]`: header with `kp`'s receiver
 * index and send counter, `packet`, zero padding up to `plainLength`.
 */
function writeTransport(
  buf: Uint8Array,
  off: number,
  kp: Keypair,
  packet: Uint8Array,
  plainLength: number,
): void {
  buf[off] = MESSAGE_TRANSPORT;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  writeU32(buf, off + 4, kp.remoteIndex);
  writeU32(buf, off + 8, kp.sendLo);
  writeU32(buf, off + 12, kp.sendHi);
  const text = off + MESSAGE_TRANSPORT_HEADER_SIZE;
  buf.set(packet, text);
  buf.fill(0, text + packet.length, text + plainLength);
}

const sealCounter = { lo: 0, hi: 0 };

/** Seals the transport message `msg` (header + padded plaintext + tag room) in place with `kp`. */
function sealNow(msg: Uint8Array, kp: Keypair): void {
  sealCounter.lo = readU32(msg, 8);
  sealCounter.hi = readU32(msg, 12);
  aeadSeal(
    msg.subarray(MESSAGE_TRANSPORT_HEADER_SIZE),
    kp.sendKey,
    sealCounter,
    msg.subarray(MESSAGE_TRANSPORT_HEADER_SIZE, msg.length - AEAD_TAG_SIZE),
    EMPTY,
  );
}
