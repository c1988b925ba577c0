// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * quickMain() (cli/quick/main.ts): usage and exit codes, `strip`, wg-quick's
 * configuration-file checks and messages, and — as root, in namespaces of
 * our own — the refusals of `up`/`down` and a full `up`/`down` with the
 * default implementation, gotatun's own daemon started from the sources.
 */
import assert from "node:assert/strict";
import { implementationCommand, quickMain, quickUsage } from "../../../cli/quick/main.ts";
import type { QuickOutput } from "../../../cli/quick/runner.ts";
import { withNamespaces } from "../../_util/netns.ts";
import { run, runOk, waitFor } from "../../_util/proc.ts";
import { ignoreUnless, type Needs } from "../../_util/needs.ts";

function collector(): QuickOutput & { stdout: string; stderr: string } {
  const c = {
    stdout: "",
    stderr: "",
    out(text: string) {
      c.stdout += text;
    },
    err(text: string) {
      c.stderr += text;
    },
  };
  return c;
}

const ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };

Deno.test("quickMain() prints usage: exit 0 for help, 1 for anything malformed", async () => {
  // `up --help` is help, not /etc/wireguard/--help.conf (and needs no root).
  for (const argv of [["help"], ["--help"], ["-h"], ["up", "--help"], ["down", "-h"]]) {
    const out = collector();
    assert.equal(await quickMain(argv, ENV, out), 0);
    assert.equal(out.stderr, quickUsage());
  }
  for (const argv of [[], ["up"], ["start", "wg0"], ["up", "wg0", "extra"], ["help", "x"]]) {
    const out = collector();
    assert.equal(await quickMain(argv, ENV, out), 1, JSON.stringify(argv));
    assert.match(out.stderr, /^Usage: gotatun \[ up \| down \| save \| strip \] /);
  }
});

Deno.test("implementationCommand() is GOTATUN_QUICK_IMPLEMENTATION, else gotatun itself", () => {
  assert.deepEqual(implementationCommand({ GOTATUN_QUICK_IMPLEMENTATION: "/x/wireguard-go" }), [
    "/x/wireguard-go",
  ]);
  const self = implementationCommand({});
  assert.ok(self.length >= 1);
  assert.equal(self[0], Deno.execPath());
});

