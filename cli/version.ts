// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The version, read from `deno.json` at build time (a JSON import is inlined
 * by `deno bundle`, so the bundle and the sources can never disagree), the
 * `--version` text in wireguard-go's shape, and the Deno flags the daemon
 * runs with (shared by the self re-exec and the build's shebang line).
 */
import denoJson from "../deno.json" with { type: "json" };

/** The gotatun version, e.g. "0.1.0" (deno.json "version"). */
export const VERSION: string = denoJson.version;

/**
 * The permissions gotatun runs with. It needs unscoped FFI (TUN, sockets,
 * umask, dup2, OpenSSL), and unscoped FFI can do anything the process can,
 * so Deno's finer flags would protect nothing. The
 * toolkit also reads device files and /sys (wg's `/dev/stdin` and
 * `/dev/fd/N` config files, interface indices), which Deno grants only with
 * --allow-all. Hence `--allow-all`, plus `--no-prompt` (a prompt would hang
 * wg-quick) and `--unstable-net` (not implied by --allow-all).
 *
 * V8: a young generation capped at 4 MiB semi-spaces (the default lets them
 * grow to 16 MiB after a large setconf and stay there), and `--no-lazy`:
 * every function is compiled to bytecode when the bundle loads instead of on
 * its first call. The daemon's first handshake runs many functions for the
 * first time (the Linux edges, which the start-up warm-up cannot reach); with
 * lazy compilation the first ping through a new tunnel took ≈ 7.7 ms here,
 * eagerly ≈ 5.1 ms (median of 4 each), for ≈ 4 MiB more memory, and short
 * commands start no slower (Deno's code cache then holds everything).
 */
export const DENO_RUN_FLAGS: readonly string[] = [
  "--no-prompt",
  "--unstable-net",
  "--allow-all",
  "--v8-flags=--max-semi-space-size=4,--no-lazy",
];

/**
 * versionText() is what `gotatun --version` prints, shaped like
 * `wireguard-go --version`: name and version, a blank line, the platform
 * line, then two information lines.
 */
export function versionText(): string {
  return `gotatun v${VERSION}\n\n` +
    `Userspace WireGuard daemon for ${Deno.build.os}-${Deno.build.arch}.\n` +
    `Information available at https://www.wireguard.com.\n` +
    `Running on Deno ${Deno.version.deno} (V8 ${Deno.version.v8}).\n`;
}
