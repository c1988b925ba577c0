// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The measurements of the network benchmark, each on a {@link Tunnel} of one
 * implementation, each bounded by timeouts, each returning plain numbers
 * (net.ts records them per round and takes medians):
 *
 * - iperf3 TCP, 1 or 4 streams, either direction; daemon CPU of both sides;
 * - iperf3 UDP with 1392-byte payloads (1392 + 8 + 20 = 1420, the tunnel
 *   MTU): received packets per second when the sender offers all it can
 *   (`-b 0`), and loss plus daemon CPU time per packet when paced at
 *   200 Mbit/s (utime + stime of each daemon from /proc/<pid>/stat, divided
 *   by the packets it encrypted or decrypted);
 * - ping RTT percentiles: see _latency.ts; idle CPU: see _idle.ts;
 * - GC collections in both daemons during the TCP 1-stream test (_gc.ts);
 * - RSS from /proc/<pid>/status (VmRSS idle, VmHWM after the TCP tests);
 * - handshakes per second as a responder (see _flood.ts), on an extra daemon
 *   started for it;
 * - `wg setconf` of the big configurations (see _pool.ts), RSS per peer, and
 *   the first ping through the tunnel, handshake included, as the first and
 *   as the last of 10 000 peers.
 */
import { run } from "../_util/proc.ts";
import type { Netns } from "../_util/netns.ts";
import {
  type Cleanup,
  cpuTicks,
  type Impl,
  ip,
  IPERF_PORT,
  memory,
  PORT_CONFIG,
  PORT_FLOOD,
  PORT_INITIATOR,
  RssSampler,
  setconf,
  setconfFile,
  startDaemon,
  stopDaemon,
  ticksPerSecond,
  TUN_B,
  TUN_MTU,
  type Tunnel,
  VETH_B,
  waitListening,
  wg,
} from "./_env.ts";
import type { ConfigInputs, HandshakePool } from "./_pool.ts";
import type { FloodConfig, FloodResult } from "./_flood.ts";
import { type GcCounts, GcWindow } from "./_gc.ts";

/** How long each test runs. */
export interface Durations {
  /** iperf3 -t for TCP, and -O (omitted warm-up) before it. */
  tcpSeconds: number;
  tcpOmitSeconds: number;
  /** iperf3 -t for each UDP test. */
  udpSeconds: number;
  /** Pings 10 ms (`pingInterval`) apart on an idle tunnel, and while one TCP stream runs. */
  pingCount: number;
  loadPingCount: number;
  /** Seconds between pings. */
  pingInterval: number;
  /** Pings 1.5 s (`sparseInterval`) apart: each finds the tunnel idle. */
  sparseCount: number;
  sparseInterval: number;
  /** Length of the idle window (10 s persistent keepalive), s. */
  idleSeconds: number;
  hsCapacityMs: number;
  hsFloodMs: number;
  /** Initiations per second offered during the flood. */
  hsFloodRate: number;
}

/** Full run (default). */
export const FULL: Durations = {
  tcpSeconds: 5,
  tcpOmitSeconds: 1,
  udpSeconds: 5,
  pingCount: 1000,
  loadPingCount: 1000,
  pingInterval: 0.01,
  sparseCount: 20,
  sparseInterval: 1.5,
  idleSeconds: 30,
  hsCapacityMs: 2000,
  hsFloodMs: 2000,
  hsFloodRate: 10_000,
};

/** `--quick`. */
export const QUICK: Durations = {
  tcpSeconds: 1,
  tcpOmitSeconds: 0,
  udpSeconds: 1,
  pingCount: 100,
  loadPingCount: 100,
  pingInterval: 0.01,
  sparseCount: 4,
  sparseInterval: 1.5,
  idleSeconds: 10,
  hsCapacityMs: 1000,
  hsFloodMs: 1000,
  hsFloodRate: 10_000,
};

/** UDP payload: 1392 + 8 (UDP) + 20 (IPv4) = 1420 bytes, the tunnel MTU. */
export const UDP_PAYLOAD = 1392;

const KIB_PER_MIB = 1024;

/** In-namespace command with a timeout; never throws (the caller reads code/output). */
export function nsRun(ns: Netns, argv: readonly string[], timeoutMs: number) {
  return run("ip", ["netns", "exec", ns.name, ...argv], { timeoutMs });
}