Deno.test("quickMain() strip prints the wg part of the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gtq-" });
  try {
    const path = `${dir}/gtq0.conf`;
    await Deno.writeTextFile(
      path,
      "[Interface]\nAddress = 10.0.0.1/24\nPrivateKey = x\n[Peer]\nPublicKey = y\n",
      { mode: 0o600 },
    );
    const out = collector();
    assert.equal(await quickMain(["strip", path], ENV, out), 0);
    assert.equal(out.stdout, "[Interface]\nPrivateKey = x\n[Peer]\nPublicKey = y\n\n");
    assert.equal(out.stderr, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("quickMain() reports file problems as wg-quick does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gtq-" });
  try {
    let out = collector();
    assert.equal(await quickMain(["strip", `${dir}/gtq9.conf`], ENV, out), 1);
    assert.equal(out.stderr, `gotatun: \`${dir}/gtq9.conf' does not exist\n`);

    await Deno.writeTextFile(`${dir}/bad name.conf`, "", { mode: 0o600 });
    out = collector();
    assert.equal(await quickMain(["strip", `${dir}/bad name.conf`], ENV, out), 1);
    assert.equal(
      out.stderr,
      "gotatun: The config file must be a valid interface name, followed by .conf\n",
    );

    await Deno.writeTextFile(`${dir}/gtq1.conf`, "[Interface]\nSaveConfig = maybe\n", {
      mode: 0o600,
    });
    out = collector();
    assert.equal(await quickMain(["strip", `${dir}/gtq1.conf`], ENV, out), 1);
    assert.equal(out.stderr, `gotatun: ${dir}/gtq1.conf:2: \`maybe' is neither true nor false\n`);

    // Readable by others, in a directory others can enter: warned, still used.
    await Deno.chmod(dir, 0o755);
    await Deno.writeTextFile(`${dir}/gtq2.conf`, "[Interface]\n");
    await Deno.chmod(`${dir}/gtq2.conf`, 0o644);
    await Deno.symlink(`${dir}/gtq2.conf`, `${dir}/gtq3.conf`);
    out = collector();
    assert.equal(await quickMain(["strip", `${dir}/gtq3.conf`], ENV, out), 0);
    const real = await Deno.realPath(`${dir}/gtq2.conf`);
    assert.equal(out.stderr, `Warning: \`${real}' is world accessible\n`);
    assert.equal(out.stdout, "[Interface]\n\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const REPO = new URL("../../../", import.meta.url).pathname;
const LABEL = "test/cli/quick/main_test.ts";
/** What the root tests below need (test/_util/needs.ts). */
const ROOT_NEEDS: Needs = { root: true, tools: ["ip", "wg", "bash"] };
const SKIP_ROOT = ignoreUnless(LABEL, ROOT_NEEDS);
const SKIP_WG_GO = ignoreUnless(LABEL, { root: true, tools: ["ip", "wg", "bash", "wireguard-go"] });

function iface(): string {
  return `gtq${String(Math.floor(Math.random() * 1e6)).padStart(6, "0")}`;
}

/** Runs `deno run cli/quick/main.ts ARGS` inside the namespace. */
function quickIn(ns: string, env: Record<string, string>, ...args: string[]) {
  return run("ip", [
    "netns",
    "exec",
    ns,
    "deno",
    "run",
    "-A",
    "--no-prompt",
    "--config",
    `${REPO}deno.json`,
    `${REPO}cli/quick/main.ts`,
    ...args,
  ], { env: { LOG_LEVEL: "", ...env }, timeoutMs: 90_000 });
}

/** A fresh interface name and its config path in a temporary directory removed at `defer`. */
async function confFile(
  defer: (fn: () => void | Promise<void>) => void,
): Promise<{ dir: string; name: string; conf: string }> {
  const dir = await Deno.makeTempDir({ prefix: "gtq-" });
  defer(() => Deno.remove(dir, { recursive: true }));
  const name = iface();
  return { dir, name, conf: `${dir}/${name}.conf` };
}

Deno.test({
  name: "quickMain() up refuses an existing link, down a link that is not WireGuard",
  ignore: SKIP_WG_GO,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNamespaces("gtq", 1, async ({ namespaces: [ns], defer }) => {
      const { name, conf } = await confFile(defer);
      await Deno.writeTextFile(conf, "[Interface]\nAddress = 10.1.0.1/24\n", { mode: 0o600 });
      // Any link with that name: a veth pair (no dummy module on every host).
      await ns.execOk("ip", "link", "add", name, "type", "veth", "peer", "name", `${name}p`);
      const env = { GOTATUN_QUICK_IMPLEMENTATION: "/usr/bin/wireguard-go" };
      const up = await quickIn(ns.name, env, "up", conf);
      assert.equal(up.code, 1);
      assert.equal(up.stderr, `gotatun: \`${name}' already exists\n`);
      const down = await quickIn(ns.name, env, "down", conf);
      assert.equal(down.code, 1);
      assert.equal(down.stderr, `gotatun: \`${name}' is not a WireGuard interface\n`);
      const save = await quickIn(ns.name, env, "save", conf);
      assert.equal(save.code, 1);
      // The existing link is untouched.
      assert.ok(await ns.hasLink(name));
    });
  },
});

Deno.test({
  name: "quickMain() up with DNS but no resolvconf fails before creating anything",
  ignore: SKIP_WG_GO,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNamespaces("gtq", 1, async ({ namespaces: [ns], defer }) => {
      const { dir, name, conf } = await confFile(defer);
      await Deno.writeTextFile(conf, "[Interface]\nDNS = 10.0.0.53\n", { mode: 0o600 });
      // A PATH with the basics and no resolvconf.
      const bin = `${dir}/bin`;
      await Deno.mkdir(bin);
      for (const tool of ["ip", "wg", "bash", "deno"]) {
        const r = await runOk("bash", ["-c", `command -v ${tool}`]);
        await Deno.symlink(r.stdout.trim(), `${bin}/${tool}`);
      }
      const r = await quickIn(
        ns.name,
        {
          PATH: bin,
          GOTATUN_QUICK_IMPLEMENTATION: "/usr/bin/wireguard-go",
        },
        "up",
        conf,
      );
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^gotatun: `DNS =' is set but resolvconf\(8\) is not installed/);
      assert.ok(!r.stderr.includes("[#]"), r.stderr);
      assert.ok(!(await ns.hasLink(name)));
    });
  },
});

Deno.test({
  name: "quickMain() up/down with the default implementation runs gotatun's own daemon",
  ignore: SKIP_ROOT,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNamespaces("gtq", 1, async ({ namespaces: [ns], defer }) => {
      const { name, conf } = await confFile(defer);
      const key = (await runOk("wg", ["genkey"])).stdout.trim();
      const peer =
        (await runOk("wg", ["pubkey"], { stdin: (await runOk("wg", ["genkey"])).stdout }))
          .stdout.trim();
      await Deno.writeTextFile(
        conf,
        `[Interface]\nPrivateKey = ${key}\nListenPort = 43091\nAddress = 10.91.0.1/24\n\n` +
          `[Peer]\nPublicKey = ${peer}\nAllowedIPs = 10.92.0.0/16\n`,
        { mode: 0o600 },
      );
      const up = await quickIn(ns.name, {}, "up", conf);
      assert.equal(up.code, 0, up.stderr);
      assert.ok(!up.timedOut, "up left its output open");
      // wg-quick's lines, not the command lines of the deno processes behind them.
      assert.match(up.stderr, new RegExp(`^\\[#\\] gotatun ${name}$`, "m"));
      assert.match(up.stderr, new RegExp(`^\\[#\\] wg addconf ${name} /dev/fd/63$`, "m"));
      assert.ok(!up.stderr.includes("deno"), up.stderr);
      const show = await ns.execOk("wg", "show", name, "listen-port");
      assert.equal(show.stdout.trim(), "43091");
      const route = await ns.execOk("ip", "route", "show", "dev", name);
      assert.match(route.stdout, /10\.92\.0\.0\/16/);
      const down = await quickIn(ns.name, {}, "down", conf);
      assert.equal(down.code, 0, down.stderr);
      assert.ok(await waitFor(async () => (await ns.pids()).length === 0, 10_000), "daemon left");
      assert.ok(
        await waitFor(
          () => Deno.stat(`/var/run/wireguard/${name}.sock`).then(() => false, () => true),
          10_000,
        ),
        "socket left",
      );
    });
  },
});

Deno.test({
  name: "quickMain() up undoes everything when SIGTERM arrives during a hook",
  ignore: SKIP_WG_GO,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNamespaces("gtq", 1, async ({ namespaces: [ns], defer, spawn }) => {
      const { dir, name, conf } = await confFile(defer);
      await Deno.writeTextFile(
        conf,
        `[Interface]\nAddress = 10.93.0.1/24\nPostUp = touch ${dir}/hook; sleep 30\n`,
        { mode: 0o600 },
      );
      const bg = spawn(ns, "deno", [
        "run",
        "-A",
        "--no-prompt",
        "--config",
        `${REPO}deno.json`,
        `${REPO}cli/quick/main.ts`,
        "up",
        conf,
      ], { env: { GOTATUN_QUICK_IMPLEMENTATION: "/usr/bin/wireguard-go", LOG_LEVEL: "" } });
      assert.ok(
        await waitFor(() => Deno.stat(`${dir}/hook`).then(() => true, () => false), 30_000),
        "the PostUp hook never ran",
      );
      assert.ok(await ns.hasLink(name));
      // `ip netns exec` execs the command, so the PID is deno's.
      Deno.kill(bg.pid, "SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        bg.status,
        new Promise<null>((r) => (timer = setTimeout(() => r(null), 20_000))),
      ]);
      clearTimeout(timer);
      assert.ok(status !== null, "up did not finish after SIGTERM");
      assert.notEqual(status.code, 0);
      assert.ok(!(await ns.hasLink(name)), "the link survived the interrupted up");
    });
  },
});

