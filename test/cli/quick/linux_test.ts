// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * gotatun's wg-quick (cli/quick/linux.ts) against the installed wg-quick(8).
 *
 * The pure helpers are checked against wg-quick's own rules (and
 * `sort -nr -k 2 -t /` itself). Then, as root, each scenario runs twice in
 * fresh namespaces named `gtq-…`: once with stock `wg-quick up/…/down`
 * (`WG_QUICK_USERSPACE_IMPLEMENTATION=IMPL`), once with our `up/…/down`
 * (`GOTATUN_QUICK_IMPLEMENTATION=IMPL`, run as `deno run cli/quick/main.ts`
 * inside the namespace), with the same keys, interface names and files.
 * IMPL is dist/gotatun when it runs, else wireguard-go, so both sides use
 * the same daemon and only the wg-quick logic differs. Compared after `up`:
 * `ip -br addr`, the link's MTU and flags, `ip route show table all`,
 * `ip rule`, `nft list ruleset` and iptables-save, `wg showconf`,
 * src_valid_mark, the `[#] ip …` commands, hook output, resolvconf calls,
 * and `save` output; after `down`: everything is back to how it was before
 * `up` (no link, socket, process, rule, route or firewall rule left).
 *
 * Known, deliberate differences from the installed wg-quick
 * (wireguard-tools 1.0.20210914), where we follow current wireguard-tools:
 * PreUp runs after the interface exists, the configuration is applied with
 * `addconf` rather than `setconf`, the automatic MTU takes the smallest
 * endpoint MTU rather than the largest, hooks keep text after `#`. The
 * scenarios avoid depending on these except where checked on our side only.
 */
import assert from "node:assert/strict";
import {
  endpointHost,
  firewallAddresses,
  iptablesAddScript,
  iptablesRemoveScript,
  nftAddScript,
  nftRemoveScript,
  routeMtuOrDev,
  sortRoutes,
} from "../../../cli/quick/linux.ts";
import { type Netns, vethPair, withNamespaces } from "../../_util/netns.ts";
import { hasTool, run, runOk, waitFor } from "../../_util/proc.ts";
import { ignoreUnless, type Needs } from "../../_util/needs.ts";

// ---------------------------------------------------------------------------
// Pure helpers

Deno.test("sortRoutes() orders like `sort -nr -k 2 -t /` and drops non-prefixes", async () => {
  const input = [
    "10.0.0.0/8",
    "::/0",
    "0.0.0.0/0",
    "10.1.2.3/32",
    "fd00::/64",
    "fd00::1/128",
    "192.168.0.0/16",
    "172.16.0.0/16",
    "(none)",
    "FD00::/8",
    "10.0.0.0/24",
    "fe80::/64",
  ];
  const ours = sortRoutes(input);
  assert.equal(ours[0], "fd00::1/128");
  assert.deepEqual(ours.slice(-2), ["::/0", "0.0.0.0/0"]);
  assert.ok(!ours.includes("(none)") && !ours.includes("FD00::/8"));
  if (hasTool("sort")) {
    const valid = input.filter((p) => /^[0-9a-z:.]+\/[0-9]+$/.test(p));
    const r = await run("sort", ["-nr", "-k", "2", "-t", "/"], {
      stdin: valid.join("\n") + "\n",
      env: { LC_ALL: "C" },
    });
    assert.deepEqual(ours, r.stdout.trim().split("\n"));
  }
});

Deno.test("endpointHost() accepts what set_mtu_up's regex accepts", () => {
  assert.equal(endpointHost("192.0.2.1:51820"), "192.0.2.1");
  assert.equal(endpointHost("[2001:db8::1]:51820"), "2001:db8::1");
  assert.equal(endpointHost("[fe80::1%eth0]:51820"), null);
  assert.equal(endpointHost("(none)"), null);
  assert.equal(endpointHost("192.0.2.1"), null);
});

Deno.test("routeMtuOrDev() takes `mtu N` first, else the `dev` of `ip route get`", () => {
  assert.deepEqual(
    routeMtuOrDev("198.51.100.7 via 192.0.2.2 dev v0 src 192.0.2.1 uid 0 \n    cache mtu 1300 "),
    { mtu: 1300, dev: null },
  );
  assert.deepEqual(routeMtuOrDev("192.0.2.2 dev v0 src 192.0.2.1 uid 0 \n    cache "), {
    mtu: null,
    dev: "v0",
  });
  assert.deepEqual(routeMtuOrDev(""), { mtu: null, dev: null });
});

