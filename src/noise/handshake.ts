// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The Noise_IKpsk2 handshake (whitepaper §5.4.2–§5.4.5; kernel `noise.c`;
 * wireguard-go `noise-protocol.go`). Pure: keys, index, randomness and time
 * come in as arguments; nothing here touches a socket or a clock.
 *
 * The comments give the Noise token and then the whitepaper's pseudocode line.
 * Intermediate secrets are wiped on every exit, and a message that fails
 * leaves the handshake state it was checked against untouched.
 */
import type { Rng } from "../clock.ts";
import {
  HANDSHAKE_INITATION_RATE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
} from "../constants.ts";
import {
  aeadOpen,
  aeadSeal,
  clampPrivateKey,
  dh,
  forgetPrivateKey,
  hash,
  isZero,
  kdf,
  publicKey,
  timingSafeEqual,
  wipe,
  ZERO_COUNTER,
} from "../crypto.ts";
import { field, Initiation, readU32, Response, writeType, writeU32 } from "../messages.ts";
import { tai64n, tai64nAfter } from "./tai64n.ts";
import type { Keypair } from "./keypair.ts";

const encoder = new TextEncoder();
/** Noise protocol name (whitepaper §5.4: CONSTRUCTION). */
export const CONSTRUCTION = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
/** Prologue (whitepaper §5.4: IDENTIFIER). */
export const IDENTIFIER = "WireGuard v1 zx2c4 Jason@zx2c4.com";

/** Ci = HASH(CONSTRUCTION). */
const INITIAL_CHAIN_KEY = new Uint8Array(32);
hash(INITIAL_CHAIN_KEY, encoder.encode(CONSTRUCTION));
/** Hi = HASH(Ci ‖ IDENTIFIER). */
const INITIAL_HASH = new Uint8Array(32);
hash(INITIAL_HASH, INITIAL_CHAIN_KEY, encoder.encode(IDENTIFIER));
const EMPTY = new Uint8Array(0);

/** Handshake states, as the kernel's `noise_handshake_state`. */
export const HandshakeState = {
  Zeroed: 0,
  InitiationCreated: 1,
  InitiationConsumed: 2,
  ResponseCreated: 3,
  ResponseConsumed: 4,
} as const;
/** One of {@link HandshakeState}. */
export type HandshakeState = typeof HandshakeState[keyof typeof HandshakeState];

/** StaticIdentity is the device's static keypair. */
export class StaticIdentity {
  readonly privateKey: Uint8Array = new Uint8Array(32);
  readonly publicKey: Uint8Array = new Uint8Array(32);
  hasIdentity = false;

  /** Sets (a clamped copy of) `key`, or clears the identity when null. */
  set(key: Uint8Array | null): void {
    if (!key || isZero(key)) {
      this.clear();
      return;
    }
    forgetPrivateKey(this.privateKey);
    this.privateKey.set(key);
    clampPrivateKey(this.privateKey);
    publicKey(this.privateKey, this.publicKey);
    this.hasIdentity = true;
  }

  /** Wipes the keys. */
  clear(): void {
    forgetPrivateKey(this.privateKey);
    wipe(this.privateKey, this.publicKey);
    this.hasIdentity = false;
  }
}

/**
 * Byte layout of a {@link Handshake}'s key material: one 256-byte block per
 * peer instead of eight small buffers (each typed array that owns its own
 * ArrayBuffer costs ~450 bytes of heap and malloc in Deno, a view ~120).
 */
const HS_REMOTE_STATIC = 0;
const HS_PRESHARED_KEY = 32;
const HS_PRECOMPUTED = 64;
const HS_HASH = 96;
const HS_CHAIN_KEY = 128;
const HS_LOCAL_EPHEMERAL = 160;
const HS_REMOTE_EPHEMERAL = 192;
const HS_TIMESTAMP = 224;
const HS_SIZE = 236;

