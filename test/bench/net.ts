// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `deno task bench:net`: a root network benchmark of gotatun against
 * wireguard-go, each implementation on both ends of a tunnel between two
 * network namespaces joined by a veth pair (MTU 1500; tunnel MTU 1420).
 *
 * ```
 * deno run -A test/bench/net.ts [--rounds N] [--quick] [--pinned] [--only GROUP,…]
 *                               [--json out.json] [--svg out.svg]
 *                               [--impl gotatun=PATH,wireguard-go=PATH] [--extra NAME=PATH,…]
 * ```
 *
 * The reference is the newest wireguard-go found (see _impls.ts); every
 * column of the report is named with the version its program prints.
 *
 * Both implementations are set up side by side in every round (fresh
 * namespaces and daemons per round) and the tests are interleaved: each test
 * runs for one implementation and then the other, the order flipping from
 * test to test and round to round, so that the noise of a shared 2-core
 * machine lands on both alike. Every metric is the median over the rounds
 * (5 by default) and is reported with its range and the ratio of the
 * medians, gotatun / wireguard-go (differences under ~15 % are noise
 * here). Progress goes to stderr, the Markdown table to stdout.
 *
 * What is measured and how: see _metrics.ts (iperf3 TCP/UDP, /proc CPU and
 * RSS, handshakes per second with _flood.ts, `wg setconf` of big
 * configurations), _latency.ts (ping: idle, sparse, under load), _idle.ts
 * (CPU and context switches of an idle tunnel) and _gc.ts (collections
 * during the TCP test) and _proxy.ts (`gotatun proxy`, SOCKS5 in front of
 * an in-process Tunnel, next to kernel TCP through the TUN daemons; run it
 * alone with `--only proxy`). Tests of idle tunnels (sparse ping, idle CPU) run on
 * all implementations at once instead of in turn: they leave the CPU to each
 * other. Every external step has a timeout; a failed step is noted under the
 * table and the run goes on. Namespaces,
 * daemons and temporary files (private keys) are removed in `finally` and on
 * SIGINT/SIGTERM.
 *
 * `--impl NAME=PATH,…` replaces the program of a known name (`gotatun`,
 * `wireguard-go`), or, given two new names, compares those two (the first is
 * the candidate of the ratios); `--extra NAME=PATH,…` adds columns (no
 * ratios), e.g. an older wireguard-go. `GOTATUN_CRYPTO` is passed through to
 * the daemons. Needs root, /dev/net/tun, ip, wg, iperf3, ping, ss, getconf,
 * stdbuf (and taskset for `--pinned`).
 */
import { randomSuffix, sleep, taskArgs } from "../_util/proc.ts";
import { Cleanup, type Impl, TUN_B, Tunnel } from "./_env.ts";
import {
  configs,
  type Durations,
  firstPing,
  FULL,
  handshakes,
  idleRss,
  peakRss,
  QUICK,
  tcp,
  udpOverload,
  udpPaced,
} from "./_metrics.ts";
import { loadedPing, ping, sparsePing } from "./_latency.ts";
import { idleUsage } from "./_idle.ts";
import { runtimeOf } from "./_gc.ts";
import { findWireguardGo, firstLine, label } from "./_impls.ts";
import { type Options, parseOptions, prerequisites, usage } from "./_options.ts";
import { buildConfigs, buildPool, type ConfigInputs, type HandshakePool } from "./_pool.ts";
import { jsonReport, markdownTable, Recorder, svgChart } from "./_report.ts";
import { IDLE_CONNECTIONS, LOSS_PERCENT, proxyRun, startProxy } from "./_proxy.ts";

export { parseOptions, prerequisites };

function say(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
}

function fmt(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "—";
}

/** The CPU model from /proc/cpuinfo ("model name"), or "CPU model unknown". */
function cpuModelName(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"));
    if (m) return m[1].trim();
  } catch {
    // not readable
  }
  return "CPU model unknown";
}

function loadavg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

/** One interleaved test: what it is called and what it does to one implementation's tunnel. */
interface Step {
  group: string;
  label: string;
  /** Runs on one implementation's tunnel; the implementations take turns. */
  fn?: (t: Tunnel, impl: Impl, round: number) => Promise<string>;
  /** Runs once on all the tunnels (by implementation name) together. */
  all?: (tunnels: ReadonlyMap<string, Tunnel>, round: number) => Promise<string>;
}