Deno.test("firewallAddresses() and the nft/iptables scripts match add_default", () => {
  const out = "7: wg0    inet 10.0.0.1/24 scope global wg0\\       valid_lft forever\n" +
    "7: wg0    inet6 fd00::1/64 scope global \\       valid_lft forever\n";
  assert.deepEqual(firewallAddresses(out), ["10.0.0.1", "fd00::1"]);
  assert.equal(
    nftAddScript("wg0", 4, 51820, ["10.0.0.1"]),
    "add table ip wg-quick-wg0\n" +
      "add chain ip wg-quick-wg0 preraw { type filter hook prerouting priority -300; }\n" +
      "add chain ip wg-quick-wg0 premangle { type filter hook prerouting priority -150; }\n" +
      "add chain ip wg-quick-wg0 postmangle { type filter hook postrouting priority -150; }\n" +
      'add rule ip wg-quick-wg0 preraw iifname != "wg0" ip daddr 10.0.0.1 fib saddr type != ' +
      "local drop\n" +
      "add rule ip wg-quick-wg0 postmangle meta l4proto udp mark 51820 ct mark set mark \n" +
      "add rule ip wg-quick-wg0 premangle meta l4proto udp meta mark set ct mark \n",
  );
  const marker = '-m comment --comment "wg-quick(8) rule for wg0"';
  assert.equal(
    iptablesAddScript("wg0", 51820, ["fd00::1"]),
    `*raw\n-I PREROUTING ! -i wg0 -d fd00::1 -m addrtype ! --src-type LOCAL -j DROP ${marker}\n` +
      `COMMIT\n*mangle\n` +
      `-I POSTROUTING -m mark --mark 51820 -p udp -j CONNMARK --save-mark ${marker}\n` +
      `-I PREROUTING -p udp -j CONNMARK --restore-mark ${marker}\nCOMMIT\n`,
  );
});

Deno.test("nftRemoveScript() and iptablesRemoveScript() pick only this interface's entries", () => {
  assert.equal(
    nftRemoveScript(
      "wg0",
      "table ip filter\ntable ip wg-quick-wg0\ntable ip6 wg-quick-wg0\n" +
        "table ip wg-quick-wg01\n",
    ),
    "delete table ip wg-quick-wg0\ndelete table ip6 wg-quick-wg0\n",
  );
  assert.equal(nftRemoveScript("wg0", "table ip filter\n"), "");
  const save = [
    "# Generated by iptables-save",
    "*raw",
    ":PREROUTING ACCEPT [0:0]",
    '-A PREROUTING -d 10.0.0.1/32 ! -i wg0 -m addrtype ! --src-type LOCAL -m comment --comment "wg-quick(8) rule for wg0" -j DROP',
    '-A PREROUTING -d 10.0.0.2/32 ! -i wg1 -m comment --comment "wg-quick(8) rule for wg1" -j DROP',
    "COMMIT",
    "*filter",
    "-A INPUT -j ACCEPT",
    "COMMIT",
    "",
  ].join("\n");
  assert.equal(
    iptablesRemoveScript("wg0", save),
    "*raw\n" +
      '-D PREROUTING -d 10.0.0.1/32 ! -i wg0 -m addrtype ! --src-type LOCAL -m comment --comment "wg-quick(8) rule for wg0" -j DROP\n' +
      "COMMIT\n*filter\nCOMMIT\n",
  );
  assert.equal(iptablesRemoveScript("wg2", save), null);
});

// ---------------------------------------------------------------------------
// Side-by-side runs against the installed wg-quick

const REPO = new URL("../../../", import.meta.url).pathname;
const QUICK_MAIN = `${REPO}cli/quick/main.ts`;
const DENO_JSON = `${REPO}deno.json`;

const ROOT_TOOLS = ["ip", "wg", "wg-quick", "bash", "ping"];
const LABEL = "test/cli/quick/linux_test.ts";
/** What the root tests below need (test/_util/needs.ts). */
const ROOT_NEEDS: Needs = { root: true, tools: ROOT_TOOLS };
const SKIP_ROOT = ignoreUnless(LABEL, ROOT_NEEDS);
const HAVE_NFT = hasTool("nft");
const HAVE_IPTABLES = hasTool("iptables") && hasTool("iptables-restore") &&
  hasTool("ip6tables-restore");