/** A fresh `[Interface]` + one `[Peer]` configuration with new keys. */
async function freshConfig(address: string, port: number): Promise<string> {
  const key = (await runOk("wg", ["genkey"])).stdout.trim();
  const peer = (await runOk("wg", ["pubkey"], { stdin: (await runOk("wg", ["genkey"])).stdout }))
    .stdout.trim();
  return `[Interface]\nPrivateKey = ${key}\nListenPort = ${port}\nAddress = ${address}\n\n` +
    `[Peer]\nPublicKey = ${peer}\nAllowedIPs = 10.99.0.0/16\n`;
}

Deno.test({
  name: "quickMain() up reports every mistake of the file by line, creates nothing, shows no key",
  ignore: SKIP_ROOT,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNamespaces("gtq", 1, async ({ namespaces: [ns], defer }) => {
      const { name, conf } = await confFile(defer);
      const key = (await runOk("wg", ["genkey"])).stdout.trim();
      await Deno.writeTextFile(
        conf,
        `[Interface]\nPrivateKey = ${key.slice(0, 43)}\nAddress = 10.0.0.300/24\nMTU = 9\n` +
          "Table = Main\nPostUp = echo (\n\n[Peer]\nAllowedIPs = 10.0.0.0/8\n",
        { mode: 0o600 },
      );
      const r = await quickIn(ns.name, {}, "up", conf);
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.trimEnd().split("\n");
      assert.deepEqual(lines.map((l) => l.slice(0, l.indexOf(": ", `gotatun: ${conf}`.length))), [
        `gotatun: ${conf}:2`,
        `gotatun: ${conf}:3`,
        `gotatun: ${conf}:4`,
        `gotatun: ${conf}:5`,
        `gotatun: ${conf}:6`,
        `gotatun: ${conf}:8`,
      ]);
      assert.equal(lines[1], `gotatun: ${conf}:3: Address: "10.0.0.300/24" is not an IP prefix`);
      assert.match(lines[0], /: PrivateKey is not a valid key: it has 43 characters/);
      assert.match(lines[4], /: PostUp: bash syntax error: /);
      assert.equal(lines[5], `gotatun: ${conf}:8: [Peer] has no PublicKey`);
      for (let i = 0; i + 8 <= key.length; i++) {
        assert.ok(!r.stderr.includes(key.slice(i, i + 8)), "a piece of the private key is shown");
      }
      assert.ok(!r.stderr.includes("[#]"), r.stderr);
      assert.ok(!(await ns.hasLink(name)));
      assert.deepEqual(await ns.pids(), []);
    });
  },
});