/** The percentiles of one ping test, as progress text. */
function pingLine(p: { p50: number; p99: number; p999?: number; received: number }): string {
  const p999 = p.p999 === undefined ? "" : `, p999 ${fmt(p.p999, 3)} ms`;
  return `p50 ${fmt(p.p50, 3)} ms, p99 ${fmt(p.p99, 3)} ms${p999} (${p.received} replies)`;
}

/**
 * eachSettled() runs `fn` on every tunnel at once, the k-th starting
 * k × `gapMs` later (the order flips with the round), notes the failures
 * and returns the progress text of all.
 */
async function eachSettled<T>(
  tunnels: ReadonlyMap<string, Tunnel>,
  round: number,
  gapMs: number,
  rec: Recorder,
  what: string,
  fn: (t: Tunnel) => Promise<T>,
  done: (name: string, r: T) => string,
): Promise<string> {
  const entries = [...tunnels];
  if (round % 2 === 0) entries.reverse();
  const results = await Promise.allSettled(
    entries.map(([, t], k) => sleep(k * gapMs).then(() => fn(t))),
  );
  return results.map((r, k) => {
    const name = entries[k][0];
    if (r.status === "fulfilled") return `${name}: ${done(name, r.value)}`;
    rec.note(`${name} ${what} round ${round}: ${message(r.reason)}`);
    return `${name}: FAILED: ${message(r.reason)}`;
  }).join("; ");
}

