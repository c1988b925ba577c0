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
 * On top of that, a few subcommands of our own (`help`, `demo`, and the wg(8)
 * and wg-quick(8) commands) leave room for the toolkit to grow. They shadow
 * interfaces with those exact names, which wireguard-go would accept, and a
 * close misspelling of one of them (`shwo`) is answered with "did you mean"
 * instead of starting a daemon. `-f NAME` and `-- NAME` still start an
 * interface of any name.
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
  /** `proxy [options] CONFIG`: a tunnel in this process behind SOCKS5/HTTP (cli/proxy.ts). */
  | { readonly kind: "proxy"; readonly args: readonly string[] }
  /** `forward [-L SPEC]… [-R SPEC]… CONFIG`: ports forwarded across an in-process tunnel (cli/forward.ts). */
  | { readonly kind: "forward"; readonly args: readonly string[] }
  /** A close misspelling of a command: print {@link unknownCommandText} and exit 1. */
  | { readonly kind: "unknown"; readonly word: string; readonly suggestions: readonly string[] }
  /** `[-f|--foreground|--] INTERFACE-NAME`. */
  | { readonly kind: "daemon"; readonly options: DaemonOptions };

/**
 * Subcommands of wg(8) that gotatun answers itself. These words (with `wg`,
 * `up`, `down`, `save`, `strip`, `top`, `proxy`, `forward`, `demo`, `help`) cannot be
 * interface names for the daemon: use another name, as for any tool.
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
  if (argv.length >= 1 && argv[0] === "proxy") return { kind: "proxy", args: argv.slice(1) };
  if (argv.length >= 1 && argv[0] === "forward") return { kind: "forward", args: argv.slice(1) };
  if (argv.length >= 1 && argv[0] !== "-f" && argv[0] !== "--foreground" && argv[0] !== "--") {
    const suggestions = suggestCommands(argv[0]);
    if (suggestions.length > 0) return { kind: "unknown", word: argv[0], suggestions };
  }

  const banner = env.WG_PROCESS_FOREGROUND !== "1";
  let foreground: boolean;
  let iface: string;
  if (argv.length < 1 || argv.length > 2) return { kind: "usage", banner };
  if (argv[0] === "-f" || argv[0] === "--foreground" || argv[0] === "--") {
    if (argv.length !== 2) return { kind: "usage", banner };
    foreground = argv[0] !== "--";
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

/** Every word {@link parseArgs} takes as a command rather than an interface name. */
const COMMANDS: readonly string[] = [
  "--version",
  "--help",
  "--foreground",
  "help",
  "demo",
  "wg",
  "top",
  "proxy",
  "forward",
  ...WG_COMMANDS,
  ...QUICK_COMMANDS,
];

/**
 * suggestCommands() returns the commands `word` is a likely misspelling of,
 * closest first (empty when none). A word is a misspelling when it is not a
 * command and at most 2 edits (insert, delete, substitute, swap two neighbours)
 * away from one, and at most 1 for commands of up to 4 characters: at 2 edits,
 * `up` and `top` would claim most short names (`vpn`, `tun`). Words ending in a
 * digit are never misspellings: interface names usually do (`wg0`), no command does.
 */
export function suggestCommands(word: string): string[] {
  if (/[0-9]$/.test(word) || COMMANDS.includes(word)) return [];
  let best = Infinity;
  let found: string[] = [];
  for (const command of COMMANDS) {
    const d = editDistance(word, command);
    if (d > (command.length <= 4 ? 1 : 2) || d > best) continue;
    if (d < best) found = [];
    best = d;
    found.push(command);
  }
  return found;
}

/** Optimal string alignment distance: Levenshtein plus swapping two neighbours. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0].push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2][j - 2] + 1);
      }
      rows[i].push(d);
    }
  }
  return rows[a.length][b.length];
}

/** unknownCommandText() answers a misspelt command (stderr, exit 1); nothing is created. */
export function unknownCommandText(
  argv0: string,
  word: string,
  suggestions: readonly string[],
): string {
  const quoted = suggestions.map((s) => `"${s}"`).join(" or ");
  return `${argv0}: "${word}" is not a command; did you mean ${quoted}?\n` +
    `To start an interface named "${word}", run \`${argv0} -- ${word}\` ` +
    `(or \`${argv0} -f ${word}\` in the foreground).\n`;
}

/** The longest interface name Linux accepts: IFNAMSIZ (16) minus the terminating NUL. */
export const MAX_IFACE_NAME_BYTES = 15;

/**
 * ifaceNameProblem() says what is wrong with an interface name before anything
 * is created, or null. Only the length is checked here; the kernel has the
 * last word on the rest.
 */
