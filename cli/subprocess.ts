// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Running a program with a deadline, for the commands that start tools
 * (`build`, `demo`, `up`/`down`): `Deno.Command` with
 * `signal: AbortSignal.timeout(ms)`, plus what that alone does not do.
 *
 * - Deno answers the signal with SIGTERM to the child only. A tool that
 *   ignores SIGTERM would outlive its deadline, and a grandchild that
 *   inherited stdout or stderr (a daemon, `cmd &` in a hook) keeps the pipe
 *   open, so reading it to the end would never finish. At the deadline,
 *   {@link runCommand} therefore first lists the child's descendants (from
 *   /proc, while the child still holds them: once it dies they are
 *   reparented and no longer found) and kills the child and all of them with
 *   SIGKILL. Deno's own SIGTERM follows and finds them gone: the signal given
 *   to Deno.Command depends on the deadline, and a dependent signal is
 *   aborted only after the deadline's listeners have run.
 * - At the deadline the pipes are no longer read: what arrived until then is
 *   kept. A process that left the tree before the deadline (a daemon that
 *   forked itself away) may still hold them; it is not waited for.
 * - Text written to stdin races the deadline too, and reading starts before
 *   writing, so a tool that prints before reading cannot block the write.
 */

/** Options of {@link runCommand}. */
export interface CommandOptions {
  readonly args?: readonly string[];
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  /** Written to stdin, which is then closed. */
  readonly input?: string;
  /** stdin when there is no {@link input}: "null" (default) or "inherit". */
  readonly stdin?: "null" | "inherit";
  /** "piped" (default) collects the text into the result. */
  readonly stdout?: "piped" | "null" | "inherit";
  /** "piped" (default) collects the text into the result. */
  readonly stderr?: "piped" | "null" | "inherit";
  /** Deadline; null or absent: none. */
  readonly timeoutMs?: number | null;
  /** Another reason to stop: Deno sends the child SIGTERM when it aborts (no deadline kill). */
  readonly signal?: AbortSignal;
}

/** Result of {@link runCommand}. */
export interface CommandResult {
  readonly status: Deno.CommandStatus;
  /** The collected text ("" unless piped). */
  readonly stdout: string;
  readonly stderr: string;
  /** The deadline passed before the child exited (it was killed). */
  readonly timedOut: boolean;
}

/**
 * runCommand() runs `program` to its end or its deadline (see the module
 * doc). Throws what `spawn()` throws (Deno.errors.NotFound for a missing
 * program).
 */
export async function runCommand(
  program: string,
  opts: CommandOptions = {},
): Promise<CommandResult> {
  const deadline = opts.timeoutMs == null ? null : AbortSignal.timeout(opts.timeoutMs);
  const stops = [deadline, opts.signal].filter((s): s is AbortSignal => s != null);
  const child = new Deno.Command(program, {
    args: opts.args ? [...opts.args] : undefined,
    cwd: opts.cwd,
    env: opts.env,
    stdin: opts.input !== undefined ? "piped" : opts.stdin ?? "null",
    stdout: opts.stdout ?? "piped",
    stderr: opts.stderr ?? "piped",
    signal: stops.length > 0 ? AbortSignal.any(stops) : undefined,
  }).spawn();
  const out = opts.stdout ?? "piped";
  const err = opts.stderr ?? "piped";
  const piped = out === "piped" || err === "piped";
  let exited = false;
  let timedOut = false;
  const onDeadline = () => {
    if (exited) return;
    timedOut = true;
    kill(piped ? [child.pid, ...descendants(child.pid)] : [child.pid]);
  };
  // Registered before any reader: at the deadline the tree dies first.
  deadline?.addEventListener("abort", onDeadline, { once: true });
  try {
    const stdout = out === "piped" ? readText(child.stdout, deadline) : Promise.resolve("");
    const stderr = err === "piped" ? readText(child.stderr, deadline) : Promise.resolve("");
    if (opts.input !== undefined) await writeInput(child.stdin, opts.input, deadline);
    const status = await child.status;
    exited = true;
    return { status, stdout: await stdout, stderr: await stderr, timedOut };
  } finally {
    deadline?.removeEventListener("abort", onDeadline);
  }
}

/** SIGKILL to each of `pids`. */
function kill(pids: readonly number[]): void {
  for (const p of pids) {
    try {
      Deno.kill(p, "SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
}

/** The descendants of `pid` from the parent pids in /proc/<pid>/stat; [] without /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  try {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^[0-9]+$/.test(e.name)) continue;
      let stat: string;
      try {
        stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      } catch {
        continue; // exited meanwhile
      }
      // "pid (comm) state ppid …": comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid);
      if (list) list.push(Number(e.name));
      else children.set(ppid, [Number(e.name)]);
    }
  } catch {
    return [];
  }
  const out: number[] = [];
  for (let i = -1; i < out.length; i++) out.push(...(children.get(i < 0 ? pid : out[i]) ?? []));
  return out;
}

/** Reads a stream to its end, or until `stop` aborts (then returns what it has). */
async function readText(
  stream: ReadableStream<Uint8Array>,
  stop: AbortSignal | null,
): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const onStop = () => reader.cancel().catch(() => {});
  stop?.addEventListener("abort", onStop, { once: true });
  try {
    if (stop?.aborted) onStop();
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      text += decoder.decode(r.value, { stream: true });
    }
  } catch {
    // the stream failed: keep what was read
  } finally {
    stop?.removeEventListener("abort", onStop);
    reader.releaseLock();
  }
  return text + decoder.decode();
}

/** Writes `text` and closes the stream, unless `stop` aborts first or the reader is gone. */
async function writeInput(
  stream: WritableStream<Uint8Array>,
  text: string,
  stop: AbortSignal | null,
): Promise<void> {
  const writer = stream.getWriter();
  const stopped = new Promise<void>((resolve) => {
    if (stop?.aborted) resolve();
    stop?.addEventListener("abort", () => resolve(), { once: true });
  });
  const write = writer.write(new TextEncoder().encode(text)).then(() => writer.close());
  await Promise.race([write, stopped]).catch(() => {});
  write.catch(() => {});
  writer.releaseLock();
}