/** Handshake is one peer's handshake state (kernel `noise_handshake`). */
export class Handshake {
  state: HandshakeState = HandshakeState.Zeroed;
  /** The peer's static public key. */
  readonly remoteStatic: Uint8Array;
  /** Q, 32 zero bytes when no preshared key is configured. */
  readonly presharedKey: Uint8Array;
  /** DH(Spriv_local, Spub_remote), computed once per key change; zeros when invalid. */
  readonly precomputedStaticStatic: Uint8Array;
  readonly hash: Uint8Array;
  readonly chainKey: Uint8Array;
  readonly localEphemeral: Uint8Array;
  readonly remoteEphemeral: Uint8Array;
  /** Our index for this handshake (0 when none is registered). */
  localIndex = 0;
  /** The peer's sender index. */
  remoteIndex = 0;
  /** Greatest TAI64N timestamp accepted from this peer. */
  readonly latestTimestamp: Uint8Array;
  /** Monotonic ms of the last accepted initiation (flood limit). */
  lastInitiationConsumption = -Infinity;
  /** Monotonic ms of the last initiation we sent (one per REKEY_TIMEOUT). */
  lastSentHandshake = -Infinity;

  constructor(remoteStatic: Uint8Array) {
    const block = new ArrayBuffer(HS_SIZE);
    const view = (offset: number, length: number) => new Uint8Array(block, offset, length);
    this.remoteStatic = view(HS_REMOTE_STATIC, 32);
    this.remoteStatic.set(remoteStatic);
    this.presharedKey = view(HS_PRESHARED_KEY, 32);
    this.precomputedStaticStatic = view(HS_PRECOMPUTED, 32);
    this.hash = view(HS_HASH, 32);
    this.chainKey = view(HS_CHAIN_KEY, 32);
    this.localEphemeral = view(HS_LOCAL_EPHEMERAL, 32);
    this.remoteEphemeral = view(HS_REMOTE_EPHEMERAL, 32);
    this.latestTimestamp = view(HS_TIMESTAMP, 12);
  }

  /** Recomputes DH(Spriv, Spub_remote) for a new identity (zeros when it is not valid). */
  precompute(identity: StaticIdentity): void {
    if (
      !identity.hasIdentity ||
      !dh(this.precomputedStaticStatic, identity.privateKey, this.remoteStatic)
    ) {
      this.precomputedStaticStatic.fill(0);
    }
  }

  /** Forgets the handshake in progress (not the timestamp or the static keys). */
  clear(): void {
    forgetPrivateKey(this.localEphemeral);
    wipe(this.hash, this.chainKey, this.localEphemeral, this.remoteEphemeral);
    this.localIndex = 0;
    this.remoteIndex = 0;
    this.state = HandshakeState.Zeroed;
  }

  /** Wipes everything secret, including the precomputed DH and the preshared key. */
  wipe(): void {
    this.clear();
    wipe(this.presharedKey, this.precomputedStaticStatic);
  }
}

/** What a handshake operation needs from the outside world. */
export interface HandshakeContext {
  rng: Rng;
  /** Monotonic ms. */
  now: number;
  /** Wall-clock ms since the epoch (for TAI64N). */
  wall: number;
}

/** h = HASH(h ‖ data). */
function mixHash(h: Uint8Array, data: Uint8Array): void {
  hash(h, h, data);
}

/**
 * Writes a handshake initiation for `hs` into `out` (148 bytes; mac1/mac2 are
 * left for the CookieGenerator). Returns false, writing nothing usable, when
 * we have no identity or the peer's key gives an all-zero DH.
 */