export function ifaceNameProblem(name: string): string | null {
  const bytes = new TextEncoder().encode(name).length;
  if (bytes > MAX_IFACE_NAME_BYTES) {
    return `interface name "${name}" is too long (max ${MAX_IFACE_NAME_BYTES} characters)`;
  }
  return null;
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

/** helpText() is the longer listing for `gotatun help`, every environment variable included. */
export function helpText(argv0: string): string {
  return `Usage: ${argv0} [-f/--foreground] INTERFACE-NAME
       ${argv0} -- INTERFACE-NAME
       ${argv0} --version
       ${argv0} help | --help | -h
       ${argv0} demo
       ${argv0} genkey | genpsk | pubkey
       ${argv0} show | showconf | set | setconf | addconf | syncconf ...   (as wg)
       ${argv0} wg <wg arguments>
       ${argv0} up | down | save | strip <INTERFACE | CONFIG-FILE>         (as wg-quick)
       ${argv0} top [INTERFACE]
       ${argv0} proxy [--socks [HOST:]PORT] [--http [HOST:]PORT] [--auth FILE]
               [--uapi DIR [--uapi-name NAME]] CONFIG-FILE
       ${argv0} forward [-L [BIND:]PORT:HOST:PORT[/udp]]... [-R PORT:HOST:PORT[/udp]]...
               [--udp-timeout SECONDS] [--max-conns N]
               [--uapi DIR [--uapi-name NAME]] CONFIG-FILE

A userspace WireGuard daemon, a drop-in replacement for wireguard-go. It creates
the TUN interface INTERFACE-NAME (at most ${MAX_IFACE_NAME_BYTES} characters) and serves
its configuration socket at /var/run/wireguard/INTERFACE-NAME.sock for wg(8) and
wg-quick(8).

Without -f it daemonizes and returns once the interface exists and the socket
accepts connections (exit 0), or prints why it could not (exit 1). The daemon
stops on SIGINT or SIGTERM, when the interface is deleted (ip link del), or when
the socket file is removed.

Options:
  -f, --foreground   stay in the foreground
  --                 the next word is an interface name, even a command or a
                     word close to one (\`-- show\` starts an interface "show")
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
  proxy              a tunnel inside this process (no root, no TUN device)
                     from a wg-quick config, behind a SOCKS5 server on
                     127.0.0.1:1080 (or --socks ADDR): CONNECT to addresses and
                     names (resolved through the tunnel), UDP ASSOCIATE
                     (\`${argv0} proxy --help\`)
    --socks [HOST:]PORT  where the SOCKS5 server listens (PORT alone: 127.0.0.1)
    --http [HOST:]PORT   also an HTTP proxy there (off unless given): CONNECT,
                         and http:// URIs forwarded one request per connection
    --auth FILE          both proxies require a user from FILE, one
                         user:password per line (SOCKS5 username/password,
                         HTTP Proxy-Authorization: Basic); keep it chmod 600
    --uapi DIR           also serve the tunnel's UAPI socket at DIR/NAME.sock
                         (DIR: created 0700, not writable by group or others)
                         for \`GOTATUN_SOCKET_DIR=DIR ${argv0} show\`, wg set, top
    --uapi-name NAME     that socket's interface name (default: the config
                         file's name without .conf, as in wg-quick: wg0)
  forward            a tunnel inside this process with ports forwarded across
                     it as ssh -L/-R do, TCP or /udp: -L listens here and
                     connects into the tunnel, -R listens on the tunnel's
                     addresses and connects here (\`${argv0} forward --help\`);
                     --uapi DIR and --uapi-name NAME as for proxy
  demo               show it working, touching nothing of the host's network:
                     two network namespaces joined by a gotatun tunnel, a ping
                     and a TCP transfer through it, both ends' status, then
                     everything removed (needs root)
  A word within one or two typos of a command (\`${argv0} shwo\`) is answered with
  "did you mean" and exit 1; nothing is created. Use -f or -- for such a name.

Environment, the daemon (as wireguard-go):
  LOG_LEVEL               verbose|debug, error (default) or silent; logs go to
                          stdout. A daemonized instance keeps logging to the
                          caller's stdout/stderr only when LOG_LEVEL is set and
                          they are a terminal or a file, never a pipe.
  WG_PROCESS_FOREGROUND   1: same as -f, and no warning banner (the banner
                          is printed only when the kernel has the WireGuard
                          module and wg-quick did not start us)
  WG_TUN_FD               use this inherited TUN file descriptor
  WG_UAPI_FD              use this inherited listening unix socket

Environment, the daemon (gotatun's own):
  GOTATUN_CRYPTO          native (OpenSSL libcrypto through FFI), noble (pure
                          TypeScript) or auto (default: native when it loads)
  GOTATUN_OFFLOAD         0 turns off the TUN offloads (TSO/USO, GRO)
  GOTATUN_WORKERS         crypto Workers sharing each batch with the data-plane
                          thread, 0 to 64 (default 0)
  GOTATUN_HANDSHAKE_WORKERS
                          Workers that answer handshake initiations once they
                          queue up, 0 to 16 (default 1 with 2+ CPUs, else 0)
  GOTATUN_METRICS         IP:PORT, [IPv6]:PORT or :PORT: serve Prometheus
                          metrics at /metrics (off by default)
  GOTATUN_METRICS_ALLOW_REMOTE
                          1: allow a GOTATUN_METRICS address other than loopback
  GOTATUN_NOTIFY_READY, GOTATUN_LOG_STDOUT, GOTATUN_LOG_STDERR
                          set by gotatun for the daemon it starts; not settings

Environment, the toolkit:
  WG_QUICK_USERSPACE_IMPLEMENTATION=${argv0} makes wg-quick use gotatun when
  the kernel module is missing.
  GOTATUN_QUICK_IMPLEMENTATION
                          the daemon \`up\` starts (default: ${argv0} itself)
  GOTATUN_QUICK_WG        the wg(8) command \`up\` configures with
                          (default: built in)
  WG_HIDE_KEYS            never: show private and preshared keys (as wg)
  WG_COLOR_MODE           always, never or auto (as wg; also for top)
  WG_ENDPOINT_RESOLUTION_RETRIES
                          how often to retry resolving an endpoint (as wg)
  GOTATUN_SOCKET_DIR      the socket directory of show, showconf, set, setconf,
                          addconf, syncconf, \`${argv0} wg\` and top (default
                          /var/run/wireguard, which stock wg(8) always uses):
                          where proxy and forward --uapi DIR serve
  NO_COLOR                non-empty: no colours in top
  COLUMNS                 top's width when it cannot ask the terminal
`;
}
