// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link TokenBucket}: a rate limit on an injected clock, for the packets
 * the stack sends in answer to what others send (ICMP errors, RFC 4443
 * §2.4(f); challenge ACKs, RFC 5961 §7).
 */
import type { Clock } from "../clock.ts";

/** Allows `rate` events per second on average and `burst` at once. */
export class TokenBucket {
  #clock: Clock;
  #rate: number;
  #burst: number;
  #tokens: number;
  #last: number;

  constructor(clock: Clock, rate: number, burst: number) {
    this.#clock = clock;
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = clock.now();
  }

  /** Takes one token; false when none is left. */
  take(): boolean {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#rate / 1000);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
