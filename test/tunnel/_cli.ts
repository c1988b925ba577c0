// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The `gotatun` command from the sources as the CLI tests of test/tunnel run
 * it: spawned with piped output ({@link spawnGotatun}), and stopped with
 * SIGTERM ({@link stopGotatun}).
 */

/** cli/main.ts, the command's entry module. */
export const MAIN: string = new URL("../../cli/main.ts", import.meta.url).pathname;

/** Starts `gotatun ARGS…` (deno run --unstable-net -A cli/main.ts), stdout and stderr piped. */
export function spawnGotatun(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-net", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Sends SIGTERM (unless it is gone), waits for the exit, releases its pipes; the exit code. */
export async function stopGotatun(child: Deno.ChildProcess): Promise<number> {
  try {
    child.kill("SIGTERM");
  } catch {
    // already gone
  }
  const status = await child.status;
  await child.stdout.cancel().catch(() => {});
  await child.stderr.cancel().catch(() => {});
  return status.code;
}
