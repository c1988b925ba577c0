// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Process helpers for tests: run a command with a hard timeout (the process
 * is killed and the pipes abandoned, so a test can never hang on a child that
 * leaked its stdout to a daemon), start background processes that are always
 * killed by PID, poll for a condition, and check for root and tools (the
 * skip policy built on them is test/_util/needs.ts).
 */

/** Result of {@link run}. */
export interface RunResult {
  /** Exit code; 128+n when killed by signal n; -1 when it never finished. */
  code: number;
  /** The terminating signal, if any. */
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  /**
   * True when the deadline passed: either the process was still running (it
   * was then killed), or it exited but something it spawned kept its
   * stdout/stderr open (which is how `$(daemon)` hangs in a shell).
   */
  timedOut: boolean;
}

/** Options of {@link run}. */
export interface RunOptions {
  /** Hard limit for the process and its pipes (default 20 s). */
  timeoutMs?: number;
  /** Extra environment (merged into ours unless `clearEnv`). */
  env?: Record<string, string>;
  clearEnv?: boolean;
  /** Written to stdin, which is then closed. Without it stdin is /dev/null. */
  stdin?: string | Uint8Array;
  cwd?: string;
}

/** isRoot() tells whether tests run as uid 0 (needed for TUN and namespaces). */
export function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

/**
 * which() is the executable file `name` names: itself when it contains a
 * slash, else the first one on PATH; null when there is none. Sync, for
 * `ignore:` conditions (test/_util/needs.ts).
 */
export function which(name: string): string | null {
  if (name.includes("/")) return isExecutable(name) ? name : null;
  let path: string;
  try {
    path = Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
  } catch {
    path = "/usr/sbin:/usr/bin:/sbin:/bin";
  }
  for (const dir of path.split(":")) {
    if (dir !== "" && isExecutable(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return null;
}

/** hasTool() tells whether {@link which} finds `name`. */
export function hasTool(name: string): boolean {
  return which(name) !== null;
}

/** isExecutable() tells whether `path` is a file with an execute bit. */
export function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && st.mode !== null && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** sleep() resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * waitFor() polls `predicate` every `intervalMs` until it returns true
 * (resolves true) or `timeoutMs` passes (resolves false). A throwing predicate
 * counts as false.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await predicate()) return true;
    } catch {
      // not yet
    }
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(intervalMs, Math.max(1, deadline - Date.now())));
  }
}

/** Reads a whole stream as text, or stops when `abort` fires (returning what it had). */
async function collect(
  stream: ReadableStream<Uint8Array>,
  abort: Promise<void>,
): Promise<{ text: string; complete: boolean }> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let aborted = false;
  const stop = abort.then(() => {
    aborted = true;
    return null;
  });
  try {
    for (;;) {
      const r = await Promise.race([reader.read(), stop]);
      if (r === null) {
        await reader.cancel().catch(() => {});
        return { text: text + decoder.decode(), complete: false };
      }
      if (r.done) return { text: text + decoder.decode(), complete: true };
      text += decoder.decode(r.value, { stream: true });
    }
  } finally {
    if (!aborted) reader.releaseLock();
  }
}

/**
 * run() runs `cmd args…` and collects its output, never waiting longer than
 * `timeoutMs`: a process still running at the deadline is killed (SIGKILL),
 * and pipes still open at the deadline are abandoned, with `timedOut` set.
 */
