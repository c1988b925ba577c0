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
  for (const argv of [["help"], ["--help"], ["-h"]]) {
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
    assert.equal(out.stderr, "gotatun: `maybe' is neither true nor false\n");

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

Deno.test({
  name: "quickMain() up refuses an existing link, down a link that is not WireGuard",
  ignore: SKIP_WG_GO,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withNamespaces("gtq", 1, async ({ namespaces: [ns], defer }) => {
      const dir = await Deno.makeTempDir({ prefix: "gtq-" });
      defer(() => Deno.remove(dir, { recursive: true }));
      const name = iface();
      const conf = `${dir}/${name}.conf`;
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
      const dir = await Deno.makeTempDir({ prefix: "gtq-" });
      defer(() => Deno.remove(dir, { recursive: true }));
      const name = iface();
      const conf = `${dir}/${name}.conf`;
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
      const dir = await Deno.makeTempDir({ prefix: "gtq-" });
      defer(() => Deno.remove(dir, { recursive: true }));
      const name = iface();
      const conf = `${dir}/${name}.conf`;
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
      assert.match(up.stderr, new RegExp(`\\[#\\] \\S*deno run .*/cli/main\\.ts ${name}\\n`));
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
      const dir = await Deno.makeTempDir({ prefix: "gtq-" });
      defer(() => Deno.remove(dir, { recursive: true }));
      const name = iface();
      const conf = `${dir}/${name}.conf`;
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
