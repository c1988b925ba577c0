// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Helpers for the root-only edge tests: private network namespaces named
 * `gtio-<random>` (or another prefix), commands with timeouts, and running a
 * Deno helper script inside a namespace (`ip netns exec`), since Deno cannot
 * setns() itself.
 * Every external step has a timeout; callers delete their namespaces in
 * `finally`.
 */

import type { Needs } from "../_util/needs.ts";

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

/** Runs a command with a timeout (SIGTERM on expiry); never throws for a non-zero exit. */
export async function sh(cmd: string[], timeoutMs = 10_000): Promise<ShResult> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs a command and throws (with its stderr) unless it exits 0. */
export async function must(cmd: string[], timeoutMs = 10_000): Promise<string> {
  const r = await sh(cmd, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** A fresh name with the tests' prefix, e.g. `gtio-3fa9c2d1`. */
export function uniqueName(prefix = "gtio-"): string {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return prefix + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Creates a namespace (named `<prefix><random>`) with loopback up; returns its name. */
export async function addNetns(prefix = "gtio-"): Promise<string> {
  const ns = uniqueName(prefix);
  await must(["ip", "netns", "add", ns]);
  await must(["ip", "-n", ns, "link", "set", "lo", "up"]);
  return ns;
}

/** Deletes namespaces, ignoring ones already gone. */
export async function delNetns(...names: string[]): Promise<void> {
  for (const ns of names) await sh(["ip", "netns", "del", ns]);
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
