// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Network namespaces for root end-to-end tests. Every test works in
 * namespaces it created itself (named `<prefix>-<random>`), joined by veth
 * pairs created from inside them, so the host's interfaces, routes and rules
 * are never touched. {@link withNamespaces} always cleans up: it kills the
 * processes it started and every process still living in its namespaces
 * (daemons that detached from us included), then deletes the namespaces.
 * Plus what tests do inside them: `ip`, sysctl, link counters, listening
 * sockets and ping. The WireGuard daemons and `wg` are in test/_util/wg.ts.
 */
import {
  type Background,
  pidAlive,
  randomSuffix,
  run,
  runOk,
  type RunOptions,
  type RunResult,
  sleep,
  spawnBackground,
  type SpawnOptions,
  waitFor,
} from "./proc.ts";

export { hasTool, isRoot, run, sleep, spawnBackground, waitFor } from "./proc.ts";

/** One network namespace (`ip netns`), created by {@link Netns.create}. */
export class Netns {
  readonly name: string;
  #deleted = false;

  private constructor(name: string) {
    this.name = name;
  }

  /** Netns.create() adds `<prefix>-<6 hex>` and brings its loopback up. */
  static async create(prefix: string): Promise<Netns> {
    const name = `${prefix}-${randomSuffix(6)}`;
    await runOk("ip", ["netns", "add", name], { timeoutMs: 10_000 });
    const ns = new Netns(name);
    try {
      await ns.execOk("ip", "link", "set", "lo", "up");
    } catch (e) {
      await ns.delete();
      throw e;
    }
    return ns;
  }

  /** exec() runs a command inside the namespace (`ip netns exec`), 20 s timeout. */
  exec(cmd: string, ...args: string[]): Promise<RunResult> {
    return run("ip", ["netns", "exec", this.name, cmd, ...args], { timeoutMs: 20_000 });
  }

  /** execWith() is {@link exec} with {@link RunOptions} (env, stdin, timeout). */
  execWith(opts: RunOptions, cmd: string, ...args: string[]): Promise<RunResult> {
    return run("ip", ["netns", "exec", this.name, cmd, ...args], {
      timeoutMs: 20_000,
      ...opts,
    });
  }

  /** execOk() is {@link exec} that throws unless the command exited 0. */
  execOk(cmd: string, ...args: string[]): Promise<RunResult> {
    return runOk("ip", ["netns", "exec", this.name, cmd, ...args], { timeoutMs: 20_000 });
  }

  /** spawn() starts a background process inside the namespace. */
  spawn(opts: SpawnOptions, cmd: string, ...args: string[]): Background {
    return spawnBackground("ip", ["netns", "exec", this.name, cmd, ...args], opts);
  }

  /** pids() lists the processes living in the namespace (`ip netns pids`). */
  async pids(): Promise<number[]> {
    const r = await run("ip", ["netns", "pids", this.name], { timeoutMs: 10_000 });
    if (r.code !== 0) return [];
    return r.stdout.split(/\s+/).filter((s) => s !== "").map(Number).filter((n) =>
      Number.isInteger(n) && n > 1 && n !== Deno.pid
    );
  }

  /** hasLink() tells whether interface `dev` exists in the namespace. */
  async hasLink(dev: string): Promise<boolean> {
    const r = await run("ip", ["-n", this.name, "link", "show", "dev", dev], { timeoutMs: 10_000 });
    return r.code === 0;
  }

  /** ip() runs `ip -n NAME args…` (10 s timeout) and throws unless it exited 0. */
  ip(...args: string[]): Promise<RunResult> {
    return runOk("ip", ["-n", this.name, ...args], { timeoutMs: 10_000 });
  }

  /**
   * addrUp() adds addresses (with prefix; IPv6 ones without DAD, so they are
   * usable at once) to link `dev` and sets it up.
   */
  async addrUp(dev: string, ...cidrs: string[]): Promise<void> {
    for (const addr of cidrs) {
      await this.ip("address", "add", addr, "dev", dev, ...(addr.includes(":") ? ["nodad"] : []));
    }
    await this.ip("link", "set", dev, "up");
  }

