// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Peer: one remote party's configuration, handshake, sessions, timers, staged
 * packets and counters (kernel `peer.c`, wireguard-go `peer.go`), and the
 * keypair rotation of a finished handshake. The peer reaches its device only
 * through {@link PeerHost}; sending lives in src/send.ts and receiving in
 * src/receive.ts, which the device wires in as the host's {@link PeerSend}.
 */
import type { Clock, Rng } from "./clock.ts";
import { MESSAGE_PADDING_MULTIPLE, REKEY_TIMEOUT } from "./constants.ts";
import type { Endpoint } from "./conn/endpoint.ts";
import type { IndexTable } from "./index_table.ts";
import type { Logger } from "./log.ts";
import { CookieGenerator } from "./noise/cookie.ts";
import { beginSession, Handshake } from "./noise/handshake.ts";
import { Keypair, Keypairs } from "./noise/keypair.ts";
import { PeerTimers, type TimerHost } from "./timers.ts";
import { keyToBase64 } from "./keys.ts";

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

/** What the receiver index table maps to: a handshake (keypair null) or a session. */
export interface IndexEntry {
  peer: Peer;
  keypair: Keypair | null;
}

/** The send path as a peer's methods and timers reach it (src/send.ts). */
export interface PeerSend {
  /** Sends or stages an IP packet read from the TUN. */
  sendPacket(peer: Peer, packet: Uint8Array): void;
  /** Sends staged packets if a session allows, else starts a handshake (no flush). */
  sendStagedPackets(peer: Peer): void;
  /** Queues a keepalive unless packets are staged, then sends staged packets (no flush). */
  sendKeepalive(peer: Peer): void;
  /** Starts a handshake, at most one per REKEY_TIMEOUT. */
  sendHandshakeInitiation(peer: Peer, isRetry: boolean): void;
  /** Answers a consumed initiation and derives the responder's session. */
  sendHandshakeResponse(peer: Peer): void;
  /** Sends one datagram to the peer's endpoint and counts it; false when it could not. */
  sendDatagram(peer: Peer, data: Uint8Array): boolean;
}

/** What a peer needs from its device. */
export interface PeerHost {
  readonly clock: Clock;
  readonly rng: Rng;
  readonly log: Logger;
  /** True while the device is up. */
  readonly isUp: boolean;
  /** True once the device is closed. */
  readonly isClosed: boolean;
  /** Receiver indices of handshakes and sessions. */
  readonly indexTable: IndexTable<IndexEntry>;
  /** The send path. */
  readonly sender: PeerSend;
  /** Deletes a keypair from the index table and wipes it (null is ignored). */
  deleteKeypair(kp: Keypair | null): void;
  /** Processes queued packets and pushes batched output to the edges. */
  flush(): void;
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
  readonly host: PeerHost;
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
  /** Packets (copies) waiting for a session, oldest first; src/send.ts owns it. */
  readonly staged: Uint8Array[] = [];
  #rxBytes = 0;
  #txBytes = 0;
  #lastHandshakeWall = 0;
  #name: string;

  /** Use `Device.newPeer`. */
  constructor(host: PeerHost, publicKey: Uint8Array) {
    this.host = host;
    this.handshake = new Handshake(publicKey);
    this.publicKey = this.handshake.remoteStatic; // a copy, kept in the handshake's block
    this.cookieGenerator = new CookieGenerator(host.clock, this.publicKey);
    this.timers = new PeerTimers(this, host.clock, host.rng);
    const b64 = keyToBase64(this.publicKey);
    this.#name = `peer(${b64.slice(0, 4)}…${b64.slice(39, 43)})`;
  }

  /** `peer(AbCd…WxYz)`, as wireguard-go names peers in logs. */
  toString(): string {
    return this.#name;
  }

  /** Logs at verbose level, prefixed with the peer's name. */
  verbose(message: string): void {
    this.host.log.verbose(`${this.#name} - ${message}`);
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
    return this.staged.length;
  }

  /** TimerHost: timers act only while the peer runs on an up device. */
  timersActive(): boolean {
    return this.#running && this.host.isUp;
  }

