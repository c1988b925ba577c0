// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Flood scenarios against a gotatun victim while a legitimate peer works
 * (shared by `flood_test.ts`, short and with assertions, and by
 * `flood_tool.ts --measure`, longer, printing a table). One scenario:
 *
 * 1. read the victim's CPU time, RSS, UDP MIB and flood-side link counters;
 * 2. start the flood tool in F (it runs until told to stop);
 * 3. after 1 s of flood, make the legit peer start a fresh handshake (its
 *    peer entry is removed and re-added, so it has no session and no cookie)
 *    and time the first ping that gets through;
 * 4. run an iperf3 TCP stream L → V and a 5/s ping for `seconds`;
 * 5. stop the flood, read the counters again.
 *
 * What the victim did with the flood is read from outside: cookie replies as
 * the flooder received them, DH work as the victim's verbose log lines
 * "Received invalid initiation message" (one per initiation that got past
 * the cookie and the rate limiter), socket drops from the namespace's UDP
 * MIB (RcvbufErrors). The device's own drop counters (`Device.stats`) live
 * in memory only: no UAPI key or log line exposes them.
 */
import { type NamespaceContext, ping, pingUntil, withNamespaces } from "../_util/netns.ts";
import { wg } from "../_util/wg.ts";
import {
  countLines,
  FLOOD_SRC_V4,
  FLOOD_SRC_V6,
  type FloodNet,
  floodNet,
  floodResult,
  iperfTcp,
  LEGIT_TUNNEL,
  log,
  mbps,
  mib,
  procStats,
  sleep,
  startFlood,
  udpCounters,
  VICTIM_FLOOD_V4,
  VICTIM_FLOOD_V6,
  VICTIM_TUNNEL,
  waitFor,
} from "./_net.ts";
import { missing } from "../_util/needs.ts";
import type { FloodResult } from "./flood_tool.ts";

/** One flood to run. */
export interface Scenario {
  name: string;
  kind: "init" | "garbage";
  cookies?: boolean;
  /** Outer family of the flood. */
  family: 4 | 6;
  /** Source addresses (1: the flooder's own address). */
  sources: number;
  /** Datagrams per second, 0 = as fast as possible. */
  rate?: number;
}

/** What one scenario measured. */
export interface ScenarioResult {
  scenario: Scenario;
  flood: FloodResult;
  /** Datagrams that reached the victim's flood-side link, per second. */
  reachedPps: number;
  /** Datagrams the victim's sockets dropped (full receive buffer). */
  socketDrops: number;
  /**
   * Over one second of flood alone: datagrams delivered to the victim's
   * sockets (all of which it reads), and dropped because they were full.
   */
  processedPps: number;
  droppedPps: number;
  /** Datagrams delivered to the victim's sockets (UDP MIB InDatagrams, legit traffic included). */
  delivered: number;
  /**
   * Victim CPU time per delivered datagram, µs, over one second of flood with
   * no legit traffic (1/100 s tick resolution: coarse at low rates).
   */
  usPerDatagram: number;
  /** Initiations the victim spent a DH on (its verbose log), in total and per second. */
  dh: number;
  dhPerSecond: number;
  /** Victim CPU, in cores (1.0 = one core busy), over the scenario. */
  cpu: number;
  /**
   * Over the flood-only second: the share of time the victim's main thread
   * ran, and was runnable but waited for a CPU (taken by other processes).
   */
  mainRun: number;
  mainWait: number;
  rssBefore: number;
  rssAfter: number;
  hwm: number;
  threads: number;
  /** Time from "legit peer starts over" to its first ping reply; null = never. */
  handshakeMs: number | null;
  /** Legit TCP throughput during the flood, bits/s, and iperf3's error if any. */
  bps: number;
  iperfError: string;
  pingSent: number;
  pingReceived: number;
}

/** The scenarios of the measurement table; the test runs a subset. */
export const SCENARIOS: Scenario[] = [
  { name: "initiations, 1 source (IPv4)", kind: "init", family: 4, sources: 1 },
  {
    name: "initiations, 1 source, 20k pps",
    kind: "init",
    family: 4,
    sources: 1,
    rate: 20_000,
  },
  { name: "initiations, 256 sources (IPv4)", kind: "init", family: 4, sources: 256 },
  { name: "initiations, 1024 sources in one /64", kind: "init", family: 6, sources: 1024 },
  {
    name: "initiations + cookies, 1 source",
    kind: "init",
    cookies: true,
    family: 4,
    sources: 1,
  },
  {
    name: "initiations + cookies, 64 sources (IPv4)",
    kind: "init",
    cookies: true,
    family: 4,
    sources: 64,
  },
  {
    name: "initiations + cookies, 256 sources in one /64",
    kind: "init",
    cookies: true,
    family: 6,
    sources: 256,
  },
  { name: "garbage, 1 source (IPv4)", kind: "garbage", family: 4, sources: 1 },
  { name: "garbage, 256 sources (IPv4)", kind: "garbage", family: 4, sources: 256 },
];

