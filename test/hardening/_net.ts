// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Private helpers of the hardening suite's root tests and of
 * `flood_tool.ts --measure`, on top of the shared toolkit (namespaces, ping:
 * test/_util/netns.ts; daemons run in the foreground, so that their PID, CPU
 * time, RSS and log are ours to read, keys, `wg`: test/_util/wg.ts): /proc
 * readings, an iperf3 wrapper, and the three-namespace topology used by the
 * floods:
 *
 * ```
 *  L (legit peer)               V (victim)                         F (flooder)
 *  lvictim 10.91.1.2 ──── vlegit 10.91.1.1
 *                               vflood 10.91.2.1, fd91:2::1 ──── fvictim 10.91.2.2, fd91:2::2
 *  gth<id>l 10.92.0.2 ═tunnel═ gth<id>v 10.92.0.1               AnyIP (local) routes:
 *                               routes to 10.77.0.0/16 and        10.77.0.0/16, fd77:1::/64
 *                               fd77:1::/64 via F                 (the flood sources)
 * ```
 *
 * Every namespace is `gthard-<6 hex>` (test/_util/netns.ts), every
 * interface name carries 6 random digits (`gth<digits><x>`), since the UAPI
 * socket directory is shared by all namespaces. Cleanup (processes by PID,
 * namespaces, sockets, temp files) happens in `withNamespaces`' finally.
 */
import { type Background, run, sleep, waitFor } from "../_util/proc.ts";
import { type NamespaceContext, type Netns, pingUntil, vethPair } from "../_util/netns.ts";
import { unmet } from "../_util/needs.ts";
import {
  type Daemon,
  digits,
  genKeyPair,
  type KeyPair,
  REPO_ROOT,
  startDaemon,
  wg,
} from "../_util/wg.ts";

export { run, sleep, waitFor };

/**
 * Why the root tests of `file` cannot run ("" when they can; printed once): root, /dev/net/tun
 * and `tools`, by test/_util/needs.ts (under CI=true a missing piece fails instead).
 */
export function skipReason(file: string, tools: readonly string[]): string {
  return unmet(`test/hardening/${file}`, { root: true, tun: true, tools });
}

/** Prints a line from a test (tests may print; src may not). */
export function log(msg: string): void {
  // deno-lint-ignore no-console
  console.log(`    [hardening] ${msg}`);
}

/** CPU time (ticks of 1/100 s) and memory of a process, from /proc. */
export interface ProcStats {
  /** utime + stime, in seconds. */
  cpuSeconds: number;
  /** Resident set, bytes. */
  rss: number;
  /** Peak resident set, bytes. */
  hwm: number;
  threads: number;
  /**
   * The main (JavaScript) thread's time on a CPU, and runnable but waiting
   * for one (/proc/PID/schedstat), in seconds: a large wait means the
   * machine, not the daemon, is the bottleneck.
   */
  mainRun: number;
  mainWait: number;
}

/** procStats() reads /proc/PID/{stat,status}; null when the process is gone. */
export function procStats(pid: number): ProcStats | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(f[11]) + Number(f[12]);
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    const threads = Number(/^Threads:\s+(\d+)/m.exec(status)?.[1]);
    const sched = Deno.readTextFileSync(`/proc/${pid}/schedstat`).split(" ").map(Number);
    return {
      cpuSeconds: ticks / 100,
      rss: kb("VmRSS") * 1024,
      hwm: kb("VmHWM") * 1024,
      threads,
      mainRun: sched[0] / 1e9,
      mainWait: sched[1] / 1e9,
    };
  } catch {
    return null;
  }
}

/**
 * iperfTcp() runs an iperf3 TCP stream of `seconds` from `client` to a server
 * in `server` bound to `address`, and returns the receiver's bits per
 * second (0 when iperf3 failed: a test decides what that means).
 */
export async function iperfTcp(
  ctx: NamespaceContext,
  server: Netns,
  client: Netns,
  address: string,
  port: number,
  seconds: number,
): Promise<{ bps: number; error: string }> {
  const srv = ctx.spawn(server, "iperf3", ["-s", "-1", "-B", address, "-p", String(port)]);
  try {
    if (!(await server.listening("tcp", port))) {
      return { bps: 0, error: "iperf3 server did not start" };
    }
    const r = await client.execWith(
      { timeoutMs: (seconds + 20) * 1000 },
      "iperf3",
      "-J",
      "-c",
      address,
      "-p",
      String(port),
      "-t",
      String(seconds),
      "--connect-timeout",
      "5000",
    );
    try {
      const j = JSON.parse(r.stdout);
      if (j.error) return { bps: 0, error: j.error };
      return { bps: j.end?.sum_received?.bits_per_second ?? 0, error: "" };
    } catch {
      return { bps: 0, error: `no JSON (exit ${r.code}${r.timedOut ? ", timed out" : ""})` };
    }
  } finally {
    await srv.kill();
  }
}

