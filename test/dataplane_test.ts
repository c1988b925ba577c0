// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Dataplane against the real kernel, root only: each test makes its own
 * network namespace and runs test/_util/dataplane_helper.ts inside it, which
 * runs each Dataplane in a Worker blocked in epoll_wait, as the daemon does.
 * Nothing is timed: the helper waits for events with generous timeouts.
 */
import assert from "node:assert/strict";
import { type Netns, withNamespaces } from "./_util/netns.ts";
import { ignoreUnless, type Needs } from "./_util/needs.ts";
import { SETTLE_MS, WINDOW_MS } from "./_util/dataplane_helper.ts";

const LABEL = "test/dataplane_test.ts";
const NEEDS: Needs = { root: true, tun: true, tools: ["ip"] };
const helper = new URL("./_util/dataplane_helper.ts", import.meta.url).pathname;

/** The helper's findings about one Dataplane. */
interface PlaneResult {
  why: string;
  configError?: string | null;
  handshakeBeforeWindow?: boolean;
  windowWakeups?: number;
  windowTxBytes?: number;
  windowRxBytes?: number;
  errors: string[];
  log: string[];
}

/** Runs the helper's scenario in `ns`; its last stdout line is the JSON result. */
async function runHelper(ns: Netns, ...args: string[]): Promise<unknown> {
  const out = await ns.exec(Deno.execPath(), "run", "-A", "--no-prompt", helper, ...args);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout.trim().split("\n").pop()!);
}

for (
  const [scenario, when] of [
    ["delete", "when its link is deleted"],
    ["delete-before-run", "when its link was deleted before its loop started"],
  ] as const
) {
  Deno.test({
    name: `Dataplane in a Worker stops with "interface deleted" ${when}`,
    ignore: ignoreUnless(LABEL, NEEDS),
    async fn() {
      await withNamespaces("gtdp", 1, async ({ namespaces: [ns] }) => {
        const r = await runHelper(ns, scenario, "gtdp0") as PlaneResult;
        assert.equal(r.why, "interface deleted", r.log.join("\n"));
        assert.deepEqual(r.errors, []);
        assert.equal(await ns.hasLink("gtdp0"), false);
      });
    },
  });
}

Deno.test({
  name: "Dataplane idle with a keepalive peer: its loop wakes for timers and packets only",
  ignore: ignoreUnless(LABEL, NEEDS),
  async fn() {
    await withNamespaces("gtdp", 1, async ({ namespaces: [ns] }) => {
      const r = await runHelper(ns, "idle", "gtdpa", "gtdpb") as Record<string, PlaneResult>;
      for (const [name, p] of Object.entries(r)) {
        const log = `${name}:\n${p.log.join("\n")}`;
        assert.equal(p.configError, null, log);
        assert.deepEqual(p.errors, [], log);
        assert.equal(p.why, "stopped", log);
        assert.equal(p.handshakeBeforeWindow, true, log);
        // Per second: the 1 s link tick, and A's keepalive timer or B's
        // receipt of it, plus a few other timers. A loop that polled would
        // wake hundreds of times in the window.
        assert.ok(
          p.windowWakeups! <= 20,
          `${name}: ${p.windowWakeups} wake-ups in ${WINDOW_MS} ms (after ${SETTLE_MS} ms)\n${log}`,
        );
      }
      // The peer was busy meanwhile: A's keepalives (32 bytes each) reached B.
      assert.ok(r.a.windowTxBytes! >= 32, `A sent ${r.a.windowTxBytes} bytes`);
      assert.ok(r.b.windowRxBytes! >= 32, `B received ${r.b.windowRxBytes} bytes`);
    });
  },
});
