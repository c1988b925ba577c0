// SPDX-License-Identifier: Apache-2.0
/**
 * Stock `wg-quick up/down` driving the program under test (PROGRAM, see _util.ts) through
 * `WG_QUICK_USERSPACE_IMPLEMENTATION=PROGRAM`, inside network namespaces made for the test.
 *
 * wg-quick only falls back to a userspace daemon when `ip link add … type wireguard` fails and
 * /sys/module/wireguard does not exist (wg-quick(8) linux.bash `add_if`); on a host with the
 * kernel module these tests would exercise the kernel instead, so they are ignored there. The
 * config lives in a temporary directory as `<ifname>.conf` (wg-quick takes the interface name
 * from the basename). No `DNS =` is set, so resolvconf is never called.
 *
 * What `up` must produce (contract §3): the daemon returns with the TUN and the socket ready,
 * without keeping wg-quick's stdout/stderr; `wg setconf` applies; addresses, MTU (explicit, or
 * the endpoint route's MTU − 80, or 1500 − 80 when nothing is known) and routes for the
 * allowed IPs are installed; the link is up and the daemon has bound its UDP port.
 *
 * Full tunnel (`AllowedIPs = 0.0.0.0/0, ::/0`): wg-quick picks fwmark 0xca6c (51820), adds
 * `not fwmark 51820 lookup 51820` and `lookup main suppress_prefixlength 0` rules for both
 * families, a default route in table 51820, and its firewall rules: with `nft` when present
 * (table `wg-quick-<if>`), otherwise `iptables-restore`. This machine has both, so nft is what
 * runs (the test reports which). The daemon must put SO_MARK 0xca6c on its UDP sockets (seen
 * as `fwmark:0xca6c` in `ss -e`); otherwise its own encrypted datagrams match "not fwmark"
 * and are routed back into the tunnel, and nothing gets through. The peer is wireguard-go in a
 * second namespace across a veth; pings to its tunnel address and to its veth address (the
 * latter also travels inside the tunnel) must work, and `ip route get` shows that unmarked
 * traffic to the endpoint would enter the tunnel while marked traffic leaves by the veth.
 *
 * `down` must leave nothing behind: no process in the namespace, no UAPI socket, no link, and
 * the namespace's rules, route tables and firewall back to what they were before `up`.
 *
 * Root only; ignored (with the reason printed) without root, tools or a program under test, and
 * failed instead under CI=true (test/_util/needs.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { log, REFERENCE, removeDir, skipReason, tempDir } from "./_util.ts";
import { deleteAll, Netns, ping, pingUntil, vethPair } from "../_util/netns.ts";
import { digits, genKeyPair, launchDaemon, program, uapiSocket, wg } from "../_util/wg.ts";
import { waitFor, which } from "../_util/proc.ts";
import { skipBecause, unmet } from "../_util/needs.ts";

function kernelModulePresent(): boolean {
  return existsSync("/sys/module/wireguard");
}

/** Not a missing tool: with the module there is nothing of ours to test, so CI skips too. */
const KERNEL_MODULE = "the wireguard kernel module is loaded, so wg-quick would never use PROGRAM";
const SKIP = skipBecause("test/e2e/wg_quick_test.ts", kernelModulePresent() ? KERNEL_MODULE : "")
  ? KERNEL_MODULE
  : skipReason("wg_quick_test.ts", ["ip", "wg", "wg-quick", "ping", "ss", "sysctl"]);

/** wg-quick uses nft when `type -p nft` finds it, iptables-restore otherwise. */
const HAVE_NFT = which("nft") !== null;

/** Runs `wg-quick ACTION conf` inside `ns` with PROGRAM as the userspace implementation. */
async function wgQuick(ns: Netns, action: "up" | "down", conf: string): Promise<void> {
  // Without DENO_NO_UPDATE_CHECK (which CI sets): the daemon must not query DNS on its own
  // (Deno's update check), which the full-tunnel test's socket check would see.
  const r = await ns.execWith(
    { timeoutMs: 60_000, env: { WG_QUICK_USERSPACE_IMPLEMENTATION: program() } },
    "env",
    "-u",
    "DENO_NO_UPDATE_CHECK",
    "wg-quick",
    action,
    conf,
  );
  if (r.code !== 0) {
    throw new Error(`wg-quick ${action} ${conf} exited ${r.code}\n${r.stdout}${r.stderr}`);
  }
  assert.ok(
    !r.timedOut,
    `wg-quick ${action}: it did not finish, or its stdout/stderr stayed open after it exited ` +
      "(the daemon kept them)",
  );
}