/** The test list for the selected groups (each returns a one-line summary for the progress). */
function steps(
  opts: Options,
  d: Durations,
  rec: Recorder,
  dir: string,
  cleanup: Cleanup,
  inputs: { pool: HandshakePool | null; configs: ConfigInputs | null },
  runtimes: ReadonlyMap<string, string>,
): Step[] {
  const list: Step[] = [];
  if (opts.only.has("ping")) {
    list.push({
      group: "ping",
      label: `ping ×${d.pingCount}`,
      fn: async (t, impl) => {
        const p = await ping(t, d);
        rec.add("ping_p50", impl.name, p.p50);
        rec.add("ping_p99", impl.name, p.p99);
        rec.add("ping_p999", impl.name, p.p999);
        return pingLine(p);
      },
    });
  }
  if (opts.only.has("sparse")) {
    const gapMs = d.sparseInterval * 1000 / opts.impls.length;
    list.push({
      group: "sparse",
      label: `sparse ping ×${d.sparseCount}, ${d.sparseInterval} s apart (all at once, staggered)`,
      all: (tunnels, round) =>
        eachSettled(tunnels, round, gapMs, rec, "sparse ping", (t) => sparsePing(t, d), (n, p) => {
          rec.add("sparse_p50", n, p.p50);
          rec.add("sparse_p99", n, p.p99);
          return pingLine({ p50: p.p50, p99: p.p99, received: p.received });
        }),
    });
  }
  if (opts.only.has("idle")) {
    list.push({
      group: "idle",
      label: `idle tunnel ${d.idleSeconds} s, 10 s keepalive (all at once)`,
      all: async (tunnels) => {
        const names = [...tunnels.keys()];
        const stats = await idleUsage([...tunnels.values()], d.idleSeconds);
        return names.map((n, k) => {
          rec.add("idle_cpu", n, stats[k].cpuMsPerMin);
          rec.add("idle_ctx", n, stats[k].ctxPerMin);
          return `${n}: ${fmt(stats[k].cpuMsPerMin, 1)} ms CPU/min, ${
            fmt(stats[k].ctxPerMin, 0)
          } context switches/min`;
        }).join("; ");
      },
    });
  }
  if (opts.only.has("loaded")) {
    list.push({
      group: "loaded",
      label: `ping ×${d.loadPingCount} beside 1 TCP stream`,
      fn: async (t, impl) => {
        const p = await loadedPing(t, d);
        rec.add("load_p50", impl.name, p.p50);
        rec.add("load_p99", impl.name, p.p99);
        rec.add("load_p999", impl.name, p.p999);
        rec.add("load_mbps", impl.name, p.mbps);
        return `${pingLine(p)}; TCP ${fmt(p.mbps, 0)} Mbit/s`;
      },
    });
  }
  if (opts.only.has("tcp")) {
    const variants: [string, string, number, boolean][] = [
      ["tcp1", "TCP 1 stream", 1, false],
      ["tcp1r", "TCP -R", 1, true],
      ["tcp4", "TCP -P 4", 4, false],
      ["tcp4r", "TCP -P 4 -R", 4, true],
    ];
    variants.forEach(([id, label, streams, reverse], k) => {
      list.push({
        group: "tcp",
        label,
        fn: async (t, impl) => {
          try {
            const r = await tcp(t, d, streams, reverse);
            rec.add(id, impl.name, r.mbps);
            if (id === "tcp1") {
              rec.add("tcp1_cpu_tx", impl.name, r.cpuTx);
              rec.add("tcp1_cpu_rx", impl.name, r.cpuRx);
              // Go's collector has no young generation: no scavenge count for it.
              if (runtimes.get(impl.name) !== "go") rec.add("gc_young_tcp1", impl.name, r.gc.young);
              rec.add("gc_full_tcp1", impl.name, r.gc.full);
            }
            return `${fmt(r.mbps, 0)} Mbit/s; daemon CPU ${fmt(r.cpuTx, 0)} % (send) + ${
              fmt(r.cpuRx, 0)
            } % (receive); RSS peak sampled ${fmt(r.rssPeak / 1024, 1)} MiB; GCs ${
              fmt(r.gc.young, 0)
            } young, ${fmt(r.gc.full, 0)} full`;
          } finally {
            // VmHWM once the last TCP test is over: the peak through all of them.
            if (k === variants.length - 1) rec.add("rss_peak_tcp", impl.name, peakRss(t));
          }
        },
      });
    });
  }
  if (opts.only.has("udp")) {
    list.push({
      group: "udp",
      label: "UDP -b 0 (overload)",
      fn: async (t, impl) => {
        const r = await udpOverload(t, d);
        rec.add("udp_pps", impl.name, r.receivedKpps);
        rec.add("udp_offered", impl.name, r.offeredKpps);
        return `received ${fmt(r.receivedKpps, 1)} kpps of ${fmt(r.offeredKpps, 1)} kpps offered`;
      },
    });
    list.push({
      group: "udp",
      label: "UDP 200 Mbit/s (loss, CPU/packet)",
      fn: async (t, impl) => {
        const r = await udpPaced(t, d);
        rec.add("udp200_loss", impl.name, r.lossPercent);
        rec.add("cpu_tx", impl.name, r.cpuTxUs);
        rec.add("cpu_rx", impl.name, r.cpuRxUs);
        return `loss ${fmt(r.lossPercent, 2)} %, CPU ${fmt(r.cpuTxUs, 1)} µs/pkt (send) ${
          fmt(r.cpuRxUs, 1)
        } µs/pkt (receive), ${r.packets} packets`;
      },
    });
  }
  if (opts.only.has("handshake") && inputs.pool) {
    const pool = inputs.pool;
    list.push({
      group: "handshake",
      label: "handshakes (capacity, flood)",
      fn: async (t, impl) => {
        const r = await handshakes(t, impl, pool, d, dir, cleanup);
        rec.add("hs_capacity", impl.name, r.capacityPerSecond);
        rec.add("hs_cpu", impl.name, r.cpuPerHandshakeUs);
        rec.add("hs_flood", impl.name, r.floodPerSecond);
        rec.add("hs_flood_cookies", impl.name, r.cookiesPerSecond);
        rec.add("hs_flood_cpu", impl.name, r.floodCpu);
        if (r.raw.next >= pool.count) {
          rec.note(
            `${impl.name}: the handshake pool (${pool.count} initiations) ran out; ` +
              "rates are over the time it lasted",
          );
        }
        const c = r.raw.capacity, f = r.raw.flood;
        const capacity = `capacity ${fmt(r.capacityPerSecond, 0)}/s, ` +
          `${fmt(r.cpuPerHandshakeUs, 0)} µs CPU each (${c.responses} responses, ` +
          `${c.cookies} cookies, ${c.timeouts} timeouts)`;
        const flood = `flood ${f.sent} sent: ${fmt(r.floodPerSecond, 0)} handshakes/s, ` +
          `${fmt(r.cookiesPerSecond, 0)} cookie replies/s, CPU ${fmt(r.floodCpu, 0)} %`;
        return `${capacity}; ${flood}`;
      },
    });
  }
  if (opts.only.has("config") && inputs.configs) {
    const cin = inputs.configs;
    list.push({
      group: "config",
      label: "big configs (130 560 allowed IPs; 10 000 peers)",
      fn: async (t, impl, round) => {
        const r = await configs(t, impl, cin, dir, cleanup, round % 2 === 0);
        rec.add("setconf_aips", impl.name, r.setconfAipsS);
        rec.add("rss_aips", impl.name, r.rssAipsMiB);
        rec.add("setconf_peers", impl.name, r.setconfPeersS);
        rec.add("rss_per_peer", impl.name, r.rssPerPeerKiB);
        rec.add("first_ping_peer1", impl.name, r.firstPingPeer1Ms);
        rec.add("first_ping_peer10000", impl.name, r.firstPingLastMs);
        for (const p of r.problems) rec.note(`${impl.name} big configs round ${round}: ${p}`);
        if (!Number.isFinite(r.firstPingPeer1Ms) || !Number.isFinite(r.firstPingLastMs)) {
          rec.note(`${impl.name}: a first ping through the 10 000-peer responder got no reply`);
        }
        return `setconf ${fmt(r.setconfAipsS, 2)} s (allowed IPs), ${
          fmt(r.setconfPeersS, 2)
        } s (peers); ${fmt(r.rssPerPeerKiB, 2)} KiB/peer; first ping ${
          fmt(r.firstPingPeer1Ms, 2)
        } ms (#1) / ${fmt(r.firstPingLastMs, 2)} ms (#${cin.peerCount})`;
      },
    });
  }
  if (opts.only.has("proxy")) {
    const program = opts.impls.find((i) => i.name === "gotatun")?.path ??
      new URL("../../dist/gotatun", import.meta.url).pathname;
    list.push({
      group: "proxy",
      label: "gotatun proxy (SOCKS5) vs kernel TCP via TUN",
      fn: async (t, impl, round) => {
        const bed = await startProxy(t, program, dir);
        try {
          const f = await proxyRun(
            t,
            bed,
            d.tcpSeconds,
            d.pingCount,
            (line) => rec.note(`${impl.name} proxy round ${round}: ${line}`),
          );
          for (const [id, v] of Object.entries(f)) rec.add(id, impl.name, v);
          const both = (id: string, digits = 0) =>
            `${fmt(f[`proxy_${id}`], digits)} / ${fmt(f[`tun_${id}`], digits)}`;
          return `proxy / TUN: download ${both("dl1")} (1), ${both("dl8")} (8) Mbit/s; upload ${
            both("ul1")
          } (1), ${both("ul8")} (8) Mbit/s; ${both("cps")} conn/s; latency p50 ${
            both("lat_p50", 3)
          } ms, p99 ${both("lat_p99", 3)} ms; ${LOSS_PERCENT} % loss: download ${
            both("dl1_loss")
          } (1), ${both("dl8_loss")} (8) Mbit/s; proxy RSS ${
            fmt(f.proxy_idle_bytes, 0)
          } B per idle connection`;
        } finally {
          await bed.proxy.kill();
          await bed.server.kill();
        }
      },
    });
  }
  return list;
}

