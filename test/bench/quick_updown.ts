// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * How long `gotatun up` and `gotatun down` take, against stock wg-quick(8)
 * driving wireguard-go, in a network namespace made for the run (root).
 *
 * ```
 * deno run -A test/bench/quick_updown.ts [--runs N] [--program PATH] [--no-compare]
 * ```
 *
 * Each run times `ip netns exec NS PROGRAM up CONF` and then `… down CONF`
 * from start to exit (both pipes closed), with the same configuration: one
 * address, one peer with an endpoint and a /16 of allowed IPs, no DNS, no
 * hooks. `PROGRAM` defaults to dist/gotatun (`deno task build`). Also timed:
 * `PROGRAM IFACE` alone (the daemon start that `up` waits for), so that the
 * part of `up` spent in `up` itself can be told apart. Reported: median,
 * minimum and maximum over the runs, in milliseconds. The namespace, the
 * daemons and the temporary directory are removed at the end.
 */
import { parseArgs } from "node:util";
import { Netns } from "../_util/netns.ts";
import { hasTool, isRoot, runOk } from "../_util/proc.ts";

const REPO = new URL("../../", import.meta.url).pathname;

interface Timed {
  ms: number;
  code: number;
  stderr: string;
}

async function timed(argv: string[], env: Record<string, string> = {}): Promise<Timed> {
  const start = performance.now();
  const r = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    ms: performance.now() - start,
    code: r.code,
    stderr: new TextDecoder().decode(r.stderr),
  };
}

function stats(xs: readonly number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length % 2 === 1
    ? s[(s.length - 1) / 2]
    : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return `median ${mid.toFixed(0)} ms (min ${s[0].toFixed(0)}, max ${
    s[s.length - 1].toFixed(0)
  }, n=${s.length})`;
}

function say(line: string): void {
  // deno-lint-ignore no-console
  console.log(line);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "10" },
      program: { type: "string", default: `${REPO}dist/gotatun` },
      "no-compare": { type: "boolean", default: false },
    },
  });
  const runs = Number(values.runs);
  if (!isRoot() || !hasTool("ip") || !hasTool("wg")) {
    say("quick_updown: needs root, ip and wg");
    return 1;
  }
  const compare = !values["no-compare"] && hasTool("wg-quick") && hasTool("wireguard-go");
  const ns = await Netns.create("gtqb");
  const dir = await Deno.makeTempDir({ prefix: "gtqb-" });
  const iface = `gtqb${Math.floor(Math.random() * 1e6)}`;
  try {
    const key = (await runOk("wg", ["genkey"])).stdout.trim();
    const peer = (await runOk("wg", ["pubkey"], { stdin: (await runOk("wg", ["genkey"])).stdout }))
      .stdout.trim();
    const conf = `${dir}/${iface}.conf`;
    await Deno.writeTextFile(
      conf,
      `[Interface]\nPrivateKey = ${key}\nAddress = 10.231.0.1/24\n\n` +
        `[Peer]\nPublicKey = ${peer}\nAllowedIPs = 10.232.0.0/16\nEndpoint = 127.0.0.1:51999\n`,
      { mode: 0o600 },
    );
    const inNs = ["ip", "netns", "exec", ns.name];
    const env = { PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin" };
    const check = (what: string, t: Timed) => {
      if (t.code !== 0) throw new Error(`${what} exited ${t.code}:\n${t.stderr}`);
      return t.ms;
    };
    const series: Record<string, number[]> = {};
    // The daemons exit when their link goes; wait so the next step starts clean.
    const settle = async () => {
      for (let j = 0; j < 100 && (await ns.pids()).length > 0; j++) {
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const add = (name: string, ms: number) => (series[name] ??= []).push(ms);
    for (let i = 0; i < runs; i++) {
      add("gotatun up", check("up", await timed([...inNs, values.program, "up", conf], env)));
      add("gotatun down", check("down", await timed([...inNs, values.program, "down", conf], env)));
      await settle();
      const daemon = await timed([...inNs, values.program, iface], env);
      add("daemon start (PROGRAM IFACE)", check("daemon", daemon));
      await runOk("ip", ["-n", ns.name, "link", "delete", "dev", iface]);
      await settle();
      if (compare) {
        const wq = { ...env, WG_QUICK_USERSPACE_IMPLEMENTATION: "wireguard-go" };
        add(
          "wg-quick up (wireguard-go)",
          check("wg-quick up", await timed([...inNs, "wg-quick", "up", conf], wq)),
        );
        add(
          "wg-quick down (wireguard-go)",
          check("wg-quick down", await timed([...inNs, "wg-quick", "down", conf], wq)),
        );
        await settle();
      }
    }
    for (const [name, xs] of Object.entries(series)) say(`${name.padEnd(36)} ${stats(xs)}`);
    return 0;
  } finally {
    await ns.delete();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main());
