// SPDX-License-Identifier: Apache-2.0
/**
 * The skip policy of test/_util/needs.ts, run in child `deno test` processes: outside CI a
 * missing tool is a skip with its reason printed; with CI=true the same test is not ignored and
 * a test naming the tool fails; a {@link skipBecause} skip stays a skip under CI.
 */
import assert from "node:assert/strict";
import { missing } from "./needs.ts";
import { run } from "./proc.ts";

const ABSENT = "gotatun-no-such-tool-7f3a";

Deno.test("missing() names what is absent and nothing that is there", () => {
  assert.deepEqual(missing({ tools: ["sh"], other: { "a present thing": true } }), []);
  assert.deepEqual(missing({ tools: ["sh", ABSENT], files: ["/nonexistent/gotatun"] }), [
    `tools on PATH: ${ABSENT}`,
    "file /nonexistent/gotatun",
  ]);
  assert.deepEqual(missing({ other: { "a built thing": false } }), ["a built thing"]);
  assert.equal(missing({ root: true }).length, Deno.uid() === 0 ? 0 : 1);
});

/** Runs a two-test file (one needing {@link ABSENT}, one skipped on purpose) with `CI=ci`. */
async function runPolicy(ci: string): Promise<{ code: number; out: string }> {
  const dir = await Deno.makeTempDir({ prefix: "gtneeds-" });
  try {
    const needs = new URL("./needs.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/policy_test.ts`,
      `import { ignoreUnless, skipBecause } from ${JSON.stringify(needs)};\n` +
        `Deno.test({ name: "uses the tool", ignore: ignoreUnless("L", { tools: ["${ABSENT}"] }),` +
        ` fn() {} });\n` +
        `Deno.test({ name: "not ours", ignore: skipBecause("L", "a reason"), fn() {} });\n`,
    );
    const r = await run(
      Deno.execPath(),
      ["test", "--no-config", "--no-prompt", "-A", `${dir}/policy_test.ts`],
      { timeoutMs: 60_000, env: { CI: ci, NO_COLOR: "1" } },
    );
    return { code: r.code, out: r.stdout + r.stderr };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("outside CI a missing tool is a skip whose reason is printed", async () => {
  const { code, out } = await runPolicy("false");
  assert.equal(code, 0, out);
  assert.match(out, new RegExp(`\\[skip\\] L: missing tools on PATH: ${ABSENT}`));
  assert.match(out, /\[skip\] L: a reason/);
  assert.match(out, /ok \| 0 passed \| 0 failed \| 2 ignored/);
});

Deno.test("with CI=true a missing tool fails a test that names it; skipBecause() still skips", async () => {
  const { code, out } = await runPolicy("true");
  assert.notEqual(code, 0, out);
  assert.match(
    out,
    new RegExp(`L: CI=true but missing tools on PATH: ${ABSENT} \\.\\.\\. FAILED`),
  );
  assert.match(out, /uses the tool \.\.\. ok/);
  assert.match(out, /\[skip\] L: a reason/);
  assert.match(out, /FAILED \| 1 passed \| 1 failed \| 1 ignored/);
});
