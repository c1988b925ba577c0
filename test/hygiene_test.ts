// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The repository passes `deno fmt --check` and `deno lint` (the same checks
 * a contributor runs before a commit), so a formatting or lint slip fails
 * the test command rather than waiting for someone to notice.
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;

async function run(args: string[]): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

Deno.test("deno fmt --check passes", async () => {
  const r = await run(["fmt", "--check"]);
  assert.equal(r.code, 0, r.text.slice(-4000));
});

Deno.test("deno lint passes", async () => {
  const r = await run(["lint"]);
  assert.equal(r.code, 0, r.text.slice(-4000));
});
