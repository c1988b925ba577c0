// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `gotatun demo` through the real entry point: it must succeed on a root
 * machine with `ip`, print its verdict, and leave no namespace, interface,
 * socket or process behind.
 */
import assert from "node:assert/strict";
import { DENO_RUN_FLAGS } from "../../cli/version.ts";
import { run } from "../_util/proc.ts";
import { ignoreUnless } from "../_util/needs.ts";
import { REPO_ROOT, SOCKET_DIR } from "../_util/wg.ts";

const MAIN = [...DENO_RUN_FLAGS, "--config", `${REPO_ROOT}/deno.json`, `${REPO_ROOT}/cli/main.ts`];

async function demoNamespaces(): Promise<string[]> {
  const r = await run("ip", ["netns", "list"], { timeoutMs: 10_000 });
  return r.stdout.split("\n").map((l) => l.split(" ")[0]).filter((n) =>
    n.startsWith("gotatun-demo-")
  );
}

Deno.test({
  name: "gotatun demo builds a tunnel, reports OK, and cleans up",
  ignore: ignoreUnless("test/cli/demo_test.ts", { root: true, tools: ["ip", "ping"] }),
  async fn() {
    const before = await demoNamespaces();
    const r = await run(Deno.execPath(), ["run", ...MAIN, "demo"], { timeoutMs: 120_000 });
    assert.equal(r.timedOut, false, "demo hung");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /gotatun demo: OK/);
    assert.deepEqual(await demoNamespaces(), before, "demo left namespaces behind");
    const sockets = [...Deno.readDirSync(SOCKET_DIR)].map((e) => e.name);
    assert.equal(sockets.filter((n) => n.startsWith("gtdemo")).length, 0, "demo left sockets");
  },
});
