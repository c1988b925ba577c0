// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Per-source token bucket for handshake messages while the device is under
 * load (whitepaper §5.3), with the kernel's `ratelimiter.c` semantics:
 *
 * - 20 packets per second per source, bursts of up to 5. Tokens are time: a
 *   packet costs 50 ms, the bucket holds at most 250 ms, and it refills with
 *   elapsed time.
 * - A new source starts with a full bucket minus the packet it just sent.
 * - IPv4 sources are keyed by the whole /32; IPv6 sources by their /64, since
 *   one host usually owns a whole /64 (the kernel does this; wireguard-go keys
 *   on the full address).
 * - The table is bounded (default 65536 entries, the kernel's max_entries on
 *   a machine with more than 1 GiB). When it is full, packets from sources not
 *   yet in the table are denied, as the kernel does; known sources keep their
 *   buckets. Entries idle for more than 1 s are dropped by a sweep that runs
 *   at most once a second, lazily from {@link Ratelimiter.allow} (the kernel
 *   runs the same sweep from a 1 s work item); no timers are used.
 */
import type { Clock } from "./clock.ts";

/** Average packets per second allowed per source. */
export const RATELIMITER_PACKETS_PER_SECOND = 20;
/** Packets a source may send back to back. */
export const RATELIMITER_PACKETS_BURSTABLE = 5;
/** Default bound on tracked sources. */
export const RATELIMITER_MAX_ENTRIES = 65536;

/** Cost of one packet in milliseconds of tokens. */
const PACKET_COST = 1000 / RATELIMITER_PACKETS_PER_SECOND;
/** Bucket size in milliseconds of tokens. */
const TOKEN_MAX = PACKET_COST * RATELIMITER_PACKETS_BURSTABLE;
/** Entries idle longer than this are garbage; the sweep also runs this often. */
const GC_INTERVAL = 1000;

interface Bucket {
  /** clock.now() of the last packet. */
  last: number;
  /** Milliseconds of tokens left. */
  tokens: number;
}

/** Ratelimiter decides whether a handshake packet from a source may be processed. */
export class Ratelimiter {
  #clock: Clock;
  #maxEntries: number;
  /** IPv4 /32 as a u32 → bucket. */
  #v4 = new Map<number, Bucket>();
  /** IPv6 /64 as a 4-char string of 16-bit units → bucket. */
  #v6 = new Map<string, Bucket>();
  #lastGc: number;

  constructor(clock: Clock, opts: { maxEntries?: number } = {}) {
    const max = opts.maxEntries ?? RATELIMITER_MAX_ENTRIES;
    if (!Number.isInteger(max) || max < 0) {
      throw new RangeError(`Cannot bound a ratelimiter to ${max} entries`);
    }
    this.#clock = clock;
    this.#maxEntries = max;
    this.#lastGc = clock.now();
  }

  /**
   * Charges one packet from `address` (4 bytes for IPv4, at least the first 8
   * bytes of an IPv6 address) and returns whether it is within the limit.
   * Malformed input is denied, never thrown.
   */
  allow(family: 4 | 6, address: Uint8Array): boolean {
    const now = this.#clock.now();
    if (now - this.#lastGc >= GC_INTERVAL) this.#gc(now);
    let bucket: Bucket | undefined;
    if (family === 4) {
      if (address.length < 4) return false;
      const key = ((address[0] << 24) | (address[1] << 16) | (address[2] << 8) | address[3]) >>> 0;
      bucket = this.#v4.get(key);
      if (bucket === undefined) {
        if (this.size >= this.#maxEntries) return false;
        this.#v4.set(key, { last: now, tokens: TOKEN_MAX - PACKET_COST });
        return true;
      }
    } else if (family === 6) {
      if (address.length < 8) return false;
      // Only the /64 counts, so a host cannot dodge the limit by hopping
      // addresses inside its own subnet (kernel ratelimiter.c).
      const key = String.fromCharCode(
        (address[0] << 8) | address[1],
        (address[2] << 8) | address[3],
        (address[4] << 8) | address[5],
        (address[6] << 8) | address[7],
      );
      bucket = this.#v6.get(key);
      if (bucket === undefined) {
        if (this.size >= this.#maxEntries) return false;
        this.#v6.set(key, { last: now, tokens: TOKEN_MAX - PACKET_COST });
        return true;
      }
    } else {
      return false;
    }
    // Refill by elapsed time, capped at the burst; the kernel folds the burst
    // into the bucket size rather than the rate ("quasi-inspired by nft_limit").
    const elapsed = now > bucket.last ? now - bucket.last : 0;
    const tokens = Math.min(TOKEN_MAX, bucket.tokens + elapsed);
    bucket.last = now;
    if (tokens >= PACKET_COST) {
      bucket.tokens = tokens - PACKET_COST;
      return true;
    }
    bucket.tokens = tokens;
    return false;
  }

  /** Sources currently tracked (IPv4 and IPv6 together). */
  get size(): number {
    return this.#v4.size + this.#v6.size;
  }

  /** Drops buckets idle for more than GC_INTERVAL (kernel wg_ratelimiter_gc_entries). */
  #gc(now: number): void {
    this.#lastGc = now;
    for (const [key, b] of this.#v4) if (now - b.last > GC_INTERVAL) this.#v4.delete(key);
    for (const [key, b] of this.#v6) if (now - b.last > GC_INTERVAL) this.#v6.delete(key);
  }
}
