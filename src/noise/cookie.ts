// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * MACs and cookies (whitepaper §5.4.4, §5.4.7; kernel `cookie.c`).
 *
 * Every handshake message carries mac1 = MAC(HASH("mac1----" ‖ Spub_receiver),
 * msg up to mac1), which proves the sender knows our public key, and mac2 =
 * MAC(cookie, msg up to mac2), which proves a recent round trip with our IP.
 * A responder under load answers a handshake without a valid mac2 with a
 * cookie reply instead of doing DH.
 *
 * {@link CookieChecker} is the responder side (one per device);
 * {@link CookieGenerator} the initiator side (one per peer).
 */
import type { Clock, Rng } from "../clock.ts";
import {
  COOKIE_REFRESH_TIME,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
} from "../constants.ts";
import { hash, mac, timingSafeEqual, wipe, xaeadOpen, xaeadSeal } from "../crypto.ts";
import { CookieReply, writeType, writeU32 } from "../messages.ts";

const LABEL_MAC1 = new TextEncoder().encode("mac1----");
const LABEL_COOKIE = new TextEncoder().encode("cookie--");

/**
 * The kernel's `cookie_mac_state`: what the MACs of a handshake message prove.
 */
export const MacState = {
  Invalid: 0,
  ValidNoCookie: 1,
  ValidCookie: 2,
} as const;
/** One of {@link MacState}. */
export type MacState = typeof MacState[keyof typeof MacState];

/** Offset of mac1 in a handshake message of `length` bytes. */
function mac1Offset(length: number): number {
  return length - 32;
}

/** Offset of mac2 in a handshake message of `length` bytes. */
function mac2Offset(length: number): number {
  return length - 16;
}

const scratchMac = new Uint8Array(16);
const scratchCookie = new Uint8Array(16);

/** CookieChecker validates MACs on received handshakes and makes cookie replies. */
export class CookieChecker {
  #clock: Clock;
  #rng: Rng;
  #mac1Key = new Uint8Array(32);
  #encryptionKey = new Uint8Array(32);
  #secret = new Uint8Array(32);
  #secretSet = -Infinity;
  #hasKey = false;

  constructor(clock: Clock, rng: Rng) {
    this.#clock = clock;
    this.#rng = rng;
  }

