// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Command line for the fake-clock soak (see soak.ts):
 *
 * ```
 * deno run -A --v8-flags=--expose-gc test/soak/main.ts [--hours 24] [--seed N]
 *     [--loss P] [--duplicate P] [--latency MS] [--jitter MS]
 *     [--roam-minutes M] [--churn-minutes M] [--crypto auto|native|noble]
 * ```
 *
 * Prints one row per simulated hour (wall time, memory, structure sizes,
 * handshakes, delivery, keepalives, problems) and a summary; exits 1 when
 * any hourly check failed. `--expose-gc` makes the memory figures follow a
 * full collection and enables the WeakRef census of keypairs and removed
 * peers.
 */
import { parseArgs } from "node:util";
import { useBestCryptoBackend } from "../../src/crypto/select.ts";
import { type HourRecord, runSoak } from "./soak.ts";
import { taskArgs } from "../_util/proc.ts";

// deno-lint-ignore no-console
const print = console.log;

const USAGE = `usage: deno run -A --v8-flags=--expose-gc test/soak/main.ts [--hours H] [--seed N]
       [--loss P] [--duplicate P] [--latency MS] [--jitter MS]
       [--roam-minutes M] [--churn-minutes M] [--crypto auto|native|noble]`;

function row(h: HourRecord): string {
  const p = h.pairs;
  const pct = (k: string) => {
    const x = p[k];
    return x.sent === 0 ? "   -  " : `${((x.delivered / x.sent) * 100).toFixed(1).padStart(5)}%`;
  };
  const idx = Object.values(h.sizes).map((s) => s.indexTable).join("/");
  const peers = Object.values(h.sizes).map((s) => s.peers).join("/");
  const live = h.liveKeypairs === null
    ? "   n/a"
    : `${String(h.liveKeypairs).padStart(3)}/${h.liveRemovedPeers}`;
  return [
    String(h.hour).padStart(4),
    `${(h.wallMs / 1000).toFixed(1).padStart(6)}s`,
    `${h.rssMiB.toFixed(1).padStart(7)}`,
    `${h.heapMiB.toFixed(2).padStart(7)}`,
    peers.padStart(6),
    idx.padStart(9),
    String(h.clockPending).padStart(5),
    live.padStart(7),
    `${String(p["A-B"].handshakes).padStart(3)}/${String(p["A-C"].handshakes).padStart(2)}/${
      String(p["B-C"].handshakes).padStart(2)
    }`,
    `${pct("A-B")} ${pct("A-C")} ${pct("B-C")}`,
    `${h.keepalives}/${h.keepalivesCtoA}`.padStart(8),
    `${h.roams}/${h.churns}`.padStart(5),
    h.problems.length === 0 ? "ok" : `${h.problems.length} problem(s)`,
  ].join("  ");
}

async function main(args: string[]): Promise<number> {
  let o;
  try {
    o = parseArgs({
      args,
      options: {
        hours: { type: "string", default: "24" },
        seed: { type: "string", default: "1" },
        loss: { type: "string", default: "0" },
        duplicate: { type: "string", default: "0" },
        latency: { type: "string", default: "0" },
        jitter: { type: "string", default: "0" },
        "roam-minutes": { type: "string", default: "20" },
        "churn-minutes": { type: "string", default: "30" },
        crypto: { type: "string", default: "auto" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (err) {
    print(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (o.help) {
    print(USAGE);
    return 0;
  }
  const nums = [
    o.hours,
    o.seed,
    o.loss,
    o.duplicate,
    o.latency,
    o.jitter,
    o["roam-minutes"],
    o["churn-minutes"],
  ]
    .map(Number);
  if (nums.some((n) => !Number.isFinite(n) || n < 0) || nums[0] <= 0) {
    print(`numeric options must be ≥ 0 (hours > 0)\n${USAGE}`);
    return 2;
  }
  print(useBestCryptoBackend(o.crypto).reason);
  const gc = typeof (globalThis as { gc?: unknown }).gc === "function";
  print(
    `soak: ${o.hours} h of protocol time, seed ${o.seed}, loss ${o.loss}, duplicate ${o.duplicate}, ` +
      `latency ${o.latency} ms, jitter ${o.jitter} ms, roam every ${o["roam-minutes"]} min, ` +
      `churn every ${o["churn-minutes"]} min${
        gc ? "" : " (no --expose-gc: memory without a full GC)"
      }`,
  );
  print("");
  print(
    "hour    wall  RSS MiB heap MiB  peers  idx A/B/C  timers  kp/rmP  hs AB/AC/BC  " +
      "delivered AB    AC     BC  keepal/C→A  roam/churn",
  );
  const report = await runSoak({
    hours: nums[0],
    seed: nums[1],
    loss: nums[2],
    duplicate: nums[3],
    latency: nums[4],
    jitter: nums[5],
    roamMinutes: nums[6],
    churnMinutes: nums[7],
    onHour(h) {
      print(row(h));
      for (const p of h.problems) print(`      ! ${p}`);
    },
  });
  const hs = report.hours;
  const first = hs[Math.min(1, hs.length - 1)], last = hs[hs.length - 1];
  print("");
  print(`simulated ${hs.length} h in ${(report.wallMs / 1000).toFixed(1)} s wall`);
  if (hs.length > 0) {
    const sum = (f: (h: HourRecord) => number) => hs.reduce((a, h) => a + f(h), 0);
    const sent = sum((h) => Object.values(h.pairs).reduce((a, p) => a + p.sent, 0));
    const lost = sum((h) => Object.values(h.pairs).reduce((a, p) => a + p.lost, 0));
    print(
      `packets: ${sent} sent, ${lost} lost (${((lost / Math.max(1, sent)) * 100).toFixed(3)}%); ` +
        `handshakes A-B ${sum((h) => h.pairs["A-B"].handshakes)}, A-C ${
          sum((h) => h.pairs["A-C"].handshakes)
        }, B-C ${sum((h) => h.pairs["B-C"].handshakes)}; keepalives ${sum((h) => h.keepalives)}; ` +
        `roams ${sum((h) => h.roams)}, churns ${sum((h) => h.churns)}`,
    );
    print(
      `memory: RSS ${first.rssMiB.toFixed(1)} → ${last.rssMiB.toFixed(1)} MiB, heap ${
        first.heapMiB.toFixed(2)
      } → ${last.heapMiB.toFixed(2)} MiB (hour ${first.hour} → ${last.hour})`,
    );
    print(`counters: ${JSON.stringify(last.counters)}`);
  }
  print(report.problems.length === 0 ? "OK" : `FAILED: ${report.problems.length} problem(s)`);
  return report.problems.length === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(taskArgs()));