let implementation: Promise<string> | null = null;
/**
 * dist/gotatun when `--version` works, else wireguard-go (the same for both
 * sides); `GOTATUN_TEST_QUICK_IMPL=/path` forces one.
 */
function pickImplementation(): Promise<string> {
  implementation ??= (async () => {
    const forced = Deno.env.get("GOTATUN_TEST_QUICK_IMPL");
    if (forced) return forced;
    const dist = `${REPO}dist/gotatun`;
    const r = await run(dist, ["--version"], { timeoutMs: 20_000 }).catch(() => null);
    if (r !== null && r.code === 0 && r.stdout.startsWith("gotatun")) return dist;
    return "/usr/bin/wireguard-go";
  })();
  return implementation;
}

interface KeyPair {
  k: string;
  p: string;
}

async function keyPair(): Promise<KeyPair> {
  const k = (await runOk("wg", ["genkey"])).stdout.trim();
  return { k, p: (await runOk("wg", ["pubkey"], { stdin: k })).stdout.trim() };
}

function digits(n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += Math.floor(Math.random() * 10);
  return s;
}

/** What a scenario's config function gets. */
interface Vars {
  iface: string;
  peerIface: string;
  dir: string;
  a: KeyPair;
  b: KeyPair;
  c: KeyPair;
}

interface Scenario {
  name: string;
  /** Join namespace a (192.0.2.1, 2001:db8::1) and b (…2) with a veth of this MTU. */
  vethMtu?: number;
  /** Run a stock wg-quick peer in b with {@link peerConfig}. */
  peer?: boolean;
  config(v: Vars): string;
  /** `no-nft`: PATH without nft (iptables fallback); `resolvconf`: a fake resolvconf first on PATH. */
  path?: "no-nft" | "resolvconf";
  /** Also run `save` and compare the written file. */
  save?: boolean;
  /** Addresses to ping from a after up. */
  ping?: string[];
  /** `up` must fail (and clean up after itself). */
  upFails?: boolean;
  /** Has a /0 with the automatic table: needs nft or iptables. */
  fullTunnel?: boolean;
}

const FULL_TUNNEL = (v: Vars) =>
  `[Interface]\nPrivateKey = ${v.a.k}\nListenPort = 43061\nAddress = 10.40.0.1/32, fd40::1/128\n\n` +
  `[Peer]\nPublicKey = ${v.b.p}\nEndpoint = 192.0.2.2:43062\nAllowedIPs = 0.0.0.0/0, ::/0\n`;

function peerConfig(v: Vars): string {
  return `[Interface]\nPrivateKey = ${v.b.k}\nListenPort = 43062\n` +
    `Address = 10.40.0.2/32, fd40::2/128\n\n` +
    `[Peer]\nPublicKey = ${v.a.p}\nAllowedIPs = 10.40.0.1/32, fd40::1/128\n`;
}

