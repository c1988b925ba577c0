// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Device: one WireGuard interface (kernel `device.c`, wireguard-go
 * `device.go`). It owns the static identity, the peers (in insertion order),
 * the allowed-IPs trie, the receiver index table, the cookie checker and rate
 * limiter, and wires the data path together: {@link Send} (src/send.ts),
 * {@link Receive} (src/receive.ts) and their shared {@link CryptoQueue}
 * (src/queueing.ts). It talks to the world only through the injected
 * {@link Tun} and {@link Bind} edges, clock and RNG, so two devices can run
 * against each other in memory.
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
import { MAX_PEERS } from "./constants.ts";
import { timingSafeEqual } from "./crypto.ts";
import { type CryptoPool, InlineCryptoPool } from "./crypto_pool.ts";
import { type DeviceStats, newStats } from "./device_stats.ts";
import type { HandshakeOffload } from "./handshake_workers.ts";
import { IndexTable } from "./index_table.ts";
import { keyToHex } from "./keys.ts";
import { type Logger, silentLogger } from "./log.ts";
import { CookieChecker } from "./noise/cookie.ts";
import { StaticIdentity } from "./noise/handshake.ts";
import type { Keypair } from "./noise/keypair.ts";
import { type IndexEntry, Peer, type PeerHost } from "./peer.ts";
import { CryptoQueue } from "./queueing.ts";
import { Ratelimiter } from "./ratelimiter.ts";
import { Receive } from "./receive.ts";
import { Send } from "./send.ts";
import type { Tun } from "./tun/tun.ts";

export { Peer } from "./peer.ts";
export type { IndexEntry } from "./peer.ts";
export type { DeviceStats } from "./device_stats.ts";

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
  /**
   * Threads that do the DH work of answering initiations (default none: this
   * thread). The owner calls {@link Device.collectHandshakes} when its fd is
   * readable, and closes it after the device.
   */
  handshakeOffload?: HandshakeOffload;
}

/** Device is one WireGuard interface. */
export class Device implements PeerHost {
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
  readonly handshakeOffload: HandshakeOffload | null;
  /** PeerHost: the send path. */
  readonly sender: Send;
  #receivePath: Receive;
  #queue: CryptoQueue;
  #peers = new Map<string, Peer>();
  #listenPort = 0;
  #fwmark = 0;
  #up = false;
  #closed = false;
  #receive = (data: Uint8Array, from: Endpoint) => this.handleDatagram(data, from);
  #sendError = (owner: object, bytes: number) => {
    this.stats.sendErrors++;
    if (owner instanceof Peer) owner.uncountTx(bytes);
  };
  #autoFlush: boolean;
  #flushScheduled = false;
  #flushTurn = () => {
    this.#flushScheduled = false;
    this.flush();
  };

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
    this.#autoFlush = opts.autoFlush ?? true;
    this.handshakeOffload = opts.handshakeOffload ?? null;
    this.#queue = new CryptoQueue(opts.cryptoPool ?? new InlineCryptoPool(), {
      sealed: (peer, batch, i) => this.sender.sealed(peer, batch, i),
      opened: (peer, kp, batch, i, from) => this.#receivePath.opened(peer, kp, batch, i, from),
    }, () => this.#scheduleFlush());
    this.sender = new Send(this, this.#queue);
    this.#receivePath = new Receive(this, this.#queue, this.sender);
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
    this.#queue.drop(peer);
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
    this.#queue.drop();
    for (const peer of this.#peers.values()) peer.stop();
    this.#receivePath.clearHandshakes();
    this.log.verbose("Interface state was Up, requested Down, now Down");
  }

  /** Closes the device for good, wiping every key. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.down();
    this.#queue.drop();
    this.#queue.close();
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
    if (!this.#queue.committing && this.handshakeQueueLength > 0) {
      this.#receivePath.runHandshakes();
    }
    this.#drain();
  }

  /** Commits the queued crypto batch, then flushes both edges (no handshake turn). */
  #drain(): void {
    this.#queue.drain();
    this.bind.flush?.();
    this.tun.flush?.();
  }

  /** Packets queued for the next batch. */
  get queuedJobs(): number {
    return this.#queue.length;
  }

  #scheduleFlush(): void {
    if (!this.#autoFlush || this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.clock.after(0, this.#flushTurn);
  }

  // ---- data path entries ----

  /** Routes an IP packet read from the TUN to its peer by destination (crypto-routing). */
  handleTunPacket(packet: Uint8Array): void {
    this.sender.handleTunPacket(packet);
  }

  /** Handles one UDP payload from `from`. Never throws on hostile input. */
  handleDatagram(data: Uint8Array, from: Endpoint): void {
    this.#receivePath.handleDatagram(data, from);
  }

  /** Handshake messages waiting to be processed. */
  get handshakeQueueLength(): number {
    return this.#receivePath.handshakeQueueLength;
  }

  /**
   * True when the handshake queue is deep, and for UNDER_LOAD_AFTER_TIME
   * afterwards (wireguard-go IsUnderLoad).
   */
  isUnderLoad(): boolean {
    return this.#receivePath.isUnderLoad();
  }

  /**
   * Processes queued handshake messages, for at most a couple of ms or 64 DH
   * computations, then flushes the output. What is left waits for the next
   * turn, so data keeps flowing during a flood. The I/O loop gets here through
   * {@link flush} right after reading a batch, so a handshake answer does not
   * wait for a timer turn.
   */
  processHandshakes(): void {
    this.#receivePath.runHandshakes();
    this.#drain();
  }

  /**
   * Answers the initiations that {@link DeviceOptions.handshakeOffload}'s
   * threads have prepared, then flushes the output.
   */
  collectHandshakes(): void {
    this.#receivePath.collectHandshakes();
    this.#drain();
  }
}

export { BindError };
