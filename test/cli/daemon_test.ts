// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The `gotatun` executable end to end, as wg-quick and a shell see it:
 * exit codes and output, daemonizing (returns only once the socket accepts
 * connections, never holds the caller's pipes), refusing a live socket,
 * replacing a stale one, and the four ways the daemon stops (SIGTERM/SIGINT,
 * `ip link del`, socket file removed) or does not (SIGHUP).
 *
 * Each root test runs the daemon inside its own network namespace
 * (`gtcli-<random>`) so the TUN lives there; interface names are
 * `gtc<random>`. The socket directory, /var/run/wireguard, is shared with the
 * host (it is not namespaced), so only our own `gtc*.sock` files are touched.
 *
 * The daemon runs from the sources with the same flags the bundle's shebang
 * uses; if `dist/gotatun` exists (`deno task build`), it is exercised too.
 */
import assert from "node:assert/strict";
import { DENO_RUN_FLAGS, VERSION } from "../../cli/version.ts";
import { wireguardModuleAvailable } from "../../cli/banner.ts";
import { closeQuietly, cstr, libc } from "../../src/sys/libc.ts";
import { type Netns, ping, vethPair, withNamespaces } from "../_util/netns.ts";
import { pidAlive, randomSuffix, run, sleep, waitFor } from "../_util/proc.ts";
import { ignoreUnless, type Needs } from "../_util/needs.ts";
import { launchDaemon, REPO_ROOT, socketAnswers, uapiSocket } from "../_util/wg.ts";

/**
 * Daemonizing is checked at once: the launcher exits 0 without holding our
 * pipes, and the link exists and the socket accepts connections as soon as it
 * returns, with no waiting.
 */
const NOW = { immediate: true };

const ROOT = `${REPO_ROOT}/`;
const DIST = `${ROOT}dist/gotatun`;

/** How to start gotatun from the sources: `deno run <flags> --config deno.json cli/main.ts`. */
const SOURCE_CMD = [
  Deno.execPath(),
  "run",
  ...DENO_RUN_FLAGS,
  "--config",
  `${ROOT}deno.json`,
  `${ROOT}cli/main.ts`,
];

/** The daemon's module graph loads (the pieces it wires together all exist). */
async function loads(cmd: string[]): Promise<boolean> {
  try {
    const r = await run(cmd[0], [...cmd.slice(1), "--version"], { timeoutMs: 60_000 });
    return r.code === 0 && r.stdout.startsWith("gotatun v");
  } catch {
    return false;
  }
}

const sourcesLoad = await loads(SOURCE_CMD);
const LABEL = "test/cli/daemon_test.ts";
/** What the tests below need (test/_util/needs.ts). */
const SOURCES: Needs = { other: { "a cli/main.ts that loads (`--version`)": sourcesLoad } };
const ROOT_NEEDS: Needs = { ...SOURCES, root: true, tools: ["ip", "wg"] };
/** The warning banner is true, and so printed, only on a kernel with the WireGuard module. */
const BANNER = wireguardModuleAvailable();
const BANNER_RE = /Running gotatun is not required/;

function ifname(): string {
  return `gtc${randomSuffix(6)}`;
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Leaves a stale socket file at `path`: bound, never listened on, closed (as
 * after a crash). Connecting to it is refused.
 */
function staleSocket(path: string): void {
  const c = libc();
  const fd = c.socket(1, /* AF_UNIX */ 1, /* SOCK_STREAM */ 0);
  assert.ok(fd >= 0, "socket(AF_UNIX)");
  try {
    const addr = new Uint8Array(110); // struct sockaddr_un
    new DataView(addr.buffer).setUint16(0, 1, true);
    addr.set(cstr(path), 2);
    assert.equal(c.bind(fd, addr, addr.length), 0, "bind(AF_UNIX)");
  } finally {
    closeQuietly(fd);
  }
}

/** Runs gotatun (`cmd`) inside `ns`, with a hard timeout. */
function gotatun(
  ns: Netns,
  cmd: string[],
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
) {
  return ns.execWith({ env, timeoutMs }, cmd[0], ...cmd.slice(1), ...args);
}

/** The PID of the daemon serving `name` in `ns` (the only process living there). */
async function daemonPid(ns: Netns): Promise<number> {
  const pids = (await ns.pids()).filter(pidAlive);
  assert.equal(pids.length, 1, `expected one process in ${ns.name}, got ${pids.join(",")}`);
  return pids[0];
}

/** Registers removal of our socket file, in case a daemon died without cleaning up. */
function cleanupSocket(defer: (fn: () => void) => void, name: string): void {
  defer(() => {
    try {
      Deno.removeSync(uapiSocket(name));
    } catch {
      // gone, as it should be
    }
  });
}

// ---------------------------------------------------------------------------
// Without root: output and exit codes.

Deno.test({
  name: "gotatun --version prints wireguard-go's shape and exits 0",
  ignore: ignoreUnless(LABEL, SOURCES),
  async fn() {
    const r = await run(SOURCE_CMD[0], [...SOURCE_CMD.slice(1), "--version"]);
    assert.equal(r.code, 0);
    const lines = r.stdout.split("\n");
    assert.equal(lines[0], `gotatun v${VERSION}`);
    assert.equal(lines[1], "");
    assert.equal(lines[2], `Userspace WireGuard daemon for ${Deno.build.os}-${Deno.build.arch}.`);
    assert.equal(r.stderr, "", "no banner for --version");
  },
});

Deno.test({
  name: "gotatun prints usage on stdout and exits 0 for a bad command line",
  ignore: ignoreUnless(LABEL, SOURCES),
  async fn(t) {
    for (const args of [[], ["-f"], ["a", "b"], ["--version", "x"]]) {
      await t.step(JSON.stringify(args), async () => {
        const r = await run(SOURCE_CMD[0], [...SOURCE_CMD.slice(1), ...args]);
        assert.equal(r.code, 0);
        assert.equal(r.stdout, "Usage: gotatun [-f/--foreground] INTERFACE-NAME\n");
        assert.equal(BANNER_RE.test(r.stderr), BANNER, `banner iff the module exists: ${r.stderr}`);
      });
    }
    await t.step("no banner with WG_PROCESS_FOREGROUND=1", async () => {
      const r = await run(SOURCE_CMD[0], SOURCE_CMD.slice(1), {
        env: { WG_PROCESS_FOREGROUND: "1" },
      });
      assert.equal(r.code, 0);
      assert.equal(r.stderr, "");
    });
    await t.step("help", async () => {
      const r = await run(SOURCE_CMD[0], [...SOURCE_CMD.slice(1), "help"]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^Usage: gotatun \[-f\/--foreground\] INTERFACE-NAME\n/);
      assert.match(r.stdout, /WG_PROCESS_FOREGROUND/);
    });
  },
});

Deno.test({
  name: "gotatun -f reports a malformed WG_TUN_FD as wireguard-go does (exit 1)",
  ignore: ignoreUnless(LABEL, SOURCES),
  async fn() {
    const r = await run(SOURCE_CMD[0], [...SOURCE_CMD.slice(1), "-f", "gtcbad0"], {
      env: { WG_TUN_FD: "nope", WG_PROCESS_FOREGROUND: "1" },
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^ERROR: \(gtcbad0\) .*Failed to create TUN device: .*WG_TUN_FD/m);
  },
});

// ---------------------------------------------------------------------------
// Root: the daemon in a namespace.

Deno.test({
  name: "gotatun IFNAME daemonizes and returns once the socket is connectable",
  ignore: ignoreUnless(LABEL, ROOT_NEEDS),
  async fn() {
    await withNamespaces("gtcli", 1, async ({ namespaces: [ns], defer }) => {
      const name = ifname();
      cleanupSocket(defer, name);
      await launchDaemon(ns, SOURCE_CMD, name, NOW);
      const mode = Deno.lstatSync(uapiSocket(name)).mode! & 0o777;
      assert.equal(mode, 0o700, "socket mode must be 0700 as wireguard-go's");
      const show = await ns.exec("wg", "show", name);
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, new RegExp(`^interface: ${name}`));
      const list = await ns.exec("wg", "show", "interfaces");
      assert.ok(list.stdout.split(/\s+/).includes(name));
    });
  },
});

Deno.test({
  name: "gotatun IFNAME in $(...) and in a pipe returns without hanging",
  ignore: ignoreUnless(LABEL, ROOT_NEEDS),
  async fn(t) {
    await withNamespaces("gtcli", 1, async ({ namespaces: [ns], defer }) => {
      const cmd = SOURCE_CMD.map((s) => `'${s}'`).join(" ");
      for (
        const [label, script, env] of [
          ["$(gotatun)", `out=$(${cmd} NAME); echo "rc=$?"`, {}],
          ["gotatun | cat", `${cmd} NAME | cat; echo "rc=\${PIPESTATUS[0]}"`, {}],
          ["$(LOG_LEVEL=verbose gotatun)", `out=$(${cmd} NAME); echo "rc=$?"`, {
            LOG_LEVEL: "verbose",
          }],
        ] as const
      ) {
        await t.step(label, async () => {
          const name = ifname();
          cleanupSocket(defer, name);
          const r = await ns.execWith(
            { timeoutMs: 20_000, env: { ...env } },
            "bash",
            "-c",
            script.replaceAll("NAME", name),
          );
          assert.equal(r.timedOut, false, "the shell hung on the daemon's pipe");
          assert.match(r.stdout, /rc=0/, r.stdout + r.stderr);
          assert.ok(await socketAnswers(uapiSocket(name)));
          await ns.execOk("ip", "link", "del", name);
          assert.ok(await waitFor(() => !exists(uapiSocket(name)), 5000), "daemon did not exit");
        });
      }
    });
  },
});

Deno.test({
  name: "gotatun refuses a live socket (exit 1) and replaces a stale one",
  ignore: ignoreUnless(LABEL, ROOT_NEEDS),
  async fn(t) {
    await withNamespaces("gtcli", 2, async ({ namespaces: [a, b], defer }) => {
      const name = ifname();
      cleanupSocket(defer, name);
      await launchDaemon(a, SOURCE_CMD, name, NOW);
      await t.step("same name, other namespace: unix socket in use", async () => {
        const r = await gotatun(b, SOURCE_CMD, [name]);
        assert.equal(r.code, 1);
        assert.match(r.stdout, /UAPI listen error: unix socket in use/);
        assert.equal(await b.hasLink(name), false, "the failed instance must not leave its TUN");
        assert.ok(await socketAnswers(uapiSocket(name)), "the live socket must survive");
      });
      await t.step("same name, same namespace: the TUN is busy", async () => {
        const r = await gotatun(a, SOURCE_CMD, [name]);
        assert.equal(r.code, 1);
        assert.match(r.stdout, /Failed to create TUN device/);
        assert.ok(await socketAnswers(uapiSocket(name)));
      });
      await t.step("stale socket file is replaced", async () => {
        const stale = ifname();
        cleanupSocket(defer, stale);
        staleSocket(uapiSocket(stale));
        assert.ok(exists(uapiSocket(stale)));
        assert.equal(await socketAnswers(uapiSocket(stale)), false);
        await launchDaemon(b, SOURCE_CMD, stale, NOW);
      });
    });
  },
});

Deno.test({
  name: "gotatun daemon exits and removes its socket on SIGTERM, and survives SIGHUP",
  ignore: ignoreUnless(LABEL, ROOT_NEEDS),
  async fn() {
    await withNamespaces("gtcli", 1, async ({ namespaces: [ns], defer }) => {
      const name = ifname();
      cleanupSocket(defer, name);
      await launchDaemon(ns, SOURCE_CMD, name, NOW);
      const pid = await daemonPid(ns);
      Deno.kill(pid, "SIGHUP");
      await sleep(500);
      assert.ok(pidAlive(pid), "SIGHUP killed the daemon");
      assert.ok(await socketAnswers(uapiSocket(name)));
      Deno.kill(pid, "SIGTERM");
      assert.ok(await waitFor(() => !pidAlive(pid), 5000), "still running after SIGTERM");
      assert.equal(exists(uapiSocket(name)), false, "socket left behind");
      assert.ok(await waitFor(async () => !(await ns.hasLink(name)), 3000), "TUN left behind");
    });
  },
});

Deno.test({
  name: "gotatun daemon exits when the link is deleted (wg-quick down) or the socket removed",
  ignore: ignoreUnless(LABEL, ROOT_NEEDS),
  async fn(t) {
    await withNamespaces("gtcli", 1, async ({ namespaces: [ns], defer }) => {
      await t.step("ip link del", async () => {
        const name = ifname();
        cleanupSocket(defer, name);
        await launchDaemon(ns, SOURCE_CMD, name, NOW);
        const pid = await daemonPid(ns);
        // Up first, so the UDP sockets exist too, as after wg-quick up.
        await ns.execOk("ip", "link", "set", name, "up");
        await ns.execOk("ip", "link", "del", name);
        assert.ok(await waitFor(() => !pidAlive(pid), 5000), "still running after ip link del");
        assert.equal(exists(uapiSocket(name)), false, "socket left behind");
      });
      await t.step("socket file removed", async () => {
        const name = ifname();
        cleanupSocket(defer, name);
        await launchDaemon(ns, SOURCE_CMD, name, NOW);
        const pid = await daemonPid(ns);
        Deno.removeSync(uapiSocket(name));
        assert.ok(await waitFor(() => !pidAlive(pid), 5000), "still running after rm socket");
        assert.ok(await waitFor(async () => !(await ns.hasLink(name)), 3000), "TUN left behind");
      });
    });
  },
});

Deno.test({
  name: "gotatun daemon follows the link: up opens the UDP port, down closes it",
  ignore: ignoreUnless(LABEL, { ...ROOT_NEEDS, tools: ["ip", "wg", "ss"] }),
  async fn() {
    await withNamespaces("gtcli", 1, async ({ namespaces: [ns], defer }) => {
      const name = ifname();
      cleanupSocket(defer, name);
      await launchDaemon(ns, SOURCE_CMD, name, NOW);
      const port = String(20000 + Math.floor(Math.random() * 20000));
      const key = (await run("wg", ["genkey"])).stdout.trim();
      const set = await ns.execWith(
        { stdin: key + "\n" },
        "wg",
        "set",
        name,
        "listen-port",
        port,
        "private-key",
        "/dev/stdin",
      );
      assert.equal(set.code, 0, set.stderr);
      async function listening(): Promise<boolean> {
        const r = await ns.exec("ss", "-Hunl", `sport = :${port}`);
        return r.stdout.trim() !== "";
      }
      assert.equal(await listening(), false, "no socket while the link is down");
      await ns.execOk("ip", "link", "set", name, "up");
      assert.ok(await waitFor(listening, 3000), "UDP port not opened after link up");
      await ns.execOk("ip", "link", "set", name, "down");
      assert.ok(await waitFor(async () => !(await listening()), 3000), "UDP port still open");
      const show = await ns.exec("wg", "show", name, "listen-port");
      assert.equal(show.stdout.trim(), port);
    });
  },
});

Deno.test({
  name: "gotatun -f stays in the foreground, follows the MTU, and exits 0 on SIGINT",
  ignore: ignoreUnless(LABEL, ROOT_NEEDS),
  async fn() {
    await withNamespaces("gtcli", 1, async ({ namespaces: [ns], spawn, defer }) => {
      const name = ifname();
      cleanupSocket(defer, name);
      const bg = spawn(ns, SOURCE_CMD[0], [...SOURCE_CMD.slice(1), "-f", name], {
        output: "piped",
        env: { LOG_LEVEL: "verbose" },
      });
      assert.ok(
        await waitFor(() => socketAnswers(uapiSocket(name)), 20_000),
        `socket never appeared: ${JSON.stringify(bg.output())}`,
      );
      await ns.execOk("ip", "link", "set", name, "mtu", "1280");
      assert.ok(
        await waitFor(() => bg.output().stdout.includes("MTU updated: 1280"), 3000),
        "MTU change not noticed",
      );
      // `ip netns exec` execs the program, so our child is the daemon itself.
      const status = await bg.kill("SIGINT", 5000);
      assert.equal(status.code, 0, JSON.stringify(bg.output()));
      assert.equal(exists(uapiSocket(name)), false);
      const out = bg.output();
      assert.match(out.stdout, new RegExp(`^DEBUG: \\(${name}\\) .*Starting gotatun version`, "m"));
      // -f still prints the banner, where it is true.
      assert.equal(BANNER_RE.test(out.stderr), BANNER, out.stderr);
    });
  },
});

Deno.test({
  name: "gotatun with LOG_LEVEL keeps logging to the caller's file after daemonizing",
  ignore: ignoreUnless(LABEL, ROOT_NEEDS),
  async fn() {
    await withNamespaces("gtcli", 1, async ({ namespaces: [ns], defer }) => {
      const name = ifname();
      cleanupSocket(defer, name);
      const log = await Deno.makeTempFile({ prefix: "gtcli-log-" });
      defer(() => Deno.remove(log));
      const cmd = SOURCE_CMD.map((s) => `'${s}'`).join(" ");
      const r = await ns.execWith(
        { env: { LOG_LEVEL: "verbose" } },
        "bash",
        "-c",
        `${cmd} ${name} >>'${log}' 2>&1; echo "rc=$?"`,
      );
      assert.match(r.stdout, /rc=0/);
      await ns.execOk("ip", "link", "del", name);
      assert.ok(
        await waitFor(() => Deno.readTextFileSync(log).includes("Shutting down"), 5000),
        `no shutdown line in ${Deno.readTextFileSync(log)}`,
      );
    });
  },
});

Deno.test({
  name: "two gotatun daemons carry a ping through the tunnel (event loop wiring)",
  ignore: ignoreUnless(LABEL, { ...ROOT_NEEDS, tools: ["ip", "wg", "ping"] }),
  async fn() {
    await withNamespaces("gtcli", 2, async ({ namespaces: [a, b], defer }) => {
      await vethPair(a, b, { addrA: "192.168.241.1/24", addrB: "192.168.241.2/24" });
      const names = [ifname(), ifname()];
      for (const n of names) cleanupSocket(defer, n);
      await launchDaemon(a, SOURCE_CMD, names[0], NOW);
      await launchDaemon(b, SOURCE_CMD, names[1], NOW);
      const keys = [];
      for (let i = 0; i < 2; i++) {
        const priv = (await run("wg", ["genkey"])).stdout.trim();
        const pub = (await run("wg", ["pubkey"], { stdin: priv + "\n" })).stdout.trim();
        keys.push({ priv, pub });
      }
      const sides = [
        {
          ns: a,
          name: names[0],
          me: keys[0],
          peer: keys[1],
          port: "51001",
          peerEp: "192.168.241.2:51002",
          addr: "10.77.0.1",
          peerAddr: "10.77.0.2",
        },
        {
          ns: b,
          name: names[1],
          me: keys[1],
          peer: keys[0],
          port: "51002",
          peerEp: "192.168.241.1:51001",
          addr: "10.77.0.2",
          peerAddr: "10.77.0.1",
        },
      ];
      for (const s of sides) {
        const set = await s.ns.execWith(
          { stdin: s.me.priv + "\n" },
          "wg",
          "set",
          s.name,
          "private-key",
          "/dev/stdin",
          "listen-port",
          s.port,
          "peer",
          s.peer.pub,
          "allowed-ips",
          `${s.peerAddr}/32`,
          "endpoint",
          s.peerEp,
        );
        assert.equal(set.code, 0, set.stderr);
        await s.ns.addrUp(s.name, `${s.addr}/24`);
      }
      const r = await ping(a, "10.77.0.2", 3, { intervalS: 0.2, waitS: 3 });
      assert.ok(r.received > 0, r.output);
      const dump = await a.exec("wg", "show", names[0], "latest-handshakes");
      assert.doesNotMatch(dump.stdout, /\t0$/m, "no handshake recorded");
    });
  },
});

// ---------------------------------------------------------------------------
// The built file, when present.

Deno.test({
  name: "dist/gotatun runs, daemonizes from the bundle, and exits on ip link del",
  ignore: ignoreUnless(LABEL, { ...ROOT_NEEDS, files: [DIST] }),
  async fn() {
    const v = await run(DIST, ["--version"]);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout.split("\n")[0], `gotatun v${VERSION}`);
    await withNamespaces("gtcli", 1, async ({ namespaces: [ns], defer }) => {
      const name = ifname();
      cleanupSocket(defer, name);
      const r = await ns.execWith(
        { timeoutMs: 20_000 },
        "bash",
        "-c",
        `out=$('${DIST}' ${name}); echo "rc=$?"`,
      );
      assert.equal(r.timedOut, false, "hung");
      assert.match(r.stdout, /rc=0/, r.stdout + r.stderr);
      assert.ok(await socketAnswers(uapiSocket(name)));
      const pid = await daemonPid(ns);
      await ns.execOk("ip", "link", "del", name);
      assert.ok(await waitFor(() => !pidAlive(pid), 5000));
      assert.equal(exists(uapiSocket(name)), false);
    });
  },
});