  /** sysctl() writes `key=value` inside the namespace; throws unless it worked. */
  async sysctl(key: string, value: string): Promise<void> {
    await runOk("ip", ["netns", "exec", this.name, "sysctl", "-qw", `${key}=${value}`], {
      timeoutMs: 10_000,
    });
  }

  /** mtu() is the MTU of link `dev`. */
  async mtu(dev: string): Promise<number> {
    const r = await this.ip("-o", "link", "show", "dev", dev);
    const m = / mtu (\d+) /.exec(r.stdout);
    if (!m) throw new Error(`no mtu in: ${r.stdout}`);
    return Number(m[1]);
  }

  /** linkStats() is the byte and packet counters of link `dev` (`ip -s -j`). */
  async linkStats(dev: string): Promise<LinkStats> {
    const r = await this.ip("-s", "-j", "link", "show", "dev", dev);
    const { rx, tx } = JSON.parse(r.stdout)[0].stats64;
    return { rxBytes: rx.bytes, txBytes: tx.bytes, rxPackets: rx.packets, txPackets: tx.packets };
  }

  /**
   * listening() waits until something listens on `proto` port `port` in the
   * namespace (`ss`); false after `timeoutMs`.
   */
  listening(proto: "tcp" | "udp", port: number, timeoutMs = 10_000): Promise<boolean> {
    const flag = proto === "tcp" ? "-Htnl" : "-Hunl";
    return waitFor(
      async () => (await this.exec("ss", flag, `sport = :${port}`)).stdout.trim() !== "",
      timeoutMs,
      50,
    );
  }

