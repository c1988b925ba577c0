// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests of the C stdio emulation: buffering modes and the global order of
 * writes to stdout and stderr.
 */
import assert from "node:assert/strict";
import { Stdio } from "../../../cli/wg/stdio.ts";
import { MemoryWriter } from "./_io.ts";

Deno.test("Stdio holds non-terminal stdout until flush or a full 4096-byte block", async () => {
  const log: string[] = [];
  const out = new MemoryWriter({ log, tag: "out" });
  const err = new MemoryWriter({ log, tag: "err" });
  const s = new Stdio(out, err);
  s.out("a\n");
  s.err("e1\n");
  s.out("b\n");
  await s.flush();
  assert.deepEqual(log, ["err:e1\n", "out:a\nb\n"]);
  log.length = 0;
  s.out("x".repeat(5000));
  s.err("e2");
  await s.flush();
  assert.deepEqual(log.map((l) => l.length), [4 + 4096, 4 + 2, 4 + 904]);
});

Deno.test("Stdio line-buffers a terminal stdout", async () => {
  const log: string[] = [];
  const s = new Stdio(
    new MemoryWriter({ log, tag: "out", terminal: true }),
    new MemoryWriter({ log, tag: "err" }),
  );
  assert.ok(s.stdoutIsTerminal);
  s.out("a\nb");
  s.err("e\n");
  s.out("c\n");
  await s.flush();
  assert.deepEqual(log, ["out:a\n", "err:e\n", "out:bc\n"]);
});

Deno.test("Stdio writes byte strings byte for byte and can drop unflushed output", async () => {
  const out = new MemoryWriter();
  const s = new Stdio(out, new MemoryWriter());
  s.out("\xe9\x00");
  await s.flush();
  assert.deepEqual([...out.chunks[0]], [0xe9, 0]);
  s.out("lost");
  s.discardStdout();
  await s.flush();
  assert.equal(out.chunks.length, 1);
});
