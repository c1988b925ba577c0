// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The test bed of the network benchmark (test/bench/net.ts): two network
 * namespaces joined by a veth pair (MTU 1500), a WireGuard daemon in each
 * (tunnel MTU 1420), configured with stock `wg setconf`. Daemons are
 * started the way wg-quick starts them (`PROGRAM IFNAME`, which
 * daemonizes), except the tunnel's two in net.ts, which run as
 * `PROGRAM -f IFNAME` with their output (GC traces) in a file, optionally
 * pinned to a CPU each. Plus the per-process counters the metrics read from
 * /proc (CPU ticks, RSS).
 *
 * ```
 *  ns A (gtbench-xxxxxx)                              ns B (gtbench-yyyyyy)
 *  <if>a 10.241.0.1/24 ── daemon ── vb0 192.168.241.1 ═══ vb1 192.168.241.2 ── daemon ── <if>b 10.241.0.2/24
 *                                          veth, MTU 1500              (iperf3 -s -1 per test)
 * ```
 *
 * Every namespace and UAPI socket made here is registered in a
 * {@link Cleanup}, which kills whatever lives in the namespaces (daemons
 * may detach from us, so they are found with `ip netns pids`; only processes we
 * started live there) and deletes them; net.ts runs it in `finally` and on
 * SIGINT/SIGTERM. Interface names carry a random run id because the UAPI
 * socket directory /var/run/wireguard is global, not per namespace.
 */
import { Netns, run, vethPair, waitFor } from "../_util/netns.ts";
import { pidAlive, type RunResult } from "../_util/proc.ts";
import {
  launchDaemon,
  socketAnswers,
  startForeground,
  uapiSocket,
  wg as runWg,
} from "../_util/wg.ts";
import { GcLog } from "./_gc.ts";
import { useBestCryptoBackend } from "../../src/crypto/select.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { systemRng } from "../../src/clock.ts";

/** An implementation under comparison: a wireguard-go compatible daemon. */
export interface Impl {
  name: string;
  path: string;
}

/** Outer (veth) addresses and the tunnel addresses of the main pair. */
export const VETH_A = "192.168.241.1";
export const VETH_B = "192.168.241.2";
export const TUN_A = "10.241.0.1";
export const TUN_B = "10.241.0.2";
export const TUN_MTU = 1420;
export const VETH_MTU = 1500;
/** UDP ports of the daemons (all on the veth addresses). */
export const PORT_MAIN = 51820;
export const PORT_FLOOD = 51830;
export const PORT_CONFIG = 51840;
export const PORT_INITIATOR = 51841;
/** iperf3's port inside B. */
export const IPERF_PORT = 5201;

/** Everything that must go when the benchmark ends, however it ends. */
export class Cleanup {
  #namespaces = new Set<Netns>();
  #sockets = new Set<string>();
  #dirs = new Set<string>();

  addNetns(ns: Netns): void {
    this.#namespaces.add(ns);
  }
  addSocket(ifname: string): void {
    this.#sockets.add(uapiSocket(ifname));
  }
  addDir(dir: string): void {
    this.#dirs.add(dir);
  }

  /** Deletes one namespace now (processes in it first). */
  async dropNetns(ns: Netns): Promise<void> {
    await ns.delete();
    this.#namespaces.delete(ns);
  }

  /**
   * Removes the UAPI socket files of our interfaces that no daemon serves
   * any more (a daemon killed with SIGKILL leaves its file behind).
   */
  async sweepSockets(): Promise<void> {
    for (const path of this.#sockets) {
      if (!(await socketAnswers(path))) {
        try {
          await Deno.remove(path);
        } catch {
          // gone
        }
        this.#sockets.delete(path);
      }
    }
  }

