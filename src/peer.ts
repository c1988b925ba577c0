// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Peer: one remote party's configuration, handshake, sessions, timers, staged
 * packets and counters (kernel `peer.c`, wireguard-go `peer.go`), and the send
 * path (kernel `send.c`, wireguard-go `send.go`): staging, encryption with
 * padding, handshake initiation and response, keepalives and the key-freshness
 * rules of whitepaper §6.
 */
import {
  MESSAGE_INITIATION_SIZE,
  MESSAGE_PADDING_MULTIPLE,
  MESSAGE_RESPONSE_SIZE,
  QUEUE_STAGED_SIZE,
  REJECT_AFTER_TIME,
  REKEY_AFTER_TIME,
  REKEY_ON_RECEIVE_AGE,
  REKEY_TIMEOUT,
} from "./constants.ts";
import type { Endpoint } from "./conn/endpoint.ts";
import type { Device } from "./device.ts";
import { CookieGenerator } from "./noise/cookie.ts";
import { beginSession, createInitiation, createResponse, Handshake } from "./noise/handshake.ts";
import { Keypair, Keypairs } from "./noise/keypair.ts";
import { PeerTimers, type TimerHost } from "./timers.ts";
import { keyToBase64 } from "./keys.ts";

const EMPTY = new Uint8Array(0);

/**
 * Bytes of zero padding for a plaintext of `size` bytes: up to a multiple of
 * 16, never beyond the MTU (wireguard-go calculatePaddingSize).
 */
export function paddingSize(size: number, mtu: number): number {
  let last = size;
  if (mtu === 0) {
    return ((last + MESSAGE_PADDING_MULTIPLE - 1) & ~(MESSAGE_PADDING_MULTIPLE - 1)) - last;
  }
  if (last > mtu) last %= mtu;
  let padded = (last + MESSAGE_PADDING_MULTIPLE - 1) & ~(MESSAGE_PADDING_MULTIPLE - 1);
  if (padded > mtu) padded = mtu;
  return padded - last;
}

/** Per-peer event counters, for metrics. */
export interface PeerCounters {
  /** Handshake initiations sent (retries included). */
  initiationsSent: number;
  /** Handshake responses sent. */
  responsesSent: number;
  /** Handshakes completed (response consumed, or key confirmation as responder). */
  handshakesCompleted: number;
  /** Sessions (keypairs) derived: each is a rotation. */
  sessionsDerived: number;
  /** Times the timers gave up after MAX_TIMER_HANDSHAKES + 2 initiations. */
  handshakeGiveUps: number;
}

/** Peer is a remote WireGuard party. */
export class Peer implements TimerHost {
  readonly device: Device;
  readonly publicKey: Uint8Array;
  readonly handshake: Handshake;
  readonly keypairs: Keypairs = new Keypairs();
  readonly cookieGenerator: CookieGenerator;
  readonly timers: PeerTimers;
  /** Persistent keepalive interval in seconds, 0 = off. */
  persistentKeepaliveInterval = 0;
  /** Counters for metrics (never reset while the peer exists). */
  readonly counters: PeerCounters = {
    initiationsSent: 0,
    responsesSent: 0,
    handshakesCompleted: 0,
    sessionsDerived: 0,
    handshakeGiveUps: 0,
  };
  #endpoint: Endpoint | null = null;
  #running = false;
  #staged: Uint8Array[] = [];
  #rxBytes = 0;
  #txBytes = 0;
  #lastHandshakeWall = 0;
  #name: string;

  /** Use {@link Device.newPeer}. */
  constructor(device: Device, publicKey: Uint8Array) {
    this.device = device;
    this.handshake = new Handshake(publicKey);
    this.publicKey = this.handshake.remoteStatic; // a copy, kept in the handshake's block
    this.cookieGenerator = new CookieGenerator(device.clock, this.publicKey);
    this.timers = new PeerTimers(this, device.clock, device.rng);
    const b64 = keyToBase64(this.publicKey);
    this.#name = `peer(${b64.slice(0, 4)}…${b64.slice(39, 43)})`;
  }

  /** `peer(AbCd…WxYz)`, as wireguard-go names peers in logs. */
  toString(): string {
    return this.#name;
  }

  /** Logs at verbose level, prefixed with the peer's name. */
  verbose(message: string): void {
    this.device.log.verbose(`${this.#name} - ${message}`);
  }

  /** The preshared key (32 zero bytes when none). */
  get presharedKey(): Uint8Array {
    return this.handshake.presharedKey.slice();
  }

