// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * A sandbox for running stock `wg` and ours side by side (root only):
 *
 * - a private mount namespace, held open by a `sleep` we started, with a
 *   tmpfs over `/run/wireguard`, so `wg show` (all interfaces) sees only the
 *   sockets of this test, never another test's or a real daemon's;
 * - a network namespace `gtwg-<hex>` (test/_util/netns.ts) for the TUNs of
 *   the wireguard-go daemons and for name resolution.
 *
 * Stock `wg` and `deno run cli/wg/main.ts` run inside both namespaces through
 * `nsenter`. Our `wgMain` can also run in-process: the test process reaches
 * the tmpfs as `/proc/<holder>/root/run/wireguard` (a path through another
 * process's root resolves in that process's mount namespace), and so does a
 * {@link FakeDaemon} listening there.
 */
import { Netns } from "../../_util/netns.ts";
import {
  type Background,
  run,
  type RunResult,
  spawnBackground,
  waitFor,
} from "../../_util/proc.ts";
import { type WgIo, wgMain } from "../../../cli/wg/main.ts";

const MAIN = new URL("../../../cli/wg/main.ts", import.meta.url).pathname;
const REPO = new URL("../../../", import.meta.url).pathname;

/** Output of one `wg` run. */
export interface WgRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for one run. */
export interface WgRunOptions {
  /** WG_* variables (the environment is otherwise only PATH/HOME/DENO_DIR). */
  env?: Record<string, string>;
  stdin?: string;
  timeoutMs?: number;
}

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  return env;
}

function fromRun(r: RunResult): WgRun {
  if (r.timedOut) throw new Error(`timed out: ${r.stderr}`);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** A writer that collects bytes (for in-process runs). */
class Collect {
  chunks: Uint8Array[] = [];
  write(p: Uint8Array): Promise<number> {
    this.chunks.push(p.slice());
    return Promise.resolve(p.length);
  }
  isTerminal(): boolean {
    return false;
  }
  text(): string {
    const all = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0));
    let off = 0;
    for (const c of this.chunks) {
      all.set(c, off);
      off += c.length;
    }
    return new TextDecoder().decode(all);
  }
}

/** The two namespaces and the processes this test started in them. */
export class WgSandbox {
  readonly netns: Netns;
  readonly #holder: Background;
  readonly holderPid: number;
  readonly #daemons: Background[] = [];

  private constructor(netns: Netns, holder: Background) {
    this.netns = netns;
    this.#holder = holder;
    this.holderPid = holder.pid;
  }

  /** create() makes the namespaces; always pair with {@link close} in a finally. */
  static async create(): Promise<WgSandbox> {
    await Deno.mkdir("/run/wireguard", { recursive: true, mode: 0o755 });
    const netns = await Netns.create("gtwg");
    let holder: Background | null = null;
    try {
      holder = spawnBackground("unshare", [
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount -t tmpfs -o mode=0755 gtwg /run/wireguard && exec sleep 3600",
      ]);
      const pid = holder.pid;
      const ready = await waitFor(async () => {
        const mounts = await Deno.readTextFile(`/proc/${pid}/mounts`);
        const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`);
        return / \/run\/wireguard tmpfs /.test(mounts) && cmd.startsWith("sleep");
      }, 10_000);
      if (!ready) throw new Error("mount namespace holder did not come up");
      return new WgSandbox(netns, holder);
    } catch (e) {
      await holder?.kill("SIGKILL");
      await netns.delete();
      throw e;
    }
  }

  /** The tmpfs socket directory as this (outside) process reaches it. */
  get socketDir(): string {
    return `/proc/${this.holderPid}/root/run/wireguard`;
  }

  #nsenter(): string[] {
    return ["-t", String(this.holderPid), "-m", `--net=/run/netns/${this.netns.name}`, "--"];
  }

  /** stock() runs `/usr/bin/wg` (as argv0 "wg") inside the sandbox. */
  async stock(args: readonly string[], opts: WgRunOptions = {}): Promise<WgRun> {
    return fromRun(
      await run("nsenter", [...this.#nsenter(), "wg", ...args], {
        clearEnv: true,
        env: { ...baseEnv(), ...opts.env },
        stdin: opts.stdin,
        timeoutMs: opts.timeoutMs ?? 20_000,
      }),
    );
  }

  /** oursProcess() runs `deno run cli/wg/main.ts` inside the sandbox. */
  async oursProcess(args: readonly string[], opts: WgRunOptions = {}): Promise<WgRun> {
    return fromRun(
      await run(
        "nsenter",
        [...this.#nsenter(), Deno.execPath(), "run", "-A", "--no-check", MAIN, ...args],
        {
          clearEnv: true,
          env: { ...baseEnv(), ...opts.env },
          stdin: opts.stdin,
          cwd: REPO,
          timeoutMs: opts.timeoutMs ?? 30_000,
        },
      ),
    );
  }

  /** ours() runs {@link wgMain} in this process against the sandbox's sockets. */
  async ours(args: readonly string[], opts: WgRunOptions & { io?: WgIo } = {}): Promise<WgRun> {
    const out = new Collect();
    const err = new Collect();
    const input = new TextEncoder().encode(opts.stdin ?? "");
    let off = 0;
    const stdin = {
      read(p: Uint8Array): Promise<number | null> {
        if (off >= input.length) return Promise.resolve(null);
        const n = Math.min(p.length, input.length - off);
        p.set(input.subarray(off, off + n));
        off += n;
        return Promise.resolve(n);
      },
    };
    const code = await wgMain(args, opts.env ?? {}, {
      stdout: out,
      stderr: err,
      stdin,
      socketDir: this.socketDir,
      ...opts.io,
    });
    return { code, stdout: out.text(), stderr: err.text() };
  }

  /** wireguardGo() starts `wireguard-go -f <iface>` in the sandbox and waits for its socket. */
  async wireguardGo(iface: string, netns: Netns = this.netns): Promise<Background> {
    const d = spawnBackground("nsenter", [
      "-t",
      String(this.holderPid),
      "-m",
      `--net=/run/netns/${netns.name}`,
      "--",
      "env",
      "WG_PROCESS_FOREGROUND=1",
      "LOG_LEVEL=silent",
      "wireguard-go",
      "-f",
      iface,
    ]);
    this.#daemons.push(d);
    const path = `${this.socketDir}/${iface}.sock`;
    const up = await waitFor(async () => (await Deno.stat(path)).isSocket === true, 10_000);
    if (!up) throw new Error(`wireguard-go ${iface} did not start`);
    return d;
  }

  /** close() kills what this sandbox started (by PID) and deletes the namespace. */
  async close(): Promise<void> {
    for (const d of this.#daemons) await d.kill("SIGTERM", 2000).catch(() => {});
    await this.#holder.kill("SIGKILL").catch(() => {});
    await this.netns.delete();
  }
}
