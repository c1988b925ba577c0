// SPDX-License-Identifier: Apache-2.0
/**
 * Private helpers for the end-to-end suite in test/e2e/: bounded process execution, background
 * processes killed by PID, throw-away network namespaces, WireGuard daemons driven through the
 * stock `wg` tool, and the choice of the program under test.
 *
 * Program under test: `GOTATUN_E2E_PROGRAM` (an absolute path to a wireguard-go compatible
 * daemon: `PROGRAM [-f] IFNAME`, daemonizes, serves /var/run/wireguard/IFNAME.sock, exits when
 * its link is deleted). Without it, `<repo>/dist/gotatun` is used when it exists; otherwise every
 * e2e test is ignored and the reason is printed once (under CI=true they fail instead). The reference peer is always wireguard-go
 * (`GOTATUN_E2E_REFERENCE`, default `/usr/bin/wireguard-go`).
 *
 * Every namespace made here is named `gte2e-<6 random digits>-<tag>`, and every interface
 * `gte<digits>` (at most 15 characters, IFNAMSIZ − 1). The UAPI socket directory is global (not
 * per network namespace), so interface names carry the random digits too; that keeps parallel
 * test files, and other users of /var/run/wireguard, apart.
 *
 * Processes: the daemons fork away from their launcher, so their PIDs are found with
 * `ip netns pids` in namespaces this suite created (only processes we started live there) and
 * are killed by PID. Every external command runs with a timeout; on expiry the child is killed
 * with SIGKILL and its pipes are cancelled, so a descendant holding our stdout cannot hang a test.
 *
 * @module
 */

import { isExecutable, signalNumber, waitFor as pollUntil, which } from "../_util/proc.ts";
import { unmet } from "../_util/needs.ts";
import { existsSync } from "node:fs";

/** Result of one finished command. */
export interface RunResult {
  /** Exit code (128 + signal when killed). */
  code: number;
  stdout: string;
  stderr: string;
  /** True when a descendant kept our stdout/stderr pipe open after the command exited. */
  heldOpen: boolean;
}

/** Options of {@link run}. */
export interface RunOptions {
  /** Kill the command after this many milliseconds (default 30 s). */
  timeoutMs?: number;
  /** Text written to the command's stdin (stdin is /dev/null otherwise). */
  stdin?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
  /** Throw when the exit code is not 0 (default true). */
  check?: boolean;
  /**
   * How long to keep reading stdout/stderr after the command exited before giving up on EOF
   * (default 1500 ms). A daemon that inherited the pipe would otherwise keep us waiting forever.
   */
  drainMs?: number;
}

/** Thrown when a command fails its exit-code check or times out. */
export class CommandError extends Error {
  readonly result: RunResult | null;
  constructor(message: string, result: RunResult | null) {
    super(message);
    this.name = "CommandError";
    this.result = result;
  }
}

const decoder = new TextDecoder();

/** Collects a byte stream into a string; `cancel()` stops reading at once. */
class StreamCollector {
  #chunks: Uint8Array[] = [];
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly done: Promise<void>;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
    this.done = this.#pump();
  }
  async #pump(): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await this.#reader.read();
        if (done) return;
        this.#chunks.push(value);
      }
    } catch {
      // cancelled: the text read so far is kept.
    }
  }
  async cancel(): Promise<void> {
    try {
      await this.#reader.cancel();
    } catch {
      // already closed
    }
    await this.done;
  }
  text(): string {
    let n = 0;
    for (const c of this.#chunks) n += c.length;
    const all = new Uint8Array(n);
    let off = 0;
    for (const c of this.#chunks) {
      all.set(c, off);
      off += c.length;
    }
    return decoder.decode(all);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves true when `p` settles within `ms`, false otherwise (the timer is always cleared). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)
    .join(" ");
}

/**
 * Runs `argv` to completion with a timeout. Output is captured; on timeout the child gets
 * SIGKILL and a {@link CommandError} is thrown whatever `check` says.
 */
