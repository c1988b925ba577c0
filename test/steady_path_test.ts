// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The steady data path allocates nothing per packet: 100 000 packets each way
 * between two in-memory devices (after handshake and warm-up) run without a
 * single young-generation GC. test/_util/steady_path.ts does the pushing in a
 * child process with `--trace-gc` and a 1 MiB young generation (a test file
 * cannot set V8 flags for itself), so about 5 bytes a packet would already
 * show up as a scavenge between its two `gc()` markers.
 */
import assert from "node:assert/strict";
import { scavengesBetweenMarkers } from "./_util/gc_trace.ts";

const script = new URL("./_util/steady_path.ts", import.meta.url);
const root = new URL("..", import.meta.url);

interface Summary {
  packets: number;
  deliveredToA: number;
  deliveredToB: number;
  receiverIndices: number[];
  bytesPerPacket: number;
  stats: { a: Record<string, number>; b: Record<string, number> };
}

Deno.test("steady path: 100 000 packets each way through two devices cause no scavenge", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc,--trace-gc,--max-semi-space-size=1",
      script.pathname,
      "100000",
    ],
    cwd: root.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const summary = JSON.parse(stderr.trim().split("\n").at(-1)!) as Summary;
  assert.equal(summary.deliveredToB, 100_000);
  assert.equal(summary.deliveredToA, 100_000);
  for (const side of [summary.stats.a, summary.stats.b]) {
    for (const [reason, n] of Object.entries(side)) assert.equal(n, 0, `${reason}: ${n}`);
  }
  // Receiver indices above 2^31 − 1 are not small integers to V8; the run must cover them.
  for (const index of summary.receiverIndices) assert.ok(index >= 2 ** 31, `index ${index}`);
  const { markers, scavenges } = scavengesBetweenMarkers(stdout);
  // Both markers must be there, or the count below would prove nothing.
  assert.equal(markers, 2, `expected two gc() markers in the --trace-gc output:\n${stdout}`);
  assert.equal(
    scavenges,
    0,
    `${scavenges} scavenges while 200 000 packets went through ` +
      `(${summary.bytesPerPacket.toFixed(1)} bytes/packet of heap growth)`,
  );
});