const SCENARIOS: Scenario[] = [
  {
    name: "v4+v6 addresses, explicit MTU, routes for allowed IPs",
    config: (v) =>
      `[Interface]\nPrivateKey = ${v.a.k}\nListenPort = 43011\n` +
      `Address = 10.9.0.1/24, fd09::1/64\nAddress = 10.11.0.1/32\nMTU = 1380\n\n` +
      `[Peer]\nPublicKey = ${v.b.p}\n` +
      `AllowedIPs = 10.9.0.2/32, 10.10.0.0/16, fd09::2/128, fd0a::/48, 10.12.0.0/24\n`,
  },
  {
    name: "automatic MTU from the endpoints' routes",
    vethMtu: 1400,
    config: (v) =>
      `[Interface]\nPrivateKey = ${v.a.k}\nListenPort = 43021\nAddress = 10.21.0.1/24\n\n` +
      `[Peer]\nPublicKey = ${v.b.p}\nEndpoint = 192.0.2.2:43022\nAllowedIPs = 10.21.0.0/24\n\n` +
      `[Peer]\nPublicKey = ${v.c.p}\nEndpoint = [2001:db8::2]:43023\nAllowedIPs = fd21::/64\n`,
  },
  {
    name: "Table = off (no routes; default MTU 1420 without endpoints or default route)",
    config: (v) =>
      `[Interface]\nPrivateKey = ${v.a.k}\nListenPort = 43031\nAddress = 10.31.0.1/24, fd31::1/64\n` +
      `Table = off\n\n[Peer]\nPublicKey = ${v.b.p}\nAllowedIPs = 10.32.0.0/16, 0.0.0.0/0, ::/0\n`,
  },
  {
    name: "Table = 1234 (every route there, /0 included, no fwmark)",
    config: (v) =>
      `[Interface]\nPrivateKey = ${v.a.k}\nListenPort = 43041\nAddress = 10.30.0.1/24\n` +
      `Table = 1234\n\n[Peer]\nPublicKey = ${v.b.p}\n` +
      `AllowedIPs = 0.0.0.0/0, 10.30.0.0/16, ::/0, fd30::/32\n`,
  },
  {
    name: "hooks with %i and $INTERFACE",
    config: (v) =>
      `[Interface]\nPrivateKey = ${v.a.k}\nListenPort = 43051\nAddress = 10.51.0.1/24\n` +
      `PreUp = echo "pre-up %i" >> ${v.dir}/hooks.txt\n` +
      `PostUp = echo "post-up %i $INTERFACE" >> ${v.dir}/hooks.txt\n` +
      `PostUp = printf '%s\\n' "second post-up" >> ${v.dir}/hooks.txt\n` +
      `PreDown = echo "pre-down %i" >> ${v.dir}/hooks.txt\n` +
      `PostDown = echo "post-down %i" >> ${v.dir}/hooks.txt\n` +
      `PreUp = if ip link show dev %i >/dev/null 2>&1; then echo link; else echo nolink; fi > ` +
      `${v.dir}/order.txt\n\n[Peer]\nPublicKey = ${v.b.p}\nAllowedIPs = 10.52.0.0/16\n`,
  },
  {
    name: "full tunnel 0.0.0.0/0 and ::/0 (nft when installed)",
    vethMtu: 1500,
    peer: true,
    fullTunnel: true,
    ping: ["10.40.0.2", "fd40::2", "192.0.2.2"],
    config: FULL_TUNNEL,
  },
  {
    name: "full tunnel with the iptables-restore fallback (no nft on PATH)",
    vethMtu: 1500,
    peer: true,
    path: "no-nft",
    fullTunnel: true,
    ping: ["10.40.0.2", "fd40::2"],
    config: FULL_TUNNEL,
  },
  {
    name: "DNS through resolvconf, save, and SaveConfig on down",
    path: "resolvconf",
    save: true,
    config: (v) =>
      `[Interface]\nPrivateKey = ${v.a.k}\nListenPort = 43071\nAddress = 10.71.0.1/24\n` +
      `DNS = 10.71.0.53, fd71::53, example.com\nMTU = 1400\nTable = auto\nSaveConfig = true\n` +
      `PostUp = true %i\n\n[Peer]\nPublicKey = ${v.b.p}\nAllowedIPs = 10.72.0.0/16\n` +
      `PersistentKeepalive = 25\n`,
  },
  {
    name: "a failing PostUp undoes everything (full tunnel)",
    upFails: true,
    fullTunnel: true,
    config: (v) => FULL_TUNNEL(v).replace("[Peer]", "PostUp = false\n\n[Peer]"),
  },
];

/** Replaces what differs between identical setups: link-local addresses, peer ifindexes. */
function normalise(text: string): string {
  return text.replace(/fe80::[0-9a-f:]+/g, "fe80::LL").replace(/@if\d+/g, "@ifN");
}

/** Lines sorted, for outputs whose order follows the normalised-away addresses. */
function sortedLines(text: string): string {
  return normalise(text).split("\n").filter((l) => l !== "").sort().join("\n");
}

/** showconf text with its [Peer] sections sorted (wireguard-go lists peers in map order). */
function peersSorted(text: string): string {
  const [head, ...peers] = text.replace(/\n+$/, "").split("\n\n[Peer]\n");
  return [head, ...peers.sort()].join("\n\n[Peer]\n");
}

