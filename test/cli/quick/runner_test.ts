// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Runner (cli/quick/runner.ts): PATH lookup from the given environment,
 * `[#]` echo, stdin, output modes, exit codes for missing tools, and the
 * deadline that kills a hung tool.
 */
import assert from "node:assert/strict";
import { type QuickOutput, Runner } from "../../../cli/quick/runner.ts";
import { ignoreUnless } from "../../_util/needs.ts";

const LABEL = "test/cli/quick/runner_test.ts";

/** A QuickOutput that remembers what was written. */
function collector(): QuickOutput & { stdout: string; stderr: string } {
  const c = {
    stdout: "",
    stderr: "",
    out(text: string) {
      c.stdout += text;
    },
    err(text: string) {
      c.stderr += text;
    },
  };
  return c;
}

const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

Deno.test("Runner.which() searches PATH from the given environment", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gtq-which-" });
  try {
    await Deno.writeTextFile(`${dir}/gtq-tool`, "#!/bin/sh\necho hi\n", { mode: 0o755 });
    await Deno.writeTextFile(`${dir}/gtq-noexec`, "x", { mode: 0o644 });
    const r = new Runner({ PATH: `${dir}:${PATH}` }, collector());
    assert.equal(r.which("gtq-tool"), `${dir}/gtq-tool`);
    assert.equal(r.which("gtq-noexec"), null);
    assert.equal(r.which(`${dir}/gtq-tool`), `${dir}/gtq-tool`);
    assert.equal(new Runner({ PATH }, collector()).which("gtq-tool"), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "Runner.run() echoes, feeds stdin, captures or forwards output, sets LC_ALL=C",
  ignore: ignoreUnless(LABEL, { tools: ["sh", "cat"] }),
  async fn() {
    const out = collector();
    const r = new Runner({ PATH, GTQ_X: "1" }, out);
    const cat = await r.run(["cat"], { echo: true, stdin: "data\n" });
    assert.equal(cat.code, 0);
    assert.equal(cat.stdout, "data\n");
    assert.equal(out.stderr, "[#] cat\n");
    const env = await r.run(["sh", "-c", 'echo "$LC_ALL $GTQ_X"; echo oops >&2; exit 3'], {
      stdout: "forward",
    });
    assert.equal(env.code, 3);
    assert.equal(env.stdout, "");
    assert.equal(out.stdout, "C 1\n");
    assert.ok(out.stderr.endsWith("oops\n"));
    const quiet = await r.run(["sh", "-c", "echo hidden >&2"], { stderr: "discard" });
    assert.equal(quiet.code, 0);
    assert.ok(!out.stderr.includes("hidden"));
    const kept = await r.run(["sh", "-c", "echo kept >&2"], { stderr: "capture" });
    assert.equal(kept.stderr, "kept\n");
  },
});

Deno.test("Runner.run() reports a missing program as bash does (127)", async () => {
  const out = collector();
  const r = new Runner({ PATH: "/nonexistent-gtq" }, out);
  const res = await r.run(["gtq-missing", "x"], { echo: true });
  assert.equal(res.code, 127);
  assert.equal(out.stderr, "[#] gtq-missing x\ngtq-missing: command not found\n");
});

Deno.test({
  name: "Runner.run() kills a tool that outlives its deadline",
  ignore: ignoreUnless(LABEL, { tools: ["sleep"] }),
  async fn() {
    const out = collector();
    const r = new Runner({ PATH }, out);
    const t0 = Date.now();
    const res = await r.run(["sleep", "30"], { timeoutMs: 300 });
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(res.timedOut, true);
    assert.equal(res.code, -1);
    assert.match(out.stderr, /sleep: killed after 0.3 s/);
  },
});

Deno.test({
  name: "Runner.interrupt() kills the running tool; later tools still run (for cleanup)",
  ignore: ignoreUnless(LABEL, { tools: ["sleep", "true"] }),
  async fn() {
    const r = new Runner({ PATH }, collector());
    const pending = r.run(["sleep", "30"], { timeoutMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    r.interrupt();
    const res = await pending;
    assert.equal(res.code, -1);
    assert.equal(r.interrupted, true);
    assert.equal((await r.run(["true"])).code, 0);
  },
});

Deno.test({
  name: "Runner.runInherited() returns the exit code and honours its deadline",
  ignore: ignoreUnless(LABEL, { tools: ["sh", "sleep"] }),
  async fn() {
    const r = new Runner({ PATH }, collector());
    assert.equal(await r.runInherited(["sh", "-c", "exit 4"], null), 4);
    assert.equal(await r.runInherited(["sleep", "30"], 300), -1);
  },
});
