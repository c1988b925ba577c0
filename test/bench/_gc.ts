// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Garbage collections of a daemon under test, counted from its own trace on
 * stdout/stderr: the bench starts the main tunnel's daemons with
 * `DENO_V8_FLAGS=--trace-gc` (V8: one line per collection, e.g.
 * `[123:0x55d…]   17 ms: Scavenge 3.4 (4.4) -> 3.0 (5.2) MB, …`) and
 * `GODEBUG=gctrace=1` (Go: `gc 7 @0.512s 1%: …`), each ignored by the other
 * runtime, with that output in a file (see _env.ts). A {@link GcLog} counts
 * the lines that a test window added.
 */

/** Collections by kind. Go's collector has no young generation: all its cycles count as full. */
export interface GcCounts {
  /** V8 Scavenge / Minor Mark-Sweep. */
  young: number;
  /** V8 Mark-Compact (incremental or not) / Mark-sweep; Go GC cycles. */
  full: number;
}

const V8_LINE =
  /^\[\d+:0x[0-9a-f]+\]\s+\d+ ms: (?:Incremental )?(Scavenge|Minor Mark-Sweep|Mark-Compact|Mark-sweep)\b/;
const GO_LINE = /^gc \d+ @[\d.]+s \d+%: /;

/** countGc() counts the collection lines in a stretch of V8 --trace-gc and/or Go gctrace output. */
export function countGc(text: string): GcCounts {
  const out: GcCounts = { young: 0, full: 0 };
  for (const line of text.split("\n")) {
    const v8 = V8_LINE.exec(line);
    if (v8) {
      if (v8[1] === "Scavenge" || v8[1] === "Minor Mark-Sweep") out.young++;
      else out.full++;
    } else if (GO_LINE.test(line)) {
      out.full++;
    }
  }
  return out;
}

/** The runtime whose trace a `--version` line promises: "v8" (gotatun), "go" (wireguard-go), or "". */
export function runtimeOf(versionLine: string): "v8" | "go" | "" {
  if (/^gotatun\b/i.test(versionLine)) return "v8";
  if (/^wireguard-go\b/i.test(versionLine)) return "go";
  return "";
}

/** The trace file of one daemon; {@link mark} and {@link since} delimit a test window. */
export class GcLog {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /** mark() is the current length of the file, the start of a window. */
  mark(): number {
    try {
      return Deno.statSync(this.path).size;
    } catch {
      return NaN;
    }
  }

  /** since() counts what was written after `offset`; NaN counts when the file is unreadable. */
  since(offset: number): GcCounts {
    try {
      if (!Number.isFinite(offset)) throw new Error("no start");
      const bytes = Deno.readFileSync(this.path);
      return countGc(new TextDecoder().decode(bytes.subarray(offset)));
    } catch {
      return { young: NaN, full: NaN };
    }
  }

  /** tail() is the end of the file (for error messages about a daemon that died). */
  tail(chars = 400): string {
    try {
      return Deno.readTextFileSync(this.path).slice(-chars).trim();
    } catch {
      return "";
    }
  }
}

/** The collections of some daemons between before() and after() (an {@link Around} of _metrics.ts). */
export class GcWindow {
  readonly #logs: readonly (GcLog | null)[];
  #start: number[] = [];
  /** Summed over the logs; NaN when a log is missing or unreadable. */
  counts: GcCounts = { young: NaN, full: NaN };

  constructor(logs: readonly (GcLog | null)[]) {
    this.#logs = logs;
  }
  before(): void {
    this.#start = this.#logs.map((l) => l?.mark() ?? NaN);
  }
  after(): void {
    const each = this.#logs.map((l, i) => l?.since(this.#start[i]) ?? { young: NaN, full: NaN });
    this.counts = {
      young: each.reduce((s, c) => s + c.young, 0),
      full: each.reduce((s, c) => s + c.full, 0),
    };
  }
}