export function createInitiation(
  out: Uint8Array,
  hs: Handshake,
  identity: StaticIdentity,
  localIndex: number,
  ctx: HandshakeContext,
): boolean {
  if (out.length !== MESSAGE_INITIATION_SIZE) throw new RangeError("Initiation must be 148 bytes");
  if (!identity.hasIdentity || isZero(hs.precomputedStaticStatic)) return false;
  const key = new Uint8Array(32);
  const ss = new Uint8Array(32);
  try {
    hs.chainKey.set(INITIAL_CHAIN_KEY);
    // Hi = HASH(Ci ‖ IDENTIFIER); Hi = HASH(Hi ‖ Spub_r)
    hs.hash.set(INITIAL_HASH);
    mixHash(hs.hash, hs.remoteStatic);
    // e: Epriv_i = DH-GENERATE(); msg.ephemeral = Epub_i
    forgetPrivateKey(hs.localEphemeral);
    ctx.rng(hs.localEphemeral);
    clampPrivateKey(hs.localEphemeral);
    const ephemeral = field(out, Initiation.ephemeral, 32);
    publicKey(hs.localEphemeral, ephemeral);
    // Ci = KDF1(Ci, Epub_i); Hi = HASH(Hi ‖ msg.ephemeral)
    kdf([hs.chainKey], hs.chainKey, ephemeral);
    mixHash(hs.hash, ephemeral);
    // es: (Ci, κ) = KDF2(Ci, DH(Epriv_i, Spub_r))
    if (!dh(ss, hs.localEphemeral, hs.remoteStatic)) return false;
    kdf([hs.chainKey, key], hs.chainKey, ss);
    // s: msg.static = AEAD(κ, 0, Spub_i, Hi); Hi = HASH(Hi ‖ msg.static)
    const encStatic = field(out, Initiation.static, 48);
    aeadSeal(encStatic, key, ZERO_COUNTER, identity.publicKey, hs.hash);
    mixHash(hs.hash, encStatic);
    // ss: (Ci, κ) = KDF2(Ci, DH(Spriv_i, Spub_r))
    kdf([hs.chainKey, key], hs.chainKey, hs.precomputedStaticStatic);
    // {t}: msg.timestamp = AEAD(κ, 0, TAI64N(), Hi); Hi = HASH(Hi ‖ msg.timestamp)
    const encTimestamp = field(out, Initiation.timestamp, 28);
    aeadSeal(encTimestamp, key, ZERO_COUNTER, tai64n(ctx.wall), hs.hash);
    mixHash(hs.hash, encTimestamp);
    writeType(out, MESSAGE_INITIATION);
    writeU32(out, Initiation.sender, localIndex);
    hs.localIndex = localIndex;
    hs.state = HandshakeState.InitiationCreated;
    return true;
  } finally {
    wipe(key, ss);
  }
}

