// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `gotatun demo`: shows the daemon working on this machine, touching nothing
 * of the host's network. It makes two network namespaces joined by a veth
 * pair, starts a gotatun daemon in each, configures both over UAPI with fresh
 * keys, pings across the tunnel, moves a few megabytes over TCP through it,
 * prints both ends' status and a one-line verdict, and removes everything it
 * made (also on Ctrl-C and on failure). Needs root (namespaces, TUN).
 */
import { generatePrivateKey, publicKey } from "../src/crypto.ts";
import { systemRng } from "../src/clock.ts";
import { DEFAULT_SOCKET_DIR } from "../uapi/socket_dir.ts";
import {
  newDevice,
  newPeer,
  type WgDevice,
  WGDEVICE_HAS_LISTEN_PORT,
  WGDEVICE_HAS_PRIVATE_KEY,
  WGPEER_HAS_PUBLIC_KEY,
  WGPEER_REPLACE_ALLOWEDIPS,
} from "./wg/containers.ts";
import { strerror } from "./wg/cstr.ts";
import { inetPton4 } from "./wg/inet.ts";
import { userspaceSetDevice } from "./wg/ipc.ts";
import { defaultResolver, numericEndpoint } from "./wg/resolve.ts";
import { runCommand } from "./subprocess.ts";
import { wgMain } from "./wg/main.ts";
import { selfCommand, writeStderr, writeStdout } from "./daemon.ts";

const encoder = new TextEncoder();

async function sh(
  cmd: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number; out: string }> {
  const r = await runCommand(cmd, { args, timeoutMs });
  return { code: r.status.code, out: r.stdout + r.stderr };
}

