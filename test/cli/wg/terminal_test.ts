// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests of the ANSI stripping and colour-mode choice of terminal.c.
 */
import assert from "node:assert/strict";
import { colorMode, filterAnsi } from "../../../cli/wg/terminal.ts";

Deno.test("filterAnsi() drops each ESC [ … letter sequence", () => {
  assert.equal(filterAnsi("\x1b[0m\x1b[32m\x1b[1minterface\x1b[0m: x\n"), "interface: x\n");
  assert.equal(filterAnsi("a\x1b[1;31mb"), "ab");
  assert.equal(filterAnsi("plain"), "plain");
});

Deno.test("filterAnsi() keeps terminal.c's edge cases", () => {
  // An unterminated sequence runs to the end of the chunk.
  assert.equal(filterAnsi("a\x1b[123"), "a");
  // A sequence starting in the last two characters is left alone (loop bound len - 2).
  assert.equal(filterAnsi("ab\x1b["), "ab\x1b[");
  assert.equal(filterAnsi("\x1b["), "\x1b[");
  // ESC without "[" stays.
  assert.equal(filterAnsi("a\x1bXb"), "a\x1bXb");
});

Deno.test("colorMode() follows WG_COLOR_MODE, else whether stdout is a terminal", () => {
  assert.equal(colorMode({ WG_COLOR_MODE: "always" }, false), true);
  assert.equal(colorMode({ WG_COLOR_MODE: "never" }, true), false);
  assert.equal(colorMode({ WG_COLOR_MODE: "Always" }, false), false);
  assert.equal(colorMode({}, true), true);
  assert.equal(colorMode({}, false), false);
});
