// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Command-line and environment parsing for `gotatun`, exactly as wireguard-go's
 * `main.go` does it so that wg-quick (`"$WG_QUICK_USERSPACE_IMPLEMENTATION" "$INTERFACE"`)
 * and scripts written for wireguard-go see the same behaviour:
 *
 * - `gotatun [-f|--foreground] INTERFACE-NAME` starts the daemon;
 * - `--version` is recognised only as the sole argument;
 * - any other shape prints `Usage: <argv0> [-f/--foreground] INTERFACE-NAME` on
 *   stdout and exits 0 (wireguard-go treats usage errors as success);
 * - `WG_PROCESS_FOREGROUND=1` means `-f` and suppresses the warning banner,
 *   `LOG_LEVEL` picks the log level, `WG_TUN_FD` / `WG_UAPI_FD` hand over fds.
 *
 * On top of that, a few subcommands of our own (`help`, `demo`) leave room
 * for the toolkit to grow. They shadow interfaces with those exact
 * names, which wireguard-go would accept; nobody names a tunnel `help`.
 *
 * Pure: no `Deno.*`, so it is unit-tested without permissions.
 */
import { LogLevel, parseLogLevel } from "../src/log.ts";

/** What the daemon was asked to do (wireguard-go main.go's variables). */
export interface DaemonOptions {
  /** The requested interface name, as given (the kernel may report another). */
  readonly iface: string;
  /** `-f`/`--foreground` or `WG_PROCESS_FOREGROUND=1`: do not daemonize. */
  readonly foreground: boolean;
  /** The warning banner goes to stderr unless `WG_PROCESS_FOREGROUND=1`. */
  readonly banner: boolean;
  /** From `LOG_LEVEL` through {@link parseLogLevel} (unset or unknown: error). */
  readonly logLevel: LogLevel;
  /**
   * wireguard-go hands its stdout/stderr to the daemonized child only when
   * `LOG_LEVEL` is non-empty and not `silent`; otherwise the child gets /dev/null.
   */
  readonly logToCaller: boolean;
  /** `WG_TUN_FD`: an inherited, already attached TUN fd; null creates the interface. */
  readonly tunFd: number | null;
  /** `WG_UAPI_FD`: an inherited, already listening unix socket; null creates it. */
  readonly uapiFd: number | null;
  /**
   * A malformed `WG_TUN_FD`/`WG_UAPI_FD`. wireguard-go reports it as a setup
   * failure ("Failed to create TUN device: …" / "UAPI listen error: …", exit 1)
   * after printing the banner, so parsing succeeds and the daemon reports it.
   */
  readonly envError:
    | { readonly variable: "WG_TUN_FD" | "WG_UAPI_FD"; readonly value: string }
    | null;
}

/** The parsed invocation: one case per thing `main` can do. */
export type Invocation =
  /** `--version` alone: print {@link versionText} and exit 0. */
  | { readonly kind: "version" }
  /** Wrong shape: print {@link usageText} to stdout and exit 0, after the banner. */
  | { readonly kind: "usage"; readonly banner: boolean }
  /** `help`, `--help` or `-h` alone: print {@link helpText} and exit 0. */
  | { readonly kind: "help" }
  /** `demo [args…]`: the self-contained demonstration (cli/demo.ts), arguments passed through. */
  | { readonly kind: "demo"; readonly args: readonly string[] }
  /** The wg(8) commands: `wg …`, or `genkey`, `show`, `set`… directly (cli/wg/main.ts). */
  | { readonly kind: "wg"; readonly args: readonly string[] }
  /** The wg-quick(8) commands: `up|down|save|strip CONFIG` (cli/quick/main.ts). */
  | { readonly kind: "quick"; readonly args: readonly string[] }
  /** `top [iface]`: the live dashboard (cli/top.ts). */
  | { readonly kind: "top"; readonly args: readonly string[] }
  /** `[-f|--foreground] INTERFACE-NAME`. */
  | { readonly kind: "daemon"; readonly options: DaemonOptions };

/**
 * Subcommands of wg(8) that gotatun answers itself. These words (with `wg`,
 * `up`, `down`, `save`, `strip`, `top`, `demo`, `help`) cannot be interface
 * names for the daemon: use another name, as for any tool.
 */
export const WG_COMMANDS: ReadonlySet<string> = new Set([
  "show",
  "showconf",
  "set",
  "setconf",
  "addconf",
  "syncconf",
  "genkey",
  "genpsk",
  "pubkey",
]);

/** Subcommands of wg-quick(8) that gotatun answers itself. */
export const QUICK_COMMANDS: ReadonlySet<string> = new Set(["up", "down", "save", "strip"]);

/** Environment lookup as a plain record (`Deno.env.toObject()` in main). */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * parseArgs() maps `argv` (without the program name) and the environment to
 * an {@link Invocation}, following wireguard-go main.go line for line.
 */
