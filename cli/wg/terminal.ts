// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Colours for `wg show`'s pretty output (wireguard-tools `terminal.c`): the
 * ANSI sequences are always part of the formatted text and are stripped
 * unless colour is on. `WG_COLOR_MODE=always` forces colour, `never` forbids
 * it, anything else means "when stdout is a terminal". Stripping removes each
 * `ESC [` and everything up to and including the next letter, except a
 * sequence starting in the last two characters of a chunk (as the C's loop
 * bound leaves it).
 */
import type { Stdio } from "./stdio.ts";

export const TERMINAL_FG_RED = "\x1b[31m";
export const TERMINAL_FG_GREEN = "\x1b[32m";
export const TERMINAL_FG_YELLOW = "\x1b[33m";
export const TERMINAL_FG_CYAN = "\x1b[36m";
export const TERMINAL_BOLD = "\x1b[1m";
export const TERMINAL_RESET = "\x1b[0m";

/** colorMode() decides colour once per invocation, as terminal.c caches it. */
export function colorMode(
  env: Record<string, string | undefined>,
  stdoutIsTerminal: boolean,
): boolean {
  const v = env.WG_COLOR_MODE;
  if (v === "always") return true;
  if (v === "never") return false;
  return stdoutIsTerminal;
}

/** One escape sequence: ESC [, then up to and including the first letter (or to the end). */
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[^A-Za-z]*[A-Za-z]?/g;

/** filterAnsi() strips the escape sequences of one formatted chunk, as filter_ansi() does. */
export function filterAnsi(s: string): string {
  if (!s.includes("\x1b")) return s;
  // filter_ansi() only starts a sequence before the last two characters.
  const last = s.length - 2;
  return s.replace(ANSI, (m: string, offset: number) => (offset < last ? "" : m));
}

/** terminal_printf(): stdout output that keeps or strips its colours. */
export class Terminal {
  readonly #stdio: Stdio;
  readonly #color: boolean;

  constructor(stdio: Stdio, env: Record<string, string | undefined>) {
    this.#stdio = stdio;
    this.#color = colorMode(env, stdio.stdoutIsTerminal);
  }

  /** Writes one formatted chunk. */
  printf(chunk: string): void {
    this.#stdio.out(this.#color ? chunk : filterAnsi(chunk));
  }
}
