// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Running the system tools wg-quick runs (`ip`, `nft`, `iptables-restore`,
 * `sysctl`, `resolvconf`, hooks through `bash`), the way its `cmd` helper
 * does: the command line is echoed to stderr as `[#] …` first, and the
 * tool's own messages reach the user. Unlike a shell script, every tool gets
 * a deadline: a hung `ip` or `nft` is killed (SIGKILL, with its descendants)
 * and reported, and its pipes are abandoned rather than waited for
 * (cli/subprocess.ts).
 *
 * Programs are looked up on `PATH` from the environment given to
 * `quickMain` (wg-quick's `type -p`), and started with that environment
 * plus `LC_ALL=C`, which wg-quick exports so that tool output parses the
 * same everywhere.
 */
import { runCommand } from "../subprocess.ts";

/** Where messages go: wg-quick writes `[#]` lines and errors to stderr. */
export interface QuickOutput {
  out(text: string): void;
  err(text: string): void;
}

function writeAll(file: Deno.FsFile | typeof Deno.stdout | typeof Deno.stderr, text: string) {
  const data = new TextEncoder().encode(text);
  try {
    let off = 0;
    while (off < data.length) off += file.writeSync(data.subarray(off));
  } catch {
    // A closed stdout/stderr must not turn a successful `up` into a failure.
  }
}

/** The process's own stdout and stderr. */
export const stdOutput: QuickOutput = {
  out: (text) => writeAll(Deno.stdout, text),
  err: (text) => writeAll(Deno.stderr, text),
};

/** Result of {@link Runner.run}. */
export interface ToolResult {
  /** Exit code; 127 when the program was not found; -1 when it timed out or was killed. */
  readonly code: number;
  /** Captured stdout ("" when forwarded). */
  readonly stdout: string;
  /** Captured stderr ("" when forwarded or discarded). */
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** Options of {@link Runner.run}. */
export interface ToolOptions {
  /** Echo `[#] argv…` to stderr first, as wg-quick's `cmd` (default false). */
  readonly echo?: boolean;
  /** Written to the tool's stdin, which is then closed; /dev/null otherwise. */
  readonly stdin?: string;
  /** `capture` (default) keeps stdout in the result; `forward` prints it. */
  readonly stdout?: "capture" | "forward";
  /** `forward` (default) prints the tool's stderr; `discard` is `2>/dev/null`; `capture` keeps it. */
  readonly stderr?: "forward" | "discard" | "capture";
  /** Deadline (default {@link DEFAULT_TIMEOUT_MS}). */
  readonly timeoutMs?: number;
}

/** Deadline for one `ip`, `nft`, `sysctl`… invocation. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** Fallback search path when the environment has none (bash's default for root). */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * A Runner starts tools in a given environment. {@link Runner.interrupt}
 * kills the ones running (used when SIGINT/SIGTERM arrives during `up`);
 * read-only listings may run side by side.
 */
export class Runner {
  readonly #env: Record<string, string>;
  readonly #path: string;
  readonly #output: QuickOutput;
  /** Aborted by {@link interrupt} (Deno then sends SIGTERM to the tools it started). */
  #interrupt = new AbortController();
  #interrupted = false;

  constructor(env: Record<string, string | undefined>, output: QuickOutput) {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
    clean.LC_ALL = "C";
    this.#env = clean;
    let path: string | undefined = clean.PATH;
    if (path === undefined) {
      try {
        path = Deno.env.get("PATH");
      } catch {
        // no env permission: fall back below
      }
    }
    this.#path = path ?? DEFAULT_PATH;
    this.#output = output;
  }

  /** The output sink. */
  get output(): QuickOutput {
    return this.#output;
  }

  /** Environment for children (the caller's plus LC_ALL=C). */
  get env(): Readonly<Record<string, string>> {
    return this.#env;
  }

  /** True once {@link interrupt} was called. */
  get interrupted(): boolean {
    return this.#interrupted;
  }

  /** echo() prints `[#] text` on stderr, as wg-quick does before each step. */
  echo(text: string): void {
    this.#output.err(`[#] ${text}\n`);
  }

  /**
   * which() is bash's `type -p NAME`: the first executable file named NAME on
   * PATH, or NAME itself when it contains a `/` and is executable; null if none.
   */
  which(name: string): string | null {
    if (name.includes("/")) return isExecutable(name) ? name : null;
    for (const dir of this.#path.split(":")) {
      const candidate = `${dir === "" ? "." : dir}/${name}`;
      if (isExecutable(candidate)) return candidate;
    }
    return null;
  }

  /**
   * interrupt() kills the running tools (SIGTERM, as a terminal's SIGINT
   * would reach a shell's foreground child) and sets {@link interrupted};
   * later commands still run, so cleanup can proceed.
   */
  interrupt(): void {
    this.#interrupted = true;
    this.#interrupt.abort();
    this.#interrupt = new AbortController();
  }

  /** run() runs `argv` with a deadline; never throws for a failing or missing tool. */
  async run(argv: readonly string[], opts: ToolOptions = {}): Promise<ToolResult> {
    if (opts.echo) this.echo(argv.join(" "));
    const program = this.which(argv[0]);
    const stderrMode = opts.stderr ?? "forward";
    if (program === null) {
      const msg = `${argv[0]}: command not found\n`;
      if (stderrMode === "forward") this.#output.err(msg);
      return {
        code: 127,
        stdout: "",
        stderr: stderrMode === "capture" ? msg : "",
        timedOut: false,
      };
    }
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let r;
    try {
      r = await runCommand(program, {
        args: argv.slice(1),
        env: this.#env,
        input: opts.stdin,
        stderr: stderrMode === "discard" ? "null" : "piped",
        timeoutMs,
        signal: this.#interrupt.signal,
      });
    } catch (err) {
      const msg = `${argv[0]}: ${err instanceof Error ? err.message : String(err)}\n`;
      if (stderrMode === "forward") this.#output.err(msg);
      return {
        code: 126,
        stdout: "",
        stderr: stderrMode === "capture" ? msg : "",
        timedOut: false,
      };
    }
    const { status, stdout, stderr, timedOut } = r;
    if ((opts.stdout ?? "capture") === "forward" && stdout !== "") this.#output.out(stdout);
    if (stderrMode === "forward" && stderr !== "") this.#output.err(stderr);
    if (timedOut) this.#output.err(`${argv[0]}: killed after ${timeoutMs / 1000} s\n`);
    return {
      code: timedOut || status.signal !== null ? -1 : status.code,
      stdout: (opts.stdout ?? "capture") === "capture" ? stdout : "",
      stderr: stderrMode === "capture" ? stderr : "",
      timedOut,
    };
  }

  /**
   * runInherited() runs `argv` with our stdin, stdout and stderr, as a shell
   * runs a foreground command: for hooks (user scripts, which may prompt or
   * print) and for the userspace daemon (which must be free to keep or drop
   * them as wireguard-go does). `timeoutMs` null means no deadline.
   */
  async runInherited(argv: readonly string[], timeoutMs: number | null): Promise<number> {
    const program = this.which(argv[0]);
    if (program === null) {
      this.#output.err(`${argv[0]}: command not found\n`);
      return 127;
    }
    let r;
    try {
      r = await runCommand(program, {
        args: argv.slice(1),
        env: this.#env,
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
        timeoutMs,
        signal: this.#interrupt.signal,
      });
    } catch (err) {
      this.#output.err(`${argv[0]}: ${err instanceof Error ? err.message : String(err)}\n`);
      return 126;
    }
    if (r.timedOut) {
      this.#output.err(`${argv[0]}: killed after ${(timeoutMs ?? 0) / 1000} s\n`);
      return -1;
    }
    return r.status.signal !== null ? -1 : r.status.code;
  }
}

function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && st.mode !== null && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}
