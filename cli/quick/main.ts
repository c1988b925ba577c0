// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `gotatun up|down|save|strip CONFIG_FILE|INTERFACE`: wg-quick(8) built into
 * gotatun, with wg-quick's configuration format and its behaviour on Linux
 * (see {@link ./linux.ts} for the steps and {@link ./config.ts} for the
 * format). Messages and `[#] …` command lines go to stderr, as wg-quick's.
 *
 * When the kernel has no WireGuard module, `up` creates the interface by
 * running gotatun itself as the daemon (`gotatun IFACE`, which returns once
 * the TUN and the UAPI socket exist). `GOTATUN_QUICK_IMPLEMENTATION=PROGRAM`
 * runs another wireguard-go compatible program instead (wg-quick's
 * `WG_QUICK_USERSPACE_IMPLEMENTATION`). `GOTATUN_QUICK_WG` names the wg(8)
 * used for `addconf` (default `wg`).
 *
 * Runnable on its own for tests: `deno run -A cli/quick/main.ts up wg0`.
 */
import { selfCommand } from "../daemon.ts";
import {
  configPathFor,
  interfaceFromPath,
  parseQuickConfig,
  type QuickConfig,
  QuickConfigError,
  stripText,
} from "./config.ts";
import { QuickFailure, QuickLinux } from "./linux.ts";
import { type QuickOutput, Runner, stdOutput } from "./runner.ts";
import { wgOps } from "./wg.ts";

/** The name in messages (wg-quick uses its own `$0`). */
const PROGRAM = "gotatun";

/** The subcommands handled here. */
export const QUICK_COMMANDS: readonly string[] = ["up", "down", "save", "strip"];

/** quickUsage() is the help text (wg-quick's `cmd_usage`, in our words). */
export function quickUsage(program: string = PROGRAM): string {
  return `Usage: ${program} [ up | down | save | strip ] [ CONFIG_FILE | INTERFACE ]

  CONFIG_FILE is a configuration file named after the interface, plus \`.conf'.
  INTERFACE alone means /etc/wireguard/INTERFACE.conf. The file is in wg(8)'s
  \`setconf' format, and its [Interface] section may also contain these keys,
  which ${program} handles itself (\`${program} strip' prints the file without them):

  - Address: one or more IP addresses, with an optional CIDR mask, for the
    interface; may be repeated.
  - DNS: DNS servers (and search domains) to use while the interface is up,
    set through resolvconf(8).
  - MTU: the interface MTU; by default the smallest MTU on the way to the
    endpoints (or of the default route) minus 80.
  - Table: the routing table for the routes of the allowed IPs; \`auto' (the
    default) uses the main table, with a fwmark policy for a default route;
    \`off' adds no routes.
  - PreUp, PostUp, PreDown, PostDown: bash(1) snippets run at those moments;
    \`%i' is replaced by INTERFACE.
  - SaveConfig: \`true' writes the live configuration back to the file on
    \`down'.

  When the kernel has no WireGuard module, the interface is served by
  ${program} itself (GOTATUN_QUICK_IMPLEMENTATION names another program).
`;
}

/** The command that runs gotatun's daemon: ourselves, as `gotatun IFACE`. */
export function defaultImplementation(): string[] {
  const self = selfCommand();
  // Run from this file directly (tests), the daemon entry point is cli/main.ts.
  const args = self.args.map((a) =>
    a.endsWith("/cli/quick/main.ts") ? a.slice(0, -"quick/main.ts".length) + "main.ts" : a
  );
  return [self.cmd, ...args];
}

/** The userspace implementation `up` runs: GOTATUN_QUICK_IMPLEMENTATION, else ourselves. */
export function implementationCommand(env: Readonly<Record<string, string | undefined>>): string[] {
  const custom = env.GOTATUN_QUICK_IMPLEMENTATION;
  return custom !== undefined && custom !== "" ? [custom] : defaultImplementation();
}

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

/** auto_su: run the same command again through sudo when not root. */
async function asRoot(argv: readonly string[], runner: Runner): Promise<number> {
  if (runner.which("sudo") === null) {
    runner.output.err(`${PROGRAM}: must be run as root\n`);
    return 1;
  }
  const self = selfCommand();
  return await runner.runInherited([
    "sudo",
    "-p",
    `${PROGRAM} must be run as root. Please enter the password for %u to continue: `,
    "--",
    self.cmd,
    ...self.args,
    ...argv,
  ], null);
}

/** parse_options: the file, its interface name, and its contents. */
async function loadConfig(
  arg: string,
  output: QuickOutput,
): Promise<{ cfg: QuickConfig; file: string }> {
  const path = configPathFor(arg);
  try {
    await Deno.stat(path);
  } catch {
    throw new QuickFailure(`\`${path}' does not exist`);
  }
  const iface = interfaceFromPath(path);
  if (iface === null) {
    throw new QuickFailure("The config file must be a valid interface name, followed by .conf");
  }
  let file: string;
  let text: string;
  try {
    file = await Deno.realPath(path);
    text = await Deno.readTextFile(file);
  } catch (err) {
    throw new QuickFailure(`\`${path}': ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    const dir = file.slice(0, file.lastIndexOf("/")) || "/";
    const fileMode = (await Deno.stat(file)).mode ?? 0;
    const dirMode = (await Deno.stat(dir)).mode ?? 0;
    if ((fileMode & dirMode & 0o007) !== 0) {
      output.err(`Warning: \`${file}' is world accessible\n`);
    }
  } catch {
    // wg-quick's stat would complain; the file was readable, so carry on
  }
  try {
    return { cfg: parseQuickConfig(iface, text), file };
  } catch (err) {
    if (err instanceof QuickConfigError) throw new QuickFailure(err.message);
    throw err;
  }
}

/**
 * quickMain() runs one wg-quick command, e.g. `["up", "wg0"]` or
 * `["down", "/etc/wireguard/wg0.conf"]`, and returns the exit code: 0 on
 * success, 1 (or the failing tool's code) on failure, 1 for a usage error.
 * `env` is the environment tools are started with and looked up in (PATH).
 */
export async function quickMain(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  output: QuickOutput = stdOutput,
): Promise<number> {
  if (argv.length === 1 && ["--help", "-h", "help"].includes(argv[0])) {
    output.err(quickUsage());
    return 0;
  }
  if (argv.length !== 2 || !QUICK_COMMANDS.includes(argv[0])) {
    output.err(quickUsage());
    return 1;
  }
  const [command, arg] = argv;
  const runner = new Runner(env, output);
  if (command !== "strip" && !isRoot()) return await asRoot(argv, runner);
  try {
    const { cfg, file } = await loadConfig(arg, output);
    if (command === "strip") {
      output.out(stripText(cfg));
      return 0;
    }
    const quick = new QuickLinux({
      cfg,
      configFile: file,
      runner,
      wg: wgOps(runner),
      implementation: implementationCommand(env),
    });
    if (command === "up") await quick.up();
    else if (command === "down") await quick.down();
    else await quick.save();
    return 0;
  } catch (err) {
    if (err instanceof QuickFailure) {
      if (err.message !== "") output.err(`${PROGRAM}: ${err.message}\n`);
      return err.code;
    }
    output.err(`${PROGRAM}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

if (import.meta.main) {
  let env: Record<string, string> = {};
  try {
    env = Deno.env.toObject();
  } catch {
    // without --allow-env: an empty environment (PATH falls back to the default)
  }
  Deno.exit(await quickMain(Deno.args, env));
}