  /** Starts the peer (wireguard-go Peer.Start); idempotent. */
  start(): void {
    if (this.#running || this.host.isClosed) return;
    this.verbose("Starting");
    // Allow an initiation right away.
    this.handshake.lastSentHandshake = this.host.clock.now() - REKEY_TIMEOUT - 1000;
    this.timers.start();
    this.#running = true;
  }

  /** Stops the peer and wipes its sessions (wireguard-go Peer.Stop); idempotent. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.verbose("Stopping");
    this.timers.stop();
    this.zeroAndDropAll();
  }

  /** Deletes every keypair and the handshake in progress, and drops staged packets. */
  zeroAndDropAll(): void {
    const kps = this.keypairs;
    this.host.deleteKeypair(kps.previous);
    this.host.deleteKeypair(kps.current);
    this.host.deleteKeypair(kps.next);
    kps.previous = kps.current = kps.next = null;
    this.host.indexTable.delete(this.handshake.localIndex);
    this.handshake.clear();
    this.dropStagedPackets();
  }

  /** Wipes everything secret the peer holds; used when it is removed. */
  wipe(): void {
    this.zeroAndDropAll();
    this.handshake.wipe();
    this.cookieGenerator.wipe();
  }

  /** Makes the current sessions unusable for sending so a new handshake starts. */
  expireCurrentKeypairs(): void {
    this.host.indexTable.delete(this.handshake.localIndex);
    this.handshake.clear();
    this.handshake.lastSentHandshake = this.host.clock.now() - REKEY_TIMEOUT - 1000;
    this.keypairs.current?.expireSending();
    this.keypairs.next?.expireSending();
  }

  /** TimerHost: the retransmit timer gave up. */
  handshakeGaveUp(): void {
    this.counters.handshakeGiveUps++;
  }

  /** Drops all staged packets (the kernel's wg_packet_purge_staged_packets). */
  dropStagedPackets(): void {
    this.staged.length = 0;
  }

  /** TimerHost: forget the sticky source address. */
  clearEndpointSrc(): void {
    this.#endpoint?.clearSrc();
  }

  /** TimerHost: push batched output to the edges. */
  flushOutput(): void {
    this.host.flush();
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

  /** Counts bytes of a datagram handed to the bind for the peer. */
  addTxBytes(n: number): void {
    this.#txBytes += n;
  }

  /** A datagram counted by {@link addTxBytes} failed when its batch was flushed. */
  uncountTx(bytes: number): void {
    this.#txBytes -= bytes;
  }

  /** Sends one datagram to the endpoint; counts it; false when there is none or it failed. */
  sendDatagram(data: Uint8Array): boolean {
    return this.host.sender.sendDatagram(this, data);
  }

  /**
   * Sends an IP packet read from the TUN: straight away when a usable session
   * exists and nothing is queued, otherwise staged (copied, at most
   * QUEUE_STAGED_SIZE, oldest dropped first) behind a handshake.
   */
  sendPacket(packet: Uint8Array): void {
    this.host.sender.sendPacket(this, packet);
  }

  /** Sends queued packets if a session allows, else starts a handshake (wireguard-go SendStagedPackets). */
  sendStagedPackets(): void {
    this.host.sender.sendStagedPackets(this);
    this.host.flush();
  }

  /** Queues a keepalive (an empty transport message) and sends it (wireguard-go SendKeepalive). */
  sendKeepalive(): void {
    this.host.sender.sendKeepalive(this);
    this.host.flush();
  }

  /** TimerHost / public: starts a handshake, at most one per REKEY_TIMEOUT. */
  sendHandshakeInitiation(isRetry: boolean): void {
    this.host.sender.sendHandshakeInitiation(this, isRetry);
  }

  /** Answers a consumed initiation and derives the responder's session (into `next`). */
  sendHandshakeResponse(): void {
    this.host.sender.sendHandshakeResponse(this);
  }

  /**
   * Derives a session from the finished handshake and rotates keypairs
   * (wireguard-go BeginSymmetricSession): the initiator uses it at once; the
   * responder keeps it in `next` until the first data packet confirms it.
   */
  beginSymmetricSession(): boolean {
    const host = this.host;
    const hs = this.handshake;
    const isInitiator = hs.state === 4; // ResponseConsumed
    const kp = new Keypair(isInitiator, host.clock.now(), hs.localIndex, hs.remoteIndex);
    if (!beginSession(hs, kp)) {
      host.log.error(
        `${this.#name} - Failed to derive keypair: invalid state for keypair derivation`,
      );
      return false;
    }
    this.counters.sessionsDerived++;
    // The handshake's index now names the keypair.
    host.indexTable.replace(kp.localIndex, { peer: this, keypair: kp });
    hs.localIndex = 0;
    const kps = this.keypairs;
    if (isInitiator) {
      if (kps.next) {
        host.deleteKeypair(kps.previous);
        kps.previous = kps.next;
        kps.next = null;
        host.deleteKeypair(kps.current);
      } else {
        host.deleteKeypair(kps.previous);
        kps.previous = kps.current;
      }
      kps.current = kp;
    } else {
      host.deleteKeypair(kps.next);
      kps.next = kp;
      host.deleteKeypair(kps.previous);
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
    this.host.deleteKeypair(kps.previous);
    kps.previous = kps.current;
    kps.current = kp;
    kps.next = null;
    return true;
  }

  /** Records a completed handshake (timers and the UAPI last-handshake time). */
  handshakeComplete(): void {
    this.counters.handshakesCompleted++;
    this.timers.handshakeComplete();
    this.#lastHandshakeWall = this.host.clock.wall();
  }
}
