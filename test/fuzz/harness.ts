// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The common ground of the fuzz targets: what a target returns
 * ({@link FuzzStats}), how it records an escaped exception or a broken
 * invariant with enough context to reproduce it (seed, iteration, input), and
 * a {@link Mutator} that turns valid inputs into nearly valid ones (bit flips,
 * truncations, extensions, splices, "interesting" integers), in the spirit of
 * libFuzzer's and AFL's havoc stage but driven by a seeded RNG so that a seed
 * and an iteration count replay a run exactly.
 */
import type { Rng } from "../../src/clock.ts";
import { RandomSource } from "../_util/fake_clock.ts";

/** Options every target accepts. */
export interface FuzzOptions {
  /**
   * performance.now() after which the target stops early (the iterations
   * actually run are reported). Keeps CI runs and `--minutes` bounded.
   */
  deadline?: number;
  /** Progress lines (the CLI prints them; tests pass nothing). */
  log?: (line: string) => void;
}

/** One thing that went wrong, with what is needed to reproduce it. */
export interface FuzzFinding {
  kind: "exception" | "invariant";
  /** Iteration of the target at which it happened (-1: final checks). */
  iteration: number;
  message: string;
  /** Stack of an exception. */
  stack?: string;
  /** The input (hex, truncated) or a description of it. */
  input?: string;
}

/** What a target reports. */
export interface FuzzStats {
  target: string;
  /** Iterations run (a target may stop early at the deadline). */
  iterations: number;
  /** Hostile inputs fed (datagrams, packets, UAPI streams, files). */
  inputs: number;
  /** Exceptions that escaped the code under test (0 expected). */
  exceptions: number;
  /** Broken invariants (0 expected). */
  failures: number;
  /** The first findings (at most {@link MAX_FINDINGS}). */
  findings: FuzzFinding[];
  /** Target-specific counts: outcomes reached, peaks of structure sizes. */
  counters: Record<string, number>;
  /** Wall time in ms. */
  ms: number;
}

/**
 * A fuzz target: deterministic for a given RNG stream and iteration count.
 * Targets over asynchronous code (cli/wg) return a promise.
 */
export type FuzzTarget = (
  rng: Rng,
  iterations: number,
  options?: FuzzOptions,
) => FuzzStats | Promise<FuzzStats>;

/** Findings kept per run; later ones are only counted. */
export const MAX_FINDINGS = 20;

/** Fresh stats for `target`. */
export function newStats(target: string): FuzzStats {
  return {
    target,
    iterations: 0,
    inputs: 0,
    exceptions: 0,
    failures: 0,
    findings: [],
    counters: {},
    ms: 0,
  };
}

/** Adds `n` to a named counter. */
export function bump(stats: FuzzStats, name: string, n = 1): void {
  stats.counters[name] = (stats.counters[name] ?? 0) + n;
}

/** Keeps the maximum of a named counter. */
export function peak(stats: FuzzStats, name: string, value: number): void {
  if (!(name in stats.counters) || value > stats.counters[name]) stats.counters[name] = value;
}

/** Records an exception that escaped the code under test. */
export function recordException(
  stats: FuzzStats,
  iteration: number,
  err: unknown,
  input?: Uint8Array | string,
): void {
  stats.exceptions++;
  if (stats.findings.length >= MAX_FINDINGS) return;
  const e = err instanceof Error ? err : new Error(String(err));
  stats.findings.push({
    kind: "exception",
    iteration,
    message: `${e.name}: ${e.message}`,
    stack: e.stack,
    input: describeInput(input),
  });
}

/** Records a broken invariant. */
export function recordFailure(
  stats: FuzzStats,
  iteration: number,
  message: string,
  input?: Uint8Array | string,
): void {
  stats.failures++;
  if (stats.findings.length >= MAX_FINDINGS) return;
  stats.findings.push({ kind: "invariant", iteration, message, input: describeInput(input) });
}

function describeInput(input: Uint8Array | string | undefined): string | undefined {
  if (input === undefined) return undefined;
  if (typeof input === "string") {
    const s = JSON.stringify(input);
    return s.length > 600 ? `${s.slice(0, 600)}… (${input.length} chars)` : s;
  }
  return input.length > 256
    ? `${toHex(input.subarray(0, 256))}… (${input.length} bytes)`
    : toHex(input);
}

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return bytes.toHex();
}

/** True once `options.deadline` has passed. */
export function pastDeadline(options: FuzzOptions | undefined): boolean {
  return options?.deadline !== undefined && performance.now() > options.deadline;
}

