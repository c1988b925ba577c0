// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Initial sequence numbers per RFC 6528 §3: ISN = M + F(localip, localport,
 * remoteip, remoteport, secretkey), where M is a timer ticking every 4 µs
 * and F a keyed hash (here keyed BLAKE2s, 16-byte digest) under a secret
 * drawn once from the stack's RNG. Connections to different peers get
 * unrelated sequence spaces; a new incarnation of the same 4-tuple starts
 * ahead of the old one as long as it is less than ~4.77 hours later.
 */
import type { Clock, Rng } from "../clock.ts";
import { mac } from "../crypto.ts";
import { get32, put16 } from "./checksum.ts";

/** Generates ISNs for one stack; see the module doc. */
export class IsnGenerator {
  #clock: Clock;
  #key = new Uint8Array(32);
  #input = new Uint8Array(36);
  #digest = new Uint8Array(16);

  constructor(clock: Clock, rng: Rng) {
    this.#clock = clock;
    rng(this.#key);
  }

  /** The ISN for the 4-tuple; addresses are `alen` bytes (4 or 16). */
  next(
    local: Uint8Array,
    localPort: number,
    remote: Uint8Array,
    remotePort: number,
    alen: number,
  ): number {
    const input = this.#input;
    input.fill(0);
    input.set(local.subarray(0, alen), 0);
    input.set(remote.subarray(0, alen), 16);
    put16(input, 32, localPort);
    put16(input, 34, remotePort);
    mac(this.#digest, this.#key, input);
    // M: the clock in units of 4 µs, modulo 2^32.
    const m = Math.floor(this.#clock.now() * 250) % 0x100000000;
    return (m + get32(this.#digest, 0)) >>> 0;
  }
}
