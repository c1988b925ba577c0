// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `wg`, reimplemented: the command-line tool of wireguard-tools
 * (v1.0.20260223, `wg.c` and the subcommands), talking UAPI to any userspace
 * WireGuard daemon (gotatun, wireguard-go, boringtun). Same arguments, same
 * output bytes, same messages and exit codes as the C tool, including its
 * environment variables: `WG_COLOR_MODE`, `WG_HIDE_KEYS` and
 * `WG_ENDPOINT_RESOLUTION_RETRIES`. One of our own, `GOTATUN_SOCKET_DIR`,
 * replaces /var/run/wireguard (which stock `wg` has compiled in), to reach
 * the sockets of `gotatun proxy --uapi DIR` and `gotatun forward --uapi DIR`.
 *
 * {@link wgMain} takes the arguments after the program name. Run directly
 * (`deno run -A cli/wg/main.ts show`), this module acts as `wg`.
 *
 * Where it cannot match `wg`: kernel WireGuard interfaces (generic netlink)
 * are not reachable from Deno; see ipc.ts for the errors reported instead.
 */
import { socketDirFromEnv } from "../../uapi/socket_dir.ts";
import { bstr } from "./cstr.ts";
import { genkeyMain, pubkeyMain } from "./keys.ts";
import type { IpcContext } from "./ipc.ts";
import { defaultResolver, type Resolver } from "./resolve.ts";
import { setconfMain, type SetContext, setMain } from "./setconf.ts";
import { showMain } from "./show.ts";
import { showconfMain } from "./showconf.ts";
import { Stdio, WgExit, type WgReader, type WgWriter } from "./stdio.ts";
import { envObject } from "../env.ts";

export type { WgReader, WgWriter } from "./stdio.ts";

/** The wireguard-tools release whose behaviour this reproduces. */
export const WG_TOOLS_VERSION = "1.0.20260223";

/** Where {@link wgMain} reads and writes, and what it may be told for tests. */
export interface WgIo {
  /** Default `Deno.stdout`. Colour and line buffering follow its `isTerminal()`. */
  stdout?: WgWriter;
  /** Default `Deno.stderr`. */
  stderr?: WgWriter;
  /** Default `Deno.stdin` (read by `pubkey`). */
  stdin?: WgReader;
  /** The program name in messages (`PROG_NAME`, argv[0]); default "wg". */
  progName?: string;
  /** Socket directory; default `GOTATUN_SOCKET_DIR` from `env`, else /var/run/wireguard. */
  socketDir?: string;
  /** Name resolution; default glibc through FFI when allowed, else pure TypeScript. */
  resolver?: Resolver;
  /** Unix time in seconds, for "latest handshake: … ago"; default the system clock. */
  now?: () => number | bigint;
  /** Delay between endpoint resolution retries; default a real timer. */
  sleep?: (ms: number) => Promise<void>;
}

const SUBCOMMANDS: readonly [string, string][] = [
  ["show", "Shows the current configuration and device information"],
  [
    "showconf",
    "Shows the current configuration of a given WireGuard interface, for use with `setconf'",
  ],
  ["set", "Change the current configuration, add peers, remove peers, or change peers"],
  ["setconf", "Applies a configuration file to a WireGuard interface"],
  ["addconf", "Appends a configuration file to a WireGuard interface"],
  ["syncconf", "Synchronizes a configuration file to a WireGuard interface"],
  ["genkey", "Generates a new private key and writes it to stdout"],
  ["genpsk", "Generates a new preshared key and writes it to stdout"],
  ["pubkey", "Reads a private key from stdin and writes a public key to stdout"],
];

/** The text of `wg --help`. */
export function usageText(progName: string): string {
  let out = `Usage: ${progName} <cmd> [<args>]\n\nAvailable subcommands:\n`;
  for (const [name, description] of SUBCOMMANDS) out += `  ${name}: ${description}\n`;
  return out + "You may pass `--help' to any of these subcommands to view usage.\n";
}

/** fstat(STDOUT_FILENO) through /proc, for genkey's warning. */
function realStdoutStat(): { isFile: boolean; mode: number } | null {
  try {
    const st = Deno.statSync("/proc/self/fd/1");
    return { isFile: st.isFile, mode: st.mode ?? 0 };
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * wgMain() runs `wg <argv…>` and returns its exit status. `argv` excludes the
 * program name; `env` is the environment (only the `WG_*` variables above and
 * `GOTATUN_SOCKET_DIR` are read). Output goes to `io.stdout`/`io.stderr` (default the process's).
 */
export async function wgMain(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  io: WgIo = {},
): Promise<number> {
  const stdio = new Stdio(io.stdout ?? Deno.stdout, io.stderr ?? Deno.stderr);
  const args = argv.map(bstr);
  const benv: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith("WG_")) benv[k] = v === undefined ? undefined : bstr(v);
  }
  const progName = bstr(io.progName ?? "wg");
  const resolver = io.resolver ?? defaultResolver();
  const ipc: IpcContext = { socketDir: io.socketDir ?? socketDirFromEnv(env), resolver };
  const now = io.now ?? (() => Math.floor(Date.now() / 1000));
  const ctx: SetContext = {
    stdio,
    env: benv,
    resolver,
    ipc,
    progName,
    now: () => BigInt(now()),
    sleep: io.sleep ?? sleep,
  };
  let code: number;
  try {
    code = await dispatch(args, ctx, io);
  } catch (e) {
    if (!(e instanceof WgExit)) throw e;
    code = e.code;
    if (code > 128) stdio.discardStdout();
  }
  await stdio.flush();
  return code;
}

async function dispatch(args: string[], ctx: SetContext, io: WgIo): Promise<number> {
  const { stdio, progName } = ctx;
  if (args.length === 1 && ["-v", "--version", "version"].includes(args[0])) {
    stdio.out(`wireguard-tools v${WG_TOOLS_VERSION} - https://git.zx2c4.com/wireguard-tools/\n`);
    return 0;
  }
  if (args.length === 1 && ["-h", "--help", "help"].includes(args[0])) {
    stdio.out(usageText(progName));
    return 0;
  }
  if (args.length === 0) return await showMain(["show"], ctx);
  const keys = {
    stdio,
    progName,
    stdin: io.stdin ?? Deno.stdin,
    stdoutStat: io.stdout === undefined ? realStdoutStat : () => null,
  };
  switch (args[0]) {
    case "show":
      return await showMain(args, ctx);
    case "showconf":
      return await showconfMain(args, ctx);
    case "set":
      return await setMain(args, ctx);
    case "setconf":
    case "addconf":
    case "syncconf":
      return await setconfMain(args, ctx);
    case "genkey":
    case "genpsk":
      return genkeyMain(args, keys);
    case "pubkey":
      return await pubkeyMain(args, keys);
  }
  stdio.err(`Invalid subcommand: \`${args[0]}'\n`);
  stdio.err(usageText(progName));
  return 1;
}

if (import.meta.main) Deno.exit(await wgMain(Deno.args, envObject()));