/** u32 values that tend to sit on boundaries. */
const INTERESTING_U32 = [
  0,
  1,
  2,
  0x7f,
  0x80,
  0xff,
  0x100,
  0x7fff,
  0x8000,
  0xffff,
  0x10000,
  0x7fffffff,
  0x80000000,
  0xfffffffe,
  0xffffffff,
  0xffffdfff,
  0xffffe000,
];

/**
 * Mutator is a seeded source of random choices and byte-level mutations.
 * Every mutation returns a new array; inputs are never modified.
 */
export class Mutator {
  readonly random: RandomSource;

  constructor(rng: Rng) {
    this.random = new RandomSource(rng);
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return this.random.int(n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.random.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.random.u32() < p * 4294967296;
  }

  /** A uniform element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.random.int(items.length)];
  }

  /** A uniform u32. */
  u32(): number {
    return this.random.u32();
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    return this.random.bytes(n);
  }

  /** A u32 that is often on a boundary. */
  interestingU32(): number {
    return this.chance(0.6) ? this.pick(INTERESTING_U32) : this.u32();
  }

  /** Applies 1..maxRounds random mutations to a copy of `data`. */
  mutate(data: Uint8Array, maxRounds = 4, donors: readonly Uint8Array[] = []): Uint8Array {
    let out: Uint8Array = data.slice();
    const rounds = this.range(1, maxRounds);
    for (let i = 0; i < rounds; i++) out = this.mutateOnce(out, donors);
    return out;
  }

  /** One random mutation of `d` (may return `d` itself, modified). */
  mutateOnce(d: Uint8Array, donors: readonly Uint8Array[] = []): Uint8Array {
    switch (this.int(11)) {
      case 0: // flip one bit
        if (d.length > 0) d[this.int(d.length)] ^= 1 << this.int(8);
        return d;
      case 1: // set one byte
        if (d.length > 0) {
          d[this.int(d.length)] = this.pick([0, 1, 0x7f, 0x80, 0xff, this.int(256)]);
        }
        return d;
      case 2: // truncate
        return d.slice(0, this.int(d.length + 1));
      case 3: { // extend with random or zero bytes
        const e = new Uint8Array(d.length + this.range(1, this.chance(0.1) ? 2000 : 48));
        e.set(d);
        if (this.chance(0.5)) e.set(this.bytes(e.length - d.length), d.length);
        return e;
      }
      case 4: { // delete a range
        if (d.length === 0) return d;
        const at = this.int(d.length);
        const n = this.range(1, Math.min(16, d.length - at));
        const e = new Uint8Array(d.length - n);
        e.set(d.subarray(0, at));
        e.set(d.subarray(at + n), at);
        return e;
      }
      case 5: { // insert random bytes
        const at = this.int(d.length + 1);
        const ins = this.bytes(this.range(1, 16));
        const e = new Uint8Array(d.length + ins.length);
        e.set(d.subarray(0, at));
        e.set(ins, at);
        e.set(d.subarray(at), at + ins.length);
        return e;
      }
      case 6: { // overwrite a little-endian u32 with an interesting value
        if (d.length < 4) return d;
        const at = this.int(d.length - 3);
        const v = this.interestingU32();
        d[at] = v;
        d[at + 1] = v >>> 8;
        d[at + 2] = v >>> 16;
        d[at + 3] = v >>> 24;
        return d;
      }
      case 7: { // splice with a donor
        if (donors.length === 0) return d;
        const other = this.pick(donors);
        const cut = this.int(Math.min(d.length, other.length) + 1);
        const e = new Uint8Array(other.length);
        e.set(d.subarray(0, cut));
        e.set(other.subarray(cut), cut);
        return e;
      }
      case 8: { // copy a range over another range
        if (d.length < 2) return d;
        const from = this.int(d.length);
        const to = this.int(d.length);
        const n = this.range(1, Math.min(d.length - from, d.length - to));
        d.copyWithin(to, from, from + n);
        return d;
      }
      case 9: // randomise a range
        if (d.length > 0) {
          const at = this.int(d.length);
          d.set(this.bytes(this.range(1, Math.min(32, d.length - at))), at);
        }
        return d;
      default: // swap in a different message type byte (and sometimes dirty reserved bytes)
        if (d.length > 0) d[0] = this.chance(0.8) ? this.range(0, 5) : this.int(256);
        if (d.length > 3 && this.chance(0.1)) d[1 + this.int(3)] = this.range(1, 255);
        return d;
    }
  }
}
