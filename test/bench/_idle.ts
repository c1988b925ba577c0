// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * What an idle tunnel costs: both daemons' CPU time and context switches
 * over a window in which the only traffic is a 10 s persistent keepalive
 * (set on both ends with `wg set … persistent-keepalive 10` for the window,
 * then turned off again). Counted over every thread of a daemon
 * (/proc/PID/task/TID): CPU from `schedstat` (ns on the CPU; utime + stime
 * from `stat`, 10 ms ticks, where there is no schedstat) and
 * voluntary + nonvoluntary context switches from `status`. A thread that
 * ends inside the window takes its counts with it.
 */
import { sleep } from "../_util/proc.ts";
import { ticksPerSecond, type Tunnel, wg } from "./_env.ts";

/** Counters of one thread. */
export interface ThreadCounters {
  cpuNs: number;
  ctxSwitches: number;
}

/** ctxSwitches() of a /proc/…/status text: voluntary + nonvoluntary; NaN without them. */
export function ctxSwitches(status: string): number {
  const v = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(status);
  const n = /^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status);
  return v && n ? Number(v[1]) + Number(n[1]) : NaN;
}

/** threadCounters() of every thread of `pid`, by TID (empty when the process is gone). */
export function threadCounters(pid: number, hz: number): Map<string, ThreadCounters> {
  const out = new Map<string, ThreadCounters>();
  let tids: string[];
  try {
    tids = [...Deno.readDirSync(`/proc/${pid}/task`)].map((e) => e.name);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const dir = `/proc/${pid}/task/${tid}`;
    try {
      const status = Deno.readTextFileSync(`${dir}/status`);
      let cpuNs: number;
      try {
        cpuNs = Number(Deno.readTextFileSync(`${dir}/schedstat`).split(" ")[0]);
      } catch {
        const stat = Deno.readTextFileSync(`${dir}/stat`);
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        cpuNs = (Number(f[11]) + Number(f[12])) / hz * 1e9;
      }
      out.set(tid, { cpuNs, ctxSwitches: ctxSwitches(status) });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** delta() of the counters between two snapshots, over the threads alive at the end. */
export function delta(
  before: ReadonlyMap<string, ThreadCounters>,
  after: ReadonlyMap<string, ThreadCounters>,
): ThreadCounters {
  const sum: ThreadCounters = { cpuNs: 0, ctxSwitches: 0 };
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { cpuNs: 0, ctxSwitches: 0 };
    sum.cpuNs += a.cpuNs - b.cpuNs;
    sum.ctxSwitches += a.ctxSwitches - b.ctxSwitches;
  }
  return sum;
}

/** Per daemon (mean of the tunnel's two), scaled to one minute. */
export interface IdleStats {
  cpuMsPerMin: number;
  ctxPerMin: number;
}

/** Turns the persistent keepalive of both ends of `t` on (10 s) or off. */
async function keepalive(t: Tunnel, on: boolean): Promise<void> {
  const v = on ? "10" : "off";
  await wg(["set", t.da.ifname, "peer", t.pubB, "persistent-keepalive", v]);
  await wg(["set", t.db.ifname, "peer", t.pubA, "persistent-keepalive", v]);
}

/**
 * idleUsage() measures all the tunnels at once over the same window of
 * `seconds` (idle daemons do not compete for the CPU), 2 s after their
 * keepalives were switched on.
 */
export async function idleUsage(tunnels: readonly Tunnel[], seconds: number): Promise<IdleStats[]> {
  const hz = await ticksPerSecond();
  try {
    for (const t of tunnels) await keepalive(t, true);
    await sleep(2000);
    const pids = tunnels.map((t) => [t.da.pid, t.db.pid]);
    const before = pids.map((p) => p.map((pid) => threadCounters(pid, hz)));
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const after = pids.map((p) => p.map((pid) => threadCounters(pid, hz)));
    const perMin = 60_000 / (performance.now() - t0);
    return tunnels.map((_, i) => {
      const [a, b] = [0, 1].map((k) => delta(before[i][k], after[i][k]));
      if (after[i].some((m) => m.size === 0)) return { cpuMsPerMin: NaN, ctxPerMin: NaN };
      return {
        cpuMsPerMin: (a.cpuNs + b.cpuNs) / 2 / 1e6 * perMin,
        ctxPerMin: (a.ctxSwitches + b.ctxSwitches) / 2 * perMin,
      };
    });
  } finally {
    for (const t of tunnels) await keepalive(t, false).catch(() => {});
  }
}