async function must(cmd: string, args: string[], timeoutMs?: number): Promise<string> {
  const r = await sh(cmd, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.out.trim()}`);
  return r.out;
}

function step(text: string): void {
  writeStdout(`• ${text}\n`);
}

/** Hidden helper: `gotatun demo --sink ADDR PORT` receives one TCP stream and prints its size. */
async function sink(addr: string, port: number): Promise<number> {
  const listener = Deno.listen({ hostname: addr, port, transport: "tcp" });
  writeStdout("listening\n");
  const conn = await listener.accept();
  const buf = new Uint8Array(1 << 16);
  let total = 0;
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    total += n;
  }
  await conn.write(encoder.encode(`${total}\n`));
  conn.close();
  listener.close();
  return 0;
}

/** Hidden helper: `gotatun demo --source ADDR PORT BYTES` sends BYTES and prints "bytes seconds". */
async function source(addr: string, port: number, bytes: number): Promise<number> {
  const conn = await Deno.connect({ hostname: addr, port, transport: "tcp" });
  const chunk = new Uint8Array(1 << 16).fill(0x5a);
  const start = performance.now();
  let sent = 0;
  while (sent < bytes) {
    const n = await conn.write(chunk.subarray(0, Math.min(chunk.length, bytes - sent)));
    sent += n;
  }
  await conn.closeWrite();
  const buf = new Uint8Array(64);
  const n = await conn.read(buf);
  const secs = (performance.now() - start) / 1000;
  conn.close();
  const received = Number(new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim());
  writeStdout(`${received} ${secs.toFixed(3)}\n`);
  return received === bytes ? 0 : 1;
}

/**
 * One end's configuration: its key and port 51820, and the other end as its
 * only peer, at `endpoint` (port 51820) with `allowedIp`/32.
 */
function endConfig(
  name: string,
  privateKey: Uint8Array,
  peerKey: Uint8Array,
  endpoint: string,
  allowedIp: string,
): WgDevice {
  const dev = newDevice();
  dev.name = name;
  dev.flags = WGDEVICE_HAS_PRIVATE_KEY | WGDEVICE_HAS_LISTEN_PORT;
  dev.privateKey = privateKey;
  dev.listenPort = 51820;
  const peer = newPeer();
  peer.flags = WGPEER_HAS_PUBLIC_KEY | WGPEER_REPLACE_ALLOWEDIPS;
  peer.publicKey = peerKey;
  const ep = numericEndpoint(endpoint, "51820");
  peer.endpoint = ep?.ok ? ep.addr : null;
  peer.allowedIps.push({ family: 4, addr: inetPton4(allowedIp)!, cidr: 32, remove: false });
  dev.peers.push(peer);
  return dev;
}

/** Configures one end over UAPI; throws when the daemon refuses. */
async function configure(dev: WgDevice): Promise<void> {
  const ctx = { socketDir: DEFAULT_SOCKET_DIR, resolver: defaultResolver(), timeoutMs: 10_000 };
  const ret = await userspaceSetDevice(ctx, dev);
  if (ret !== 0) throw new Error(`UAPI set on ${dev.name} failed: ${strerror(Math.abs(ret))}`);
}

/** Runs `gotatun demo [--keep]`; returns the exit code. */
export async function runDemo(args: readonly string[]): Promise<number> {
  if (args[0] === "--sink") return await sink(args[1], Number(args[2]));
  if (args[0] === "--source") return await source(args[1], Number(args[2]), Number(args[3]));
  if (Deno.uid() !== 0) {
    writeStderr("gotatun demo: needs root (it creates network namespaces and TUN devices)\n");
    return 1;
  }
  const tag = crypto.getRandomValues(new Uint8Array(2)).toHex();
  const nsA = `gotatun-demo-${tag}-a`, nsB = `gotatun-demo-${tag}-b`;
  const ifA = `gtdemo${tag}a`, ifB = `gtdemo${tag}b`;
  const vethA = `gtveth${tag}a`, vethB = `gtveth${tag}b`;
  const self = selfCommand();
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    step("cleaning up");
    for (const [ns, dev] of [[nsA, ifA], [nsB, ifB]]) {
      await sh("ip", ["-n", ns, "link", "del", dev], 5000);
    }
    for (const ns of [nsA, nsB]) {
      const pids = (await sh("ip", ["netns", "pids", ns], 5000)).out.split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          Deno.kill(Number(pid), "SIGTERM");
        } catch {
          // gone
        }
      }
      await sh("ip", ["netns", "del", ns], 5000);
    }
    for (const dev of [ifA, ifB]) {
      await Deno.remove(`${DEFAULT_SOCKET_DIR}/${dev}.sock`).catch(() => {});
    }
  };
  const onSignal = () => {
    cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    step(`creating network namespaces ${nsA} and ${nsB}, joined by a veth pair`);
    await must("ip", ["netns", "add", nsA]);
    await must("ip", ["netns", "add", nsB]);
    await must("ip", [
      "link",
      "add",
      vethA,
      "netns",
      nsA,
      "type",
      "veth",
      "peer",
      "name",
      vethB,
      "netns",
      nsB,
    ]);
    for (
      const [ns, dev, addr] of [[nsA, vethA, "192.168.241.1/24"], [nsB, vethB, "192.168.241.2/24"]]
    ) {
      await must("ip", ["-n", ns, "link", "set", "lo", "up"]);
      await must("ip", ["-n", ns, "addr", "add", addr, "dev", dev]);
      await must("ip", ["-n", ns, "link", "set", dev, "up"]);
    }
    step(`starting gotatun daemons ${ifA} (in ${nsA}) and ${ifB} (in ${nsB})`);
    for (const [ns, dev] of [[nsA, ifA], [nsB, ifB]]) {
      await must("ip", ["netns", "exec", ns, self.cmd, ...self.args, dev], 30_000);
    }
    step("configuring both ends over UAPI with fresh keys");
    const kA = generatePrivateKey(systemRng), kB = generatePrivateKey(systemRng);
    await configure(endConfig(ifA, kA, publicKey(kB), "192.168.241.2", "10.66.0.2"));
    await configure(endConfig(ifB, kB, publicKey(kA), "192.168.241.1", "10.66.0.1"));
    for (const [ns, dev, addr] of [[nsA, ifA, "10.66.0.1/24"], [nsB, ifB, "10.66.0.2/24"]]) {
      await must("ip", ["-n", ns, "addr", "add", addr, "dev", dev]);
      await must("ip", ["-n", ns, "link", "set", dev, "up"]);
    }
    step("pinging 10.66.0.2 from 10.66.0.1 through the tunnel");
    const ping = await sh("ip", [
      "netns",
      "exec",
      nsA,
      "ping",
      "-c",
      "3",
      "-i",
      "0.3",
      "-W",
      "2",
      "10.66.0.2",
    ], 20_000);
    const received = Number(ping.out.match(/(\d+) received/)?.[1] ?? 0);
    writeStdout(
      ping.out.split("\n").filter((l) => /bytes from|packets/.test(l)).map((l) => `    ${l}\n`)
        .join(""),
    );
    const bytes = 8 * 1024 * 1024;
    step(`moving ${bytes / 1048576} MiB over TCP through the tunnel`);
    const sinkProc = new Deno.Command("ip", {
      args: ["netns", "exec", nsB, self.cmd, ...self.args, "demo", "--sink", "10.66.0.2", "5201"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = sinkProc.stdout.getReader();
    await reader.read(); // "listening"
    reader.releaseLock();
    const xfer = await sh("ip", [
      "netns",
      "exec",
      nsA,
      self.cmd,
      ...self.args,
      "demo",
      "--source",
      "10.66.0.2",
      "5201",
      String(bytes),
    ], 60_000);
    try {
      sinkProc.kill("SIGKILL");
    } catch {
      // done already
    }
    await sinkProc.stdout.cancel().catch(() => {});
    await sinkProc.status;
    const [got, secs] = xfer.out.trim().split(" ").map(Number);
    const mbit = got && secs ? (got * 8) / secs / 1e6 : 0;
    writeStdout(`    ${got || 0} bytes in ${secs || 0} s (${mbit.toFixed(0)} Mbit/s)\n\n`);
    // Both ends as `wg show` prints them (our wg(8), cli/wg).
    for (const dev of [ifA, ifB]) {
      await wgMain(["show", dev], {});
      writeStdout("\n");
    }
    const ok = received === 3 && got === bytes;
    writeStdout(
      ok
        ? `gotatun demo: OK: handshake done, ${received}/3 pings answered, ${
          (bytes / 1048576).toFixed(0)
        } MiB moved at ${mbit.toFixed(0)} Mbit/s\n`
        : `gotatun demo: FAILED: ${received}/3 pings answered, ${got || 0}/${bytes} bytes moved\n`,
    );
    return ok ? 0 : 1;
  } catch (e) {
    writeStdout(`gotatun demo: FAILED: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await cleanup();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}
