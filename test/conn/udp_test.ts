// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * LinuxBind against the real kernel, root only. Each test makes its own
 * network namespaces (`gtio-<random>`) and runs `_udp_helper.ts` (and, for
 * the two-namespace tests, the `_udp_server.ts` echo server) inside them with
 * `ip netns exec`, then asserts on the JSON the helper prints.
 *
 * ```
 *   ns A                          ns B
 *   gtioa… 10.77.0.3/24  <veth>  gtiob… 10.77.0.1/24, 10.77.0.2/24
 *          fd77::3/64                   fd77::1/64, fd77::2/64
 *   _udp_helper.ts client               _udp_server.ts
 * ```
 */
import assert from "node:assert/strict";
import {
  addNetns,
  Background,
  canUseNetns,
  delNetns,
  denoInNetns,
  hasTool,
  must,
  runHelper,
  sh,
  uniqueName,
} from "./_netns.ts";

const ignore = !canUseNetns();
const helper = new URL("./_udp_helper.ts", import.meta.url);
const server = new URL("./_udp_server.ts", import.meta.url);

Deno.test({
  name: "LinuxBind.open() binds IPv4 and IPv6 (V6ONLY) on one port; EADDRINUSE is BindError(-98)",
  ignore,
  async fn() {
    const ns = await addNetns();
    try {
      const r = await runHelper(ns, helper, ["ports", "51820"]);
      const port = Number(r.port);
      assert.ok(port > 0 && port < 65536);
      assert.equal(r.fds, 2);
      assert.equal(r.v6only, 1);
      assert.ok(Number(r.rcvbuf) >= 7 << 20, `rcvbuf ${r.rcvbuf}`);
      assert.ok(Number(r.sndbuf) >= 7 << 20, `sndbuf ${r.sndbuf}`);
      assert.match(String(r.ss), new RegExp(`0\\.0\\.0\\.0:${port} `));
      assert.match(String(r.ss), new RegExp(`\\[::\\]:${port} `));
      assert.deepEqual(r.inUse, {
        errno: -98,
        message: `listen udp4 :${port}: bind: address already in use`,
      });
      assert.equal(r.fixed, 51820);
      assert.equal(r.fixedFds, 2);
      assert.match(String(r.ssAfterReopen), /0\.0\.0\.0:51820 /);
      assert.match(String(r.ssAfterReopen), /\[::\]:51820 /);
      assert.doesNotMatch(String(r.ssAfterReopen), new RegExp(`:${port} `), "reopen closed old");
      assert.equal(r.portZeroAgain, true);
      assert.equal(r.fdsAfterClose, 0);
      assert.equal(r.portAfterClose, 0);
      assert.equal(r.sendAfterClose, false);
      assert.equal(r.ssAfterClose, "");
    } finally {
      await delNetns(ns);
    }
  },
});

Deno.test({
  name: "LinuxBind.setMark() applies SO_MARK now and on later opens",
  ignore,
  async fn() {
    const ns = await addNetns();
    try {
      const r = await runHelper(ns, helper, ["mark"]);
      assert.deepEqual(r.marks, [0x1234, 0x1234]);
      assert.equal(String(r.ss).match(/fwmark:0x1234/g)?.length, 2, String(r.ss));
      assert.deepEqual(r.marksChanged, [0xca6c, 0xca6c]);
      assert.deepEqual(r.marksReopened, [0xca6c, 0xca6c]);
      assert.deepEqual(r.marksCleared, [0, 0]);
    } finally {
      await delNetns(ns);
    }
  },
});

Deno.test({
  name: "LinuxBind.setMark() without CAP_NET_ADMIN throws BindError(-98)",
  ignore: ignore || !hasTool("setpriv"),
  async fn() {
    const ns = await addNetns();
    try {
      const cmd = denoInNetns(ns, helper, ["markperm"]);
      // SO_MARK needs CAP_NET_ADMIN or CAP_NET_RAW: drop both for the helper only.
      const caps = "-net_admin,-net_raw";
      cmd.splice(4, 0, "setpriv", "--bounding-set", caps, "--inh-caps", caps);
      const out = await sh(cmd, 30_000);
      assert.equal(out.code, 0, out.stderr);
      const r = JSON.parse(out.stdout.trim().split("\n").pop()!);
      const refused = {
        errno: -98,
        message: "failed to update fwmark 0x7: operation not permitted",
      };
      assert.equal(r.openOk, 2);
      assert.deepEqual(r.setMark, refused);
      assert.equal(r.markRemembered, 7);
      assert.deepEqual(r.reopen, refused);
      assert.equal(r.fdsAfterFailedOpen, 0);
    } finally {
      await delNetns(ns);
    }
  },
});

