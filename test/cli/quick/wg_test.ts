// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The wg layer of gotatun's wg-quick (cli/quick/wg.ts): its reads and
 * writes against a scripted daemon in a directory of our own, and — as root,
 * against a live wireguard-go (and gotatun's dist/gotatun when it works) in a
 * namespace of our own — every read compared with what stock `wg` prints for
 * the same interface.
 */
import assert from "node:assert/strict";
import { wgCommand, wgOps } from "../../../cli/quick/wg.ts";
import { type QuickOutput, Runner } from "../../../cli/quick/runner.ts";
import { parseQuickConfig } from "../../../cli/quick/config.ts";
import { buildWgDevice } from "../../../cli/quick/validate.ts";
import { defaultResolver } from "../../../cli/wg/resolve.ts";
import { hasTool, run, runOk, waitFor } from "../../_util/proc.ts";
import { ignoreUnless } from "../../_util/needs.ts";
import { withNamespaces } from "../../_util/netns.ts";
import { FakeDaemon, staticDaemon } from "../wg/_fake_daemon.ts";

const silent: QuickOutput = { out() {}, err() {} };

Deno.test("wgCommand() is `wg` unless GOTATUN_QUICK_WG names another", () => {
  assert.deepEqual(wgCommand({}), ["wg"]);
  assert.deepEqual(wgCommand({ GOTATUN_QUICK_WG: " gotatun  wg " }), ["gotatun", "wg"]);
  assert.deepEqual(wgCommand({ GOTATUN_QUICK_WG: "" }), ["wg"]);
});

Deno.test("wgOps() reads and sets over UAPI as wg would, without starting wg", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gtq-wg-" });
  const a = "11".repeat(32);
  const b = "22".repeat(32);
  const daemon = new FakeDaemon(
    dir,
    "gtq0",
    staticDaemon(
      `private_key=${a}\nlisten_port=51820\nfwmark=51820\npublic_key=${b}\n` +
        `preshared_key=${"00".repeat(32)}\nprotocol_version=1\nendpoint=[fd00::2]:51821\n` +
        `last_handshake_time_sec=0\npersistent_keepalive_interval=25\n` +
        `allowed_ip=10.0.0.2/32\nallowed_ip=fd00::/64\npublic_key=${a}\npreshared_key=${b}\n` +
        `persistent_keepalive_interval=0\n`,
    ),
  );
  const err: string[] = [];
  try {
    // With nothing on PATH: no `wg` (nor anything else) can be started.
    const ops = wgOps(
      new Runner({ PATH: "/nonexistent" }, { out() {}, err: (t) => err.push(t) }),
      dir,
    );
    const key = (hex: string) => Uint8Array.fromHex(hex).toBase64();
    assert.equal(
      await ops.showconf("gtq0"),
      `[Interface]\nListenPort = 51820\nFwMark = 0xca6c\nPrivateKey = ${key(a)}\n\n` +
        `[Peer]\nPublicKey = ${key(b)}\nAllowedIPs = 10.0.0.2/32, fd00::/64\n` +
        `Endpoint = [fd00::2]:51821\nPersistentKeepalive = 25\n\n` +
        `[Peer]\nPublicKey = ${key(a)}\nPresharedKey = ${key(b)}\n`,
    );
    assert.deepEqual(await ops.endpoints("gtq0"), ["[fd00::2]:51821"]);
    assert.deepEqual(await ops.allowedIps("gtq0"), ["10.0.0.2/32", "fd00::/64"]);
    assert.equal(await ops.fwmark("gtq0"), 51820);
    assert.equal(await ops.isInterface("gtq0"), true);
    daemon.take();
    await ops.setFwmark("gtq0", 7);
    assert.deepEqual(daemon.take(), ["set=1\nfwmark=7\n\n"]);
    daemon.script = staticDaemon("", -22);
    await assert.rejects(
      ops.setFwmark("gtq0", 7),
      /^WgError: Unable to modify interface: Invalid argument$/,
    );
    daemon.script = () => "errno=5\n\n";
    assert.equal(await ops.fwmark("gtq0"), null);
    assert.deepEqual(err, ["Unable to access interface: Input/output error\n"]);
  } finally {
    await daemon.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Userspace implementations to check the layer against. */
async function implementations(): Promise<string[]> {
  const out: string[] = [];
  if (hasTool("wireguard-go")) out.push("wireguard-go");
  const dist = new URL("../../../dist/gotatun", import.meta.url).pathname;
  const r = await run(dist, ["--version"], { timeoutMs: 20_000 }).catch(() => null);
  if (r !== null && r.code === 0) out.push(dist);
  return out;
}

/** showconf text with its [Peer] sections in sorted order. */
function peersSorted(text: string): string {
  const [head, ...peers] = text.replace(/\n+$/, "").split("\n\n[Peer]\n");
  return [head, ...peers.sort()].join("\n\n[Peer]\n");
}

function randomIface(): string {
  return `gtq${Math.floor(Math.random() * 1e6).toString().padStart(6, "0")}`;
}

Deno.test({
  name: "wgOps() reads and sets over UAPI exactly what stock wg shows",
  ignore: ignoreUnless("test/cli/quick/wg_test.ts", {
    root: true,
    tools: ["wg", "ip", "wireguard-go"],
  }),
  sanitizeResources: false,
  async fn(t) {
    for (const impl of await implementations()) {
      await t.step(impl, async () => {
        await withNamespaces("gtq", 1, async ({ namespaces: [ns] }) => {
          const iface = randomIface();
          const r = await run("ip", ["netns", "exec", ns.name, impl, iface], {
            timeoutMs: 60_000,
          });
          assert.equal(r.code, 0, r.stdout + r.stderr);
          assert.ok(
            await waitFor(() => {
              try {
                return Deno.statSync(`/var/run/wireguard/${iface}.sock`).isSocket === true;
              } catch {
                return false;
              }
            }, 10_000),
          );
          const keys = await Promise.all([0, 1, 2, 3].map(async () => {
            const k = (await runOk("wg", ["genkey"])).stdout.trim();
            return { k, p: (await runOk("wg", ["pubkey"], { stdin: k })).stdout.trim() };
          }));
          const conf = `[Interface]\nPrivateKey = ${keys[0].k}\nListenPort = 42000\n\n` +
            `[Peer]\nPublicKey = ${keys[1].p}\nPresharedKey = ${keys[2].k}\n` +
            `Endpoint = [2001:db8::7]:51820\nAllowedIPs = 10.1.0.0/16, ::/0\n` +
            `PersistentKeepalive = 21\n\n[Peer]\nPublicKey = ${keys[2].p}\n` +
            `Endpoint = 192.0.2.9:1\nAllowedIPs = 0.0.0.0/0\n`;
          await runOk("wg", ["setconf", iface, "/dev/stdin"], { stdin: conf });

          const runner = new Runner({ PATH: Deno.env.get("PATH") }, silent);
          const ops = wgOps(runner);
          assert.equal(await ops.isInterface(iface), true);
          assert.equal(await ops.isInterface(randomIface()), false);
          // wireguard-go lists peers in Go map order, which changes from one get to the next.
          assert.equal(
            peersSorted(await ops.showconf(iface)),
            peersSorted((await runOk("wg", ["showconf", iface])).stdout),
          );
          const stockEndpoints = (await runOk("wg", ["show", iface, "endpoints"])).stdout
            .trim().split("\n").map((l) => l.split("\t")[1]);
          assert.deepEqual((await ops.endpoints(iface)).sort(), stockEndpoints.sort());
          const stockAllowed = (await runOk("wg", ["show", iface, "allowed-ips"])).stdout
            .trim().split("\n").flatMap((l) => l.split("\t")[1].split(" "));
          assert.deepEqual((await ops.allowedIps(iface)).sort(), stockAllowed.sort());
          assert.equal(await ops.fwmark(iface), 0);
          await ops.setFwmark(iface, 51821);
          assert.equal((await runOk("wg", ["show", iface, "fwmark"])).stdout.trim(), "0xca6d");
          assert.equal(await ops.fwmark(iface), 51821);
          // addconf goes over UAPI in this process, with the request wg's parser builds.
          const text = `[Peer]\nPublicKey = ${keys[3].p}\nAllowedIPs = 10.9.9.9/32\n`;
          const built = await buildWgDevice(parseQuickConfig(iface, text).wgLines, {
            resolver: defaultResolver(),
            env: {},
          });
          assert.deepEqual(built.problems, []);
          // With nothing on PATH: no `wg` (nor anything else) can be started.
          const noTools = wgOps(new Runner({ PATH: "/nonexistent" }, silent));
          await noTools.addconf(iface, { text, device: built.device! });
          assert.match(
            (await runOk("wg", ["show", iface, "allowed-ips"])).stdout,
            /10\.9\.9\.9\/32/,
          );
          await ns.execOk("ip", "link", "delete", "dev", iface);
          assert.ok(
            await waitFor(() => {
              try {
                Deno.statSync(`/var/run/wireguard/${iface}.sock`);
                return false;
              } catch {
                return true;
              }
            }, 10_000),
            "the daemon left its socket behind",
          );
          assert.equal(await ops.isInterface(iface), false);
          assert.equal(await ops.fwmark(iface), null);
          assert.deepEqual(await ops.endpoints(iface), []);
        });
      });
    }
  },
});
