// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * WireGuard daemons and the stock `wg` tool for root tests: the program
 * under test, key pairs, and a daemon started in a namespace either the way
 * wg-quick starts it ({@link launchDaemon}: `PROGRAM IFNAME`, which
 * daemonizes) or in the foreground ({@link startForeground}:
 * `PROGRAM -f IFNAME`, its PID and output ours).
 *
 * The UAPI socket directory /var/run/wireguard is global, not per network
 * namespace, so every test gives its interfaces names with random digits
 * ({@link digits}), and removes the socket files it may leave behind
 * ({@link startDaemon} does it at cleanup).
 */
import { existsSync } from "node:fs";
import type { NamespaceContext, Netns } from "./netns.ts";
import { isExecutable, run, type RunOptions, type RunResult, waitFor } from "./proc.ts";
import type { Background, SpawnOptions } from "./proc.ts";

/** Repository root, without a trailing slash. */
export const REPO_ROOT: string = decodeURIComponent(new URL("../../", import.meta.url).pathname)
  .replace(/\/$/, "");

/** The UAPI socket directory `wg` scans. */
export const SOCKET_DIR = "/var/run/wireguard";

/** uapiSocket() is the UAPI socket of interface `ifname`. */
export function uapiSocket(ifname: string): string {
  return `${SOCKET_DIR}/${ifname}.sock`;
}

