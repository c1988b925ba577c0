// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Per-peer timers with the kernel's event API (kernel `timers.c`, wireguard-go
 * `timers.go`). There are five timers:
 *
 * - retransmitHandshake: resend an unanswered initiation after REKEY_TIMEOUT
 *   plus jitter; give up after MAX_TIMER_HANDSHAKES + 2 initiations.
 * - sendKeepalive: send a keepalive KEEPALIVE_TIMEOUT after receiving data
 *   if nothing was sent back meanwhile.
 * - newHandshake: start a handshake if data sent got no answer within
 *   KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (+ jitter).
 * - zeroKeyMaterial: wipe all keys REJECT_AFTER_TIME × 3 after the last
 *   session was derived.
 * - persistentKeepalive: a keepalive every N seconds of silence, if configured.
 *
 * Code that sends or receives calls the event functions below ("Should be
 * called after…"); the timers call back into the peer through {@link TimerHost}.
 */
import { type Clock, nowTick, type Rng } from "./clock.ts";
import {
  KEEPALIVE_TIMEOUT,
  MAX_TIMER_HANDSHAKES,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX,
  ZERO_KEY_MATERIAL_AFTER,
} from "./constants.ts";

/**
 * Timer is one re-armable timer (the kernel's `mod_timer`/`del_timer`).
 * Re-arming to a later deadline does not touch the underlying scheduler: the
 * callback fires early, sees the new deadline and re-arms for the rest, so a
 * timer pushed back on every packet costs a number store.
 */
export class Timer {
  #clock: Clock;
  #fn: (arg: number) => void;
  #arg: number;
  #handle = -1;
  #scheduledFor = 0;
  #deadline = 0;
  #pending = false;

  /** A timer that calls `fn(arg)` when it expires. */
  constructor(clock: Clock, fn: (arg: number) => void, arg = 0) {
    this.#clock = clock;
    this.#fn = fn;
    this.#arg = arg;
  }

  /** True while armed. */
  get isPending(): boolean {
    return this.#pending;
  }

  /** Arms the timer to fire `ms` from now (replacing any earlier arming). */
  mod(ms: number): void {
    const clock = this.#clock;
    // The turn's time (Clock.tick), read from memory: this runs for every packet.
    const deadline = (clock.tick ?? nowTick(clock))[0] + ms;
    this.#deadline = deadline;
    this.#pending = true;
    if (this.#handle >= 0 && this.#scheduledFor <= deadline) return;
    if (this.#handle >= 0) this.#clock.cancel(this.#handle);
    this.#schedule(ms);
  }

  /**
   * Disarms the timer. The scheduled callback, if any, is left to fire and
   * find nothing to do (or to serve a later {@link mod}): timers are disarmed
   * and re-armed on nearly every packet, and a scheduler round trip
   * (setTimeout + clearTimeout) per packet costs more than the packet.
   */
  del(): void {
    this.#pending = false;
  }

  /** Disarms the timer and cancels its scheduled callback (when stopping for good). */
  cancel(): void {
    this.#pending = false;
    if (this.#handle >= 0) {
      this.#clock.cancel(this.#handle);
      this.#handle = -1;
    }
  }

  #schedule(ms: number): void {
    const clock = this.#clock;
    this.#scheduledFor = (clock.tick ?? nowTick(clock))[0] + ms;
    this.#handle = clock.after(ms, () => this.#fire());
  }

  #fire(): void {
    this.#handle = -1;
    if (!this.#pending) return;
    const clock = this.#clock;
    const left = this.#deadline - (clock.tick ?? nowTick(clock))[0];
    if (left > 0) {
      this.#schedule(left);
      return;
    }
    this.#pending = false;
    this.#fn(this.#arg);
  }
}

// Which of a peer's timers fired (the argument its Timer passes back).
const RETRANSMIT_HANDSHAKE = 0;
const SEND_KEEPALIVE = 1;
const NEW_HANDSHAKE = 2;
const ZERO_KEY_MATERIAL = 3;
const PERSISTENT_KEEPALIVE = 4;
/** Scratch for {@link PeerTimers.jitter} (timers run on one thread). */
const jitterBytes = new Uint8Array(2);

/** What the timers need from their peer. */
export interface TimerHost {
  /** Timers act only while this is true (peer running and device up). */
  timersActive(): boolean;
  /** Persistent keepalive interval in seconds (0 = off). */
  persistentKeepaliveInterval: number;
  sendKeepalive(): void;
  sendHandshakeInitiation(isRetry: boolean): void;
  dropStagedPackets(): void;
  zeroAndDropAll(): void;
  /** Told when retransmission gives up (for counters). Optional. */
  handshakeGaveUp?(): void;
  /** Forget the sticky source address so the next packet finds a route anew. */
  clearEndpointSrc(): void;
  /** Flush batched output after a timer ran. */
  flushOutput(): void;
  verbose(message: string): void;
}

/** PeerTimers holds a peer's five timers and implements the event API. */
export class PeerTimers {
  readonly retransmitHandshake: Timer;
  readonly sendKeepalive: Timer;
  readonly newHandshake: Timer;
  readonly zeroKeyMaterial: Timer;
  readonly persistentKeepalive: Timer;
  /** Initiations sent since the last completed handshake, minus one. */
  handshakeAttempts = 0;
  needAnotherKeepalive = false;
  sentLastMinuteHandshake = false;
  #host: TimerHost;
  #rng: Rng;

  constructor(host: TimerHost, clock: Clock, rng: Rng) {
    this.#host = host;
    this.#rng = rng;
    // One closure per peer, shared by its five timers (ten closures cost ~1 KiB a peer).
    const expired = (which: number) => this.#expired(which);
    this.retransmitHandshake = new Timer(clock, expired, RETRANSMIT_HANDSHAKE);
    this.sendKeepalive = new Timer(clock, expired, SEND_KEEPALIVE);
    this.newHandshake = new Timer(clock, expired, NEW_HANDSHAKE);
    this.zeroKeyMaterial = new Timer(clock, expired, ZERO_KEY_MATERIAL);
    this.persistentKeepalive = new Timer(clock, expired, PERSISTENT_KEEPALIVE);
  }

  /** 0–333 ms of uniform jitter (wireguard-go fastrandn(RekeyTimeoutJitterMaxMs)). */
  jitter(): number {
    this.#rng(jitterBytes);
    return ((jitterBytes[0] << 8) | jitterBytes[1]) % REKEY_TIMEOUT_JITTER_MAX;
  }

  #expired(which: number): void {
    switch (which) {
      case RETRANSMIT_HANDSHAKE:
        this.#expiredRetransmitHandshake();
        break;
      case SEND_KEEPALIVE:
        this.#expiredSendKeepalive();
        break;
      case NEW_HANDSHAKE:
        this.#expiredNewHandshake();
        break;
      case ZERO_KEY_MATERIAL:
        this.#expiredZeroKeyMaterial();
        break;
      case PERSISTENT_KEEPALIVE:
        this.#expiredPersistentKeepalive();
        break;
    }
    this.#host.flushOutput();
  }

  /** Resets counters when the peer starts (wireguard-go timersStart). */
  start(): void {
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
    this.needAnotherKeepalive = false;
  }

  /** Disarms every timer (wireguard-go timersStop). */
  stop(): void {
    this.retransmitHandshake.cancel();
    this.sendKeepalive.cancel();
    this.newHandshake.cancel();
    this.zeroKeyMaterial.cancel();
    this.persistentKeepalive.cancel();
  }

  #expiredRetransmitHandshake(): void {
    const host = this.#host;
    if (this.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
      host.verbose(
        `Handshake did not complete after ${MAX_TIMER_HANDSHAKES + 2} attempts, giving up`,
      );
      host.handshakeGaveUp?.();
      if (host.timersActive()) this.sendKeepalive.del();
      host.dropStagedPackets();
      // Wipe keys eventually even if no session was ever derived.
      if (host.timersActive() && !this.zeroKeyMaterial.isPending) {
        this.zeroKeyMaterial.mod(ZERO_KEY_MATERIAL_AFTER);
      }
      return;
    }
    this.handshakeAttempts++;
    host.verbose(
      `Handshake did not complete after ${REKEY_TIMEOUT / 1000} seconds, retrying (try ${
        this.handshakeAttempts + 1
      })`,
    );
    host.clearEndpointSrc();
    host.sendHandshakeInitiation(true);
  }

  #expiredSendKeepalive(): void {
    this.#host.sendKeepalive();
    if (this.needAnotherKeepalive) {
      this.needAnotherKeepalive = false;
      if (this.#host.timersActive()) this.sendKeepalive.mod(KEEPALIVE_TIMEOUT);
    }
  }

  #expiredNewHandshake(): void {
    this.#host.verbose(
      `Retrying handshake because we stopped hearing back after ${
        (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT) / 1000
      } seconds`,
    );
    this.#host.clearEndpointSrc();
    this.#host.sendHandshakeInitiation(false);
  }

  #expiredZeroKeyMaterial(): void {
    this.#host.verbose(
      `Removing all keys, since we haven't received a new one in ${
        ZERO_KEY_MATERIAL_AFTER / 1000
      } seconds`,
    );
    this.#host.zeroAndDropAll();
  }

  #expiredPersistentKeepalive(): void {
    if (this.#host.persistentKeepaliveInterval > 0) this.#host.sendKeepalive();
  }

  /** Should be called after an authenticated data packet is sent. */
  dataSent(): void {
    if (this.#host.timersActive() && !this.newHandshake.isPending) {
      this.newHandshake.mod(KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + this.jitter());
    }
  }

  /** Should be called after an authenticated data packet is received. */
  dataReceived(): void {
    if (!this.#host.timersActive()) return;
    if (!this.sendKeepalive.isPending) this.sendKeepalive.mod(KEEPALIVE_TIMEOUT);
    else this.needAnotherKeepalive = true;
  }

  /** Should be called after any type of authenticated packet is sent: keepalive, data, or handshake. */
  anyAuthenticatedPacketSent(): void {
    if (this.#host.timersActive()) this.sendKeepalive.del();
  }

  /** Should be called after any type of authenticated packet is received: keepalive, data, or handshake. */
  anyAuthenticatedPacketReceived(): void {
    if (this.#host.timersActive()) this.newHandshake.del();
  }

  /** Should be called after a handshake initiation message is sent. */
  handshakeInitiated(): void {
    if (this.#host.timersActive()) {
      this.retransmitHandshake.mod(REKEY_TIMEOUT + this.jitter());
    }
  }

  /**
   * Should be called after a handshake response message is received and
   * processed, or when getting key confirmation via the first data message.
   */
  handshakeComplete(): void {
    if (this.#host.timersActive()) this.retransmitHandshake.del();
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
  }

  /**
   * Should be called after an ephemeral key is created, which is before
   * sending a handshake response or after receiving a handshake response.
   */
  sessionDerived(): void {
    if (this.#host.timersActive()) this.zeroKeyMaterial.mod(ZERO_KEY_MATERIAL_AFTER);
  }

  /**
   * Should be called before a packet with authentication (keepalive, data, or
   * handshake) is sent, or after one is received.
   */
  anyAuthenticatedPacketTraversal(): void {
    const keepalive = this.#host.persistentKeepaliveInterval;
    if (keepalive > 0 && this.#host.timersActive()) {
      this.persistentKeepalive.mod(keepalive * 1000);
    }
  }
}