/** A namespace's routing state, for before/after comparisons. */
async function routingState(ns: Netns): Promise<string> {
  // A link's IPv6 link-local address (and its `local fe80::…` route) appears only once its
  // duplicate address detection is over, about a second after the link came up: wait for
  // that, or the snapshot depends on how fast the test got here.
  await waitFor(
    async () => (await ns.ip("-6", "addr", "show", "tentative")).stdout.trim() === "",
    5000,
  );
  const parts: string[] = [];
  for (const fam of ["-4", "-6"]) {
    parts.push((await ns.ip(fam, "rule", "show")).stdout);
    parts.push((await ns.ip(fam, "route", "show", "table", "all")).stdout);
  }
  return parts.join("---\n");
}

/** Firewall state: nft ruleset and iptables-save (without its timestamps and counters). */
async function firewallState(ns: Netns): Promise<string> {
  const parts: string[] = [];
  if (HAVE_NFT) {
    parts.push((await ns.execOk("nft", "list", "ruleset")).stdout);
  }
  for (const save of ["iptables-save", "ip6tables-save"]) {
    const r = await ns.execWith({ timeoutMs: 10_000 }, save);
    parts.push(
      r.stdout.split("\n").filter((l) => !l.startsWith("#")).map((l) =>
        l.replace(/\[\d+:\d+\]/, "")
      ).join("\n"),
    );
  }
  return parts.join("---\n");
}

/** Asserts that `down` removed the daemon, its socket and its link. */
async function assertGone(ns: Netns, ifname: string): Promise<void> {
  assert.ok(
    await waitFor(async () => !(await ns.hasLink(ifname)), 5000),
    `${ifname} still exists after down`,
  );
  assert.ok(
    await waitFor(() => !existsSync(uapiSocket(ifname)), 5000),
    `${uapiSocket(ifname)} still exists after down`,
  );
  assert.ok(
    await waitFor(async () => (await ns.pids()).length === 0, 5000),
    `processes left in ${ns.name} after down: ${(await ns.pids()).join(" ")}`,
  );
}

/** Writes `<dir>/<ifname>.conf` (mode 0600, as wg-quick warns otherwise). */
async function writeConf(dir: string, ifname: string, text: string): Promise<string> {
  const path = `${dir}/${ifname}.conf`;
  await Deno.writeTextFile(path, text, { mode: 0o600 });
  return path;
}

Deno.test({
  name: "wg-quick up/down: addresses, explicit MTU, routes; down leaves nothing behind",
  ignore: SKIP !== "",
  async fn() {
    const id = digits(6);
    const created: Netns[] = [];
    let dir: string | null = null;
    try {
      dir = await tempDir();
      const ns = await Netns.create(`gte2e-${id}-q`);
      created.push(ns);
      const ifname = `gte${id}1`;
      const me = await genKeyPair(dir), peer = await genKeyPair(dir);
      const conf = await writeConf(
        dir,
        ifname,
        [
          "[Interface]",
          `PrivateKey = ${me.privateKey}`,
          "ListenPort = 51101",
          "Address = 198.51.100.1/24, fd00:e2e:71::1/64",
          "MTU = 1380",
          "",
          "[Peer]",
          `PublicKey = ${peer.publicKey}`,
          "AllowedIPs = 203.0.113.0/24, fd00:e2e:72::/48",
          "",
        ].join("\n"),
      );
      const before = await routingState(ns);

      await wgQuick(ns, "up", conf);
      const addrs = (await ns.ip("-o", "addr", "show", "dev", ifname)).stdout;
      assert.match(addrs, /inet 198\.51\.100\.1\/24 /, addrs);
      assert.match(addrs, /inet6 fd00:e2e:71::1\/64 /, addrs);
      const link = (await ns.ip("-o", "link", "show", "dev", ifname)).stdout;
      assert.match(link, / mtu 1380 /, link);
      assert.match(link, /<[^>]*\bUP\b[^>]*>/, link);
      const r4 = (await ns.ip("-4", "route", "show", "dev", ifname)).stdout;
      const r6 = (await ns.ip("-6", "route", "show", "dev", ifname)).stdout;
      assert.match(r4, /^203\.0\.113\.0\/24 /m, r4);
      assert.match(r6, /^fd00:e2e:72::\/48 /m, r6);
      assert.equal((await wg(["show", ifname, "listen-port"])).stdout.trim(), "51101");
      assert.equal((await wg(["show", ifname, "private-key"])).stdout.trim(), me.privateKey);
      assert.equal((await wg(["show", ifname, "peers"])).stdout.trim(), peer.publicKey);
      const allowed = (await wg(["show", ifname, "allowed-ips"])).stdout.trim();
      assert.equal(allowed, `${peer.publicKey}\t203.0.113.0/24 fd00:e2e:72::/48`);
      assert.ok(await ns.listening("udp", 51101), "no UDP socket on the listen port after up");

      await wgQuick(ns, "down", conf);
      await assertGone(ns, ifname);
      assert.equal(await routingState(ns), before, "rules or routes left behind");
    } finally {
      await deleteAll(created);
      await removeDir(dir);
    }
  },
});