/** socketAnswers() tells whether a process accepts connections on the unix socket `path`. */
export async function socketAnswers(path: string): Promise<boolean> {
  try {
    const c = await Deno.connect({ transport: "unix", path });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** digits() is `n` random decimal digits, for interface names. */
export function digits(n = 6): string {
  const b = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(b, (x) => String(x % 10)).join("");
}

// ---------------------------------------------------------------------------
// The program under test

/** The program under test and, when there is none, why. */
export interface ProgramChoice {
  program: string | null;
  reason: string;
}

/**
 * chooseProgram() picks the built program under test: `GOTATUN_E2E_PROGRAM`
 * (an explicit choice that does not exist is the caller's error, not a reason
 * to skip: the test runs and fails on it), else `dist/gotatun` when built.
 */
export function chooseProgram(): ProgramChoice {
  const env = Deno.env.get("GOTATUN_E2E_PROGRAM");
  if (env) return { program: env, reason: "" };
  const dist = `${REPO_ROOT}/dist/gotatun`;
  if (existsSync(dist)) return { program: dist, reason: "" };
  return {
    program: null,
    reason: `no program under test: set GOTATUN_E2E_PROGRAM or build ${dist}`,
  };
}

/** program() is the built program under test; only call it from a test that was not ignored. */
export function program(): string {
  const p = chooseProgram().program;
  if (!p) throw new Error("no program under test");
  if (!isExecutable(p)) throw new Error(`GOTATUN_E2E_PROGRAM=${p} is not an executable file`);
  return p;
}

/**
 * programArgv() is the command that runs the program under test: the built
 * one ({@link chooseProgram}), else the sources with the bundle's Deno flags.
 */
export function programArgv(): string[] {
  const built = chooseProgram().program;
  if (built) return [built];
  return [
    Deno.execPath(),
    "run",
    "-A",
    "--unstable-net",
    "--config",
    `${REPO_ROOT}/deno.json`,
    `${REPO_ROOT}/cli/main.ts`,
  ];
}

// ---------------------------------------------------------------------------
// wg

/** Options of {@link wg}: {@link RunOptions} (default timeout 30 s) and whether to throw. */
export interface WgOptions extends RunOptions {
  /** Throw unless `wg` exited 0 in time (default true). */
  check?: boolean;
}

/** wg() runs `wg args…` (it talks to the global UAPI socket, so no namespace is needed). */
export async function wg(args: readonly string[], opts: WgOptions = {}): Promise<RunResult> {
  const r = await run("wg", args, { timeoutMs: 30_000, ...opts });
  if ((opts.check ?? true) && (r.code !== 0 || r.timedOut)) {
    throw new Error(
      `wg ${args.join(" ")} failed (code ${r.code}${r.timedOut ? ", timed out" : ""}): ` +
        `${r.stderr.trim() || r.stdout.trim()}`,
    );
  }
  return r;
}

/** A key pair made with `wg genkey`/`wg pubkey`; `privateFile` holds the private key (0600). */
export interface KeyPair {
  privateKey: string;
  publicKey: string;
  privateFile: string;
}

/** genKeyPair() makes a key pair and stores the private key in a file under `dir`. */
export async function genKeyPair(dir: string): Promise<KeyPair> {
  const privateKey = (await wg(["genkey"])).stdout.trim();
  const publicKey = (await wg(["pubkey"], { stdin: privateKey + "\n" })).stdout.trim();
  const privateFile = `${dir}/${publicKey.replaceAll("/", "_")}.key`;
  await Deno.writeTextFile(privateFile, privateKey + "\n", { mode: 0o600 });
  return { privateKey, publicKey, privateFile };
}

/** genPskFile() writes a new pre-shared key (`wg genpsk`) to a file under `dir`; its path. */
export async function genPskFile(dir: string): Promise<string> {
  const psk = (await wg(["genpsk"])).stdout.trim();
  const path = `${dir}/psk-${digits(6)}`;
  await Deno.writeTextFile(path, psk + "\n", { mode: 0o600 });
  return path;
}

// ---------------------------------------------------------------------------
// Daemons

/** Options of {@link launchDaemon}. */
export interface LaunchOptions {
  /** Extra environment of the launcher. */
  env?: Record<string, string>;
  /** A command that execs the program, e.g. `taskset -c 0`. */
  wrapper?: readonly string[];
  /**
   * The socket must accept a connection the moment the launcher returns
   * (gotatun's promise; wireguard-go's launcher makes none), instead of the
   * daemon being given time to answer `wg show`.
   */
  immediate?: boolean;
}

/**
 * launchDaemon() starts `PROGRAM IFNAME` inside `ns` the way wg-quick does
 * (no -f: it daemonizes) and checks the launcher's contract: it exits 0, does
 * not leave our stdout/stderr held open by the daemon, the link and the UAPI
 * socket exist, and then a UAPI request is answered. wireguard-go's launcher
 * exits before its forked daemon has adopted the TUN; moving the link to
 * another namespace in that window breaks the daemon, so tests that move links
 * need this last wait (wg-quick gets the same effect from its immediate
 * `wg setconf`). `prog` is a path or a whole command (`deno run … main.ts`).
 */
export async function launchDaemon(
  ns: Netns,
  prog: string | readonly string[],
  ifname: string,
  opts: LaunchOptions = {},
): Promise<void> {
  const argv = [...(opts.wrapper ?? []), ...(typeof prog === "string" ? [prog] : prog), ifname];
  const r = await ns.execWith({ timeoutMs: 30_000, env: opts.env }, argv[0], ...argv.slice(1));
  const said = `${r.stdout}${r.stderr}`.trim().slice(-2000);
  if (r.code !== 0) throw new Error(`${prog} ${ifname} exited ${r.code}\n${said}`);
  if (r.timedOut) {
    throw new Error(`${prog} ${ifname}: the daemon kept the launcher's stdout/stderr open`);
  }
  if (!(await ns.hasLink(ifname))) throw new Error(`${prog} returned but ${ifname} does not exist`);
  if (!existsSync(uapiSocket(ifname))) {
    throw new Error(`${prog} returned but ${uapiSocket(ifname)} does not exist`);
  }
  if (opts.immediate) {
    if (!(await socketAnswers(uapiSocket(ifname)))) {
      throw new Error(`${prog} ${ifname}: socket not connectable right after return`);
    }
    return;
  }
  await wg(["show", ifname], { timeoutMs: 20_000 });
}

/** Starts a background process in a namespace (e.g. a {@link NamespaceContext}'s `spawn`). */
export type Spawner = (
  ns: Netns,
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions,
) => Background;

/** Options of {@link startForeground}. */
export interface ForegroundOptions {
  /** The program's command (default {@link programArgv}). */
  argv?: readonly string[];
  /** Its environment, added to `WG_PROCESS_FOREGROUND=1`. */
  env?: Record<string, string>;
  /** A command that execs the program (so that the PID stays its), e.g. `taskset -c 0`. */
  wrapper?: readonly string[];
  /**
   * Send its stdout and stderr, line-buffered, to this file instead of keeping
   * them in memory ({@link Daemon.output} is then "").
   */
  logPath?: string;
  /** How long it may take to answer on its UAPI socket (default 60 s). */
  timeoutMs?: number;
}

/** A daemon run in the foreground by {@link startForeground}. */
export interface Daemon {
  readonly ifname: string;
  readonly ns: Netns;
  readonly proc: Background;
  readonly pid: number;
  /** Everything it wrote so far (stdout + stderr), unless it writes to a file. */
  output(): string;
}

/**
 * startForeground() runs `PROGRAM -f IFNAME` inside `ns` through `spawn`
 * (whoever spawns it kills it) and waits until `wg show IFNAME` answers. It
 * throws, with what the daemon said, when it exits or does not answer in time.
 */
export async function startForeground(
  spawn: Spawner,
  ns: Netns,
  ifname: string,
  opts: ForegroundOptions = {},
): Promise<Daemon> {
  const argv = [...(opts.wrapper ?? []), ...(opts.argv ?? programArgv())];
  const env = { WG_PROCESS_FOREGROUND: "1", ...opts.env };
  const proc = opts.logPath === undefined
    ? spawn(ns, argv[0], [...argv.slice(1), "-f", ifname], { env, output: "piped" })
    : spawn(ns, "stdbuf", [
      "-oL",
      "-eL",
      "sh",
      "-c",
      'i=$0 l=$1; shift; exec "$@" -f "$i" >"$l" 2>&1',
      ifname,
      opts.logPath,
      ...argv,
    ], { env });
  const daemon: Daemon = {
    ifname,
    ns,
    proc,
    pid: proc.pid,
    output() {
      const o = proc.output();
      return o.stdout + o.stderr;
    },
  };
  let exited = false;
  proc.status.then(() => (exited = true));
  const ok = await waitFor(
    async () => exited || (await run("wg", ["show", ifname], { timeoutMs: 5000 })).code === 0,
    opts.timeoutMs ?? 60_000,
    100,
  );
  if (!ok || exited) {
    const said = opts.logPath === undefined
      ? daemon.output()
      : await Deno.readTextFile(opts.logPath).catch(() => "");
    throw new Error(`${argv.join(" ")} -f ${ifname} did not start:\n${said}`);
  }
  return daemon;
}

/**
 * startDaemon() is {@link startForeground} for a `withNamespaces` body
 * the daemon is spawned through `ctx` (killed at cleanup), its socket file is
 * removed at cleanup, and it logs at `LOG_LEVEL=verbose` unless `opts.env`
 * says otherwise, so its output tells what happened.
 */
export function startDaemon(
  ctx: NamespaceContext,
  ns: Netns,
  ifname: string,
  opts: ForegroundOptions = {},
): Promise<Daemon> {
  ctx.defer(() => Deno.remove(uapiSocket(ifname)).catch(() => {}));
  return startForeground((n, cmd, args, o) => ctx.spawn(n, cmd, args, o), ns, ifname, {
    ...opts,
    env: { LOG_LEVEL: "verbose", ...opts.env },
  });
}
