// SPDX-License-Identifier: Apache-2.0
// UDP forwarding (-L …/udp, -R …/udp) end to end: the cases in
// _forward_udp_cases.ts need Deno.listenDatagram, so they run in a child
// `deno test --unstable-net`; this test passes only if every case there does.
import assert from "node:assert/strict";

Deno.test("forward udp: the cases of _forward_udp_cases.ts pass under --unstable-net", async () => {
  const cases = new URL("./_forward_udp_cases.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--unstable-net", "--no-prompt", cases],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  const m = /ok \| (\d+) passed \| 0 failed/.exec(text);
  assert.ok(m && Number(m[1]) >= 7, text);
});
