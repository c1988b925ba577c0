// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * LinuxTun against the real kernel, root only. Each test makes its own
 * network namespaces (`gtio-<random>`) and runs `_tun_helper.ts` inside one
 * with `ip netns exec`, then asserts on the JSON the helper prints.
 */
import assert from "node:assert/strict";
import {
  addNetns,
  delNetns,
  denoInNetns,
  NETNS_NEEDS,
  runHelper,
  SETPRIV_NEEDS,
  sh,
} from "../conn/_netns.ts";
import { ignoreUnless } from "../_util/needs.ts";

const ignore = ignoreUnless("test/tun/linux_test.ts", NETNS_NEEDS);
const helper = new URL("./_tun_helper.ts", import.meta.url);
const IF = "gtiotun0";

Deno.test({
  name: "LinuxTun.create() makes the exact name with MTU 1420; fromFd() adopts it",
  ignore,
  async fn() {
    const ns = await addNetns();
    try {
      const r = await runHelper(ns, helper, ["create", IF]);
      assert.equal(r.name, IF);
      assert.equal(r.mtu, 1420);
      assert.equal(r.fdOk, true);
      assert.match(String(r.ipLink), new RegExp(`^\\d+: ${IF}: .* mtu 1420 `));
      assert.equal(r.busy, "Failed to create TUN device: Device or resource busy");
      assert.match(String(r.pattern), /^Failed to create TUN device: invalid interface name/);
      assert.match(String(r.tooLong), /^Failed to create TUN device: invalid interface name/);
      assert.equal(r.fromFdName, IF);
      assert.equal(r.fromFdMtu, 1420);
      assert.equal(r.customMtu, 1280);
      assert.match(String(r.customIpLink), / mtu 1280 /);
      assert.equal(r.afterClose, false, "closing the last fd removes the interface");
    } finally {
      await delNetns(ns);
    }
  },
});

Deno.test({
  name: "LinuxTun.create() reports EPERM without CAP_NET_ADMIN",
  ignore: ignoreUnless("test/tun/linux_test.ts", SETPRIV_NEEDS),
  async fn() {
    const ns = await addNetns();
    try {
      const cmd = denoInNetns(ns, helper, ["eperm", IF]);
      // ip netns exec <ns> setpriv … deno …: drop the capability just for the helper.
      cmd.splice(4, 0, "setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin");
      const out = await sh(cmd, 30_000);
      assert.equal(out.code, 0, out.stderr);
      const r = JSON.parse(out.stdout.trim().split("\n").pop()!);
      assert.equal(r.error, "Failed to create TUN device: Operation not permitted");
    } finally {
      await delNetns(ns);
    }
  },
});

Deno.test({
  name: "LinuxTun.refreshMtu() sees `ip link set mtu` and caps at 65503",
  ignore,
  async fn() {
    const ns = await addNetns();
    try {
      const r = await runHelper(ns, helper, ["mtu", IF]);
      assert.deepEqual(r, {
        before: 1420,
        unchanged: false,
        changed: true,
        after: 1300,
        again: false,
        capped: 65535 - 32,
      });
    } finally {
      await delNetns(ns);
    }
  },
});

Deno.test({
  name: "LinuxTun.drain() reads routed packets and write() delivers them (ping, UDP)",
  ignore,
  async fn() {
    const ns = await addNetns();
    try {
      const r = await runHelper(ns, helper, ["io", IF]);
      assert.equal(r.echo4, 1, "the ICMP echo request to 10.99.0.2 was read from the TUN");
      assert.equal(r.pingOk, true, "the echo reply written to the TUN reached ping");
      assert.equal(r.echo6, 1, "the ICMPv6 echo request to fd99::2 was read from the TUN");
      assert.deepEqual(r.udp, ["10.99.0.2:4321 hi"]);
      assert.equal(r.writeErrors, 0);
      assert.equal(r.writeErrorsAfterJunk, 1, "a malformed packet is counted, not thrown");
    } finally {
      await delNetns(ns);
    }
  },
});

Deno.test({
  name: "LinuxTun.linkState() follows up/down, also after moving to another netns",
  ignore,
  async fn() {
    const ns = await addNetns();
    const other = await addNetns();
    try {
      const r = await runHelper(ns, helper, ["state", IF, other]);
      assert.deepEqual(r, {
        initial: "down",
        up: "up",
        down: "down",
        moved: "down", // dev_change_net_namespace() closes the device
        movedUp: "up",
        movedMtuRefresh: false,
        movedDown: "down",
        gone: "gone",
        drain: -1,
        closed: "gone",
      });
    } finally {
      await delNetns(ns, other);
    }
  },
});

Deno.test({
  name: "LinuxTun.drain() returns -1 after `ip link del` and the event loop wakes for it",
  ignore,
  async fn() {
    const ns = await addNetns();
    try {
      const r = await runHelper(ns, helper, ["delete", IF]);
      assert.equal(r.drain, -1);
      assert.ok(Number(r.calls) >= 1);
      assert.ok(Number(r.stoppedMs) < 3000, `event loop noticed the deletion in ${r.stoppedMs} ms`);
      assert.equal(r.state, "gone");
      assert.equal(r.writeErrors, 1);
    } finally {
      await delNetns(ns);
    }
  },
});