export async function run(
  cmd: string,
  args: readonly string[] = [],
  opts: RunOptions = {},
): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const child = new Deno.Command(cmd, {
    args: [...args],
    env: opts.env,
    clearEnv: opts.clearEnv,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let fire!: () => void;
  const deadline = new Promise<void>((resolve) => (fire = resolve));
  const timer = setTimeout(fire, timeoutMs);
  try {
    if (opts.stdin !== undefined) {
      const data = typeof opts.stdin === "string"
        ? new TextEncoder().encode(opts.stdin)
        : opts.stdin;
      const writer = child.stdin.getWriter();
      // A child that never reads must not block us past the deadline.
      await Promise.race([writer.write(data).then(() => writer.close()), deadline]).catch(() => {});
      writer.releaseLock();
    }
    const out = collect(child.stdout, deadline);
    const err = collect(child.stderr, deadline);
    let status = await Promise.race([child.status, deadline.then(() => null)]);
    let timedOut = false;
    if (status === null) {
      timedOut = true;
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      status = await child.status;
    }
    const [o, e] = await Promise.all([out, err]);
    if (!o.complete || !e.complete) timedOut = true;
    if (opts.stdin !== undefined) await child.stdin.close().catch(() => {});
    return {
      code: status.signal !== null ? 128 + signalNumber(status.signal) : status.code,
      signal: status.signal,
      stdout: o.text,
      stderr: e.text,
      timedOut,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** signalNumber() is the Linux number of `sig` (0 for one not listed), for 128 + n exit codes. */
export function signalNumber(sig: Deno.Signal): number {
  const table: Partial<Record<Deno.Signal, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGABRT: 6,
    SIGKILL: 9,
    SIGSEGV: 11,
    SIGPIPE: 13,
    SIGALRM: 14,
    SIGTERM: 15,
  };
  return table[sig] ?? 0;
}

/**
 * runOk() is {@link run} that throws (with the output) unless the command
 * exited 0 in time. For setup steps such as `ip link add`.
 */
export async function runOk(
  cmd: string,
  args: readonly string[] = [],
  opts: RunOptions = {},
): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0 || r.timedOut) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (code ${r.code}${r.timedOut ? ", timed out" : ""}): ` +
        `${r.stderr.trim() || r.stdout.trim()}`,
    );
  }
  return r;
}

/** A process started by {@link spawnBackground}. */
export interface Background {
  readonly pid: number;
  /** Resolves when the process exits. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Everything it wrote so far (only with `output: "piped"`). */
  output(): { stdout: string; stderr: string };
  /**
   * Sends `signal` (default SIGTERM), waits up to `graceMs` (default 3 s),
   * then SIGKILLs, and resolves once the process is reaped. Idempotent.
   */
  kill(signal?: Deno.Signal, graceMs?: number): Promise<Deno.CommandStatus>;
}

/** Options of {@link spawnBackground}. */
export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** "null" (default) discards output; "piped" keeps it for {@link Background.output}. */
  output?: "null" | "piped";
}

/**
 * spawnBackground() starts a long-running process (stdin /dev/null). The
 * caller must `await kill()` it in a `finally` (the test sanitizers also
 * insist that every child is reaped).
 */
export function spawnBackground(
  cmd: string,
  args: readonly string[] = [],
  opts: SpawnOptions = {},
): Background {
  const piped = opts.output === "piped";
  const child = new Deno.Command(cmd, {
    args: [...args],
    env: opts.env,
    cwd: opts.cwd,
    stdin: "null",
    stdout: piped ? "piped" : "null",
    stderr: piped ? "piped" : "null",
  }).spawn();
  let stdout = "";
  let stderr = "";
  const pumps: Promise<void>[] = [];
  if (piped) {
    const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
      const d = new TextDecoder();
      try {
        for await (const chunk of s) add(d.decode(chunk, { stream: true }));
      } catch {
        // cancelled
      }
    };
    pumps.push(pump(child.stdout, (t) => (stdout += t)));
    pumps.push(pump(child.stderr, (t) => (stderr += t)));
  }
  const status = child.status;
  let killing: Promise<Deno.CommandStatus> | null = null;
  async function kill(signal: Deno.Signal = "SIGTERM", graceMs = 3000) {
    if (killing) return await killing;
    killing = (async () => {
      try {
        child.kill(signal);
      } catch {
        // already exited
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const exited = await Promise.race([
        status,
        new Promise<null>((r) => (timer = setTimeout(() => r(null), graceMs))),
      ]);
      clearTimeout(timer);
      if (exited === null) {
        try {
          child.kill("SIGKILL");
        } catch {
          // raced with exit
        }
      }
      const st = await status;
      // The pipes close when the process exits, unless it leaked them to a
      // grandchild; do not wait for that forever.
      let t2: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(pumps),
        new Promise((r) => (t2 = setTimeout(r, 1000))),
      ]);
      clearTimeout(t2);
      return st;
    })();
    return await killing;
  }
  return {
    pid: child.pid,
    status,
    output: () => ({ stdout, stderr }),
    kill,
  };
}

/** pidAlive() tells whether a process with this PID exists (signal 0 probe via /proc). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // A zombie (state Z) has exited already; it only waits to be reaped.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** randomSuffix() is `n` random lowercase hex characters for unique names. */
export function randomSuffix(n = 6): string {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(n / 2)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, n);
}

/**
 * The arguments of a script run by `deno task`, without a leading `--`:
 * `deno task soak:real -- --minutes 3` (the npm habit) passes the `--` on to
 * the script, where parseArgs would take everything after it as positionals.
 */
export function taskArgs(argv: readonly string[] = Deno.args): string[] {
  return argv[0] === "--" ? argv.slice(1) : [...argv];
}

/**
 * Runs `deno test` with `args` (flags, then files) in a child process, for
 * cases that need flags the parent test run lacks (`--unstable-net`,
 * `--deny-ffi`). Returns the exit code, the output (stdout then stderr,
 * without colours) and the number of tests the child reports passed (-1
 * when its summary line is missing).
 */
export async function denoTestChild(
  args: readonly string[],
): Promise<{ code: number; text: string; passed: number }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const m = /ok \| (\d+) passed \| 0 failed/.exec(text);
  return { code: out.code, text, passed: m ? Number(m[1]) : -1 };
}