export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: opts.env,
    cwd: opts.cwd,
  }).spawn();
  const out = new StreamCollector(child.stdout);
  const err = new StreamCollector(child.stderr);
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    try {
      await w.write(new TextEncoder().encode(opts.stdin));
      await w.close();
    } catch {
      // The command may exit without reading its input; its exit code tells the story.
    }
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, timeoutMs);
  let status: Deno.CommandStatus;
  try {
    status = await child.status;
  } finally {
    clearTimeout(timer);
  }
  const drained = await settlesWithin(
    Promise.all([out.done, err.done]),
    timedOut ? 0 : opts.drainMs ?? 1500,
  );
  if (!drained) await Promise.all([out.cancel(), err.cancel()]);
  const result: RunResult = {
    code: status.signal ? 128 + signalNumber(status.signal) : status.code,
    stdout: out.text(),
    stderr: err.text(),
    heldOpen: !drained && !timedOut,
  };
  if (timedOut) {
    throw new CommandError(
      `timed out after ${timeoutMs} ms: ${shellQuote(argv)}\n${result.stdout}${result.stderr}`,
      result,
    );
  }
  if ((opts.check ?? true) && result.code !== 0) {
    throw new CommandError(
      `exit ${result.code}: ${
        shellQuote(argv)
      }\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`,
      result,
    );
  }
  return result;
}

/** A process running in the background; its output is collected until it ends. */
export class Background {
  readonly argv: readonly string[];
  readonly pid: number;
  #child: Deno.ChildProcess;
  #out: StreamCollector;
  #err: StreamCollector;
  #status: Promise<Deno.CommandStatus>;
  #exited = false;