const DH_LINE = /Received invalid initiation message/;

/** Makes the legit peer forget its session (and any cookie) and start over. */
export async function restartLegitHandshake(net: FloodNet): Promise<void> {
  const l = net.legit.ifname, v = net.victimKeys.publicKey;
  await wg(["set", l, "peer", v, "remove"]);
  // deno-fmt-ignore
  await wg(["set", l, "peer", v, "allowed-ips", `${VICTIM_TUNNEL}/32`,
    "endpoint", `10.91.1.1:${net.port}`]);
}

/** Runs one scenario (see the module doc); `seconds` is the iperf3/ping window. */
export async function runScenario(
  ctx: NamespaceContext,
  net: FloodNet,
  sc: Scenario,
  seconds: number,
  iperfPort: number,
  floodWrapper: readonly string[] = [],
): Promise<ScenarioResult> {
  const victim = net.victim;
  const target = sc.family === 4
    ? `${VICTIM_FLOOD_V4}:${net.port}`
    : `[${VICTIM_FLOOD_V6}]:${net.port}`;
  const args = ["--target", target, "--kind", sc.kind, "--seconds", "600"];
  args.push("--victim", net.victimKeys.publicKey);
  if (sc.cookies) args.push("--cookies");
  if (sc.sources > 1 || sc.family === 6) {
    args.push(
      "--src",
      sc.family === 4 ? FLOOD_SRC_V4 : FLOOD_SRC_V6,
      "--sources",
      String(sc.sources),
    );
  }
  if (sc.rate) args.push("--rate", String(sc.rate));
  if (sc.kind === "garbage") args.push("--pool", "1024");

  const before = procStats(victim.pid);
  if (!before) throw new Error(`victim died before "${sc.name}":\n${victim.output()}`);
  const mib0 = udpCounters(victim.pid);
  const link0 = await net.v.linkStats("vflood");
  const dh0 = countLines(victim.output(), DH_LINE);
  const t0 = performance.now();
  const flood = startFlood(ctx, net.f, args, floodWrapper);
  let handshakeMs: number | null;
  let perf: { bps: number; error: string };
  let pings: { sent: number; received: number };
  let floodOnly = { cpu: 0, datagrams: 0, drops: 0, mainRun: 0, mainWait: 0 };
  try {
    // The flood tool needs a moment to start (Deno, key pool) before it sends.
    const started = await waitFor(
      async () => {
        return (await net.v.linkStats("vflood")).rxPackets - link0.rxPackets > 1000;
      },
      30_000,
      100,
    );
    if (!started) throw new Error(`the flood did not start: ${JSON.stringify(flood.output())}`);
    // One second of flood alone: the victim's cost per flood datagram.
    const c0 = procStats(victim.pid), u0 = udpCounters(victim.pid), w0 = performance.now();
    await sleep(1000);
    const c1 = procStats(victim.pid), u1 = udpCounters(victim.pid);
    const window = (performance.now() - w0) / 1000;
    if (c0 && c1 && u1.inDatagrams > u0.inDatagrams) {
      floodOnly = {
        cpu: (c1.cpuSeconds - c0.cpuSeconds) / window,
        datagrams: Math.round((u1.inDatagrams - u0.inDatagrams) / window),
        drops: Math.round((u1.rcvbufErrors - u0.rcvbufErrors) / window),
        mainRun: (c1.mainRun - c0.mainRun) / window,
        mainWait: (c1.mainWait - c0.mainWait) / window,
      };
    }
    await restartLegitHandshake(net);
    handshakeMs = await pingUntil(net.l, VICTIM_TUNNEL, { timeoutMs: 30_000 });
    const [p, pg] = await Promise.all([
      iperfTcp(ctx, net.v, net.l, VICTIM_TUNNEL, iperfPort, seconds),
      ping(net.l, VICTIM_TUNNEL, seconds * 5, { intervalS: 0.2, waitS: 1 }),
    ]);
    perf = p;
    pings = pg;
  } finally {
    await flood.kill("SIGTERM", 5000);
  }
  const result = await floodResult(flood, 5000);
  const ms = performance.now() - t0;
  const after = procStats(victim.pid);
  if (!after) throw new Error(`victim died during "${sc.name}":\n${victim.output()}`);
  const mib1 = udpCounters(victim.pid);
  const link1 = await net.v.linkStats("vflood");
  const dh = countLines(victim.output(), DH_LINE) - dh0;
  return {
    scenario: sc,
    flood: result,
    reachedPps: Math.round((link1.rxPackets - link0.rxPackets) / (result.ms / 1000)),
    socketDrops: mib1.rcvbufErrors - mib0.rcvbufErrors,
    processedPps: floodOnly.datagrams,
    mainRun: floodOnly.mainRun,
    mainWait: floodOnly.mainWait,
    droppedPps: floodOnly.drops,
    delivered: mib1.inDatagrams - mib0.inDatagrams,
    usPerDatagram: floodOnly.datagrams > 0 ? (floodOnly.cpu * 1e6) / floodOnly.datagrams : 0,
    dh,
    dhPerSecond: Math.round(dh / (result.ms / 1000)),
    cpu: (after.cpuSeconds - before.cpuSeconds) / (ms / 1000),
    rssBefore: before.rss,
    rssAfter: after.rss,
    hwm: after.hwm,
    threads: after.threads,
    handshakeMs,
    bps: perf.bps,
    iperfError: perf.error,
    pingSent: pings.sent,
    pingReceived: pings.received,
  };
}