/** The part of iperf3's -J output we read. */
interface IperfSum {
  seconds: number;
  bytes: number;
  bits_per_second: number;
  packets?: number;
  lost_packets?: number;
  lost_percent?: number;
}
export interface IperfJson {
  error?: string;
  end?: { sum?: IperfSum; sum_sent?: IperfSum; sum_received?: IperfSum };
}

/**
 * iperfClient() runs one iperf3 test from A against a one-off server
 * (`iperf3 -s -1`) started in B for it: a long-lived server closes and
 * reopens its listening socket between tests, and a client that comes in
 * that moment is refused. A refused or reset control connection (before any
 * measurement) is retried once.
 */
export async function iperfClient(
  t: Tunnel,
  args: readonly string[],
  seconds: number,
  around: Around = {},
): Promise<IperfJson> {
  for (let attempt = 1;; attempt++) {
    try {
      return await iperfOnce(t, args, seconds, around);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (attempt >= 2 || !/unable to (connect|receive control)|refused|reset by peer/.test(msg)) {
        throw e;
      }
    }
  }
}

/** Called right before the iperf3 client starts and right after it ends (counter windows). */
export interface Around {
  before?: () => void;
  after?: () => void;
}

async function iperfOnce(
  t: Tunnel,
  args: readonly string[],
  seconds: number,
  around: Around,
): Promise<IperfJson> {
  const server = t.b.spawn({}, "iperf3", "-s", "-1", "-B", TUN_B, "-p", String(IPERF_PORT));
  try {
    if (!(await waitListening(t.b, "tcp", IPERF_PORT))) {
      throw new Error(`iperf3 -s did not start in ${t.b.name}`);
    }
    around.before?.();
    const r = await nsRun(t.a, [
      "iperf3",
      "-J",
      "-c",
      TUN_B,
      "-p",
      String(IPERF_PORT),
      ...args,
    ], (seconds + 30) * 1000);
    around.after?.();
    let j: IperfJson;
    try {
      j = JSON.parse(r.stdout);
    } catch {
      throw new Error(
        `iperf3 gave no JSON (code ${r.code}${r.timedOut ? ", timed out" : ""}): ${
          (r.stdout + r.stderr).trim().slice(-300)
        }`,
      );
    }
    if (j.error) throw new Error(`iperf3: ${j.error}`);
    if (r.code !== 0) throw new Error(`iperf3 exited ${r.code}`);
    return j;
  } finally {
    await server.kill("SIGTERM", 2000);
  }
}

/** CPU ticks of some processes between before() and after(), and the wall time between. */
class CpuWindow implements Around {
  readonly #pids: readonly number[];
  #start: number[] = [];
  #t0 = 0;
  ticks: number[] = [];
  seconds = NaN;

