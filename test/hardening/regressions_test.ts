// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Regressions found by the hardening work. `tx_bytes` must count only
 * datagrams that left: the Linux bind queues datagrams and sends them in a
 * batch, and a batch that fails in `sendmmsg` (here ENETUNREACH) now hands
 * the bytes back to their peer (wireguard-go counts a datagram only when
 * `bind.Send` succeeded). Root.
 */
import assert from "node:assert/strict";
import { ping, pingUntil, vethPair, withNamespaces } from "../_util/netns.ts";
import { log, skipReason } from "./_net.ts";
import { digits, genKeyPair, startDaemon, wg } from "../_util/wg.ts";

Deno.test({
  name: "Peer tx_bytes does not count datagrams the socket refused (ENETUNREACH)",
  ignore: skipReason("regressions_test.ts", ["ip", "wg", "ping"]) !== "",
  async fn() {
    await withNamespaces("gthard", 2, async (ctx) => {
      const [na, nb] = ctx.namespaces;
      const dir = await Deno.makeTempDir({ prefix: "gthard-" });
      ctx.defer(() => Deno.remove(dir, { recursive: true }));
      await vethPair(na, nb, {
        nameA: "fa",
        nameB: "fb",
        addrA: "10.95.0.1/24",
        addrB: "10.95.0.2/24",
      });
      const id = digits();
      const a = await startDaemon(ctx, na, `gth${id}a`);
      const b = await startDaemon(ctx, nb, `gth${id}b`);
      const ka = await genKeyPair(dir), kb = await genKeyPair(dir);
      // deno-fmt-ignore
      await wg(["set", a.ifname, "private-key", ka.privateFile, "listen-port", "52001",
        "peer", kb.publicKey, "allowed-ips", "10.96.0.2/32", "endpoint", "10.95.0.2:52002"]);
      // deno-fmt-ignore
      await wg(["set", b.ifname, "private-key", kb.privateFile, "listen-port", "52002",
        "peer", ka.publicKey, "allowed-ips", "10.96.0.1/32"]);
      await a.ns.addrUp(a.ifname, "10.96.0.1/24");
      await b.ns.addrUp(b.ifname, "10.96.0.2/24");
      assert.notEqual(await pingUntil(na, "10.96.0.2", { timeoutMs: 10_000 }), null);
      const tx = async () =>
        Number((await wg(["show", a.ifname, "transfer"])).stdout.split("\t")[2]);
      const before = await tx();
      // No address: every datagram to B fails in sendmmsg with ENETUNREACH.
      await na.ip("addr", "del", "10.95.0.1/24", "dev", "fa");
      const r = await ping(na, "10.96.0.2", 10, { intervalS: 0.2, waitS: 1 });
      assert.equal(r.received, 0);
      const after = await tx();
      log(`tx_bytes ${before} → ${after} while every send failed`);
      assert.equal(after, before, "tx_bytes grew for datagrams that never left");
    });
  },
});