  /** all() runs everything; idempotent, never throws. */
  async all(): Promise<void> {
    await Promise.all([...this.#namespaces].map((ns) => ns.delete()));
    this.#namespaces.clear();
    await this.sweepSockets().catch(() => {});
    for (const dir of this.#dirs) {
      try {
        await Deno.remove(dir, { recursive: true });
      } catch {
        // gone
      }
    }
    this.#dirs.clear();
  }
}

export { uapiSocket };

/** toBase64() of a key, as `wg` prints it. */
export function toBase64(bytes: Uint8Array): string {
  return bytes.toBase64();
}

/** A Curve25519 key pair, both halves also in base64. */
export interface KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  privateB64: string;
  publicB64: string;
}

let cryptoReady = false;

/**
 * newKeyPair() makes a key pair with the project's crypto (libcrypto when
 * it loads, else noble; chosen once, independently of GOTATUN_CRYPTO, which
 * is for the daemon under test).
 */
export function newKeyPair(): KeyPair {
  if (!cryptoReady) {
    useBestCryptoBackend("auto");
    cryptoReady = true;
  }
  const priv = generatePrivateKey(systemRng);
  const pub = publicKey(priv);
  return { privateKey: priv, publicKey: pub, privateB64: toBase64(priv), publicB64: toBase64(pub) };
}

// ---------------------------------------------------------------------------------------------
// /proc

let clockTicks = 0;

/** CLK_TCK (the unit of utime/stime in /proc/<pid>/stat), from `getconf`. */
export async function ticksPerSecond(): Promise<number> {
  if (clockTicks > 0) return clockTicks;
  const r = await run("getconf", ["CLK_TCK"], { timeoutMs: 5000 });
  const n = Number(r.stdout.trim());
  clockTicks = Number.isInteger(n) && n > 0 ? n : 100;
  return clockTicks;
}

/** cpuTicks() is utime + stime of a process (all its threads), or NaN when it is gone. */
export function cpuTicks(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after "(comm)": state is index 0, utime index 11, stime index 12 (proc(5)).
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return NaN;
  }
}