Deno.test({
  name: "quickMain() down INTERFACE takes a live interface down when its file is gone",
  ignore: SKIP_ROOT,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNamespaces("gtq", 1, async ({ namespaces: [ns], defer }) => {
      const { name, conf } = await confFile(defer);
      await Deno.writeTextFile(conf, await freshConfig("10.94.0.1/24", 43094), { mode: 0o600 });
      const up = await quickIn(ns.name, {}, "up", conf);
      assert.equal(up.code, 0, up.stderr);
      await Deno.remove(conf);
      // A bare name means /etc/wireguard/NAME.conf, which does not exist either.
      assert.ok(!(await Deno.stat(`/etc/wireguard/${name}.conf`).then(() => true, () => false)));
      const down = await quickIn(ns.name, {}, "down", name);
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stderr, /does not exist: taking down the live interface/);
      assert.match(down.stderr, new RegExp(`^\\[#\\] ip link delete dev ${name}$`, "m"));
      assert.ok(!(await ns.hasLink(name)));
      assert.ok(await waitFor(async () => (await ns.pids()).length === 0, 10_000), "daemon left");
      // Nothing live any more: now it is the usual error.
      const again = await quickIn(ns.name, {}, "down", name);
      assert.equal(again.code, 1);
      assert.equal(again.stderr, `gotatun: \`/etc/wireguard/${name}.conf' does not exist\n`);
    });
  },
});