interface Snapshot {
  addr: string;
  link: string;
  routes: string;
  rules: string;
  firewall: string;
  showconf: string;
  srcValidMark: string;
}

async function snapshot(ns: Netns, iface: string): Promise<Snapshot> {
  const out = async (...argv: string[]) => (await ns.exec(argv[0], ...argv.slice(1))).stdout;
  const linkText = await out("ip", "-o", "link", "show", "dev", iface);
  const m = /<([^>]*)> mtu (\d+)/.exec(linkText);
  let firewall = "";
  if (HAVE_NFT) firewall += await out("nft", "list", "ruleset");
  if (HAVE_IPTABLES) {
    for (const save of ["iptables-save", "ip6tables-save"]) {
      firewall += "---\n" +
        (await out(save)).split("\n").filter((l) => !l.startsWith("#"))
          .map((l) => l.replace(/\[\d+:\d+\]/g, "")).join("\n");
    }
  }
  return {
    addr: sortedLines(await out("ip", "-br", "addr")),
    link: m === null ? "absent" : `${m[1]} mtu ${m[2]}`,
    routes: sortedLines(
      (await out("ip", "-4", "route", "show", "table", "all")) +
        (await out("ip", "-6", "route", "show", "table", "all")),
    ),
    rules: (await out("ip", "-4", "rule")) + (await out("ip", "-6", "rule")),
    firewall: normalise(firewall),
    showconf: m === null ? "" : peersSorted(await out("wg", "showconf", iface)),
    srcValidMark: (await out("sysctl", "-n", "net.ipv4.conf.all.src_valid_mark")).trim(),
  };
}

interface Observed {
  upCode: number;
  up: Snapshot;
  down: Snapshot;
  ipCommands: string[];
  hooks: string;
  saved: string;
  final: string;
  resolvconf: string;
}

/** The `[#] ip …` lines of a run, without the `ip link add` whose wording changed upstream. */
function ipCommands(stderr: string): string[] {
  return stderr.split("\n").filter((l) =>
    l.startsWith("[#] ip ") && !l.startsWith("[#] ip link add")
  )
    .map(normalise).sort();
}

async function readOr(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}

/** A PATH directory with everything from /usr/sbin except nft. */
async function noNftDir(dir: string): Promise<string> {
  const bin = `${dir}/sbin-no-nft`;
  await Deno.mkdir(bin);
  for await (const e of Deno.readDir("/usr/sbin")) {
    if (e.name === "nft") continue;
    await Deno.symlink(`/usr/sbin/${e.name}`, `${bin}/${e.name}`);
  }
  return `${bin}:/usr/bin:/bin`;
}

/** A PATH directory with a resolvconf that records its calls and keeps one record per name. */
async function fakeResolvconfDir(dir: string): Promise<string> {
  const bin = `${dir}/fakebin`;
  await Deno.mkdir(bin);
  await Deno.writeTextFile(
    `${bin}/resolvconf`,
    `#!/bin/bash\necho "resolvconf $*" >> ${dir}/resolvconf.log\n` +
      `case "$1" in\n  -a) cat > ${dir}/resolv.$2 ;;\n  -l) cat ${dir}/resolv.$2 ;;\n` +
      `  -d) rm -f ${dir}/resolv.$2 ;;\nesac\n`,
    { mode: 0o755 },
  );
  return `${bin}:${Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin"}`;
}

