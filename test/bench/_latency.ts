// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Round-trip times through the tunnel, from A to B, as a user feels them
 * (`ping`'s per-packet times, percentiles by {@link quantile}):
 *
 * - {@link ping}: 10 ms apart on an otherwise idle tunnel — p50/p99/p999
 *   (with N pings, p999 is within the slowest N/1000 + 1 of them);
 * - {@link sparsePing}: 1.5 s apart, so that every ping finds both daemons
 *   idle and measures their wake-up — p50/p99;
 * - {@link loadedPing}: 10 ms apart while one iperf3 TCP stream runs from A
 *   to B, so that the pings queue behind bulk data in both daemons —
 *   p50/p99/p999.
 */
import { sleep } from "../_util/proc.ts";
import { TUN_B, type Tunnel } from "./_env.ts";
import { type Durations, iperfClient, nsRun } from "./_metrics.ts";
import { quantile } from "./_report.ts";

/** Percentiles of one ping run, ms. */
export interface PingStats {
  p50: number;
  p99: number;
  p999: number;
  received: number;
}

/** pingTimes() are the `time=… ms` values of `ping -n` output, in order. */
export function pingTimes(stdout: string): number[] {
  return [...stdout.matchAll(/ time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

/** pingStats() of some RTTs; throws when there are none. */
export function pingStats(times: readonly number[]): PingStats {
  if (times.length === 0) throw new Error("no ping replies");
  return {
    p50: quantile(times, 0.5),
    p99: quantile(times, 0.99),
    p999: quantile(times, 0.999),
    received: times.length,
  };
}

/** pingRun() sends `count` pings `interval` s apart from A to B; the RTTs of the replies. */
async function pingRun(t: Tunnel, count: number, interval: number, wait = 1): Promise<number[]> {
  const r = await nsRun(t.a, [
    "ping",
    "-n",
    "-c",
    String(count),
    "-i",
    String(interval),
    "-W",
    String(wait),
    TUN_B,
  ], 20_000 + count * (interval * 1000 + 50));
  const times = pingTimes(r.stdout);
  if (times.length === 0) {
    throw new Error(`no ping replies (code ${r.code}): ${r.stdout.trim().slice(-200)}`);
  }
  return times;
}

/** Makes sure a session is up (its handshake is measured elsewhere, as the first ping). */
async function warmUp(t: Tunnel): Promise<void> {
  await nsRun(t.a, ["ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "2", TUN_B], 15_000);
}

/** ping() of {@link Durations.pingCount} pings {@link Durations.pingInterval} apart. */
export async function ping(t: Tunnel, d: Durations): Promise<PingStats> {
  await warmUp(t);
  return pingStats(await pingRun(t, d.pingCount, d.pingInterval));
}

/**
 * sparsePing() sends {@link Durations.sparseCount} pings
 * {@link Durations.sparseInterval} apart, the first one that long after the
 * warm-up.
 */
export async function sparsePing(t: Tunnel, d: Durations): Promise<PingStats> {
  await warmUp(t);
  await sleep(d.sparseInterval * 1000);
  return pingStats(await pingRun(t, d.sparseCount, d.sparseInterval, 2));
}

/** Result of {@link loadedPing}. */
export interface LoadedPingStats extends PingStats {
  /** Throughput of the TCP stream the pings ran beside, Mbit/s. */
  mbps: number;
}

/**
 * loadedPing() runs one iperf3 TCP stream from A to B for 1 s plus the
 * pings plus 1 s, and {@link Durations.loadPingCount} pings 10 ms apart
 * starting 1 s after the stream (past its slow start).
 */
export async function loadedPing(t: Tunnel, d: Durations): Promise<LoadedPingStats> {
  await warmUp(t);
  const seconds = Math.ceil(d.loadPingCount * d.pingInterval) + 2;
  let started!: () => void;
  const streaming = new Promise<void>((resolve) => (started = resolve));
  const iperf = iperfClient(t, ["-t", String(seconds)], seconds, { before: () => started() });
  // A stream that fails before it starts lets the pings go (and fail the test below).
  iperf.catch(() => started());
  const pings = streaming.then(() => sleep(1000)).then(() =>
    pingRun(t, d.loadPingCount, d.pingInterval)
  );
  const [j, times] = await Promise.allSettled([iperf, pings]);
  if (j.status === "rejected") throw j.reason;
  if (times.status === "rejected") throw times.reason;
  const sum = j.value.end?.sum_received;
  return { ...pingStats(times.value), mbps: sum ? sum.bits_per_second / 1e6 : NaN };
}