  /** Derives the MAC and cookie keys from our public key (null: no identity). */
  init(publicKey: Uint8Array | null): void {
    if (!publicKey) {
      wipe(this.#mac1Key, this.#encryptionKey);
      this.#hasKey = false;
      return;
    }
    hash(this.#mac1Key, LABEL_MAC1, publicKey);
    hash(this.#encryptionKey, LABEL_COOKIE, publicKey);
    this.#hasKey = true;
  }

  /** True when mac1 of the handshake message `msg` is valid for our public key. */
  checkMac1(msg: Uint8Array): boolean {
    if (!this.#hasKey) return false;
    const m1 = mac1Offset(msg.length);
    mac(scratchMac, this.#mac1Key, msg.subarray(0, m1));
    return timingSafeEqual(scratchMac, msg.subarray(m1, m1 + 16));
  }

  /**
   * True when mac2 of `msg` is valid for a cookie we would give `source` now
   * (source = address ‖ port bytes of the sender).
   */
  checkMac2(msg: Uint8Array, source: Uint8Array): boolean {
    if (this.#clock.now() - this.#secretSet > COOKIE_REFRESH_TIME) return false;
    mac(scratchCookie, this.#secret, source);
    const m2 = mac2Offset(msg.length);
    mac(scratchMac, scratchCookie, msg.subarray(0, m2));
    return timingSafeEqual(scratchMac, msg.subarray(m2, m2 + 16));
  }

  /** Validates both MACs, as the kernel's `wg_cookie_validate_packet`. */
  validate(msg: Uint8Array, source: Uint8Array, checkCookie: boolean): MacState {
    if (!this.checkMac1(msg)) return MacState.Invalid;
    if (!checkCookie) return MacState.ValidNoCookie;
    return this.checkMac2(msg, source) ? MacState.ValidCookie : MacState.ValidNoCookie;
  }

  /**
   * Writes a cookie reply to the handshake `msg` (whose sender index is
   * `senderIndex`) from `source` into `out` (64 bytes). The cookie is
   * MAC(secret, source); the secret rotates every COOKIE_REFRESH_TIME.
   */
  createReply(out: Uint8Array, msg: Uint8Array, senderIndex: number, source: Uint8Array): void {
    if (out.length !== MESSAGE_COOKIE_REPLY_SIZE) {
      throw new RangeError("Cookie reply must be 64 bytes");
    }
    const now = this.#clock.now();
    if (now - this.#secretSet > COOKIE_REFRESH_TIME) {
      this.#rng(this.#secret);
      this.#secretSet = now;
    }
    mac(scratchCookie, this.#secret, source);
    writeType(out, MESSAGE_COOKIE_REPLY);
    writeU32(out, CookieReply.receiver, senderIndex);
    const nonce = out.subarray(CookieReply.nonce, CookieReply.nonce + 24);
    this.#rng(nonce);
    const m1 = mac1Offset(msg.length);
    xaeadSeal(
      out.subarray(CookieReply.cookie, CookieReply.cookie + 32),
      this.#encryptionKey,
      nonce,
      scratchCookie,
      msg.subarray(m1, m1 + 16),
    );
    scratchCookie.fill(0);
  }

  /** Wipes all key material. */
  wipe(): void {
    wipe(this.#mac1Key, this.#encryptionKey, this.#secret);
    this.#secretSet = -Infinity;
    this.#hasKey = false;
  }
}

/** CookieGenerator adds MACs to our handshakes and consumes cookie replies. */
export class CookieGenerator {
  #clock: Clock;
  // One 96-byte block per peer rather than four buffers (see Handshake).
  #block = new ArrayBuffer(96);
  #mac1Key = new Uint8Array(this.#block, 0, 32);
  #encryptionKey = new Uint8Array(this.#block, 32, 32);
  #cookie = new Uint8Array(this.#block, 64, 16);
  #cookieSet = -Infinity;
  #lastMac1 = new Uint8Array(this.#block, 80, 16);
  #hasLastMac1 = false;

  constructor(clock: Clock, peerPublicKey: Uint8Array) {
    this.#clock = clock;
    hash(this.#mac1Key, LABEL_MAC1, peerPublicKey);
    hash(this.#encryptionKey, LABEL_COOKIE, peerPublicKey);
  }

  /** Writes mac1 and mac2 (zeros without a fresh cookie) into the handshake `msg`. */
  addMacs(msg: Uint8Array): void {
    const m1 = mac1Offset(msg.length);
    const m2 = mac2Offset(msg.length);
    mac(msg.subarray(m1, m1 + 16), this.#mac1Key, msg.subarray(0, m1));
    this.#lastMac1.set(msg.subarray(m1, m1 + 16));
    this.#hasLastMac1 = true;
    if (this.#clock.now() - this.#cookieSet > COOKIE_REFRESH_TIME) {
      msg.fill(0, m2, m2 + 16);
      return;
    }
    mac(msg.subarray(m2, m2 + 16), this.#cookie, msg.subarray(0, m2));
  }

  /**
   * Decrypts a cookie reply to our last handshake and stores the cookie.
   * Returns false when it does not authenticate or answers nothing we sent.
   */
  consumeReply(msg: Uint8Array): boolean {
    if (!this.#hasLastMac1) return false;
    const ok = xaeadOpen(
      scratchCookie,
      this.#encryptionKey,
      msg.subarray(CookieReply.nonce, CookieReply.nonce + 24),
      msg.subarray(CookieReply.cookie, CookieReply.cookie + 32),
      this.#lastMac1,
    );
    if (!ok) return false;
    this.#cookie.set(scratchCookie);
    scratchCookie.fill(0);
    this.#cookieSet = this.#clock.now();
    this.#hasLastMac1 = false;
    return true;
  }

  /** Wipes all key material. */
  wipe(): void {
    wipe(this.#mac1Key, this.#encryptionKey, this.#cookie, this.#lastMac1);
    this.#cookieSet = -Infinity;
    this.#hasLastMac1 = false;
  }
}