Deno.test({
  name: "wg-quick up: automatic MTU is the endpoint route's MTU − 80, else 1500 − 80",
  ignore: SKIP !== "",
  async fn() {
    const id = digits(6);
    const created: Netns[] = [];
    let dir: string | null = null;
    try {
      dir = await tempDir();
      const ns = await Netns.create(`gte2e-${id}-q`);
      created.push(ns);
      const other = await Netns.create(`gte2e-${id}-o`);
      created.push(other);
      await vethPair(ns, other, {
        nameA: `gte${id}3`,
        nameB: `gte${id}4`,
        addrA: ["192.0.2.1/24", "2001:db8:e2e::1/64"],
      });
      await ns.ip("link", "set", `gte${id}3`, "mtu", "1360");
      const me = await genKeyPair(dir), peer = await genKeyPair(dir);

      const cases: { endpoint: string | null; mtu: number }[] = [
        { endpoint: "192.0.2.2:51820", mtu: 1360 - 80 },
        { endpoint: "[2001:db8:e2e::2]:51820", mtu: 1360 - 80 },
        { endpoint: null, mtu: 1500 - 80 }, // no endpoint and no default route here
      ];
      let n = 5; // 3 and 4 are the veths
      for (const c of cases) {
        const ifname = `gte${id}${n++}`;
        const conf = await writeConf(
          dir,
          ifname,
          [
            "[Interface]",
            `PrivateKey = ${me.privateKey}`,
            "Address = 198.51.100.1/24",
            "",
            "[Peer]",
            `PublicKey = ${peer.publicKey}`,
            ...(c.endpoint ? [`Endpoint = ${c.endpoint}`] : []),
            "AllowedIPs = 203.0.113.0/24",
            "",
          ].join("\n"),
        );
        await wgQuick(ns, "up", conf);
        try {
          assert.equal(await ns.mtu(ifname), c.mtu, `endpoint ${c.endpoint}`);
          if (c.endpoint) {
            const eps = (await wg(["show", ifname, "endpoints"])).stdout.trim();
            assert.equal(eps, `${peer.publicKey}\t${c.endpoint}`);
          }
        } finally {
          await wgQuick(ns, "down", conf).catch((e) => log(`down failed: ${e}`));
        }
        await assertGone(ns, ifname);
      }
    } finally {
      await deleteAll(created);
      await removeDir(dir);
    }
  },
});

/** The /0 case needs a firewall tool for wg-quick's rules. */
const SKIP_FULL = SKIP !== "" ? SKIP : unmet("test/e2e/wg_quick_test.ts (full tunnel)", {
  other: {
    "nft or iptables-restore (wg-quick needs one for /0)": HAVE_NFT ||
      which("iptables-restore") !== null,
  },
});