  /** Sets the preshared key; it is used from the next handshake on. */
  setPresharedKey(key: Uint8Array): void {
    this.handshake.presharedKey.set(key);
  }

  /** The peer's current endpoint, or null when unknown. */
  get endpoint(): Endpoint | null {
    return this.#endpoint;
  }

  /** Sets the endpoint (a copy is kept). */
  setEndpoint(endpoint: Endpoint): void {
    this.#endpoint = endpoint.clone();
  }

  /** Sets the persistent keepalive interval (seconds, 0 = off). */
  setPersistentKeepaliveInterval(seconds: number): void {
    this.persistentKeepaliveInterval = seconds;
  }

  /** Bytes received from the peer (whole messages). */
  get rxBytes(): number {
    return this.#rxBytes;
  }

  /** Bytes sent to the peer (whole UDP payloads). */
  get txBytes(): number {
    return this.#txBytes;
  }

  /** Last completed handshake as Unix seconds and nanoseconds; {0, 0} when none. */
  lastHandshakeTime(): { sec: number; nsec: number } {
    const ms = this.#lastHandshakeWall;
    if (ms === 0) return { sec: 0, nsec: 0 };
    const sec = Math.floor(ms / 1000);
    return { sec, nsec: Math.round((ms - sec * 1000) * 1e6) };
  }

  /** True between {@link start} and {@link stop}. */
  get isRunning(): boolean {
    return this.#running;
  }

  /** Number of packets waiting for a session. */
  get stagedCount(): number {
    return this.#staged.length;
  }

  /** TimerHost: timers act only while the peer runs on an up device. */
  timersActive(): boolean {
    return this.#running && this.device.isUp;
  }

  /** Starts the peer (wireguard-go Peer.Start); idempotent. */
  start(): void {
    if (this.#running || this.device.isClosed) return;
    this.verbose("Starting");
    // Allow an initiation right away.
    this.handshake.lastSentHandshake = this.device.clock.now() - REKEY_TIMEOUT - 1000;
    this.timers.start();
    this.#running = true;
  }

  /** Stops the peer and wipes its sessions (wireguard-go Peer.Stop); idempotent. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.verbose("Stopping");
    this.timers.stop();
    this.zeroAndFlushAll();
  }

  /** Deletes every keypair and the handshake in progress, and drops staged packets. */
  zeroAndFlushAll(): void {
    const kps = this.keypairs;
    this.device.deleteKeypair(kps.previous);
    this.device.deleteKeypair(kps.current);
    this.device.deleteKeypair(kps.next);
    kps.previous = kps.current = kps.next = null;
    this.device.indexTable.delete(this.handshake.localIndex);
    this.handshake.clear();
    this.flushStagedPackets();
  }

  /** Wipes everything secret the peer holds; used when it is removed. */
  wipe(): void {
    this.zeroAndFlushAll();
    this.handshake.wipe();
    this.cookieGenerator.wipe();
  }

  /** Makes the current sessions unusable for sending so a new handshake starts. */
  expireCurrentKeypairs(): void {
    this.device.indexTable.delete(this.handshake.localIndex);
    this.handshake.clear();
    this.handshake.lastSentHandshake = this.device.clock.now() - REKEY_TIMEOUT - 1000;
    this.keypairs.current?.expireSending();
    this.keypairs.next?.expireSending();
  }

  /** TimerHost: the retransmit timer gave up. */
  handshakeGaveUp(): void {
    this.counters.handshakeGiveUps++;
  }

  /** Drops all staged packets. */
  flushStagedPackets(): void {
    this.#staged.length = 0;
  }

  /** TimerHost: forget the sticky source address. */
  clearEndpointSrc(): void {
    this.#endpoint?.clearSrc();
  }

  /** TimerHost: push batched output to the edges. */
  flushOutput(): void {
    this.device.flush();
  }

  /** Roaming: take the source of an authenticated packet as the endpoint. */
  setEndpointFromPacket(from: Endpoint): void {
    const ep = this.#endpoint;
    if (ep && ep.equals(from)) {
      if (from.srcAddress) {
        if (!ep.srcAddress || ep.srcAddress.length !== from.srcAddress.length) {
          ep.srcAddress = from.srcAddress.slice();
        } else ep.srcAddress.set(from.srcAddress);
      } else ep.srcAddress = null;
      ep.srcIfindex = from.srcIfindex;
      return;
    }
    this.#endpoint = from.clone();
  }

  /** Counts bytes of an authenticated message received from the peer. */
  addRxBytes(n: number): void {
    this.#rxBytes += n;
  }

  /** Sends one datagram to the endpoint; counts it; false when there is none or it failed. */
  sendBuffer(data: Uint8Array): boolean {
    const ep = this.#endpoint;
    if (!ep) return false;
    if (!this.device.bind.send(data, ep, this)) {
      this.device.stats.sendErrors++;
      return false;
    }
    this.#txBytes += data.length;
    return true;
  }

  /** A datagram counted by {@link sendBuffer} failed when its batch was flushed. */
  uncountTx(bytes: number): void {
    this.#txBytes -= bytes;
  }

  /**
   * Sends an IP packet read from the TUN: straight away when a usable session
   * exists and nothing is queued, otherwise staged (copied, at most
   * QUEUE_STAGED_SIZE, oldest dropped first) behind a handshake.
   */
  sendPacket(packet: Uint8Array): void {
    if (this.#staged.length === 0) {
      const kp = this.#usableKeypair();
      if (kp) {
        this.#encryptAndSend(kp, packet);
        this.#afterDataSent(packet.length > 0);
        return;
      }
    }
    this.#stage(packet.slice());
    this.#sendStaged();
  }

  #stage(packet: Uint8Array): void {
    if (this.#staged.length >= QUEUE_STAGED_SIZE) {
      this.#staged.shift();
      this.device.stats.stagedDropped++;
    }
    this.#staged.push(packet);
  }

