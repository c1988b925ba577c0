// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Helpers for the root-only edge tests, by namespace name, on top of the
 * shared toolkit (test/_util/netns.ts, test/_util/proc.ts): private network
 * namespaces named `gtio-<random>` (or another prefix), commands with
 * timeouts, and running a Deno helper script inside a namespace
 * (`ip netns exec`), since Deno cannot setns() itself.
 * Every external step has a timeout; callers delete their namespaces in
 * `finally` (which also kills whatever still runs in them).
 */

import type { Needs } from "../_util/needs.ts";
import { Netns } from "../_util/netns.ts";
import { randomSuffix, run, runOk } from "../_util/proc.ts";

/** What the edge tests need: root, `ip`, and /dev/net/tun (see test/_util/needs.ts). */
export const NETNS_NEEDS: Needs = { root: true, tun: true, tools: ["ip"] };

/** {@link NETNS_NEEDS} plus `setpriv`, for the tests that drop privileges. */
export const SETPRIV_NEEDS: Needs = { ...NETNS_NEEDS, tools: ["ip", "setpriv"] };

/** Result of {@link sh}. */
export interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with a hard timeout (killed on expiry); never throws for a non-zero exit. */
export async function sh(cmd: string[], timeoutMs = 10_000): Promise<ShResult> {
  const { code, stdout, stderr } = await run(cmd[0], cmd.slice(1), { timeoutMs });
  return { code, stdout, stderr };
}

/** Runs a command and throws (with its output) unless it exits 0 in time. */
export async function must(cmd: string[], timeoutMs = 10_000): Promise<string> {
  return (await runOk(cmd[0], cmd.slice(1), { timeoutMs })).stdout;
}

/** A fresh name with the tests' prefix, e.g. `gtio-3fa9c2d1`. */
export function uniqueName(prefix = "gtio-"): string {
  return prefix + randomSuffix(8);
}

/** The namespaces made by {@link addNetns}, by name. */
const made = new Map<string, Netns>();

/** Creates a namespace (test/_util/netns.ts, `<prefix>-<random>`) with loopback up; its name. */
export async function addNetns(prefix = "gtio-"): Promise<string> {
  const ns = await Netns.create(prefix.replace(/-$/, ""));
  made.set(ns.name, ns);
  return ns.name;
}

/** Deletes namespaces made by {@link addNetns}, killing what still runs in them. */
export async function delNetns(...names: string[]): Promise<void> {
  for (const name of names) {
    await made.get(name)?.delete();
    made.delete(name);
  }
}

/** The command line that runs a Deno script inside `ns`. */
export function denoInNetns(ns: string, script: string | URL, args: string[]): string[] {
  const path = script instanceof URL ? script.pathname : script;
  return ["ip", "netns", "exec", ns, Deno.execPath(), "run", "-A", "--no-prompt", path, ...args];
}

/**
 * Runs a helper script inside `ns` and parses the JSON object it prints as
 * its last stdout line. Throws with the helper's stderr if it fails.
 */
export async function runHelper(
  ns: string,
  script: string | URL,
  args: string[],
  timeoutMs = 30_000,
): Promise<Record<string, unknown>> {
  const r = await sh(denoInNetns(ns, script, args), timeoutMs);
  const lines = r.stdout.trim().split("\n");
  if (r.code !== 0) {
    throw new Error(`helper ${args.join(" ")} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  }
  return JSON.parse(lines[lines.length - 1]);
}

/** A long-running helper (a server): started, awaited for a READY line, killed by PID. */
export class Background {
  #child: Deno.ChildProcess;
  #lines: AsyncIterator<string>;
  #stderr: Promise<string>;

  constructor(cmd: string[]) {
    this.#child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(
      new LineSplitter(),
    )[Symbol.asyncIterator]();
    this.#stderr = new Response(this.#child.stderr).text();
  }

  /** The next stdout line, or throws after `timeoutMs` or at EOF. */
  async nextLine(timeoutMs = 15_000): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("timed out waiting for helper output")), timeoutMs);
    });
    try {
      const r = await Promise.race([this.#lines.next(), timeout]);
      if (r.done) throw new Error(`helper exited early: ${await this.#stderr}`);
      return r.value;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process (by its PID) and waits for it; safe to call twice. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.#child.status;
    await this.#stderr.catch(() => "");
  }
}

/** Splits a text stream into lines. */
class LineSplitter extends TransformStream<string, string> {
  constructor() {
    let buf = "";
    super({
      transform(chunk, ctl) {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          ctl.enqueue(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      },
      flush(ctl) {
        if (buf) ctl.enqueue(buf);
      },
    });
  }
}