/** Legit TCP throughput and ping with no flood (the reference for "% kept"). */
export async function baseline(
  ctx: NamespaceContext,
  net: FloodNet,
  seconds: number,
  iperfPort: number,
): Promise<{ bps: number; cpu: number; rss: number }> {
  const before = procStats(net.victim.pid)!;
  const t0 = performance.now();
  const r = await iperfTcp(ctx, net.v, net.l, VICTIM_TUNNEL, iperfPort, seconds);
  const after = procStats(net.victim.pid)!;
  return {
    bps: r.bps,
    cpu: (after.cpuSeconds - before.cpuSeconds) / ((performance.now() - t0) / 1000),
    rss: after.rss,
  };
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

/** One table row per scenario, in Markdown. */
export function formatTable(
  base: { bps: number; cpu: number; rss: number },
  rows: ScenarioResult[],
): string {
  const head = [
    "scenario",
    "offered pps",
    "read by victim pps",
    "socket drops pps",
    "cookie replies/s",
    "DH/s",
    "victim µs/datagram",
    "victim CPU",
    "main thread run / wait",
    "RSS before→after (peak)",
    "legit handshake",
    "legit TCP (% of base)",
    "ping ok",
  ];
  const lines = [
    `load average at the end: ${loadAverage()} (${navigator.hardwareConcurrency} CPUs)`,
    `baseline (no flood): legit TCP ${mbps(base.bps)}, victim CPU ${base.cpu.toFixed(2)} cores, ` +
    `RSS ${mib(base.rss)}`,
    "",
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
  ];
  for (const r of rows) {
    const s = r.flood.ms / 1000;
    const cells = [
      r.scenario.name,
      String(r.flood.pps),
      String(r.processedPps),
      String(r.droppedPps),
      String(Math.round(r.flood.cookieReplies / s)),
      String(r.dhPerSecond),
      r.usPerDatagram.toFixed(1),
      `${r.cpu.toFixed(2)} cores`,
      `${Math.round(100 * r.mainRun)} % / ${Math.round(100 * r.mainWait)} %`,
      `${mib(r.rssBefore)}→${mib(r.rssAfter)} (${mib(r.hwm)})`,
      r.handshakeMs === null ? "NEVER" : `${(r.handshakeMs / 1000).toFixed(1)} s`,
      `${mbps(r.bps)} (${base.bps > 0 ? Math.round((100 * r.bps) / base.bps) : 0} %)${
        r.iperfError ? " " + r.iperfError : ""
      }`,
      `${r.pingReceived}/${r.pingSent}`,
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/**
 * `flood_tool.ts --measure`: every scenario, one table on stdout. With `pin`,
 * the victim daemon runs on CPU 0 and the flooder on CPU 1 (`taskset`), so
 * that the victim is not starved by the flooder on a small machine (the
 * kernel's receive work for the veth stays on the sender's CPU).
 */
export async function measure(opts: { seconds?: number; pin?: boolean }): Promise<number> {
  const seconds = opts.seconds ?? 5;
  const tools = ["ip", "wg", "iperf3", "ping", "ss", ...(opts.pin ? ["taskset"] : [])];
  const lacking = missing({ root: true, tun: true, tools });
  if (lacking.length > 0) {
    log(`flood_tool.ts --measure: missing ${lacking.join("; ")}`);
    return 1;
  }
  const out = (s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s + "\n"));
  const victimWrapper = opts.pin ? ["taskset", "-c", "0"] : [];
  const floodWrapper = opts.pin ? ["taskset", "-c", "1"] : [];
  await withNamespaces("gthard", 3, async (ctx) => {
    const net = await floodNet(ctx, {}, victimWrapper);
    out(`victim ${net.victim.ifname} (pid ${net.victim.pid}), ${LEGIT_TUNNEL} → ${VICTIM_TUNNEL}`);
    const base = await baseline(ctx, net, seconds, 5201);
    const rows: ScenarioResult[] = [];
    let port = 5202;
    for (const sc of SCENARIOS) {
      out(`running: ${pad(sc.name, 48)}`);
      rows.push(await runScenario(ctx, net, sc, seconds, port++, floodWrapper));
      // Let the under-load state (1 s) and the queues drain between scenarios.
      await sleep(2000);
    }
    out("");
    if (opts.pin) out("victim pinned to CPU 0, flooder to CPU 1");
    out(formatTable(base, rows));
  });
  return 0;
}