/** UDP counters of a namespace (/proc/net/snmp `Udp:` and `Udp6` from /proc/net/snmp6). */
export interface UdpCounters {
  inDatagrams: number;
  rcvbufErrors: number;
  inErrors: number;
  outDatagrams: number;
}

/**
 * udpCounters() reads the UDP MIB (IPv4 + IPv6 summed) of the network
 * namespace of process `pid`, through /proc/PID/net: no process to spawn, so
 * two readings a second apart really are a second apart.
 */
export function udpCounters(pid: number): UdpCounters {
  const text = Deno.readTextFileSync(`/proc/${pid}/net/snmp`) +
    Deno.readTextFileSync(`/proc/${pid}/net/snmp6`);
  const lines = text.split("\n");
  const out: UdpCounters = { inDatagrams: 0, rcvbufErrors: 0, inErrors: 0, outDatagrams: 0 };
  const heads = lines.filter((l) => l.startsWith("Udp: "));
  if (heads.length >= 2) {
    const k = heads[0].split(/\s+/), v = heads[1].split(/\s+/);
    const get = (name: string) => Number(v[k.indexOf(name)] ?? 0);
    out.inDatagrams += get("InDatagrams");
    out.rcvbufErrors += get("RcvbufErrors");
    out.inErrors += get("InErrors");
    out.outDatagrams += get("OutDatagrams");
  }
  for (const l of lines) {
    const [name, value] = l.split(/\s+/);
    const n = Number(value);
    if (name === "Udp6InDatagrams") out.inDatagrams += n;
    else if (name === "Udp6RcvbufErrors") out.rcvbufErrors += n;
    else if (name === "Udp6InErrors") out.inErrors += n;
    else if (name === "Udp6OutDatagrams") out.outDatagrams += n;
  }
  return out;
}

/** The flood topology (see the module doc). */
export interface FloodNet {
  v: Netns;
  l: Netns;
  f: Netns;
  id: string;
  victim: Daemon;
  legit: Daemon;
  victimKeys: KeyPair;
  legitKeys: KeyPair;
  dir: string;
  /** Victim's listen port. */
  port: number;
}

/** Tunnel addresses. */
export const VICTIM_TUNNEL = "10.92.0.1";
export const LEGIT_TUNNEL = "10.92.0.2";
/** The victim's outer address on the flooder's side. */
export const VICTIM_FLOOD_V4 = "10.91.2.1";
export const VICTIM_FLOOD_V6 = "fd91:2::1";
/** Flood source ranges (AnyIP in F). */
export const FLOOD_SRC_V4 = "10.77.0.1";
export const FLOOD_SRC_V6 = "fd77:1::1";

/**
 * floodNet() builds the topology in the three namespaces of `ctx` (V, L, F
 * in that order), starts both daemons, configures the tunnel and checks one
 * ping over it.
 */
export async function floodNet(
  ctx: NamespaceContext,
  daemonEnv: Record<string, string> = {},
  victimWrapper: readonly string[] = [],
): Promise<FloodNet> {
  const [v, l, f] = ctx.namespaces;
  const id = digits();
  const dir = await Deno.makeTempDir({ prefix: "gthard-" });
  ctx.defer(() => Deno.remove(dir, { recursive: true }));
  await vethPair(v, l, {
    nameA: "vlegit",
    nameB: "lvictim",
    addrA: "10.91.1.1/24",
    addrB: "10.91.1.2/24",
  });
  await vethPair(v, f, {
    nameA: "vflood",
    nameB: "fvictim",
    addrA: ["10.91.2.1/24", "fd91:2::1/64"],
    addrB: ["10.91.2.2/24", "fd91:2::2/64"],
  });
  await f.ip("route", "add", "local", "10.77.0.0/16", "dev", "lo");
  await f.ip("-6", "route", "add", "local", "fd77:1::/64", "dev", "lo");
  await v.ip("route", "add", "10.77.0.0/16", "via", "10.91.2.2");
  await v.ip("-6", "route", "add", "fd77:1::/64", "via", "fd91:2::2");

  const victim = await startDaemon(ctx, v, `gth${id}v`, { env: daemonEnv, wrapper: victimWrapper });
  const legit = await startDaemon(ctx, l, `gth${id}l`, { env: daemonEnv });
  const victimKeys = await genKeyPair(dir), legitKeys = await genKeyPair(dir);
  const port = 51820;
  await configureVictim({ victim, victimKeys, legitKeys, port });
  await configureLegit({ legit, victimKeys, legitKeys, port });
  const net: FloodNet = { v, l, f, id, victim, legit, victimKeys, legitKeys, dir, port };
  const t = await pingUntil(l, VICTIM_TUNNEL, { timeoutMs: 10_000 });
  if (t === null) {
    throw new Error(`no ping over the tunnel:\n${victim.output()}\n${legit.output()}`);
  }
  return net;
}