Deno.test({
  name: "wg-quick full tunnel 0.0.0.0/0 + ::/0: fwmark rules, marked sockets, no loop, clean down",
  ignore: SKIP_FULL !== "",
  async fn() {
    const id = digits(6);
    const created: Netns[] = [];
    let dir: string | null = null;
    try {
      dir = await tempDir();
      const client = await Netns.create(`gte2e-${id}-c`);
      created.push(client);
      const server = await Netns.create(`gte2e-${id}-s`);
      created.push(server);
      const vc = `gte${id}3`, vs = `gte${id}4`;
      await vethPair(client, server, {
        nameA: vc,
        nameB: vs,
        addrA: ["192.0.2.1/24", "2001:db8:e2e::1/64"],
        addrB: ["192.0.2.2/24", "2001:db8:e2e::2/64"],
      });
      // The endpoint is off-link, reachable only through the client's default routes, which
      // is what a full tunnel overrides (on-link routes are more specific and are kept).
      await client.ip("-4", "route", "add", "default", "via", "192.0.2.2");
      await client.ip("-6", "route", "add", "default", "via", "2001:db8:e2e::2");
      await server.ip("addr", "add", "203.0.113.2/32", "dev", "lo");
      await server.ip("addr", "add", "2001:db8:e2f::2/128", "dev", "lo");
      const ck = await genKeyPair(dir), sk = await genKeyPair(dir);

      // The peer: wireguard-go in the server namespace, configured by hand.
      const sif = `gte${id}2`;
      await launchDaemon(server, REFERENCE, sif);
      await wg([
        "set",
        sif,
        "private-key",
        sk.privateFile,
        "listen-port",
        "51102",
        "peer",
        ck.publicKey,
        "allowed-ips",
        "198.51.100.1/32,fd00:e2e::1/128",
      ]);
      await server.ip("addr", "add", "198.51.100.2/24", "dev", sif);
      await server.ip("addr", "add", "fd00:e2e::2/64", "dev", sif, "nodad");
      await server.ip("link", "set", sif, "up");

      const cif = `gte${id}1`;
      const conf = await writeConf(
        dir,
        cif,
        [
          "[Interface]",
          `PrivateKey = ${ck.privateKey}`,
          "Address = 198.51.100.1/24, fd00:e2e::1/64",
          "",
          "[Peer]",
          `PublicKey = ${sk.publicKey}`,
          "Endpoint = 203.0.113.2:51102",
          "AllowedIPs = 0.0.0.0/0, ::/0",
          "",
        ].join("\n"),
      );
      const routesBefore = await routingState(client);
      const firewallBefore = await firewallState(client);
      log(`wg-quick firewall backend: ${HAVE_NFT ? "nft" : "iptables-restore"}`);

      await wgQuick(client, "up", conf);
      try {
        assert.equal((await wg(["show", cif, "fwmark"])).stdout.trim(), "0xca6c");
        for (const fam of ["-4", "-6"]) {
          const rules = (await client.ip(fam, "rule", "show")).stdout;
          assert.match(rules, /not from all fwmark 0xca6c lookup 51820/, rules);
          assert.match(rules, /from all lookup main suppress_prefixlength 0/, rules);
          const table = (await client.ip(fam, "route", "show", "table", "51820")).stdout;
          assert.match(table, new RegExp(`^default dev ${cif} `, "m"), table);
        }
        assert.equal(await client.mtu(cif), 1500 - 80);

        // The daemon's sockets carry the mark (needs CAP_NET_ADMIN for ss to see it).
        let lines: string[] = [];
        await waitFor(async () => {
          const socks = (await client.execWith({ timeoutMs: 5000 }, "ss", "-Huanep")).stdout;
          lines = socks.split("\n").filter((l) => l.trim() !== "");
          return lines.length > 0;
        }, 10_000);
        assert.ok(lines.length > 0, "the daemon has no UDP socket");
        for (const l of lines) assert.match(l, /fwmark:0xca6c/, `unmarked UDP socket: ${l}`);

        // Unmarked traffic to the endpoint would enter the tunnel; marked traffic leaves by
        // the veth. So only the mark keeps the encrypted datagrams out of the tunnel.
        const plain = (await client.ip("route", "get", "203.0.113.2")).stdout;
        assert.match(plain, new RegExp(`dev ${cif} `), plain);
        const marked = (await client.ip("route", "get", "203.0.113.2", "mark", "0xca6c")).stdout;
        assert.match(marked, new RegExp(`dev ${vc} `), marked);

        const vethBefore = await client.linkStats(vc);
        assert.notEqual(
          await pingUntil(client, "198.51.100.2", { tries: 5 }),
          null,
          "no reply through the full tunnel",
        );
        // The endpoint address itself is pinged through the tunnel too: its ICMP is unmarked
        // and enters the tunnel, while the datagrams carrying it to that same address do not.
        for (const target of ["198.51.100.2", "fd00:e2e::2", "203.0.113.2", "2001:db8:e2f::2"]) {
          const r = await ping(client, target, 5, { flood: true });
          assert.equal(r.received, 5, `ping ${target} through the tunnel\n${r.output}`);
        }
        const hs = (await wg(["show", cif, "latest-handshakes"])).stdout.trim().split("\t")[1];
        assert.ok(Number(hs) > 0, "no handshake");
        const vethAfter = await client.linkStats(vc);
        const tunnel = await client.linkStats(cif);
        log(
          `veth tx ${
            vethAfter.txBytes - vethBefore.txBytes
          } B, tunnel tx ${tunnel.txBytes} B, rx ${tunnel.rxBytes} B`,
        );
        // 21 echo requests of 84–104 bytes went into the tunnel; their encryptions (+ 32 + outer
        // headers each) and the handshake left by the veth. A loop would have stopped them.
        assert.ok(
          vethAfter.txBytes - vethBefore.txBytes >= tunnel.txBytes,
          "encrypted traffic did not leave",
        );
        assert.ok(tunnel.rxBytes > 0, "nothing came back through the tunnel");
        // wireguard-go's endpoint on the server side is the client's veth address.
        const eps = (await wg(["show", sif, "endpoints"])).stdout.trim();
        assert.match(eps, /\t192\.0\.2\.1:\d+$/, eps);
      } finally {
        // A failing `down` must not hide the assertion that failed above; assertGone below
        // catches whatever it left.
        await wgQuick(client, "down", conf).catch((e) => log(`down failed: ${e}`));
      }
      await assertGone(client, cif);
      assert.equal(await routingState(client), routesBefore, "rules or routes left behind");
      assert.equal(await firewallState(client), firewallBefore, "firewall rules left behind");
    } finally {
      await deleteAll(created);
      await removeDir(dir);
    }
  },
});
