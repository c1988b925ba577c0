// SPDX-License-Identifier: Apache-2.0
/**
 * A TCP stream at full rate through two gotatun daemons wakes V8's garbage collector at most a
 * few times. Both daemons run with DENO_V8_FLAGS=--trace-gc (V8 prints a line per collection,
 * in every isolate, to the daemon's stdout); after a short warm-up stream, a 5 s iperf3 stream
 * runs, and the collections printed meanwhile are counted.
 *
 * The bound is what separates a packet path that allocates nothing from one that allocates a
 * little per packet: when the clock's time reached the path through `clock.now()` calls, each
 * read was a heap number (≈ 40 bytes a packet), and this run saw 14–23 scavenges across both
 * daemons; reading it from the event loop's `tick` array, 0–1. Full collections
 * (mark-compacts) must not happen at all.
 *
 * Needs root, /dev/net/tun, ip, wg and iperf3; the program under test must be gotatun (the
 * count of --trace-gc lines at start-up proves the flag reached it).
 *
 * @module
 */

import assert from "node:assert/strict";
import { connectPair, iperf, pairVeth, removeDir, skipReason, tempDir } from "./_util.ts";
import { withNamespaces } from "../_util/netns.ts";
import { digits, startDaemon } from "../_util/wg.ts";

const SKIP = skipReason("gc_test.ts", ["ip", "wg", "iperf3", "stdbuf"]);

/** At most this many scavenges, both daemons together, during the 5 s stream. */
const MAX_SCAVENGES = 5;

/** Scavenges and mark-compacts in `--trace-gc` output. */
function collections(text: string): { scavenges: number; markCompacts: number } {
  const lines = text.split("\n");
  return {
    scavenges: lines.filter((l) => / Scavenge /.test(l)).length,
    markCompacts: lines.filter((l) => / Mark-Compact /.test(l)).length,
  };
}

Deno.test({
  name: "GC: a 5 s TCP stream through two daemons causes at most a few scavenges, no full GC",
  ignore: SKIP !== "",
  async fn() {
    const id = digits(6);
    await withNamespaces(`gte2e-${id}`, 2, async (ctx) => {
      const [ns1, ns2] = ctx.namespaces;
      const dir = await tempDir();
      ctx.defer(() => removeDir(dir));
      await pairVeth(ns1, ns2, `gtg${id}`);
      const wg1 = `gtg${id}1`, wg2 = `gtg${id}2`;
      const logs = [`${dir}/gc1.log`, `${dir}/gc2.log`];
      for (const [ns, ifname, logPath] of [[ns1, wg1, logs[0]], [ns2, wg2, logs[1]]] as const) {
        await startDaemon(ctx, ns, ifname, {
          env: { DENO_V8_FLAGS: "--trace-gc", LOG_LEVEL: "error" },
          logPath,
        });
      }
      await connectPair(ns1, ns2, wg1, wg2, dir);
      const stream = (seconds: number) =>
        iperf({
          server: ns2,
          client: ns1,
          address: "198.51.100.2",
          port: 5201,
          clientArgs: ["-t", String(seconds)],
          timeoutMs: (seconds + 20) * 1000,
        });
      // Warm-up: the first handshake and the JIT's work on the bulk path.
      await stream(2);
      const before = logs.map((l) => collections(Deno.readTextFileSync(l)));
      // Start-up itself collects a few times: no lines would mean the flag never arrived.
      assert.ok(before.every((c) => c.scavenges > 0), "--trace-gc output from both daemons");
      const report = await stream(5);
      const after = logs.map((l) => collections(Deno.readTextFileSync(l)));
      const bytes = report.end.sum_received?.bytes ?? 0;
      assert.ok(bytes > 100 * 2 ** 20, `the stream moved ${bytes} bytes`);
      const scavenges = after.reduce((n, c, i) => n + c.scavenges - before[i].scavenges, 0);
      const markCompacts = after.reduce(
        (n, c, i) => n + c.markCompacts - before[i].markCompacts,
        0,
      );
      const mbit = ((report.end.sum_received?.bits_per_second ?? 0) / 1e6).toFixed(0);
      assert.equal(markCompacts, 0, `full collections during the stream (${mbit} Mbit/s)`);
      assert.ok(
        scavenges <= MAX_SCAVENGES,
        `${scavenges} scavenges during the 5 s stream at ${mbit} Mbit/s (at most ${MAX_SCAVENGES})`,
      );
    });
  },
});