/** Gives the victim its key, port, address and the legit peer; brings it up. */
export async function configureVictim(
  p: { victim: Daemon; victimKeys: KeyPair; legitKeys: KeyPair; port: number },
): Promise<void> {
  const ifname = p.victim.ifname;
  // deno-fmt-ignore
  await wg(["set", ifname, "private-key", p.victimKeys.privateFile, "listen-port", String(p.port),
    "peer", p.legitKeys.publicKey, "allowed-ips", `${LEGIT_TUNNEL}/32`]);
  await addAddress(p.victim, `${VICTIM_TUNNEL}/24`);
}

/** Gives the legit peer its key, the victim as peer with an endpoint; brings it up. */
export async function configureLegit(
  p: { legit: Daemon; victimKeys: KeyPair; legitKeys: KeyPair; port: number },
): Promise<void> {
  const ifname = p.legit.ifname;
  // deno-fmt-ignore
  await wg(["set", ifname, "private-key", p.legitKeys.privateFile,
    "peer", p.victimKeys.publicKey, "allowed-ips", `${VICTIM_TUNNEL}/32`,
    "endpoint", `10.91.1.1:${p.port}`]);
  await addAddress(p.legit, `${LEGIT_TUNNEL}/24`);
}

async function addAddress(d: Daemon, cidr: string): Promise<void> {
  await d.ns.ip("addr", "replace", cidr, "dev", d.ifname);
  await d.ns.ip("link", "set", d.ifname, "up");
}

/** The command that runs the flood tool inside `ns` (`deno run … flood_tool.ts flood ARGS…`). */
export function floodToolArgv(args: readonly string[]): string[] {
  return [
    Deno.execPath(),
    "run",
    "-A",
    "--config",
    `${REPO_ROOT}/deno.json`,
    `${REPO_ROOT}/test/hardening/flood_tool.ts`,
    "flood",
    "--json",
    ...args,
  ];
}

/** Starts the flood tool in `ns` (killed at cleanup), optionally behind a wrapper command. */
export function startFlood(
  ctx: NamespaceContext,
  ns: Netns,
  args: readonly string[],
  wrapper: readonly string[] = [],
): Background {
  const argv = [...wrapper, ...floodToolArgv(args)];
  return ctx.spawn(ns, argv[0], argv.slice(1), { output: "piped" });
}

/** Waits for a flood started with {@link startFlood} to end and parses its JSON line. */
export async function floodResult(
  proc: Background,
  timeoutMs: number,
): Promise<import("./flood_tool.ts").FloodResult> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const done = await Promise.race([
    proc.status.then(() => true),
    new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (!done) await proc.kill("SIGTERM", 3000);
  await proc.kill();
  const out = proc.output();
  const line = out.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`flood tool gave no result:\n${out.stdout}\n${out.stderr}`);
  }
}

/** Lines of a daemon log matching `re`. */
export function countLines(text: string, re: RegExp): number {
  let n = 0;
  for (const line of text.split("\n")) if (re.test(line)) n++;
  return n;
}

/** Formats bytes as MiB. */
export function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/** Formats bits per second as Mbit/s. */
export function mbps(bps: number): string {
  return `${(bps / 1e6).toFixed(0)} Mbit/s`;
}

/** Waits `ms`, then returns; a named alias for readability in scenarios. */
export function pause(ms: number): Promise<void> {
  return sleep(ms);
}