/** Resident memory of a process in KiB: current (VmRSS) and peak (VmHWM); NaN when gone. */
export function memory(pid: number): { rss: number; hwm: number } {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return { rss: rss ? Number(rss[1]) : NaN, hwm: hwm ? Number(hwm[1]) : NaN };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** Samples the VmRSS of some processes every `ms` until stopped; returns the peak per PID. */
export class RssSampler {
  #peak = new Map<number, number>();
  #timer: ReturnType<typeof setInterval>;

  constructor(pids: readonly number[], ms = 100) {
    const tick = () => {
      for (const pid of pids) {
        const { rss } = memory(pid);
        if (Number.isFinite(rss)) this.#peak.set(pid, Math.max(this.#peak.get(pid) ?? 0, rss));
      }
    };
    tick();
    this.#timer = setInterval(tick, ms);
  }

  /** stop() ends sampling and returns the peak VmRSS (KiB) seen per PID. */
  stop(): Map<number, number> {
    clearInterval(this.#timer);
    return this.#peak;
  }
}

/**
 * findDaemon() finds the PID of the process serving `ifname` inside `ns`:
 * the one whose last argument is the interface name and which holds
 * /dev/net/tun open (the launcher has exited by then; for gotatun this is
 * the detached `deno` child, for wireguard-go the re-executed child).
 */
export async function findDaemon(ns: Netns, ifname: string, timeoutMs = 10_000): Promise<number> {
  let found = 0;
  await waitFor(
    async () => {
      for (const pid of await ns.pids()) {
        try {
          const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter((s) =>
            s !== ""
          );
          if (argv[argv.length - 1] !== ifname) continue;
          for (const fd of Deno.readDirSync(`/proc/${pid}/fd`)) {
            if (Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`) === "/dev/net/tun") {
              found = pid;
              return true;
            }
          }
        } catch {
          // exited meanwhile
        }
      }
      return false;
    },
    timeoutMs,
    50,
  );
  if (found === 0) throw new Error(`no daemon process for ${ifname} in ${ns.name}`);
  return found;
}

// ---------------------------------------------------------------------------------------------
// Daemons and wg

/** A running daemon we started. */
export interface Daemon {
  ns: Netns;
  ifname: string;
  pid: number;
  /** Its GC trace (only for a daemon started with {@link DaemonOptions.logPath}). */
  log: GcLog | null;
}

/** How {@link startDaemon} runs a daemon. */
export interface DaemonOptions {
  /**
   * Run it in the foreground (`PROGRAM -f IFNAME`, in the background of the
   * bench) with its stdout and stderr in this file, line-buffered
   * (`stdbuf`), and the GC traces of both runtimes switched on (see _gc.ts).
   * Without it: `PROGRAM IFNAME`, which daemonizes, as wg-quick runs it.
   */
  logPath?: string;
  /** Pin it, and every thread it makes, to this CPU (`taskset -c`). */
  cpu?: number;
}

/** `VALUE`, or `OLD<sep>VALUE` when the variable is already set in our environment. */
function appendEnv(name: string, value: string, sep: string): string {
  const old = Deno.env.get(name);
  return old ? `${old}${sep}${value}` : value;
}

/**
 * startDaemon() starts `PROGRAM IFNAME` in `ns` (see {@link DaemonOptions}),
 * then finds the daemon's PID and waits until it answers on its UAPI socket.
 */
export async function startDaemon(
  ns: Netns,
  impl: Impl,
  ifname: string,
  cleanup: Cleanup,
  opts: DaemonOptions = {},
): Promise<Daemon> {
  cleanup.addSocket(ifname);
  const wrapper = opts.cpu === undefined ? [] : ["taskset", "-c", String(opts.cpu)];
  // LOG_LEVEL=silent: neither daemon may keep our pipes (run() would wait for them).
  const env: Record<string, string> = { LOG_LEVEL: "silent" };
  if (opts.logPath !== undefined) {
    env.DENO_V8_FLAGS = appendEnv("DENO_V8_FLAGS", "--trace-gc", ",");
    env.GODEBUG = appendEnv("GODEBUG", "gctrace=1", ",");
    // Reaped when the namespace goes (Netns.delete() kills what lives in it).
    await startForeground((n, cmd, args, o) => n.spawn(o, cmd, ...args), ns, ifname, {
      argv: [impl.path],
      env,
      wrapper,
      logPath: opts.logPath,
    }).catch((e) => {
      throw new Error(`${impl.name}: ${e instanceof Error ? e.message : e}`);
    });
  } else {
    await launchDaemon(ns, impl.path, ifname, { env, wrapper });
  }
  const log = opts.logPath === undefined ? null : new GcLog(opts.logPath);
  const pid = await findDaemon(ns, ifname);
  return { ns, ifname, pid, log };
}

/** stopDaemon() sends SIGTERM, waits up to 5 s, then SIGKILL; never throws. */
export async function stopDaemon(d: Daemon): Promise<void> {
  const alive = () => pidAlive(d.pid);
  try {
    Deno.kill(d.pid, "SIGTERM");
  } catch {
    return;
  }
  if (!(await waitFor(() => !alive(), 5000, 50))) {
    try {
      Deno.kill(d.pid, "SIGKILL");
    } catch {
      // gone
    }
    await waitFor(() => !alive(), 2000, 50);
  }
  try {
    await Deno.remove(uapiSocket(d.ifname));
  } catch {
    // the daemon removed it
  }
}

/** wg() runs `wg args…` and throws unless it succeeded in time. */
export function wg(args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  return runWg(args, { timeoutMs });
}

/** setconf() writes `text` to a file in `dir` and runs `wg setconf`; returns the wall time in ms. */
export async function setconf(
  ifname: string,
  text: string,
  dir: string,
  timeoutMs = 60_000,
): Promise<number> {
  const path = `${dir}/${ifname}.conf`;
  await Deno.writeTextFile(path, text, { mode: 0o600 });
  return await setconfFile(ifname, path, timeoutMs);
}

/** setconfFile() runs `wg setconf IFNAME FILE`; returns the wall time in ms. */
export async function setconfFile(
  ifname: string,
  path: string,
  timeoutMs = 60_000,
): Promise<number> {
  const t0 = performance.now();
  await wg(["setconf", ifname, path], timeoutMs);
  return performance.now() - t0;
}

/** ip() runs `ip -n NS args…` and throws unless it succeeded. */
export function ip(ns: Netns, args: readonly string[]): Promise<RunResult> {
  return ns.ip(...args);
}

/** Waits until something listens on `proto` port `port` inside `ns` (`ss`). */
export function waitListening(
  ns: Netns,
  proto: "tcp" | "udp",
  port: number,
  timeoutMs = 10_000,
): Promise<boolean> {
  return ns.listening(proto, port, timeoutMs);
}

// ---------------------------------------------------------------------------------------------
// The main tunnel

/** Two namespaces, a veth pair, one daemon on each side, the tunnel up. */
export class Tunnel {
  readonly impl: Impl;
  readonly a: Netns;
  readonly b: Netns;
  readonly da: Daemon;
  readonly db: Daemon;
  /** Interface-name stem; the benchmark adds suffixes for its extra daemons. */
  readonly stem: string;
  /** Public keys of the two ends (base64), for `wg set … peer`. */
  readonly pubA: string;
  readonly pubB: string;

  private constructor(
    impl: Impl,
    ends: { a: Netns; b: Netns; da: Daemon; db: Daemon },
    stem: string,
    keys: { pubA: string; pubB: string },
  ) {
    this.impl = impl;
    this.a = ends.a;
    this.b = ends.b;
    this.da = ends.da;
    this.db = ends.db;
    this.stem = stem;
    this.pubA = keys.pubA;
    this.pubB = keys.pubB;
  }

  /**
   * create() builds the whole bed for `impl`. `stem` makes the interface
   * names unique (≤ 13 characters; "a"/"b" and others are appended). With
   * `trace`, both daemons run in the foreground with their GC traces in
   * `dir` ({@link Daemon.log}); with `pinned`, A's on CPU 0 and B's on CPU 1.
   */
  static async create(
    impl: Impl,
    stem: string,
    dir: string,
    cleanup: Cleanup,
    opts: { trace?: boolean; pinned?: boolean } = {},
  ): Promise<Tunnel> {
    const a = await Netns.create("gtbench");
    cleanup.addNetns(a);
    let b: Netns | null = null;
    try {
      b = await Netns.create("gtbench");
      cleanup.addNetns(b);
      return await Tunnel.#build(impl, stem, dir, cleanup, a, b, opts);
    } catch (e) {
      // Whatever was started for this tunnel goes now, not at the end of the run.
      await cleanup.dropNetns(a);
      if (b) await cleanup.dropNetns(b);
      throw e;
    }
  }

  static async #build(
    impl: Impl,
    stem: string,
    dir: string,
    cleanup: Cleanup,
    a: Netns,
    b: Netns,
    opts: { trace?: boolean; pinned?: boolean },
  ): Promise<Tunnel> {
    await vethPair(a, b, {
      nameA: "vb0",
      nameB: "vb1",
      addrA: `${VETH_A}/24`,
      addrB: `${VETH_B}/24`,
      mtu: VETH_MTU,
    });
    const ka = newKeyPair(), kb = newKeyPair();
    const started: Daemon[] = [];
    for (const [ns, end, cpu] of [[a, "a", 0], [b, "b", 1]] as const) {
      started.push(
        await startDaemon(ns, impl, `${stem}${end}`, cleanup, {
          logPath: opts.trace ? `${dir}/${stem}${end}.log` : undefined,
          cpu: opts.pinned ? cpu : undefined,
        }),
      );
    }
    const [da, db] = started;
    await setconf(
      da.ifname,
      [
        "[Interface]",
        `PrivateKey = ${ka.privateB64}`,
        `ListenPort = ${PORT_MAIN}`,
        "[Peer]",
        `PublicKey = ${kb.publicB64}`,
        `AllowedIPs = ${TUN_B}/32`,
        `Endpoint = ${VETH_B}:${PORT_MAIN}`,
        "",
      ].join("\n"),
      dir,
    );
    await setconf(
      db.ifname,
      [
        "[Interface]",
        `PrivateKey = ${kb.privateB64}`,
        `ListenPort = ${PORT_MAIN}`,
        "[Peer]",
        `PublicKey = ${ka.publicB64}`,
        `AllowedIPs = ${TUN_A}/32`,
        `Endpoint = ${VETH_A}:${PORT_MAIN}`,
        "",
      ].join("\n"),
      dir,
    );
    for (const [ns, d, addr] of [[a, da, TUN_A], [b, db, TUN_B]] as const) {
      await ns.ip("address", "add", `${addr}/24`, "dev", d.ifname);
      await ns.ip("link", "set", "dev", d.ifname, "mtu", String(TUN_MTU), "up");
    }
    for (const ns of [a, b]) {
      if (!(await ns.listening("udp", PORT_MAIN))) {
        throw new Error(`${impl.name}: no UDP socket on port ${PORT_MAIN} in ${ns.name}`);
      }
    }
    return new Tunnel(impl, { a, b, da, db }, stem, { pubA: ka.publicB64, pubB: kb.publicB64 });
  }

  /** destroy() kills everything in both namespaces and deletes them. */
  async destroy(cleanup: Cleanup): Promise<void> {
    await Promise.all([cleanup.dropNetns(this.a), cleanup.dropNetns(this.b)]);
  }
}
