// SPDX-License-Identifier: Apache-2.0
/**
 * Private helpers for the end-to-end suite in test/e2e/, on top of the shared toolkit
 * (namespaces, veths, ping: test/_util/netns.ts; the program under test, daemons, keys, `wg`:
 * test/_util/wg.ts; commands with timeouts: test/_util/proc.ts): the skip decision, the
 * reference peer, `wg show` parsers, socket drop counters and iperf3.
 *
 * Program under test: `GOTATUN_E2E_PROGRAM` (an absolute path to a wireguard-go compatible
 * daemon: `PROGRAM [-f] IFNAME`, daemonizes, serves /var/run/wireguard/IFNAME.sock, exits when
 * its link is deleted). Without it, `<repo>/dist/gotatun` is used when it exists; otherwise every
 * e2e test is ignored and the reason is printed once (under CI=true they fail instead). The
 * reference peer is always wireguard-go (`GOTATUN_E2E_REFERENCE`, default
 * `/usr/bin/wireguard-go`).
 *
 * Every namespace made here is named `gte2e-<6 random digits>-<tag>-<random>`, and every
 * interface `gte<digits>` (at most 15 characters, IFNAMSIZ − 1). The UAPI socket directory is
 * global (not per network namespace), so interface names carry the random digits too; that
 * keeps parallel test files, and other users of /var/run/wireguard, apart.
 *
 * Processes: the daemons fork away from their launcher, so they are found with
 * `ip netns pids` in namespaces this suite created (only processes we started live there) and
 * are killed by PID when the namespace is deleted (`Netns.delete`, `deleteAll`). Every external
 * command runs with a timeout; on expiry the child is killed with SIGKILL and its pipes are
 * abandoned, so a descendant holding our stdout cannot hang a test.
 *
 * @module
 */

import { type Netns, vethPair } from "../_util/netns.ts";
import { unmet } from "../_util/needs.ts";
import { chooseProgram, genKeyPair, wg } from "../_util/wg.ts";

/** Where the reference implementation lives. */
export const REFERENCE: string = Deno.env.get("GOTATUN_E2E_REFERENCE") ?? "/usr/bin/wireguard-go";

/** Transfer sizes grow from the bounded defaults to upstream's 1 GB with GOTATUN_E2E_BIG=1. */
export const BIG: boolean = Deno.env.get("GOTATUN_E2E_BIG") === "1";

/**
 * Decides whether the e2e tests of one file can run (test/_util/needs.ts): root, /dev/net/tun,
 * `tools`, the reference peer and a program under test. Returns the reason to skip, or "" when
 * they run; under CI=true a missing piece fails instead.
 */
export function skipReason(fileLabel: string, tools: readonly string[]): string {
  const choice = chooseProgram();
  return unmet(`test/e2e/${fileLabel}`, {
    root: true,
    tun: true,
    tools: [...tools, REFERENCE],
    other: { [choice.reason]: choice.program !== null },
  });
}

/** Parses `wg show IF transfer`: public key → {rx, tx}. */
export async function transfer(ifname: string): Promise<Map<string, { rx: number; tx: number }>> {
  const r = await wg(["show", ifname, "transfer"]);
  const m = new Map<string, { rx: number; tx: number }>();
  for (const line of r.stdout.split("\n")) {
    const [pk, rx, tx] = line.split("\t");
    if (pk && rx !== undefined && tx !== undefined) m.set(pk, { rx: Number(rx), tx: Number(tx) });
  }
  return m;
}

/** Parses `wg show IF endpoints`: public key → endpoint text ("(none)" when unset). */
export async function endpoints(ifname: string): Promise<Map<string, string>> {
  const r = await wg(["show", ifname, "endpoints"]);
  const m = new Map<string, string>();
  for (const line of r.stdout.split("\n")) {
    const [pk, ep] = line.split("\t");
    if (pk && ep !== undefined) m.set(pk, ep);
  }
  return m;
}

/**
 * Datagrams the kernel dropped on the UDP sockets bound to `port` inside `ns` because their
 * receive buffers were full (the `d` field of `ss -m` skmem, i.e. sk_drops), summed over the
 * IPv4 and IPv6 sockets. These never reach the daemon, so the daemon cannot count them.
 */
export async function udpSocketDrops(ns: Netns, port: number): Promise<number> {
  const r = await ns.execWith({ timeoutMs: 5000 }, "ss", "-Huanm", `sport = :${port}`);
  let drops = 0;
  for (const m of r.stdout.matchAll(/skmem:\([^)]*\bd(\d+)\)/g)) drops += Number(m[1]);
  return drops;
}

