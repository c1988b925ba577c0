// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * runCommand() (cli/subprocess.ts): input and output, and the deadline:
 * a child that ignores SIGTERM is killed with its descendants, whose pipe
 * would otherwise be held open; a child that exited is not reported as
 * timed out, and the pipe a stray grandchild holds is abandoned.
 */
import assert from "node:assert/strict";
import { runCommand } from "../../cli/subprocess.ts";
import { pidAlive, waitFor } from "../_util/proc.ts";
import { ignoreUnless } from "../_util/needs.ts";

const LABEL = "test/cli/subprocess_test.ts";

Deno.test({
  name: "runCommand() feeds stdin and collects stdout and stderr",
  ignore: ignoreUnless(LABEL, { tools: ["sh"] }),
  async fn() {
    const r = await runCommand("sh", {
      args: ["-c", "cat; echo err >&2; exit 3"],
      input: "data\n",
      timeoutMs: 60_000,
    });
    assert.equal(r.status.code, 3);
    assert.equal(r.stdout, "data\n");
    assert.equal(r.stderr, "err\n");
    assert.equal(r.timedOut, false);
  },
});

Deno.test({
  name: "runCommand() at the deadline kills a child that ignores SIGTERM, and its descendants",
  ignore: ignoreUnless(LABEL, { tools: ["sh", "sleep"] }),
  async fn() {
    // The grandchild inherits stdout: without the kill, reading would wait for it.
    const r = await runCommand("sh", {
      args: ["-c", "trap '' TERM; sleep 600 & echo $!; wait"],
      timeoutMs: 300,
    });
    assert.equal(r.timedOut, true);
    assert.equal(r.status.signal, "SIGKILL");
    const grandchild = Number(r.stdout.trim());
    assert.ok(grandchild > 0, r.stdout);
    assert.ok(await waitFor(() => !pidAlive(grandchild), 10_000), "the grandchild lives on");
  },
});

Deno.test({
  name: "runCommand() after a clean exit abandons a pipe a stray grandchild holds",
  ignore: ignoreUnless(LABEL, { tools: ["sh", "sleep"] }),
  async fn() {
    const r = await runCommand("sh", { args: ["-c", "sleep 600 & echo $!"], timeoutMs: 500 });
    const grandchild = Number(r.stdout.trim());
    try {
      assert.equal(r.timedOut, false);
      assert.equal(r.status.code, 0);
      assert.ok(grandchild > 0, r.stdout);
      assert.ok(pidAlive(grandchild), "a process that left the tree is not killed");
    } finally {
      if (grandchild > 0) Deno.kill(grandchild, "SIGKILL");
    }
  },
});
