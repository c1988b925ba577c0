// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Device: one WireGuard interface (kernel `device.c` + `receive.c`,
 * wireguard-go `device.go` + `receive.go`). It owns the static identity, the
 * peers (in insertion order), the allowed-IPs trie, the receiver index table,
 * the cookie checker and rate limiter, and the receive path. It talks to the
 * world only through the injected {@link Tun} and {@link Bind} edges, clock
 * and RNG, so two devices can run against each other in memory.
 *
 * Threading model: everything runs on one event loop. Entry points
 * {@link Device.handleTunPacket} and {@link Device.handleDatagram} do not flush
 * the edges (the I/O loop flushes after a batch); timer callbacks, handshake
 * processing and control actions flush themselves.
 */
import { AllowedIps } from "./allowedips.ts";
import { type Clock, realClock, type Rng, systemRng } from "./clock.ts";
import { type Bind, BindError } from "./conn/bind.ts";
import type { Endpoint } from "./conn/endpoint.ts";
import {
  AEAD_TAG_SIZE,
  MAX_MESSAGE_SIZE,
  MAX_PEERS,
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
import { aeadSeal, timingSafeEqual } from "./crypto.ts";
import {
  type CryptoPool,
  InlineCryptoPool,
  JOB_OPEN,
  JOB_SEAL,
  JobBatch,
  MAX_JOBS,
} from "./crypto_pool.ts";
import { Endpoint as EndpointClass } from "./conn/endpoint.ts";
import { IndexTable } from "./index_table.ts";
import { keyToHex } from "./keys.ts";
import { type Logger, silentLogger } from "./log.ts";
import { messageType, readU32, writeType, writeU32 } from "./messages.ts";
import { CookieChecker } from "./noise/cookie.ts";
import {
  consumeInitiation,
  consumeResponse,
  handshakeSender,
  HandshakeState,
  responseReceiver,
  StaticIdentity,
} from "./noise/handshake.ts";
import type { Keypair } from "./noise/keypair.ts";
import { Peer } from "./peer.ts";
import { Ratelimiter } from "./ratelimiter.ts";
import type { Tun } from "./tun/tun.ts";

export { Peer } from "./peer.ts";

/** What the receiver index table maps to: a handshake (keypair null) or a session. */
export interface IndexEntry {
  peer: Peer;
  keypair: Keypair | null;
}

/** Options for {@link Device}. */
export interface DeviceOptions {
  /** Where decrypted packets go; its `mtu` drives padding. */
  tun: Tun;
  /** The UDP sockets. */
  bind: Bind;
  /** Time source and scheduler (default: the system clock). */
  clock?: Clock;
  /** Randomness (default: the system CSPRNG). */
  rng?: Rng;
  /** Logger (default: silent). */
  logger?: Logger;
  /** Interface name, for logs. */
  name?: string;
  /** Where batches of seal/open run (default: inline on this thread). */
  cryptoPool?: CryptoPool;
  /**
   * When true (default), packets queued by handleTunPacket/handleDatagram are
   * processed on the next clock turn if nobody calls {@link Device.flush}
   * first. An I/O loop that always flushes after a batch turns it off.
   */
  autoFlush?: boolean;
}

/** Counters of dropped and failed packets, by reason. */
export interface DeviceStats {
  /** Datagrams of unknown type or wrong size. */
  invalidMessages: number;
  /** Handshake messages whose mac1 was wrong. */
  invalidMac: number;
  /** Handshake messages dropped because the queue was full. */
  handshakeQueueFull: number;
  /** Handshake messages that did not authenticate or were replays/floods. */
  handshakeRejected: number;
  /** Handshakes refused by the per-source rate limiter under load. */
  ratelimited: number;
  /** Cookie replies sent under load. */
  cookieRepliesSent: number;
  /** Transport messages for an unknown receiver index. */
  unknownIndex: number;
  /** Transport messages on an expired session. */
  expiredKeypair: number;
  /** Transport messages that failed to decrypt. */
  decryptFailed: number;
  /** Transport messages rejected by the replay window. */
  replayed: number;
  /** Decrypted packets that were not valid IP packets. */
  invalidPackets: number;
  /** Decrypted packets whose source is not in the sender's allowed IPs. */
  badSource: number;
  /** TUN packets with no peer for their destination. */
  noRoute: number;
  /** Staged packets dropped because the queue was full. */
  stagedDropped: number;
  /** Datagrams the bind refused to send. */
  sendErrors: number;
}

function newStats(): DeviceStats {
  return {
    invalidMessages: 0,
    invalidMac: 0,
    handshakeQueueFull: 0,
    handshakeRejected: 0,
    ratelimited: 0,
    cookieRepliesSent: 0,
    unknownIndex: 0,
    expiredKeypair: 0,
    decryptFailed: 0,
    replayed: 0,
    invalidPackets: 0,
    badSource: 0,
    noRoute: 0,
    stagedDropped: 0,
    sendErrors: 0,
  };
}

const MESSAGE_TRANSPORT_OVERHEAD = MESSAGE_TRANSPORT_HEADER_SIZE + AEAD_TAG_SIZE;
/** Most handshakes (DH work) done per turn before yielding to traffic. */
const HANDSHAKES_PER_TURN = 64;
/** Most time (ms on the device clock) spent on handshakes per turn. */
const HANDSHAKE_TURN_BUDGET_MS = 2;

/** Device is one WireGuard interface. */
export class Device {
  readonly clock: Clock;
  readonly rng: Rng;
  readonly log: Logger;
  readonly name: string;
  readonly tun: Tun;
  readonly bind: Bind;
  readonly identity: StaticIdentity = new StaticIdentity();
  readonly allowedIps: AllowedIps<Peer> = new AllowedIps<Peer>();
  readonly indexTable: IndexTable<IndexEntry>;
  readonly cookieChecker: CookieChecker;
  readonly ratelimiter: Ratelimiter;
  readonly stats: DeviceStats = newStats();
  #peers = new Map<string, Peer>();
  #listenPort = 0;
  #fwmark = 0;
  #up = false;
  #closed = false;
  #handshakeQueue: { data: Uint8Array; from: Endpoint }[] = [];
  #handshakeHead = 0;
  #handshakeScheduled = false;
  #underLoadUntil = -Infinity;
  #sendScratch = new Uint8Array(MAX_MESSAGE_SIZE + 64);
  #cookieScratch = new Uint8Array(MESSAGE_COOKIE_REPLY_SIZE);
  #receive = (data: Uint8Array, from: Endpoint) => this.handleDatagram(data, from);
  #sendError = (owner: object, bytes: number) => {
    this.stats.sendErrors++;
    if (owner instanceof Peer) owner.uncountTx(bytes);
  };
  #pool: CryptoPool;
  #batchStore: JobBatch | null = null;
  #jobPeer: (Peer | null)[] = new Array(MAX_JOBS).fill(null);
  #jobKeypair: (Keypair | null)[] = new Array(MAX_JOBS).fill(null);
  #jobFrom: Endpoint[] = [];
  #committing = false;
  #processingHandshakes = false;
  #autoFlush: boolean;
  #flushScheduled = false;

  constructor(opts: DeviceOptions) {
    this.tun = opts.tun;
    this.bind = opts.bind;
    this.clock = opts.clock ?? realClock;
    this.rng = opts.rng ?? systemRng;
    this.log = opts.logger ?? silentLogger;
    this.name = opts.name ?? "wg";
    this.indexTable = new IndexTable<IndexEntry>(this.rng);
    this.cookieChecker = new CookieChecker(this.clock, this.rng);
    this.ratelimiter = new Ratelimiter(this.clock);
    this.#pool = opts.cryptoPool ?? new InlineCryptoPool();
    this.#autoFlush = opts.autoFlush ?? true;
  }

  // ---- identity ----

  /** Our private key (a clamped copy), or null. */
  get privateKey(): Uint8Array | null {
    return this.identity.hasIdentity ? this.identity.privateKey.slice() : null;
  }

  /** Our public key, or null. */
  get publicKey(): Uint8Array | null {
    return this.identity.hasIdentity ? this.identity.publicKey.slice() : null;
  }

  /**
   * Sets the private key (null or all zeros: none), as wireguard-go
   * SetPrivateKey: the same key again changes nothing; a peer with the new
   * public key is removed; every peer's static DH is recomputed and its
   * sessions are expired so that new handshakes start.
   */
  setPrivateKey(key: Uint8Array | null): void {
    const next = new StaticIdentity();
    next.set(key);
    if (
      next.hasIdentity === this.identity.hasIdentity &&
      (!next.hasIdentity || timingSafeEqual(next.privateKey, this.identity.privateKey))
    ) {
      next.clear();
      return;
    }
    if (next.hasIdentity) {
      const own = this.lookupPeer(next.publicKey);
      if (own) this.removePeer(own);
    }
    this.identity.set(next.hasIdentity ? next.privateKey : null);
    next.clear();
    this.cookieChecker.init(this.identity.hasIdentity ? this.identity.publicKey : null);
    for (const peer of this.#peers.values()) {
      peer.handshake.precompute(this.identity);
      peer.expireCurrentKeypairs();
    }
  }

  // ---- network configuration ----

  /** The bound port while up; the configured one otherwise. */
  get listenPort(): number {
    return this.#listenPort;
  }

  /** Sets the port and rebinds if up (wireguard-go BindUpdate). Throws BindError(−98). */
  setListenPort(port: number): void {
    this.#listenPort = port;
    this.#bindUpdate();
  }

  /** The firewall mark of our sockets (0 = none). */
  get fwmark(): number {
    return this.#fwmark;
  }

  /** Sets SO_MARK on our sockets (wireguard-go BindSetMark). Throws BindError(−98). */
  setFwmark(mark: number): void {
    if (mark === this.#fwmark) return;
    this.#fwmark = mark;
    if (this.#up) this.bind.setMark(mark);
    for (const peer of this.#peers.values()) peer.clearEndpointSrc();
  }

  #bindUpdate(): void {
    this.bind.close();
    if (!this.#up) return;
    try {
      this.#listenPort = this.bind.open(this.#listenPort, this.#receive, this.#sendError);
    } catch (e) {
      this.#listenPort = 0;
      throw e;
    }
    if (this.#fwmark !== 0) this.bind.setMark(this.#fwmark);
    for (const peer of this.#peers.values()) peer.clearEndpointSrc();
    this.log.verbose("UDP bind has been updated");
  }

  // ---- peers ----

  /** Peers in insertion order. */
  peers(): IterableIterator<Peer> {
    return this.#peers.values();
  }

  /** Number of peers. */
  get peerCount(): number {
    return this.#peers.size;
  }

  /** The peer with this public key. */
  lookupPeer(publicKey: Uint8Array): Peer | undefined {
    return this.#peers.get(keyToHex(publicKey));
  }

  /** Adds a peer (wireguard-go NewPeer). Throws RangeError at MAX_PEERS or for a duplicate. */
  newPeer(publicKey: Uint8Array): Peer {
    if (this.#closed) throw new RangeError("Cannot add a peer: device closed");
    if (this.#peers.size >= MAX_PEERS) throw new RangeError("Cannot add a peer: too many peers");
    const key = keyToHex(publicKey);
    if (this.#peers.has(key)) throw new RangeError("Cannot add a peer: adding existing peer");
    const peer = new Peer(this, publicKey);
    peer.handshake.precompute(this.identity);
    this.#peers.set(key, peer);
    this.log.verbose(`${peer} - UAPI: Created`);
    return peer;
  }

  /** Removes a peer: its allowed IPs go, it stops, and its keys are wiped. */
  removePeer(peer: Peer): void {
    const key = keyToHex(peer.publicKey);
    if (this.#peers.get(key) !== peer) return;
    this.allowedIps.removeByValue(peer);
    this.#dropJobs(peer);
    peer.stop();
    peer.wipe();
    this.#peers.delete(key);
    this.log.verbose(`${peer} - UAPI: Removing`);
  }

  /** Removes every peer. */
  removeAllPeers(): void {
    for (const peer of [...this.#peers.values()]) this.removePeer(peer);
    this.allowedIps.clear();
  }

  /** Deletes a keypair from the index table and wipes it (null is ignored). */
  deleteKeypair(kp: Keypair | null): void {
    if (!kp) return;
    if (kp.localIndex !== 0) this.indexTable.delete(kp.localIndex);
    kp.wipe();
  }

  // ---- lifecycle ----

  /** True while the interface is up. */
  get isUp(): boolean {
    return this.#up;
  }

  /** True after {@link close}. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** Brings the device up: opens the sockets and starts the peers. Throws BindError. */
  up(): void {
    if (this.#up || this.#closed) return;
    this.#up = true;
    try {
      this.#bindUpdate();
    } catch (e) {
      this.#up = false;
      this.log.error(`Unable to update bind: ${(e as Error).message}`);
      throw e;
    }
    for (const peer of this.#peers.values()) {
      peer.start();
      if (peer.persistentKeepaliveInterval > 0) peer.sendKeepalive();
    }
    this.log.verbose("Interface state was Down, requested Up, now Up");
    this.flush();
  }

  /** Takes the device down: closes the sockets and stops the peers (keys wiped). */
  down(): void {
    if (!this.#up) return;
    this.#up = false;
    this.bind.close();
    // Packets queued for the next batch die with the sessions they were for.
    this.#dropJobs();
    for (const peer of this.#peers.values()) peer.stop();
    this.#handshakeQueue.length = 0;
    this.#handshakeHead = 0;
    this.log.verbose("Interface state was Up, requested Down, now Down");
  }

  /** Closes the device for good, wiping every key. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.down();
    this.#dropJobs();
    this.#pool.close();
    this.removeAllPeers();
    this.#closed = true;
    this.identity.clear();
    this.cookieChecker.wipe();
    this.log.verbose("Device closed");
  }

  /** The TUN's MTU changed; padding follows `tun.mtu` from the next packet on. */
  onMtuChange(): void {
    this.log.verbose(`MTU updated: ${this.tun.mtu}`);
  }

  /**
   * Processes every queued packet (crypto in one batch, then delivery in
   * queue order) and pushes batched output on both edges.
   */
  flush(): void {
    if (!this.#committing && this.handshakeQueueLength > 0) this.#runHandshakes();
    this.#flushOutput();
  }

  #flushOutput(): void {
    if (!this.#committing) {
      while (this.queuedJobs > 0) this.#runBatch();
    }
    this.bind.flush?.();
    this.tun.flush?.();
  }

  /** Packets queued for the next batch. */
  get queuedJobs(): number {
    return this.#batchStore?.count ?? 0;
  }

  /** The batch arena (4 MiB), made when the first packet is queued. */
  get #batch(): JobBatch {
    if (this.#batchStore === null) {
      this.#batchStore = new JobBatch({ shared: this.#pool.shared });
      this.#pool.attach?.(this.#batchStore);
    }
    return this.#batchStore;
  }

  /** Forgets queued packets (of `peer` only, when given) without sending them. */
  #dropJobs(peer?: Peer): void {
    const batch = this.#batchStore;
    if (batch === null) return;
    if (peer === undefined) {
      this.#jobPeer.fill(null);
      this.#jobKeypair.fill(null);
      batch.reset();
      return;
    }
    for (let i = 0; i < batch.count; i++) {
      if (this.#jobPeer[i] === peer) {
        this.#jobPeer[i] = null;
        this.#jobKeypair[i] = null;
      }
    }
  }

  #scheduleFlush(): void {
    if (!this.#autoFlush || this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.clock.after(0, () => {
      this.#flushScheduled = false;
      this.flush();
    });
  }

  /**
   * Queues `packet` (an inner IP packet, or empty for a keepalive) to be sealed
   * with `kp` for `peer`: header, padding to 16 (clamped to the MTU), and the
   * next counter are fixed now; encryption and sending happen in the batch.
   */
  queueSeal(peer: Peer, kp: Keypair, packet: Uint8Array, plainLength: number): void {
    const total = MESSAGE_TRANSPORT_OVERHEAD + plainLength;
    const batch = this.#batch;
    let i = this.#committing ? -1 : batch.add(JOB_SEAL, total, kp.sendKey, kp.sendLo, kp.sendHi);
    if (i < 0 && !this.#committing) {
      this.#runBatch();
      i = batch.add(JOB_SEAL, total, kp.sendKey, kp.sendLo, kp.sendHi);
    }
    const out = i < 0 ? this.#sendScratch.subarray(0, total) : batch.data.subarray(
      batch.offsetOf(i),
      batch.offsetOf(i) + total,
    );
    writeType(out, MESSAGE_TRANSPORT);
    writeU32(out, 4, kp.remoteIndex);
    writeU32(out, 8, kp.sendLo);
    writeU32(out, 12, kp.sendHi);
    out.set(packet, MESSAGE_TRANSPORT_HEADER_SIZE);
    out.fill(
      0,
      MESSAGE_TRANSPORT_HEADER_SIZE + packet.length,
      MESSAGE_TRANSPORT_HEADER_SIZE + plainLength,
    );
    if (i < 0) {
      // While a batch is being delivered (e.g. staged packets released by a
      // key confirmation), seal and send at once.
      sealNow(out, kp);
      peer.sendSealed(out);
      return;
    }
    this.#jobPeer[i] = peer;
    this.#scheduleFlush();
  }

  #runBatch(): void {
    const batch = this.#batch;
    const n = batch.count;
    if (n === 0) return;
    this.#pool.run(batch);
    this.#committing = true;
    try {
      for (let i = 0; i < n; i++) {
        const peer = this.#jobPeer[i];
        if (peer === null) continue; // dropped: its peer was removed
        const off = batch.offsetOf(i);
        const len = batch.lengthOf(i);
        if (this.#jobKeypair[i] === null) {
          peer.sendSealed(batch.data.subarray(off, off + len));
        } else {
          this.#commitOpen(peer, this.#jobKeypair[i]!, i, off, len);
        }
        this.#jobPeer[i] = null;
        this.#jobKeypair[i] = null;
      }
    } finally {
      this.#committing = false;
      batch.reset();
    }
  }

  // ---- send path entry ----

  /** Routes an IP packet read from the TUN to its peer by destination (crypto-routing). */
  handleTunPacket(packet: Uint8Array): void {
    if (!this.#up) return;
    const version = packet.length > 0 ? packet[0] >> 4 : 0;
    let peer: Peer | undefined;
    if (version === 4 && packet.length >= 20) peer = this.allowedIps.lookup(4, packet, 16);
    else if (version === 6 && packet.length >= 40) peer = this.allowedIps.lookup(6, packet, 24);
    else {
      this.stats.invalidPackets++;
      return;
    }
    if (!peer || !peer.isRunning) {
      this.stats.noRoute++;
      return;
    }
    if (packet.length > MAX_MESSAGE_SIZE - MESSAGE_TRANSPORT_HEADER_SIZE - AEAD_TAG_SIZE - 16) {
      this.stats.invalidPackets++;
      return;
    }
    peer.sendPacket(packet);
  }

  // ---- receive path ----

  /** Handles one UDP payload from `from`. Never throws on hostile input. */
  handleDatagram(data: Uint8Array, from: Endpoint): void {
    if (!this.#up) return;
    const type = messageType(data);
    if (type === MESSAGE_TRANSPORT) {
      this.#receiveTransport(data, from);
      return;
    }
    if (type === 0) {
      this.stats.invalidMessages++;
      return;
    }
    if (type !== MESSAGE_COOKIE_REPLY && !this.cookieChecker.checkMac1(data)) {
      this.stats.invalidMac++;
      return;
    }
    // Cookie replies carry no MAC of ours: queue only those answering a
    // handshake we have in flight, so that junk cannot fill the queue and put
    // us under load.
    if (type === MESSAGE_COOKIE_REPLY && !this.indexTable.lookup(readU32(data, 4))) {
      this.stats.unknownIndex++;
      return;
    }
    if (this.#handshakeQueue.length - this.#handshakeHead >= QUEUE_HANDSHAKE_SIZE) {
      this.stats.handshakeQueueFull++;
      return;
    }
    this.#handshakeQueue.push({ data: data.slice(), from: from.clone() });
    this.#scheduleHandshakes();
  }

  #scheduleHandshakes(): void {
    if (this.#handshakeScheduled) return;
    this.#handshakeScheduled = true;
    this.clock.after(0, () => {
      this.#handshakeScheduled = false;
      this.processHandshakes();
    });
  }

  /** Handshake messages waiting to be processed. */
  get handshakeQueueLength(): number {
    return this.#handshakeQueue.length - this.#handshakeHead;
  }

  /**
   * True when the handshake queue is deep, and for UNDER_LOAD_AFTER_TIME
   * afterwards (wireguard-go IsUnderLoad).
   */
  isUnderLoad(): boolean {
    const now = this.clock.now();
    const depth = this.handshakeQueueLength;
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
   * or HANDSHAKES_PER_TURN DH computations, then flushes the output. What is
   * left waits for the next turn, so data keeps flowing during a flood. The
   * I/O loop gets here through {@link flush} right after reading a batch, so a
   * handshake answer does not wait for a timer turn.
   */
  processHandshakes(): void {
    this.#runHandshakes();
    this.#flushOutput();
  }

  #runHandshakes(): void {
    if (this.#processingHandshakes) return;
    this.#processingHandshakes = true;
    try {
      let work = 0;
      const q = this.#handshakeQueue;
      const deadline = this.clock.now() + HANDSHAKE_TURN_BUDGET_MS;
      while (this.#handshakeHead < q.length && work < HANDSHAKES_PER_TURN) {
        if (!this.#up) break;
        const underLoad = this.isUnderLoad();
        const item = q[this.#handshakeHead];
        q[this.#handshakeHead++] = undefined as unknown as { data: Uint8Array; from: Endpoint };
        if (this.#handleHandshake(item.data, item.from, underLoad)) {
          work++;
          if (this.clock.now() > deadline) break;
        }
      }
      if (this.#handshakeHead >= q.length) {
        q.length = 0;
        this.#handshakeHead = 0;
      } else if (this.#handshakeHead > 256) {
        q.splice(0, this.#handshakeHead);
        this.#handshakeHead = 0;
      }
      if (this.handshakeQueueLength > 0 && this.#up) this.#scheduleHandshakes();
    } finally {
      this.#processingHandshakes = false;
    }
  }

  /** Returns true when it did DH work. */
  #handleHandshake(data: Uint8Array, from: Endpoint, underLoad: boolean): boolean {
    const type = data[0];
    if (type === MESSAGE_COOKIE_REPLY) {
      const entry = this.indexTable.lookup(readU32(data, 4));
      if (!entry) return false;
      if (entry.peer.cookieGenerator.consumeReply(data)) {
        entry.peer.verbose("Received cookie response");
      }
      return false;
    }
    if (underLoad) {
      const source = from.dstToBytes();
      if (!this.cookieChecker.checkMac2(data, source)) {
        this.cookieChecker.createReply(this.#cookieScratch, data, handshakeSender(data), source);
        this.stats.cookieRepliesSent++;
        this.bind.send(this.#cookieScratch, from);
        return false;
      }
      if (!this.ratelimiter.allow(from.family, from.address)) {
        this.stats.ratelimited++;
        return false;
      }
    }
    const now = this.clock.now();
    if (type === MESSAGE_INITIATION) {
      const peer = consumeInitiation(data, this.identity, (pub) => this.lookupPeer(pub), { now });
      if (!peer) {
        this.stats.handshakeRejected++;
        this.log.verbose(`Received invalid initiation message from ${from}`);
        return true;
      }
      peer.timers.anyAuthenticatedPacketTraversal();
      peer.timers.anyAuthenticatedPacketReceived();
      peer.setEndpointFromPacket(from);
      peer.verbose("Received handshake initiation");
      peer.addRxBytes(data.length);
      peer.sendHandshakeResponse();
      return true;
    }
    if (type === MESSAGE_RESPONSE) {
      const entry = this.indexTable.lookup(responseReceiver(data));
      const peer = entry?.peer;
      if (
        !peer || entry.keypair !== null ||
        peer.handshake.state !== HandshakeState.InitiationCreated ||
        !consumeResponse(data, peer.handshake, this.identity)
      ) {
        this.stats.handshakeRejected++;
        this.log.verbose(`Received invalid response message from ${from}`);
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

  #receiveTransport(data: Uint8Array, from: Endpoint): void {
    const entry = this.indexTable.lookup(readU32(data, 4));
    const kp = entry?.keypair;
    if (!entry || !kp) {
      this.stats.unknownIndex++;
      return;
    }
    if (this.clock.now() - kp.created >= REJECT_AFTER_TIME) {
      this.stats.expiredKeypair++;
      return;
    }
    const batch = this.#batch;
    const lo = readU32(data, 8), hi = readU32(data, 12);
    let i = this.#committing ? -1 : batch.add(JOB_OPEN, data.length, kp.receiveKey, lo, hi);
    if (i < 0) {
      if (this.#committing) return; // cannot happen: nothing receives while delivering
      this.#runBatch();
      i = batch.add(JOB_OPEN, data.length, kp.receiveKey, lo, hi);
      if (i < 0) return;
    }
    batch.data.set(data, batch.offsetOf(i));
    this.#jobPeer[i] = entry.peer;
    this.#jobKeypair[i] = kp;
    let ep = this.#jobFrom[i];
    if (!ep) ep = this.#jobFrom[i] = new EndpointClass(4, new Uint8Array(4), 0);
    ep.copyFrom(from);
    this.#scheduleFlush();
  }

  /** Delivers one opened transport message (wireguard-go RoutineSequentialReceiver). */
  #commitOpen(peer: Peer, kp: Keypair, i: number, off: number, len: number): void {
    const batch = this.#batch;
    if (!batch.ok(i)) {
      this.stats.decryptFailed++;
      return;
    }
    const m = i * 6;
    if (!kp.replay.validate(batch.meta[m + 3] >>> 0, batch.meta[m + 4] >>> 0)) {
      this.stats.replayed++;
      return;
    }
    const plain = batch.data.subarray(
      off + MESSAGE_TRANSPORT_HEADER_SIZE,
      off + len - AEAD_TAG_SIZE,
    );
    peer.setEndpointFromPacket(this.#jobFrom[i]);
    if (peer.receivedWithKeypair(kp)) {
      peer.handshakeComplete();
      peer.sendStagedPackets();
    }
    peer.keepKeyFreshReceiving();
    peer.timers.anyAuthenticatedPacketTraversal();
    peer.timers.anyAuthenticatedPacketReceived();
    peer.addRxBytes(len);
    if (plain.length === 0) {
      peer.verbose("Receiving keepalive packet");
      return;
    }
    peer.timers.dataReceived();
    // Check the inner packet and trim padding (wireguard-go RoutineSequentialReceiver).
    let length: number;
    let source: Peer | undefined;
    const version = plain[0] >> 4;
    if (version === 4 && plain.length >= 20) {
      length = (plain[2] << 8) | plain[3];
      if (length < 20 || length > plain.length) {
        this.stats.invalidPackets++;
        return;
      }
      source = this.allowedIps.lookup(4, plain, 12);
    } else if (version === 6 && plain.length >= 40) {
      length = 40 + ((plain[4] << 8) | plain[5]);
      if (length > plain.length) {
        this.stats.invalidPackets++;
        return;
      }
      source = this.allowedIps.lookup(6, plain, 8);
    } else {
      this.stats.invalidPackets++;
      return;
    }
    if (source !== peer) {
      this.stats.badSource++;
      return;
    }
    this.tun.write(plain.subarray(0, length));
  }
}

const sealCounter = { lo: 0, hi: 0 };
const EMPTY_AD = new Uint8Array(0);

/** Seals the transport message `msg` (header + padded plaintext + tag room) in place with `kp`. */
function sealNow(msg: Uint8Array, kp: Keypair): void {
  sealCounter.lo = readU32(msg, 8);
  sealCounter.hi = readU32(msg, 12);
  aeadSeal(
    msg.subarray(MESSAGE_TRANSPORT_HEADER_SIZE),
    kp.sendKey,
    sealCounter,
    msg.subarray(MESSAGE_TRANSPORT_HEADER_SIZE, msg.length - AEAD_TAG_SIZE),
    EMPTY_AD,
  );
}

export { BindError };
