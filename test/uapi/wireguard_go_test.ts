// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The comparison test: stock `wg` and raw UAPI exchanges against wireguard-go
 * (in a private network namespace, with a real TUN) and against our
 * UapiServer + in-memory Device, asserting identical output, exit codes and
 * replies. Root only. With `GTU_UPDATE_GOLDEN=1` the raw exchanges recorded
 * from wireguard-go are written to testdata/uapi/wireguard_go_raw.json, which
 * golden_test.ts replays without root.
 */
import assert from "node:assert/strict";
import { run, waitFor, withNamespaces } from "../_util/netns.ts";
import { ignoreUnless } from "../_util/needs.ts";
import { GOLDEN_URL, OurSide, RAW_CASES, type RecordedCase, runRaw } from "./_compare.ts";

const SOCK_DIR = "/var/run/wireguard";
const ignore = ignoreUnless("test/uapi/wireguard_go_test.ts", {
  root: true,
  tools: ["wg", "wireguard-go", "ip"],
});

function digits(n: number): string {
  return String(Math.floor(Math.random() * 10 ** n)).padStart(n, "0");
}

async function socketReady(path: string): Promise<boolean> {
  try {
    const c = await Deno.connect({ transport: "unix", path });
    c.close();
    return true;
  } catch {
    return false;
  }
}

interface Names {
  /** Main and second interface. */
  i1: string;
  i2: string;
}