  constructor(argv: readonly string[], env?: Record<string, string>) {
    this.argv = argv;
    this.#child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env,
    }).spawn();
    this.pid = this.#child.pid;
    this.#out = new StreamCollector(this.#child.stdout);
    this.#err = new StreamCollector(this.#child.stderr);
    this.#status = this.#child.status.then((s) => {
      this.#exited = true;
      return s;
    });
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** Waits for the process to end on its own; throws CommandError after `timeoutMs`. */
  async wait(timeoutMs: number, check = true): Promise<RunResult> {
    if (!(await settlesWithin(this.#status, timeoutMs))) {
      await this.kill();
      throw new CommandError(
        `timed out after ${timeoutMs} ms: ${
          shellQuote(this.argv)
        }\n${this.#out.text()}${this.#err.text()}`,
        null,
      );
    }
    const r = await this.#finish();
    if (check && r.code !== 0) {
      throw new CommandError(
        `exit ${r.code}: ${shellQuote(this.argv)}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`,
        r,
      );
    }
    return r;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; always reaps. Safe to call more than once. */
  async kill(graceMs = 2000): Promise<RunResult> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGTERM");
      } catch {
        // raced with exit
      }
      if (!(await settlesWithin(this.#status, graceMs))) {
        try {
          this.#child.kill("SIGKILL");
        } catch {
          // raced with exit
        }
      }
    }
    return await this.#finish();
  }

  async #finish(): Promise<RunResult> {
    const s = await this.#status;
    if (!(await settlesWithin(Promise.all([this.#out.done, this.#err.done]), 1000))) {
      await Promise.all([this.#out.cancel(), this.#err.cancel()]);
    }
    return {
      code: s.signal ? 128 + signalNumber(s.signal) : s.code,
      stdout: this.#out.text(),
      stderr: this.#err.text(),
      heldOpen: false,
    };
  }

  /** Output collected so far. */
  output(): string {
    return this.#out.text() + this.#err.text();
  }
}

/** Polls `cond` every `intervalMs` (default 100) until true; false after `timeoutMs`. */
export function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<boolean> {
  return pollUntil(cond, timeoutMs, intervalMs);
}

export { delay };

// ---------------------------------------------------------------------------------------------
// Environment checks and program selection

export { which };

/** Repository root (two levels above this file). */
export const REPO_ROOT: string = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** Where the reference implementation lives. */
export const REFERENCE: string = Deno.env.get("GOTATUN_E2E_REFERENCE") ?? "/usr/bin/wireguard-go";

/** Transfer sizes grow from the bounded defaults to upstream's 1 GB with GOTATUN_E2E_BIG=1. */
export const BIG: boolean = Deno.env.get("GOTATUN_E2E_BIG") === "1";

/** The program under test and, when there is none, why. */
export interface ProgramChoice {
  program: string | null;
  reason: string;
}

/** Picks the program under test (see the module doc). */
export function chooseProgram(): ProgramChoice {
  const env = Deno.env.get("GOTATUN_E2E_PROGRAM");
  if (env) {
    // An explicit choice that does not exist is an error of the caller, not a reason to skip:
    // the test runs and fails on it.
    return { program: env, reason: "" };
  }
  const dist = `${REPO_ROOT}/dist/gotatun`;
  if (existsSync(dist)) return { program: dist, reason: "" };
  return {
    program: null,
    reason: `no program under test: set GOTATUN_E2E_PROGRAM or build ${dist}`,
  };
}

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

/** The program under test; only call from a test that was not ignored. */
export function program(): string {
  const p = chooseProgram().program;
  if (!p) throw new Error("no program under test");
  if (!isExecutable(p)) throw new Error(`GOTATUN_E2E_PROGRAM=${p} is not an executable file`);
  return p;
}

/** Random decimal digits (for names). */
export function randomDigits(n: number): string {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => String(x % 10)).join("");
}

// ---------------------------------------------------------------------------------------------
// Network namespaces

/** A network namespace made by this suite; {@link Netns.destroy} kills what runs in it. */
export class Netns {
  readonly name: string;
  private constructor(name: string) {
    this.name = name;
  }

  /** Creates `gte2e-<run>-<tag>` with loopback up. */
  static async create(runId: string, tag: string): Promise<Netns> {
    const ns = new Netns(`gte2e-${runId}-${tag}`);
    await run(["ip", "netns", "add", ns.name], { timeoutMs: 10_000 });
    await ns.ip(["link", "set", "lo", "up"]);
    return ns;
  }

  /** Runs a command inside the namespace. */
  exec(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(["ip", "netns", "exec", this.name, ...argv], opts);
  }

  /** Starts a background command inside the namespace. */
  spawn(argv: readonly string[], env?: Record<string, string>): Background {
    return new Background(["ip", "netns", "exec", this.name, ...argv], env);
  }

  /** `ip -n NS ...` */
  ip(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(["ip", "-n", this.name, ...args], { timeoutMs: 10_000, ...opts });
  }

  /** Writes a sysctl inside the namespace. */
  async sysctl(key: string, value: string): Promise<void> {
    await this.exec(["sysctl", "-q", "-w", `${key}=${value}`], { timeoutMs: 10_000 });
  }

  /** PIDs of the processes living in this namespace. */
  async pids(): Promise<number[]> {
    const r = await run(["ip", "netns", "pids", this.name], { timeoutMs: 10_000, check: false });
    return r.stdout.split(/\s+/).filter((s) => s !== "").map(Number);
  }

  /** Does the link exist here? */
  async hasLink(ifname: string): Promise<boolean> {
    const r = await this.ip(["link", "show", "dev", ifname], { check: false });
    return r.code === 0;
  }

  /** MTU of a link. */
  async mtu(ifname: string): Promise<number> {
    const r = await this.ip(["-o", "link", "show", "dev", ifname]);
    const m = / mtu (\d+) /.exec(r.stdout);
    if (!m) throw new Error(`no mtu in: ${r.stdout}`);
    return Number(m[1]);
  }

  /** rx/tx byte counters of a link (`ip -s`). */
  async linkBytes(ifname: string): Promise<{ rx: number; tx: number }> {
    const r = await this.ip(["-s", "-j", "link", "show", "dev", ifname]);
    const j = JSON.parse(r.stdout)[0];
    return { rx: j.stats64.rx.bytes, tx: j.stats64.tx.bytes };
  }

  /** Kills every process in the namespace (SIGTERM, then SIGKILL), then deletes it. */
  async destroy(): Promise<void> {
    await killPids(await this.pids());
    await run(["ip", "netns", "del", this.name], { timeoutMs: 10_000, check: false });
  }
}

/** SIGTERM the PIDs, wait up to 3 s, SIGKILL survivors. */
export async function killPids(pids: readonly number[]): Promise<void> {
  const alive = (p: number) => existsSync(`/proc/${p}`) && !isZombie(p);
  for (const p of pids) {
    try {
      Deno.kill(p, "SIGTERM");
    } catch {
      // gone
    }
  }
  await waitFor(() => pids.every((p) => !alive(p)), 3000, 50);
  for (const p of pids) {
    if (!alive(p)) continue;
    try {
      Deno.kill(p, "SIGKILL");
    } catch {
      // gone
    }
  }
  await waitFor(() => pids.every((p) => !alive(p)), 2000, 50);
}

function isZombie(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** Creates a veth pair directly between two namespaces (no name ever exists on the host). */
export async function vethPair(a: Netns, nameA: string, b: Netns, nameB: string): Promise<void> {
  await a.ip(["link", "add", nameA, "type", "veth", "peer", "name", nameB, "netns", b.name]);
}

/** Destroys namespaces, collecting (not throwing) errors so that each gets its turn. */
export async function destroyAll(list: readonly (Netns | null | undefined)[]): Promise<void> {
  for (const ns of list) {
    if (!ns) continue;
    try {
      await ns.destroy();
    } catch {
      // best effort; the next one still gets cleaned
    }
  }
}

// ---------------------------------------------------------------------------------------------
// WireGuard

/** The global UAPI socket of an interface. */
export function uapiSocket(ifname: string): string {
  return `/var/run/wireguard/${ifname}.sock`;
}

/** `wg ...` (talks to the global UAPI socket, so the namespace does not matter). */
export function wg(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(["wg", ...args], { timeoutMs: 30_000, ...opts });
}

/** A key pair; `privateFile` holds the private key for `wg set private-key`. */
export interface KeyPair {
  privateKey: string;
  publicKey: string;
  privateFile: string;
}

/** Generates a key pair with `wg genkey`/`wg pubkey`, the private key stored under `dir`. */
export async function genKeyPair(dir: string): Promise<KeyPair> {
  const privateKey = (await wg(["genkey"])).stdout.trim();
  const publicKey = (await wg(["pubkey"], { stdin: privateKey + "\n" })).stdout.trim();
  const privateFile = `${dir}/${publicKey.replaceAll("/", "_")}.key`;
  await Deno.writeTextFile(privateFile, privateKey + "\n", { mode: 0o600 });
  return { privateKey, publicKey, privateFile };
}

/** Writes a pre-shared key file and returns its path. */
export async function genPskFile(dir: string): Promise<string> {
  const psk = (await wg(["genpsk"])).stdout.trim();
  const path = `${dir}/psk-${randomDigits(6)}`;
  await Deno.writeTextFile(path, psk + "\n", { mode: 0o600 });
  return path;
}

/**
 * Starts a daemon the way wg-quick does (`PROGRAM IFNAME`, no -f) inside `ns`, and checks the
 * launcher contract: exit 0, the link exists, the UAPI socket exists, and the launcher did not
 * leave our stdout/stderr held open by the daemon, and the daemon answers a UAPI request.
 */
export async function startDaemon(
  ns: Netns,
  prog: string,
  ifname: string,
  env?: Record<string, string>,
): Promise<void> {
  const r = await ns.exec([prog, ifname], { timeoutMs: 30_000, env, check: false });
  if (r.code !== 0) {
    throw new Error(`${prog} ${ifname} exited ${r.code}\n${r.stdout}${r.stderr}`);
  }
  if (r.heldOpen) {
    throw new Error(`${prog} ${ifname}: the daemon kept the launcher's stdout/stderr open`);
  }
  if (!(await ns.hasLink(ifname))) throw new Error(`${prog} returned but ${ifname} does not exist`);
  if (!existsSync(uapiSocket(ifname))) {
    throw new Error(`${prog} returned but ${uapiSocket(ifname)} does not exist`);
  }
  // A UAPI request is answered only once the daemon is serving. wireguard-go's launcher exits
  // before its forked daemon has adopted the TUN; moving the link to another namespace in that
  // window breaks the daemon, so tests that move links need this wait (wg-quick gets the same
  // effect from its immediate `wg setconf`).
  await wg(["show", ifname], { timeoutMs: 20_000 });
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

/** Waits until the UDP port is bound inside `ns` (a daemon binds when its link comes up). */
export function waitUdpBound(ns: Netns, port: number, timeoutMs = 10_000): Promise<boolean> {
  return waitFor(
    async () => {
      const r = await ns.exec(["ss", "-Hunl", `sport = :${port}`], { timeoutMs: 5000 });
      return r.stdout.trim() !== "";
    },
    timeoutMs,
    100,
  );
}

/**
 * Datagrams the kernel dropped on the UDP sockets bound to `port` inside `ns` because their
 * receive buffers were full (the `d` field of `ss -m` skmem, i.e. sk_drops), summed over the
 * IPv4 and IPv6 sockets. These never reach the daemon, so the daemon cannot count them.
 */
export async function udpSocketDrops(ns: Netns, port: number): Promise<number> {
  const r = await ns.exec(["ss", "-Huanm", `sport = :${port}`], { timeoutMs: 5000 });
  let drops = 0;
  for (const m of r.stdout.matchAll(/skmem:\([^)]*\bd(\d+)\)/g)) drops += Number(m[1]);
  return drops;
}

/** Waits until a TCP port is listening inside `ns`. */
export function waitTcpListen(ns: Netns, port: number, timeoutMs = 10_000): Promise<boolean> {
  return waitFor(
    async () => {
      const r = await ns.exec(["ss", "-Htnl", `sport = :${port}`], { timeoutMs: 5000 });
      return r.stdout.trim() !== "";
    },
    timeoutMs,
    50,
  );
}

/** Result of a ping run. */
export interface PingResult {
  transmitted: number;
  received: number;
  output: string;
}

/**
 * Pings `target` from `ns` (`flood` adds -f, which needs root). Never throws on packet loss;
 * the caller asserts on the counts.
 */
export async function ping(
  ns: Netns,
  target: string,
  count: number,
  opts: { flood?: boolean; waitS?: number } = {},
): Promise<PingResult> {
  const args = ["ping", "-n", "-q", "-c", String(count), "-W", String(opts.waitS ?? 1)];
  if (opts.flood) args.push("-f");
  args.push(target);
  const r = await ns.exec(args, { timeoutMs: 20_000 + count * 2000, check: false });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  return {
    transmitted: m ? Number(m[1]) : 0,
    received: m ? Number(m[2]) : 0,
    output: r.stdout + r.stderr,
  };
}

/** Pings once per try until one reply arrives; true on success. */
export async function pingUntil(ns: Netns, target: string, tries = 5): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if ((await ping(ns, target, 1)).received === 1) return true;
  }
  return false;
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
  const server = spec.server.spawn([
    "iperf3",
    "-s",
    "-1",
    "-B",
    spec.address,
    "-p",
    String(spec.port),
  ]);
  try {
    if (!(await waitTcpListen(spec.server, spec.port))) {
      throw new Error(`iperf3 server did not listen on ${spec.port}: ${server.output()}`);
    }
    const r = await spec.client.exec(
      ["iperf3", "-J", "-c", spec.address, "-p", String(spec.port), ...spec.clientArgs],
      { timeoutMs: spec.timeoutMs, check: false },
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
