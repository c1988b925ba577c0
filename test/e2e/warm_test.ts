// SPDX-License-Identifier: Apache-2.0
/**
 * The daemon compiles its handshake and packet code at start-up (src/warmup.ts) so that the
 * first handshake through a new tunnel runs optimised code. V8 throws optimised code away when
 * an assumption it was built on breaks, e.g. "dependent prototype chain changed"; the
 * data-plane Worker's first `postMessage` did exactly that to blake2s and the noise helpers,
 * and the first ping after config took 4–5 ms instead of under 3. This test runs two gotatun
 * daemons with V8's deopt log on (DENO_V8_FLAGS=--log-deopt, one file per isolate), makes the
 * first handshake with one ping, and checks that none of our own code (file: URLs) was
 * deoptimised for a dependency change in any isolate of either daemon.
 *
 * Needs root, /dev/net/tun, ip, wg and ping; the program under test must be gotatun (a Deno
 * program writes the V8 log; anything else fails the "logs were written" check).
 *
 * @module
 */

import assert from "node:assert/strict";
import { connectPair, pairVeth, removeDir, skipReason, tempDir } from "./_util.ts";
import { ping, withNamespaces } from "../_util/netns.ts";
import { digits, launchDaemon, program, wg } from "../_util/wg.ts";

const SKIP = skipReason("warm_test.ts", ["ip", "wg", "ping", "env"]);

/** `code-deopt` lines of V8 logs for our code that V8 threw away because a dependency changed. */
function dependencyDeopts(logText: string): string[] {
  return logText.split("\n").filter((l) =>
    l.startsWith("code-deopt,") && l.includes(",dependency-change,") && l.includes("<file:")
  );
}

Deno.test({
  name: "warm-up: the first handshake runs code that no later start-up step deoptimised",
  ignore: SKIP !== "",
  async fn() {
    const id = digits(6);
    await withNamespaces(`gte2e-${id}`, 2, async ({ namespaces: [ns1, ns2], defer }) => {
      const dir = await tempDir();
      defer(() => removeDir(dir));
      const logDirs = [`${dir}/v8-1`, `${dir}/v8-2`];
      for (const d of logDirs) await Deno.mkdir(d);
      await pairVeth(ns1, ns2, `gte${id}`);
      const wg1 = `gte${id}1`, wg2 = `gte${id}2`;
      // V8 writes isolate-<address>-<pid>-v8.log files into the working directory.
      for (
        const [ns, ifname, logDir] of [[ns1, wg1, logDirs[0]], [ns2, wg2, logDirs[1]]] as const
      ) {
        await launchDaemon(ns, program(), ifname, {
          wrapper: ["env", "-C", logDir, "DENO_V8_FLAGS=--log-deopt"],
        });
      }
      await connectPair(ns1, ns2, wg1, wg2, dir);
      const r = await ping(ns1, "198.51.100.2", 1, { waitS: 5 });
      assert.equal(r.received, 1, `first ping through the tunnel\n${r.output}`);
      // The handshake really happened (both roles ran their code).
      const hs = (await wg(["show", wg2, "latest-handshakes"])).stdout;
      assert.match(hs, /\t[1-9]\d*\n?$/, `responder's latest handshake: ${hs}`);

      for (const [i, logDir] of logDirs.entries()) {
        const files = [...Deno.readDirSync(logDir)].filter((e) => e.name.endsWith("-v8.log"));
        // The main thread's isolate and the data-plane Worker's, at least.
        assert.ok(files.length >= 2, `daemon ${i + 1}: V8 logs written: ${files.length}`);
        const deopts = files.flatMap((f) =>
          dependencyDeopts(Deno.readTextFileSync(`${logDir}/${f.name}`))
        );
        assert.deepEqual(deopts, [], `daemon ${i + 1}: our code deoptimised after warm-up`);
      }
    });
  },
});
