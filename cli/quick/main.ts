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
 * `WG_QUICK_USERSPACE_IMPLEMENTATION`). The `wg` steps are UAPI requests
 * made from this process (see wg.ts); `GOTATUN_QUICK_WG` names a wg(8)
 * program to run for `addconf` instead, and `wg` is run for a kernel
 * interface. `up` checks the whole file first (validate.ts) and reports
 * every mistake as `gotatun: FILE:LINE: message`.
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
import {
  buildWgDevice,
  BUILTIN_TABLES,
  checkHooks,
  checkQuickKeys,
  checkWgLines,
  type ConfigProblem,
  rtTableNames,
  type SyntaxChecker,
} from "./validate.ts";
import { wgOps } from "./wg.ts";
import type { WgDevice } from "../wg/containers.ts";
import { defaultResolver } from "../wg/resolve.ts";
import { envObject } from "../env.ts";

/** The name in messages (wg-quick uses its own `$0`). */
const PROGRAM = "gotatun";

/** The subcommands handled here. */
export const QUICK_COMMANDS: readonly string[] = ["up", "down", "save", "strip"];
/** Alone, these print the help. */
const HELP_WORDS: readonly string[] = ["--help", "-h", "help"];
/** After a command, these print the help. */
const HELP_FLAGS: readonly string[] = ["--help", "-h"];

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

/** What {@link loadConfig} found. */
interface Loaded {
  cfg: QuickConfig;
  /** The file, symlinks resolved ("" when absent, see `liveOnly`). */
  file: string;
  /** The path as given or derived (for messages). */
  path: string;
  /** `down` of a live interface whose file is absent: nothing is known but its name. */
  liveOnly: boolean;
}

/**
 * parse_options: the file, its interface name, and its contents. For
 * `down`, a missing file is no error when the interface is live (see
 * {@link QuickLinux.down}): `liveFallback` says whether it is.
 */
async function loadConfig(
  arg: string,
  output: QuickOutput,
  liveFallback: ((iface: string) => Promise<boolean>) | null,
): Promise<Loaded> {
  const path = configPathFor(arg);
  const iface = interfaceFromPath(path);
  try {
    await Deno.stat(path);
  } catch {
    if (liveFallback !== null && iface !== null && await liveFallback(iface)) {
      output.err(
        `[!] \`${path}' does not exist: taking down the live interface ${iface} without its ` +
          "configuration (no hooks, no SaveConfig)\n",
      );
      return { cfg: parseQuickConfig(iface, ""), file: "", path, liveOnly: true };
    }
    throw new QuickFailure(`\`${path}' does not exist`);
  }
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
    return { cfg: parseQuickConfig(iface, text), file, path, liveOnly: false };
  } catch (err) {
    if (err instanceof QuickConfigError) {
      throw new QuickFailure(err.line > 0 ? `${path}:${err.line}: ${err.message}` : err.message);
    }
    throw err;
  }
}

/** The rt_tables files iproute2 reads for table names. */
const RT_TABLES_FILES = ["/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables"];
const RT_TABLES_DIRS = ["/etc/iproute2/rt_tables.d", "/usr/share/iproute2/rt_tables.d"];

/** The routing table names iproute2 knows here (read only when a Table names one). */
async function tableNames(cfg: QuickConfig): Promise<Set<string>> {
  const names = new Set<string>();
  const named = cfg.entries.some((e) =>
    e.key === "table" && !/^(auto|off|[0-9]+)$/.test(e.value) && !BUILTIN_TABLES.includes(e.value)
  );
  if (!named) return names;
  const files = [...RT_TABLES_FILES];
  for (const dir of RT_TABLES_DIRS) {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.name.endsWith(".conf")) files.push(`${dir}/${e.name}`);
      }
    } catch {
      // no such directory
    }
  }
  for (const f of files) {
    try {
      for (const n of rtTableNames(await Deno.readTextFile(f))) names.add(n);
    } catch {
      // absent
    }
  }
  return names;
}