export function parseArgs(argv: readonly string[], env: Env): Invocation {
  // Like wireguard-go, --version wins only as the sole argument, before the banner.
  if (argv.length === 1 && argv[0] === "--version") return { kind: "version" };
  if (argv.length === 1 && (argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h")) {
    return { kind: "help" };
  }
  if (argv.length >= 1 && argv[0] === "demo") return { kind: "demo", args: argv.slice(1) };
  if (argv.length >= 1 && argv[0] === "wg") return { kind: "wg", args: argv.slice(1) };
  if (argv.length >= 1 && WG_COMMANDS.has(argv[0])) return { kind: "wg", args: argv };
  if (argv.length >= 1 && QUICK_COMMANDS.has(argv[0])) return { kind: "quick", args: argv };
  if (argv.length >= 1 && argv[0] === "top") return { kind: "top", args: argv.slice(1) };

  const banner = env.WG_PROCESS_FOREGROUND !== "1";
  let foreground: boolean;
  let iface: string;
  if (argv.length < 1 || argv.length > 2) return { kind: "usage", banner };
  if (argv[0] === "-f" || argv[0] === "--foreground") {
    if (argv.length !== 2) return { kind: "usage", banner };
    foreground = true;
    iface = argv[1];
  } else {
    if (argv.length !== 1) return { kind: "usage", banner };
    foreground = false;
    iface = argv[0];
  }
  if (!foreground) foreground = env.WG_PROCESS_FOREGROUND === "1";

  const rawLevel = env.LOG_LEVEL;
  const logLevel = parseLogLevel(rawLevel);
  const logToCaller = rawLevel !== undefined && rawLevel !== "" && logLevel !== LogLevel.Silent;

  let envError: DaemonOptions["envError"] = null;
  const tunFd = parseFd(env.WG_TUN_FD);
  if (tunFd === undefined) envError = { variable: "WG_TUN_FD", value: env.WG_TUN_FD ?? "" };
  const uapiFd = parseFd(env.WG_UAPI_FD);
  if (uapiFd === undefined && envError === null) {
    envError = { variable: "WG_UAPI_FD", value: env.WG_UAPI_FD ?? "" };
  }

  return {
    kind: "daemon",
    options: {
      iface,
      foreground,
      banner,
      logLevel,
      logToCaller,
      tunFd: tunFd ?? null,
      uapiFd: uapiFd ?? null,
      envError,
    },
  };
}

/**
 * parseFd() reads an fd variable as Go's `strconv.ParseUint(s, 10, 32)`:
 * null when unset or empty (wireguard-go tests `== ""`), undefined when malformed.
 */
export function parseFd(value: string | undefined): number | null | undefined {
  if (value === undefined || value === "") return null;
  if (!/^[0-9]+$/.test(value)) return undefined;
  const n = Number(value);
  return n <= 0xffff_ffff ? n : undefined;
}

/** usageText() is wireguard-go's usage line, printed to stdout. */
export function usageText(argv0: string): string {
  return `Usage: ${argv0} [-f/--foreground] INTERFACE-NAME\n`;
}

/** helpText() is the longer listing for `gotatun help`. */
export function helpText(argv0: string): string {
  return `Usage: ${argv0} [-f/--foreground] INTERFACE-NAME
       ${argv0} --version
       ${argv0} help | --help | -h
       ${argv0} demo
       ${argv0} genkey | genpsk | pubkey
       ${argv0} show | showconf | set | setconf | addconf | syncconf ...   (as wg)
       ${argv0} wg <wg arguments>
       ${argv0} up | down | save | strip <INTERFACE | CONFIG-FILE>         (as wg-quick)
       ${argv0} top [INTERFACE]

A userspace WireGuard daemon, a drop-in replacement for wireguard-go. It creates
the TUN interface INTERFACE-NAME and serves its configuration socket at
/var/run/wireguard/INTERFACE-NAME.sock for wg(8) and wg-quick(8).

Without -f it daemonizes and returns once the interface exists and the socket
accepts connections (exit 0), or prints why it could not (exit 1). The daemon
stops on SIGINT or SIGTERM, when the interface is deleted (ip link del), or when
the socket file is removed.

Options:
  -f, --foreground   stay in the foreground
  --version          print the version and exit (only as the sole argument)

Commands:
  help               print this help
  genkey, genpsk, pubkey
                     keys, exactly as wg(8): \`${argv0} genkey | tee k | ${argv0} pubkey\`
  show, showconf, set, setconf, addconf, syncconf
                     configure and inspect any userspace WireGuard interface
                     (ours or wireguard-go) exactly as wg(8); \`${argv0} wg ...\`
                     takes any wg(8) command line, and a symlink named wg works
  up, down, save, strip
                     wg-quick(8) built in: addresses, MTU, DNS, routes, the
                     full-tunnel fwmark rules, hooks; starts our own daemon
  top                a live view of the peers: endpoints, handshakes, traffic
                     rates; q quits
  demo               show it working, touching nothing of the host's network:
                     two network namespaces joined by a gotatun tunnel, a ping
                     and a TCP transfer through it, both ends' status, then
                     everything removed (needs root)

Environment:
  LOG_LEVEL               verbose|debug, error (default) or silent; logs go to
                          stdout. A daemonized instance keeps logging to the
                          caller's stdout/stderr only when LOG_LEVEL is set and
                          they are a terminal or a file, never a pipe.
  WG_PROCESS_FOREGROUND   1: same as -f, and no warning banner
  WG_TUN_FD               use this inherited TUN file descriptor
  WG_UAPI_FD              use this inherited listening unix socket
  WG_QUICK_USERSPACE_IMPLEMENTATION=${argv0} makes wg-quick use gotatun when
  the kernel module is missing.
`;
}
