// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The command line of the network benchmark (net.ts): options, help text,
 * and the check of what the benchmark needs.
 */
import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { hasTool, isRoot } from "../_util/proc.ts";
import type { Impl } from "./_env.ts";
import type { Found } from "./_impls.ts";
import { GROUPS } from "./_report.ts";

const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** The help text; `found` are the wireguard-go programs found, newest first. */
export function usage(found: readonly Found[]): string {
  const wgGo = found.length === 0
    ? "  (no wireguard-go found)"
    : found.map((f, i) => `  ${i === 0 ? "*" : " "} ${f.path}: ${f.versionLine}`).join("\n");
  return `Usage: deno run -A test/bench/net.ts [options]   (root)

  --rounds N        rounds per implementation, interleaved (default 5; --quick: 1)
  --quick           1 round of short tests (1 s iperf3, 100 pings, 4 sparse pings, 10 s idle)
  --only LIST       comma-separated groups: ${GROUPS.join(", ")}
                    (idle RSS and first ping: always; proxy: \`gotatun proxy\` vs TUN,
                    needs nft; alone: --only proxy)
  --pinned          pin each of the tunnel's two daemons to its own CPU (taskset -c 0 in A,
                    -c 1 in B; their threads inherit it); iperf3 and ping stay unpinned.
                    Compare with a run without it to see what scheduling costs.
  --json FILE       write all samples, medians and ratios as JSON
  --svg FILE        write a bar chart of the ratios
  --impl LIST       NAME=PATH,... (default gotatun=${REPO}/dist/gotatun,
                    wireguard-go=the newest wireguard-go found, * below)
  --extra LIST      NAME=PATH,... more columns after the two compared ones (no ratios),
                    e.g. wireguard-go-2022=/usr/bin/wireguard-go
  -h, --help

wireguard-go programs found (by their --version):
${wgGo}
`;
}

/** Parsed command line. */
export interface Options {
  rounds: number;
  quick: boolean;
  pinned: boolean;
  only: Set<string>;
  json: string | null;
  svg: string | null;
  /** The two compared (candidate, reference), then the extra columns. */
  impls: Impl[];
}

/** `NAME=PATH,…` of `--flag`. */
function pairs(flag: string, value: string): Impl[] {
  const out: Impl[] = [];
  for (const part of value.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const eq = part.indexOf("=");
    if (eq <= 0 || eq === part.length - 1) {
      throw new Error(`${flag}: expected NAME=PATH, got "${part}"`);
    }
    out.push({ name: part.slice(0, eq), path: part.slice(eq + 1) });
  }
  return out;
}

/**
 * parseOptions() reads the command line; throws an Error with a message for
 * the user. `wireguardGo` is the default program of that name.
 */
export function parseOptions(
  args: string[],
  wireguardGo = "/usr/bin/wireguard-go",
): Options | null {
  const { values } = parseArgs({
    args,
    options: {
      rounds: { type: "string" },
      quick: { type: "boolean", default: false },
      pinned: { type: "boolean", default: false },
      only: { type: "string" },
      json: { type: "string" },
      svg: { type: "string" },
      impl: { type: "string" },
      extra: { type: "string" },
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
    { name: "wireguard-go", path: wireguardGo },
  ];
  let impls = defaults;
  if (values.impl !== undefined) {
    const given = pairs("--impl", values.impl);
    if (given.every((g) => defaults.some((d) => d.name === g.name))) {
      impls = defaults.map((d) => given.find((g) => g.name === d.name) ?? d);
    } else if (given.length === 2 && given[0].name !== given[1].name) {
      impls = given;
    } else {
      throw new Error("--impl: give known names (gotatun, wireguard-go) or exactly two new ones");
    }
  }
  for (const e of values.extra === undefined ? [] : pairs("--extra", values.extra)) {
    if (impls.some((i) => i.name === e.name)) throw new Error(`--extra: "${e.name}" is taken`);
    impls = [...impls, e];
  }
  return {
    rounds,
    quick,
    pinned: values.pinned === true,
    only,
    json: values.json ?? null,
    svg: values.svg ?? null,
    impls,
  };
}

/** Why the benchmark cannot run here, or "" when it can. */
export function prerequisites(
  impls: readonly Impl[],
  pinned = false,
  groups: ReadonlySet<string> = new Set(),
): string {
  if (Deno.build.os !== "linux") return "not Linux";
  if (!isRoot()) return "not root (network namespaces need CAP_NET_ADMIN)";
  if (!existsSync("/dev/net/tun")) return "/dev/net/tun is missing";
  if (pinned && navigator.hardwareConcurrency < 2) return "--pinned needs 2 CPUs";
  const tools = ["ip", "wg", "iperf3", "ping", "ss", "getconf", "stdbuf"];
  if (pinned) tools.push("taskset");
  if (groups.has("proxy")) tools.push("nft");
  const missing = tools.filter((t) => !hasTool(t));
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