  /**
   * delete() kills (TERM, then KILL after 3 s) every process still in the
   * namespace, which can only be processes a test started there, then deletes
   * it. Idempotent; never throws.
   */
  async delete(): Promise<void> {
    if (this.#deleted) return;
    this.#deleted = true;
    try {
      let pids = await this.pids();
      for (const pid of pids) killPid(pid, "SIGTERM");
      const deadline = Date.now() + 3000;
      while (pids.length > 0 && Date.now() < deadline) {
        await sleep(50);
        pids = pids.filter(pidAlive);
      }
      for (const pid of pids) killPid(pid, "SIGKILL");
      await run("ip", ["netns", "del", this.name], { timeoutMs: 10_000 });
    } catch {
      // best effort
    }
  }
}

/** Counters of one link, from {@link Netns.linkStats}. */
export interface LinkStats {
  rxBytes: number;
  txBytes: number;
  rxPackets: number;
  txPackets: number;
}

/** deleteAll() deletes every namespace of `list` (nulls skipped); never throws. */
export async function deleteAll(list: readonly (Netns | null | undefined)[]): Promise<void> {
  for (const ns of list) await ns?.delete();
}

/** Result of {@link ping}. */
export interface PingResult {
  sent: number;
  received: number;
  output: string;
}

/** Options of {@link ping}. */
export interface PingOptions {
  /** `-f` (flood; root only). */
  flood?: boolean;
  /** `-i` seconds between requests (ping's default, 1 s, when absent). */
  intervalS?: number;
  /** `-W` seconds to wait for each reply (default 1). */
  waitS?: number;
}

/**
 * ping() sends `count` echo requests to `target` from `ns` and counts the
 * replies; never throws on loss (the caller asserts on the counts).
 */
export async function ping(
  ns: Netns,
  target: string,
  count: number,
  opts: PingOptions = {},
): Promise<PingResult> {
  const waitS = opts.waitS ?? 1;
  const args = ["-n", "-q", "-c", String(count), "-W", String(waitS)];
  if (opts.intervalS !== undefined) args.push("-i", String(opts.intervalS));
  if (opts.flood) args.push("-f");
  const timeoutMs = 20_000 + count * ((opts.intervalS ?? 1) + waitS) * 1000;
  const r = await ns.execWith({ timeoutMs }, "ping", ...args, target);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  return {
    sent: m ? Number(m[1]) : 0,
    received: m ? Number(m[2]) : 0,
    output: r.stdout + r.stderr,
  };
}

/**
 * pingUntil() pings once at a time (`-i 0.2 -W 1`) until a reply comes, for
 * at most `limit.tries` pings or `limit.timeoutMs`; the milliseconds it took,
 * or null when no reply came.
 */
export async function pingUntil(
  ns: Netns,
  target: string,
  limit: { tries: number } | { timeoutMs: number },
): Promise<number | null> {
  const t0 = Date.now();
  for (let i = 0;; i++) {
    if ("tries" in limit ? i >= limit.tries : Date.now() - t0 >= limit.timeoutMs) return null;
    const r = await ping(ns, target, 1, { intervalS: 0.2, waitS: 1 });
    if (r.received === 1) return Date.now() - t0;
  }
}

function killPid(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Options of {@link vethPair}. */
export interface VethOptions {
  /** Interface names (default `veth-a` / `veth-b`; ≤ 15 bytes). */
  nameA?: string;
  nameB?: string;
  /** Addresses with prefix, e.g. "192.0.2.1/24" or "fd00::1/64"; several allowed. */
  addrA?: string | string[];
  addrB?: string | string[];
  mtu?: number;
}

/**
 * vethPair() joins two namespaces with a veth pair, created from inside `a`
 * with its peer placed straight into `b` (never in the host namespace),
 * assigns the addresses and brings both ends up. IPv6 DAD is disabled on
 * both ends so addresses are usable at once.
 */
export async function vethPair(a: Netns, b: Netns, opts: VethOptions = {}): Promise<void> {
  const nameA = opts.nameA ?? "veth-a";
  const nameB = opts.nameB ?? "veth-b";
  await runOk("ip", [
    "-n",
    a.name,
    "link",
    "add",
    nameA,
    "type",
    "veth",
    "peer",
    "name",
    nameB,
    "netns",
    b.name,
  ]);
  for (const [ns, dev, addrs] of [[a, nameA, opts.addrA], [b, nameB, opts.addrB]] as const) {
    await ns.exec("sysctl", "-qw", `net.ipv6.conf.${dev}.accept_dad=0`);
    if (opts.mtu !== undefined) await ns.ip("link", "set", dev, "mtu", String(opts.mtu));
    await ns.addrUp(
      dev,
      ...(addrs === undefined ? [] : typeof addrs === "string" ? [addrs] : addrs),
    );
  }
}

/** What {@link withNamespaces} gives the test body. */
export interface NamespaceContext {
  /** The namespaces, in creation order. */
  readonly namespaces: readonly Netns[];
  /** Starts a background process in `ns` (killed at cleanup). */
  spawn(ns: Netns, cmd: string, args?: readonly string[], opts?: SpawnOptions): Background;
  /** Starts a background process in our own namespace (killed at cleanup). */
  spawnHere(cmd: string, args?: readonly string[], opts?: SpawnOptions): Background;
  /** Registers a cleanup step; steps run last-in first-out, before namespaces go. */
  defer(fn: () => void | Promise<void>): void;
}

/**
 * withNamespaces() creates `n` namespaces named `<prefix>-<random>`, runs
 * `fn`, and whatever happens kills every process it started, runs the
 * deferred steps, kills whatever still lives in the namespaces and deletes
 * them.
 */
export async function withNamespaces<T>(
  prefix: string,
  n: number,
  fn: (ctx: NamespaceContext) => Promise<T>,
): Promise<T> {
  const namespaces: Netns[] = [];
  const started: Background[] = [];
  const deferred: (() => void | Promise<void>)[] = [];
  try {
    for (let i = 0; i < n; i++) namespaces.push(await Netns.create(prefix));
    const ctx: NamespaceContext = {
      namespaces,
      spawn(ns, cmd, args = [], opts = {}) {
        const bg = ns.spawn(opts, cmd, ...args);
        started.push(bg);
        return bg;
      },
      spawnHere(cmd, args = [], opts = {}) {
        const bg = spawnBackground(cmd, args, opts);
        started.push(bg);
        return bg;
      },
      defer(step) {
        deferred.push(step);
      },
    };
    return await fn(ctx);
  } finally {
    await Promise.all(started.map((bg) => bg.kill().catch(() => {})));
    for (const step of deferred.reverse()) {
      try {
        await step();
      } catch {
        // keep cleaning
      }
    }
    await Promise.all(namespaces.map((ns) => ns.delete()));
  }
}