/** The static keypair the responder's part of an initiation needs. */
export interface ResponderKeys {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/**
 * The first half of consuming an initiation (mac1 already checked), which
 * needs no peer state: the es DH and the initiator's static key. Writes that
 * key into `peerStatic` and the running chain key and hash into `chainKey`
 * and `h`; false when the message does not authenticate.
 */
function openInitiationStatic(
  msg: Uint8Array,
  keys: ResponderKeys,
  peerStatic: Uint8Array,
  chainKey: Uint8Array,
  h: Uint8Array,
): boolean {
  const key = new Uint8Array(32);
  const ss = new Uint8Array(32);
  try {
    chainKey.set(INITIAL_CHAIN_KEY);
    h.set(INITIAL_HASH);
    mixHash(h, keys.publicKey);
    // e: Cr = KDF1(Cr, Epub_i); Hr = HASH(Hr ‖ msg.ephemeral)
    const ephemeral = field(msg, Initiation.ephemeral, 32);
    kdf([chainKey], chainKey, ephemeral);
    mixHash(h, ephemeral);
    // es: (Cr, κ) = KDF2(Cr, DH(Spriv_r, Epub_i))
    if (!dh(ss, keys.privateKey, ephemeral)) return false;
    kdf([chainKey, key], chainKey, ss);
    // s: Spub_i = AEAD-DEC(κ, 0, msg.static, Hr); Hr = HASH(Hr ‖ msg.static)
    const encStatic = field(msg, Initiation.static, 48);
    if (!aeadOpen(peerStatic, key, ZERO_COUNTER, encStatic, h)) return false;
    mixHash(h, encStatic);
    return true;
  } finally {
    wipe(key, ss);
  }
}

/**
 * The second half of consuming an initiation: with the owner's handshake
 * `hs` (found by the static key), the ss step, the timestamp, and the replay
 * and flood checks. On success `hs` takes the handshake (InitiationConsumed).
 * `chainKey` and `h` are the first half's and are consumed.
 */
function acceptInitiation(
  msg: Uint8Array,
  hs: Handshake,
  chainKey: Uint8Array,
  h: Uint8Array,
  now: number,
): boolean {
  if (isZero(hs.precomputedStaticStatic)) return false;
  const key = new Uint8Array(32);
  const timestamp = new Uint8Array(12);
  try {
    // ss: (Cr, κ) = KDF2(Cr, DH(Spriv_r, Spub_i))
    kdf([chainKey, key], chainKey, hs.precomputedStaticStatic);
    // {t}: timestamp = AEAD-DEC(κ, 0, msg.timestamp, Hr); Hr = HASH(Hr ‖ msg.timestamp)
    const encTimestamp = field(msg, Initiation.timestamp, 28);
    if (!aeadOpen(timestamp, key, ZERO_COUNTER, encTimestamp, h)) return false;
    mixHash(h, encTimestamp);
    // Replay: the timestamp must increase. Flood: one initiation per 20 ms.
    const replay = !tai64nAfter(timestamp, hs.latestTimestamp);
    const flood = now - hs.lastInitiationConsumption <= HANDSHAKE_INITATION_RATE;
    if (replay || flood) return false;
    hs.hash.set(h);
    hs.chainKey.set(chainKey);
    hs.remoteEphemeral.set(field(msg, Initiation.ephemeral, 32));
    hs.remoteIndex = readU32(msg, Initiation.sender);
    hs.latestTimestamp.set(timestamp);
    hs.lastInitiationConsumption = now;
    hs.state = HandshakeState.InitiationConsumed;
    return true;
  } finally {
    wipe(key, timestamp);
  }
}

/**
 * Consumes an initiation whose mac1 was already checked. `lookup` maps the
 * decrypted static key to its owner (a peer, whose `handshake` is updated).
 * Returns that owner, or null when the message does not authenticate, the
 * peer is unknown, its timestamp is not newer than the last one accepted
 * (replay), or it comes within HANDSHAKE_INITATION_RATE of the last (flood).
 */
export function consumeInitiation<T extends { handshake: Handshake }>(
  msg: Uint8Array,
  identity: StaticIdentity,
  lookup: (staticPublic: Uint8Array) => T | undefined,
  ctx: { now: number },
): T | null {
  if (msg.length !== MESSAGE_INITIATION_SIZE || !identity.hasIdentity) return null;
  const chainKey = new Uint8Array(32);
  const h = new Uint8Array(32);
  const peerStatic = new Uint8Array(32);
  try {
    if (!openInitiationStatic(msg, identity, peerStatic, chainKey, h)) return null;
    const owner = lookup(peerStatic);
    if (!owner || !acceptInitiation(msg, owner.handshake, chainKey, h, ctx.now)) return null;
    return owner;
  } finally {
    wipe(chainKey, h);
  }
}

/**
 * Byte layout of {@link prepareInitiation}'s result (INITIATION_WORK_SIZE
 * bytes): the initiator's static key, the chain key and hash after it, and
 * the responder's ephemeral public key with its two DH results (ee, se).
 */
export const WORK_PEER_STATIC = 0;
const WORK_CHAIN_KEY = 32;
const WORK_HASH = 64;
const WORK_EPHEMERAL = 96;
const WORK_EE = 128;
const WORK_SE = 160;
export const INITIATION_WORK_SIZE = 192;

/**
 * Every DH of answering an initiation (mac1 already checked), none of which
 * needs peer state, so another thread can run it (src/handshake_workers.ts):
 * es and the initiator's static key (as {@link consumeInitiation}), then a new
 * responder ephemeral key and its DHs with the initiator's ephemeral and
 * static keys (as {@link createResponse}). The ephemeral private key never
 * leaves this function. Writes `work` (INITIATION_WORK_SIZE bytes, see the
 * layout above); false when the message does not authenticate or a DH is
 * all zeros. {@link finishInitiation} completes it on the device's thread.
 */
export function prepareInitiation(
  msg: Uint8Array,
  keys: ResponderKeys,
  rng: Rng,
  work: Uint8Array,
): boolean {
  if (msg.length !== MESSAGE_INITIATION_SIZE || work.length !== INITIATION_WORK_SIZE) return false;
  const peerStatic = work.subarray(WORK_PEER_STATIC, WORK_PEER_STATIC + 32);
  const ok = openInitiationStatic(
    msg,
    keys,
    peerStatic,
    work.subarray(WORK_CHAIN_KEY, WORK_CHAIN_KEY + 32),
    work.subarray(WORK_HASH, WORK_HASH + 32),
  ) &&
    responderDH(
      rng,
      field(msg, Initiation.ephemeral, 32),
      peerStatic,
      work.subarray(WORK_EPHEMERAL, WORK_EPHEMERAL + 32),
      work.subarray(WORK_EE, WORK_EE + 32),
      work.subarray(WORK_SE, WORK_SE + 32),
    );
  if (!ok) work.fill(0);
  return ok;
}

/**
 * Completes an initiation that {@link prepareInitiation} prepared into
 * `work`: finds the owner by the static key, then the ss step, timestamp,
 * replay and flood checks as {@link consumeInitiation}. Returns the owner,
 * whose handshake is then InitiationConsumed; pass the same `work` to
 * {@link createResponse}. Null when rejected. `work` is wiped on rejection.
 */
export function finishInitiation<T extends { handshake: Handshake }>(
  msg: Uint8Array,
  work: Uint8Array,
  lookup: (staticPublic: Uint8Array) => T | undefined,
  ctx: { now: number },
): T | null {
  if (msg.length !== MESSAGE_INITIATION_SIZE || work.length !== INITIATION_WORK_SIZE) return null;
  const chainKey = work.subarray(WORK_CHAIN_KEY, WORK_CHAIN_KEY + 32);
  const h = work.subarray(WORK_HASH, WORK_HASH + 32);
  const owner = lookup(work.subarray(WORK_PEER_STATIC, WORK_PEER_STATIC + 32));
  if (!owner || !acceptInitiation(msg, owner.handshake, chainKey, h, ctx.now)) {
    work.fill(0);
    return null;
  }
  wipe(chainKey, h);
  return owner;
}

/**
 * e, ee, se of the response: a new ephemeral key (its public key into
 * `ephemeralPublic`) and its DH with the initiator's ephemeral and static
 * keys. False when a DH is all zeros.
 */
function responderDH(
  rng: Rng,
  remoteEphemeral: Uint8Array,
  remoteStatic: Uint8Array,
  ephemeralPublic: Uint8Array,
  ee: Uint8Array,
  se: Uint8Array,
): boolean {
  const ephemeral = new Uint8Array(32);
  try {
    rng(ephemeral);
    clampPrivateKey(ephemeral);
    publicKey(ephemeral, ephemeralPublic);
    return dh(ee, ephemeral, remoteEphemeral) && dh(se, ephemeral, remoteStatic);
  } finally {
    forgetPrivateKey(ephemeral);
    wipe(ephemeral);
  }
}

/**
 * Writes the response to a consumed initiation into `out` (92 bytes; MACs
 * are left for the CookieGenerator). The DH work is done here, or was done
 * by {@link prepareInitiation} when its `work` is given (then wiped).
 * Returns false when `hs` is not in the InitiationConsumed state or a DH is
 * all zeros.
 */
export function createResponse(
  out: Uint8Array,
  hs: Handshake,
  localIndex: number,
  ctx: { rng: Rng },
  work?: Uint8Array,
): boolean {
  if (out.length !== MESSAGE_RESPONSE_SIZE) throw new RangeError("Response must be 92 bytes");
  if (hs.state !== HandshakeState.InitiationConsumed) return false;
  const key = new Uint8Array(32);
  const tau = new Uint8Array(32);
  const dhOut = work ?? new Uint8Array(INITIATION_WORK_SIZE);
  const ephemeral = dhOut.subarray(WORK_EPHEMERAL, WORK_EPHEMERAL + 32);
  const ee = dhOut.subarray(WORK_EE, WORK_EE + 32);
  const se = dhOut.subarray(WORK_SE, WORK_SE + 32);
  try {
    // e: (Epriv_r, Epub_r) = DH-GENERATE(), with DH(Epriv_r, Epub_i) and
    // DH(Epriv_r, Spub_i) for the next steps; Epriv_r is not kept.
    if (!work && !responderDH(ctx.rng, hs.remoteEphemeral, hs.remoteStatic, ephemeral, ee, se)) {
      return false;
    }
    writeType(out, MESSAGE_RESPONSE);
    writeU32(out, Response.sender, localIndex);
    writeU32(out, Response.receiver, hs.remoteIndex);
    field(out, Response.ephemeral, 32).set(ephemeral);
    // Cr = KDF1(Cr, Epub_r); Hr = HASH(Hr ‖ Epub_r)
    kdf([hs.chainKey], hs.chainKey, ephemeral);
    mixHash(hs.hash, ephemeral);
    // ee: Cr = KDF1(Cr, DH(Epriv_r, Epub_i))
    kdf([hs.chainKey], hs.chainKey, ee);
    // se: Cr = KDF1(Cr, DH(Epriv_r, Spub_i))
    kdf([hs.chainKey], hs.chainKey, se);
    // psk: (Cr, τ, κ) = KDF3(Cr, Q); Hr = HASH(Hr ‖ τ)
    kdf([hs.chainKey, tau, key], hs.chainKey, hs.presharedKey);
    mixHash(hs.hash, tau);
    // {}: msg.empty = AEAD(κ, 0, ε, Hr); Hr = HASH(Hr ‖ msg.empty)
    const empty = field(out, Response.empty, 16);
    aeadSeal(empty, key, ZERO_COUNTER, EMPTY, hs.hash);
    mixHash(hs.hash, empty);
    hs.localIndex = localIndex;
    hs.state = HandshakeState.ResponseCreated;
    return true;
  } finally {
    wipe(key, tau, dhOut);
  }
}

/**
 * Consumes a response (mac1 already checked) to the initiation `hs` sent.
 * Returns false when `hs` is not waiting for one or the message does not
 * authenticate; `hs` is then unchanged.
 */
export function consumeResponse(msg: Uint8Array, hs: Handshake, identity: StaticIdentity): boolean {
  if (msg.length !== MESSAGE_RESPONSE_SIZE || hs.state !== HandshakeState.InitiationCreated) {
    return false;
  }
  if (!identity.hasIdentity) return false;
  const chainKey = hs.chainKey.slice();
  const h = hs.hash.slice();
  const key = new Uint8Array(32);
  const tau = new Uint8Array(32);
  const ss = new Uint8Array(32);
  try {
    // e: Ci = KDF1(Ci, Epub_r); Hi = HASH(Hi ‖ msg.ephemeral)
    const ephemeral = field(msg, Response.ephemeral, 32);
    kdf([chainKey], chainKey, ephemeral);
    mixHash(h, ephemeral);
    // ee: Ci = KDF1(Ci, DH(Epriv_i, Epub_r))
    if (!dh(ss, hs.localEphemeral, ephemeral)) return false;
    kdf([chainKey], chainKey, ss);
    // se: Ci = KDF1(Ci, DH(Spriv_i, Epub_r))
    if (!dh(ss, identity.privateKey, ephemeral)) return false;
    kdf([chainKey], chainKey, ss);
    // psk: (Ci, τ, κ) = KDF3(Ci, Q); Hi = HASH(Hi ‖ τ)
    kdf([chainKey, tau, key], chainKey, hs.presharedKey);
    mixHash(h, tau);
    // {}: AEAD-DEC(κ, 0, msg.empty, Hi); Hi = HASH(Hi ‖ msg.empty)
    const empty = field(msg, Response.empty, 16);
    if (!aeadOpen(EMPTY_OUT, key, ZERO_COUNTER, empty, h)) return false;
    mixHash(h, empty);
    hs.chainKey.set(chainKey);
    hs.hash.set(h);
    hs.remoteEphemeral.set(ephemeral);
    hs.remoteIndex = readU32(msg, Response.sender);
    hs.state = HandshakeState.ResponseConsumed;
    return true;
  } finally {
    wipe(chainKey, h, key, tau, ss);
  }
}
const EMPTY_OUT = new Uint8Array(0);

/** The receiver index a response is addressed to (our initiation's sender index). */
export function responseReceiver(msg: Uint8Array): number {
  return readU32(msg, Response.receiver);
}

/** The sender index of a handshake initiation or response. */
export function handshakeSender(msg: Uint8Array): number {
  return readU32(msg, Initiation.sender);
}

/**
 * Derives the transport keys once the handshake is done (whitepaper §5.4.5):
 * (Tsend_i = Trecv_r, Trecv_i = Tsend_r) = KDF2(C, ε). Fills `keypair` (made
 * by the caller with the right role and indices) and zeroes the handshake.
 * Returns false when `hs` is in neither ResponseConsumed nor ResponseCreated.
 */
export function beginSession(hs: Handshake, keypair: Keypair): boolean {
  if (hs.state === HandshakeState.ResponseConsumed) {
    kdf([keypair.sendKey, keypair.receiveKey], hs.chainKey, EMPTY);
  } else if (hs.state === HandshakeState.ResponseCreated) {
    kdf([keypair.receiveKey, keypair.sendKey], hs.chainKey, EMPTY);
  } else {
    return false;
  }
  forgetPrivateKey(hs.localEphemeral);
  wipe(hs.chainKey, hs.hash, hs.localEphemeral);
  hs.state = HandshakeState.Zeroed;
  return true;
}

/** True when `a` and `b` are the same 32-byte key. */
export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return timingSafeEqual(a, b);
}
