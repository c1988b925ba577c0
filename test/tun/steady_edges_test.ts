// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The Linux edges allocate nothing per packet: LinuxBind (sendmmsg with UDP
 * GSO, recvmmsg with UDP GRO, IPv4 and IPv6), a plain LinuxTun (read and
 * write) and a LinuxTun with offloads (TCP segments coalesced on write,
 * virtio frames read) carry 5000 rounds of packets in a namespace of this
 * test without a single young-generation GC. `_steady_edges.ts` does the
 * pushing in a child process with `--trace-gc` and a 1 MiB young generation
 * (a test cannot set V8 flags for itself).
 */
import assert from "node:assert/strict";
import { addNetns, delNetns, NETNS_NEEDS } from "../conn/_netns.ts";
import { ignoreUnless } from "../_util/needs.ts";
import { scavengesBetweenMarkers } from "../_util/gc_trace.ts";

const script = new URL("./_steady_edges.ts", import.meta.url);
const ROUNDS = 5000;

interface Summary {
  rounds: number;
  datagrams: number;
  badDatagrams: number;
  plainReplies: number;
  vnetReplies: number;
  resets: number;
  gro: { on: boolean; messages: number; segments: number };
  gso: { on: boolean; messages: number; segments: number };
  coalescedFrames: number;
  writeErrors: number;
  sendErrors: number;
  recvErrors: number;
  bytesPerPacket: number;
}

Deno.test({
  name: "Linux edges: 5000 rounds of UDP, TUN and offload-TUN packets cause no scavenge",
  ignore: ignoreUnless("test/tun/steady_edges_test.ts", NETNS_NEEDS),
  async fn() {
    const ns = await addNetns();
    try {
      const out = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns,
          Deno.execPath(),
          "run",
          "-A",
          "--no-prompt",
          "--v8-flags=--expose-gc,--trace-gc,--max-semi-space-size=1",
          script.pathname,
          String(ROUNDS),
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(120_000),
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const s = JSON.parse(stderr.trim().split("\n").at(-1)!) as Summary;
      // Every packet of every round arrived, intact, without errors.
      assert.equal(s.datagrams, 64 * ROUNDS);
      assert.equal(s.badDatagrams, 0);
      assert.equal(s.plainReplies, 16 * ROUNDS);
      assert.ok(s.vnetReplies >= ROUNDS && s.resets >= ROUNDS, JSON.stringify(s));
      assert.deepEqual([s.writeErrors, s.sendErrors, s.recvErrors], [0, 0, 0]);
      // The measured rounds went through the offload paths, not around them.
      // (UDP GSO and GRO where the kernel has them: Linux ≥ 4.18 and ≥ 5.12.)
      if (s.gso.on) assert.ok(s.gso.segments > s.gso.messages, `GSO unused: ${JSON.stringify(s)}`);
      if (s.gro.on) assert.ok(s.gro.segments > s.gro.messages, `GRO unused: ${JSON.stringify(s)}`);
      assert.ok(s.coalescedFrames >= ROUNDS, `${s.coalescedFrames} coalesced TUN frames`);
      const { markers, scavenges } = scavengesBetweenMarkers(stdout);
      // Both markers must be there, or the count below would prove nothing.
      assert.equal(markers, 2, `expected two gc() markers in the --trace-gc output:\n${stdout}`);
      assert.equal(
        scavenges,
        0,
        `${scavenges} scavenges in ${ROUNDS} rounds ` +
          `(${s.bytesPerPacket.toFixed(2)} bytes/packet of heap growth)`,
      );
    } finally {
      await delNetns(ns);
    }
  },
});