  #usableKeypair(): Keypair | null {
    const kp = this.keypairs.current;
    if (!kp || kp.sendExhausted) return null;
    if (this.device.clock.now() - kp.created >= REJECT_AFTER_TIME) return null;
    return kp;
  }

  /** Sends queued packets if a session allows, else starts a handshake (wireguard-go SendStagedPackets). */
  sendStagedPackets(): void {
    this.#sendStaged();
    this.device.flush();
  }

  #sendStaged(): void {
    if (this.#staged.length === 0 || !this.device.isUp) return;
    const kp = this.#usableKeypair();
    if (!kp) {
      this.#sendHandshakeInitiation(false);
      return;
    }
    let data = false;
    while (this.#staged.length > 0) {
      if (kp.sendExhausted) {
        this.#sendHandshakeInitiation(false);
        break;
      }
      const packet = this.#staged.shift()!;
      if (packet.length > 0) data = true;
      this.#encryptAndSend(kp, packet);
    }
    this.#afterDataSent(data);
  }

  /** Queues a keepalive (an empty transport message) and sends it (wireguard-go SendKeepalive). */
  sendKeepalive(): void {
    this.#sendKeepalive();
    this.device.flush();
  }

  #sendKeepalive(): void {
    if (this.#staged.length === 0 && this.#running) {
      this.verbose("Sending keepalive packet");
      this.#stage(EMPTY);
    }
    this.#sendStaged();
  }

  #encryptAndSend(kp: Keypair, packet: Uint8Array): void {
    const plainLength = packet.length + paddingSize(packet.length, this.device.tun.mtu);
    this.device.queueSeal(this, kp, packet, plainLength);
    kp.nextSend();
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
  }

  /** Sends a sealed transport message (from the device's batch). */
  sendSealed(msg: Uint8Array): void {
    if (!this.sendBuffer(msg) && !this.#endpoint) {
      this.device.log.error(
        `${this.#name} - Failed to send data packets: no known endpoint for peer`,
      );
    }
  }

  #afterDataSent(data: boolean): void {
    if (data) this.timers.dataSent();
    this.#keepKeyFreshSending();
  }

  #keepKeyFreshSending(): void {
    const kp = this.keypairs.current;
    if (!kp) return;
    if (
      kp.sendNeedsRekey ||
      (kp.isInitiator && this.device.clock.now() - kp.created > REKEY_AFTER_TIME)
    ) {
      this.#sendHandshakeInitiation(false);
    }
  }

  /** After authenticated data arrived: the initiator rekeys before its session expires. */
  keepKeyFreshReceiving(): void {
    if (this.timers.sentLastMinuteHandshake) return;
    const kp = this.keypairs.current;
    if (kp && kp.isInitiator && this.device.clock.now() - kp.created > REKEY_ON_RECEIVE_AGE) {
      this.timers.sentLastMinuteHandshake = true;
      this.#sendHandshakeInitiation(false);
    }
  }

  /** TimerHost / public: starts a handshake, at most one per REKEY_TIMEOUT. */
  sendHandshakeInitiation(isRetry: boolean): void {
    this.#sendHandshakeInitiation(isRetry);
  }

  #sendHandshakeInitiation(isRetry: boolean): void {
    if (!isRetry) this.timers.handshakeAttempts = 0;
    const device = this.device;
    const now = device.clock.now();
    if (now - this.handshake.lastSentHandshake < REKEY_TIMEOUT) return;
    this.handshake.lastSentHandshake = now;
    const msg = new Uint8Array(MESSAGE_INITIATION_SIZE);
    device.indexTable.delete(this.handshake.localIndex);
    const index = device.indexTable.insert({ peer: this, keypair: null });
    const ok = createInitiation(msg, this.handshake, device.identity, index, {
      rng: device.rng,
      now,
      wall: device.clock.wall(),
    });
    if (!ok) {
      device.indexTable.delete(index);
      this.handshake.clear();
      device.log.error(
        `${this.#name} - Failed to create initiation message: invalid key or no private key`,
      );
      return;
    }
    this.verbose("Sending handshake initiation");
    this.counters.initiationsSent++;
    this.cookieGenerator.addMacs(msg);
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    if (!this.sendBuffer(msg)) {
      device.log.error(
        `${this.#name} - Failed to send handshake initiation: ${
          this.#endpoint ? "send failed" : "no known endpoint for peer"
        }`,
      );
    }
    this.timers.handshakeInitiated();
  }

  /** Answers a consumed initiation and derives the responder's session (into `next`). */
  sendHandshakeResponse(): void {
    const device = this.device;
    this.handshake.lastSentHandshake = device.clock.now();
    const msg = new Uint8Array(MESSAGE_RESPONSE_SIZE);
    device.indexTable.delete(this.handshake.localIndex);
    const index = device.indexTable.insert({ peer: this, keypair: null });
    if (!createResponse(msg, this.handshake, index, { rng: device.rng })) {
      device.indexTable.delete(index);
      device.log.error(`${this.#name} - Failed to create response message`);
      return;
    }
    this.verbose("Sending handshake response");
    this.counters.responsesSent++;
    this.cookieGenerator.addMacs(msg);
    if (!this.beginSymmetricSession()) return;
    this.timers.sessionDerived();
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    if (!this.sendBuffer(msg)) {
      device.log.error(`${this.#name} - Failed to send handshake response`);
    }
  }

  /**
   * Derives a session from the finished handshake and rotates keypairs
   * (wireguard-go BeginSymmetricSession): the initiator uses it at once; the
   * responder keeps it in `next` until the first data packet confirms it.
   */
  beginSymmetricSession(): boolean {
    const device = this.device;
    const hs = this.handshake;
    const isInitiator = hs.state === 4; // ResponseConsumed
    const kp = new Keypair(isInitiator, device.clock.now(), hs.localIndex, hs.remoteIndex);
    if (!beginSession(hs, kp)) {
      device.log.error(
        `${this.#name} - Failed to derive keypair: invalid state for keypair derivation`,
      );
      return false;
    }
    this.counters.sessionsDerived++;
    // The handshake's index now names the keypair.
    device.indexTable.replace(kp.localIndex, { peer: this, keypair: kp });
    hs.localIndex = 0;
    const kps = this.keypairs;
    if (isInitiator) {
      if (kps.next) {
        device.deleteKeypair(kps.previous);
        kps.previous = kps.next;
        kps.next = null;
        device.deleteKeypair(kps.current);
      } else {
        device.deleteKeypair(kps.previous);
        kps.previous = kps.current;
      }
      kps.current = kp;
    } else {
      device.deleteKeypair(kps.next);
      kps.next = kp;
      device.deleteKeypair(kps.previous);
      kps.previous = null;
    }
    return true;
  }

  /**
   * Called for every authenticated transport packet: promotes `next` when it
   * is the keypair used (key confirmation). Returns true when it did.
   */
  receivedWithKeypair(kp: Keypair): boolean {
    const kps = this.keypairs;
    if (kps.next !== kp) return false;
    this.device.deleteKeypair(kps.previous);
    kps.previous = kps.current;
    kps.current = kp;
    kps.next = null;
    return true;
  }

  /** Records a completed handshake (timers and the UAPI last-handshake time). */
  handshakeComplete(): void {
    this.counters.handshakesCompleted++;
    this.timers.handshakeComplete();
    this.#lastHandshakeWall = this.device.clock.wall();
  }
}