/** One iperf3 run between a server namespace and a client namespace. */
export interface IperfSpec {
  server: Netns;
  client: Netns;
  /** Address the server binds and the client connects to. */
  address: string;
  port: number;
  /** Extra client arguments, e.g. ["-n", "100M"] or ["-u", "-b", "50M", "-t", "3"]. */
  clientArgs: readonly string[];
  timeoutMs: number;
}

/** Runs an iperf3 test; returns the client's JSON report. Kills the server in every case. */
export async function iperf(spec: IperfSpec): Promise<IperfReport> {
  const server = spec.server.spawn(
    { output: "piped" },
    "iperf3",
    "-s",
    "-1",
    "-B",
    spec.address,
    "-p",
    String(spec.port),
  );
  try {
    if (!(await spec.server.listening("tcp", spec.port))) {
      const o = server.output();
      throw new Error(`iperf3 server did not listen on ${spec.port}: ${o.stdout}${o.stderr}`);
    }
    const r = await spec.client.execWith(
      { timeoutMs: spec.timeoutMs },
      "iperf3",
      "-J",
      "-c",
      spec.address,
      "-p",
      String(spec.port),
      ...spec.clientArgs,
    );
    let report: IperfReport;
    try {
      report = JSON.parse(r.stdout);
    } catch {
      throw new Error(`iperf3 client gave no JSON (exit ${r.code}): ${r.stdout}${r.stderr}`);
    }
    if (r.code !== 0 || report.error) {
      throw new Error(`iperf3 client failed (exit ${r.code}): ${report.error ?? r.stderr}`);
    }
    return report;
  } finally {
    await server.kill();
  }
}

/** The part of iperf3's -J report that the tests read. */
export interface IperfReport {
  error?: string;
  end: {
    sum_sent?: { bytes: number; bits_per_second: number };
    sum_received?: { bytes: number; bits_per_second: number };
    sum?: {
      bytes: number;
      bits_per_second: number;
      packets?: number;
      lost_packets?: number;
      lost_percent?: number;
    };
  };
}

/** Makes a private temporary directory (removed by the caller). */
export function tempDir(): Promise<string> {
  return Deno.makeTempDir({ prefix: "gte2e-" });
}

/** Removes a directory tree, ignoring errors. */
export async function removeDir(dir: string | null): Promise<void> {
  if (!dir) return;
  try {
    await Deno.remove(dir, { recursive: true });
  } catch {
    // already gone
  }
}

/** Formats a byte count for logs. */
export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** Logs a line from a test (tests may print; src may not). */
export function log(msg: string): void {
  // deno-lint-ignore no-console
  console.log(`    [e2e] ${msg}`);
}

/** The veth pair {@link connectPair} expects: `<tag>a` 192.0.2.1/24 in `ns1`, `<tag>b` 192.0.2.2/24 in `ns2`. */
export function pairVeth(ns1: Netns, ns2: Netns, tag: string): Promise<void> {
  return vethPair(ns1, ns2, {
    nameA: `${tag}a`,
    nameB: `${tag}b`,
    addrA: "192.0.2.1/24",
    addrB: "192.0.2.2/24",
  });
}

/**
 * Configures a tunnel between two running daemons `wg1` (in `ns1`, 198.51.100.1, port 10000,
 * knowing the other's endpoint 192.0.2.2:20000) and `wg2` (in `ns2`, 198.51.100.2, port 20000)
 * over the veth pair of {@link pairVeth}, and brings both links up. Keys go to `dir`.
 */
export async function connectPair(
  ns1: Netns,
  ns2: Netns,
  wg1: string,
  wg2: string,
  dir: string,
): Promise<void> {
  const k1 = await genKeyPair(dir), k2 = await genKeyPair(dir);
  await ns1.ip("addr", "add", "198.51.100.1/24", "dev", wg1);
  await ns2.ip("addr", "add", "198.51.100.2/24", "dev", wg2);
  // deno-fmt-ignore
  await wg(["set", wg1, "private-key", k1.privateFile, "listen-port", "10000",
    "peer", k2.publicKey, "allowed-ips", "198.51.100.2/32", "endpoint", "192.0.2.2:20000"]);
  // deno-fmt-ignore
  await wg(["set", wg2, "private-key", k2.privateFile, "listen-port", "20000",
    "peer", k1.publicKey, "allowed-ips", "198.51.100.1/32"]);
  await ns1.ip("link", "set", wg1, "up");
  await ns2.ip("link", "set", wg2, "up");
}
