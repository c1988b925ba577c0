// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Command line for the deterministic fuzz targets (see targets.ts):
 *
 * ```
 * deno run -A test/fuzz/main.ts [--seed N] [--iterations N] [--minutes M]
 *                               [--target NAME]... [--crypto auto|native|noble]
 * ```
 *
 * Without `--minutes`, each target runs one round of `--iterations`
 * iterations (default: about a second's worth) from `--seed`. With
 * `--minutes M`, the targets share M minutes, running rounds with seeds
 * seed, seed+1, … A round is reproduced exactly by
 * `--target NAME --seed S --iterations N`, which every finding prints.
 * Prints iterations, inputs per second, exceptions, failures and RSS before
 * and after each target; exits 1 on any exception or failure. Run with
 * `--v8-flags=--expose-gc` to measure memory after a full collection.
 */
import { parseArgs } from "node:util";
import { useBestCryptoBackend } from "../../src/crypto/select.ts";
import { seededRng } from "../_util/fake_clock.ts";
import type { FuzzStats } from "./harness.ts";
import { ROUND_ITERATIONS, TARGETS } from "./targets.ts";
import { taskArgs } from "../_util/proc.ts";

// deno-lint-ignore no-console
const print = console.log;

const USAGE = `usage: deno run -A test/fuzz/main.ts [--seed N] [--iterations N] [--minutes M]
       [--target NAME]... [--crypto auto|native|noble]
targets: ${Object.keys(TARGETS).join(", ")}`;

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

function memory(): { rss: number; heap: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const m = Deno.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

async function main(args: string[]): Promise<number> {
  let opts;
  try {
    opts = parseArgs({
      args,
      options: {
        seed: { type: "string" },
        iterations: { type: "string" },
        minutes: { type: "string" },
        target: { type: "string", multiple: true },
        crypto: { type: "string", default: "auto" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (err) {
    print(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    print(USAGE);
    return 0;
  }
  const names = opts.target ?? Object.keys(TARGETS);
  for (const n of names) {
    if (!(n in TARGETS)) {
      print(`unknown target ${JSON.stringify(n)}\n${USAGE}`);
      return 2;
    }
  }
  const seed = opts.seed !== undefined
    ? Number(opts.seed) >>> 0
    : crypto.getRandomValues(new Uint32Array(1))[0];
  const iterationsArg = opts.iterations !== undefined ? Number(opts.iterations) : undefined;
  const minutes = opts.minutes !== undefined ? Number(opts.minutes) : undefined;
  if (
    (iterationsArg !== undefined && !(iterationsArg >= 1)) ||
    (minutes !== undefined && !(minutes > 0))
  ) {
    print(`--iterations must be ≥ 1 and --minutes > 0\n${USAGE}`);
    return 2;
  }
  const selection = useBestCryptoBackend(opts.crypto);
  print(`${selection.reason}`);
  print(`seed ${seed}${minutes ? `, ${minutes} min` : ""}, targets ${names.join(", ")}`);
  print("");
  print(
    "target        rounds  iterations      inputs   inputs/s  exceptions  failures  " +
      "RSS MiB before → after  heap MiB before → after",
  );
  let bad = 0;
  const budgetMs = minutes ? (minutes * 60_000) / names.length : 0;
  for (const name of names) {
    const target = TARGETS[name];
    const perRound = iterationsArg ?? ROUND_ITERATIONS[name];
    const before = memory();
    const total: FuzzStats[] = [];
    const start = performance.now();
    let round = 0;
    do {
      const roundSeed = (seed + round) >>> 0;
      const deadline = budgetMs ? start + budgetMs : undefined;
      const s = await target(seededRng(roundSeed), perRound, { deadline });
      total.push(s);
      for (const f of s.findings) {
        print(`\n[${name}] ${f.kind} at iteration ${f.iteration}: ${f.message}`);
        if (f.stack) print(f.stack);
        if (f.input) print(`input: ${f.input}`);
        print(
          `reproduce: deno run -A test/fuzz/main.ts --target ${name} --seed ${roundSeed} ` +
            `--iterations ${s.iterations}`,
        );
      }
      round++;
    } while (budgetMs && performance.now() - start < budgetMs);
    const after = memory();
    const sum = (k: "iterations" | "inputs" | "exceptions" | "failures" | "ms") =>
      total.reduce((a, s) => a + s[k], 0);
    const ms = sum("ms");
    bad += sum("exceptions") + sum("failures");
    print(
      [
        name.padEnd(12),
        String(round).padStart(7),
        String(sum("iterations")).padStart(11),
        String(sum("inputs")).padStart(11),
        String(Math.round(sum("inputs") / (ms / 1000))).padStart(10),
        String(sum("exceptions")).padStart(11),
        String(sum("failures")).padStart(9),
        `${mib(before.rss).padStart(8)} → ${mib(after.rss).padEnd(13)}`,
        `${mib(before.heap).padStart(8)} → ${mib(after.heap)}`,
      ].join(" "),
    );
    const counters: Record<string, number> = {};
    for (const s of total) {
      for (const [k, v] of Object.entries(s.counters)) {
        counters[k] = k.startsWith("peak") ? Math.max(counters[k] ?? 0, v) : (counters[k] ?? 0) + v;
      }
    }
    print(
      `  ${
        Object.entries(counters).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`)
          .join(" ")
      }`,
    );
  }
  print("");
  print(bad === 0 ? "OK: no exceptions, no failures" : `FAILED: ${bad} exceptions/failures`);
  return bad === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(taskArgs()));
