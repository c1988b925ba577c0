// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Synchronous writes to stdout and stderr that never throw: the daemon's log
 * sink (wireguard-go logs to stdout), usable from any thread, including the
 * data-plane Worker, and after the caller's pipe has gone away.
 */

/** Writes all of `data` to stdout or stderr synchronously; never throws (EPIPE after the parent left). */
function writeFully(target: "stdout" | "stderr", data: Uint8Array): void {
  const stream = target === "stdout" ? Deno.stdout : Deno.stderr;
  try {
    let off = 0;
    while (off < data.length) off += stream.writeSync(data.subarray(off));
  } catch {
    // Broken pipe or closed: logging must never take the daemon down.
  }
}

const encoder = new TextEncoder();

/** writeStdout() is the daemon's log sink. */
export function writeStdout(line: string): void {
  writeFully("stdout", encoder.encode(line));
}

/** writeStderr() writes to stderr (the warning banner, usage problems). */
export function writeStderr(text: string): void {
  writeFully("stderr", encoder.encode(text));
}