  constructor(pids: readonly number[]) {
    this.#pids = pids;
  }
  before(): void {
    this.#start = this.#pids.map(cpuTicks);
    this.#t0 = performance.now();
  }
  after(): void {
    this.seconds = (performance.now() - this.#t0) / 1000;
    this.ticks = this.#pids.map((p, i) => cpuTicks(p) - this.#start[i]);
  }
}

/** Mean VmRSS of both daemons, in MiB. */
export function idleRss(t: Tunnel): number {
  const a = memory(t.da.pid).rss, b = memory(t.db.pid).rss;
  return (a + b) / 2 / KIB_PER_MIB;
}

/**
 * firstPing() is the time of one ping through a tunnel that has not had a
 * handshake yet (it waits in the daemon until the handshake completes), ms;
 * NaN without a reply in 10 s.
 */
export async function firstPing(ns: Netns, target: string): Promise<number> {
  const r = await nsRun(ns, ["ping", "-n", "-c", "1", "-W", "10", target], 20_000);
  const m = / time=([\d.]+) ms/.exec(r.stdout);
  return m ? Number(m[1]) : NaN;
}

/** Max VmHWM of both daemons since they started, in MiB. */
export function peakRss(t: Tunnel): number {
  return Math.max(memory(t.da.pid).hwm, memory(t.db.pid).hwm) / KIB_PER_MIB;
}

/** Result of {@link tcp}. */
export interface TcpStats {
  mbps: number;
  /** Daemon CPU, % of one core, on the side that sends the data and the side that receives it. */
  cpuTx: number;
  cpuRx: number;
  /** Peak VmRSS (KiB) sampled during the test, max of both daemons. */
  rssPeak: number;
  /** Collections in both daemons during the test (NaN without their traces). */
  gc: GcCounts;
}

/** tcp() runs iperf3 TCP from A to B (or B to A with `reverse`). */
export async function tcp(
  t: Tunnel,
  d: Durations,
  streams: number,
  reverse: boolean,
): Promise<TcpStats> {
  const hz = await ticksPerSecond();
  const args = ["-t", String(d.tcpSeconds)];
  if (d.tcpOmitSeconds > 0) args.push("-O", String(d.tcpOmitSeconds));
  if (streams > 1) args.push("-P", String(streams));
  if (reverse) args.push("-R");
  const sampler = new RssSampler([t.da.pid, t.db.pid]);
  const w = new CpuWindow([t.da.pid, t.db.pid]);
  const g = new GcWindow([t.da.log, t.db.log]);
  let j: IperfJson;
  let peaks: Map<number, number>;
  try {
    j = await iperfClient(t, args, d.tcpSeconds + d.tcpOmitSeconds, {
      before: () => (g.before(), w.before()),
      after: () => (w.after(), g.after()),
    });
  } finally {
    peaks = sampler.stop();
  }
  const secs = w.seconds;
  const [a, b] = w.ticks.map((x) => x / hz / secs * 100);
  const sum = j.end?.sum_received;
  if (!sum) throw new Error("iperf3 JSON has no end.sum_received");
  return {
    mbps: sum.bits_per_second / 1e6,
    cpuTx: reverse ? b : a,
    cpuRx: reverse ? a : b,
    rssPeak: Math.max(0, ...peaks.values()),
    gc: g.counts,
  };
}

/** Result of {@link udpOverload}. */
export interface UdpOverloadStats {
  receivedKpps: number;
  offeredKpps: number;
}

/** udpOverload() lets iperf3 send UDP as fast as it can (`-b 0`) and reports what arrived. */
export async function udpOverload(t: Tunnel, d: Durations): Promise<UdpOverloadStats> {
  const j = await iperfClient(t, [
    "-u",
    "-b",
    "0",
    "-l",
    String(UDP_PAYLOAD),
    "-t",
    String(d.udpSeconds),
  ], d.udpSeconds);
  const rx = j.end?.sum_received, tx = j.end?.sum_sent;
  if (!rx || !tx) throw new Error("iperf3 JSON has no end.sum_received/sum_sent");
  return {
    receivedKpps: rx.bytes / UDP_PAYLOAD / rx.seconds / 1000,
    offeredKpps: (tx.packets ?? tx.bytes / UDP_PAYLOAD) / tx.seconds / 1000,
  };
}

/** Result of {@link udpPaced}. */
export interface UdpPacedStats {
  lossPercent: number;
  /** Daemon CPU µs per packet encrypted (A) and decrypted (B). */
  cpuTxUs: number;
  cpuRxUs: number;
  packets: number;
}

/**
 * udpPaced() sends UDP at 200 Mbit/s from A to B and reads both daemons'
 * CPU time around it: A encrypts every packet iperf3 sent, B decrypts every
 * packet that reached it.
 */
export async function udpPaced(t: Tunnel, d: Durations): Promise<UdpPacedStats> {
  const hz = await ticksPerSecond();
  const w = new CpuWindow([t.da.pid, t.db.pid]);
  const j = await iperfClient(
    t,
    [
      "-u",
      "-b",
      "200M",
      "-l",
      String(UDP_PAYLOAD),
      "-t",
      String(d.udpSeconds),
    ],
    d.udpSeconds,
    w,
  );
  const [a, b] = w.ticks;
  const rx = j.end?.sum_received, tx = j.end?.sum_sent;
  if (!rx || !tx || tx.packets === undefined || rx.packets === undefined) {
    throw new Error("iperf3 JSON has no packet counts");
  }
  const sent = tx.packets;
  const received = rx.packets - (rx.lost_packets ?? 0);
  return {
    lossPercent: rx.lost_percent ?? (100 * (sent - received) / sent),
    cpuTxUs: a / hz * 1e6 / sent,
    cpuRxUs: received > 0 ? b / hz * 1e6 / received : NaN,
    packets: sent,
  };
}

/** Result of {@link handshakes}. */
export interface HandshakeStats {
  capacityPerSecond: number;
  /** Responder CPU time per completed handshake in the capacity phase, µs. */
  cpuPerHandshakeUs: number;
  floodPerSecond: number;
  cookiesPerSecond: number;
  /** Responder CPU during the flood, % of one core. */
  floodCpu: number;
  raw: FloodResult;
}

/**
 * handshakes() starts a responder daemon in B configured with the pool's
 * keys, runs _flood.ts in A against it, and stops it.
 */
export async function handshakes(
  t: Tunnel,
  impl: Impl,
  pool: HandshakePool,
  d: Durations,
  dir: string,
  cleanup: Cleanup,
): Promise<HandshakeStats> {
  const hz = await ticksPerSecond();
  const r = await startDaemon(t.b, impl, `${t.stem}f`, cleanup);
  try {
    await setconf(r.ifname, pool.responderConf, dir, 120_000);
    await ip(t.b, ["link", "set", "dev", r.ifname, "up"]);
    if (!(await waitListening(t.b, "udp", PORT_FLOOD))) {
      throw new Error(`responder not listening on ${PORT_FLOOD}`);
    }
    const cfg: FloodConfig = {
      pool: pool.path,
      start: 0,
      host: VETH_B,
      port: PORT_FLOOD,
      window: 32,
      capacityMs: d.hsCapacityMs,
      floodMs: d.hsFloodMs,
      floodRate: d.hsFloodRate,
      replyTimeoutMs: 250,
      responderPid: r.pid,
    };
    const script = new URL("./_flood.ts", import.meta.url).pathname;
    const out = await run("ip", [
      "netns",
      "exec",
      t.a.name,
      Deno.execPath(),
      "run",
      "--no-config",
      "--no-prompt",
      "--unstable-net",
      "-A",
      script,
    ], {
      timeoutMs: d.hsCapacityMs + d.hsFloodMs + 30_000,
      env: { GTB_FLOOD: JSON.stringify(cfg), NO_COLOR: "1" },
    });
    if (out.code !== 0 || out.timedOut) {
      throw new Error(
        `flood generator failed (code ${out.code}${out.timedOut ? ", timed out" : ""}): ${
          (out.stdout + out.stderr).trim().slice(-400)
        }`,
      );
    }
    const res = JSON.parse(out.stdout.trim().split("\n").pop()!) as FloodResult;
    const capS = res.capacity.ms / 1000, floodS = res.flood.ms / 1000;
    return {
      capacityPerSecond: res.capacity.responses / capS,
      cpuPerHandshakeUs: res.capacity.responses > 0
        ? res.capacity.cpuTicks / hz * 1e6 / res.capacity.responses
        : NaN,
      floodPerSecond: floodS > 0 ? res.flood.responses / floodS : NaN,
      cookiesPerSecond: floodS > 0 ? res.flood.cookies / floodS : NaN,
      floodCpu: floodS > 0 ? res.flood.cpuTicks / hz / floodS * 100 : NaN,
      raw: res,
    };
  } finally {
    await stopDaemon(r);
  }
}

/** Result of {@link configs}. */
export interface ConfigStats {
  /** What went wrong in a part that was skipped or unverified (the other parts still count). */
  problems: string[];
  setconfAipsS: number;
  rssAipsMiB: number;
  setconfPeersS: number;
  rssPerPeerKiB: number;
  firstPingPeer1Ms: number;
  firstPingLastMs: number;
}

/** Lets the daemon settle (GC, lazily touched pages) before reading RSS. */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 500));
}

