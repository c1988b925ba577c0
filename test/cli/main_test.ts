// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * What `gotatun` does with a misspelt command and an over-long interface name,
 * run as a process. The process gets no FFI and no subprocess permission, so
 * even as root and even if these checks regressed it could create no TUN and
 * start no daemon: the answer must come before any of that.
 */
import assert from "node:assert/strict";
import { run } from "../_util/proc.ts";

const MAIN = decodeURIComponent(new URL("../../cli/main.ts", import.meta.url).pathname);

function gotatun(...args: string[]) {
  return run(Deno.execPath(), [
    "run",
    "--no-prompt",
    "--allow-env",
    "--allow-read",
    MAIN,
    ...args,
  ], { env: { NO_COLOR: "1" }, timeoutMs: 60_000 });
}

Deno.test("gotatun shwo: did you mean show, exit 1, nothing started", async () => {
  const r = await gotatun("shwo");
  assert.equal(r.code, 1, JSON.stringify(r));
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /"shwo" is not a command; did you mean "show"\?/);
  assert.match(r.stderr, /gotatun -- shwo/);
});

Deno.test("gotatun -- shwo and -f shwo do go on to start an interface", async () => {
  // Without FFI and --allow-run they then fail, but past the misspelling check.
  for (const args of [["--", "shwo"], ["-f", "shwo"]]) {
    const r = await gotatun(...args);
    assert.doesNotMatch(r.stderr, /did you mean/, JSON.stringify(args));
    assert.equal(r.code, 1, JSON.stringify(args));
    assert.match(r.stdout, /\(shwo\) .*Failed to (daemonize|create TUN device)/);
  }
});

Deno.test("an interface name over 15 characters is too long, before anything starts", async () => {
  for (const args of [["-f", "a-sixteen-chars!"], ["a-sixteen-chars!"]]) {
    const r = await gotatun(...args);
    assert.equal(r.code, 1, JSON.stringify(r));
    assert.match(
      r.stdout,
      /Failed to create TUN device: interface name "a-sixteen-chars!" is too long \(max 15 characters\)/,
    );
  }
});
