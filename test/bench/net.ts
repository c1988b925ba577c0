// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `deno task bench:net`: a root network benchmark of gotatun against
 * wireguard-go, each implementation on both ends of a tunnel between two
 * network namespaces joined by a veth pair (MTU 1500; tunnel MTU 1420).
 *
 * ```
 * deno run -A test/bench/net.ts [--rounds N] [--quick] [--only ping,tcp,udp,handshake,config]
 *                               [--json out.json] [--svg out.svg]
 *                               [--impl gotatun=PATH,wireguard-go=PATH]
 * ```
 *
 * Both implementations are set up side by side in every round (fresh
 * namespaces and daemons per round) and the tests are interleaved: each test
 * runs for one implementation and then the other, the order flipping from
 * test to test and round to round, so that the noise of a shared 2-core
 * machine lands on both alike. Every metric is the median over the rounds
 * (5 by default) and is reported with its range and the ratio of the
 * medians, gotatun / wireguard-go (baseline.md: differences under ~15 % are
 * noise here). Progress goes to stderr, the Markdown table to stdout.
 *
 * What is measured and how: see _metrics.ts (iperf3 TCP/UDP, ping
 * percentiles, /proc CPU and RSS, handshakes per second with _flood.ts,
 * `wg setconf` of big configurations). Every external step has a timeout; a
 * failed step is noted under the table and the run goes on. Namespaces,
 * daemons and temporary files (private keys) are removed in `finally` and on
 * SIGINT/SIGTERM.
 *
 * `--impl NAME=PATH,…` replaces the program of a known name (`gotatun`,
 * `wireguard-go`), or, given two new names, compares those two (the first is
 * the candidate of the ratios). `GOTATUN_CRYPTO` is passed through to the
 * daemons. Needs root, /dev/net/tun, ip, wg, iperf3, ping, ss, getconf.
 */
import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { hasTool, isRoot, run } from "../_util/proc.ts";
import { randomSuffix, taskArgs } from "../_util/proc.ts";
import { Cleanup, type Impl, TUN_B, Tunnel } from "./_env.ts";
import {
  configs,
  type Durations,
  firstPing,
  FULL,
  handshakes,
  idleRss,
  peakRss,
  ping,
  QUICK,
  tcp,
  udpOverload,
  udpPaced,
} from "./_metrics.ts";
import { buildConfigs, buildPool, type ConfigInputs, type HandshakePool } from "./_pool.ts";
import { GROUPS, jsonReport, markdownTable, Recorder, svgChart } from "./_report.ts";

const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

const USAGE = `Usage: deno run -A test/bench/net.ts [options]   (root)

  --rounds N        rounds per implementation, interleaved (default 5; --quick: 1)
  --quick           1 round of short tests (1 s iperf3, 50 pings, 1 s handshake phases)
  --only LIST       comma-separated groups: ${GROUPS.join(", ")} (idle RSS and first ping: always)
  --json FILE       write all samples, medians and ratios as JSON
  --svg FILE        write a bar chart of the ratios
  --impl LIST       NAME=PATH,... (default gotatun=${REPO}/dist/gotatun,wireguard-go=/usr/bin/wireguard-go)
  -h, --help
`;

/** Parsed command line. */
export interface Options {
  rounds: number;
  quick: boolean;
  only: Set<string>;
  json: string | null;
  svg: string | null;
  impls: Impl[];
}