/**
 * configs() measures, on fresh daemons beside the main pair:
 * `wg setconf` of 130 560 allowed IPs and the RSS after it; `wg setconf`
 * of 10 000 peers and (RSS after − RSS before) / 10 000; then an initiator
 * in A that takes the identity of peer #1 and later of peer #10 000 (or the
 * other order, `lastFirst`) and pings the responder once each, handshake
 * included.
 */
export async function configs(
  t: Tunnel,
  impl: Impl,
  inputs: ConfigInputs,
  dir: string,
  cleanup: Cleanup,
  lastFirst: boolean,
  timeoutMs = 300_000,
): Promise<ConfigStats> {
  const out: ConfigStats = {
    problems: [],
    setconfAipsS: NaN,
    rssAipsMiB: NaN,
    setconfPeersS: NaN,
    rssPerPeerKiB: NaN,
    firstPingPeer1Ms: NaN,
    firstPingLastMs: NaN,
  };
  // 1. 130 560 allowed IPs on one peer.
  try {
    const c = await startDaemon(t.b, impl, `${t.stem}c`, cleanup);
    try {
      out.setconfAipsS = (await setconfFile(c.ifname, inputs.aipsPath, timeoutMs)) / 1000;
      await settle();
      out.rssAipsMiB = memory(c.pid).rss / KIB_PER_MIB;
    } finally {
      await stopDaemon(c);
    }
  } catch (e) {
    out.problems.push(`130 560 allowed IPs: ${e instanceof Error ? e.message : String(e)}`);
  }

  // 2. 10 000 peers, then handshakes with peer #1 and #10 000.
  try {
    await peers(t, impl, inputs, dir, cleanup, lastFirst, timeoutMs, out);
  } catch (e) {
    out.problems.push(`10 000 peers: ${e instanceof Error ? e.message : String(e)}`);
  }
  return out;
}

