// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The daemonized child keeps logging to the caller's file, and no line is
 * lost when the caller redirected with `>` (not `>>`) and keeps writing to
 * the same file afterwards, as `gotatun up … > log 2>&1` does. Root: the
 * daemon creates a TUN in a namespace of the test's own.
 */
import assert from "node:assert/strict";
import { withNamespaces } from "../_util/netns.ts";
import { randomSuffix, waitFor } from "../_util/proc.ts";
import { ignoreUnless } from "../_util/needs.ts";
import { programArgv } from "../_util/wg.ts";

Deno.test({
  name: "a daemon's log survives `> log 2>&1` while the caller writes on after it",
  ignore: ignoreUnless("test/cli/daemon_log_test.ts", { root: true, tools: ["ip", "wg", "bash"] }),
  async fn() {
    await withNamespaces("gtlog", 1, async ({ namespaces: [ns], defer }) => {
      const name = `gtl${randomSuffix(6)}`;
      defer(async () => {
        try {
          await Deno.remove(`/var/run/wireguard/${name}.sock`);
        } catch {
          // gone with the daemon
        }
      });
      const log = await Deno.makeTempFile({ prefix: "gtlog-" });
      defer(() => Deno.remove(log));
      const cmd = programArgv().map((s) => `'${s}'`).join(" ");
      // The shell's own writes share the open file with the daemon's parent;
      // before the fix they landed at a stale offset, over the child's lines.
      const script = [
        `echo FIRST`,
        `${cmd} ${name}`,
        `wg set ${name} private-key <(wg genkey) listen-port 0`,
        `echo MIDDLE`,
        `wg set ${name} fwmark 7`,
        `echo LAST`,
      ].join("; ");
      const r = await ns.execWith(
        { env: { LOG_LEVEL: "verbose" } },
        "bash",
        "-c",
        `{ ${script}; } > '${log}' 2>&1; echo "rc=$?"`,
      );
      assert.match(r.stdout, /rc=0/);
      await ns.execOk("ip", "link", "del", name);
      assert.ok(
        await waitFor(() => Deno.readTextFileSync(log).includes("Shutting down"), 10_000),
        `no shutdown line in:\n${Deno.readTextFileSync(log)}`,
      );
      const text = Deno.readTextFileSync(log);
      const lines = text.split("\n").filter((l) => l !== "");
      // Every line is whole: a marker of ours or a log line with its prefix.
      for (const l of lines) {
        assert.match(l, /^(FIRST|MIDDLE|LAST|(DEBUG|ERROR): \(\w+\) \d{4}\/\d\d\/\d\d )/, text);
      }
      const order = [
        "FIRST",
        "Starting gotatun",
        "UAPI listener started",
        "UAPI: Updating private key",
        "MIDDLE",
        "UAPI: Updating fwmark",
        "LAST",
        "Shutting down",
      ];
      let at = -1;
      for (const want of order) {
        const i = lines.findIndex((l, k) => k > at && l.includes(want));
        assert.ok(i > at, `"${want}" missing or out of order in:\n${text}`);
        at = i;
      }
    });
  },
});