async function runSide(
  side: "stock" | "ours",
  sc: Scenario,
  v0: Omit<Vars, "dir">,
): Promise<Observed> {
  const impl = await pickImplementation();
  const twoNs = sc.vethMtu !== undefined || sc.peer === true;
  return await withNamespaces("gtq", twoNs ? 2 : 1, async ({ namespaces, defer }) => {
    const [a, b] = namespaces;
    const dir = await Deno.makeTempDir({ prefix: "gtq-" });
    defer(() => Deno.remove(dir, { recursive: true }));
    const v: Vars = { ...v0, dir };
    let path = Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
    if (sc.path === "no-nft") path = await noNftDir(dir);
    if (sc.path === "resolvconf") path = await fakeResolvconfDir(dir);
    const env: Record<string, string> = {
      PATH: path,
      LOG_LEVEL: "",
      WG_QUICK_USERSPACE_IMPLEMENTATION: impl,
      GOTATUN_QUICK_IMPLEMENTATION: impl,
    };
    if (twoNs) {
      await vethPair(a, b, {
        nameA: "gtqva",
        nameB: "gtqvb",
        addrA: ["192.0.2.1/24", "2001:db8::1/64"],
        addrB: ["192.0.2.2/24", "2001:db8::2/64"],
        mtu: sc.vethMtu,
      });
    }
    if (sc.peer) {
      const peerPath = `${dir}/${v.peerIface}.conf`;
      await Deno.writeTextFile(peerPath, peerConfig(v), { mode: 0o600 });
      const r = await b.execWith({ env, timeoutMs: 60_000 }, "wg-quick", "up", peerPath);
      assert.equal(r.code, 0, `peer up: ${r.stderr}`);
    }
    const conf = `${dir}/${v.iface}.conf`;
    await Deno.writeTextFile(conf, sc.config(v), { mode: 0o600 });

    function quick(action: string) {
      const argv = side === "stock"
        ? ["wg-quick", action, conf]
        : ["deno", "run", "-A", "--no-prompt", "--config", DENO_JSON, QUICK_MAIN, action, conf];
      return a.execWith({ env, timeoutMs: 90_000 }, argv[0], ...argv.slice(1));
    }

    const before = await snapshot(a, v.iface);
    const up = await quick("up");
    assert.ok(!up.timedOut, `${side} up: timed out or left its output open\n${up.stderr}`);
    if (sc.upFails) {
      assert.notEqual(up.code, 0, `${side} up should fail`);
    } else {
      assert.equal(up.code, 0, `${side} up failed:\n${up.stdout}${up.stderr}`);
    }
    const upState = await snapshot(a, v.iface);
    for (const target of sc.ping ?? []) {
      const ok = await waitFor(
        async () => {
          const r = await a.exec("ping", "-c", "1", "-W", "1", target);
          return r.code === 0;
        },
        15_000,
        200,
      );
      assert.ok(ok, `${side}: no ping reply from ${target} through the tunnel`);
    }
    let saved = "";
    if (sc.save) {
      const r = await quick("save");
      assert.equal(r.code, 0, `${side} save failed:\n${r.stderr}`);
      saved = normalise(await Deno.readTextFile(conf)).replaceAll(dir, "DIR");
    }
    let downStderr = "";
    if (!sc.upFails) {
      const down = await quick("down");
      assert.equal(down.code, 0, `${side} down failed:\n${down.stderr}`);
      assert.ok(!down.timedOut, `${side} down timed out`);
      downStderr = down.stderr;
    }
    assert.ok(await waitFor(async () => !(await a.hasLink(v.iface)), 10_000), "link left");
    assert.ok(
      await waitFor(
        () => Deno.stat(`/var/run/wireguard/${v.iface}.sock`).then(() => false, () => true),
        10_000,
      ),
      `${side}: the UAPI socket was left behind`,
    );
    assert.ok(
      await waitFor(async () => (await a.pids()).length === 0, 10_000),
      `${side}: processes left in the namespace`,
    );
    const downState = await snapshot(a, v.iface);
    // Nothing of ours remains (iptables-nft keeps its emptied base chains, as with stock).
    assert.equal(downState.addr, before.addr, `${side}: addresses left`);
    assert.equal(downState.routes, before.routes, `${side}: routes left`);
    assert.equal(downState.rules, before.rules, `${side}: rules left`);
    assert.ok(!downState.firewall.includes("wg-quick"), `${side}: firewall rules left`);
    if (sc.path !== "no-nft") assert.equal(downState.firewall, before.firewall);

    if (side === "ours" && sc.name.startsWith("hooks")) {
      // Current wg-quick runs PreUp once the interface exists.
      assert.equal((await readOr(`${dir}/order.txt`)).trim(), "link");
    }
    return {
      upCode: up.code === 0 ? 0 : 1,
      up: upState,
      down: downState,
      ipCommands: ipCommands(up.stderr + downStderr),
      hooks: await readOr(`${dir}/hooks.txt`),
      saved,
      final: normalise(await Deno.readTextFile(conf)).replaceAll(dir, "DIR"),
      resolvconf: await readOr(`${dir}/resolvconf.log`),
    };
  });
}