async function peers(
  t: Tunnel,
  impl: Impl,
  inputs: ConfigInputs,
  dir: string,
  cleanup: Cleanup,
  lastFirst: boolean,
  timeoutMs: number,
  out: ConfigStats,
): Promise<void> {
  const r = await startDaemon(t.b, impl, `${t.stem}r`, cleanup);
  let i: Awaited<ReturnType<typeof startDaemon>> | null = null;
  try {
    i = await startDaemon(t.a, impl, `${t.stem}i`, cleanup);
    await settle();
    const before = memory(r.pid).rss;
    out.setconfPeersS = (await setconfFile(r.ifname, inputs.peersPath, timeoutMs)) / 1000;
    await settle();
    out.rssPerPeerKiB = (memory(r.pid).rss - before) / inputs.peerCount;

    await ip(t.b, ["address", "add", "10.77.0.1/32", "dev", r.ifname]);
    await ip(t.b, ["link", "set", "dev", r.ifname, "mtu", String(TUN_MTU), "up"]);
    await ip(t.b, ["route", "add", "10.78.0.0/16", "dev", r.ifname]);
    if (!(await waitListening(t.b, "udp", PORT_CONFIG))) {
      throw new Error(`10 000-peer responder not listening on ${PORT_CONFIG}`);
    }
    await ip(t.a, ["link", "set", "dev", i.ifname, "mtu", String(TUN_MTU), "up"]);
    const order = lastFirst ? [inputs.last, inputs.first] : [inputs.first, inputs.last];
    for (const who of order) {
      await setconf(
        i.ifname,
        [
          "[Interface]",
          `PrivateKey = ${who.key.privateB64}`,
          `ListenPort = ${PORT_INITIATOR}`,
          "[Peer]",
          `PublicKey = ${inputs.responderPublic}`,
          "AllowedIPs = 10.77.0.1/32",
          `Endpoint = ${VETH_B}:${PORT_CONFIG}`,
          "",
        ].join("\n"),
        dir,
      );
      await ip(t.a, ["address", "flush", "dev", i.ifname]);
      await ip(t.a, ["address", "add", `${who.address}/32`, "dev", i.ifname]);
      await ip(t.a, ["route", "replace", "10.77.0.1/32", "dev", i.ifname]);
      // Only the handshake is to be timed, not how soon a daemon notices its link is up.
      if (!(await waitListening(t.a, "udp", PORT_INITIATOR))) {
        throw new Error(`initiator not listening on ${PORT_INITIATOR}`);
      }
      const ms = await firstPing(t.a, "10.77.0.1");
      if (who === inputs.first) out.firstPingPeer1Ms = ms;
      else out.firstPingLastMs = ms;
    }
    // The handshakes must really have been with those peers.
    const hs = (await wg(["show", r.ifname, "latest-handshakes"])).stdout;
    const done = hs.split("\n").filter((l) => /\t[1-9]\d*$/.test(l)).length;
    if (done < 2) out.problems.push(`the responder shows ${done} handshakes, expected 2`);
  } finally {
    if (i) await stopDaemon(i);
    await stopDaemon(r);
  }
}