/** Starts wireguard-go for each name in a new namespace, runs `fn`, cleans up. */
async function withWireguardGo(names: Names, fn: () => Promise<void>): Promise<void> {
  await withNamespaces("gtu", 1, async (ctx) => {
    const [ns] = ctx.namespaces;
    for (const name of [names.i1, names.i2]) {
      const path = `${SOCK_DIR}/${name}.sock`;
      ctx.defer(() => Deno.remove(path).catch(() => {}));
      const proc = ctx.spawn(ns, "wireguard-go", ["-f", name], {
        env: { LOG_LEVEL: "silent", WG_PROCESS_FOREGROUND: "1" },
      });
      const ok = await waitFor(() => socketReady(path), 10_000);
      if (!ok) {
        await proc.kill();
        throw new Error(`wireguard-go ${name} did not start`);
      }
    }
    await fn();
  });
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Output with peer blocks/lines sorted: wireguard-go lists peers in Go map
 * order (random), we in insertion order.
 */
function sortPeers(r: Result): Result {
  const fix = (s: string) => {
    if (s.includes("\n\n")) {
      // `wg show` / `wg showconf`: interface block, then one block per peer.
      const blocks = s.replace(/\n+$/, "").split("\n\n");
      return [blocks[0], ...blocks.slice(1).sort()].join("\n\n") + "\n";
    }
    // Field outputs and dump: one line per peer.
    return s.split("\n").sort().join("\n");
  };
  return { code: r.code, stdout: fix(r.stdout), stderr: fix(r.stderr) };
}

async function wg(args: string[], names: Names, stdin?: string): Promise<Result> {
  const real = args.map((a) => a === "%I" ? names.i1 : a === "%I2" ? names.i2 : a);
  const r = await run("wg", real, { timeoutMs: 15_000, stdin });
  if (r.timedOut) throw new Error(`wg ${real.join(" ")} timed out`);
  const named = (s: string) => s.replaceAll(names.i2, "IFACE2").replaceAll(names.i1, "IFACE");
  return { code: r.code, stdout: named(r.stdout), stderr: named(r.stderr) };
}

async function genkeys(dir: string) {
  async function out(args: string[], stdin?: string): Promise<string> {
    const r = await run("wg", args, { timeoutMs: 10_000, stdin });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  }
  const keys: { file: string; pub: string; priv: string }[] = [];
  for (let i = 0; i < 4; i++) {
    const priv = await out(["genkey"]);
    const pub = await out(["pubkey"], priv + "\n");
    const file = `${dir}/k${i}.key`;
    await Deno.writeTextFile(file, priv + "\n");
    keys.push({ file, pub, priv });
  }
  const psk = `${dir}/psk.key`;
  await Deno.writeTextFile(psk, (await out(["genpsk"])) + "\n");
  return { keys, psk };
}

/** `wg` command lines (`%I`, `%I2` = interfaces), run in order on both sides. */
async function cliSteps(dir: string): Promise<string[][]> {
  const { keys, psk } = await genkeys(dir);
  const [me, p1, p2, p3] = keys;
  const conf = async (name: string, text: string) => {
    const file = `${dir}/${name}.conf`;
    await Deno.writeTextFile(file, text);
    return file;
  };
  const conf1 = await conf(
    "c1",
    `[Interface]\nPrivateKey = ${me.priv}\nListenPort = 51830\nFwMark = 0xca6c\n\n` +
      `[Peer]\nPublicKey = ${p1.pub}\nPresharedKey = ${await Deno.readTextFile(psk)}` +
      `AllowedIPs = 10.192.122.3/32, 10.192.124.1/24\nEndpoint = [fd00::1]:51820\n\n` +
      `[Peer]\nPublicKey = ${p2.pub}\nAllowedIPs = 10.10.10.0/24, ::/0\n` +
      `Endpoint = 192.0.2.7:4500\n`,
  );
  const conf2 = await conf(
    "c2",
    `[Peer]\nPublicKey = ${p3.pub}\nAllowedIPs = 10.10.10.0/25\n\n` +
      `[Peer]\nPublicKey = ${p1.pub}\nAllowedIPs = 172.16.0.0/12\n`,
  );
  const conf3 = await conf(
    "c3",
    `[Interface]\nPrivateKey = ${me.priv}\nListenPort = 51831\n\n` +
      `[Peer]\nPublicKey = ${p3.pub}\nAllowedIPs = 10.20.0.0/16\nEndpoint = 192.0.2.8:1\n`,
  );
  const confEmpty = await conf("c4", `[Interface]\nListenPort = 51832\n`);
  const confBad = await conf("c5", `[Interface]\nListenPort = 51833\nBogus = 1\n`);
  const fields = [
    "public-key",
    "private-key",
    "listen-port",
    "fwmark",
    "peers",
    "preshared-keys",
    "endpoints",
    "allowed-ips",
    "latest-handshakes",
    "persistent-keepalive",
    "transfer",
    "dump",
  ];
  const showAll =
    () => [["show", "%I"], ["showconf", "%I"], ...fields.map((f) => ["show", "%I", f])];
  const steps = [
    ["set", "%I", "listen-port", "51820"],
    ["set", "%I2", "listen-port", "51821"],
    ...showAll(),
    ["set", "%I", "private-key", me.file],
    ...showAll(),
    ["set", "%I", "fwmark", "0x1234"],
    ["show", "%I", "fwmark"],
    ["set", "%I", "fwmark", "1234"],
    ["show", "%I", "fwmark"],
    ["set", "%I", "fwmark", "0xffffffff"],
    ["show", "%I", "fwmark"],
    ["set", "%I", "fwmark", "0x100000000"],
    ["set", "%I", "fwmark", "bogus"],
    ["set", "%I", "fwmark", "off"],
    ["show", "%I", "fwmark"],
    ["set", "%I", "listen-port", "70000"],
    ["set", "%I", "listen-port", "abc"],
    [
      "set",
      "%I",
      "peer",
      p1.pub,
      "endpoint",
      "192.0.2.1:51820",
      "allowed-ips",
      "10.0.0.0/24,fd00::/64",
      "preshared-key",
      psk,
    ],
    ...showAll(),
    ["set", "%I", "peer", p1.pub, "persistent-keepalive", "25"],
    [
      "set",
      "%I",
      "peer",
      p2.pub,
      "allowed-ips",
      "10.0.0.5/24,10.0.1.0/24",
      "endpoint",
      "[fd00::5]:1234",
    ],
    ...showAll(),
    ["set", "%I", "peer", p2.pub, "allowed-ips", ""],
    ["show", "%I", "allowed-ips"],
    ["set", "%I", "peer", p2.pub, "allowed-ips", "0.0.0.0/0,::/0", "persistent-keepalive", "off"],
    ["set", "%I", "peer", p1.pub, "endpoint", "[::ffff:192.0.2.1]:7"],
    ["show", "%I", "endpoints"],
    ["set", "%I", "peer", p1.pub, "endpoint", "192.0.2.1"],
    ["set", "%I", "peer", p1.pub, "endpoint", "[fd00::1"],
    ["set", "%I", "peer", p1.pub, "allowed-ips", "10.0.0.0/33"],
    ["set", "%I", "peer", p1.pub, "persistent-keepalive", "65536"],
    ["set", "%I", "peer", "notakey"],
    ["set", "%I", "peer", me.pub, "allowed-ips", "10.7.0.0/16"],
    ["set", "%I", "peer", p1.pub, "preshared-key", "/dev/null"],
    ...showAll(),
    ["set", "%I", "peer", p3.pub, "remove"],
    ["set", "%I", "peer", p2.pub, "remove"],
    ["show", "%I", "peers"],
    [
      "set",
      "%I",
      "peer",
      p1.pub,
      "allowed-ips",
      "10.1.0.0/16",
      "peer",
      p2.pub,
      "allowed-ips",
      "10.2.0.0/16",
    ],
    ["set", "%I", "private-key", p2.file],
    ...showAll(),
    ["set", "%I", "private-key", "/dev/null"],
    ...showAll(),
    ["setconf", "%I", conf1],
    ...showAll(),
    ["addconf", "%I", conf2],
    ...showAll(),
    ["syncconf", "%I", conf3],
    ...showAll(),
    ["syncconf", "%I", confEmpty],
    ...showAll(),
    ["setconf", "%I", confBad],
    ["setconf", "%I", `${dir}/missing.conf`],
    ["set", "%I2", "listen-port", "51832"],
    ["show", "%I2", "listen-port"],
    ["set", "%I2", "listen-port", "51821", "fwmark", "5"],
    ["show", "%I2"],
    ["set", "%I", "listen-port", "51832"],
    ["show", "%I", "listen-port"],
    ["show", "%I", "bogus-field"],
  ];
  return steps;
}

Deno.test({
  name: "UAPI: stock wg against wireguard-go and our server gives identical results",
  ignore,
  async fn() {
    const id = digits(6);
    const go: Names = { i1: `gtug${id}`, i2: `gtug${id}b` };
    const ours: Names = { i1: `gtuo${id}`, i2: `gtuo${id}b` };
    const dir = await Deno.makeTempDir({ prefix: "gtu-uapi-cmp-" });
    const side = new OurSide();
    try {
      await side.add(ours.i1);
      await side.add(ours.i2);
      const steps = await cliSteps(dir);
      const mismatches: string[] = [];
      let withOutput = 0, failing = 0;
      await withWireguardGo(go, async () => {
        for (const step of steps) {
          const g = await wg(step, go);
          const o = await wg(step, ours);
          if (g.stdout.trim() !== "") withOutput++;
          if (g.code !== 0) failing++;
          try {
            assert.deepEqual(sortPeers(o), sortPeers(g));
          } catch {
            mismatches.push(
              `wg ${step.join(" ")}\n--- wireguard-go:\n${JSON.stringify(g, null, 1)}\n` +
                `--- ours:\n${JSON.stringify(o, null, 1)}`,
            );
          }
        }
      });
      assert.equal(mismatches.length, 0, mismatches.join("\n\n"));
      // Guard against a vacuous comparison (e.g. both sides "No such device").
      assert.ok(withOutput > steps.length / 2, `only ${withOutput} steps printed anything`);
      assert.ok(failing >= 10 && failing < steps.length / 3, `${failing} steps failed`);
    } finally {
      side.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "UAPI: raw exchanges against wireguard-go and our server give identical replies",
  ignore,
  async fn() {
    const id = digits(6);
    const go: Names = { i1: `gtug${id}`, i2: `gtug${id}b` };
    const ours: Names = { i1: `gtuo${id}`, i2: `gtuo${id}b` };
    const side = new OurSide();
    const recorded: RecordedCase[] = [];
    const mismatches: string[] = [];
    try {
      await side.add(ours.i1);
      await withWireguardGo(go, async () => {
        for (const c of RAW_CASES) {
          const g = await runRaw(`${SOCK_DIR}/${go.i1}.sock`, c);
          const o = await runRaw(`${SOCK_DIR}/${ours.i1}.sock`, c);
          recorded.push({ ...c, ...g });
          if (c.differs) {
            // Keep both in sync so the following cases compare equal state.
            continue;
          }
          try {
            assert.deepEqual(o, g);
          } catch {
            mismatches.push(
              `${c.name}: ${JSON.stringify(c.send.slice(0, 300))}\n--- wireguard-go:\n` +
                `${JSON.stringify(g, null, 1)}\n--- ours:\n${JSON.stringify(o, null, 1)}`,
            );
          }
        }
      });
    } finally {
      side.close();
    }
    if (Deno.env.get("GTU_UPDATE_GOLDEN") === "1") {
      await Deno.writeTextFile(GOLDEN_URL, JSON.stringify(recorded, null, 2) + "\n");
    }
    assert.equal(mismatches.length, 0, mismatches.join("\n\n"));
  },
});
