// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Keypairs (whitepaper §5.4.5, kernel `noise.h` `noise_keypair(s)`): the two
 * transport keys of one session, the send counter, the replay filter, and
 * the previous / current / next rotation of a peer's sessions.
 */
import {
  REJECT_AFTER_MESSAGES_HI,
  REJECT_AFTER_MESSAGES_LO,
  REKEY_AFTER_MESSAGES,
} from "../constants.ts";
import { wipe } from "../crypto.ts";
import { ReplayFilter } from "../replay.ts";

/** Keypair is one session's keys and counters. */
export class Keypair {
  /** Key for messages we send (with receiveKey, one 64-byte block). */
  readonly sendKey: Uint8Array;
  /** Key for messages we receive. */
  readonly receiveKey: Uint8Array;
  /** Next send counter, low u32 (the counter is exact over 64 bits as lo + hi·2^32). */
  sendLo = 0;
  /** Next send counter, high u32. */
  sendHi = 0;
  /** Received counters seen. */
  readonly replay: ReplayFilter = new ReplayFilter();
  /** True when we initiated the handshake that made this session. */
  readonly isInitiator: boolean;
  /** Monotonic ms when the session was derived. */
  readonly created: number;
  /** Our receiver index for this session. */
  localIndex: number;
  /** The peer's receiver index (goes in our transport headers). */
  readonly remoteIndex: number;

  constructor(isInitiator: boolean, created: number, localIndex: number, remoteIndex: number) {
    const keys = new ArrayBuffer(64);
    this.sendKey = new Uint8Array(keys, 0, 32);
    this.receiveKey = new Uint8Array(keys, 32, 32);
    this.isInitiator = isInitiator;
    this.created = created;
    this.localIndex = localIndex;
    this.remoteIndex = remoteIndex;
  }

  /** True once the send counter reached REJECT_AFTER_MESSAGES: the keypair may not send. */
  get sendExhausted(): boolean {
    return this.sendHi === REJECT_AFTER_MESSAGES_HI && this.sendLo >= REJECT_AFTER_MESSAGES_LO;
  }

  /** True once the send counter passed REKEY_AFTER_MESSAGES (2^60). */
  get sendNeedsRekey(): boolean {
    return this.sendHi * 4294967296 > REKEY_AFTER_MESSAGES ||
      (this.sendHi * 4294967296 === REKEY_AFTER_MESSAGES && this.sendLo > 0);
  }

  /**
   * Advances the send counter by one (exact 64-bit increment). It would wrap
   * at 2^64 − 1, which is unreachable: senders check {@link sendExhausted}
   * (2^64 − 2^13 − 1) before every use.
   */
  nextSend(): void {
    if (this.sendLo === 0xffffffff) {
      this.sendLo = 0;
      this.sendHi = (this.sendHi + 1) >>> 0;
    } else {
      this.sendLo++;
    }
  }

  /** Makes the keypair unusable for sending (wireguard-go ExpireCurrentKeypairs). */
  expireSending(): void {
    this.sendHi = REJECT_AFTER_MESSAGES_HI;
    this.sendLo = REJECT_AFTER_MESSAGES_LO;
  }

  /** Wipes the keys. */
  wipe(): void {
    wipe(this.sendKey, this.receiveKey);
    this.expireSending();
  }
}

/**
 * Keypairs of one peer: `current` sends; `previous` still receives; `next` is
 * a responder's new session waiting for the first data packet to confirm it.
 */
export class Keypairs {
  previous: Keypair | null = null;
  current: Keypair | null = null;
  next: Keypair | null = null;
}