Deno.test({
  name: "LinuxBind batches 100 datagrams per family over loopback, in order",
  ignore,
  async fn() {
    const ns = await addNetns();
    try {
      const r = await runHelper(ns, helper, ["loopback"]);
      for (const host of ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]"]) {
        assert.equal(r[`count ${host}`], 100, host);
        assert.equal(r[`inorder ${host}`], true, host);
      }
      assert.match(String(r["from [::1]"]), /^\[::1\]:\d+$/);
      // An IPv4-mapped destination leaves through the IPv4 socket.
      assert.match(String(r["from [::ffff:127.0.0.1]"]), /^127\.0\.0\.1:\d+$/);
      assert.equal(r.sendErrors, 0);
      assert.equal(r.recvErrors, 0);
      assert.equal(r.bigLen, 60000);
    } finally {
      await delNetns(ns);
    }
  },
});

Deno.test({
  name: "LinuxBind round trip across a veth pair: sticky sources, batching, vanished source",
  ignore,
  async fn() {
    const a = await addNetns();
    const b = await addNetns();
    const va = uniqueName("gtioa"), vb = uniqueName("gtiob");
    let srv: Background | null = null;
    try {
      await must(["ip", "link", "add", va, "netns", a, "type", "veth", "peer", vb, "netns", b]);
      await must(["ip", "-n", a, "addr", "add", "10.77.0.3/24", "dev", va]);
      await must(["ip", "-n", a, "addr", "add", "fd77::3/64", "dev", va, "nodad"]);
      await must(["ip", "-n", a, "link", "set", va, "up"]);
      for (const addr of ["10.77.0.1/24", "10.77.0.2/24"]) {
        await must(["ip", "-n", b, "addr", "add", addr, "dev", vb]);
      }
      for (const addr of ["fd77::1/64", "fd77::2/64"]) {
        await must(["ip", "-n", b, "addr", "add", addr, "dev", vb, "nodad"]);
      }
      await must(["ip", "-n", a, "addr", "add", "fe80::a/64", "dev", va, "nodad"]);
      await must(["ip", "-n", b, "addr", "add", "fe80::b/64", "dev", vb, "nodad"]);
      await must(["ip", "-n", b, "link", "set", vb, "up"]);
      const ifindexA = JSON.parse(await must(["ip", "-n", a, "-j", "link", "show", va]))[0].ifindex;

      srv = new Background(denoInNetns(b, server, ["0"]));
      const ready = await srv.nextLine();
      const m = /^READY (\d+)$/.exec(ready);
      assert.ok(m, ready);
      const port = m[1];
      const r = await runHelper(a, helper, [
        "client",
        "10.77.0.1",
        "10.77.0.2",
        "fd77::1",
        "fd77::2",
        port,
        b,
        vb,
        `fe80::b%${va}`,
      ]);
      const from = (k: string) => (r[k] as { from: string } | null)?.from;
      // Sticky: each reply leaves from the address the request was sent to.
      assert.equal(from("echo4a"), `10.77.0.1:${port}`);
      assert.equal(from("echo4b"), `10.77.0.2:${port}`);
      assert.equal(from("echo6a"), `[fd77::1]:${port}`);
      assert.equal(from("echo6b"), `[fd77::2]:${port}`);
      // Link-local: the zone name is resolved for sending; replies carry the scope id.
      assert.equal(from("echoLinkLocal"), `[fe80::b%${ifindexA}]:${port}`);
      // Control: without the source, routing picks one address for both, so the test
      // above can tell sticky replies apart.
      assert.equal(from("plain4a"), from("plain4b"));
      assert.equal(from("plain6a"), from("plain6b"));
      // Batching both ways across the veth.
      assert.equal((r.count as { text: string }).text, "count=100 inorder=true");
      assert.equal(r.burstCount, 100);
      assert.equal(r.burstInOrder, true);
      // A sticky source that vanished is cleared and the datagram retried without it.
      assert.equal((r.held as { text: string }).text, "held:10.77.0.2");
      const texts = (r.replyHeld as { from: string; text: string }[]).map((x) => x.text);
      assert.equal(texts[0], "fromheld");
      assert.match(texts[1], /^heldsrc=null /);
      assert.equal(r.sendErrors, 0);
    } finally {
      await srv?.stop();
      await delNetns(a, b);
    }
  },
});