for (const sc of SCENARIOS) {
  const needsFirewall = sc.fullTunnel === true;
  const skip = sc.path === "no-nft"
    ? ignoreUnless(LABEL, {
      ...ROOT_NEEDS,
      tools: [...ROOT_TOOLS, "iptables", "iptables-restore", "ip6tables-restore"],
    })
    : needsFirewall
    ? ignoreUnless(LABEL, {
      ...ROOT_NEEDS,
      other: {
        "nft or iptables, iptables-restore and ip6tables-restore": HAVE_NFT || HAVE_IPTABLES,
      },
    })
    : SKIP_ROOT;
  Deno.test({
    name: `quickMain() up/down matches wg-quick: ${sc.name}`,
    ignore: skip,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const [a, b, c] = await Promise.all([keyPair(), keyPair(), keyPair()]);
      const v = { iface: `gtq${digits(6)}`, peerIface: `gtq${digits(6)}`, a, b, c };
      const stock = await runSide("stock", sc, v);
      const ours = await runSide("ours", sc, v);
      assert.deepEqual(ours.up, stock.up, "state after up differs");
      assert.deepEqual(ours.down, stock.down, "state after down differs");
      assert.deepEqual(ours.ipCommands, stock.ipCommands, "`[#] ip …` commands differ");
      assert.equal(ours.upCode, stock.upCode);
      assert.equal(ours.hooks, stock.hooks, "hook output differs");
      assert.equal(ours.saved, stock.saved, "`save` wrote a different file");
      assert.equal(ours.final, stock.final, "the file after down differs (SaveConfig)");
      assert.equal(ours.resolvconf, stock.resolvconf, "resolvconf calls differ");
      if (sc.name.startsWith("DNS")) {
        assert.match(ours.saved, /^DNS = 10\.71\.0\.53\nDNS = fd71::53$/m);
        assert.match(ours.resolvconf, /resolvconf -a gtq\d+ -m 0 -x/);
      }
      if (sc.name.startsWith("hooks")) {
        assert.match(
          ours.hooks,
          /^pre-up (gtq\d+)\npost-up \1 \1\nsecond post-up\npre-down \1\npost-down \1\n$/,
        );
      }
      if (sc.path === "no-nft") assert.match(ours.up.firewall, /wg-quick\(8\) rule for gtq/);
      else if (needsFirewall && !sc.upFails && HAVE_NFT) {
        assert.match(ours.up.firewall, /table ip wg-quick-gtq/);
      }
    },
  });
}

Deno.test({
  name: "quickMain() up takes the smallest endpoint MTU (current wg-quick), minus 80",
  ignore: SKIP_ROOT,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const impl = await pickImplementation();
    const [a, b, c] = await Promise.all([keyPair(), keyPair(), keyPair()]);
    const iface = `gtq${digits(6)}`;
    await withNamespaces("gtq", 2, async ({ namespaces: [na, nb], defer }) => {
      const dir = await Deno.makeTempDir({ prefix: "gtq-" });
      defer(() => Deno.remove(dir, { recursive: true }));
      await vethPair(na, nb, {
        nameA: "gtqva",
        nameB: "gtqvb",
        addrA: "192.0.2.1/24",
        addrB: "192.0.2.2/24",
        mtu: 1400,
      });
      await na.execOk("ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.2", "mtu", "1300");
      const conf = `${dir}/${iface}.conf`;
      await Deno.writeTextFile(
        conf,
        `[Interface]\nPrivateKey = ${a.k}\n\n[Peer]\nPublicKey = ${b.p}\n` +
          `Endpoint = 192.0.2.2:1\nAllowedIPs = 10.1.0.0/16\n\n[Peer]\nPublicKey = ${c.p}\n` +
          `Endpoint = 198.51.100.7:1\nAllowedIPs = 10.2.0.0/16\n`,
        { mode: 0o600 },
      );
      const r = await na.execWith(
        { env: { GOTATUN_QUICK_IMPLEMENTATION: impl, LOG_LEVEL: "" }, timeoutMs: 90_000 },
        "deno",
        "run",
        "-A",
        "--no-prompt",
        "--config",
        DENO_JSON,
        QUICK_MAIN,
        "up",
        conf,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`\\[#\\] ip link set mtu 1220 up dev ${iface}\\n`));
      await na.execOk("ip", "link", "delete", "dev", iface);
    });
  },
});