/** parseOptions() reads the command line; throws an Error with a message for the user. */
export function parseOptions(args: string[]): Options | null {
  const { values } = parseArgs({
    args,
    options: {
      rounds: { type: "string" },
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      json: { type: "string" },
      svg: { type: "string" },
      impl: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return null;
  const quick = values.quick === true;
  let rounds = quick ? 1 : 5;
  if (values.rounds !== undefined) {
    rounds = Number(values.rounds);
    if (!Number.isInteger(rounds) || rounds < 1 || rounds > 999) {
      throw new Error(`--rounds must be an integer from 1 to 999, got ${values.rounds}`);
    }
  }
  const only = new Set(GROUPS);
  if (values.only !== undefined) {
    only.clear();
    for (const g of values.only.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
      if (!GROUPS.includes(g)) {
        throw new Error(`--only: unknown group "${g}" (known: ${GROUPS.join(", ")})`);
      }
      only.add(g);
    }
  }
  const defaults: Impl[] = [
    { name: "gotatun", path: `${REPO}/dist/gotatun` },
    { name: "wireguard-go", path: "/usr/bin/wireguard-go" },
  ];
  let impls = defaults;
  if (values.impl !== undefined) {
    const given: Impl[] = [];
    for (const part of values.impl.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
      const eq = part.indexOf("=");
      if (eq <= 0 || eq === part.length - 1) {
        throw new Error(`--impl: expected NAME=PATH, got "${part}"`);
      }
      given.push({ name: part.slice(0, eq), path: part.slice(eq + 1) });
    }
    if (given.every((g) => defaults.some((d) => d.name === g.name))) {
      impls = defaults.map((d) => given.find((g) => g.name === d.name) ?? d);
    } else if (given.length === 2 && given[0].name !== given[1].name) {
      impls = given;
    } else {
      throw new Error("--impl: give known names (gotatun, wireguard-go) or exactly two new ones");
    }
  }
  return {
    rounds,
    quick,
    only,
    json: values.json ?? null,
    svg: values.svg ?? null,
    impls,
  };
}

function say(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
}

function fmt(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "—";
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const r = await run(cmd, args, { timeoutMs: 20_000, env: { NO_COLOR: "1" } });
    return (r.stdout || r.stderr).split("\n")[0].trim();
  } catch {
    return "?";
  }
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
  fn: (t: Tunnel, impl: Impl, round: number) => Promise<string>;
}

/** The test list for the selected groups (each returns a one-line summary for the progress). */
function steps(
  opts: Options,
  d: Durations,
  rec: Recorder,
  dir: string,
  cleanup: Cleanup,
  inputs: { pool: HandshakePool | null; configs: ConfigInputs | null },
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
        return `p50 ${fmt(p.p50, 3)} ms, p99 ${fmt(p.p99, 3)} ms (${p.received} replies)`;
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
            }
            return `${fmt(r.mbps, 0)} Mbit/s; daemon CPU ${fmt(r.cpuTx, 0)} % (send) + ${
              fmt(r.cpuRx, 0)
            } % (receive); RSS peak sampled ${fmt(r.rssPeak / 1024, 1)} MiB`;
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
  return list;
}

/** Why the benchmark cannot run here, or "" when it can. */
export function prerequisites(impls: readonly Impl[]): string {
  if (Deno.build.os !== "linux") return "not Linux";
  if (!isRoot()) return "not root (network namespaces need CAP_NET_ADMIN)";
  if (!existsSync("/dev/net/tun")) return "/dev/net/tun is missing";
  const missing = ["ip", "wg", "iperf3", "ping", "ss", "getconf"].filter((t) => !hasTool(t));
  if (missing.length > 0) return `missing tools: ${missing.join(", ")}`;
  for (const i of impls) {
    try {
      const st = Deno.statSync(i.path);
      if (!st.isFile || ((st.mode ?? 0) & 0o111) === 0) {
        return `${i.name}: ${i.path} is not executable`;
      }
    } catch {
      return `${i.name}: ${i.path} does not exist${
        i.name === "gotatun" ? " (run `deno task build`)" : ""
      }`;
    }
  }
  return "";
}

/** main() runs the benchmark; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let opts: Options | null;
  try {
    opts = parseOptions(args);
  } catch (e) {
    say(`net.ts: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
    return 2;
  }
  if (opts === null) {
    Deno.stdout.writeSync(new TextEncoder().encode(USAGE));
    return 0;
  }
  const why = prerequisites(opts.impls);
  if (why !== "") {
    say(`net.ts: cannot run: ${why}`);
    return 2;
  }
  const d = opts.quick ? QUICK : FULL;
  const names = opts.impls.map((i) => i.name);
  const rec = new Recorder(names);
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
  const versions: Record<string, string> = {};
  for (const i of opts.impls) versions[i.name] = await firstLine(i.path, ["--version"]);
  const kernel = await firstLine("uname", ["-r"]);
  let poolBackend = "";
  try {
    const dir = await Deno.makeTempDir({ prefix: "gtbench-" });
    cleanup.addDir(dir);
    say(
      `bench:net: ${names.join(" vs ")}, ${opts.rounds} round(s), groups ${
        [...opts.only].join(",")
      }${opts.quick ? " (quick)" : ""}; load average ${loadBefore} on ${cpus} CPUs`,
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
    const list = steps(opts, d, rec, dir, cleanup, inputs);
    const perRound = opts.impls.length * (1 + list.length);
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
            const t = await Tunnel.create(impl, `gb${runId}r${round}i${idx}`, dir, cleanup);
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
              say(`      ${await step.fn(t, impl, round)}`);
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
    `## bench:net — ${names[0]} vs ${names[1]}`,
    "",
    `${started.toISOString()}; kernel ${kernel}; ${cpus} CPUs; load average ${loadBefore} before, ` +
    `${loadAfter} after; ${opts.rounds} round(s)${opts.quick ? " (quick)" : ""}, interleaved; ` +
    `GOTATUN_CRYPTO=${crypto}.`,
    ...opts.impls.map((i) => `- ${i.name}: \`${i.path}\` (${versions[i.name]})`),
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
    loadBefore,
    loadAfter,
    rounds: opts.rounds,
    quick: opts.quick,
    groups: [...opts.only],
    durations: d,
    impls: opts.impls.map((i) => ({ ...i, version: versions[i.name] })),
    gotatunCrypto: crypto,
    poolBackend,
  };
  if (opts.json) {
    await Deno.writeTextFile(opts.json, JSON.stringify(jsonReport(rec, meta), null, 2) + "\n");
  }
  if (opts.svg) {
    await Deno.writeTextFile(
      opts.svg,
      svgChart(rec, `bench:net ${started.toISOString().slice(0, 10)}: ${names[0]} vs ${names[1]}`),
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
      }`,
    );
  }
  if (opts.only.has("udp")) parts.push(`UDP ${d.udpSeconds} s with 1392-byte payloads`);
  if (opts.only.has("ping")) parts.push(`${d.pingCount} pings ${d.pingInterval * 1000} ms apart`);
  if (opts.only.has("handshake")) {
    parts.push(
      `handshakes: ${d.hsCapacityMs / 1000} s with 32 in flight, then a ${
        d.hsFloodMs / 1000
      } s flood at ${d.hsFloodRate}/s, from 512 keys (initiations built with ${poolBackend})`,
    );
  }
  if (opts.only.has("config")) parts.push("configs on fresh daemons beside the tunnel");
  return parts.length > 0 ? parts.join("; ") + "." : "";
}

function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n").slice(0, 3).join(" | ");
}

if (import.meta.main) {
  Deno.exit(await main(taskArgs()));
}