Deno.test({
  name: "quickMain() up of a name served in another namespace names the daemon holding the socket",
  ignore: SKIP_ROOT,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNamespaces("gtq", 2, async ({ namespaces: [a, b], defer }) => {
      const { name, conf } = await confFile(defer);
      await Deno.writeTextFile(conf, await freshConfig("10.95.0.1/24", 43095), { mode: 0o600 });
      const first = await quickIn(a.name, {}, "up", conf);
      assert.equal(first.code, 0, first.stderr);
      const [holder] = await a.pids();
      const second = await quickIn(b.name, {}, "up", conf);
      assert.notEqual(second.code, 0);
      const said = second.stdout + second.stderr;
      assert.match(
        said,
        new RegExp(
          `UAPI listen error: unix socket in use: /var/run/wireguard/${name}\\.sock is served by ` +
            `process ${holder} \\(main\\.ts ${name}\\) in another network namespace; ` +
            "/var/run/wireguard is shared by all network namespaces",
        ),
      );
      // The failed up cleaned up after itself; the first interface is untouched.
      assert.ok(!(await b.hasLink(name)));
      assert.ok(await a.hasLink(name));
      assert.equal((await a.execOk("wg", "show", name, "listen-port")).stdout.trim(), "43095");
      const down = await quickIn(a.name, {}, "down", conf);
      assert.equal(down.code, 0, down.stderr);
    });
  },
});

Deno.test({
  name: "quickMain() up resolves endpoint names after PreUp, which may be what makes them resolve",
  ignore: SKIP_ROOT,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNamespaces("gtq", 1, async ({ namespaces: [ns], defer }) => {
      const dir = await Deno.makeTempDir({ prefix: "gtq-" });
      defer(() => Deno.remove(dir, { recursive: true }));
      // `ip netns exec` mounts /etc/netns/NAME/hosts over /etc/hosts: a hosts file of this
      // namespace alone, which the PreUp hook fills.
      const etc = `/etc/netns/${ns.name}`;
      await Deno.mkdir(etc, { recursive: true });
      defer(() => Deno.remove(etc, { recursive: true }));
      await Deno.writeTextFile(`${etc}/hosts`, "127.0.0.1 localhost\n");
      const name = iface();
      const conf = `${dir}/${name}.conf`;
      const host = `peer-${name}.test`;
      await Deno.writeTextFile(
        conf,
        (await freshConfig("10.96.0.1/24", 43096)) + `Endpoint = ${host}:51820\n` +
          `\n[Interface]\nPreUp = echo '192.0.2.77 ${host}' >> /etc/hosts\n`,
        { mode: 0o600 },
      );
      const up = await quickIn(ns.name, { WG_ENDPOINT_RESOLUTION_RETRIES: "0" }, "up", conf);
      assert.equal(up.code, 0, up.stderr);
      const endpoints = await ns.execOk("wg", "show", name, "endpoints");
      assert.match(endpoints.stdout, /\t192\.0\.2\.77:51820\n/);
      const down = await quickIn(ns.name, {}, "down", conf);
      assert.equal(down.code, 0, down.stderr);

      // Without the hook the name does not resolve: reported by line, everything undone.
      await Deno.writeTextFile(`${etc}/hosts`, "127.0.0.1 localhost\n");
      const text = await Deno.readTextFile(conf);
      await Deno.writeTextFile(conf, text.replace(/PreUp = .*\n/, "PreUp = true\n"));
      const failed = await quickIn(ns.name, { WG_ENDPOINT_RESOLUTION_RETRIES: "0" }, "up", conf);
      assert.equal(failed.code, 1);
      assert.match(failed.stderr, new RegExp(`gotatun: ${conf}:9: .*\`${host}:51820'`));
      assert.ok(!(await ns.hasLink(name)));
    });
  },
});