/** main() runs the benchmark; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const found = await findWireguardGo();
  let opts: Options | null;
  try {
    opts = parseOptions(args, found[0]?.path);
  } catch (e) {
    say(`net.ts: ${e instanceof Error ? e.message : String(e)}\n\n${usage(found)}`);
    return 2;
  }
  if (opts === null) {
    Deno.stdout.writeSync(new TextEncoder().encode(usage(found)));
    return 0;
  }
  const why = prerequisites(opts.impls, opts.pinned, opts.only);
  if (why !== "") {
    say(`net.ts: cannot run: ${why}`);
    return 2;
  }
  const d = opts.quick ? QUICK : FULL;
  const names = opts.impls.map((i) => i.name);
  const versions: Record<string, string> = {};
  for (const i of opts.impls) versions[i.name] = await firstLine(i.path, ["--version"]);
  const runtimes = new Map(names.map((n) => [n, runtimeOf(versions[n])]));
  const labels = names.map((n) => label(n, versions[n]));
  const rec = new Recorder(names, labels);
  const cleanup = new Cleanup();
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    say("\ninterrupted: removing namespaces, daemons and temporary files …");
    cleanup.all().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const started = new Date();
  const loadBefore = loadavg();
  const cpus = navigator.hardwareConcurrency;
  const cpuModel = cpuModelName();
  const kernel = await firstLine("uname", ["-r"]);
  let poolBackend = "";
  try {
    const dir = await Deno.makeTempDir({ prefix: "gtbench-" });
    cleanup.addDir(dir);
    say(
      `bench:net: ${labels.join(" vs ")}, ${opts.rounds} round(s), groups ${
        [...opts.only].join(",")
      }${opts.quick ? " (quick)" : ""}${
        opts.pinned ? " (pinned)" : ""
      }; load average ${loadBefore} on ${cpus} CPUs`,
    );
    if (Number(loadBefore.split(" ")[0]) > cpus * 0.5) {
      say("bench:net: warning: the machine is busy; expect noisy numbers");
    }
    const inputs: { pool: HandshakePool | null; configs: ConfigInputs | null } = {
      pool: null,
      configs: null,
    };
    if (opts.only.has("handshake")) {
      // Enough for 6 000 handshakes/s in the capacity phase (≈ 6× wireguard-go here) plus
      // the flood; a pool that runs out is noted and the rates are over the time it lasted.
      const count = Math.ceil(d.hsCapacityMs / 1000 * 6_000 + d.hsFloodMs / 1000 * d.hsFloodRate);
      say(`bench:net: building ${count} handshake initiations (done once) …`);
      const t0 = performance.now();
      inputs.pool = await buildPool(dir, 512, count);
      poolBackend = inputs.pool.backend;
      say(`bench:net:   ${((performance.now() - t0) / 1000).toFixed(1)} s with ${poolBackend}`);
    }
    if (opts.only.has("config")) {
      say("bench:net: writing the 130 560-allowed-IP and 10 000-peer configurations …");
      inputs.configs = await buildConfigs(dir);
    }
    const list = steps(opts, d, rec, dir, cleanup, inputs, runtimes);
    const n = opts.impls.length;
    const perRound = n + list.reduce((sum, step) => sum + (step.all ? 1 : n), 0);
    const total = opts.rounds * perRound;
    let k = 0;
    const runId = randomSuffix(4);
    for (let round = 1; round <= opts.rounds && !stopping; round++) {
      const tunnels = new Map<string, Tunnel>();
      try {
        const setupOrder = round % 2 === 1 ? opts.impls : [...opts.impls].reverse();
        for (const impl of setupOrder) {
          k++;
          say(`[${k}/${total}] ${impl.name} setup round ${round} …`);
          const idx = opts.impls.indexOf(impl);
          try {
            const stem = `gb${runId}r${round}i${idx}`;
            const t = await Tunnel.create(impl, stem, dir, cleanup, {
              trace: true,
              pinned: opts.pinned,
            });
            tunnels.set(impl.name, t);
            const rss = idleRss(t);
            rec.add("rss_idle", impl.name, rss);
            const first = await firstPing(t.a, TUN_B);
            rec.add("first_ping", impl.name, first);
            say(
              `      idle RSS ${fmt(rss, 1)} MiB (mean of both daemons); first ping ` +
                `${fmt(first, 2)} ms`,
            );
          } catch (e) {
            rec.note(`${impl.name} round ${round}: setup failed: ${message(e)}`);
            say(`      FAILED: ${message(e)}`);
          }
        }
        for (let s = 0; s < list.length && !stopping; s++) {
          const step = list[s];
          if (step.all) {
            k++;
            say(`[${k}/${total}] ${step.label} round ${round} …`);
            try {
              say(`      ${await step.all(tunnels, round)}`);
            } catch (e) {
              rec.note(`${step.label} round ${round}: ${message(e)}`);
              say(`      FAILED: ${message(e)}`);
            }
            continue;
          }
          const order = (round + s) % 2 === 0 ? opts.impls : [...opts.impls].reverse();
          for (const impl of order) {
            k++;
            say(`[${k}/${total}] ${impl.name} ${step.label} round ${round} …`);
            const t = tunnels.get(impl.name);
            if (!t) {
              say("      skipped (no tunnel)");
              continue;
            }
            try {
              say(`      ${await step.fn!(t, impl, round)}`);
            } catch (e) {
              rec.note(`${impl.name} ${step.label} round ${round}: ${message(e)}`);
              say(`      FAILED: ${message(e)}`);
            }
          }
        }
      } finally {
        for (const t of tunnels.values()) await t.destroy(cleanup);
        await cleanup.sweepSockets();
      }
    }
  } finally {
    await cleanup.all();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }

  const loadAfter = loadavg();
  const crypto = Deno.env.get("GOTATUN_CRYPTO") ?? "(unset: auto)";
  const header = [
    `## bench:net — ${labels[0]} vs ${labels[1]}`,
    "",
    `${started.toISOString()}; ${cpuModel}, nproc ${cpus}; kernel ${kernel}; load average ` +
    `${loadBefore} before, ${loadAfter} after; ${opts.rounds} round(s)${
      opts.quick ? " (quick)" : ""
    }, interleaved; GOTATUN_CRYPTO=${crypto}.`,
    ...opts.impls.map((i) =>
      `- ${labels[names.indexOf(i.name)]}: \`${i.path}\` (${versions[i.name]})`
    ),
    opts.pinned
      ? "- Pinned: each tunnel's daemon in A on CPU 0, in B on CPU 1 (taskset); tools unpinned."
      : "- Not pinned: the scheduler places daemons and tools.",
    `- veth MTU 1500, tunnel MTU 1420. ${testSettings(opts, d, poolBackend)}`,
    "- Cells: median [min–max] over rounds; verdict beyond ±15 % (noise band of this machine).",
    "",
  ];
  const table = markdownTable(rec);
  const notes = rec.notes.length > 0 ? ["", "Notes:", ...rec.notes.map((n) => `- ${n}`)] : [];
  Deno.stdout.writeSync(
    new TextEncoder().encode([...header, table, ...notes, ""].join("\n")),
  );
  const meta = {
    started: started.toISOString(),
    kernel,
    cpus,
    cpuModel,
    pinned: opts.pinned,
    loadBefore,
    loadAfter,
    rounds: opts.rounds,
    quick: opts.quick,
    groups: [...opts.only],
    durations: d,
    impls: opts.impls.map((i, k) => ({ ...i, version: versions[i.name], label: labels[k] })),
    gotatunCrypto: crypto,
    poolBackend,
  };
  if (opts.json) {
    await Deno.writeTextFile(opts.json, JSON.stringify(jsonReport(rec, meta), null, 2) + "\n");
  }
  if (opts.svg) {
    await Deno.writeTextFile(
      opts.svg,
      svgChart(
        rec,
        `bench:net ${started.toISOString().slice(0, 10)}: ${labels[0]} vs ${labels[1]}`,
      ),
    );
  }
  return rec.measured().length > 0 ? 0 : 1;
}

/** One sentence on the durations of the selected tests. */
function testSettings(opts: Options, d: Durations, poolBackend: string): string {
  const parts: string[] = [];
  if (opts.only.has("tcp")) {
    parts.push(
      `iperf3 TCP ${d.tcpSeconds} s${
        d.tcpOmitSeconds > 0 ? ` after ${d.tcpOmitSeconds} s omitted` : ""
      } (GCs: lines of DENO_V8_FLAGS=--trace-gc / GODEBUG=gctrace=1 over that test)`,
    );
  }
  if (opts.only.has("udp")) parts.push(`UDP ${d.udpSeconds} s with 1392-byte payloads`);
  if (opts.only.has("ping")) parts.push(`${d.pingCount} pings ${d.pingInterval * 1000} ms apart`);
  if (opts.only.has("sparse")) {
    parts.push(
      `${d.sparseCount} pings ${d.sparseInterval} s apart, all tunnels at once, staggered`,
    );
  }
  if (opts.only.has("loaded")) {
    parts.push(
      `${d.loadPingCount} pings ${d.pingInterval * 1000} ms apart beside a ${
        Math.ceil(d.loadPingCount * d.pingInterval) + 2
      } s iperf3 TCP stream, from its second 1`,
    );
  }
  if (opts.only.has("idle")) {
    parts.push(`idle CPU over ${d.idleSeconds} s, all tunnels at once, 10 s keepalive`);
  }
  if (opts.only.has("handshake")) {
    parts.push(
      `handshakes: ${d.hsCapacityMs / 1000} s with 32 in flight, then a ${
        d.hsFloodMs / 1000
      } s flood at ${d.hsFloodRate}/s, from 512 keys (initiations built with ${poolBackend})`,
    );
  }
  if (opts.only.has("config")) parts.push("configs on fresh daemons beside the tunnel");
  if (opts.only.has("proxy")) {
    parts.push(
      `proxy: gotatun proxy in A (SOCKS5, a second peer of B's daemon) and kernel TCP via A's ` +
        `TUN to an HTTP server in B, ${d.tcpSeconds} s per throughput/rate test after 1 s, ` +
        `${d.pingCount} small requests for latency, ${IDLE_CONNECTIONS} idle connections, ` +
        `${LOSS_PERCENT} % loss each way by nftables in B`,
    );
  }
  return parts.length > 0 ? parts.join("; ") + "." : "";
}

function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n").slice(0, 3).join(" | ");
}

if (import.meta.main) {
  Deno.exit(await main(taskArgs()));
}