/** `bash -n` with the options hooks run with (linux.ts): bash's first complaint, or null. */
function bashSyntax(runner: Runner): SyntaxChecker {
  return async (script) => {
    const r = await runner.run(["bash", "-n", "-O", "extglob", "-c", script], {
      stderr: "capture",
      timeoutMs: 10_000,
    });
    if (r.code === 0) return null;
    if (r.code === 127) return "bash(1), which runs hooks, is not installed";
    const first = r.stderr.split("\n")[0].replace(/^bash: (-c: )?/, "");
    return `bash syntax error: ${first}`;
  };
}

/**
 * prepareUp() checks the whole configuration (validate.ts) before anything
 * is created, and returns what builds the `addconf` request. Problems are
 * printed as `gotatun: FILE:LINE: message`, all of them, and end the
 * command. Endpoint names are resolved here too, unless there are PreUp
 * hooks: they run first (they may be what makes the names resolvable), so
 * resolution waits for set_config then, as with wg-quick.
 */
async function prepareUp(loaded: Loaded, runner: Runner): Promise<() => Promise<WgDevice>> {
  const { cfg, path } = loaded;
  const output = runner.output;
  const resolver = defaultResolver();
  const notice = (line: number, text: string) => output.err(`${path}:${line}: ${text}`);
  const [quick, hooks, wg] = await Promise.all([
    tableNames(cfg).then((names) => checkQuickKeys(cfg, names)),
    checkHooks(cfg, bashSyntax(runner)),
    checkWgLines(cfg.wgLines, { resolver, env: runner.env, notice }),
  ]);
  report([...quick, ...hooks, ...wg], path, output);
  const build = async () => {
    // Warnings were shown by the check; only resolution retries are news here.
    const retries = (line: number, text: string) => {
      if (text.includes("Trying again")) notice(line, text);
    };
    const built = await buildWgDevice(cfg.wgLines, { resolver, env: runner.env, notice: retries });
    report(built.problems, path, output);
    return built.device!;
  };
  if (cfg.preUp.length > 0) return build;
  const device = await build();
  return () => Promise.resolve(device);
}

/** Prints the problems, if any, and then ends the command. */
function report(problems: ConfigProblem[], path: string, output: QuickOutput): void {
  if (problems.length === 0) return;
  problems.sort((a, b) => a.line - b.line);
  for (const p of problems) output.err(`${PROGRAM}: ${path}:${p.line}: ${p.message}\n`);
  throw new QuickFailure("");
}

/** The `[#]` name of the implementation: GOTATUN_QUICK_IMPLEMENTATION as given, else ours. */
function implementationName(env: Readonly<Record<string, string | undefined>>): string {
  const custom = env.GOTATUN_QUICK_IMPLEMENTATION;
  return custom !== undefined && custom !== "" ? custom : PROGRAM;
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
  // `help`, and `COMMAND --help` / `-h` (not valid interface names for this purpose,
  // though wg-quick would look for /etc/wireguard/--help.conf).
  if (
    (argv.length === 1 && HELP_WORDS.includes(argv[0])) ||
    (argv.length === 2 && QUICK_COMMANDS.includes(argv[0]) && HELP_FLAGS.includes(argv[1]))
  ) {
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
    const wg = wgOps(runner);
    const loaded = await loadConfig(
      arg,
      output,
      command === "down" ? (iface) => wg.isInterface(iface) : null,
    );
    const { cfg, file } = loaded;
    if (command === "strip") {
      output.out(stripText(cfg));
      return 0;
    }
    const quick = new QuickLinux({
      cfg,
      configFile: file,
      runner,
      wg,
      implementation: implementationCommand(env),
      implementationName: implementationName(env),
      wgDevice: command === "up" ? await prepareUp(loaded, runner) : undefined,
      liveOnly: loaded.liveOnly,
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

if (import.meta.main) Deno.exit(await quickMain(Deno.args, envObject()));
