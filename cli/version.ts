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
 * The permissions the daemon needs (deno-platform.md §9): FFI for the TUN,
 * sockets, umask and dup2; net and unix sockets; read/write for
 * /var/run/wireguard; env for LOG_LEVEL and friends; run to re-exec itself;
 * sys for `Deno.umask`. `--no-prompt` because a permission prompt would hang
 * wg-quick; `--unstable-net` in case `Deno.listenDatagram` is used.
 */
export const DENO_RUN_FLAGS: readonly string[] = [
  "--no-prompt",
  "--unstable-net",
  "--allow-ffi",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-sys",
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
