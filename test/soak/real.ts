// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The real soak (`deno task soak:real`, root): two gotatun daemons in two
 * network namespaces joined by a veth pair, iperf3 TCP through the tunnel for
 * `--minutes N` (default 10), with both daemons' RSS, CPU and the tunnel's
 * liveness (a ping) sampled every `--every S` seconds (default 30). It prints
 * a table and fails (exit 1) when traffic stalls, a ping goes unanswered, or
 * RSS keeps growing after the first samples (more than `--max-growth` MiB,
 * default 20, between the second sample and the last).
 *
 * `deno run -A test/soak/real.ts [--minutes N] [--every S] [--impl PATH]`
 */
import { parseArgs } from "node:util";
import { Cleanup, cpuTicks, type Impl, memory, TUN_B, Tunnel } from "../bench/_env.ts";
import { taskArgs } from "../_util/proc.ts";
import { missing } from "../_util/needs.ts";
import { ping } from "../_util/netns.ts";
import { wg } from "../_util/wg.ts";

function say(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
}

/** Runs the soak; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: "string", default: "10" },
      every: { type: "string", default: "30" },
      impl: { type: "string", default: new URL("../../dist/gotatun", import.meta.url).pathname },
      "max-growth": { type: "string", default: "20" },
    },
  });
  const minutes = Number(values.minutes), every = Number(values.every);
  const maxGrowth = Number(values["max-growth"]);
  const lacking = missing({ root: true, tun: true, tools: ["ip", "iperf3", "wg", "ping"] });
  if (lacking.length > 0) {
    say(`soak: missing ${lacking.join("; ")}`);
    return 1;
  }
  const impl: Impl = { name: "gotatun", path: values.impl! };
  const cleanup = new Cleanup();
  const dir = await Deno.makeTempDir({ prefix: "gtsoak" });
  const onSignal = () => {
    cleanup.all().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  let failed = false;
  try {
    const t = await Tunnel.create(impl, `gtsk${Math.floor(Math.random() * 1e4)}`, dir, cleanup);
    const server = t.b.spawn({}, "iperf3", "-s", "-1");
    if (!(await t.b.listening("tcp", 5201))) throw new Error("iperf3 -s did not listen");
    const seconds = Math.round(minutes * 60);
    // deno-fmt-ignore
    const client = t.a.execWith({ timeoutMs: (seconds + 120) * 1000 },
      "iperf3", "-c", TUN_B, "-t", String(seconds), "-i", String(every), "-f", "m");
    const tps = 100;
    const rows: string[] = [];
    const rss: number[] = [];
    let lastCpu = cpuTicks(t.da.pid) + cpuTicks(t.db.pid);
    const start = Date.now();
    rows.push("| t (s) | RSS A (MiB) | RSS B (MiB) | CPU both (% of a core) | ping |");
    rows.push("| ---: | ---: | ---: | ---: | --- |");
    while (Date.now() - start < seconds * 1000) {
      await new Promise((r) => setTimeout(r, every * 1000));
      const ma = memory(t.da.pid), mb = memory(t.db.pid);
      const cpu = cpuTicks(t.da.pid) + cpuTicks(t.db.pid);
      const pct = ((cpu - lastCpu) / tps / every) * 100;
      lastCpu = cpu;
      const ok = (await ping(t.a, TUN_B, 1, { waitS: 2 })).received === 1;
      if (!ok) failed = true;
      rss.push(Math.max(ma.rss, mb.rss));
      const row = `| ${Math.round((Date.now() - start) / 1000)} | ${(ma.rss / 1024).toFixed(1)} | ${
        (mb.rss / 1024).toFixed(1)
      } | ${pct.toFixed(0)} | ${ok ? "ok" : "LOST"} |`;
      rows.push(row);
      say(`soak: ${row}`);
    }
    const r = await client;
    await server.kill();
    const intervals = [...r.stdout.matchAll(/sec\s+[\d.]+ \w?Bytes\s+([\d.]+) Mbits\/sec/g)].map((
      m,
    ) => Number(m[1]));
    const summary = r.stdout.split("\n").filter((l) => /sender|receiver/.test(l)).join("\n");
    const stalled = intervals.slice(0, -2).some((v) => v < 1);
    if (stalled || r.code !== 0) failed = true;
    const growth = rss.length > 2 ? (rss[rss.length - 1] - rss[1]) / 1024 : 0;
    if (growth > maxGrowth) failed = true;
    const transfer = await wg(["show", t.da.ifname, "transfer"], { check: false });
    // deno-lint-ignore no-console
    console.log([
      `## soak: ${minutes} min of iperf3 TCP through ${impl.path}`,
      "",
      ...rows,
      "",
      "```",
      summary,
      `iperf3 ${every}-s intervals (Mbit/s): min ${Math.min(...intervals)} max ${
        Math.max(...intervals)
      }`,
      `wg show transfer (A): ${transfer.stdout.trim()}`,
      `RSS growth after warm-up: ${growth.toFixed(1)} MiB (limit ${maxGrowth})`,
      `verdict: ${failed ? "FAILED" : "ok"}`,
      "```",
    ].join("\n"));
  } catch (e) {
    say(`soak: ${(e as Error).message}`);
    failed = true;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    await cleanup.all();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(taskArgs()));
